#!/usr/bin/env bash
# record-testdata.sh — re-record the HTTP/1.x and DNS dissector test captures
# from real servers on loopback, verify them with tshark and regenerate their
# truth files.
#
# Outputs (relative to the repository root):
#   dissect/http1/testdata/nginx.pcap        nginx on 127.0.0.2:8080, tcpdump -i lo
#   dissect/http1/testdata/nginx.truth.json
#   dissect/dns/testdata/dnsmasq.pcap        dnsmasq on 127.0.0.3:53, tcpdump -i any
#   dissect/dns/testdata/dnsmasq.truth.json  (Linux cooked SLL2, nanosecond stamps)
#
# Needs root (tcpdump, dnsmasq on port 53) and: nginx, dnsmasq, tcpdump, tshark,
# capinfos, curl, nc (netcat-openbsd), dig, ss and go. It uses no system nginx
# or dnsmasq configuration and no systemd; every server it starts runs from a
# temporary directory and is stopped on exit. The four output files are only
# replaced once both captures have passed all checks and both truth files have
# been generated, so a failed or interrupted run leaves them as they were and
# re-running is safe.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HTTP_DIR=$ROOT/dissect/http1/testdata
DNS_DIR=$ROOT/dissect/dns/testdata

NGINX_ADDR=127.0.0.2
NGINX_PORT=8080
NGINX_BACKEND_PORT=8081 # second server block, only reached through proxy_pass
DNS_ADDR=127.0.0.3
DNS_BACKEND_PORT=5300 # second dnsmasq, upstream for the SERVFAIL case
DNS_DEAD_ADDR=127.0.0.4 # nothing listens here: a query without response

WORK=
TCPDUMP_PID=
NGINX_PID=
DNSMASQ_PID=
DNSMASQ_BACKEND_PID=

log() { printf '==> %s\n' "$*" >&2; }
die() {
	printf 'record-testdata: %s\n' "$*" >&2
	exit 1
}

# shellcheck source=scripts/lib/proc.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/proc.sh"

cleanup() {
	local rc=$?
	set +e
	tcpdump_stop
	stop_pid "$NGINX_PID"
	stop_pid "$DNSMASQ_PID"
	stop_pid "$DNSMASQ_BACKEND_PID"
	if [[ $rc -ne 0 && $rc -ne 130 && $rc -ne 143 && -n $WORK && -d $WORK/logs ]]; then
		printf 'record-testdata: failed; server logs follow\n' >&2
		tail -n 20 "$WORK"/logs/* >&2 2>/dev/null
	fi
	[[ -n $WORK ]] && rm -rf "$WORK"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

[[ $EUID -eq 0 ]] || die "must run as root (tcpdump, dnsmasq on port 53)"
for cmd in nginx dnsmasq tcpdump tshark capinfos curl nc dig ss go; do
	command -v "$cmd" >/dev/null 2>&1 || [[ -x /usr/sbin/$cmd ]] ||
		die "missing command: $cmd"
done
NGINX_BIN=$(command -v nginx || echo /usr/sbin/nginx)
DNSMASQ_BIN=$(command -v dnsmasq || echo /usr/sbin/dnsmasq)

# port_free ADDR PORT PROTO: fail if something already listens there, so a
# stale server is never mistaken for ours.
port_free() {
	local flag=-ltn
	[[ $3 == udp ]] && flag=-lun
	if ss -H "$flag" "( sport = :$2 )" | awk '{print $4}' | grep -Eq "^($1|0\.0\.0\.0|\*|\[::\]):$2\$"; then
		die "$1:$2/$3 is already in use"
	fi
}

WORK=$(mktemp -d /tmp/wirescope-record.XXXXXX)
chmod 755 "$WORK" # nginx workers run as nobody and must read the docroot
mkdir -p "$WORK/logs" "$WORK/out"

# start_capture IFACE OUT FILTER [TCPDUMP OPTIONS...]
start_capture() {
	local iface=$1 out=$2 filter=$3
	shift 3
	# tcpdump_start adds --immediate-mode: without it, packets still in the
	# kernel ring buffer's current block are lost when tcpdump is
	# interrupted (seen with -i any).
	tcpdump_start "$WORK/logs/tcpdump.err" -i "$iface" "$@" -w "$out" "$filter" ||
		die "tcpdump did not start: $(cat "$WORK/logs/tcpdump.err")"
}

stop_capture() {
	tcpdump_stop 1 # let the last packets reach the capture file
}

# check PCAP DESCRIPTION DISPLAY-FILTER [MIN]: at least MIN (default 1) frames match.
check() {
	local pcap=$1 what=$2 filter=$3 min=${4:-1} n
	n=$(tshark -r "$pcap" -2 -Y "$filter" 2>/dev/null | wc -l)
	if ((n < min)); then
		die "$(basename "$pcap"): expected >= $min frame(s) with $what ($filter), tshark saw $n"
	fi
	printf '    ok  %-58s %3d frame(s)\n' "$what" "$n" >&2
}

# check_awk PCAP DESCRIPTION AWK-PROGRAM TSHARK-ARGS...: the awk program reads
# tshark's output and must exit 0.
check_awk() {
	local pcap=$1 what=$2 prog=$3
	shift 3
	if ! tshark -r "$pcap" -2 "$@" 2>/dev/null | awk -F'\t' "$prog"; then
		die "$(basename "$pcap"): expected $what"
	fi
	printf '    ok  %s\n' "$what" >&2
}

###############################################################################
# HTTP/1.x: nginx on 127.0.0.2:8080
###############################################################################

record_http() {
	local d=$WORK/nginx www=$WORK/nginx/www pcap=$WORK/out/nginx.pcap
	mkdir -p "$d/tmp" "$www/css" "$www/dav" "$WORK/req"
	chmod 777 "$www/dav" # PUT/DELETE target, written by the worker

	cat >"$www/index.html" <<'EOF'
<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Shoe shop</title><link rel="stylesheet" href="/css/shop.css"></head>
<body>
<h1>Shoe shop</h1>
<ul>
<li><a href="/search?q=shoes&amp;page=2">All shoes</a></li>
<li><a href="/catalog.txt">Catalogue (text)</a></li>
</ul>
</body>
</html>
EOF
	cat >"$www/css/shop.css" <<'EOF'
body { font-family: sans-serif; margin: 2em; }
h1 { color: #335; }
EOF
	# ~40 KB of text that gzip cannot squeeze into a single small chunk: a
	# catalogue with pseudo-random (Park-Miller, fixed seed) numbers.
	awk 'BEGIN {
		split("runner trail boot sandal loafer sneaker clog slipper oxford derby", n, " ");
		split("red blue black white green grey brown navy", c, " ");
		s = 20240601;
		for (i = 1; i <= 620; i++) {
			s = (s * 16807) % 2147483647; a = s;
			s = (s * 16807) % 2147483647; b = s;
			printf "%05d SKU-%08d %-8s %-6s size %2d %7.2f EUR stock %3d\n",
				i, a % 100000000, n[a % 10 + 1], c[b % 8 + 1], 36 + b % 12, (a % 20000) / 100, b % 500;
		}
	}' >"$www/catalog.txt"
	head -c 200000 /dev/zero | tr '\0' 'a' >"$www/big.bin"
	# Fixed mtimes give stable ETag and Last-Modified headers across runs.
	find "$www" -type f -exec touch -d '2024-06-01 12:00:00 UTC' {} +

	printf '{"sku":"SHOE-42","size":42,"qty":1}' >"$WORK/req/order.json"
	printf '{"cart":[{"sku":"SHOE-42","qty":1},{"sku":"BOOT-07","qty":2}]}' >"$WORK/req/cart.json"
	head -c 3000 "$www/catalog.txt" >"$WORK/req/stock-update.txt"
	# Larger than curl's 1 KB threshold and sent after the 100 Continue.
	awk 'BEGIN { printf "{\"items\":["; for (i = 1; i <= 60; i++) printf "%s{\"sku\":\"SKU-%04d\",\"qty\":%d}", (i > 1 ? "," : ""), i, i % 7 + 1; printf "]}" }' >"$WORK/req/bulk-order.json"

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
    types {
        text/html html;
        text/css css;
        text/plain txt;
        application/json json;
        application/octet-stream bin;
    }
    default_type application/octet-stream;
    keepalive_timeout 5;
    server_tokens off;

    gzip on;
    gzip_types text/plain application/json;
    gzip_min_length 0;
    gzip_buffers 2 4k; # flush every 8 KB of gzip output: several chunks per response
    gzip_http_version 1.0; # HTTP/1.0 + gzip: no length known, body ends at close

    server {
        listen $NGINX_ADDR:$NGINX_PORT;
        server_name shop.test;
        root $www;

        location = /old-shop { return 301 /index.html; }
        location = /error { return 500 "internal error\n"; }
        location = /maintenance { return 503 "down for maintenance\n"; }
        location = /ping { return 204; }
        location = /search {
            default_type application/json;
            return 200 '{"q":"\$arg_q","page":"\$arg_page","results":[]}';
        }
        location = /api/orders {
            default_type application/json;
            return 201 '{"id":42}';
        }
        location /api/orders/ {
            default_type application/json;
            return 200 '{"id":42,"qty":2}';
        }
        # Reading the body for the upstream is what makes nginx answer
        # "Expect: 100-continue" with an interim 100 and decode chunked bodies.
        location = /upload { proxy_pass http://$NGINX_ADDR:$NGINX_BACKEND_PORT; }
        location /dav/ {
            dav_methods PUT DELETE;
            client_max_body_size 1m;
        }
    }

    server {
        listen $NGINX_ADDR:$NGINX_BACKEND_PORT;
        location / {
            default_type text/plain;
            return 200 "stored \$content_length bytes\n";
        }
    }
}
EOF
	port_free "$NGINX_ADDR" "$NGINX_PORT" tcp
	port_free "$NGINX_ADDR" "$NGINX_BACKEND_PORT" tcp
	"$NGINX_BIN" -t -q -p "$d/" -e "$WORK/logs/nginx-error.log" -c "$d/nginx.conf" ||
		die "nginx configuration test failed"
	"$NGINX_BIN" -p "$d/" -e "$WORK/logs/nginx-error.log" -c "$d/nginx.conf" \
		>"$WORK/logs/nginx.out" 2>&1 &
	NGINX_PID=$!

	local base=http://shop.test:$NGINX_PORT
	local -a curl_opts=(-sS --max-time 10 --resolve "shop.test:$NGINX_PORT:$NGINX_ADDR")
	for _ in $(seq 50); do
		curl "${curl_opts[@]}" -o /dev/null "$base/index.html" 2>/dev/null && break
		kill -0 "$NGINX_PID" 2>/dev/null || die "nginx exited at start"
		sleep 0.1
	done
	curl "${curl_opts[@]}" -o /dev/null "$base/index.html" || die "nginx is not answering"

	# c ARGS...: one curl invocation; prints "status method url" per transfer.
	c() {
		curl "${curl_opts[@]}" -o /dev/null -w '    %{http_code} %{method} %{url_effective}\n' "$@" >&2
	}

	log "recording HTTP/1.x from nginx at $NGINX_ADDR:$NGINX_PORT"
	start_capture lo "$pcap" "host $NGINX_ADDR and tcp port $NGINX_PORT"

	# 1. Plain statuses, one connection each.
	c "$base/index.html"
	c "$base/no/such/page.html"
	c "$base/old-shop"
	c "$base/error"
	c "$base/maintenance"
	c "$base/ping"
	c "$base/search?q=shoes&page=2"
	# 2. Keep-alive: three requests over one connection.
	c -o /dev/null -o /dev/null "$base/index.html" "$base/css/shop.css" "$base/search?q=boots&page=1"
	# 3. HEAD of a page with a body (its ETag feeds the conditional GET).
	c -I -D "$WORK/req/head.txt" "$base/index.html"
	local etag
	etag=$(awk 'tolower($1) == "etag:" { sub(/\r$/, "", $2); print $2 }' "$WORK/req/head.txt")
	[[ -n $etag ]] || die "no ETag in the HEAD response"
	# 4. POST JSON, PUT, PATCH, DELETE, OPTIONS, PROPFIND.
	c -H 'Content-Type: application/json' -d @"$WORK/req/order.json" "$base/api/orders"
	c -H 'Content-Type: application/json' -T "$WORK/req/cart.json" "$base/dav/cart.json"
	c -X PATCH -H 'Content-Type: application/json' -d '{"qty":2}' "$base/api/orders/42"
	c -X DELETE "$base/dav/cart.json"
	c -X OPTIONS "$base/index.html"
	c -X PROPFIND -H 'Depth: 1' "$base/dav/"
	# 5. Expect: 100-continue -> interim 100, then the final response.
	c -H 'Expect: 100-continue' -H 'Content-Type: application/json' \
		--data-binary @"$WORK/req/bulk-order.json" "$base/upload"
	# 6. Chunked gzip response; chunked request body.
	c --compressed "$base/catalog.txt"
	c -H 'Transfer-Encoding: chunked' -H 'Expect:' -H 'Content-Type: text/plain' \
		--data-binary @"$WORK/req/stock-update.txt" "$base/upload"
	# ... and one streamed from a pipe: a chunk per write, in separate segments.
	{
		printf 'sku=SHOE-42 qty=1\n'
		sleep 0.1
		printf 'sku=BOOT-07 qty=2\n'
		sleep 0.1
		printf 'sku=SOCK-01 qty=5\n'
	} | c -T - -X POST -H 'Expect:' -H 'Content-Type: text/plain' "$base/upload"
	# 7. Large body; range request.
	c "$base/big.bin"
	c -r 0-1023 "$base/big.bin"
	# 8. Conditional GET -> 304.
	c -H "If-None-Match: $etag" "$base/index.html"
	# 9. HTTP/1.0, and an HTTP/1.0 gzip response delimited by connection close.
	c --http1.0 "$base/index.html"
	c --http1.0 --compressed "$base/catalog.txt"
	# 10. Pipelining: three requests in one write on one connection.
	printf '%s' \
		"GET /index.html HTTP/1.1"$'\r\n'"Host: shop.test"$'\r\n\r\n' \
		"GET /css/shop.css HTTP/1.1"$'\r\n'"Host: shop.test"$'\r\n\r\n' \
		"GET /search?q=socks&page=1 HTTP/1.1"$'\r\n'"Host: shop.test"$'\r\n'"Connection: close"$'\r\n\r\n' |
		nc -q 2 "$NGINX_ADDR" "$NGINX_PORT" >"$WORK/req/pipeline.out"
	grep -a '^HTTP/' "$WORK/req/pipeline.out" | sed 's/^/    pipelined: /' >&2

	stop_capture
	stop_pid "$NGINX_PID"
	NGINX_PID=

	log "verifying $pcap"
	check "$pcap" "GET 200 text/html" 'http.response.code==200 && http.content_type contains "text/html"'
	local code
	for code in 404 301 500 503 204 201 206 304 100; do
		check "$pcap" "status $code" "http.response.code==$code"
	done
	check "$pcap" "query-string URI" 'http.request.uri.query contains "q=shoes"'
	check_awk "$pcap" "a keep-alive connection with >= 3 requests in separate frames" \
		'{ n[$1]++ } END { for (s in n) if (n[s] >= 3) exit 0; exit 1 }' \
		-Y 'http.request && !(http.request.method contains " ")' -T fields -e tcp.stream -E occurrence=f
	check "$pcap" "HEAD answered" 'http.request.method=="HEAD" && http.response_in'
	check "$pcap" "POST with JSON body" 'http.request.method=="POST" && http.content_type contains "application/json" && http.content_length>0'
	local m
	for m in PUT PATCH DELETE OPTIONS PROPFIND; do
		check "$pcap" "$m request" "http.request.method==\"$m\""
	done
	check_awk "$pcap" "100 Continue followed by a final response on the same connection" \
		'$2 == "100" { c[$1] = 1; next } ($1 in c) { ok = 1 } END { exit !ok }' \
		-Y http.response -T fields -e tcp.stream -e http.response.code
	check "$pcap" "chunked gzip response" 'http.response && http.transfer_encoding=="chunked" && http.content_encoding=="gzip"'
	check "$pcap" "chunked request bodies" 'http.request && http.transfer_encoding=="chunked"' 2
	check_awk "$pcap" "a chunked gzip response with >= 2 data chunks" \
		'{ if (split($2, c, ",") >= 3) ok = 1 } END { exit !ok }' \
		-Y 'http.response && http.transfer_encoding=="chunked" && http.content_encoding=="gzip"' \
		-T fields -e frame.number -e http.chunk_size -E occurrence=a
	check_awk "$pcap" "a chunked request with >= 3 data chunks" \
		'{ if (split($2, c, ",") >= 4) ok = 1 } END { exit !ok }' \
		-Y 'http.request && http.transfer_encoding=="chunked"' \
		-T fields -e frame.number -e http.chunk_size -E occurrence=a
	check "$pcap" "200 with a >= 200000-byte body" 'http.response.code==200 && http.content_length>=200000'
	check "$pcap" "HTTP/1.0 requests" 'http.request.version=="HTTP/1.0"' 2
	check "$pcap" "close-delimited response (no Content-Length, not chunked)" \
		'http.response.code==200 && http.content_encoding=="gzip" && !http.content_length_header && !http.transfer_encoding'
	check_awk "$pcap" "several requests in one TCP segment (pipelining)" \
		'$2 ~ / / { ok = 1 } END { exit !ok }' \
		-Y http.request -T fields -e frame.number -e http.request.method -E occurrence=a -E aggregator=/s
}

###############################################################################
# DNS: dnsmasq on 127.0.0.3:53
###############################################################################

record_dns() {
	local d=$WORK/dnsmasq pcap=$WORK/out/dnsmasq.pcap
	mkdir -p "$d"

	port_free "$DNS_ADDR" 53 udp
	port_free "$DNS_ADDR" 53 tcp
	port_free "$DNS_ADDR" "$DNS_BACKEND_PORT" udp
	port_free "$DNS_ADDR" "$DNS_BACKEND_PORT" tcp

	# The backend answers bogus.example without DNSSEC signatures and refuses
	# everything else. The front validates bogus.example against a made-up
	# trust anchor, so its answer is bogus and the client gets SERVFAIL.
	"$DNSMASQ_BIN" --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
		--bind-interfaces --listen-address="$DNS_ADDR" --port="$DNS_BACKEND_PORT" \
		--pid-file="$d/backend.pid" --log-queries --log-facility="$WORK/logs/dnsmasq-backend.log" \
		--address=/bogus.example/192.0.2.99 \
		>"$WORK/logs/dnsmasq-backend.out" 2>&1 &
	DNSMASQ_BACKEND_PID=$!

	# shellcheck disable=SC2054 # the commas belong to dnsmasq's option values
	local -a zone=(
		--local=/cluster.local/ # unknown names in cluster.local are NXDOMAIN
		--host-record=web.shop.svc.cluster.local,10.96.0.10,fd00:96::10
		--host-record=db.shop.svc.cluster.local,10.96.0.20
		--host-record=mail.shop.svc.cluster.local,10.96.0.25
		--cname=www.shop.svc.cluster.local,web.shop.svc.cluster.local
		--srv-host=_http._tcp.web.shop.svc.cluster.local,web.shop.svc.cluster.local,80,0,100
		--txt-record=web.shop.svc.cluster.local,owner=team-shop,tier=frontend # two strings
		--mx-host=shop.svc.cluster.local,mail.shop.svc.cluster.local,10
		--ptr-record=99.0.96.10.in-addr.arpa,legacy.shop.svc.cluster.local
		# An authoritative zone, for SOA and NS answers. It is kept apart from
		# cluster.local: dnsmasq 2.90 was seen closing a TCP connection after
		# the first authoritative answer, at random (apparently an uninitialised
		# "stale" flag on that path of tcp_request()), which would break the
		# multi-query TCP connection below.
		--auth-server=ns1.shop.internal,"$DNS_ADDR"
		--auth-zone=shop.internal
		--auth-soa=2024060101,hostmaster.shop.internal
		--host-record=api.shop.internal,10.96.1.30
		--server=/bogus.example/"$DNS_ADDR#$DNS_BACKEND_PORT"
		--dnssec
		# IANA root KSK-2017, and a made-up anchor that nothing can match.
		--trust-anchor=.,20326,8,2,E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D
		--trust-anchor=bogus.example,12345,13,2,0000000000000000000000000000000000000000000000000000000000000000
	)
	"$DNSMASQ_BIN" --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
		--bind-interfaces --listen-address="$DNS_ADDR" --port=53 \
		--pid-file="$d/dnsmasq.pid" --log-queries=extra --log-facility="$WORK/logs/dnsmasq.log" \
		"${zone[@]}" >"$WORK/logs/dnsmasq.out" 2>&1 &
	DNSMASQ_PID=$!

	for _ in $(seq 50); do
		dig @"$DNS_ADDR" +tries=1 +timeout=1 +short web.shop.svc.cluster.local A >/dev/null 2>&1 &&
			dig @"$DNS_ADDR" -p "$DNS_BACKEND_PORT" +tries=1 +timeout=1 +short x.bogus.example A >/dev/null 2>&1 &&
			break
		kill -0 "$DNSMASQ_PID" 2>/dev/null || die "dnsmasq exited at start"
		kill -0 "$DNSMASQ_BACKEND_PID" 2>/dev/null || die "backend dnsmasq exited at start"
		sleep 0.1
	done

	# q ARGS...: one dig invocation; prints the status of each answer.
	q() {
		dig @"$DNS_ADDR" +tries=1 +timeout=2 "$@" 2>&1 |
			awk -v a="$*" '/->>HEADER<<-/ { s = $6; sub(/,$/, "", s); print "    " s "\t" a }' >&2 || true
	}

	log "recording DNS from dnsmasq at $DNS_ADDR:53"
	start_capture any "$pcap" "(host $DNS_ADDR or host $DNS_DEAD_ADDR) and port 53" --time-stamp-precision=nano

	# UDP
	q web.shop.svc.cluster.local A
	q web.shop.svc.cluster.local AAAA
	q www.shop.svc.cluster.local CNAME
	q www.shop.svc.cluster.local A
	q _http._tcp.web.shop.svc.cluster.local SRV
	q web.shop.svc.cluster.local TXT
	q shop.svc.cluster.local MX
	q -x 10.96.0.99 # PTR from --ptr-record
	q -x 10.96.0.10 # PTR from --host-record
	q wbe.shop.svc.cluster.local A # misspelt: NXDOMAIN
	q shop.internal SOA
	q shop.internal NS
	q api.shop.internal A # authoritative answer (AA set)
	q example.com A # outside, no upstream: REFUSED
	q www.bogus.example A # DNSSEC-bogus: SERVFAIL
	# TCP, including NXDOMAIN, and one connection carrying three queries.
	q +tcp web.shop.svc.cluster.local A
	q +tcp cart.shop.svc.cluster.local A
	q +tcp _http._tcp.web.shop.svc.cluster.local SRV
	q +tcp +keepopen db.shop.svc.cluster.local A web.shop.svc.cluster.local AAAA www.shop.svc.cluster.local A
	# Nobody listens on 127.0.0.4: a query without a response.
	dig @"$DNS_DEAD_ADDR" +tries=1 +timeout=1 nothere.example A >/dev/null 2>&1 || true

	stop_capture
	stop_pid "$DNSMASQ_PID"
	DNSMASQ_PID=
	stop_pid "$DNSMASQ_BACKEND_PID"
	DNSMASQ_BACKEND_PID=

	log "verifying $pcap"
	capinfos "$pcap" | grep -q 'Linux cooked-mode capture v2' ||
		die "dnsmasq.pcap: link type is not Linux cooked v2 (SLL2)"
	capinfos "$pcap" | grep -q 'nanoseconds' || die "dnsmasq.pcap: timestamps are not nanosecond precision"
	printf '    ok  %s\n' "SLL2 link type, nanosecond timestamps" >&2
	local want
	# name:type:rcode as tshark's dns.qry.name, dns.qry.type, dns.flags.rcode
	for want in web.shop.svc.cluster.local:1:0 web.shop.svc.cluster.local:28:0 \
		www.shop.svc.cluster.local:5:0 _http._tcp.web.shop.svc.cluster.local:33:0 \
		web.shop.svc.cluster.local:16:0 shop.svc.cluster.local:15:0 \
		99.0.96.10.in-addr.arpa:12:0 10.0.96.10.in-addr.arpa:12:0 \
		wbe.shop.svc.cluster.local:1:3 shop.internal:6:0 shop.internal:2:0 api.shop.internal:1:0 \
		example.com:1:5 www.bogus.example:1:2; do
		IFS=: read -r name type rcode <<<"$want"
		check "$pcap" "$name type $type rcode $rcode with answers or rcode != 0" \
			"dns.flags.response==1 && dns.qry.name==\"$name\" && dns.qry.type==$type && dns.flags.rcode==$rcode && (dns.count.answers>0 || dns.flags.rcode!=0)"
	done
	check "$pcap" "TCP queries" 'tcp && dns.flags.response==0' 3
	check "$pcap" "TCP NXDOMAIN" 'tcp && dns.flags.response==1 && dns.flags.rcode==3'
	check_awk "$pcap" "one TCP connection carrying >= 2 answered queries" \
		'{ n[$1]++ } END { for (s in n) if (n[s] >= 2) exit 0; exit 1 }' \
		-Y 'tcp && dns.flags.response==1' -T fields -e tcp.stream
	check "$pcap" "query to $DNS_DEAD_ADDR without a response" \
		"ip.dst==$DNS_DEAD_ADDR && dns.flags.response==0 && !dns.response_in"
}

# truth PCAP NOTES: write PCAP's truth file beside it, with the project's generator.
truth() {
	(cd "$ROOT" && go run ./dissect/internal/truth/cmd/mktruth -notes "$2" "$1") >"${1%.pcap}.truth.json"
}

record_http
record_dns

NGINX_VERSION=$("$NGINX_BIN" -v 2>&1 | sed 's|.*nginx/||')
DNSMASQ_VERSION=$("$DNSMASQ_BIN" --version | awk 'NR == 1 { print $3 }')

log "generating truth files"
truth "$WORK/out/nginx.pcap" \
	"Recorded from nginx $NGINX_VERSION on $NGINX_ADDR:$NGINX_PORT (curl, nc) by scripts/record-testdata.sh. \
tshark is blind in two places: the interim '100 Continue' responses have no http.request_in, so they are listed \
in responses_without_request; and of the three pipelined requests sent in one TCP segment (the last TCP stream) \
tshark links only the first to a response, so the other two pairs have status null and two 200 responses are \
listed in responses_without_request. A dissector that pairs them is right to."
truth "$WORK/out/dnsmasq.pcap" \
	"Recorded from dnsmasq $DNSMASQ_VERSION on $DNS_ADDR:53 (dig, UDP and TCP) by scripts/record-testdata.sh, \
with tcpdump -i any: Linux cooked v2 (SLL2) link type, nanosecond timestamps. The SERVFAIL is a DNSSEC \
validation failure (the answer comes unsigned from a second dnsmasq on port $DNS_BACKEND_PORT, not captured). \
The last query, to $DNS_DEAD_ADDR where nothing listens, has no response (the ICMP port unreachable is filtered out)."

# Only now, with both captures verified and both truth files written, replace
# the checked-in files, so a failed run leaves them as they were.
mkdir -p "$HTTP_DIR" "$DNS_DIR"
install -m 0644 "$WORK/out/nginx.pcap" "$WORK/out/nginx.truth.json" "$HTTP_DIR/"
install -m 0644 "$WORK/out/dnsmasq.pcap" "$WORK/out/dnsmasq.truth.json" "$DNS_DIR/"

log "done"
for f in "$HTTP_DIR/nginx.pcap" "$DNS_DIR/dnsmasq.pcap"; do
	capinfos "$f"
done
