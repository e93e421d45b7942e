# shellcheck shell=bash
# scripts/lib/record.sh — shared code for the scripts that record the eval
# scenarios under evals/scenarios/ (see evals/README.md). Sourced, not run.
#
# A scenario script sets its parameters, then:
#
#   rec_init NAME NET          NET is the scenario's /24 without the last part,
#                              e.g. 127.0.1: every address and every packet of
#                              the capture lies in NET.0/24
#   nginx_start ID <<EOF ...   real servers (nginx with the echo module, dnsmasq),
#   dnsmasq_start ID ...       each from its own generated configuration
#   plan files                 every request in order, written before anything
#                              runs (req); no randomness, so counts are exact
#   capture_start              tcpdump -i lo -s 0, filtered to NET.0/24
#   start_client/wait_clients  phase 1 ("before"), all clients in parallel
#   mark_event NAME WHAT       the moment the script changed something (a
#                              rollout, a pod stopped, ...): phase 2 ("after")
#                              starts here
#   start_client/wait_clients  phase 2
#   capture_stop
#   verify_and_write           checks curl's results against the plan and the
#                              capture (tshark) against the plan, then writes
#                              truth.json, cluster.json and scenario.json and
#                              only then replaces the scenario's files
#
# Everything the scripts start runs from a temporary directory and is stopped
# on exit (cleanup trap); a failed or interrupted run leaves the scenario's
# files as they were. Needs root (tcpdump, dnsmasq on port 53).
#
# Files in $WORK:
#   plan/NAME.tsv       a client's plan, one request a line (see req)
#   plan/NAME.tsv.got   what curl got for each request
#   expect/http.tsv     phase client server port method path status, one line per
#                       HTTP request the capture must hold (client plans plus
#                       the hops servers make, added by the scenario: expect_http)
#   expect/dns.tsv      phase client server name type rcode (expect_dns)
#   expect/refused.tsv  phase client server port: connection attempts answered
#                       by RST (expect_refused)
#   seen/*.tsv          the same, read from the capture by tshark
#   out/                the files that replace the scenario's on success

REC_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
REC_NAME=
REC_NET=
REC_OUT=
WORK=
TCPDUMP_PID=
REC_CLIENT_PIDS=()
declare -A REC_SERVER_PIDS=()
REC_HTTP_PORTS=()   # TCP ports tshark must decode as HTTP (set by the scenario)
REC_MAX_PCAP_BYTES=1500000
EVENT_EPOCH=        # mark_event: seconds since the epoch, with nanoseconds
EVENT_NAME=
EVENT_WHAT=
NGINX_BIN=
DNSMASQ_BIN=
ECHO_MODULE=/usr/share/nginx/modules/ngx_http_echo_module.so

log() { printf '==> [%s] %s\n' "${REC_NAME:-record}" "$*" >&2; }
ok() { printf '    ok  %s\n' "$*" >&2; }
REC_ERROR=
die() {
	REC_ERROR=$*
	printf 'record %s: %s\n' "${REC_NAME:-scenario}" "$*" >&2
	exit 1
}

# shellcheck source=scripts/lib/proc.sh
source "$(dirname "${BASH_SOURCE[0]}")/proc.sh"

_rec_cleanup() {
	local rc=$? pid id
	set +e
	for pid in "${REC_CLIENT_PIDS[@]}"; do
		stop_pid "$pid"
	done
	if [[ -n $TCPDUMP_PID ]]; then
		kill -INT "$TCPDUMP_PID" 2>/dev/null
		wait "$TCPDUMP_PID" 2>/dev/null
	fi
	for id in "${!REC_SERVER_PIDS[@]}"; do
		stop_pid "${REC_SERVER_PIDS[$id]}"
	done
	if [[ $rc -ne 0 && $rc -ne 130 && $rc -ne 143 && -n $WORK && -d $WORK/logs ]]; then
		printf 'record %s: failed; logs follow\n' "$REC_NAME" >&2
		tail -n 8 "$WORK"/logs/*.err "$WORK"/logs/*.log >&2 2>/dev/null
		[[ -z $REC_ERROR ]] || printf 'record %s: %s\n' "$REC_NAME" "$REC_ERROR" >&2
	fi
	[[ -n $WORK && -z ${REC_KEEP_WORK:-} ]] && rm -rf "$WORK"
	[[ -n $WORK && -n ${REC_KEEP_WORK:-} ]] && printf 'record %s: work directory kept: %s\n' "$REC_NAME" "$WORK" >&2
	exit "$rc"
}

# rec_init NAME NET: start a recording of scenario NAME whose addresses are
# NET.0/24 (NET like 127.0.1). Checks root and commands, makes $WORK, sets the
# traps. REC_KEEP_WORK=1 keeps $WORK for debugging.
rec_init() {
	REC_NAME=$1
	REC_NET=$2
	REC_OUT=$REC_ROOT/evals/scenarios/$REC_NAME
	trap _rec_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	[[ $EUID -eq 0 ]] || die "must run as root (tcpdump, dnsmasq on port 53)"
	local cmd
	for cmd in nginx tcpdump tshark capinfos curl jq ss dig dnsmasq; do
		command -v "$cmd" >/dev/null 2>&1 || [[ -x /usr/sbin/$cmd ]] ||
			die "missing command: $cmd (sudo bash scripts/install-deps.sh)"
	done
	[[ -f $ECHO_MODULE ]] || die "missing $ECHO_MODULE (apt-get install libnginx-mod-http-echo)"
	NGINX_BIN=$(command -v nginx || echo /usr/sbin/nginx)
	DNSMASQ_BIN=$(command -v dnsmasq || echo /usr/sbin/dnsmasq)
	WORK=$(mktemp -d "/tmp/wirescope-$REC_NAME.XXXXXX")
	chmod 755 "$WORK" # nginx workers run as nobody
	mkdir -p "$WORK"/{logs,out,plan,expect,seen}
	: >"$WORK/expect/http.tsv"
	: >"$WORK/expect/dns.tsv"
	: >"$WORK/expect/refused.tsv"
	# Nothing of another run may be on the scenario's addresses (closed
	# connections waiting in TIME-WAIT send nothing).
	if ss -H -tan | awk '$1 != "TIME-WAIT" { print $4 " " $5 }' | grep -Fq "$REC_NET."; then
		die "there are TCP sockets on $REC_NET.0/24 already: $(ss -H -tan | grep -v TIME-WAIT | grep -F "$REC_NET." | head -n 3)"
	fi
}

###############################################################################
# Servers
###############################################################################

# port_free ADDR PORT [tcp|udp]: fail if something already listens there, so
# a stale server is never mistaken for ours.
port_free() {
	local flag=-ltn
	[[ ${3:-tcp} == udp ]] && flag=-lun
	if ss -H "$flag" "( sport = :$2 )" | awk '{print $4}' | grep -Eq "^($1|0\.0\.0\.0|\*|\[::\]):$2\$"; then
		die "$1:$2/${3:-tcp} is already in use"
	fi
}

# wait_listen ADDR PORT [tcp|udp] [PID]: wait (up to 5 s) until ADDR:PORT
# listens. Asks the kernel (ss), not the server, so no packet is sent.
wait_listen() {
	local addr=$1 port=$2 proto=${3:-tcp} pid=${4:-} flag=-ltn
	[[ $proto == udp ]] && flag=-lun
	for _ in $(seq 100); do
		ss -H "$flag" "( sport = :$port )" | awk '{print $4}' | grep -qx "$addr:$port" && return 0
		[[ -z $pid ]] || kill -0 "$pid" 2>/dev/null || die "server for $addr:$port exited at start"
		sleep 0.05
	done
	die "nothing listens on $addr:$port/$proto"
}

# rec_main_shell FUNCTION: fail when FUNCTION runs in a subshell (a pipeline),
# where the server's process id would be lost to cleanup and server_stop.
rec_main_shell() {
	[[ $BASHPID == "$$" ]] || die "$1 must run in the main shell: give it input with < <(...) or a here-document, not a pipe"
}

# wait_closed ADDR PORT: wait (up to 5 s) until nothing listens on ADDR:PORT/tcp.
wait_closed() {
	for _ in $(seq 100); do
		ss -H -ltn "( sport = :$2 )" | awk '{print $4}' | grep -qx "$1:$2" || return 0
		sleep 0.05
	done
	die "$1:$2 still listens"
}

# nginx_start ID: start an nginx whose http block is read from stdin (maps,
# upstreams, servers; the echo module is loaded). Waits until every
# "listen ADDR:PORT" of the block listens. Not in a pipeline: feed it with a
# here-document or < <(...).
nginx_start() {
	local id=$1 d=$WORK/nginx-$1 body listen
	rec_main_shell nginx_start
	mkdir -p "$d/tmp"
	body=$(cat)
	cat >"$d/nginx.conf" <<EOF
load_module $ECHO_MODULE;
worker_processes 1;
daemon off;
pid $d/nginx.pid;
error_log $WORK/logs/nginx-$id.log notice;
events { worker_connections 256; }
http {
    access_log $WORK/logs/nginx-$id.access;
    client_body_temp_path $d/tmp/body;
    proxy_temp_path $d/tmp/proxy;
    fastcgi_temp_path $d/tmp/fastcgi;
    uwsgi_temp_path $d/tmp/uwsgi;
    scgi_temp_path $d/tmp/scgi;
    default_type application/json;
    keepalive_timeout 30;
    keepalive_requests 1000;
    server_tokens off;
    open_file_cache off;
$body
}
EOF
	mapfile -t listens < <(grep -oE 'listen +[0-9.]+:[0-9]+' "$d/nginx.conf" | awk '{ print $2 }')
	[[ ${#listens[@]} -gt 0 ]] || die "nginx $id: no listen ADDR:PORT"
	for listen in "${listens[@]}"; do
		port_free "${listen%:*}" "${listen##*:}"
	done
	"$NGINX_BIN" -t -q -p "$d/" -e "$WORK/logs/nginx-$id.log" -c "$d/nginx.conf" 2>"$WORK/logs/nginx-$id.err" ||
		die "nginx $id: configuration test failed: $(tail -n 3 "$WORK/logs/nginx-$id.err")"
	"$NGINX_BIN" -p "$d/" -e "$WORK/logs/nginx-$id.log" -c "$d/nginx.conf" >>"$WORK/logs/nginx-$id.err" 2>&1 &
	REC_SERVER_PIDS[$id]=$!
	for listen in "${listens[@]}"; do
		wait_listen "${listen%:*}" "${listen##*:}" tcp "${REC_SERVER_PIDS[$id]}"
	done
}

# dnsmasq_start ID ADDR PORT DNSMASQ-OPTIONS...: a dnsmasq on ADDR:PORT (UDP
# and TCP) with no system configuration, logging queries.
dnsmasq_start() {
	local id=$1 addr=$2 port=$3
	shift 3
	rec_main_shell dnsmasq_start
	port_free "$addr" "$port" udp
	port_free "$addr" "$port" tcp
	"$DNSMASQ_BIN" --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
		--bind-interfaces --listen-address="$addr" --port="$port" \
		--pid-file="$WORK/dnsmasq-$id.pid" --log-queries --log-facility="$WORK/logs/dnsmasq-$id.log" \
		"$@" >"$WORK/logs/dnsmasq-$id.err" 2>&1 &
	REC_SERVER_PIDS[$id]=$!
	wait_listen "$addr" "$port" udp "${REC_SERVER_PIDS[$id]}"
	wait_listen "$addr" "$port" tcp "${REC_SERVER_PIDS[$id]}"
}

# server_stop ID: stop a server started by nginx_start or dnsmasq_start
# (SIGTERM: nginx closes its listening sockets, so new connections are
# refused).
server_stop() {
	stop_pid "${REC_SERVER_PIDS[$1]:-}"
	unset "REC_SERVER_PIDS[$1]"
}

###############################################################################
# Capture
###############################################################################

# capture_start: tcpdump on lo, whole packets, only NET.0/24, into
# $WORK/out/capture.pcap; returns once tcpdump listens.
capture_start() {
	: >"$WORK/logs/tcpdump.err"
	# --immediate-mode: packets still in the ring buffer's current block are
	# otherwise lost when tcpdump is interrupted.
	tcpdump -i lo --immediate-mode -B 32768 -s 0 -U -Z root -w "$WORK/out/capture.pcap" \
		"net $REC_NET.0/24" 2>"$WORK/logs/tcpdump.err" &
	TCPDUMP_PID=$!
	for _ in $(seq 100); do
		grep -q 'listening on' "$WORK/logs/tcpdump.err" && return 0
		kill -0 "$TCPDUMP_PID" 2>/dev/null || break
		sleep 0.05
	done
	die "tcpdump did not start: $(cat "$WORK/logs/tcpdump.err")"
}

# capture_stop: let the last packets arrive, stop tcpdump, check it dropped
# nothing.
capture_stop() {
	sleep 1
	kill -INT "$TCPDUMP_PID"
	wait "$TCPDUMP_PID" || true
	TCPDUMP_PID=
	grep -qx '0 packets dropped by kernel' "$WORK/logs/tcpdump.err" ||
		die "tcpdump dropped packets: $(cat "$WORK/logs/tcpdump.err")"
}

# now_epoch: seconds since the epoch with nanoseconds.
now_epoch() { date +%s.%N; }

# mark_event NAME WHAT: the moment the scenario changes; phase 2 starts here.
mark_event() {
	EVENT_EPOCH=$(now_epoch)
	EVENT_NAME=$1
	EVENT_WHAT=$2
	log "$EVENT_NAME at $(rfc3339 "$EVENT_EPOCH"): $EVENT_WHAT"
}

# rfc3339 EPOCH: "1717243200.123456789" as UTC RFC 3339 with nanoseconds,
# trailing zeros dropped (Go's time.RFC3339Nano).
rfc3339() {
	local sec=${1%.*} frac=${1#*.}
	[[ $1 == *.* ]] || frac=
	frac=${frac}000000000
	frac=${frac:0:9}
	while [[ $frac == *0 ]]; do frac=${frac%0}; done
	printf '%s%s%sZ' "$(date -u -d "@$sec" +%Y-%m-%dT%H:%M:%S)" "${frac:+.}" "$frac"
}

# rfc3339_s EPOCH: the same to the second, for timestamps in cluster files.
rfc3339_s() { date -u -d "@${1%.*}" +%Y-%m-%dT%H:%M:%SZ; }

# hhmm EPOCH: "14:02", the time an on-call engineer would say (UTC).
hhmm() { date -u -d "@${1%.*}" +%H:%M; }

###############################################################################
# Plans and clients
###############################################################################

# Deterministic request ids: a 32-bit LCG per plan, seeded by the plan
# (rid_seed), printed as 32 hex digits. Servers may decide on the id's last
# digit (nginx map), and the plan knows the outcome in advance.
RID_STATE=1
RID=
rid_seed() { RID_STATE=$1; }
next_rid() {
	local i
	RID=
	for i in 1 2 3 4; do
		RID_STATE=$(((RID_STATE * 1664525 + 1013904223) % 4294967296))
		RID+=$(printf '%08x' "$RID_STATE")
	done
	: "$i"
}

# req PHASE SESSION CLIENT TARGET HOST METHOD PATH EXPECT HEADERS BODY: one
# request of a plan, as a tab-separated line.
#   PHASE    1 (before the event) or 2 (after)
#   SESSION  the requests of a session share one curl invocation, so one
#            keep-alive connection; sessions run one after another
#   CLIENT   the source address (curl --interface)
#   TARGET   ADDR:PORT the connection goes to (curl --resolve HOST:PORT:ADDR)
#   HOST     the service name in the URL and Host header
#   EXPECT   the status, or "refused" (the connection is refused: its own
#            session, no HTTP)
#   HEADERS  "Name: value" pairs separated by "|", or "-"
#   BODY     the request body, or "-"
req() { printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@"; }

# run_sessions PLAN PHASE USER-AGENT RATE PAUSE: run the sessions of PHASE in
# PLAN one after another, one curl invocation each with at most RATE requests
# per second, PAUSE seconds between sessions. Appends "phase session status
# method url connects exit" per request to PLAN.got.
run_sessions() {
	local plan=$1 phase=$2 ua=$3 rate=$4 pause=$5
	local ph session client target host method path headers body
	local cur='' first='' h
	local -a args=() hs
	_rec_flush() {
		[[ ${#args[@]} -gt 0 ]] || return 0
		local rc=0
		curl -sS --max-time 30 --rate "$rate" "${args[@]}" >"$plan.cur" 2>>"$plan.curl-err" || rc=$?
		# 7: could not connect (a planned refusal; checked against the plan).
		[[ $rc -eq 0 || $rc -eq 7 ]] || {
			printf 'curl exit %s in session %s\n' "$rc" "$cur" >&2
			return 1
		}
		awk -v p="$phase" -v s="$cur" -v rc="$rc" '{ print p "\t" s "\t" $0 "\t" rc }' "$plan.cur" >>"$plan.got"
		args=()
	}
	while IFS=$'\t' read -r ph session client target host method path _ headers body; do
		[[ $ph == "$phase" ]] || continue
		if [[ $session != "$cur" ]]; then
			if [[ -n $cur ]]; then
				_rec_flush
				sleep "$pause"
			fi
			cur=$session
			first=1
		fi
		[[ -n $first ]] || args+=(--next)
		first=
		args+=(--interface "$client" -A "$ua" -o /dev/null
			-w '%{http_code}\t%{method}\t%{url_effective}\t%{num_connects}\n'
			--resolve "$host:${target##*:}:${target%:*}")
		if [[ $headers != - ]]; then
			IFS='|' read -r -a hs <<<"$headers"
			for h in "${hs[@]}"; do args+=(-H "$h"); done
		fi
		if [[ $body != - ]]; then
			args+=(-H 'Content-Type: application/json' --data-raw "$body")
			[[ $method == POST ]] || args+=(-X "$method")
		elif [[ $method != GET ]]; then
			args+=(-X "$method")
		fi
		args+=("http://$host:${target##*:}$path")
	done <"$plan"
	_rec_flush
}

# start_client NAME DELAY COMMAND...: run COMMAND in the background after
# DELAY seconds; stderr to logs/NAME.err.
start_client() {
	local name=$1 delay=$2
	shift 2
	(
		trap - EXIT INT TERM
		sleep "$delay"
		"$@"
	) 2>>"$WORK/logs/$name.err" &
	REC_CLIENT_PIDS+=($!)
}

# wait_clients: wait for every started client; fail if one failed.
wait_clients() {
	local pid rc=0
	for pid in "${REC_CLIENT_PIDS[@]}"; do
		wait "$pid" || rc=$?
	done
	REC_CLIENT_PIDS=()
	((rc == 0)) || die "a client failed (exit $rc): $(tail -n 5 "$WORK"/logs/*.err)"
}

# expect_http PHASE CLIENT SERVER PORT METHOD PATH STATUS: a request the
# capture must hold that no client plan makes (a server's own call).
expect_http() { printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$WORK/expect/http.tsv"; }
# expect_dns PHASE CLIENT SERVER NAME TYPE RCODE
expect_dns() { printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$WORK/expect/dns.tsv"; }
# expect_refused PHASE CLIENT SERVER PORT
expect_refused() { printf '%s\t%s\t%s\t%s\n' "$@" >>"$WORK/expect/refused.tsv"; }

# expect_from_plans PLAN...: the plans' requests as expected HTTP requests
# and refused connections.
expect_from_plans() {
	awk -F'\t' '
		$8 == "refused" { split($4, t, ":"); print $1 "\t" $3 "\t" t[1] "\t" t[2] >> refused; next }
		{ split($4, t, ":"); print $1 "\t" $3 "\t" t[1] "\t" t[2] "\t" $6 "\t" $7 "\t" $8 >> http }
	' refused="$WORK/expect/refused.tsv" http="$WORK/expect/http.tsv" "$@"
}

###############################################################################
# Verification
###############################################################################

# The route of an HTTP path, as wirescope's index.Route makes it: no query,
# ID-like segments (all digits, a UUID, 8+ hex digits, long letter+digit
# tokens) as {id}.
# shellcheck disable=SC2016 # awk code
REC_AWK_ROUTE='
function idlike(s,    n, i, c, d, l, h, o) {
	n = length(s)
	if (n == 0) return 0
	d = l = h = o = 0
	for (i = 1; i <= n; i++) {
		c = substr(s, i, 1)
		if (c ~ /[0-9]/) { d++; h++ }
		else if (c ~ /[a-fA-F]/) { l++; h++ }
		else if (c ~ /[g-zG-Z]/) l++
		else if (c == "-" || c == "_") o++
		else return 0
	}
	if (d == n) return 1
	if (n == 36 && o == 4 && h == 32 && substr(s, 9, 1) == "-" && substr(s, 14, 1) == "-" && substr(s, 19, 1) == "-" && substr(s, 24, 1) == "-") return 1
	if (h == n && n >= 8) return 1
	if (d >= 2 && l >= 1 && (n >= 16 || (o == 0 && n >= 10))) return 1
	return 0
}
function route(p,    a, n, i, r) {
	sub(/[?#].*/, "", p)
	n = split(p, a, "/")
	if (n < 2) return p
	r = ""
	for (i = 2; i <= n; i++) r = r "/" (idlike(a[i]) ? "{id}" : a[i])
	return r
}'

# tally: count identical lines; prints "line<TAB>count", sorted.
tally() { LC_ALL=C sort | uniq -c | awk '{ n = $1; sub(/^ *[0-9]+ /, ""); print $0 "\t" n }'; }

# rec_tshark ARGS...: tshark on the capture, HTTP decoded on REC_HTTP_PORTS,
# without its "running as root" warning on the terminal.
rec_tshark() {
	local -a d=()
	local p
	for p in "${REC_HTTP_PORTS[@]}"; do d+=(-d "tcp.port==$p,http"); done
	tshark -r "$WORK/out/capture.pcap" "${d[@]}" "$@" 2> >(grep -v '^Running as user' >>"$WORK/logs/tshark.err")
}

# verify_curl PLAN...: every request got the planned status (or was refused),
# and every HTTP session used exactly one connection.
verify_curl() {
	local plan name
	for plan in "$@"; do
		name=$(basename "$plan" .tsv)
		awk -F'\t' '{ e = $8 == "refused" ? "000" : $8; split($4, t, ":"); print $1 "\t" $2 "\t" e "\t" $6 "\thttp://" $5 ":" t[2] $7 }' \
			"$plan" >"$plan.want"
		awk -F'\t' '{ print $1 "\t" $2 "\t" $3 "\t" $4 "\t" $5 }' "$plan.got" >"$plan.have"
		diff -u "$plan.want" "$plan.have" >"$WORK/logs/$name.diff" ||
			die "$name: curl's results differ from the plan: $(head -n 20 "$WORK/logs/$name.diff")"
		# Sessions with an HTTP exchange: exactly one connection each.
		awk -F'\t' '$3 != "000" { c[$1 "/" $2] += $6 } END { for (s in c) if (c[s] != 1) { print s ": " c[s] " connections"; bad = 1 } exit bad }' \
			"$plan.got" >&2 || die "$name: a session did not use exactly one connection"
		ok "$(printf '%-14s %4d requests in %3d sessions, as planned' "$name" \
			"$(wc -l <"$plan")" "$(cut -f1,2 "$plan" | sort -u | wc -l)")"
	done
}

# _phase_awk: awk code mapping an epoch to phase 1 or 2 around EVENT_EPOCH.
_rec_phase() { awk -v t="${EVENT_EPOCH:-0}" -F'\t' -v OFS='\t' '{ $1 = (t > 0 && $1 + 0 >= t + 0) ? 2 : 1; print }'; }

# verify_capture: tshark's reading of the capture against expect/*.tsv.
verify_capture() {
	local pcap=$WORK/out/capture.pcap bytes
	bytes=$(stat -c %s "$pcap")
	((bytes <= REC_MAX_PCAP_BYTES)) || die "capture is $bytes bytes, over $REC_MAX_PCAP_BYTES"

	# Nothing outside the scenario's block.
	rec_tshark -T fields -e ip.src -e ip.dst | tr '\t' '\n' | sort -u >"$WORK/seen/addresses.txt"
	if grep -v "^${REC_NET//./\\.}\.[0-9]*\$" "$WORK/seen/addresses.txt" >"$WORK/logs/foreign.txt"; then
		die "addresses outside $REC_NET.0/24 in the capture: $(head -n 5 "$WORK/logs/foreign.txt" | tr '\n' ' ')"
	fi

	# HTTP: requests paired with their responses by tshark (two passes for
	# http.response_in).
	rec_tshark -2 -Y 'http.request' -T fields -E occurrence=f \
		-e frame.number -e frame.time_epoch -e ip.src -e ip.dst -e tcp.dstport \
		-e http.request.method -e http.request.uri -e http.response_in -e tcp.stream \
		>"$WORK/seen/http-requests.raw"
	rec_tshark -2 -Y 'http.response' -T fields -E occurrence=f \
		-e frame.number -e http.response.code -e http.request_in -e http.time \
		>"$WORK/seen/http-responses.raw"
	# seen/http-calls.tsv: epoch client server port method path status seconds stream
	awk -F'\t' '
		NR == FNR { code[$1] = $2; req[$1] = $3; rt[$1] = $4; next }
		$8 == "" || !($8 in code) { printf "frame %s: %s %s has no response\n", $1, $6, $7 > "/dev/stderr"; bad = 1; next }
		req[$8] != $1 { printf "frame %s: response %s is for frame %s\n", $1, $8, req[$8] > "/dev/stderr"; bad = 1; next }
		{ print $2 "\t" $3 "\t" $4 "\t" $5 "\t" $6 "\t" $7 "\t" code[$8] "\t" rt[$8] "\t" $9 }
		END { exit bad }
	' "$WORK/seen/http-responses.raw" "$WORK/seen/http-requests.raw" >"$WORK/seen/http-calls.tsv" ||
		die "tshark does not pair every HTTP request with its response"
	[[ $(wc -l <"$WORK/seen/http-responses.raw") -eq $(wc -l <"$WORK/seen/http-calls.tsv") ]] ||
		die "tshark sees HTTP responses without a request"
	cut -f1-7 "$WORK/seen/http-calls.tsv" | _rec_phase >"$WORK/seen/http.tsv"
	awk -F'\t' -v OFS='\t' "$REC_AWK_ROUTE"'{ $6 = route($6); print }' "$WORK/expect/http.tsv" | tally >"$WORK/expect/http.count"
	awk -F'\t' -v OFS='\t' "$REC_AWK_ROUTE"'{ $6 = route($6); print }' "$WORK/seen/http.tsv" | tally >"$WORK/seen/http.count"
	diff -u "$WORK/expect/http.count" "$WORK/seen/http.count" >"$WORK/logs/http.diff" ||
		die "HTTP requests by phase, client, server, route and status differ from the plan (- plan, + tshark): $(head -n 30 "$WORK/logs/http.diff")"
	ok "HTTP: $(wc -l <"$WORK/seen/http.tsv") requests, each answered; by phase, client, server, route and status as planned"

	# tshark's own statistics: responses by status code.
	rec_tshark -q -z http,tree >"$WORK/logs/http-tree.txt"
	awk '$1 ~ /^[1-5][0-9][0-9]$/ { for (i = 2; i <= NF; i++) if ($i ~ /^[0-9]+$/) { print $1 "\t" $i; break } }' \
		"$WORK/logs/http-tree.txt" | LC_ALL=C sort >"$WORK/seen/tree.tsv"
	cut -f7 "$WORK/expect/http.tsv" | tally >"$WORK/expect/tree.tsv"
	diff -u "$WORK/expect/tree.tsv" "$WORK/seen/tree.tsv" >"$WORK/logs/tree.diff" ||
		die "tshark -z http,tree's status counts differ from the plan: $(cat "$WORK/logs/tree.diff")"
	ok "tshark -z http,tree: $(tr '\t\n' '= ' <"$WORK/seen/tree.tsv")"

	# DNS: every query answered; answers by phase, client, server, name, type
	# and rcode.
	rec_tshark -2 -Y 'dns.flags.response == 0' -T fields -e frame.number -e dns.response_in \
		>"$WORK/seen/dns-queries.raw"
	awk -F'\t' '$2 == "" { print "frame " $1 ": DNS query without response"; bad = 1 } END { exit bad }' \
		"$WORK/seen/dns-queries.raw" >&2 || die "a DNS query has no response"
	rec_tshark -Y 'dns.flags.response == 1' -T fields -E occurrence=f \
		-e frame.time_epoch -e ip.dst -e ip.src -e dns.qry.name -e dns.qry.type -e dns.flags.rcode |
		awk -F'\t' -v OFS='\t' '
			BEGIN { t[1] = "A"; t[28] = "AAAA"; t[5] = "CNAME"; t[33] = "SRV"; t[12] = "PTR"; t[16] = "TXT"
				r[0] = "NOERROR"; r[1] = "FORMERR"; r[2] = "SERVFAIL"; r[3] = "NXDOMAIN"; r[4] = "NOTIMP"; r[5] = "REFUSED" }
			{ $5 = ($5 in t) ? t[$5] : "TYPE" $5; $6 = ($6 in r) ? r[$6] : "RCODE" $6; print }
		' | _rec_phase >"$WORK/seen/dns.tsv"
	[[ $(wc -l <"$WORK/seen/dns-queries.raw") -eq $(wc -l <"$WORK/seen/dns.tsv") ]] ||
		die "tshark sees $(wc -l <"$WORK/seen/dns-queries.raw") DNS queries and $(wc -l <"$WORK/seen/dns.tsv") responses"
	tally <"$WORK/expect/dns.tsv" >"$WORK/expect/dns.count"
	tally <"$WORK/seen/dns.tsv" >"$WORK/seen/dns.count"
	diff -u "$WORK/expect/dns.count" "$WORK/seen/dns.count" >"$WORK/logs/dns.diff" ||
		die "DNS answers by phase, client, server, name, type and rcode differ from the plan: $(head -n 30 "$WORK/logs/dns.diff")"
	ok "DNS: $(wc -l <"$WORK/seen/dns.tsv") queries, each answered; names, types and rcodes as planned"

	# TCP connections: per stream, who opened it, whether the server accepted
	# (SYN-ACK) and whether and by whom it was reset.
	# seen/conns.tsv: epoch client server port state (ok|refused|reset-by-client|reset-by-server|no-answer)
	rec_tshark -Y tcp -T fields -e tcp.stream -e frame.time_epoch -e ip.src -e ip.dst \
		-e tcp.srcport -e tcp.dstport -e tcp.flags.syn -e tcp.flags.ack -e tcp.flags.reset |
		awk -F'\t' -v OFS='\t' '
			function flag(v) { return v == "1" || v == "True" }
			{
				s = $1
				if (!(s in first)) { order[++n] = s; first[s] = $2 }
				if (flag($7) && !flag($8) && !(s in cli)) { cli[s] = $3; srv[s] = $4; port[s] = $6 }
				if (flag($7) && flag($8)) acc[s] = 1
				if (flag($9)) rst[s] = (s in cli && $3 == cli[s]) ? "client" : "server"
			}
			END {
				for (i = 1; i <= n; i++) {
					s = order[i]
					if (!(s in cli)) continue # opened before the capture
					st = "ok"
					if (s in rst) st = (s in acc) ? "reset-by-" rst[s] : (rst[s] == "server" ? "refused" : "reset-by-client")
					else if (!(s in acc)) st = "no-answer"
					print first[s], cli[s], srv[s], port[s], st
				}
			}
		' | _rec_phase >"$WORK/seen/conns.tsv"
	awk -F'\t' '$5 == "refused" { print $1 "\t" $2 "\t" $3 "\t" $4 }' "$WORK/seen/conns.tsv" | tally >"$WORK/seen/refused.count"
	tally <"$WORK/expect/refused.tsv" >"$WORK/expect/refused.count"
	diff -u "$WORK/expect/refused.count" "$WORK/seen/refused.count" >"$WORK/logs/refused.diff" ||
		die "refused connections differ from the plan: $(head -n 30 "$WORK/logs/refused.diff")"
	if awk -F'\t' '$5 != "ok" && $5 != "refused"' "$WORK/seen/conns.tsv" | grep -q .; then
		die "unplanned connection states: $(awk -F'\t' '$5 != "ok" && $5 != "refused"' "$WORK/seen/conns.tsv" | head -n 5)"
	fi
	ok "TCP: $(wc -l <"$WORK/seen/conns.tsv") connections, $(wc -l <"$WORK/expect/refused.tsv") refused as planned, no resets"
}

###############################################################################
# Outputs
###############################################################################

# cluster_json PODS SERVICES: the cluster file from two TSV files.
#   PODS:     name namespace node ip app version start end
#             start/end: "-" (none), "event" (EVENT_EPOCH) or "-<N>h"/"-<N>m"
#             (that long before the first packet)
#   SERVICES: name namespace clusterIP app
# Every address in the capture must belong to a pod or a service. Times are
# whole seconds, as Kubernetes writes them, rounded outwards so the pod covers
# all its packets: a startTime of "event" is the event's second, a
# deletionTime of "event" the next second (phase 1 ends before the event and
# phase 2 starts after it, so old and new pods never share traffic).
cluster_json() {
	local pods=$1 services=$2 first=$3
	local name ns node ip app version start end
	_rec_when() {
		case $1:$2 in
		-:*) printf '' ;;
		event:start) rfc3339_s "$EVENT_EPOCH" ;;
		event:end) rfc3339_s "$((${EVENT_EPOCH%.*} + 1))" ;;
		-*h:*) rfc3339_s "$((${first%.*} - ${1:1:-1} * 3600))" ;;
		-*m:*) rfc3339_s "$((${first%.*} - ${1:1:-1} * 60))" ;;
		*) die "cluster_json: bad time $1" ;;
		esac
	}
	while IFS=$'\t' read -r name ns node ip app version start end; do
		jq -cn --arg name "$name" --arg ns "$ns" --arg node "$node" --arg ip "$ip" \
			--arg app "$app" --arg version "$version" \
			--arg start "$(_rec_when "$start" start)" --arg deleted "$(_rec_when "$end" end)" '
			{name: $name, namespace: $ns, node: $node, ip: $ip, labels: {app: $app, version: $version}}
			+ (if $start == "" then {} else {startTime: $start} end)
			+ (if $deleted == "" then {} else {deletionTime: $deleted} end)'
	done <"$pods" >"$WORK/logs/pods.jsonl"
	while IFS=$'\t' read -r name ns ip app; do
		jq -cn --arg name "$name" --arg ns "$ns" --arg ip "$ip" --arg app "$app" \
			'{name: $name, namespace: $ns, clusterIP: $ip, selector: {app: $app}}'
	done <"$services" >"$WORK/logs/services.jsonl"
	jq -n --slurpfile pods "$WORK/logs/pods.jsonl" --slurpfile services "$WORK/logs/services.jsonl" \
		'{services: $services, pods: $pods}'
}

# write_cluster OUT PODS SERVICES FIRST: writes OUT/cluster.json (see
# cluster_json) and checks it against the capture: every address in it is a
# pod or a service of the cluster file, no address is two pods', and a pod
# with a lifetime (startTime, deletionTime) has all its packets in it.
write_cluster() {
	local out=$1 pods=$2 services=$3 first=$4
	cluster_json "$pods" "$services" "$first" >"$out/cluster.json"
	jq -r '.pods[].ip, .services[].clusterIP' "$out/cluster.json" | sort -u >"$WORK/logs/cluster-ips.txt"
	comm -23 "$WORK/seen/addresses.txt" "$WORK/logs/cluster-ips.txt" >"$WORK/logs/unmapped.txt"
	[[ ! -s $WORK/logs/unmapped.txt ]] || die "addresses without a pod: $(tr '\n' ' ' <"$WORK/logs/unmapped.txt")"
	[[ $(jq -r '.pods[].ip' "$out/cluster.json" | sort | uniq -d | wc -l) -eq 0 ]] || die "an address is used by two pods"
	rec_tshark -T fields -e frame.time_epoch -e ip.src -e ip.dst |
		awk -F'\t' '{ for (i = 2; i <= 3; i++) { a = $i; if (!(a in lo)) lo[a] = $1; hi[a] = $1 } }
			END { for (a in lo) print a "\t" lo[a] "\t" hi[a] }' >"$WORK/logs/address-times.tsv"
	jq -r '.pods[] | select(.startTime or .deletionTime)
		| [.ip, .name, (.startTime // "" | if . == "" then "" else fromdateiso8601 end),
			(.deletionTime // "" | if . == "" then "" else fromdateiso8601 end)] | @tsv' "$out/cluster.json" |
		awk -F'\t' '
			NR == FNR { lo[$1] = $2; hi[$1] = $3; next }
			!($1 in lo) { next }
			$3 != "" && lo[$1] + 0 < $3 + 0 { printf "%s: a packet at %s, before its startTime\n", $2, lo[$1]; bad = 1 }
			$4 != "" && hi[$1] + 0 >= $4 + 0 { printf "%s: a packet at %s, after its deletionTime\n", $2, hi[$1]; bad = 1 }
			END { exit bad }
		' "$WORK/logs/address-times.tsv" - >&2 || die "cluster.json: pod lifetimes do not cover their packets"
	ok "cluster.json maps all $(wc -l <"$WORK/seen/addresses.txt") addresses of the capture, within the pods' lifetimes"
}

# verify_and_write PODS SERVICES DESCRIPTION QUESTIONS-JSON NOTES: run the
# checks, write cluster.json, truth.json and scenario.json into $WORK/out and
# replace the scenario's files. QUESTIONS-JSON may use {{HHMM}} for the
# event's time of day (UTC). The scenario's rollout_at is set when the event
# is named "rollout".
verify_and_write() {
	local pods=$1 services=$2 description=$3 questions=$4 notes=$5
	local out=$WORK/out first last packets bytes duration
	log "verifying the capture with tshark"
	verify_capture

	rec_tshark -T fields -e frame.time_epoch >"$WORK/logs/times.txt"
	packets=$(wc -l <"$WORK/logs/times.txt")
	first=$(head -n 1 "$WORK/logs/times.txt")
	last=$(tail -n 1 "$WORK/logs/times.txt")
	bytes=$(stat -c %s "$out/capture.pcap")
	duration=$(awk -v a="$first" -v b="$last" 'BEGIN { printf "%.3f", b - a }')

	write_cluster "$out" "$pods" "$services" "$first"

	# Latency per phase, server and route (tshark's http.time, nearest rank).
	awk -F'\t' -v OFS='\t' -v t="${EVENT_EPOCH:-0}" "$REC_AWK_ROUTE"'
		{ ph = (t > 0 && $1 + 0 >= t + 0) ? 2 : 1; print ph, $3, $4, $5, route($6), $8 * 1000 }
	' "$WORK/seen/http-calls.tsv" | LC_ALL=C sort -t $'\t' -k1,5 -k6,6g |
		awk -F'\t' -v OFS='\t' '
			function flush() {
				if (n == 0) return
				p50 = v[int((n + 1) / 2)]; p95 = v[int(n * 0.95 + 0.999999)]; if (p95 == "") p95 = v[n]
				printf "%s\t%d\t%.3f\t%.3f\t%.3f\t%.3f\n", key, n, v[1], p50, p95, v[n]
				n = 0
			}
			{ k = $1 OFS $2 OFS $3 OFS $4 OFS $5; if (k != key) { flush(); key = k }; v[++n] = $6 }
			END { flush() }
		' >"$WORK/seen/latency.tsv"

	local tools
	tools=$(jq -n --arg nginx "$("$NGINX_BIN" -v 2>&1 | sed 's|.*nginx/||')" \
		--arg curl "$(curl --version | awk 'NR == 1 { print $2 }')" \
		--arg dig "$(dig -v 2>&1 | awk '{ print $2 }')" \
		--arg dnsmasq "$("$DNSMASQ_BIN" --version | awk 'NR == 1 { print $3 }')" \
		--arg tcpdump "$(tcpdump --version 2>&1 | awk 'NR == 1 { print $3 }')" \
		--arg tshark "$(tshark --version 2>/dev/null | awk 'NR == 1 { print $3 }')" \
		'{nginx: $nginx, curl: $curl, dig: $dig, dnsmasq: $dnsmasq, tcpdump: $tcpdump, tshark: $tshark}')

	# truth.json: counts from the plan (identical to tshark's, checked above),
	# latency and connections from tshark.
	local event_at=
	[[ -z $EVENT_EPOCH ]] || event_at=$(rfc3339 "$EVENT_EPOCH")
	awk -F'\t' -v OFS='\t' "$REC_AWK_ROUTE"'{ $6 = route($6); print }' "$WORK/expect/http.tsv" | tally >"$WORK/logs/http-routes.count"
	# Example paths per phase/client/server/route, for the reader.
	awk -F'\t' -v OFS='\t' "$REC_AWK_ROUTE"'{ print $1, $2, $3, $4, $5, route($6), $6 }' "$WORK/expect/http.tsv" |
		LC_ALL=C sort -u >"$WORK/logs/http-paths.tsv"
	awk -F'\t' '{ print $1 "\t" $2 "\t" $3 "\t" $4 "\t" $5 }' "$WORK/seen/conns.tsv" | tally >"$WORK/logs/conns.count"

	jq -n \
		--arg scenario "$REC_NAME" --arg notes "$notes" \
		--arg first "$(rfc3339 "$first")" --arg last "$(rfc3339 "$last")" \
		--argjson packets "$packets" --argjson bytes "$bytes" --argjson duration "$duration" \
		--arg event_name "$EVENT_NAME" --arg event_what "$EVENT_WHAT" --arg event_at "$event_at" \
		--argjson tools "$tools" \
		--slurpfile cluster "$out/cluster.json" \
		--rawfile http "$WORK/logs/http-routes.count" \
		--rawfile paths "$WORK/logs/http-paths.tsv" \
		--rawfile dns "$WORK/expect/dns.count" \
		--rawfile conns "$WORK/logs/conns.count" \
		--rawfile latency "$WORK/seen/latency.tsv" '
		def rows($s): $s | split("\n") | map(select(length > 0) | split("\t"));
		def phase($p): if $event_at == "" then "all" elif $p == "1" then "before" else "after" end;
		($cluster[0]) as $c
		| (reduce $c.pods[] as $p ({}; .[$p.ip] = $p.name)) as $podname
		| (reduce $c.services[] as $s ({}; .[$s.clusterIP] = ("service/" + $s.name))) as $svcname
		| def who($ip): {ip: $ip, pod: ($podname[$ip] // $svcname[$ip] // null)};
		def statuses: group_by(.status) | map({key: .[0].status, value: (map(.n) | add)}) | from_entries;
		(rows($http) | map({p: .[0], phase: phase(.[0]), client: .[1], server: .[2], port: (.[3] | tonumber),
			method: .[4], route: .[5], status: .[6], n: (.[7] | tonumber)})) as $h
		| (rows($paths) | map({k: ([phase(.[0]), .[1], .[2], .[3], .[4], .[5]] | join(" ")), path: .[6]})
			| group_by(.k) | map({key: .[0].k, value: (map(.path) | .[:3])}) | from_entries) as $examples
		| (rows($dns) | map({p: .[0], phase: phase(.[0]), client: .[1], server: .[2], name: .[3], type: .[4],
			rcode: .[5], n: (.[6] | tonumber)})) as $d
		| (rows($conns) | map({p: .[0], phase: phase(.[0]), client: .[1], server: .[2], port: (.[3] | tonumber),
			state: .[4], n: (.[5] | tonumber)})) as $t
		| {
			scenario: $scenario,
			notes: $notes,
			recorded_with: $tools,
			capture: {file: "capture.pcap", bytes: $bytes, packets: $packets,
				first_packet: $first, last_packet: $last, duration_s: $duration},
			event: (if $event_at == "" then null else {name: $event_name, at: $event_at, what: $event_what} end),
			phases: (if $event_at == "" then [{phase: "all", from: $first, to: $last}]
				else [{phase: "before", from: $first, to: $event_at}, {phase: "after", from: $event_at, to: $last}] end),
			http: {
				requests: ($h | map(.n) | add // 0),
				statuses: ($h | statuses),
				by_phase: ($h | group_by(.p) | map({key: .[0].phase, value: {requests: (map(.n) | add), statuses: statuses}}) | from_entries),
				by_route: ($h | group_by([.p, .server, .port, .method, .route]) | map({
					phase: .[0].phase, server: who(.[0].server), port: .[0].port,
					method: .[0].method, route: .[0].route,
					requests: (map(.n) | add), statuses: statuses})),
				calls: ($h | group_by([.p, .client, .server, .port, .method, .route]) | map({
					phase: .[0].phase, client: who(.[0].client), server: who(.[0].server), port: .[0].port,
					method: .[0].method, route: .[0].route,
					paths: $examples[[.[0].phase, .[0].client, .[0].server, (.[0].port | tostring), .[0].method, .[0].route] | join(" ")],
					requests: (map(.n) | add), statuses: statuses}))
			},
			dns: {
				queries: ($d | map(.n) | add // 0),
				rcodes: ($d | group_by(.rcode) | map({key: .[0].rcode, value: (map(.n) | add)}) | from_entries),
				by_name: ($d | group_by([.p, .client, .server, .name, .type]) | map({
					phase: .[0].phase, client: who(.[0].client), server: who(.[0].server),
					name: .[0].name, type: .[0].type,
					queries: (map(.n) | add),
					rcodes: (map({key: .rcode, value: .n}) | from_entries)}))
			},
			tcp: {
				connections: ($t | map(.n) | add // 0),
				refused: ($t | map(select(.state == "refused")) | map(.n) | add // 0),
				reset: ($t | map(select(.state | startswith("reset"))) | map(.n) | add // 0),
				by_pair: ($t | group_by([.p, .client, .server, .port]) | map({
					phase: .[0].phase, client: who(.[0].client), server: who(.[0].server), port: .[0].port,
					connections: (map(.n) | add),
					states: (map({key: .state, value: .n}) | from_entries)}))
			},
			latency_ms: (rows($latency) | map({phase: phase(.[0]), server: who(.[1]), port: (.[2] | tonumber),
				method: .[3], route: .[4], requests: (.[5] | tonumber),
				min: (.[6] | tonumber), p50: (.[7] | tonumber), p95: (.[8] | tonumber), max: (.[9] | tonumber)}))
		}
		| if $event_name == "rollout" then . + {rollout_at: $event_at} else . end
		' >"$out/truth.json"
	[[ $(jq .http.requests "$out/truth.json") -eq $(wc -l <"$WORK/expect/http.tsv") ]] || die "truth.json: wrong HTTP total"
	[[ $(jq .dns.queries "$out/truth.json") -eq $(wc -l <"$WORK/expect/dns.tsv") ]] || die "truth.json: wrong DNS total"

	# scenario.json
	local at_hhmm=
	[[ -z $EVENT_EPOCH ]] || at_hhmm=$(hhmm "$EVENT_EPOCH")
	jq -n --arg name "$REC_NAME" --arg description "$description" --arg hhmm "$at_hhmm" \
		--arg rollout "$([[ $EVENT_NAME == rollout ]] && echo "$event_at")" \
		--argjson questions "$questions" '
		{name: $name, description: $description, capture: "capture.pcap", cluster: "cluster.json"}
		+ (if $rollout == "" then {} else {rollout_at: $rollout} end)
		+ {questions: ($questions | map(.ask |= gsub("{{HHMM}}"; $hhmm)))}
		' >"$out/scenario.json"

	# Every fact must be something the capture or the cluster file holds: each
	# of facts_all, one at least of each facts_any group.
	local fact group found
	while IFS= read -r fact; do
		_rec_fact_present "$fact" || die "fact \"$fact\" is nowhere in the capture or cluster file"
	done < <(jq -r '.questions[].facts_all[]?' "$out/scenario.json" | sort -u)
	while IFS= read -r group; do
		found=
		while IFS= read -r fact; do
			! _rec_fact_present "$fact" || found=1
		done < <(jq -r '.[]' <<<"$group")
		[[ -n $found ]] || die "no fact of $group is in the capture or cluster file"
	done < <(jq -c '.questions[].facts_any[]?' "$out/scenario.json")
	ok "scenario.json: $(jq '.questions | length' "$out/scenario.json") questions; every fact is in the capture, routes or cluster file"

	# Replace the scenario's files only now.
	mkdir -p "$REC_OUT"
	install -m 0644 "$out/capture.pcap" "$out/cluster.json" "$out/truth.json" "$out/scenario.json" "$REC_OUT/"
	log "wrote $REC_OUT"
	capinfos -c -u -s "$REC_OUT/capture.pcap" | sed 's/^/    /' >&2
	jq -c '{http: .http.by_phase, dns: .dns.rcodes, tcp: {connections: .tcp.connections, refused: .tcp.refused}, event: .event.at}' \
		"$REC_OUT/truth.json" >&2
}

# _rec_fact_present FACT: the fact occurs (case-insensitively) in the
# capture's text, in a route of truth.json or in the cluster file.
_rec_fact_present() {
	local f=$1
	[[ -s $WORK/logs/strings.txt ]] || {
		{
			rec_tshark -T fields -e http.request.method -e http.request.uri -e http.response.code \
				-e http.www_authenticate -e dns.qry.name
			LC_ALL=C tr -c '[:print:]' '\n' <"$WORK/out/capture.pcap" | grep -E '.{3}'
			jq -r '.http.calls[].route, (.dns.by_name[].rcodes | keys[]), (.tcp.by_pair[].states | keys[])' "$WORK/out/truth.json"
			cat "$WORK/out/cluster.json"
		} >"$WORK/logs/strings.txt"
	}
	grep -Fqi -- "$f" "$WORK/logs/strings.txt"
}
