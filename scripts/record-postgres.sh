#!/usr/bin/env bash
# record-postgres.sh — record the PostgreSQL protocol (v3) from a real
# PostgreSQL 15 server and real clients on loopback, with a manifest of what
# the clients sent, for the PostgreSQL dissector's recorded tests and its
# benchmark.
#
# Usage:
#   scripts/record-postgres.sh OUTDIR
#       one capture per scenario, OUTDIR/NAME.pcap, and OUTDIR/manifest.json
#       saying what each holds: per TCP connection, in the order the
#       connections were opened, its client, server port, user, database,
#       application_name, authentication method (scram-sha-256, md5,
#       password: cleartext), ssl_request ("S" or "N": the server's answer
#       to the client's SSLRequest; "" when it sent none), encrypted (TLS:
#       nothing after the handshake can be read), the NotificationResponse
#       and NoticeResponse messages it got, and what it sent, in order, as
#       {kind, sql, status, auto?}:
#         kind    STARTUP (the startup message: its status is the
#                 authentication's and the connection's), QUERY (a simple
#                 query message: sql is its exact text, statements and
#                 semicolons included), EXECUTE (an extended-protocol
#                 Execute: sql is the text of the Parse its portal came from)
#         status  "OK", or the SQLSTATE of the first ErrorResponse it got
#                 ("42P01", "28P01"...)
#         auto    true: the client sent it on its own (pgbench's queries
#                 for the scale and partitions before a run)
#       and per scenario: counts (messages by kind, errors by SQLSTATE,
#       notifications, notices, connections) and secrets (the passwords the
#       clients used, the wrong one too: a dissector must never show them;
#       all of them again at the top).
#   scripts/record-postgres.sh --bulk OUT.pcap [TRANSACTIONS=20000] [CLIENTS=8]
#       pgbench -S -M extended -c CLIENTS -t TRANSACTIONS/CLIENTS (-i before
#       it, over the unix socket: not captured); pgbench's summary on stderr,
#       and OUT.pcap.json: {"transactions": n, "clients": c, "executes": n,
#       "statement": ..., "setup_queries": 2, "connections": c + 1}.
#
# Servers: PostgreSQL 15 (/usr/lib/postgresql/15/bin) on 127.0.0.42, run as
# the postgres user from clusters initdb'd into a temporary directory (owned
# by postgres; unix sockets there too): port 15432 with ssl=on (a
# self-signed certificate made with openssl), and port 15433 with ssl=off
# for the ssl scenario's sslmode=prefer. password_encryption=scram-sha-256;
# pg_hba: the unix socket trusted (the script's own setup, never captured),
# then for TCP from 127.0.0.0/8 (clients connecting to 127.0.0.42 come from
# 127.0.0.1): user legacy md5 (its password stored as md5), user plain
# password (cleartext on the wire), everyone else scram-sha-256. User app
# (password pg-s3cret) owns database shop. Clients: psql -X (scripts of
# one statement a line, each followed by \echo of :SQLSTATE so that every
# statement's status is read from psql itself) and pgbench, with
# PGGSSENCMODE=disable and, unless a scenario says otherwise,
# PGSSLMODE=disable (libpq's default, prefer, would encrypt everything on
# the ssl=on server). Every scenario is captured alone by tcpdump on lo, host
# 127.0.0.42 and the scenario's ports.
#
# What the manifest says comes from what the script sent and what the
# clients printed; the text of pgbench's own setup queries from the
# server's log (log_statement=all). It is then checked against tshark's
# reading of each capture (types, queries, Parse/Bind/Execute names, error
# codes, notifications, notices, the SSLRequest's answer byte): a
# disagreement fails the run. A failed run leaves nothing in OUTDIR (or no
# OUT.pcap). Needs root (tcpdump; the servers run as postgres) and
# postgresql-15, openssl, tcpdump, tshark, jq, ss and setpriv
# (scripts/install-deps.sh). Everything started is stopped on exit.
set -euo pipefail

IP=127.0.0.42
PORT=15432       # ssl=on; every scenario
PORT_NOSSL=15433 # ssl=off; the ssl scenario's sslmode=prefer answered N
PG_BIN=/usr/lib/postgresql/15/bin
APP_PASS=pg-s3cret
MD5_PASS=pg-md5-s3cret
PLAIN_PASS=pg-plain-s3cret
WRONG_PASS=pg-wr0ng-pass

die() {
	printf 'record-postgres: %s\n' "$*" >&2
	exit 1
}
log() { printf '==> %s\n' "$*" >&2; }

bulk=
if [[ ${1:-} == --bulk ]]; then
	bulk=1
	shift
	[[ $# -ge 1 && $# -le 3 ]] || die "usage: record-postgres.sh --bulk OUT.pcap [TRANSACTIONS=20000] [CLIENTS=8]"
	out=$(realpath -m "$1")
	transactions=${2:-20000}
	clients=${3:-8}
	[[ $transactions =~ ^[1-9][0-9]*$ && $clients =~ ^[1-9][0-9]*$ ]] || die "TRANSACTIONS and CLIENTS are positive numbers"
	((transactions % clients == 0)) || die "TRANSACTIONS ($transactions) is not a multiple of CLIENTS ($clients)"
else
	[[ $# -eq 1 && $1 != -* ]] || die "usage: record-postgres.sh OUTDIR | record-postgres.sh --bulk OUT.pcap [TRANSACTIONS] [CLIENTS]"
	out=$(realpath -m "$1")
fi
[[ $(id -u) -eq 0 ]] || die "needs root (tcpdump captures on lo; the servers run as postgres)"
PATH=$PATH:/usr/sbin
for tool in flock openssl tcpdump tshark jq ss setpriv runuser; do
	command -v "$tool" >/dev/null || die "$tool is missing (sudo bash scripts/install-deps.sh)"
done
for tool in initdb postgres psql pgbench; do
	[[ -x $PG_BIN/$tool ]] || die "$PG_BIN/$tool is missing (sudo bash scripts/install-deps.sh)"
done
id postgres >/dev/null 2>&1 || die "no postgres user (the postgresql package creates it)"
PSQL=$PG_BIN/psql
PGBENCH=$PG_BIN/pgbench

# One run at a time (from any checkout): a second waits for the first's
# servers, ports and captures to be gone, up to 10 minutes.
mkdir -p /run/lock
exec 9>/run/lock/wirescope-record-postgres.lock
flock -w 600 9 || die "another record-postgres.sh is still running (/run/lock/wirescope-record-postgres.lock)"

# shellcheck source=scripts/lib/proc.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/proc.sh"

WORK=$(mktemp -d /tmp/wirescope-pg.XXXXXX)
declare -A SERVER_PID=() # port → postmaster's pid
cleanup() {
	local rc=$?
	set +e
	tcpdump_stop
	local port
	for port in "${!SERVER_PID[@]}"; do
		stop_postgres "$port"
	done
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

# The clients' defaults; no ~/.pgpass, service file or PGHOST from outside.
unset PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGPASSWORD PGPASSFILE PGSERVICE PGSERVICEFILE \
	PGAPPNAME PGOPTIONS PGSSLMODE PGREQUIRESSL PGSSLROOTCERT PGCONNECT_TIMEOUT PSQLRC
export PGGSSENCMODE=disable PGCONNECT_TIMEOUT=10 PGPASSFILE=$WORK/pgpass PSQLRC=/dev/null
install -m 0600 /dev/null "$PGPASSFILE" # empty: libpq warns of /dev/null

chown postgres: "$WORK"
mkdir -p "$WORK"/{logs,rec,plan}
for port in $PORT $PORT_NOSSL; do
	if ss -H -ltn "( sport = :$port )" | awk '{print $4}' | grep -Eq "^($IP|0\.0\.0\.0|\*|\[::\]):$port\$"; then
		die "$IP:$port is already in use"
	fi
done

###############################################################################
# Servers
###############################################################################

# start_postgres PORT on|off [LOG_STATEMENT]: initdb a cluster into
# $WORK/pg-PORT as postgres, configure it (see the header), start it in the
# background (setpriv: $! is the postmaster), create the roles and the
# database over its unix socket.
start_postgres() {
	local port=$1 ssl=$2 logstmt=${3:-all} dir=$WORK/pg-$1
	mkdir -p "$dir/sock"
	chown -R postgres: "$dir"
	runuser -u postgres -- "$PG_BIN/initdb" -D "$dir/data" -U postgres -A trust -N -E UTF8 --locale=C \
		--no-instructions >"$WORK/logs/initdb-$port.log" 2>&1 || die "initdb failed: $(tail -n 5 "$WORK/logs/initdb-$port.log")"
	if [[ $ssl == on ]]; then
		openssl req -x509 -newkey rsa:2048 -nodes -keyout "$dir/server.key" -out "$dir/server.crt" -days 30 \
			-subj "/CN=$IP" -addext "subjectAltName=IP:$IP" 2>/dev/null || die "making the certificate failed"
		chown postgres: "$dir/server.key" "$dir/server.crt"
		chmod 600 "$dir/server.key"
	fi
	cat >"$dir/data/pg_hba.conf" <<EOF
local all all trust
host all legacy 127.0.0.0/8 md5
host all plain 127.0.0.0/8 password
host all all 127.0.0.0/8 scram-sha-256
EOF
	cat >>"$dir/data/postgresql.conf" <<EOF
# record-postgres.sh
listen_addresses = '$IP'
port = $port
unix_socket_directories = '$dir/sock'
password_encryption = scram-sha-256
ssl = $ssl
ssl_cert_file = '$dir/server.crt'
ssl_key_file = '$dir/server.key'
fsync = off
synchronous_commit = off
full_page_writes = off
logging_collector = off
log_connections = on
log_disconnections = on
log_statement = '$logstmt'
log_line_prefix = '%m [%p] %a %e '
EOF
	setpriv --reuid=postgres --regid=postgres --init-groups -- "$PG_BIN/postgres" -D "$dir/data" \
		>"$WORK/logs/postgres-$port.log" 2>&1 &
	SERVER_PID[$port]=$!
	for _ in $(seq 100); do
		if admin "$port" -c 'SELECT 1' >/dev/null 2>&1; then
			ss -H -ltn "( sport = :$port )" | grep -q "$IP:$port" || die "postgres does not listen on $IP:$port"
			admin "$port" -v ON_ERROR_STOP=1 >/dev/null <<EOF || die "creating the roles failed"
CREATE ROLE app LOGIN PASSWORD '$APP_PASS';
CREATE DATABASE shop OWNER app;
SET password_encryption = md5;
CREATE ROLE legacy LOGIN PASSWORD '$MD5_PASS';
RESET password_encryption;
CREATE ROLE plain LOGIN PASSWORD '$PLAIN_PASS';
EOF
			return 0
		fi
		kill -0 "${SERVER_PID[$port]}" 2>/dev/null || die "postgres on $port exited at start"
		sleep 0.1
	done
	die "postgres on $port does not answer"
}

# admin PORT [PSQL ARGS...]: psql as postgres over the unix socket (never
# captured).
admin() {
	local port=$1
	shift
	"$PSQL" -X -q -h "$WORK/pg-$port/sock" -p "$port" -U postgres -d postgres "$@"
}

# stop_postgres PORT: a fast shutdown (SIGINT to the postmaster), KILL
# after 10 s.
stop_postgres() {
	local pid=${SERVER_PID[$1]:-}
	[[ -n $pid ]] || return 0
	if kill -0 "$pid" 2>/dev/null; then
		kill -INT "$pid" 2>/dev/null || true
		for _ in $(seq 100); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
	fi
	wait "$pid" 2>/dev/null || true
	unset "SERVER_PID[$1]"
}

if [[ -n $bulk ]]; then
	start_postgres $PORT off none
else
	start_postgres $PORT on
	start_postgres $PORT_NOSSL off
fi
PG_VERSION=$("$PG_BIN/postgres" --version | awk '{print $3}')
if [[ -n $bulk ]]; then
	log "PostgreSQL $PG_VERSION on $IP:$PORT (ssl=off)"
else
	log "PostgreSQL $PG_VERSION on $IP:$PORT (ssl=on) and $IP:$PORT_NOSSL (ssl=off)"
fi
PGHOST=$WORK/pg-$PORT/sock PGPORT=$PORT "$PGBENCH" -i -q -U app shop >"$WORK/logs/pgbench-init.log" 2>&1 ||
	die "pgbench -i failed: $(tail -n 5 "$WORK/logs/pgbench-init.log")"

# pgbench_sql BUILTIN|FILE: the statements of a pgbench script as pgbench
# sends them with -M extended or prepared, one a line: each :variable
# replaced by $1, $2... in the order they occur (pgbench numbers every
# occurrence), the \meta-commands and comments left out.
pgbench_sql() {
	local src
	if [[ $1 == /* ]]; then
		src=$(cat "$1")
	else
		src=$("$PGBENCH" --show-script="$1" 2>&1) || die "pgbench --show-script=$1 failed"
	fi
	awk '/^(\\|--)/ || NF == 0 { next }
		{ n = 0; out = ""
		  while (match($0, /:[A-Za-z_][A-Za-z0-9_]*/)) {
			out = out substr($0, 1, RSTART - 1) "$" (++n); $0 = substr($0, RSTART + RLENGTH) }
		  print out $0 }' <<<"$src"
}

###############################################################################
# --bulk
###############################################################################

if [[ -n $bulk ]]; then
	rm -f "$out" "$out.json"
	per_client=$((transactions / clients))
	statement=$(pgbench_sql select-only)
	[[ $(wc -l <<<"$statement") -eq 1 ]] || die "select-only has more than one statement: $statement"
	# -s 1024 over proc.sh's -s 0: a slot of the ring per packet is then
	# about 1 KiB, not lo's 64 KiB, and 128 MiB hold seconds of this
	# traffic, not milliseconds; every packet here is smaller (checked
	# below). A run whose capture still lost packets (a busy machine) is
	# made again, up to 3 times.
	for attempt in 1 2 3; do
		rm -f "$out" "$out.json"
		tcpdump_start "$WORK/logs/tcpdump.err" -i lo -B 131072 -s 1024 -w "$out" "host $IP and tcp port $PORT" ||
			die "tcpdump did not start: $(cat "$WORK/logs/tcpdump.err")"
		PGPASSWORD=$APP_PASS PGSSLMODE=disable "$PGBENCH" -h $IP -p $PORT -U app -n -S -M extended \
			-c "$clients" -j 2 -t "$per_client" shop >"$WORK/logs/pgbench.out" 2>&1 ||
			die "pgbench failed: $(cat "$WORK/logs/pgbench.out")"
		tcpdump_stop 0.5
		grep -qE '^0 packets dropped by kernel' "$WORK/logs/tcpdump.err" && break
		((attempt < 3)) || die "tcpdump dropped packets in 3 runs: $(grep dropped "$WORK/logs/tcpdump.err")"
		log "run $attempt: tcpdump $(grep 'dropped by kernel' "$WORK/logs/tcpdump.err"): again"
	done
	truncated=$(tshark -r "$out" -Y 'frame.cap_len < frame.len' 2>/dev/null | wc -l)
	((truncated == 0)) || die "$truncated packets longer than tcpdump's -s 1024"
	grep -vE '^pgbench \(' "$WORK/logs/pgbench.out" >&2
	grep -qE "^number of transactions actually processed: $transactions/$transactions\$" "$WORK/logs/pgbench.out" ||
		die "pgbench did not process $transactions transactions"
	grep -qE '^number of failed transactions: 0 ' "$WORK/logs/pgbench.out" || die "pgbench had failed transactions"
	grep -E 'captured|dropped' "$WORK/logs/tcpdump.err" >&2
	grep -qE '^0 packets dropped by kernel' "$WORK/logs/tcpdump.err" || die "tcpdump dropped packets"
	# What tshark reads: connections (streams the client sent on), simple
	# queries (pgbench's own two), Executes of the statement.
	read -r conns queries executes other < <(tshark -r "$out" -d "tcp.port==$PORT,pgsql" -Y 'pgsql.frontend == 1' \
		-T fields -E separator=/t -e tcp.stream -e pgsql.type -e pgsql.query 2>/dev/null | awk -F'\t' -v stmt="$statement" '
		{ streams[$1] = 1; n = split($2, t, ",")
		  for (i = 1; i <= n; i++) if (t[i] == "Simple query") q++; else if (t[i] == "Execute") e++
		  if ($3 != "" && $3 != stmt && $2 !~ /Simple query/) bad++ }
		END { print length(streams), q + 0, e + 0, bad + 0 }')
	[[ $conns == $((clients + 1)) && $queries == 2 && $executes == "$transactions" && $other == 0 ]] ||
		die "tshark reads $conns connections, $queries simple queries, $executes Executes, $other other statements; want $((clients + 1)), 2, $transactions, 0"
	jq -n --argjson t "$transactions" --argjson c "$clients" --arg s "$statement" '
		{transactions: $t, clients: $c, executes: $t, statement: $s, mode: "extended",
		 setup_queries: 2, connections: ($c + 1)}' >"$out.json"
	chmod 644 "$out" "$out.json"
	log "$out: $(stat -c %s "$out") bytes, $transactions transactions on $clients connections; counts in $out.json"
	exit 0
fi

###############################################################################
# Scenarios
###############################################################################

REC=$WORK/rec # the scenarios' captures, moved to OUTDIR at the end
SCN=          # the scenario being recorded
SCN_PORTS=()
CONN=0 # connections the scenario's clients opened so far

# scenario NAME DESCRIPTION PORT...: start recording a scenario.
# tcpdump -B 65536: a 64 MiB ring (whole packets take 256 KiB slots with
# -s 0; with the default 2 MiB, a busy machine saw the kernel drop packets).
scenario() {
	SCN=$1
	local desc=$2
	shift 2
	SCN_PORTS=("$@")
	CONN=0
	log "$SCN: $desc"
	printf '%s' "$desc" >"$WORK/plan/$SCN.description"
	printf '%s\n' "${SCN_PORTS[@]}" >"$WORK/plan/$SCN.ports"
	printf '%s\n' "$SCN" >>"$WORK/plan/order"
	: >"$WORK/plan/$SCN.conns"
	: >"$WORK/plan/$SCN.msgs"
	: >"$WORK/plan/$SCN.secrets"
	local filter="host $IP and (tcp port ${SCN_PORTS[0]}" p
	for p in "${SCN_PORTS[@]:1}"; do
		filter+=" or tcp port $p"
	done
	tcpdump_start "$WORK/logs/tcpdump.err" -i lo -B 65536 -w "$REC/$SCN.pcap" "$filter)" ||
		die "tcpdump did not start: $(cat "$WORK/logs/tcpdump.err")"
}

# end_scenario: stop the capture, check it dropped nothing and that tshark
# reads in it what the manifest says.
end_scenario() {
	tcpdump_stop 0.3
	grep -qE '^0 packets dropped by kernel' "$WORK/logs/tcpdump.err" ||
		die "$SCN: tcpdump dropped packets: $(cat "$WORK/logs/tcpdump.err")"
	local n
	n=$(sed -n 's/^\([0-9]*\) packets\? captured$/\1/p' "$WORK/logs/tcpdump.err")
	tshark_check
	printf '    %s.pcap: %s packets, %s connections, %s messages (tshark agrees)\n' "$SCN" "$n" "$CONN" \
		"$(wc -l <"$WORK/plan/$SCN.msgs")" >&2
	SCN=
}

# tshark_check: what tshark reads in the scenario's capture, connection by
# connection (TCP streams, numbered in the order of their SYNs, as the
# manifest's connections), against the manifest: STARTUP, QUERY and EXECUTE
# with their SQL and the first error's SQLSTATE (an ErrorResponse is the
# last message's sent before it: the clients wait for an answer before
# sending more), then per connection the SSLRequest's answer (the server's
# first byte), notifications, notices. An encrypted connection shows its
# SSLRequest alone.
tshark_check() {
	local dp=() p
	for p in "${SCN_PORTS[@]}"; do
		dp+=(-d "tcp.port==$p,pgsql")
	done
	tshark -r "$REC/$SCN.pcap" "${dp[@]}" -T json --no-duplicate-keys -j "tcp pgsql" 2>"$WORK/logs/tshark.err" |
		jq -r --argjson ports "$(printf '%s\n' "${SCN_PORTS[@]}" | jq -s 'map(tostring)')" '
		def arr: if . == null then [] elif type == "array" then . else [.] end;
		def add_item($k; $sql): .items += [{kind: $k, sql: $sql, status: "OK"}];
		[.[] | ._source.layers | {s: (.tcp["tcp.stream"] | tonumber), server: (.tcp["tcp.srcport"] as $p | $ports | index($p) != null),
		                          payload: (.tcp["tcp.payload"] // ""), msgs: (.pgsql | arr)}]
		| group_by(.s)
		| map(reduce .[] as $f ({s: .[0].s, stmts: {}, portals: {}, items: [], notifications: 0, notices: 0,
		                         sslreq: false, ssl: "", syn: 0};
			(if .sslreq and .ssl == "" and $f.server and $f.payload != "" then
				.ssl = ({"53": "S", "4e": "N"}[$f.payload[0:2]] // ("?" + $f.payload[0:2])) else . end)
			| reduce $f.msgs[] as $m (.;
				$m["pgsql.type"] as $t
				| if $t == "SSL request" then .sslreq = true
				elif $t == "Startup message" then add_item("STARTUP"; "")
				elif $t == "Simple query" then add_item("QUERY"; $m["pgsql.query"])
				elif $t == "Parse" then .stmts[$m["pgsql.statement"]] = $m["pgsql.query"]
				elif $t == "Bind" then .portals[$m["pgsql.portal"]] = $m["pgsql.statement"]
				elif $t == "Execute" then add_item("EXECUTE"; .stmts[.portals[$m["pgsql.portal"]]])
				elif $t == "Error" then
					(if (.items | length) > 0 and .items[-1].status == "OK" then .items[-1].status = $m["pgsql.code"] else . end)
				elif $t == "Notification" then .notifications += 1
				elif $t == "Notice" then .notices += 1
				else . end)))
		| .[] | (.s + 1 | tostring) as $c
		| (.items[] | [$c, .kind, .sql, .status] | @tsv),
		  (["summary", $c, .ssl, .notifications, .notices] | map(tostring) | @tsv)' >"$WORK/seen.tsv" ||
		die "$SCN: reading the capture with tshark failed: $(cat "$WORK/logs/tshark.err")"
	# The manifest's, in the same shape and order, less what TLS hides.
	awk -F'\t' -v OFS='\t' '
		FILENAME == ARGV[1] { if ($9 == "true") enc[$1] = 1; sum[$1] = "summary" OFS $1 OFS $8 OFS $10 OFS $11; n = $1; next }
		!($1 in enc) { print $1, $2, $3, $4 }
		END { for (i = 1; i <= n; i++) print sum[i] }' "$WORK/plan/$SCN.conns" "$WORK/plan/$SCN.msgs" >"$WORK/want.tsv"
	# tshark lists each connection's summary after its messages: the same
	# lines in another order are a disagreement too.
	sort_summaries() { awk -F'\t' '$1 != "summary"' "$1"; awk -F'\t' '$1 == "summary"' "$1"; }
	diff -u <(sort_summaries "$WORK/want.tsv") <(sort_summaries "$WORK/seen.tsv") >"$WORK/logs/tshark.diff" ||
		die "$SCN: tshark (+) disagrees with the manifest (-): $(head -c 3000 "$WORK/logs/tshark.diff")"
}

# conn CLIENT PORT USER DATABASE APPNAME AUTH SSL_REQUEST ENCRYPTED
# NOTIFICATIONS NOTICES: a connection the scenario's client opened; sets
# CONN to its number (1 is the first).
conn() {
	CONN=$((CONN + 1))
	{
		printf '%s' "$CONN"
		printf '\t%s' "$@"
		printf '\n'
	} >>"$WORK/plan/$SCN.conns"
}

# msg KIND SQL STATUS [auto]: a message connection $CONN sent.
msg() {
	[[ $2 != *$'\t'* && $2 != *$'\n'* ]] || die "$SCN: SQL with a tab or newline: $2"
	printf '%s\t%s\t%s\t%s\t%s\n' "$CONN" "$1" "$2" "$3" "${4:-}" >>"$WORK/plan/$SCN.msgs"
}

secret() { printf '%s\n' "$@" >>"$WORK/plan/$SCN.secrets"; }

auth_of() {
	case $1 in
	legacy) printf md5 ;;
	plain) printf password ;;
	*) printf scram-sha-256 ;;
	esac
}
password_of() {
	case $1 in
	legacy) printf '%s' "$MD5_PASS" ;;
	plain) printf '%s' "$PLAIN_PASS" ;;
	*) printf '%s' "$APP_PASS" ;;
	esac
}
# ssl_answer PORT SSLMODE: the server's answer to the SSLRequest libpq sends
# ("" for none: sslmode=disable).
ssl_answer() {
	if [[ $2 == disable ]]; then
		printf ''
	elif [[ $1 == "$PORT_NOSSL" ]]; then
		printf N
	else
		printf S
	fi
}

# A psql script: psql_begin, then q (a statement a line) and copy_in, then
# psql_run (or psql_fail).
psql_begin() {
	: >"$WORK/psql.sql"
	: >"$WORK/psql.queries"
}
# q LINE: one simple query message: the line as psql sends it, a \;
# (statements sent together) becoming ;.
q() {
	printf '%s\n\\echo ::status :SQLSTATE\n' "$1" >>"$WORK/psql.sql"
	printf '%s\n' "${1//\\;/;}" >>"$WORK/psql.queries"
}
# copy_in LINE ROW...: COPY ... FROM STDIN with its rows (tab-separated),
# ended by \.: one query message, the rows as CopyData.
copy_in() {
	printf '%s\n' "$1" >>"$WORK/psql.sql"
	printf '%s\n' "$1" >>"$WORK/psql.queries"
	shift
	printf '%s\n' "$@" '\.' '\echo ::status :SQLSTATE' >>"$WORK/psql.sql"
}

# psql_run PORT USER DATABASE SSLMODE [APPNAME]: run the script in one psql
# connection; each statement's status is what psql's SQLSTATE says after it
# (00000: OK); notifications are the "Asynchronous notification" lines it
# printed, notices the NOTICE lines. Its output is in $WORK/logs/psql.out.
psql_run() {
	local port=$1 user=$2 db=$3 sslmode=$4 app=${5:-}
	local -a env=(PGPASSWORD="$(password_of "$user")" PGSSLMODE="$sslmode")
	[[ -z $app ]] || env+=(PGAPPNAME="$app")
	env "${env[@]}" timeout 60 "$PSQL" -X -h $IP -p "$port" -U "$user" -d "$db" -f "$WORK/psql.sql" \
		>"$WORK/logs/psql.out" 2>"$WORK/logs/psql.err" ||
		die "$SCN: psql failed: $(cat "$WORK/logs/psql.err")"
	local -a queries=() statuses=()
	mapfile -t queries <"$WORK/psql.queries"
	mapfile -t statuses < <(sed -n 's/^::status \([0-9A-Z]\{5\}\)$/\1/p' "$WORK/logs/psql.out")
	((${#statuses[@]} == ${#queries[@]})) ||
		die "$SCN: psql printed ${#statuses[@]} statuses for ${#queries[@]} statements: $(cat "$WORK/logs/psql.out")"
	local notifications notices answer
	notifications=$(grep -c '^Asynchronous notification ' "$WORK/logs/psql.out" || true)
	notices=$(grep -c 'NOTICE:  ' "$WORK/logs/psql.err" || true)
	answer=$(ssl_answer "$port" "$sslmode")
	conn psql "$port" "$user" "$db" "${app:-psql}" "$(auth_of "$user")" "$answer" \
		"$([[ $answer == S ]] && echo true || echo false)" "$notifications" "$notices"
	msg STARTUP "" OK
	local i status
	for i in "${!queries[@]}"; do
		status=${statuses[i]}
		[[ $status != 00000 ]] || status=OK
		msg QUERY "${queries[i]}" "$status"
		printf '    %-60s %s\n' "${queries[i]:0:60}" "$status" >&2
	done
}

# psql_fail PORT USER DATABASE PASSWORD SQLSTATE MESSAGE: a psql connection
# that must fail at startup with MESSAGE (part of what psql prints of the
# server's FATAL error: psql does not print the SQLSTATE, the manifest
# takes it from the caller and tshark checks it).
psql_fail() {
	local port=$1 user=$2 db=$3 pass=$4 code=$5 want=$6
	if PGPASSWORD=$pass PGSSLMODE=disable timeout 60 "$PSQL" -X -w -h $IP -p "$port" -U "$user" -d "$db" \
		-c 'SELECT 1;' >"$WORK/logs/psql.out" 2>"$WORK/logs/psql.err"; then
		die "$SCN: psql as $user to $db succeeded"
	fi
	grep -qF "FATAL:  $want" "$WORK/logs/psql.err" || die "$SCN: psql did not fail with $want: $(cat "$WORK/logs/psql.err")"
	conn psql "$port" "$user" "$db" psql "$(auth_of "$user")" "" false 0 0
	msg STARTUP "" "$code"
	printf '    %-60s %s\n' "$(grep -o 'FATAL: .*' "$WORK/logs/psql.err" | head -c 60)" "$code" >&2
}

# pgbench_run MODE TRANSACTIONS CLIENTS SCRIPT [SETUP_QUERIES]: pgbench -n
# (no vacuum) -M MODE -t TRANSACTIONS -c CLIENTS with the builtin script
# (tpcb-like) or a file. Connections: pgbench's own first (with the builtin
# script, two queries for the scale and partitions, their text from the
# server's log: SETUP_QUERIES says how many), then one per client, each
# running every transaction, every statement an EXECUTE. Every transaction
# must be processed.
pgbench_run() {
	local mode=$1 tx=$2 clients=$3 script=$4 setup=${5:-0}
	local -a args=()
	if [[ $script == /* ]]; then
		args=(-f "$script")
	else
		args=(-b "$script")
	fi
	local logf=$WORK/logs/postgres-$PORT.log from
	from=$(($(stat -c %s "$logf") + 1))
	PGPASSWORD=$APP_PASS PGSSLMODE=disable timeout 120 "$PGBENCH" -h $IP -p $PORT -U app -n -M "$mode" \
		-t "$tx" -c "$clients" "${args[@]}" shop >"$WORK/logs/pgbench.out" 2>&1 ||
		die "$SCN: pgbench failed: $(cat "$WORK/logs/pgbench.out")"
	grep -qE "^number of transactions actually processed: $((tx * clients))/$((tx * clients))\$" "$WORK/logs/pgbench.out" ||
		die "$SCN: pgbench did not process every transaction: $(cat "$WORK/logs/pgbench.out")"
	grep -qE '^number of failed transactions: 0 ' "$WORK/logs/pgbench.out" ||
		die "$SCN: pgbench had failed transactions"
	pgbench_setup_conn "$from" "$setup"
	local -a stmts=()
	mapfile -t stmts < <(pgbench_sql "$script")
	local c t s
	for ((c = 0; c < clients; c++)); do
		conn pgbench "$PORT" app shop pgbench scram-sha-256 "" false 0 0
		msg STARTUP "" OK
		for ((t = 0; t < tx; t++)); do
			for s in "${stmts[@]}"; do
				msg EXECUTE "$s" OK
			done
		done
	done
	printf '    pgbench -M %s -t %s -c %s %s: %s statements a transaction, %s transactions\n' "$mode" "$tx" "$clients" \
		"$(basename "$script")" "${#stmts[@]}" "$((tx * clients))" >&2
}

# pgbench_setup_conn LOG-OFFSET N: pgbench's own connection, with the N
# simple queries it sent, read from the server's log from LOG-OFFSET on.
pgbench_setup_conn() {
	local from=$1 want=$2 logf=$WORK/logs/postgres-$PORT.log
	local -a setup=()
	mapfile -t setup < <(tail -c +"$from" "$logf" | sed -n 's/^.* \[[0-9]*\] pgbench [0-9A-Z]\{5\} LOG:  statement: //p')
	! tail -c +"$from" "$logf" | grep -q $'^\t' || die "$SCN: a statement of several lines in the server's log"
	((${#setup[@]} == want)) || die "$SCN: pgbench sent ${#setup[@]} queries of its own, want $want: ${setup[*]}"
	conn pgbench "$PORT" app shop pgbench scram-sha-256 "" false 0 0
	msg STARTUP "" OK
	local s
	for s in "${setup[@]}"; do
		msg QUERY "$s" OK auto
	done
}

###############################################################################

scenario simple "psql -f: DDL, DML, rows, three errors (42P01, 42601, 22012), statements sent together, COPY in and out, a NOTICE, a transaction and a failed one (25P02), LISTEN/NOTIFY to itself; application_name recorder" $PORT
psql_begin
q "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, qty int NOT NULL);"
q "INSERT INTO items VALUES (1, 'apple', 3), (2, 'pear', 5), (3, 'plum', 0);"
q "SELECT id, name, qty FROM items ORDER BY id;"
q "UPDATE items SET qty = qty + 1 WHERE id = 2;"
q "DELETE FROM items WHERE id = 3;"
q "SELECT * FROM missing_table;"
q "SELEC 1;"
q "SELECT 1/0;"
q "SELECT 1\; SELECT 2;"
q "SELECT 'a' AS x\; SELECT 1/0\; SELECT 'never';"
copy_in "COPY items FROM STDIN;" $'4\tfig\t7' $'5\tkiwi\t1' $'6\tlime\t2'
q "COPY items TO STDOUT;"
q "DO \$\$ BEGIN RAISE NOTICE 'hello from DO: %', 42; END \$\$;"
q "BEGIN;"
q "INSERT INTO items VALUES (7, 'date', 9);"
q "COMMIT;"
q "BEGIN;"
q "SELECT 1/0;"
q "SELECT count(*) FROM items;"
q "ROLLBACK;"
q "LISTEN chan;"
q "NOTIFY chan, 'payload';"
q "SELECT count(*) FROM items;"
psql_run $PORT app shop disable recorder
want="OK OK OK OK OK 42P01 42601 22012 OK 22012 OK OK OK OK OK OK OK 22012 25P02 OK OK OK OK"
got=$(awk -F'\t' '$2 == "QUERY" { print $4 }' "$WORK/plan/$SCN.msgs" | paste -sd' ' -)
[[ $got == "$want" ]] || die "$SCN: statuses $got, want $want"
grep -q $'^6\tlime\t2$' "$WORK/logs/psql.out" || die "$SCN: COPY TO STDOUT did not print the copied rows"
secret "$APP_PASS"
end_scenario

scenario extended "pgbench (tpcb-like, 7 statements a transaction) -M extended and -M prepared, -t 20 -c 2 each; then -M prepared with a script whose second statement fails (SELECT 1/0: 22012, at Bind): pgbench aborts the client" $PORT
pgbench_run extended 20 2 tpcb-like 2
pgbench_run prepared 20 2 tpcb-like 2
printf 'SELECT 1;\nSELECT 1/0;\nSELECT 2;\n' >"$WORK/fail.sql"
# pgbench aborts a client at its first error and exits 2: checked here,
# not by pgbench_run.
from=$(($(stat -c %s "$WORK/logs/postgres-$PORT.log") + 1))
rc=0
PGPASSWORD=$APP_PASS PGSSLMODE=disable timeout 60 "$PGBENCH" -h $IP -p $PORT -U app -n -M prepared -t 3 -c 1 \
	-f "$WORK/fail.sql" shop >"$WORK/logs/pgbench.out" 2>&1 || rc=$?
((rc == 2)) || die "$SCN: pgbench exited $rc, want 2 (aborted): $(cat "$WORK/logs/pgbench.out")"
grep -q 'client 0 script 0 aborted in command 1 query 0: ERROR:  division by zero' "$WORK/logs/pgbench.out" ||
	die "$SCN: pgbench did not abort at SELECT 1/0: $(cat "$WORK/logs/pgbench.out")"
grep -q '^number of transactions actually processed: 0/3$' "$WORK/logs/pgbench.out" ||
	die "$SCN: pgbench processed transactions: $(cat "$WORK/logs/pgbench.out")"
printf '    pgbench -M prepared -f fail.sql: %s\n' "$(grep -o 'aborted in command 1.*' "$WORK/logs/pgbench.out")" >&2
pgbench_setup_conn "$from" 0
conn pgbench "$PORT" app shop pgbench scram-sha-256 "" false 0 0
msg STARTUP "" OK
msg EXECUTE "SELECT 1;" OK
msg EXECUTE "SELECT 1/0;" 22012
secret "$APP_PASS"
end_scenario

scenario ssl "sslmode=require to ssl=on (SSLRequest answered S, then TLS), sslmode=disable to it (no SSLRequest), sslmode=prefer to ssl=off on $PORT_NOSSL (answered N, then the startup in clear); each asks pg_stat_ssl" $PORT $PORT_NOSSL
for case in "$PORT require t" "$PORT disable f" "$PORT_NOSSL prefer f"; do
	read -r port sslmode want <<<"$case"
	psql_begin
	q "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid();"
	psql_run "$port" app shop "$sslmode"
	[[ $(head -n 3 "$WORK/logs/psql.out" | tail -n 1 | tr -d ' ') == "$want" ]] ||
		die "$SCN: sslmode=$sslmode on $port: pg_stat_ssl says $(cat "$WORK/logs/psql.out"), want $want"
done
secret "$APP_PASS"
end_scenario

scenario auth-fail "psql with a wrong password (28P01 after the SCRAM exchange) and to a database that does not exist (3D000)" $PORT
psql_fail $PORT app shop "$WRONG_PASS" 28P01 'password authentication failed for user "app"'
psql_fail $PORT app nosuchdb "$APP_PASS" 3D000 'database "nosuchdb" does not exist'
secret "$APP_PASS" "$WRONG_PASS"
end_scenario

scenario auth-methods "one psql connection per authentication method: scram-sha-256 (app), md5 (legacy), password (plain: the password in clear on the wire)" $PORT
for user in app legacy plain; do
	psql_begin
	q "SELECT current_user;"
	psql_run $PORT "$user" shop disable
	grep -qx " $user" "$WORK/logs/psql.out" || die "$SCN: current_user is not $user: $(cat "$WORK/logs/psql.out")"
done
secret "$APP_PASS" "$MD5_PASS" "$PLAIN_PASS"
end_scenario

###############################################################################
# The manifest
###############################################################################

scenarios=()
while read -r scn; do
	scenarios+=("$(jq -n --arg name "$scn" --arg desc "$(cat "$WORK/plan/$scn.description")" \
		--rawfile ports "$WORK/plan/$scn.ports" --rawfile conns "$WORK/plan/$scn.conns" \
		--rawfile msgs "$WORK/plan/$scn.msgs" --rawfile secrets "$WORK/plan/$scn.secrets" '
		def rows: split("\n") | map(select(. != "") | split("\t"));
		($msgs | rows) as $msgs |
		{name: $name, description: $desc, pcap: ($name + ".pcap"),
		 servers: ($ports | split("\n") | map(select(. != "") | {ip: "'"$IP"'", port: tonumber,
		           ssl: (tonumber != '"$PORT_NOSSL"')})),
		 connections: ($conns | rows | map(. as $c |
			{client: $c[1], port: ($c[2] | tonumber), user: $c[3], database: $c[4], application_name: $c[5],
			 auth: $c[6], ssl_request: $c[7], encrypted: ($c[8] == "true"),
			 notifications: ($c[9] | tonumber), notices: ($c[10] | tonumber),
			 messages: ($msgs | map(select(.[0] == $c[0])) | map({kind: .[1], sql: .[2], status: .[3]}
				+ (if .[4] == "auto" then {auto: true} else {} end)))}))}
		| . + {counts: {
			connections: (.connections | length),
			messages: ([.connections[].messages[].kind] | group_by(.) | map({key: .[0], value: length}) | from_entries),
			errors: ([.connections[].messages[].status | select(. != "OK")] | group_by(.)
			         | map({key: .[0], value: length}) | from_entries),
			notifications: ([.connections[].notifications] | add),
			notices: ([.connections[].notices] | add)},
		   secrets: ($secrets | split("\n") | map(select(. != "")) | unique)}')")
done <"$WORK/plan/order"
printf '%s\n' "${scenarios[@]}" | jq -s --arg pg "$PG_VERSION" --arg psql "$("$PSQL" --version)" \
	--arg pgbench "$("$PGBENCH" --version)" '
	{recorded_by: "scripts/record-postgres.sh", postgres: $pg, psql: $psql, pgbench: $pgbench,
	 secrets: (map(.secrets[]) | unique), scenarios: .}' >"$REC/manifest.json"
chmod 644 "$REC"/*.pcap "$REC/manifest.json"

mkdir -p "$out"
for f in "$REC"/*; do
	mv -f "$f" "$out/"
done
log "$out: $(jq '.scenarios | length' "$out/manifest.json") scenarios"
