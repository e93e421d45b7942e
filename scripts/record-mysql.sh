#!/usr/bin/env bash
# record-mysql.sh — record the MySQL client/server protocol from a real
# MariaDB server and real clients on loopback, with a manifest of what the
# clients did, for the MySQL/MariaDB dissector's tests.
#
# Usage:
#   scripts/record-mysql.sh OUTDIR
#       one capture per scenario, OUTDIR/NAME.pcap, and OUTDIR/manifest.json
#       saying what each holds:
#         queries       the mariadb CLI on one connection: CREATE TABLE,
#                       INSERT, SELECT (rows and an empty set), UPDATE,
#                       DELETE, errors 1146 (42S02), 1064 (42000) and 1062
#                       (23000), USE (the CLI's SELECT DATABASE(), then
#                       COM_INIT_DB), multi-statement queries (two result
#                       sets; a result set then an error), a stored
#                       procedure's CALL (a result set, then an OK)
#         prepared      test/mysqlapps/prepared (go-sql-driver/mysql):
#                       COM_STMT_PREPARE/EXECUTE/CLOSE (binary protocol,
#                       every parameter type), an execute failing (1062) and
#                       a prepare failing (1146); COM_PING on a second
#                       connection; COM_QUIT on both
#         auth-fail     logins refused: a wrong password (1045, 28000), an
#                       unknown database (1049, 42000), a database the user
#                       may not use (1044, 42000)
#         auth-ed25519  a user authenticated by ed25519: the server's
#                       AuthSwitchRequest (client_ed25519), once accepted,
#                       once refused (1045)
#         load          mysqlslap --auto-generate-sql, 4 clients, 2
#                       iterations, 200 queries per iteration
#       Every connection but load's is listed in the manifest with its login
#       and its commands in order, each with its outcome; load has counts.
#       The manifest's shape is in the comment above "The manifest" below.
#   scripts/record-mysql.sh --bulk OUT.pcap [QUERIES=20000] [CLIENTS=8]
#       mysqlslap sending QUERIES times one fixed SELECT (one row of a
#       two-row table) over CLIENTS connections; OUT.pcap.json says how many
#       queries were sent (QUERIES rounded down to a multiple of CLIENTS, as
#       mysqlslap divides them) and on how many connections.
#
# Server: mariadbd (Debian's MariaDB 10.11) on 127.0.0.43:13306, its data
# directory made by mariadb-install-db in a temporary directory (no system
# configuration read: --no-defaults everywhere), real authentication (no
# --skip-grant-tables), TLS off (have_ssl DISABLED: everything is in
# clear). Users: app ('my-s3cret', mysql_native_password) and edapp
# ('ed-s3cret', ed25519). MariaDB 10.11 has no caching_sha2_password (the
# client library has the plugin, the server does not): ed25519 is the other
# plugin recorded. The script's own statements (setup, status counters) go
# over the server's unix socket, never into a capture. Every scenario is
# captured alone by tcpdump on lo, host 127.0.0.43 and port 13306, and read
# back with tshark (-d tcp.port==13306,mysql): tshark's reading of every
# connection (login, commands, results, rows, errors) must equal the
# manifest's, or the run fails.
#
# Needs root (tcpdump), mariadb-server and mariadb-client (mariadbd,
# mariadb-install-db, mariadb, mysqlslap), go, tcpdump, tshark, jq and ss
# (scripts/install-deps.sh). Everything it starts is stopped on exit; a
# failed run leaves nothing in OUTDIR (or no OUT.pcap).
set -euo pipefail

IP=127.0.0.43
PORT=13306
APP_PASS=my-s3cret
ED_PASS=ed-s3cret

die() {
	printf 'record-mysql: %s\n' "$*" >&2
	exit 1
}
log() { printf '==> %s\n' "$*" >&2; }

bulk=
if [[ ${1:-} == --bulk ]]; then
	bulk=1
	shift
	[[ $# -ge 1 && $# -le 3 ]] || die "usage: record-mysql.sh --bulk OUT.pcap [QUERIES=20000] [CLIENTS=8]"
	out=$(realpath -m "$1")
	queries=${2:-20000}
	clients=${3:-8}
	if ! [[ $queries =~ ^[0-9]+$ && $clients =~ ^[0-9]+$ ]] || ((clients == 0 || queries < clients)); then
		die "QUERIES and CLIENTS: numbers, QUERIES >= CLIENTS > 0"
	fi
else
	[[ $# -eq 1 && $1 != -* ]] || die "usage: record-mysql.sh OUTDIR | record-mysql.sh --bulk OUT.pcap [QUERIES] [CLIENTS]"
	out=$(realpath -m "$1")
fi
[[ $(id -u) -eq 0 ]] || die "needs root (tcpdump captures on lo)"
PATH=$PATH:/usr/sbin:/usr/local/go/bin
for tool in mariadbd mariadb-install-db mariadb mysqlslap go tcpdump tshark jq ss; do
	command -v "$tool" >/dev/null || die "$tool is missing (sudo bash scripts/install-deps.sh)"
done
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# shellcheck source=scripts/lib/proc.sh
source "$ROOT/scripts/lib/proc.sh"

WORK=$(mktemp -d /tmp/wirescope-mysql.XXXXXX)
MARIADB_PID=
cleanup() {
	local rc=$?
	set +e
	tcpdump_stop
	stop_pid "$MARIADB_PID"
	if [[ $rc -ne 0 ]]; then
		tail -n 20 "$WORK"/logs/* >&2 2>/dev/null
		if [[ -n $bulk ]]; then
			rm -f "$out" "$out.json"
		fi
	fi
	rm -rf "$WORK"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$WORK"/{logs,bin,rec,plan,sql}
if ss -H -ltn "( sport = :$PORT )" | awk '{print $4}' | grep -Eq "^($IP|0\.0\.0\.0|\*|\[::\]):$PORT\$"; then
	die "$IP:$PORT is already in use"
fi

###############################################################################
# The server
###############################################################################

SOCK=$WORK/mysqld.sock

# admin [MARIADB OPTIONS...]: the mariadb CLI as root over the unix socket
# (never captured).
admin() {
	mariadb --no-defaults -S "$SOCK" -u root "$@"
}

start_mariadb() {
	mariadb-install-db --no-defaults --datadir="$WORK/data" --user=root \
		--auth-root-authentication-method=normal --skip-test-db >"$WORK/logs/install-db.log" 2>&1 ||
		die "mariadb-install-db failed: $(tail -n 5 "$WORK/logs/install-db.log")"
	# --user=root: mariadbd refuses to run as root otherwise, and the data
	# directory is root's. No binary log, a small buffer pool, no fsync
	# at each commit: a throwaway server.
	mariadbd --no-defaults --datadir="$WORK/data" --user=root \
		--bind-address=$IP --port=$PORT --socket="$SOCK" --skip-networking=0 \
		--pid-file="$WORK/mariadbd.pid" --log-error="$WORK/logs/mariadbd.err" \
		--skip-ssl --skip-name-resolve --plugin-load-add=auth_ed25519 \
		--innodb-buffer-pool-size=64M --innodb-flush-log-at-trx-commit=2 \
		--max-connections=100 >"$WORK/logs/mariadbd.out" 2>&1 &
	MARIADB_PID=$!
	for _ in $(seq 300); do
		if [[ -S $SOCK ]] && (exec 3<>"/dev/tcp/$IP/$PORT") 2>/dev/null; then
			return 0
		fi
		kill -0 "$MARIADB_PID" 2>/dev/null || die "mariadbd exited at start"
		sleep 0.1
	done
	die "mariadbd does not listen on $IP:$PORT"
}

start_mariadb
admin <<EOF || die "setting the server up failed"
CREATE DATABASE shop;
CREATE DATABASE other;
CREATE DATABASE bulk;
CREATE USER 'app'@'%' IDENTIFIED VIA mysql_native_password USING PASSWORD('$APP_PASS');
CREATE USER 'edapp'@'%' IDENTIFIED VIA ed25519 USING PASSWORD('$ED_PASS');
GRANT ALL ON shop.* TO 'app'@'%';
GRANT ALL ON other.* TO 'app'@'%';
GRANT ALL ON mysqlslap.* TO 'app'@'%';
GRANT SELECT ON bulk.* TO 'app'@'%';
GRANT SELECT ON shop.* TO 'edapp'@'%';
GRANT SELECT ON nosuchdb.* TO 'app'@'%';
CREATE TABLE bulk.items (id INT PRIMARY KEY, name VARCHAR(40) NOT NULL);
INSERT INTO bulk.items VALUES (1, 'widget'), (7, 'gadget');
CREATE PROCEDURE shop.item_count() SELECT COUNT(*) AS n FROM shop.items;
EOF
SERVER_VERSION=$(admin -N -e 'SELECT VERSION()')
log "mariadbd $SERVER_VERSION on $IP:$PORT; $(mariadb --no-defaults --version)"

# status_counters FILE: the server's Com_% counters and Connections, one
# "name value" a line, sorted, read over the socket (the SHOW counts itself:
# Com_show_status, and its connection: Connections).
status_counters() {
	admin -N -e "SHOW GLOBAL STATUS WHERE Variable_name LIKE 'Com\\_%' OR Variable_name = 'Connections'" |
		sort >"$1"
}

# capture_start PCAP [BUFFER-KiB=65536] / capture_stop NAME: tcpdump on lo
# for the server's address and port; the stop checks that it dropped
# nothing.
capture_start() {
	tcpdump_start "$WORK/logs/tcpdump.err" -i lo -B "${2:-65536}" -w "$1" "host $IP and tcp port $PORT" ||
		die "tcpdump did not start: $(cat "$WORK/logs/tcpdump.err")"
}
capture_stop() {
	tcpdump_stop 0.3
	grep -qE '^0 packets dropped by kernel' "$WORK/logs/tcpdump.err" ||
		die "$1: tcpdump dropped packets: $(cat "$WORK/logs/tcpdump.err")"
	local n
	n=$(sed -n 's/^\([0-9]*\) packets\? captured$/\1/p' "$WORK/logs/tcpdump.err")
	printf '    %s.pcap: %s packets\n' "$1" "$n" >&2
}

# tshark_ek PCAP: tshark's reading of a capture, one JSON object a packet.
tshark_ek() {
	tshark -r "$1" -d "tcp.port==$PORT,mysql" -Y mysql -T ek 2>"$WORK/logs/tshark.err" | grep -v '^{"index"'
}

###############################################################################
# --bulk
###############################################################################

if [[ -n $bulk ]]; then
	rm -f "$out" "$out.json"
	query="SELECT id, name FROM items WHERE id = 7"
	status_counters "$WORK/before"
	# A 256 MiB buffer, and mysqlslap and the server niced: on two cores,
	# eight clients outrun tcpdump otherwise.
	capture_start "$out" 262144
	renice -n 10 -p "$MARIADB_PID" >/dev/null
	nice -n 10 mysqlslap --no-defaults -h $IP -P $PORT --protocol=tcp -u app --password="$APP_PASS" \
		--create-schema=bulk --query="$query" --number-of-queries="$queries" \
		--concurrency="$clients" --iterations=1 >"$WORK/logs/mysqlslap.log" 2>&1 || die "mysqlslap failed"
	capture_stop bulk
	status_counters "$WORK/after"
	sed 's/^/    /' "$WORK/logs/mysqlslap.log" >&2
	per=$(sed -n 's/^[[:space:]]*Average number of queries per client: \([0-9]*\)$/\1/p' "$WORK/logs/mysqlslap.log")
	[[ -n $per ]] || die "mysqlslap did not say how many queries each client ran"
	sent=$((per * clients))
	((sent == queries / clients * clients)) || die "mysqlslap ran $per queries per client, want $((queries / clients))"
	selects=$(join "$WORK/before" "$WORK/after" | awk '$1 == "Com_select" { print $3 - $2 }')
	((selects == sent)) || die "the server counted $selects SELECTs, mysqlslap says $sent"
	got=$(tshark -r "$out" -d "tcp.port==$PORT,mysql" -Y "mysql.command == 3" -T fields -e mysql.query 2>/dev/null |
		grep -cxF "$query" || true)
	((got == sent)) || die "tshark reads $got COM_QUERY '$query', want $sent"
	conns=$(tshark -r "$out" -Y 'tcp.flags.syn == 1 && tcp.flags.ack == 0' 2>/dev/null | wc -l)
	jq -n --arg query "$query" --argjson queries "$sent" --argjson clients "$clients" --argjson conns "$conns" \
		--arg version "$SERVER_VERSION" '
		{recorded_by: "scripts/record-mysql.sh --bulk", server: {software: "MariaDB", version: $version, ip: "'$IP'", port: '$PORT'},
		 client: "mysqlslap", query: $query, queries: $queries, clients: $clients,
		 connections: $conns, note: "each client sends queries/clients COM_QUERY on its own connection; one more connection (mysqlslap'"'"'s own) logs in and quits"}' >"$out.json"
	chmod 644 "$out" "$out.json"
	log "$out: $(stat -c %s "$out") bytes, $sent queries on $clients clients ($conns connections); counts in $out.json"
	exit 0
fi

###############################################################################
# Scenarios
#
# The plan of each scenario is a file of JSON lines in the shape
# test/mysqlapps/prepared prints: a line per connection opened
#   {"conn":N,"event":"connect","client":…,"user":…,"database":…,"status":"ok"|"error","error"?:…}
# and a line per command sent, in order
#   {"conn":N,"command":"COM_…","query"?:…,"schema"?:…,"status":"ok"|"error"|"sent",
#    "results"?:[…],"error"?:{"code":…,"sqlstate":…,"message":…}}
# For the mariadb CLI the script writes it, each statement with the outcome
# it expects, and checks the CLI's own report (mariadb -vvv --force: a
# block per statement with its row counts, errors on stderr) against it.
###############################################################################

REC=$WORK/rec
SCN=
CONN=0 # the scenario's connections so far

# scenario NAME DESCRIPTION
scenario() {
	SCN=$1
	CONN=0
	log "$SCN: $2"
	printf '%s' "$2" >"$WORK/plan/$SCN.description"
	printf '%s\n' "$SCN" >>"$WORK/plan/order"
	: >"$WORK/plan/$SCN.jsonl"
	capture_start "$REC/$SCN.pcap"
}

# plan JSON: one line of the scenario's plan.
plan() {
	jq -c . <<<"$1" >>"$WORK/plan/$SCN.jsonl"
}

# The statements of the next CLI connection, written by q and use.
SQL=$WORK/sql/next.sql
: >"$SQL"
EXPECT=$WORK/sql/expect # one line per statement block: "rs:ROWS ok:N …" (errors apart)
: >"$EXPECT"
ERRORS=$WORK/sql/errors # the errors expected, in order: "CODE SQLSTATE"
: >"$ERRORS"
PENDING=$WORK/sql/pending.jsonl # the commands' plan lines, until the connection has run
: >"$PENDING"

# results TOKEN...: the JSON of a command's results and error from tokens
# rs:COLUMNSxROWS (a result set), ok:AFFECTED (an OK), err:CODE:SQLSTATE.
results() {
	local t res='[]' err=null
	for t in "$@"; do
		case $t in
		rs:*x*)
			t=${t#rs:}
			res=$(jq -c --argjson c "${t%x*}" --argjson r "${t#*x}" '. + [{type: "resultset", columns: $c, rows: $r}]' <<<"$res")
			;;
		ok:*) res=$(jq -c --argjson n "${t#ok:}" '. + [{type: "ok", affected_rows: $n}]' <<<"$res") ;;
		err:*:*)
			t=${t#err:}
			err=$(jq -nc --argjson code "${t%%:*}" --arg state "${t#*:}" '{code: $code, sqlstate: $state}')
			;;
		*) die "results: $t" ;;
		esac
	done
	jq -nc --argjson res "$res" --argjson err "$err" '
		{status: (if $err then "error" else "ok" end)}
		+ (if $res != [] then {results: $res} else {} end) + (if $err then {error: $err} else {} end)'
}

# q SQL OUTCOME...: a statement for the next CLI connection (COM_QUERY) and
# what it must get: tokens for results (see results). A statement holding a
# ";" is sent whole (DELIMITER //): a multi-statement query.
q() {
	local sql=$1
	shift
	if [[ $sql == *';'* ]]; then
		printf 'DELIMITER //\n%s//\nDELIMITER ;\n' "$sql" >>"$SQL"
	else
		printf '%s;\n' "$sql" >>"$SQL"
	fi
	local t block=()
	for t in "$@"; do
		case $t in
		rs:*x*) block+=("rs:${t#*x}") ;;
		ok:*) block+=("$t") ;;
		err:*:*)
			t=${t#err:}
			printf '%s %s\n' "${t%%:*}" "${t#*:}" >>"$ERRORS"
			;;
		esac
	done
	printf '%s\n' "${block[*]}" >>"$EXPECT"
	jq -c --arg q "$sql" '{command: "COM_QUERY", query: $q} + .' <<<"$(results "$@")" >>"$PENDING"
}

# use DB: the CLI's USE: it asks SELECT DATABASE() first, then sends
# COM_INIT_DB. It prints nothing for it in batch mode.
use() {
	printf 'USE %s;\n' "$1" >>"$SQL"
	jq -nc '{command: "COM_QUERY", query: "SELECT DATABASE()", status: "ok", results: [{type: "resultset", columns: 1, rows: 1}]}' >>"$PENDING"
	jq -nc --arg db "$1" '{command: "COM_INIT_DB", schema: $db, status: "ok", results: [{type: "ok", affected_rows: 0}]}' >>"$PENDING"
}

# cli_blocks FILE: mariadb -vvv's output as one line per statement block,
# its results: "rs:ROWS" per result set, "ok:AFFECTED" per OK, nothing for
# an error (on stderr).
cli_blocks() {
	awk '
		/^--------------$/ { sep++; if (sep % 2 == 1) { if (n++) print line; line = "" } next }
		sep % 2 == 1 { next }
		/^[0-9]+ rows? in set/ { line = line (line == "" ? "" : " ") "rs:" $1; next }
		/^Empty set/ { line = line (line == "" ? "" : " ") "rs:0"; next }
		/^Query OK, [0-9]+ rows? affected/ { line = line (line == "" ? "" : " ") "ok:" $3; next }
		END { if (n) print line }
	' "$1"
}

# cli USER PASSWORD DB [LOGIN-ERROR CODE:SQLSTATE]: run the mariadb CLI on
# one new connection with the statements q and use wrote, and check what it
# says against them. With a login error wanted, the login must fail so (no
# statement is sent, and no COM_QUIT: the server closes the connection).
cli() {
	local user=$1 pass=$2 db=$3 want=${4:-}
	CONN=$((CONN + 1))
	local rc=0
	mariadb --no-defaults -h $IP -P $PORT --protocol=tcp -u "$user" --password="$pass" ${db:+"$db"} \
		--force -vvv <"$SQL" >"$WORK/logs/cli.out" 2>"$WORK/logs/cli.err" || rc=$?
	if [[ -n $want ]]; then
		((rc != 0)) || die "$SCN: $user's login succeeded"
		local code=${want%%:*} state=${want#*:} msg
		msg=$(sed -n "s/^ERROR $code ($state): //p" "$WORK/logs/cli.err")
		[[ -n $msg ]] || die "$SCN: $user's login: $(cat "$WORK/logs/cli.err"), want ERROR $code ($state)"
		printf '    login refused: ERROR %s (%s): %s\n' "$code" "$state" "$msg" >&2
		plan "$(jq -nc --argjson conn $CONN --arg user "$user" --arg db "$db" --argjson code "$code" \
			--arg state "$state" --arg msg "$msg" '
			{conn: $conn, event: "connect", client: "mariadb", user: $user} + (if $db != "" then {database: $db} else {} end)
			+ {status: "error", error: {code: $code, sqlstate: $state, message: $msg}}')"
	else
		# --force: the CLI goes on after an error (and, reading its
		# standard input, exits 0 all the same): its errors are checked
		# on its stderr below.
		((rc == 0)) || die "$SCN: mariadb exited $rc: $(cat "$WORK/logs/cli.err")"
		local got
		got=$(cli_blocks "$WORK/logs/cli.out")
		[[ $got == "$(cat "$EXPECT")" ]] ||
			die "$SCN: the CLI's results per statement:"$'\n'"$got"$'\n'"want:"$'\n'"$(cat "$EXPECT")"
		got=$(sed -n 's/^ERROR \([0-9]*\) (\([0-9A-Z]*\)) at line [0-9]*: .*/\1 \2/p' "$WORK/logs/cli.err")
		[[ $got == "$(cat "$ERRORS")" ]] ||
			die "$SCN: the CLI's errors: $(cat "$WORK/logs/cli.err"); want $(cat "$ERRORS")"
		plan "$(jq -nc --argjson conn $CONN --arg user "$user" --arg db "$db" '
			{conn: $conn, event: "connect", client: "mariadb", user: $user} + (if $db != "" then {database: $db} else {} end) + {status: "ok"}')"
		# The errors' messages, from the CLI, in order.
		local i=0 line msgs
		msgs=$(sed -n 's/^ERROR [0-9]* ([0-9A-Z]*) at line [0-9]*: //p' "$WORK/logs/cli.err" | jq -R . | jq -sc .)
		while IFS= read -r line; do
			if [[ $(jq -r .status <<<"$line") == error ]]; then
				line=$(jq -c --argjson m "$msgs" --argjson i $i '.error.message = $m[$i]' <<<"$line")
				i=$((i + 1))
			fi
			plan "$(jq -c --argjson conn $CONN '{conn: $conn} + .' <<<"$line")"
		done <"$PENDING"
		plan "{\"conn\":$CONN,\"command\":\"COM_QUIT\",\"status\":\"sent\"}"
		printf '    mariadb: %s statements, %s errors\n' "$(wc -l <"$EXPECT")" "$(wc -l <"$ERRORS")" >&2
	fi
	: >"$SQL"
	: >"$EXPECT"
	: >"$ERRORS"
	: >"$PENDING"
}

# end_scenario: stop the capture and check tshark's reading of it against
# the plan: every connection's login and commands, in order.
end_scenario() {
	capture_stop "$SCN"
	tshark_ek "$REC/$SCN.pcap" | jq -s -f "$WORK/tshark.jq" >"$WORK/plan/$SCN.tshark.json" ||
		die "$SCN: reading the capture with tshark failed: $(cat "$WORK/logs/tshark.err")"
	jq -s -f "$WORK/connections.jq" "$WORK/plan/$SCN.jsonl" >"$WORK/plan/$SCN.connections.json"
	local want got
	# tshark 4.0 reads MySQL's strings as ASCII: a byte over 127 is
	# U+FFFD, as many as the character's UTF-8 bytes.
	want=$(jq -S '
		def ascii: [explode[] | if . < 128 then [.] else [range([.] | implode | @uri | length / 3) | 65533] end]
			| add // [] | implode;
		map(del(.conn, .client) | .commands |= map(del(.args))) | walk(if type == "string" then ascii else . end)' \
		"$WORK/plan/$SCN.connections.json")
	got=$(jq -S 'map(del(.server_version))' "$WORK/plan/$SCN.tshark.json")
	if [[ $want != "$got" ]]; then
		diff <(printf '%s\n' "$want") <(printf '%s\n' "$got") | head -n 40 >&2
		die "$SCN: tshark's reading (>) differs from what the clients did (<)"
	fi
	printf '    tshark agrees: %s connections, %s commands\n' "$(jq length <<<"$got")" \
		"$(jq '[.[].commands[]] | length' <<<"$got")" >&2
	SCN=
}

# connections.jq: a plan's lines as connections, each with its commands.
# The plugin a login ends with is the user's: app's is the server's default
# (mysql_native_password, named in its greeting); edapp's, ed25519, makes
# the server send an AuthSwitchRequest to client_ed25519.
cat >"$WORK/connections.jq" <<'EOF'
. as $lines
| [$lines[] | select(.event == "connect")]
| map(. as $c
	| $c
	+ (if $c.user == "edapp" then {auth_plugin: "client_ed25519", auth_switch: true}
	   else {auth_plugin: "mysql_native_password", auth_switch: false} end)
	+ {commands: [$lines[] | select(.event == null and .conn == $c.conn) | del(.conn)]}
	| del(.event))
EOF

# tshark.jq: tshark's reading of a capture (-T ek, slurped) as the same
# connections. Each packet's mysql layer is one object per MySQL packet it
# holds (an array when there are several). COM_STMT_EXECUTE and
# COM_STMT_CLOSE carry the statement's ID only: the query is the one its
# COM_STMT_PREPARE answer gave that ID to.
cat >"$WORK/tshark.jq" <<'EOF'
def cmdname:
  {"1": "COM_QUIT", "2": "COM_INIT_DB", "3": "COM_QUERY", "9": "COM_STATISTICS",
   "14": "COM_PING", "17": "COM_CHANGE_USER", "22": "COM_STMT_PREPARE",
   "23": "COM_STMT_EXECUTE", "24": "COM_STMT_SEND_LONG_DATA", "25": "COM_STMT_CLOSE",
   "26": "COM_STMT_RESET", "27": "COM_SET_OPTION", "28": "COM_STMT_FETCH",
   "31": "COM_RESET_CONNECTION"}[.] // ("COM_" + .);
def num: if . == null then null else tonumber end;
def lastcmd(f): .commands[-1] |= f;
def err($p): {code: ($p.mysql_mysql_error_code | num), sqlstate: $p.mysql_mysql_sqlstate,
              message: $p.mysql_mysql_error_message};
def step($p):
  if $p | has("mysql_mysql_server_greeting") then
    .server_version = $p.mysql_mysql_version
  elif $p | has("mysql_mysql_login_request") then
    .user = $p.mysql_mysql_user
    | if $p.mysql_mysql_schema != null then .database = $p.mysql_mysql_schema else . end
    | .auth_plugin = $p.mysql_mysql_client_auth_plugin | .auth_switch = false
  elif $p.mysql_mysql_auth_switch_request_name != null then
    .auth_plugin = $p.mysql_mysql_auth_switch_request_name | .auth_switch = true
  elif $p.mysql_mysql_auth_switch_response_data != null then .
  elif $p.mysql_mysql_command != null then
    ($p.mysql_mysql_command | cmdname) as $c
    | .commands += [{command: $c}
        + (if $p.mysql_mysql_query != null then {query: $p.mysql_mysql_query}
           elif $p.mysql_mysql_stmt_id != null then {query: .stmts[$p.mysql_mysql_stmt_id]}
           else {} end)
        + (if $c == "COM_INIT_DB" then {schema: $p.mysql_mysql_schema} else {} end)
        + {status: "sent"}]
  elif (.commands | length) == 0 then
    if $p.mysql_mysql_error_code != null then .status = "error" | .error = err($p)
    elif $p.mysql_mysql_response_code == "0x00" then .status = "ok"
    else . end
  elif $p.mysql_mysql_error_code != null then
    lastcmd(.status = "error" | .error = err($p))
  elif $p.mysql_mysql_stmt_id != null then
    .stmts[$p.mysql_mysql_stmt_id] = .commands[-1].query
    | lastcmd(.status = "ok" | .params = ($p.mysql_mysql_num_params | num)
              | .columns = ($p.mysql_mysql_num_fields | num))
  elif $p.mysql_mysql_num_fields != null then
    lastcmd(.status = "ok" | .results += [{type: "resultset", columns: ($p.mysql_mysql_num_fields | num), rows: 0}])
  elif $p.mysql_mysql_row_text != null or $p.mysql_mysql_row_nullbuffer != null then
    lastcmd(.results[-1].rows += 1)
  elif $p.mysql_mysql_response_code == "0x00" and $p.mysql_mysql_affected_rows != null then
    lastcmd(.status = "ok" | .results += [{type: "ok", affected_rows: ($p.mysql_mysql_affected_rows | num)}])
  else
    # EOF packets (0xfe; also the OK ending rows under CLIENT_DEPRECATE_EOF),
    # column and parameter definitions
    . end;
[.[] | .layers as $l
 | ($l.mysql // empty | if type == "array" then .[] else . end)
 | {s: ($l.tcp.tcp_tcp_stream | tonumber), p: .}]
| group_by(.s)
| map(reduce .[] as $x ({status: "none", commands: [], stmts: {}}; step($x.p)) | del(.stmts))
EOF

###############################################################################
# The scenarios' clients
###############################################################################

log "building test/mysqlapps/prepared"
(cd "$ROOT/test/mysqlapps" && go build -o "$WORK/bin/prepared" ./prepared) >"$WORK/logs/go-build.log" 2>&1 ||
	die "go build failed: $(cat "$WORK/logs/go-build.log")"

scenario queries "the mariadb CLI, one connection as app to shop: DDL, DML, result sets, errors, USE, multi-statement queries, a procedure's CALL"
q "CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(40) NOT NULL, qty INT NOT NULL)" ok:0
q "INSERT INTO items VALUES (1, 'widget', 3), (2, 'gadget', 5), (3, 'gizmo', 0)" ok:3
q "SELECT id, name, qty FROM items ORDER BY id" rs:3x3
q "UPDATE items SET qty = qty + 1 WHERE id = 2" ok:1
q "DELETE FROM items WHERE qty = 0" ok:1
q "SELECT id, name FROM items WHERE id > 100" rs:2x0
q "SELECT NULL AS nothing, 'a,b' AS comma, 2.5 AS num, 'héllo' AS utf8" rs:4x1
q "SELECT * FROM nosuchtable" err:1146:42S02
q "SELEC 1" err:1064:42000
q "INSERT INTO items VALUES (1, 'again', 1)" err:1062:23000
use other
q "SELECT 1 AS a; SELECT 2 AS b, 3 AS c" rs:1x1 rs:2x1
q "SELECT 4 AS d; SELECT * FROM nosuchtable" rs:1x1 err:1146:42S02
q "CALL shop.item_count()" rs:1x1 ok:0
cli app "$APP_PASS" shop
end_scenario

scenario prepared "test/mysqlapps/prepared (go-sql-driver/mysql): server-side prepared statements, an execute failing (1062), a prepare failing (1146), COM_PING on a second connection"
"$WORK/bin/prepared" -addr "$IP:$PORT" -user app -password "$APP_PASS" -db shop \
	>"$WORK/logs/prepared.jsonl" 2>"$WORK/logs/prepared.err" ||
	die "$SCN: prepared failed: $(cat "$WORK/logs/prepared.err")"
while IFS= read -r line; do
	plan "$(jq -c 'if .event == "connect" then {conn, event, client: "go-sql-driver/mysql"} + del(.conn, .event) else . end' <<<"$line")"
done <"$WORK/logs/prepared.jsonl"
printf '    prepared: %s commands on %s connections\n' "$(jq -s 'map(select(.command)) | length' "$WORK/logs/prepared.jsonl")" \
	"$(jq -s 'map(select(.event)) | length' "$WORK/logs/prepared.jsonl")" >&2
end_scenario

# A database that does not exist is 1049 only for a user who may use it
# (app is granted nosuchdb.*); to one it may not (other users' 'mysql'),
# it is 1044, whether it exists or not.
scenario auth-fail "logins refused: app with a wrong password (1045), to a database that does not exist (1049), to one it may not use (1044)"
q "SELECT 1" rs:1x1
cli app wrong-password shop 1045:28000
q "SELECT 1" rs:1x1
cli app "$APP_PASS" nosuchdb 1049:42000
q "SELECT 1" rs:1x1
cli app "$APP_PASS" mysql 1044:42000
end_scenario

scenario auth-ed25519 "edapp, authenticated by ed25519: the server switches the client to client_ed25519; accepted, then refused (a wrong password)"
q "SELECT CURRENT_USER() AS me" rs:1x1
cli edapp "$ED_PASS" shop
q "SELECT 1" rs:1x1
cli edapp wrong-password shop 1045:28000
end_scenario

###############################################################################
# load: mysqlslap. Its queries are generated (random values) and its
# connections many: the manifest gives counts, checked three ways: what
# mysqlslap says it ran, the server's status counters (read over the socket
# before and after: the statements' Com_* counters, COM_INIT_DB as
# Com_change_db; Connections less the one reading them), and tshark.
###############################################################################

SCN=load
log "$SCN: mysqlslap --auto-generate-sql, 4 clients, 2 iterations, 200 queries each"
printf '%s' "mysqlslap --auto-generate-sql (mixed INSERT and SELECT load on a generated table): 4 clients, 2 iterations, 200 queries an iteration; its own connection creates and drops the schema mysqlslap" >"$WORK/plan/$SCN.description"
printf '%s\n' "$SCN" >>"$WORK/plan/order"
SLAP=(--concurrency=4 --iterations=2 --number-of-queries=200 --auto-generate-sql)
status_counters "$WORK/before"
capture_start "$REC/$SCN.pcap"
mysqlslap --no-defaults -h $IP -P $PORT --protocol=tcp -u app --password="$APP_PASS" "${SLAP[@]}" \
	>"$WORK/logs/mysqlslap.log" 2>&1 || die "$SCN: mysqlslap failed: $(cat "$WORK/logs/mysqlslap.log")"
capture_stop "$SCN"
status_counters "$WORK/after"
sed 's/^/    /' "$WORK/logs/mysqlslap.log" >&2
per=$(sed -n 's/^[[:space:]]*Average number of queries per client: \([0-9]*\)$/\1/p' "$WORK/logs/mysqlslap.log")
nclients=$(sed -n 's/^[[:space:]]*Number of clients running queries: \([0-9]*\)$/\1/p' "$WORK/logs/mysqlslap.log")
[[ -n $per && -n $nclients ]] || die "$SCN: mysqlslap's report lacks its counts"
# The counters that moved, less the reading's own (Com_show_status 1, and
# Connections 1: the second reading's).
join "$WORK/before" "$WORK/after" | awk '$3 != $2 { print $1, $3 - $2 }' |
	jq -Rn '[inputs | split(" ") | {(.[0]): (.[1] | tonumber)}] | add
		| .Com_show_status -= 1 | .Connections -= 1 | with_entries(select(.value != 0))' >"$WORK/plan/load.counters.json"
# tshark: commands by name, logins and their outcomes, COM_QUERY by
# statement (its first word, CREATE/DROP with the next).
tshark -r "$REC/$SCN.pcap" -d "tcp.port==$PORT,mysql" -Y 'mysql.command || mysql.login_request' \
	-T fields -e mysql.command -e mysql.query -e mysql.user 2>/dev/null >"$WORK/plan/load.tshark.tsv"
jq -Rn --slurpfile counters "$WORK/plan/load.counters.json" --argjson per "$per" --argjson clients "$nclients" '
	def cmdname: {"1": "COM_QUIT", "2": "COM_INIT_DB", "3": "COM_QUERY"}[.] // ("COM_" + .);
	[inputs | split("\t")] as $rows
	| $counters[0] as $c
	| {client: "mysqlslap", options: ["--concurrency=4", "--iterations=2", "--number-of-queries=200", "--auto-generate-sql"],
	   mysqlslap_report: {clients: $clients, queries_per_client: $per},
	   benchmark_queries: ($per * $clients * 2),
	   connections: $c.Connections,
	   commands: ([$rows[] | select(.[0] != "") | .[0] | cmdname] | group_by(.) | map({(.[0]): length}) | add),
	   statements: ([$rows[] | select(.[0] == "3") | .[1] | split(" ")
	                 | if .[0] == "CREATE" or .[0] == "DROP" then .[0] + " " + .[1] else .[0] end]
	                | group_by(.) | map({(.[0]): length}) | add),
	   server_counters: $c}' <"$WORK/plan/load.tshark.tsv" >"$WORK/plan/load.json"
# The three agree: COM_QUERY = the statements' counters, COM_INIT_DB =
# Com_change_db, a COM_QUIT and a login per connection, INSERT and SELECT
# as counted.
jq -e '
	.commands.COM_QUERY == ([.server_counters | to_entries[] | select(.key | startswith("Com_")) | select(.key != "Com_change_db") | .value] | add)
	and .commands.COM_INIT_DB == (.server_counters.Com_change_db // 0)
	and .commands.COM_QUIT == .connections
	and .statements.INSERT == .server_counters.Com_insert
	and .statements.SELECT == .server_counters.Com_select' "$WORK/plan/load.json" >/dev/null ||
	die "$SCN: tshark's counts and the server's differ: $(cat "$WORK/plan/load.json")"
logins=$(tshark -r "$REC/$SCN.pcap" -d "tcp.port==$PORT,mysql" -Y 'mysql.login_request' 2>/dev/null | wc -l)
oks=$(tshark_ek "$REC/$SCN.pcap" | jq -s -f "$WORK/tshark.jq" | jq '[.[] | select(.status == "ok")] | length')
((logins == $(jq .connections "$WORK/plan/load.json") && oks == logins)) ||
	die "$SCN: $logins logins, $oks accepted, for $(jq .connections "$WORK/plan/load.json") connections"
printf '    tshark agrees: %s connections, %s\n' "$logins" "$(jq -c .commands "$WORK/plan/load.json")" >&2

###############################################################################
# The manifest
#
# {"recorded_by": "scripts/record-mysql.sh",
#  "server": {"software": "MariaDB", "version": VERSION(), "ip", "port",
#             "greeting_version": what the greeting says ("5.5.5-" first)},
#  "clients": {"mariadb": …, "mysqlslap": …, "go-sql-driver/mysql": …},
#  "users": [{"user", "password", "plugin"}],
#  "scenarios": [{"name", "description", "pcap",
#     "connections": [{"conn": 1…, "client", "user", "database"?,
#        "auth_plugin": the plugin the login ended with, "auth_switch": the
#        server sent an AuthSwitchRequest, "status": "ok"|"error", "error"?,
#        "commands": [{"command": "COM_QUERY"…, "query"? (COM_QUERY and
#           COM_STMT_*: the statement's text), "schema"? (COM_INIT_DB),
#           "args"? (COM_STMT_EXECUTE), "status": "ok"|"error"|"sent" (no
#           answer: COM_STMT_CLOSE, COM_QUIT), "params"?, "columns"? (a
#           prepare's answer), "results"?: [{"type": "resultset",
#           "columns", "rows"} | {"type": "ok", "affected_rows"}],
#           "error"?: {"code", "sqlstate", "message"}}]}]
#     or, for load, "load": {counts}}]}
###############################################################################

greeting=$(jq -r '.[0].server_version' "$WORK/plan/queries.tshark.json")
driver=$(cd "$ROOT/test/mysqlapps" && go list -m -f '{{.Version}}' github.com/go-sql-driver/mysql)
scenarios=()
while read -r scn; do
	if [[ $scn == load ]]; then
		scenarios+=("$(jq -c --arg name "$scn" --arg desc "$(cat "$WORK/plan/$scn.description")" \
			'{name: $name, description: $desc, pcap: ($name + ".pcap"), load: .}' "$WORK/plan/load.json")")
	else
		scenarios+=("$(jq -c --arg name "$scn" --arg desc "$(cat "$WORK/plan/$scn.description")" \
			'{name: $name, description: $desc, pcap: ($name + ".pcap"), connections: .}' "$WORK/plan/$scn.connections.json")")
	fi
done <"$WORK/plan/order"
printf '%s\n' "${scenarios[@]}" | jq -s --arg version "$SERVER_VERSION" --arg greeting "$greeting" \
	--arg mariadb "$(mariadb --no-defaults --version)" --arg slap "$(mysqlslap --no-defaults --version)" \
	--arg driver "$driver" --arg app "$APP_PASS" --arg ed "$ED_PASS" '
	{recorded_by: "scripts/record-mysql.sh",
	 server: {software: "MariaDB", version: $version, greeting_version: $greeting, ip: "'$IP'", port: '$PORT'},
	 clients: {mariadb: $mariadb, mysqlslap: $slap, "go-sql-driver/mysql": $driver},
	 users: [{user: "app", password: $app, plugin: "mysql_native_password"},
	         {user: "edapp", password: $ed, plugin: "ed25519"}],
	 scenarios: .}' >"$REC/manifest.json"
chmod 644 "$REC"/*

mkdir -p "$out"
for f in "$REC"/*; do
	mv -f "$f" "$out/"
done
log "$out: $(jq '.scenarios | length' "$out/manifest.json") scenarios"
