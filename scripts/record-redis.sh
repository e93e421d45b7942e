#!/usr/bin/env bash
# record-redis.sh — record RESP from a real Redis server and real clients on
# loopback, with a manifest of what the clients sent, for the Redis
# dissector's recorded tests and its benchmark.
#
# Usage:
#   scripts/record-redis.sh OUTDIR
#       one capture per scenario, OUTDIR/NAME.pcap, and OUTDIR/manifest.json
#       saying what each holds: per TCP connection, in the order the
#       connections were opened, every command its client sent, in order,
#       as {command, key, status}:
#         command  the name as Redis names it, upper case; a container's
#                  subcommand as a second word ("CONFIG GET", "CLIENT
#                  SETNAME", "COMMAND DOCS"); an unknown command as sent
#         key      its first key by the server's own key specs (COMMAND
#                  GETKEYS), "" for none (PING, PUBLISH, AUTH, MULTI...)
#         status   "OK" for any reply but an error; an error's first word
#                  ("ERR", "WRONGTYPE", "NOAUTH", "WRONGPASS", "EXECABORT")
#         auto     true: the client sent it on its own (redis-cli sends
#                  HELLO 3 with -3, and COMMAND DOCS, then COMMAND if that
#                  fails, when it reads commands from stdin)
#         queued   true: answered +QUEUED inside MULTI (status OK)
#       and per scenario: command_counts (commands sent, by name: the
#       pipeline scenario has these alone, read from INFO commandstats),
#       tcp_connections, pubsub (the messages pushed to each subscriber, by
#       channel and pattern) and secrets (passwords sent in the capture,
#       which a dissector must never show; all of them again at the top).
#   scripts/record-redis.sh --bulk OUT.pcap [REQUESTS=100000] [CLIENTS=16]
#       redis-benchmark -t set,get -n REQUESTS -c CLIENTS (no pipelining);
#       the exact command counts (INFO commandstats) on stderr and in
#       OUT.pcap.json: {"SET": n, "GET": n, "CONFIG GET": 2}.
#
# Server: redis-server 7 on 127.0.0.41, from its own configuration in a
# temporary directory (no persistence): port 16379, and a second one with
# requirepass on 16380 for the auth scenario. Each also listens on a unix
# socket in the temporary directory: the script's own commands (CONFIG
# RESETSTAT before a scenario, INFO commandstats errorstats after it,
# COMMAND GETKEYS and COMMAND LIST) go there, never into a capture. Clients:
# redis-cli (one session fed a script on stdin, --no-raw so that errors
# print as "(error) WORD ..."; or one command on its command line),
# redis-benchmark, and bash's /dev/tcp for inline commands. Every scenario is
# captured alone by tcpdump on lo, host 127.0.0.41 and the scenario's port.
#
# What the manifest says comes from what the script sent and what the
# clients printed; it is checked against the server's own counts (INFO
# commandstats: calls and rejected calls per command; INFO errorstats:
# errors per first word) and the capture's SYNs (connections). A scenario
# that does not end as scripted fails the run; a failed run leaves nothing in
# OUTDIR (or no OUT.pcap). Needs root (tcpdump) and redis-server,
# redis-cli, redis-benchmark, tcpdump, tshark, jq and ss
# (scripts/install-deps.sh). Everything started is stopped on exit.
set -euo pipefail

IP=127.0.0.41
PORT=16379      # every scenario but auth; --bulk
PORT_AUTH=16380 # requirepass
PASS=s3cret-pass
WRONG_PASS=n0t-the-pass

die() {
	printf 'record-redis: %s\n' "$*" >&2
	exit 1
}
log() { printf '==> %s\n' "$*" >&2; }

bulk=
if [[ ${1:-} == --bulk ]]; then
	bulk=1
	shift
	[[ $# -ge 1 && $# -le 3 ]] || die "usage: record-redis.sh --bulk OUT.pcap [REQUESTS=100000] [CLIENTS=16]"
	out=$(realpath -m "$1")
	requests=${2:-100000}
	clients=${3:-16}
	[[ $requests =~ ^[1-9][0-9]*$ && $clients =~ ^[1-9][0-9]*$ ]] || die "REQUESTS and CLIENTS are positive numbers"
else
	[[ $# -eq 1 && $1 != -* ]] || die "usage: record-redis.sh OUTDIR | record-redis.sh --bulk OUT.pcap [REQUESTS] [CLIENTS]"
	out=$(realpath -m "$1")
fi
[[ $(id -u) -eq 0 ]] || die "needs root (tcpdump captures on lo)"
PATH=$PATH:/usr/sbin
for tool in flock redis-server redis-cli redis-benchmark tcpdump tshark jq ss; do
	command -v "$tool" >/dev/null || die "$tool is missing (sudo bash scripts/install-deps.sh)"
done

# One run at a time (from any checkout): a second waits for the first's
# servers, ports and captures to be gone, up to 10 minutes.
mkdir -p /run/lock
exec 9>/run/lock/wirescope-record-redis.lock
flock -w 600 9 || die "another record-redis.sh is still running (/run/lock/wirescope-record-redis.lock)"

# shellcheck source=scripts/lib/proc.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/proc.sh"

WORK=$(mktemp -d /tmp/wirescope-redis.XXXXXX)
declare -A SERVER_PID=() # port → redis-server's pid
BG_PIDS=()               # clients running in the background (subscribers)
cleanup() {
	local rc=$?
	set +e
	tcpdump_stop
	local pid
	for pid in "${BG_PIDS[@]}"; do
		stop_pid "$pid"
	done
	for pid in "${SERVER_PID[@]}"; do
		stop_pid "$pid"
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

mkdir -p "$WORK"/{logs,rec,plan}
for port in $PORT $PORT_AUTH; do
	if ss -H -ltn "( sport = :$port )" | awk '{print $4}' | grep -Eq "^($IP|0\.0\.0\.0|\*|\[::\]):$port\$"; then
		die "$IP:$port is already in use"
	fi
done

###############################################################################
# Servers
###############################################################################

# start_redis PORT [CONFIG LINES...]: a redis-server on $IP:PORT and on the
# unix socket $WORK/redis-PORT/sock, no persistence, in the foreground of a
# background job; returns once it answers PING on the socket.
start_redis() {
	local port=$1 dir=$WORK/redis-$1
	shift
	mkdir -p "$dir"
	{
		printf '%s\n' "port $port" "bind $IP" "unixsocket $dir/sock" "unixsocketperm 700" \
			"daemonize no" "dir $dir" "logfile $WORK/logs/redis-$port.log" 'save ""' "appendonly no" \
			"databases 16"
		printf '%s\n' "$@"
	} >"$dir/redis.conf"
	redis-server "$dir/redis.conf" >>"$WORK/logs/redis-$port.out" 2>&1 &
	SERVER_PID[$port]=$!
	for _ in $(seq 100); do
		if [[ -S $dir/sock ]] && [[ $(admin "$port" PING 2>/dev/null) == PONG ]]; then
			ss -H -ltn "( sport = :$port )" | grep -q "$IP:$port" || die "redis-server does not listen on $IP:$port"
			return 0
		fi
		kill -0 "${SERVER_PID[$port]}" 2>/dev/null || die "redis-server on $port exited at start"
		sleep 0.1
	done
	die "redis-server on $port does not answer"
}

# admin PORT ARGS...: a command on the server's unix socket (never captured),
# authenticated on the auth server. Raw output.
admin() {
	local port=$1
	shift
	local -a auth=()
	[[ $port != "$PORT_AUTH" ]] || auth=(-a "$PASS" --no-auth-warning)
	redis-cli -s "$WORK/redis-$port/sock" "${auth[@]}" "$@"
}

start_redis $PORT
start_redis $PORT_AUTH "requirepass $PASS"
REDIS_VERSION=$(redis-server --version | sed -n 's/.* v=\([^ ]*\).*/\1/p')
log "redis-server $REDIS_VERSION on $IP:$PORT and $IP:$PORT_AUTH (requirepass)"

# The commands with subcommands ("config" of "config|get"): their names are
# two words in the manifest.
declare -A CONTAINER=()
while IFS='|' read -r c _; do
	CONTAINER[${c^^}]=1
done < <(admin $PORT COMMAND LIST | grep '|')
[[ -n ${CONTAINER[CONFIG]:-} && -n ${CONTAINER[CLIENT]:-} ]] || die "COMMAND LIST names no subcommands"

# reset_stats PORT / read_stats PORT FILE: zero the server's command and
# error counters; write them as "NAME<TAB>COUNT" lines (commands: calls +
# rejected calls, named as in the manifest; errors as "error:WORD"), less
# what the script's own admin connections did (CONFIG RESETSTAT; the AUTH of
# the INFO connection on the auth server; INFO does not count itself).
reset_stats() { [[ $(admin "$1" CONFIG RESETSTAT) == OK ]] || die "CONFIG RESETSTAT failed on $1"; }
read_stats() {
	local port=$1 auths=0
	[[ $port != "$PORT_AUTH" ]] || auths=1
	admin "$port" INFO commandstats errorstats | tr -d '\r' | awk -F'[:,=]' -v auths="$auths" '
		/^cmdstat_/ {
			name = toupper(substr($1, 9)); gsub(/\|/, " ", name)
			n = 0
			for (i = 2; i < NF; i += 2) if ($i == "calls" || $i == "rejected_calls") n += $(i + 1)
			if (name == "CONFIG RESETSTAT") n -= 1
			if (name == "AUTH") n -= auths
			if (n != 0) printf "%s\t%d\n", name, n
		}
		/^errorstat_/ { printf "error:%s\t%d\n", substr($1, 11), $3 }' | LC_ALL=C sort >"$2"
}

###############################################################################
# --bulk
###############################################################################

if [[ -n $bulk ]]; then
	# -s 1024 over proc.sh's -s 0: a slot of the ring per packet is then
	# about 1 KiB, not lo's 64 KiB, and 128 MiB hold seconds of this
	# traffic, not milliseconds; every packet here is far smaller (checked
	# below). A run whose capture still lost packets (a busy machine) is
	# made again, up to 3 times.
	for attempt in 1 2 3; do
		rm -f "$out" "$out.json"
		reset_stats $PORT
		tcpdump_start "$WORK/logs/tcpdump.err" -i lo -B 131072 -s 1024 -w "$out" "host $IP and tcp port $PORT" ||
			die "tcpdump did not start: $(cat "$WORK/logs/tcpdump.err")"
		redis-benchmark -h $IP -p $PORT -t set,get -n "$requests" -c "$clients" -q \
			>"$WORK/logs/benchmark.out" 2>&1 || die "redis-benchmark failed"
		tcpdump_stop 0.5
		grep -qE '^0 packets dropped by kernel' "$WORK/logs/tcpdump.err" && break
		((attempt < 3)) || die "tcpdump dropped packets in 3 runs: $(grep dropped "$WORK/logs/tcpdump.err")"
		log "run $attempt: tcpdump $(grep 'dropped by kernel' "$WORK/logs/tcpdump.err"): again"
	done
	tr '\r' '\n' <"$WORK/logs/benchmark.out" | grep -E '^(SET|GET): [0-9.]+ requests' >&2 || true
	grep -E 'captured|dropped' "$WORK/logs/tcpdump.err" >&2
	truncated=$(tshark -r "$out" -Y 'frame.cap_len < frame.len' 2>/dev/null | wc -l)
	((truncated == 0)) || die "$truncated packets longer than tcpdump's -s 1024"
	read_stats $PORT "$WORK/stats"
	! grep -q '^error:' "$WORK/stats" || die "the server answered errors: $(grep '^error:' "$WORK/stats")"
	printf '%s\n' "commands sent (INFO commandstats):" >&2
	sed 's/^/    /' "$WORK/stats" >&2
	for c in SET GET; do
		n=$(awk -F'\t' -v c=$c '$1 == c { print $2 }' "$WORK/stats")
		[[ $n == "$requests" ]] || die "the server counted ${n:-0} ${c}s, want $requests"
	done
	jq -Rn '[inputs | split("\t") | {key: .[0], value: (.[1] | tonumber)}] | from_entries' \
		<"$WORK/stats" >"$out.json"
	chmod 644 "$out" "$out.json"
	log "$out: $(stat -c %s "$out") bytes; counts in $out.json"
	exit 0
fi

###############################################################################
# Scenarios
###############################################################################

REC=$WORK/rec # the scenarios' captures, moved to OUTDIR at the end
SCN=          # the scenario being recorded
SCN_PORT=
CONN=0 # connections the scenario's clients opened so far

# scenario NAME PORT DESCRIPTION: start recording a scenario: zero the
# server's counters, start its capture.
# tcpdump -B 65536: a 64 MiB ring (whole packets take 256 KiB slots with
# -s 0; with the default 2 MiB, a busy machine saw the kernel drop packets).
scenario() {
	SCN=$1
	SCN_PORT=$2
	CONN=0
	log "$SCN: $3"
	printf '%s' "$3" >"$WORK/plan/$SCN.description"
	printf '%s\n' "$SCN_PORT" >"$WORK/plan/$SCN.port"
	printf '%s\n' "$SCN" >>"$WORK/plan/order"
	: >"$WORK/plan/$SCN.conns"
	: >"$WORK/plan/$SCN.cmds"
	: >"$WORK/plan/$SCN.pubsub"
	: >"$WORK/plan/$SCN.secrets"
	reset_stats "$SCN_PORT"
	tcpdump_start "$WORK/logs/tcpdump.err" -i lo -B 65536 -w "$REC/$SCN.pcap" "host $IP and tcp port $SCN_PORT" ||
		die "tcpdump did not start: $(cat "$WORK/logs/tcpdump.err")"
}

# end_scenario [COUNTS-FROM-SERVER]: stop the capture, check it dropped
# nothing and holds one SYN per connection; check the server's counts
# against the commands the manifest lists (or, given an argument, take the
# command counts from the server: the pipeline scenario).
end_scenario() {
	tcpdump_stop 0.3
	grep -qE '^0 packets dropped by kernel' "$WORK/logs/tcpdump.err" ||
		die "$SCN: tcpdump dropped packets: $(cat "$WORK/logs/tcpdump.err")"
	local n syns
	n=$(sed -n 's/^\([0-9]*\) packets\? captured$/\1/p' "$WORK/logs/tcpdump.err")
	syns=$(tshark -r "$REC/$SCN.pcap" -Y 'tcp.flags.syn == 1 && tcp.flags.ack == 0' 2>/dev/null | wc -l)
	printf '%s\n' "$syns" >"$WORK/plan/$SCN.tcp"
	read_stats "$SCN_PORT" "$WORK/plan/$SCN.stats"
	if [[ -n ${1:-} ]]; then
		grep -v '^error:' "$WORK/plan/$SCN.stats" >"$WORK/plan/$SCN.counts" || true
		! grep -q '^error:' "$WORK/plan/$SCN.stats" ||
			die "$SCN: the server answered errors: $(grep '^error:' "$WORK/plan/$SCN.stats")"
	else
		((syns == CONN)) || die "$SCN: the capture has $syns connections, the clients opened $CONN"
		# What the server counts: commands it knew (calls + rejected: not
		# an unknown command, nor one queued in a transaction that was
		# discarded or aborted), and errors by first word.
		awk -F'\t' '$6 !~ /unknown|dropped/ { print $2 }' "$WORK/plan/$SCN.cmds" | tally >"$WORK/want"
		awk -F'\t' '$4 != "OK" { print "error:" $4 }' "$WORK/plan/$SCN.cmds" | tally >>"$WORK/want"
		LC_ALL=C sort -o "$WORK/want" "$WORK/want"
		diff -u "$WORK/want" "$WORK/plan/$SCN.stats" >"$WORK/logs/stats.diff" ||
			die "$SCN: the server's counts (+) differ from the manifest's (-): $(cat "$WORK/logs/stats.diff")"
		cut -f2 "$WORK/plan/$SCN.cmds" | tally >"$WORK/plan/$SCN.counts"
	fi
	printf '    %s.pcap: %s packets, %s connections, %s commands\n' "$SCN" "$n" "$syns" \
		"$(awk -F'\t' '{ n += $2 } END { print n + 0 }' "$WORK/plan/$SCN.counts")" >&2
	SCN=
}

# tally: lines → "LINE<TAB>COUNT", sorted.
tally() { LC_ALL=C sort | uniq -c | awk '{ n = $1; sub(/^ *[0-9]+ /, ""); printf "%s\t%d\n", $0, n }'; }

# cmd_name ARGS...: the manifest's name of a command.
cmd_name() {
	local name=${1^^}
	if [[ -n ${CONTAINER[$name]:-} && $# -ge 2 ]]; then
		name+=" ${2^^}"
	fi
	printf '%s' "$name"
}

# first_key ARGS...: the command's first key, as the server finds it
# (COMMAND GETKEYS on the admin socket, after the scenario's counts are
# read: the calls are recorded in a queue and resolved at the end); "" when
# it has none or is unknown.
first_key() {
	local got
	got=$(admin "$SCN_PORT" --no-raw COMMAND GETKEYS "$@" 2>&1 | head -n 1)
	if [[ $got =~ ^1\)\ \"(.*)\"$ ]]; then
		printf '%s' "${BASH_REMATCH[1]}"
	fi
}

# conn CLIENT RESP: a connection the scenario's client opens; sets CONN to
# its number (1 is the first).
conn() {
	CONN=$((CONN + 1))
	printf '%s\t%s\t%s\n' "$CONN" "$1" "$2" >>"$WORK/plan/$SCN.conns"
}

# sent FLAGS STATUS ARGS...: a command sent on connection $CONN, with the
# status its reply gave. FLAGS: a comma list of auto, queued, unknown (the
# server does not know it: no key lookup, not in its counts), dropped (queued
# in a transaction that did not run). The key is looked up later (keys.todo).
sent() {
	local flags=$1 status=$2
	shift 2
	local name
	name=$(cmd_name "$@")
	printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$CONN" "$name" "" "$status" "$((++CMD_SEQ))" "$flags" >>"$WORK/plan/$SCN.cmds"
	if [[ $flags != *unknown* ]]; then
		printf '%s\0' "$SCN" "$CMD_SEQ" "$#" "$@" >>"$WORK/plan/keys.todo"
	fi
}
CMD_SEQ=0

# split_replies FILE: redis-cli's --no-raw output → one line per reply: its
# first line. An array's elements after the first ("2) ", "2# ", "2~ ") and
# nested lines (indented) continue the reply before; a top-level array of
# ten or more elements (" 1) ") is not told apart: the scenarios have none,
# and the count check catches one.
split_replies() {
	awk '
		/^[ \t]/ { next }
		/^[0-9]+[)#~|] / { if ($0 !~ /^1[)#~|] /) next }
		{ print }' "$1"
}

# reply_status LINE: OK, or the first word of an "(error) WORD ..." line.
reply_status() {
	if [[ $1 =~ ^\(error\)\ ([^ ]+) ]]; then
		printf '%s' "${BASH_REMATCH[1]}"
	else
		printf 'OK'
	fi
}

# cli_session [REDIS-CLI OPTIONS...] -- COMMAND...: one redis-cli connection
# to the scenario's port, fed the commands on stdin, one a line (words
# without quotes). Before them it sends, on its own, HELLO 3 with -3, then
# COMMAND DOCS for its help hints; when that fails (NOAUTH), COMMAND. Every
# reply is checked to be there; the statuses are the manifest's.
cli_session() {
	local -a opts=() cmds=()
	while [[ $1 != -- ]]; do
		opts+=("$1")
		shift
	done
	shift
	cmds=("$@")
	local resp=2
	[[ " ${opts[*]} " != *" -3 "* ]] || resp=3
	conn redis-cli "$resp"
	printf '%s\n' "${cmds[@]}" |
		timeout 30 redis-cli --no-raw -h $IP -p "$SCN_PORT" "${opts[@]}" >"$WORK/logs/cli.out" 2>"$WORK/logs/cli.err" ||
		die "$SCN: redis-cli failed: $(cat "$WORK/logs/cli.err")"
	local -a replies=()
	mapfile -t replies < <(split_replies "$WORK/logs/cli.out")
	((${#replies[@]} == ${#cmds[@]})) ||
		die "$SCN: redis-cli printed ${#replies[@]} replies for ${#cmds[@]} commands: $(cat "$WORK/logs/cli.out")"
	((resp == 2)) || sent auto OK HELLO 3
	# An unauthenticated session on the auth server: the help lookup is refused.
	if [[ $SCN_PORT == "$PORT_AUTH" ]] && [[ $(reply_status "${replies[0]}") == NOAUTH ]]; then
		sent auto NOAUTH COMMAND DOCS
		sent auto NOAUTH COMMAND
	else
		sent auto OK COMMAND DOCS
	fi
	local i status flags in_multi=0 first_queued=0 line
	local -a args
	for i in "${!cmds[@]}"; do
		read -ra args <<<"${cmds[i]}"
		status=$(reply_status "${replies[i]}")
		flags=
		[[ ${replies[i]} != *"unknown command"* ]] || flags=unknown
		local name
		name=$(cmd_name "${args[@]}")
		case $name in
		MULTI)
			((in_multi == 0)) || die "$SCN: nested MULTI"
			if [[ $status == OK ]]; then
				in_multi=1
				first_queued=$(($(wc -l <"$WORK/plan/$SCN.cmds") + 2)) # the first command after MULTI's line
			fi
			;;
		EXEC | DISCARD)
			if ((in_multi)) && [[ $name == DISCARD || $status != OK ]]; then
				# nothing queued ran: not in the server's counts
				awk -F'\t' -v OFS='\t' -v from="$first_queued" \
					'NR >= from && $6 ~ /queued/ { $6 = $6 ",dropped" } { print }' \
					"$WORK/plan/$SCN.cmds" >"$WORK/cmds.tmp"
				mv "$WORK/cmds.tmp" "$WORK/plan/$SCN.cmds"
			fi
			in_multi=0
			;;
		*)
			if ((in_multi)) && [[ ${replies[i]} == QUEUED ]]; then
				flags=queued
			fi
			;;
		esac
		sent "$flags" "$status" "${args[@]}"
		line=${replies[i]}
		printf '    %-28s %s\n' "${cmds[i]:0:28}" "${line:0:60}" >&2
	done
}

# cli_one [-a PASSWORD] COMMAND...: one redis-cli run with the command on
# its command line: it sends nothing else but, given -a, AUTH first.
cli_one() {
	local -a auth=()
	if [[ $1 == -a ]]; then
		auth=(-a "$2" --no-auth-warning)
		shift 2
	fi
	conn redis-cli 2
	timeout 30 redis-cli --no-raw -h $IP -p "$SCN_PORT" "${auth[@]}" "$@" >"$WORK/logs/cli.out" 2>"$WORK/logs/cli.err" ||
		die "$SCN: redis-cli $* failed: $(cat "$WORK/logs/cli.err")"
	local -a replies=()
	mapfile -t replies < <(split_replies "$WORK/logs/cli.out")
	((${#replies[@]} == 1)) || die "$SCN: redis-cli $*: ${#replies[@]} replies"
	[[ ${#auth[@]} -eq 0 ]] || sent auto OK AUTH "${auth[1]}" # refused, redis-cli would have said so and exited 1
	sent "" "$(reply_status "${replies[0]}")" "$@"
	printf '    %-28s %s\n' "$*" "${replies[0]:0:60}" >&2
}

# expect STATUS...: the statuses the scenario's last commands must have had,
# in order (the script's own check of what it meant to provoke).
expect() {
	local got
	got=$(tail -n $# "$WORK/plan/$SCN.cmds" | cut -f4 | paste -sd' ' -)
	[[ $got == "$*" ]] || die "$SCN: the last commands' statuses are $got, want $*"
}

secret() { printf '%s\n' "$@" >>"$WORK/plan/$SCN.secrets"; }

###############################################################################

scenario basic $PORT "RESP2: one redis-cli session fed a script (strings, hashes, lists, expiry, a WRONGTYPE and an unknown command, CONFIG GET, CLIENT SETNAME), then a one-command redis-cli"
cli_session -- "SET user:1 alice" "GET user:1" "DEL user:1" "INCR counter" "INCR counter" \
	"HSET user:2 name bob age 42" "HGETALL user:2" "LPUSH queue a b c" "LRANGE queue 0 -1" \
	"EXPIRE counter 100" "TTL counter" "SET greeting hello" "LPUSH greeting x" "FOOBAR arg1 arg2" \
	"CONFIG GET maxmemory" "CLIENT SETNAME app1" "PING" "GET missing"
expect OK OK WRONGTYPE ERR OK OK OK OK
cli_one GET greeting
end_scenario

scenario auth $PORT_AUTH "requirepass: a command before AUTH (NOAUTH), AUTH with a wrong password (WRONGPASS), AUTH, GET; then redis-cli -a (AUTH at connect)"
cli_session -- "GET greeting" "AUTH $WRONG_PASS" "AUTH $PASS" "SET greeting hi" "GET greeting"
expect NOAUTH WRONGPASS OK OK OK
cli_one -a "$PASS" GET greeting
secret "$PASS" "$WRONG_PASS"
end_scenario

scenario resp3 $PORT "RESP3: redis-cli -3 (HELLO 3 at connect): a map (HGETALL), a set (SMEMBERS), a double (ZSCORE), nulls, an empty map, a WRONGTYPE"
cli_session -3 -- "HSET h3 f1 v1 f2 v2" "HGETALL h3" "SADD s3 a b c" "SMEMBERS s3" "ZADD z3 1.5 m" \
	"ZSCORE z3 m" "INCRBYFLOAT f3 2.5" "GET missing" "HGETALL missing" "ZSCORE z3 nobody" "LPUSH h3 x"
expect OK OK OK WRONGTYPE
end_scenario

scenario pipeline $PORT "redis-benchmark -P 16 -n 2000 -c 2 -t set,get: pipelined SETs then GETs (counts from INFO commandstats)"
redis-benchmark -h $IP -p $PORT -P 16 -n 2000 -c 2 -t set,get -q >"$WORK/logs/benchmark.out" 2>&1 ||
	die "$SCN: redis-benchmark failed: $(cat "$WORK/logs/benchmark.out")"
end_scenario from-server
# redis-benchmark's connections: one for its CONFIG GETs (save, appendonly),
# then each test's clients.
[[ $(cat "$WORK/plan/pipeline.tcp") == 5 ]] || die "pipeline: $(cat "$WORK/plan/pipeline.tcp") connections, want 5"

scenario multi $PORT "MULTI/EXEC, a transaction aborted by an unknown command (EXECABORT), MULTI/DISCARD"
cli_session -- "MULTI" "SET tx:1 1" "INCR tx:1" "EXEC" \
	"MULTI" "SET tx:2 2" "FOOBAR" "EXEC" \
	"MULTI" "SET tx:3 3" "DISCARD" "GET tx:1" "GET tx:2"
expect OK ERR EXECABORT OK OK OK OK OK
end_scenario

scenario pubsub $PORT "redis-cli SUBSCRIBE chan1 and redis-cli PSUBSCRIBE news.* in the background; a third client PUBLISHes 5 messages to chan1, 3 to news.sport and 1 nobody hears; the subscribers are stopped (killed)"
# subscribe CLIENT-ARGS...: a redis-cli subscriber in the background,
# returning once it printed its subscription's confirmation.
subscribe() {
	conn redis-cli 2
	local f=$WORK/logs/sub$CONN.out
	redis-cli --no-raw -h $IP -p "$SCN_PORT" "$@" >"$f" 2>&1 &
	BG_PIDS+=($!)
	sent "" OK "$@"
	for _ in $(seq 100); do
		[[ $(grep -c '^3) (integer) 1$' "$f") -ge 1 ]] && return 0
		sleep 0.05
	done
	die "$SCN: redis-cli $* did not subscribe: $(cat "$f")"
}
subscribe SUBSCRIBE chan1
subscribe PSUBSCRIBE 'news.*'
pubs=()
for i in 1 2 3 4 5; do pubs+=("PUBLISH chan1 chan1-message-$i"); done
for i in 1 2 3; do pubs+=("PUBLISH news.sport sport-news-$i"); done
pubs+=("PUBLISH nobody.listens lost")
cli_session -- "${pubs[@]}"
got=$(grep -c '^(integer) 1$' "$WORK/logs/cli.out" || true)
[[ $got == 8 && $(tail -n 1 "$WORK/logs/cli.out") == "(integer) 0" ]] ||
	die "$SCN: PUBLISH replies: $(paste -sd' ' "$WORK/logs/cli.out")"
# The messages each subscriber printed ("message", channel, payload;
# "pmessage", pattern, channel, payload), once all 8 arrived.
count_pushes() {
	awk -v conn="$1" '
		/^1\) "message"$/ { kind = "message"; pat = ""; n = 0; next }
		/^1\) "pmessage"$/ { kind = "pmessage"; n = 0; next }
		kind != "" && /^2\) / { v = substr($0, 5); gsub(/"/, "", v); if (kind == "pmessage") pat = v; else { ch = v } ; next }
		kind == "pmessage" && /^3\) / { ch = substr($0, 5); gsub(/"/, "", ch); next }
		kind != "" && /^[34]\) / { c[kind "\t" pat "\t" ch]++; kind = "" }
		END { for (k in c) printf "%s\t%s\t%d\n", conn, k, c[k] }' "$2"
}
for _ in $(seq 100); do
	pushes=$(for c in 1 2; do count_pushes "$c" "$WORK/logs/sub$c.out"; done)
	[[ $(awk -F'\t' '{ n += $5 } END { print n + 0 }' <<<"$pushes") -ge 8 ]] && break
	sleep 0.05
done
printf '%s\n' "$pushes" | LC_ALL=C sort >"$WORK/plan/$SCN.pubsub"
want=$(printf '1\tmessage\t\tchan1\t5\n2\tpmessage\tnews.*\tnews.sport\t3')
[[ $(cat "$WORK/plan/$SCN.pubsub") == "$want" ]] ||
	die "$SCN: the subscribers printed $(cat "$WORK/plan/$SCN.pubsub"), want $want"
for pid in "${BG_PIDS[@]}"; do
	stop_pid "$pid"
done
BG_PIDS=()
end_scenario

scenario inline $PORT "inline commands over a raw TCP connection (bash /dev/tcp), one at a time: PING, SET, GET, QUIT"
conn raw-tcp 2
exec 3<>"/dev/tcp/$IP/$PORT"
for c in PING "SET inlinekey hello" "GET inlinekey" QUIT; do
	printf '%s\r\n' "$c" >&3
	IFS= read -r -t 5 line <&3 || die "$SCN: no reply to $c"
	line=${line%$'\r'}
	case $line in
	'$'[0-9]*) IFS= read -r -t 5 _ <&3 || die "$SCN: no bulk string after $line" ;;
	esac
	printf '    %-28s %s\n' "$c" "$line" >&2
	status=OK
	[[ $line != -* ]] || status=${line:1} status=${status%% *}
	read -ra args <<<"$c"
	sent "" "$status" "${args[@]}"
done
IFS= read -r -t 5 line <&3 && die "$SCN: data after QUIT's reply: $line"
exec 3<&-
printf '%s\tinline\n' "$CONN" >"$WORK/plan/$SCN.inline"
expect OK OK OK OK
end_scenario

###############################################################################
# The keys (COMMAND GETKEYS, now that no counts are read any more), the manifest
###############################################################################

if [[ -s $WORK/plan/keys.todo ]]; then
	while IFS= read -r -d '' scn && IFS= read -r -d '' seq && IFS= read -r -d '' n; do
		args=()
		for ((i = 0; i < n; i++)); do
			IFS= read -r -d '' a
			args+=("$a")
		done
		SCN_PORT=$(cat "$WORK/plan/$scn.port")
		printf '%s\t%s\t%s\n' "$scn" "$seq" "$(first_key "${args[@]}")"
	done <"$WORK/plan/keys.todo" >"$WORK/plan/keys"
fi

scenarios=()
while read -r scn; do
	# commands with their keys: conn, name, key, status, flags
	awk -F'\t' -v OFS='\t' -v scn="$scn" -v keys="$WORK/plan/keys" '
		FILENAME == keys { if ($1 == scn) key[$2] = $3; next }
		{ $3 = key[$5]; print $1, $2, $3, $4, $6 }' "$WORK/plan/keys" "$WORK/plan/$scn.cmds" >"$WORK/plan/$scn.final"
	[[ -f $WORK/plan/$scn.inline ]] || : >"$WORK/plan/$scn.inline"
	scenarios+=("$(jq -n --arg name "$scn" --arg desc "$(cat "$WORK/plan/$scn.description")" \
		--argjson port "$(cat "$WORK/plan/$scn.port")" --argjson tcp "$(cat "$WORK/plan/$scn.tcp")" \
		--rawfile conns "$WORK/plan/$scn.conns" --rawfile cmds "$WORK/plan/$scn.final" \
		--rawfile counts "$WORK/plan/$scn.counts" --rawfile pubsub "$WORK/plan/$scn.pubsub" \
		--rawfile secrets "$WORK/plan/$scn.secrets" --rawfile inline "$WORK/plan/$scn.inline" '
		def rows: split("\n") | map(select(. != "") | split("\t"));
		($cmds | rows) as $cmds | ($inline | rows | map(.[0])) as $inline |
		{name: $name, description: $desc, pcap: ($name + ".pcap"),
		 server: {ip: "'"$IP"'", port: $port}, tcp_connections: $tcp}
		+ (if ($conns | rows | length) > 0 then {connections: ($conns | rows | map(. as $c |
			{client: $c[1], resp: ($c[2] | tonumber)}
			+ (if ($inline | index($c[0])) != null then {inline: true} else {} end)
			+ {commands: ($cmds | map(select(.[0] == $c[0])) | map(
				{command: .[1], key: .[2], status: .[3]}
				+ (if (.[4] | split(",") | index("auto")) != null then {auto: true} else {} end)
				+ (if (.[4] | split(",") | index("queued")) != null then {queued: true} else {} end)))}))}
		   else {} end)
		+ {command_counts: ($counts | rows | map({key: .[0], value: (.[1] | tonumber)}) | from_entries),
		   pubsub: ($pubsub | rows | map({connection: (.[0] | tonumber), kind: .[1], pattern: .[2], channel: .[3],
		                                  count: (.[4] | tonumber)})),
		   secrets: ($secrets | split("\n") | map(select(. != "")))}')")
done <"$WORK/plan/order"
printf '%s\n' "${scenarios[@]}" | jq -s --arg redis "$REDIS_VERSION" --arg cli "$(redis-cli --version)" '
	{recorded_by: "scripts/record-redis.sh", redis: $redis, redis_cli: $cli,
	 secrets: (map(.secrets[]) | unique), scenarios: .}' >"$REC/manifest.json"
chmod 644 "$REC"/*.pcap "$REC/manifest.json"

mkdir -p "$out"
for f in "$REC"/*; do
	mv -f "$f" "$out/"
done
log "$out: $(jq '.scenarios | length' "$out/manifest.json") scenarios"
