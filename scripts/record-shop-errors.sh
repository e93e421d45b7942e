#!/usr/bin/env bash
# record-shop-errors.sh — record a capture of a small shop API whose errors are
# known, from a real nginx on loopback, and write its ground truth.
#
# Outputs (relative to the repository root):
#   internal/demo/shop-errors.pcap           nginx on 127.0.0.5:8080, tcpdump -i lo
#   internal/demo/shop-errors.expected.json  requests by endpoint and status
#
# nginx (own configuration, run from a temporary directory) emulates the API:
#
#   GET  /api/products              200
#   GET  /api/products/{id}         200
#   GET  /api/products/{id}/reviews 404  (route missing: every time)
#   GET  /api/recommendations       503  (backend down: every time)
#   POST /api/cart                  201
#   POST /api/checkout              500 when X-Payment-Method is "giftcard", else 200
#   GET  /healthz                   200
#
# Four clients, each curl from its own loopback address, run at the same time
# for about 75 seconds: two web shoppers and a mobile app (one keep-alive
# connection per session, requests paced by curl --rate) and a health checker
# (one connection per probe). Every request and its status is fixed in a plan
# the script builds first, without randomness, so the counts are exact; only
# the timing differs between runs.
#
# The expected file is computed from the plan and then checked three ways
# before anything is replaced: against the status curl got for every request,
# against tshark's request/response pairs in the capture (method, route and
# status for each request), and against tshark's "-z http,tree" status counts.
#
# Needs root (tcpdump) and: nginx, tcpdump, tshark, capinfos, curl, jq, ss.
# The two output files are only replaced once every check has passed, so a
# failed or interrupted run leaves them as they were and re-running is safe.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT_DIR=$ROOT/internal/demo

NGINX_ADDR=127.0.0.5
NGINX_PORT=8080
HOST=shop.test
MAX_PCAP_BYTES=1000000

# Client source addresses (all on lo): two web shoppers, the mobile app, the
# health checker.
WEB1_ADDR=127.0.0.11
WEB2_ADDR=127.0.0.12
MOBILE_ADDR=127.0.0.13
PROBE_ADDR=127.0.0.14

WORK=
TCPDUMP_PID=
NGINX_PID=
CLIENT_PIDS=()

log() { printf '==> %s\n' "$*" >&2; }
die() {
	printf 'record-shop-errors: %s\n' "$*" >&2
	exit 1
}

# shellcheck source=scripts/lib/proc.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/proc.sh"

cleanup() {
	local rc=$? pid
	set +e
	for pid in "${CLIENT_PIDS[@]}"; do
		stop_pid "$pid"
	done
	if [[ -n $TCPDUMP_PID ]]; then
		kill -INT "$TCPDUMP_PID" 2>/dev/null
		wait "$TCPDUMP_PID" 2>/dev/null
	fi
	stop_pid "$NGINX_PID"
	if [[ $rc -ne 0 && $rc -ne 130 && $rc -ne 143 && -n $WORK && -d $WORK/logs ]]; then
		printf 'record-shop-errors: failed; logs follow\n' >&2
		tail -n 20 "$WORK"/logs/* >&2 2>/dev/null
	fi
	[[ -n $WORK ]] && rm -rf "$WORK"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

[[ $EUID -eq 0 ]] || die "must run as root (tcpdump)"
for cmd in nginx tcpdump tshark capinfos curl jq ss; do
	command -v "$cmd" >/dev/null 2>&1 || [[ -x /usr/sbin/$cmd ]] ||
		die "missing command: $cmd"
done
NGINX_BIN=$(command -v nginx || echo /usr/sbin/nginx)

# port_free ADDR PORT: fail if something already listens there, so a stale
# server is never mistaken for ours.
port_free() {
	if ss -H -ltn "( sport = :$2 )" | awk '{print $4}' | grep -Eq "^($1|0\.0\.0\.0|\*|\[::\]):$2\$"; then
		die "$1:$2/tcp is already in use"
	fi
}

WORK=$(mktemp -d /tmp/wirescope-shop.XXXXXX)
mkdir -p "$WORK/logs" "$WORK/out" "$WORK/plan" "$WORK/nginx/tmp"

###############################################################################
# The plan: every request, in order, per client.
###############################################################################

# One line per request, tab-separated:
#   session  method  path  expected-status  payment-method|-  body|-
# The sessions of a client run one after another; the requests of a session
# share one curl invocation and so one keep-alive connection.
req() { printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$@"; }

# plan_web C: shopper C (1 or 2), 15 sessions of 6 or 7 requests.
plan_web() {
	local c=$1 k id1 id2 pay status query
	for k in $(seq 0 14); do
		id1=$((1001 + (7 * k + 13 * c) % 40))
		id2=$((1001 + (11 * k + 5 * c + 17) % 40))
		query=
		((k % 3 == 0)) || query="?category=shoes&page=$((k % 3 + 1))"
		pay=card
		status=200
		if ((k % 5 == 4)); then
			pay=giftcard
			status=500
		fi
		req "$k" GET "/api/products$query" 200 - -
		req "$k" GET /api/recommendations 503 - -
		req "$k" GET "/api/products/$id1" 200 - -
		((k % 3 == 2)) || req "$k" GET "/api/products/$id1/reviews" 404 - -
		req "$k" GET "/api/products/$id2" 200 - -
		req "$k" POST /api/cart 201 - "{\"product_id\":$id2,\"qty\":$((k % 3 + 1))}"
		req "$k" POST /api/checkout "$status" "$pay" "{\"cart\":\"web$c-$k\",\"payment\":\"$pay\"}"
	done
}

# plan_mobile: the mobile app, 12 sessions of 4 to 6 requests.
plan_mobile() {
	local k id pay status
	for k in $(seq 0 11); do
		id=$((1001 + (3 * k + 29) % 40))
		pay=wallet
		status=200
		if ((k % 2 == 1)); then
			pay=giftcard
			status=500
		fi
		((k >= 7)) || req "$k" GET /api/recommendations 503 - -
		((k % 2 == 1)) || req "$k" GET /api/products 200 - -
		req "$k" GET "/api/products/$id" 200 - -
		((k >= 3)) || req "$k" GET "/api/products/$id/reviews" 404 - -
		req "$k" POST /api/cart 201 - "{\"product_id\":$id,\"qty\":1}"
		req "$k" POST /api/checkout "$status" "$pay" "{\"cart\":\"app-$k\",\"payment\":\"$pay\"}"
	done
}

# plan_probe: the health checker, 36 probes, each its own connection.
plan_probe() {
	local k
	for k in $(seq 0 35); do
		req "$k" GET /healthz 200 - -
	done
}

plan_web 1 >"$WORK/plan/web1.tsv"
plan_web 2 >"$WORK/plan/web2.tsv"
plan_mobile >"$WORK/plan/mobile.tsv"
plan_probe >"$WORK/plan/probe.tsv"

# count: read "method<TAB>path<TAB>status" lines and print the counts as sorted
# "method<TAB>route<TAB>status<TAB>count" lines, where the route is the path
# without its query and with numeric segments as {id}.
count() {
	awk -F'\t' '
		function route(p,    a, n, i, r) {
			sub(/\?.*/, "", p)
			n = split(p, a, "/")
			if (n < 2) return p
			for (i = 2; i <= n; i++) r = r "/" (a[i] ~ /^[0-9]+$/ ? "{id}" : a[i])
			return r
		}
		{ n[$1 "\t" route($2) "\t" $3]++ }
		END { for (k in n) print k "\t" n[k] }
	' | LC_ALL=C sort
}

# The plan's counts.
PLANS=("$WORK"/plan/{web1,web2,mobile,probe}.tsv)
cat "${PLANS[@]}" | awk -F'\t' '{ print $2 "\t" $3 "\t" $4 }' | count >"$WORK/plan/counts.tsv"
PLAN_TOTAL=$(cat "${PLANS[@]}" | wc -l)

###############################################################################
# nginx on 127.0.0.5:8080
###############################################################################

d=$WORK/nginx
cat >"$d/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $d/nginx.pid;
error_log $WORK/logs/nginx-error.log info;
events { worker_connections 64; }
http {
    access_log $WORK/logs/nginx-access.log;
    client_body_temp_path $d/tmp/body;
    proxy_temp_path $d/tmp/proxy;
    fastcgi_temp_path $d/tmp/fastcgi;
    uwsgi_temp_path $d/tmp/uwsgi;
    scgi_temp_path $d/tmp/scgi;
    default_type application/json;
    keepalive_timeout 15;
    keepalive_requests 1000;
    server_tokens off;

    # The payment provider for gift cards is broken.
    map \$http_x_payment_method \$checkout_fails {
        default 0;
        giftcard 1;
    }

    server {
        listen $NGINX_ADDR:$NGINX_PORT;
        server_name $HOST;

        location = /healthz { return 200 '{"status":"ok"}'; }

        location = /api/products {
            return 200 '{"products":[{"id":1001,"name":"Trail runner","price":89.90},{"id":1002,"name":"Leather boot","price":129.00},{"id":1003,"name":"Canvas sneaker","price":49.50}],"page":1}';
        }
        location ~ ^/api/products/(?<product>[0-9]+)\$ {
            return 200 '{"id":\$product,"name":"Shoe \$product","price":79.90,"stock":12}';
        }
        # The reviews service was never routed: every reviews URL is a 404.
        location ~ ^/api/products/[0-9]+/reviews\$ {
            return 404 '{"error":"not_found","path":"\$uri"}';
        }
        # The recommendations backend is down.
        location = /api/recommendations {
            add_header Retry-After 30 always;
            return 503 '{"error":"recommendations unavailable"}';
        }
        location = /api/cart {
            if (\$request_method != POST) { return 405 '{"error":"method_not_allowed"}'; }
            return 201 '{"cart_id":"c-\$connection-\$connection_requests","items":1}';
        }
        location = /api/checkout {
            if (\$request_method != POST) { return 405 '{"error":"method_not_allowed"}'; }
            if (\$checkout_fails) { return 500 '{"error":"payment provider error","provider":"giftcard"}'; }
            return 200 '{"order":"o-\$connection-\$connection_requests","status":"confirmed"}';
        }
        location / { return 404 '{"error":"not_found","path":"\$uri"}'; }
    }
}
EOF

port_free "$NGINX_ADDR" "$NGINX_PORT"
"$NGINX_BIN" -t -q -p "$d/" -e "$WORK/logs/nginx-error.log" -c "$d/nginx.conf" ||
	die "nginx configuration test failed"
"$NGINX_BIN" -p "$d/" -e "$WORK/logs/nginx-error.log" -c "$d/nginx.conf" \
	>"$WORK/logs/nginx.out" 2>&1 &
NGINX_PID=$!

BASE=http://$HOST:$NGINX_PORT
RESOLVE=(--resolve "$HOST:$NGINX_PORT:$NGINX_ADDR")
for _ in $(seq 50); do
	curl -sS --max-time 2 "${RESOLVE[@]}" -o /dev/null "$BASE/healthz" 2>/dev/null && break
	kill -0 "$NGINX_PID" 2>/dev/null || die "nginx exited at start"
	sleep 0.1
done
curl -sS --max-time 2 "${RESOLVE[@]}" -o /dev/null "$BASE/healthz" || die "nginx is not answering"

###############################################################################
# Clients
###############################################################################

# run_client NAME ADDR USER-AGENT RATE PAUSE: run NAME's plan from source
# address ADDR, one curl invocation per session with at most RATE requests per
# second, PAUSE seconds between sessions. Writes "session status method url"
# per request to $WORK/logs/NAME.got.
run_client() {
	local name=$1 addr=$2 ua=$3 rate=$4 pause=$5
	local -a args common
	local session method path status pay body cur='' first
	common=(--interface "$addr" -A "$ua" -o /dev/null -H 'Accept: application/json'
		-w "%{http_code}\t%{method}\t%{url_effective}\t%{num_connects}\n")
	[[ $name == probe ]] && common+=(-H 'Connection: close')
	: >"$WORK/logs/$name.got"

	flush() {
		[[ ${#args[@]} -gt 0 ]] || return 0
		curl -sS --fail-early --max-time 30 "${RESOLVE[@]}" --rate "$rate" "${args[@]}" |
			sed "s/^/$cur\t/" >>"$WORK/logs/$name.got"
		args=()
	}

	args=()
	while IFS=$'\t' read -r session method path status pay body; do
		if [[ $session != "$cur" ]]; then
			if [[ -n $cur ]]; then
				flush
				sleep "$pause"
			fi
			cur=$session
			first=1
		fi
		[[ -n $first ]] || args+=(--next)
		first=
		args+=("${common[@]}" "${RESOLVE[@]}")
		if [[ $method == POST ]]; then
			args+=(-H 'Content-Type: application/json' --data-raw "$body")
			[[ $pay == - ]] || args+=(-H "X-Payment-Method: $pay")
		fi
		args+=("$BASE$path")
	done <"$WORK/plan/$name.tsv"
	flush
}

# start_client NAME DELAY ARGS...: run_client in the background after DELAY s.
start_client() {
	local name=$1 delay=$2
	shift 2
	(
		trap - EXIT INT TERM
		sleep "$delay"
		run_client "$name" "$@"
	) 2>"$WORK/logs/$name.err" &
	CLIENT_PIDS+=($!)
}

###############################################################################
# Record
###############################################################################

PCAP=$WORK/out/shop-errors.pcap
log "recording the shop API at $NGINX_ADDR:$NGINX_PORT (about 75 s)"
: >"$WORK/logs/tcpdump.err"
tcpdump -i lo --immediate-mode -s 0 -U -Z root -w "$PCAP" \
	"host $NGINX_ADDR and tcp port $NGINX_PORT" 2>"$WORK/logs/tcpdump.err" &
TCPDUMP_PID=$!
for _ in $(seq 100); do
	grep -q 'listening on' "$WORK/logs/tcpdump.err" && break
	kill -0 "$TCPDUMP_PID" 2>/dev/null || die "tcpdump did not start: $(cat "$WORK/logs/tcpdump.err")"
	sleep 0.05
done
grep -q 'listening on' "$WORK/logs/tcpdump.err" || die "tcpdump did not start"

start_client web1 0 "$WEB1_ADDR" 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0' 2/s 1.5
start_client probe 0.5 "$PROBE_ADDR" 'kube-probe/1.29' 1/s 2
start_client mobile 1.2 "$MOBILE_ADDR" 'ShopApp/3.4.1 (Android 14; Pixel 8)' 2/s 3
start_client web2 2.5 "$WEB2_ADDR" 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15' 2/s 1.5

rc=0
for pid in "${CLIENT_PIDS[@]}"; do
	wait "$pid" || rc=$?
done
CLIENT_PIDS=()
((rc == 0)) || die "a client failed (exit $rc): $(cat "$WORK"/logs/*.err)"

sleep 1 # let the last packets reach the capture file
kill -INT "$TCPDUMP_PID"
wait "$TCPDUMP_PID" || true
TCPDUMP_PID=
stop_pid "$NGINX_PID"
NGINX_PID=

###############################################################################
# Verify
###############################################################################

log "verifying what curl got"
for name in web1 web2 mobile probe; do
	# Expected and got as "session status method path".
	awk -F'\t' '{ print $1 "\t" $4 "\t" $2 "\t" $3 }' "$WORK/plan/$name.tsv" >"$WORK/plan/$name.want"
	awk -F'\t' -v base="$BASE" '{ u = $4; sub("^" base, "", u); print $1 "\t" $2 "\t" $3 "\t" u }' \
		"$WORK/logs/$name.got" >"$WORK/plan/$name.have"
	if ! diff -u "$WORK/plan/$name.want" "$WORK/plan/$name.have" >"$WORK/logs/$name.diff"; then
		die "$name: curl's statuses differ from the plan: $(head -n 20 "$WORK/logs/$name.diff")"
	fi
	# Keep-alive: one connection per session, and none reused across sessions.
	conns=$(awk -F'\t' '{ n += $5 } END { print n + 0 }' "$WORK/logs/$name.got")
	sessions=$(cut -f1 "$WORK/plan/$name.tsv" | sort -u | wc -l)
	((conns == sessions)) || die "$name: $conns connections for $sessions sessions"
	printf '    ok  %-7s %3d requests on %2d connections, statuses as planned\n' \
		"$name" "$(wc -l <"$WORK/plan/$name.tsv")" "$conns" >&2
done

log "verifying $PCAP with tshark"
# tshark: without its "running as root" warning on the terminal.
tshark() { command tshark "$@" 2>>"$WORK/logs/tshark.err"; }
grep -qx '0 packets dropped by kernel' "$WORK/logs/tcpdump.err" ||
	die "tcpdump dropped packets: $(cat "$WORK/logs/tcpdump.err")"
PCAP_BYTES=$(stat -c %s "$PCAP")
((PCAP_BYTES <= MAX_PCAP_BYTES)) || die "capture is $PCAP_BYTES bytes, over $MAX_PCAP_BYTES"

# Requests and responses, paired by tshark (two passes for http.response_in).
tshark -r "$PCAP" -2 -Y 'http.request' -T fields -E occurrence=f \
	-e frame.number -e http.request.method -e http.request.uri -e http.response_in -e ip.src -e tcp.stream \
	>"$WORK/logs/tshark-requests.tsv"
tshark -r "$PCAP" -2 -Y 'http.response' -T fields -E occurrence=f \
	-e frame.number -e http.response.code -e http.request_in \
	>"$WORK/logs/tshark-responses.tsv"
awk -F'\t' '
	NR == FNR { code[$1] = $2; req[$1] = $3; next }
	$4 == "" || !($4 in code) { printf "frame %s: %s %s has no response\n", $1, $2, $3 > "/dev/stderr"; bad = 1; next }
	req[$4] != $1 { printf "frame %s: response %s is for frame %s\n", $1, $4, req[$4] > "/dev/stderr"; bad = 1; next }
	{ print $2 "\t" $3 "\t" code[$4] }
	END { exit bad }
' "$WORK/logs/tshark-responses.tsv" "$WORK/logs/tshark-requests.tsv" >"$WORK/logs/tshark-pairs.tsv" ||
	die "tshark does not pair every request with its response"
count <"$WORK/logs/tshark-pairs.tsv" >"$WORK/logs/tshark-counts.tsv"
TSHARK_REQUESTS=$(wc -l <"$WORK/logs/tshark-requests.tsv")
TSHARK_RESPONSES=$(wc -l <"$WORK/logs/tshark-responses.tsv")
((TSHARK_REQUESTS == PLAN_TOTAL && TSHARK_RESPONSES == PLAN_TOTAL)) ||
	die "tshark sees $TSHARK_REQUESTS requests and $TSHARK_RESPONSES responses, the plan has $PLAN_TOTAL"
diff -u "$WORK/plan/counts.tsv" "$WORK/logs/tshark-counts.tsv" >"$WORK/logs/counts.diff" ||
	die "tshark's counts by endpoint and status differ from the plan: $(cat "$WORK/logs/counts.diff")"
printf '    ok  %d requests, each answered; counts by method, route and status match the plan\n' "$PLAN_TOTAL" >&2

# tshark's own HTTP statistics: responses by status code, requests by method.
# The tree's rows are "<code> <reason...> <count> ..." under "HTTP Response
# Packets" and "<METHOD> <count> ..." under "HTTP Request Packets".
tshark -r "$PCAP" -q -z http,tree >"$WORK/logs/http-tree.txt"
awk '
	/HTTP Request Packets/ { req = 1; next }
	/Other HTTP Packets/ { req = 0 }
	$1 ~ /^[1-5][0-9][0-9]$/ { for (i = 2; i <= NF; i++) if ($i ~ /^[0-9]+$/) { print $1 "\t" $i; break } }
	req && $1 ~ /^[A-Z]+$/ && $2 ~ /^[0-9]+$/ && $2 > 0 { print $1 "\t" $2 }
' "$WORK/logs/http-tree.txt" | LC_ALL=C sort >"$WORK/logs/tree.tsv"
awk -F'\t' '{ n[$3] += $4; n[$1] += $4 } END { for (s in n) print s "\t" n[s] }' "$WORK/plan/counts.tsv" |
	LC_ALL=C sort >"$WORK/plan/tree.tsv"
diff -u "$WORK/plan/tree.tsv" "$WORK/logs/tree.tsv" >"$WORK/logs/tree.diff" ||
	die "tshark -z http,tree's counts differ from the plan: $(cat "$WORK/logs/tree.diff")"
printf '    ok  tshark -z http,tree: %s\n' "$(tr '\t\n' '= ' <"$WORK/logs/tree.tsv")" >&2

# Clients and connections as tshark sees them.
CLIENT_IPS=$(cut -f5 "$WORK/logs/tshark-requests.tsv" | sort -u -V)
[[ $CLIENT_IPS == "$(printf '%s\n' "$WEB1_ADDR" "$WEB2_ADDR" "$MOBILE_ADDR" "$PROBE_ADDR" | sort -V)" ]] ||
	die "unexpected client addresses: $CLIENT_IPS"
STREAMS=$(cut -f6 "$WORK/logs/tshark-requests.tsv" | sort -u | wc -l)
SESSIONS=$(for f in "${PLANS[@]}"; do cut -f1 "$f" | sort -u; done | wc -l)
((STREAMS == SESSIONS)) || die "tshark sees $STREAMS TCP connections, the plan has $SESSIONS sessions"
KEEPALIVE=$(cut -f6 "$WORK/logs/tshark-requests.tsv" | sort | uniq -c | awk '$1 >= 5' | wc -l)
((KEEPALIVE >= 20)) || die "only $KEEPALIVE connections carry >= 5 requests"
printf '    ok  %d client addresses, %d TCP connections (%d with >= 5 requests)\n' \
	"$(wc -l <<<"$CLIENT_IPS")" "$STREAMS" "$KEEPALIVE" >&2

###############################################################################
# The expected file
###############################################################################

# rfc3339 EPOCH: tshark's frame.time_epoch ("1717243200.123456000") as UTC
# RFC 3339 with nanoseconds, trailing zeros dropped (Go's time.RFC3339Nano).
rfc3339() {
	local sec=${1%.*} frac=${1#*.}
	[[ $1 == *.* ]] || frac=
	frac=${frac}000000000
	frac=${frac:0:9}
	while [[ $frac == *0 ]]; do frac=${frac%0}; done
	printf '%s%s%sZ' "$(date -u -d "@$sec" +%Y-%m-%dT%H:%M:%S)" "${frac:+.}" "$frac"
}
tshark -r "$PCAP" -T fields -e frame.time_epoch >"$WORK/logs/times.txt"
PACKETS=$(wc -l <"$WORK/logs/times.txt")
FIRST=$(rfc3339 "$(head -n 1 "$WORK/logs/times.txt")")
LAST=$(rfc3339 "$(tail -n 1 "$WORK/logs/times.txt")")
NGINX_VERSION=$("$NGINX_BIN" -v 2>&1 | sed 's|.*nginx/||')
CURL_VERSION=$(curl --version | awk 'NR == 1 { print $2 }')

client_json() {
	local name=$1 addr=$2 kind=$3
	jq -n --arg name "$name" --arg ip "$addr" --arg kind "$kind" \
		--argjson requests "$(wc -l <"$WORK/plan/$name.tsv")" \
		--argjson connections "$(cut -f1 "$WORK/plan/$name.tsv" | sort -u | wc -l)" \
		'{name: $name, ip: $ip, kind: $kind, requests: $requests, connections: $connections}'
}
{
	client_json web1 "$WEB1_ADDR" browser
	client_json web2 "$WEB2_ADDR" browser
	client_json mobile "$MOBILE_ADDR" mobile-app
	client_json probe "$PROBE_ADDR" health-checker
} | jq -s . >"$WORK/logs/clients.json"

jq -R -s \
	--arg first "$FIRST" --arg last "$LAST" \
	--arg server "$NGINX_ADDR" --argjson port "$NGINX_PORT" \
	--argjson packets "$PACKETS" --argjson connections "$STREAMS" \
	--slurpfile clients "$WORK/logs/clients.json" \
	--arg notes "Recorded from nginx $NGINX_VERSION on $NGINX_ADDR:$NGINX_PORT (curl $CURL_VERSION from four loopback addresses) by scripts/record-shop-errors.sh. Counts come from the script's fixed plan and were checked against curl and against tshark's request/response pairs and -z http,tree. route is the path without its query, numeric segments as {id}. POST /api/checkout fails (500) exactly when the request has X-Payment-Method: giftcard." '
	[split("\n")[] | select(length > 0) | split("\t") | {method: .[0], route: .[1], status: .[2], n: (.[3] | tonumber)}] as $rows
	| ($rows | group_by([.method, .route]) | map({
		method: .[0].method,
		route: .[0].route,
		requests: (map(.n) | add),
		errors: (map(select((.status | tonumber) >= 400) | .n) | add // 0),
		statuses: (map({key: .status, value: .n}) | from_entries)
	}) | sort_by(-.errors, .method, .route)) as $endpoints
	| {
		notes: $notes,
		capture: "shop-errors.pcap",
		first_packet: $first,
		last_packet: $last,
		packets: $packets,
		server_ip: $server,
		server_port: $port,
		client_ips: ($clients[0] | map(.ip)),
		clients: $clients[0],
		connections: $connections,
		total: ($rows | map(.n) | add),
		statuses: ($rows | group_by(.status) | map({key: .[0].status, value: (map(.n) | add)}) | from_entries),
		endpoints: $endpoints
	}' "$WORK/plan/counts.tsv" >"$WORK/out/shop-errors.expected.json"
[[ $(jq .total "$WORK/out/shop-errors.expected.json") -eq $PLAN_TOTAL ]] || die "expected file total is wrong"

# Only now, with every check passed, replace the checked-in files.
mkdir -p "$OUT_DIR"
install -m 0644 "$PCAP" "$WORK/out/shop-errors.expected.json" "$OUT_DIR/"

log "done"
capinfos "$OUT_DIR/shop-errors.pcap"
jq -c '.endpoints[]' "$OUT_DIR/shop-errors.expected.json" >&2
