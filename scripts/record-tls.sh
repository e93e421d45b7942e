#!/usr/bin/env bash
# record-tls.sh — record TLS from real servers and clients on loopback, with
# the clients' key logs, for the TLS dissector's recorded test
# (cmd/wirescope/tls_test.go) and its benchmark.
#
# Usage:
#   scripts/record-tls.sh OUTDIR
#       one capture and one NSS key log per scenario, OUTDIR/NAME.pcap and
#       OUTDIR/NAME.keys (mode 0600), and OUTDIR/manifest.json saying what
#       each holds: its handshakes in order (SNI, the version agreed or the
#       alert that ended it, the cipher suite) and the HTTP requests the
#       clients made, with the status each got, and the TLS 1.3 KeyUpdate
#       messages each side sent (key_updates: client, server).
#   scripts/record-tls.sh --bulk OUT.pcap [REQUESTS=50000] [CONNECTIONS=16]
#       h2load --h1 sending REQUESTS GETs of a small page over CONNECTIONS
#       HTTPS connections (TLS 1.2, ECDHE-RSA-AES128-GCM-SHA256), and its key
#       log in OUT.pcap.keys (h2load writes SSLKEYLOGFILE).
#
# Servers: nginx (OpenSSL 3) on 127.0.0.31, ports 18441-18448, one server
# block per case (see nginx.conf below), and openssl s_server on 18449
# requiring a client certificate (nginx does not fail a handshake without one:
# it answers 400 over HTTP); certificates from a throwaway CA made
# here with openssl: tls.test (SAN tls.test, www.tls.test, 127.0.0.31) and an
# expired one for expired.test. Clients: curl (SSLKEYLOGFILE), openssl
# s_client (-keylogfile), h2load. Every scenario is captured alone by tcpdump
# on lo, host 127.0.0.31 and the scenario's port.
#
# Needs root (tcpdump) and nginx, openssl, curl, h2load, tcpdump, jq and ss
# (scripts/install-deps.sh). It uses no system nginx configuration: nginx runs
# in the foreground from a temporary directory and is stopped on exit, as is
# everything else it starts. A client that does not end as the scenario
# expects (a request answered otherwise, a handshake that succeeds where it
# should fail) fails the run, and a failed run leaves nothing in OUTDIR (or
# no OUT.pcap).
set -euo pipefail

IP=127.0.0.31
PORT_TLS12=18441  # TLS 1.2 only, ECDHE-RSA AES-GCM
PORT_CHACHA=18442 # TLS 1.2 only, ECDHE-RSA-CHACHA20-POLY1305
PORT_CBC=18443    # TLS 1.2 only, AES-CBC with HMAC (ECDHE-RSA-AES128-SHA256, AES128-SHA)
PORT_TLS13=18444  # TLS 1.3 only, HTTP/1.1 and HTTP/2 (ALPN)
PORT_STRICT=18445 # TLS 1.2 and 1.3; a name other than tls.test (or none) is refused (ssl_reject_handshake)
PORT_EXPIRED=18446 # TLS 1.2 and 1.3, expired.test's expired certificate
PORT_HRR=18447    # TLS 1.3 only, key exchange on P-256 alone: a client's X25519 share gets a HelloRetryRequest
PORT_BULK=18448   # TLS 1.2, AES-GCM, keep-alive for a million requests, no access log
PORT_MTLS=18449   # openssl s_server -Verify: TLS 1.2 and 1.3, a client certificate required
NAME=tls.test

die() {
	printf 'record-tls: %s\n' "$*" >&2
	exit 1
}
log() { printf '==> %s\n' "$*" >&2; }

bulk=
if [[ ${1:-} == --bulk ]]; then
	bulk=1
	shift
	[[ $# -ge 1 && $# -le 3 ]] || die "usage: record-tls.sh --bulk OUT.pcap [REQUESTS=50000] [CONNECTIONS=16]"
	out=$(realpath -m "$1")
	requests=${2:-50000}
	connections=${3:-16}
else
	[[ $# -eq 1 && $1 != -* ]] || die "usage: record-tls.sh OUTDIR | record-tls.sh --bulk OUT.pcap [REQUESTS] [CONNECTIONS]"
	out=$(realpath -m "$1")
fi
[[ $(id -u) -eq 0 ]] || die "needs root (tcpdump captures on lo)"
PATH=$PATH:/usr/sbin
for tool in nginx openssl curl h2load tcpdump jq ss; do
	command -v "$tool" >/dev/null || die "$tool is missing (sudo bash scripts/install-deps.sh)"
done

# shellcheck source=scripts/lib/proc.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/proc.sh"

WORK=$(mktemp -d /tmp/wirescope-tls.XXXXXX)
NGINX_PID=
S_SERVER_PID=
cleanup() {
	local rc=$?
	set +e
	tcpdump_stop
	stop_pid "$NGINX_PID"
	stop_pid "$S_SERVER_PID"
	if [[ $rc -ne 0 ]]; then
		tail -n 20 "$WORK"/logs/* >&2 2>/dev/null
		if [[ -n $bulk ]]; then
			rm -f "$out" "$out.keys"
		fi
	fi
	rm -rf "$WORK"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

chmod 755 "$WORK" # nginx workers run as nobody and read the docroot
mkdir -p "$WORK"/{logs,pki,www,tmp,rec,plan}
for port in $PORT_TLS12 $PORT_CHACHA $PORT_CBC $PORT_TLS13 $PORT_STRICT $PORT_EXPIRED $PORT_HRR $PORT_BULK $PORT_MTLS; do
	if ss -H -ltn "( sport = :$port )" | awk '{print $4}' | grep -Eq "^($IP|0\.0\.0\.0|\*|\[::\]):$port\$"; then
		die "$IP:$port is already in use"
	fi
done

###############################################################################
# Certificates: a throwaway CA, tls.test's certificate, expired.test's (valid
# in January 2020 only: openssl ca takes -startdate/-enddate, which
# openssl req and x509 in OpenSSL 3.0 lack), and a second CA nobody trusts
# its certificates to (a client given it refuses tls.test's: unknown_ca).
###############################################################################

pki=$WORK/pki
make_pki() {
	local days=30
	(
		cd "$pki"
		openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days "$days" \
			-subj "/CN=wirescope throwaway test CA" 2>/dev/null
		openssl req -x509 -newkey rsa:2048 -nodes -keyout other-ca.key -out other-ca.pem -days "$days" \
			-subj "/CN=wirescope other CA" 2>/dev/null
		openssl req -newkey rsa:2048 -nodes -keyout tls.key -out tls.csr -subj "/CN=$NAME" 2>/dev/null
		printf 'subjectAltName=DNS:%s,DNS:www.%s,IP:%s\nextendedKeyUsage=serverAuth\n' "$NAME" "$NAME" "$IP" >tls.ext
		openssl x509 -req -in tls.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days "$days" \
			-extfile tls.ext -out tls.pem 2>/dev/null
		openssl req -newkey rsa:2048 -nodes -keyout expired.key -out expired.csr -subj "/CN=expired.test" \
			-addext "subjectAltName=DNS:expired.test" 2>/dev/null
		cat >ca.cnf <<'EOF'
[ ca ]
default_ca = throwaway
[ throwaway ]
database = index.txt
new_certs_dir = .
serial = serial
default_md = sha256
policy = anything
copy_extensions = copy
unique_subject = no
[ anything ]
commonName = supplied
EOF
		: >index.txt
		echo 1000 >serial
		openssl ca -batch -notext -config ca.cnf -cert ca.pem -keyfile ca.key -in expired.csr -out expired.pem \
			-startdate 20200101000000Z -enddate 20200201000000Z 2>/dev/null
	) || die "making the certificates failed"
	openssl verify -CAfile "$pki/ca.pem" "$pki/tls.pem" >/dev/null || die "tls.test's certificate does not verify"
	if openssl verify -CAfile "$pki/ca.pem" "$pki/expired.pem" >/dev/null 2>&1; then
		die "expired.test's certificate verifies"
	fi
}

###############################################################################
# nginx
###############################################################################

start_nginx() {
	printf 'hello from a static file\n' >"$WORK/www/page.html"
	head -c 20000 /dev/zero | tr '\0' 'z' >"$WORK/www/big.txt" # several TLS records
	printf 'ok\n' >"$WORK/www/ok.txt"
	chmod -R a+rX "$WORK/www"
	# What every server but the bulk one answers: statuses 200 (GET,
	# HEAD), 201 (POST), 204 (PUT, DELETE), 301, 404 and 500.
	cat >"$WORK/site.conf" <<EOF
root $WORK/www;
location = / { return 200 "hello from \$server_name over \$ssl_protocol \$ssl_cipher\n"; }
location = /old { return 301 /page.html; }
location = /fail { return 500; }
location = /api/items {
    if (\$request_method = POST) { return 201 '{"id":7}\n'; }
    return 200 '[{"id":7}]\n';
}
location /api/items/ {
    if (\$request_method = PUT) { return 204; }
    if (\$request_method = DELETE) { return 204; }
    return 200 '{"id":7}\n';
}
EOF
	local tls=$WORK/pki/tls
	cat >"$WORK/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $WORK/nginx.pid;
error_log $WORK/logs/nginx-error.log info;
events { worker_connections 256; }
http {
    access_log $WORK/logs/nginx-access.log;
    client_body_temp_path $WORK/tmp/body;
    proxy_temp_path $WORK/tmp/proxy;
    fastcgi_temp_path $WORK/tmp/fastcgi;
    uwsgi_temp_path $WORK/tmp/uwsgi;
    scgi_temp_path $WORK/tmp/scgi;
    types { text/html html; text/plain txt; }
    default_type text/plain;
    server_tokens off;
    keepalive_timeout 10;
    ssl_session_cache shared:tls:1m;

    server { # (a) TLS 1.2, ECDHE-RSA with AES-GCM
        listen $IP:$PORT_TLS12 ssl;
        server_name $NAME www.$NAME;
        ssl_certificate $tls.pem;
        ssl_certificate_key $tls.key;
        ssl_protocols TLSv1.2;
        ssl_ciphers ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384;
        ssl_prefer_server_ciphers on; # AES-128 unless the client offers only AES-256
        include $WORK/site.conf;
    }
    server { # (e) TLS 1.2, ChaCha20-Poly1305
        listen $IP:$PORT_CHACHA ssl;
        server_name $NAME;
        ssl_certificate $tls.pem;
        ssl_certificate_key $tls.key;
        ssl_protocols TLSv1.2;
        ssl_ciphers ECDHE-RSA-CHACHA20-POLY1305;
        include $WORK/site.conf;
    }
    server { # (e) TLS 1.2, AES-CBC and HMAC (SHA-256; SHA-1 with RSA key exchange)
        listen $IP:$PORT_CBC ssl;
        server_name $NAME;
        ssl_certificate $tls.pem;
        ssl_certificate_key $tls.key;
        ssl_protocols TLSv1.2;
        ssl_ciphers ECDHE-RSA-AES128-SHA256:AES128-SHA:@SECLEVEL=0;
        include $WORK/site.conf;
    }
    server { # (b) TLS 1.3, HTTP/1.1 and HTTP/2
        listen $IP:$PORT_TLS13 ssl http2;
        server_name $NAME;
        ssl_certificate $tls.pem;
        ssl_certificate_key $tls.key;
        ssl_protocols TLSv1.3;
        include $WORK/site.conf;
    }
    server { # (c) strict SNI: any name but tls.test, or none, is refused
        listen $IP:$PORT_STRICT ssl default_server;
        ssl_reject_handshake on;
        ssl_protocols TLSv1.2 TLSv1.3;
    }
    server {
        listen $IP:$PORT_STRICT ssl;
        server_name $NAME;
        ssl_certificate $tls.pem;
        ssl_certificate_key $tls.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        include $WORK/site.conf;
    }
    server { # (d) an expired certificate
        listen $IP:$PORT_EXPIRED ssl;
        server_name expired.test;
        ssl_certificate $WORK/pki/expired.pem;
        ssl_certificate_key $WORK/pki/expired.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        include $WORK/site.conf;
    }
    server { # TLS 1.3 on P-256 only: HelloRetryRequest for a client's X25519 key share
        listen $IP:$PORT_HRR ssl;
        server_name $NAME;
        ssl_certificate $tls.pem;
        ssl_certificate_key $tls.key;
        ssl_protocols TLSv1.3;
        ssl_ecdh_curve prime256v1;
        include $WORK/site.conf;
    }
    server { # the benchmark's: many small answers on long connections
        listen $IP:$PORT_BULK ssl;
        server_name $NAME;
        ssl_certificate $tls.pem;
        ssl_certificate_key $tls.key;
        ssl_protocols TLSv1.2;
        ssl_ciphers ECDHE-RSA-AES128-GCM-SHA256;
        access_log off;
        keepalive_requests 1000000;
        location / { return 200 "ok\n"; }
    }
}
EOF
	nginx -t -q -p "$WORK/" -e "$WORK/logs/nginx-error.log" -c "$WORK/nginx.conf" ||
		die "nginx configuration test failed"
	nginx -p "$WORK/" -e "$WORK/logs/nginx-error.log" -c "$WORK/nginx.conf" >"$WORK/logs/nginx.out" 2>&1 &
	NGINX_PID=$!
	for _ in $(seq 100); do
		if (exec 3<>"/dev/tcp/$IP/$PORT_BULK") 2>/dev/null; then
			return 0
		fi
		kill -0 "$NGINX_PID" 2>/dev/null || die "nginx exited at start"
		sleep 0.1
	done
	die "nginx does not listen on $IP:$PORT_BULK"
}

# start_s_server: openssl s_server on $PORT_MTLS, requiring a client
# certificate (-Verify: SSL_VERIFY_FAIL_IF_NO_PEER_CERT): a client without
# one gets handshake_failure in TLS 1.2, certificate_required in TLS 1.3
# (sent after the server's Finished: encrypted).
start_s_server() {
	openssl s_server -accept "$IP:$PORT_MTLS" -cert "$pki/tls.pem" -key "$pki/tls.key" -CAfile "$pki/ca.pem" \
		-Verify 1 -www -quiet </dev/null >"$WORK/logs/s_server.log" 2>&1 &
	S_SERVER_PID=$!
	for _ in $(seq 100); do
		ss -H -ltn "( sport = :$PORT_MTLS )" | grep -q "$IP:$PORT_MTLS" && return 0
		kill -0 "$S_SERVER_PID" 2>/dev/null || die "s_server exited at start"
		sleep 0.1
	done
	die "s_server does not listen on $IP:$PORT_MTLS"
}

make_pki
start_nginx
log "nginx $(nginx -v 2>&1 | sed 's|.*nginx/||'), $(openssl version | cut -d' ' -f1-2), $(curl --version | head -n1 | cut -d' ' -f1-2) on $IP"

###############################################################################
# --bulk
###############################################################################

if [[ -n $bulk ]]; then
	rm -f "$out" "$out.keys"
	install -m 0600 /dev/null "$out.keys"
	tcpdump_start "$WORK/logs/tcpdump.err" -i lo -B 131072 -w "$out" "host $IP and tcp port $PORT_BULK" ||
		die "tcpdump did not start: $(cat "$WORK/logs/tcpdump.err")"
	# h2load writes SSLKEYLOGFILE (nghttp2 1.52's h2load sets OpenSSL's
	# keylog callback when it is set); --connect-to: tls.test is not
	# resolved, but sent as SNI and Host.
	SSLKEYLOGFILE=$out.keys h2load --h1 -n "$requests" -c "$connections" --connect-to="$IP:$PORT_BULK" \
		"https://$NAME:$PORT_BULK/ok" >"$WORK/logs/h2load.log" 2>&1 || die "h2load failed"
	tcpdump_stop 0.5
	grep -E '^(finished|requests|status codes):' "$WORK/logs/h2load.log" >&2
	grep -qE "^requests: $requests total, $requests started, $requests done, $requests succeeded, 0 failed, 0 errored, 0 timeout" "$WORK/logs/h2load.log" ||
		die "h2load did not get every request answered"
	grep -qE "^status codes: $requests 2xx, 0 3xx, 0 4xx, 0 5xx" "$WORK/logs/h2load.log" ||
		die "h2load got responses other than 2xx"
	grep -E 'captured|dropped' "$WORK/logs/tcpdump.err" >&2
	grep -qE '^0 packets dropped by kernel' "$WORK/logs/tcpdump.err" || die "tcpdump dropped packets"
	keys=$(grep -c '^CLIENT_RANDOM ' "$out.keys" || true)
	((keys == connections)) || die "the key log has $keys CLIENT_RANDOM lines for $connections connections"
	chmod 644 "$out"
	log "$out: $(stat -c %s "$out") bytes, $requests requests on $connections connections; keys in $out.keys"
	exit 0
fi

###############################################################################
# Scenarios
###############################################################################

start_s_server

REC=$WORK/rec # the scenarios' files, moved to OUTDIR at the end
SCN=          # the scenario being recorded
SCN_PORT=

# scenario NAME PORT DESCRIPTION: start recording a scenario: its key log
# (mode 0600 before any client appends to it), its capture.
scenario() {
	SCN=$1
	SCN_PORT=$2
	log "$SCN: $3"
	printf '%s' "$3" >"$WORK/plan/$SCN.description"
	printf '%s\n' "$SCN_PORT" >"$WORK/plan/$SCN.port"
	printf '%s\n' "$SCN" >>"$WORK/plan/order"
	: >"$WORK/plan/$SCN.handshakes"
	: >"$WORK/plan/$SCN.calls"
	printf '0\t0\n' >"$WORK/plan/$SCN.key_updates"
	install -m 0600 /dev/null "$REC/$SCN.keys"
	tcpdump_start "$WORK/logs/tcpdump.err" -i lo -B 65536 -w "$REC/$SCN.pcap" "host $IP and tcp port $SCN_PORT" ||
		die "tcpdump did not start: $(cat "$WORK/logs/tcpdump.err")"
}

# end_scenario: stop the capture and check it dropped nothing.
end_scenario() {
	tcpdump_stop 0.3
	grep -qE '^0 packets dropped by kernel' "$WORK/logs/tcpdump.err" ||
		die "$SCN: tcpdump dropped packets: $(cat "$WORK/logs/tcpdump.err")"
	local n
	n=$(sed -n 's/^\([0-9]*\) packets\? captured$/\1/p' "$WORK/logs/tcpdump.err")
	printf '    %s.pcap: %s packets\n' "$SCN" "$n" >&2
	SCN=
}

# handshake SNI STATUS [CIPHER [HELLOS]]: the next connection's handshake,
# as the manifest says it: the name the client sends ("" for none), the
# version agreed (TLS1.2, TLS1.3) or the alert that ended it (its RFC 8446
# name), the cipher suite agreed (IANA name) when it was, and its number; the
# ClientHellos the client sends (2 after a HelloRetryRequest; default 1).
handshake() {
	local id=
	if [[ -n ${3:-} ]]; then
		id=$(awk -v name="$3" '$3 == name { sub(",0x", "", $1); print tolower($1) }' "$WORK/ciphers")
		[[ -n $id ]] || die "handshake: no cipher suite $3"
	fi
	printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "${3:-}" "$id" "${4:-1}" >>"$WORK/plan/$SCN.handshakes"
}
# IANA names and numbers of the suites OpenSSL has: "0xC0,0x2F - NAME - ..."
openssl ciphers -V -stdname 'ALL:@SECLEVEL=0' >"$WORK/ciphers"

# call PROTO METHOD PATH STATUS: a request the scenario made and its answer.
call() {
	printf '%s\t%s\t%s\t%s\n' "$@" >>"$WORK/plan/$SCN.calls"
}

# curl_conn HOST [CURL OPTIONS...] -- "METHOD PATH STATUS"...: one curl run
# making the requests given on one connection to HOST (--resolve'd to $IP) at
# the scenario's port, in order (--next between them: curl keeps the
# connection), each with its own method: GET, HEAD (-I), POST and PUT (a
# JSON body), DELETE. Each must get the status given; each is a call of the
# manifest, http or http2 by the version curl used.
curl_conn() {
	local host=$1
	shift
	local -a opts=() args=()
	while [[ $1 != -- ]]; do
		opts+=("$1")
		shift
	done
	shift
	local r method path status first=1
	for r in "$@"; do
		read -r method path status <<<"$r"
		((first)) || args+=(--next)
		first=0
		args+=(-sS --cacert "$pki/ca.pem" --resolve "$host:$SCN_PORT:$IP" "${opts[@]}"
			-o /dev/null -w '%{method}\t%{response_code}\t%{http_version}\n')
		case $method in
		GET) ;;
		HEAD) args+=(-I) ;;
		POST) args+=(-H 'Content-Type: application/json' --data-binary '{"name":"widget","qty":3}') ;;
		PUT) args+=(-X PUT -H 'Content-Type: application/json' --data-binary '{"name":"widget","qty":4}') ;;
		DELETE) args+=(-X DELETE) ;;
		*) die "curl_conn: method $method" ;;
		esac
		args+=("https://$host:$SCN_PORT$path")
	done
	local got
	got=$(SSLKEYLOGFILE=$REC/$SCN.keys curl "${args[@]}" 2>"$WORK/logs/curl.err") ||
		die "$SCN: curl failed: $(cat "$WORK/logs/curl.err")"
	local i=0 gm gs gv
	while IFS=$'\t' read -r gm gs gv; do
		read -r method path status <<<"${*:i+1:1}"
		[[ $gm == "$method" && $gs == "$status" ]] ||
			die "$SCN: $method $path: curl says $gm $gs, want $method $status"
		case $gv in
		1.1) call http "$method" "$path" "$status" ;;
		2) call http2 "$method" "$path" "$status" ;;
		*) die "$SCN: $method $path: HTTP version $gv" ;;
		esac
		i=$((i + 1))
	done <<<"$got"
	((i == $#)) || die "$SCN: curl reported $i requests of $#"
}

# curl_fail HOST EXIT [CURL OPTIONS...]: a curl run whose handshake must
# fail, curl exiting with EXIT.
curl_fail() {
	local host=$1 want=$2 rc=0
	shift 2
	SSLKEYLOGFILE=$REC/$SCN.keys curl -sS --cacert "$pki/ca.pem" --resolve "$host:$SCN_PORT:$IP" "$@" \
		-o /dev/null "https://$host:$SCN_PORT/" 2>"$WORK/logs/curl.err" || rc=$?
	[[ $rc -eq $want ]] || die "$SCN: curl exited $rc, want $want: $(cat "$WORK/logs/curl.err")"
	printf '    %s\n' "$(head -n 1 "$WORK/logs/curl.err")" >&2
}

# s_client [OPENSSL S_CLIENT OPTIONS...]: a GET / (Connection: close) over
# one s_client connection to tls.test at the scenario's port; it must be
# answered 200.
s_client() {
	printf 'GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$NAME" |
		timeout 20 openssl s_client -connect "$IP:$SCN_PORT" -servername "$NAME" -CAfile "$pki/ca.pem" \
			-verify_return_error -keylogfile "$REC/$SCN.keys" -ign_eof "$@" \
			>"$WORK/logs/s_client.out" 2>"$WORK/logs/s_client.err" ||
		die "$SCN: s_client failed: $(cat "$WORK/logs/s_client.err")"
	grep -q '^HTTP/1.1 200 ' "$WORK/logs/s_client.out" ||
		die "$SCN: s_client got no 200: $(head -n 3 "$WORK/logs/s_client.out")"
	call http GET / 200
}

# s_client_fail ERROR [OPENSSL S_CLIENT OPTIONS...]: an s_client connection
# to tls.test at the scenario's port, sending nothing, that must fail with
# ERROR (what OpenSSL says of the alert it got) in its output. -ign_eof: it
# waits for the server's answer rather than closing at its empty input.
s_client_fail() {
	local want=$1
	shift
	if printf '' | timeout 20 openssl s_client -connect "$IP:$SCN_PORT" -servername "$NAME" -CAfile "$pki/ca.pem" \
		-keylogfile "$REC/$SCN.keys" -ign_eof "$@" >"$WORK/logs/s_client.out" 2>"$WORK/logs/s_client.err"; then
		die "$SCN: s_client succeeded"
	fi
	grep -q "$want" "$WORK/logs/s_client.err" ||
		die "$SCN: s_client did not fail with $want: $(cat "$WORK/logs/s_client.err")"
	printf '    s_client: %s\n' "$(grep -m1 "$want" "$WORK/logs/s_client.err")" >&2
}

# s_client_key_update: one TLS 1.3 s_client connection to tls.test at the
# scenario's port (HTTP/1.1 keep-alive) that makes the requests given as
# "METHOD PATH STATUS" (GET or HEAD), a K line between two of them where one
# is given as K: s_client's command (at the start of a line it reads, with
# neither -ign_eof nor -quiet) to send a KeyUpdate asking the server to
# update too; the server sends its own before its next answer. Each request
# and command is written alone, a moment after the one before, so that
# s_client reads it alone and in order: the requests before a K go with the
# old keys, those after with the new. The last request closes the
# connection. Every answer must have the status given, in order; each
# update is counted in the manifest's key_updates, for both sides.
s_client_key_update() {
	local r method path status i updates=0
	local -a want=()
	{
		for ((i = 1; i <= $#; i++)); do
			r=${!i}
			if [[ $r == K ]]; then
				printf 'K\n'
			else
				read -r method path status <<<"$r"
				local conn=keep-alive
				((i < $#)) || conn=close
				env printf '%s %s HTTP/1.1\r\nHost: %s\r\nConnection: %s\r\n\r\n' "$method" "$path" "$NAME" "$conn"
			fi
			sleep 0.5
		done
		sleep 1 # the last answer, before s_client's stdin ends
	} | timeout 30 openssl s_client -connect "$IP:$SCN_PORT" -servername "$NAME" -CAfile "$pki/ca.pem" \
		-verify_return_error -keylogfile "$REC/$SCN.keys" -tls1_3 \
		>"$WORK/logs/s_client.out" 2>"$WORK/logs/s_client.err" ||
		die "$SCN: s_client exited ${PIPESTATUS[1]}: $(cat "$WORK/logs/s_client.err"; tail -n 5 "$WORK/logs/s_client.out")"
	for r in "$@"; do
		if [[ $r == K ]]; then
			updates=$((updates + 1))
			continue
		fi
		read -r method path status <<<"$r"
		want+=("HTTP/1.1 $status")
		call http "$method" "$path" "$status"
	done
	# An answer's body (big.txt's) may end without a newline: the status
	# lines are found anywhere in a line.
	local got
	got=$(grep -ao 'HTTP/1\.1 [0-9][0-9][0-9]' "$WORK/logs/s_client.out" | paste -sd, -)
	[[ $got == "$(printf '%s\n' "${want[@]}" | paste -sd, -)" ]] ||
		die "$SCN: s_client's answers: $got, want $(printf '%s\n' "${want[@]}" | paste -sd, -)"
	local sent
	sent=$(grep -c '^KEYUPDATE$' "$WORK/logs/s_client.err" || true)
	((sent == updates)) || die "$SCN: s_client says KEYUPDATE $sent times, want $updates"
	printf '%s\t%s\n' "$updates" "$updates" >"$WORK/plan/$SCN.key_updates"
}

# The requests of a connection that tries everything: every method, every
# status, every status; the 500 last: nginx closes an HTTP/1.1 connection
# after it (curl's next request would open another, resuming the session).
ALL=("GET / 200" "GET /page.html 200" "HEAD / 200" "POST /api/items 201" "GET /api/items 200"
	"PUT /api/items/7 204" "DELETE /api/items/7 204" "GET /old 301" "GET /missing 404"
	"GET /big.txt 200" "GET /fail 500")
GCM128=TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256

scenario tls12-gcm-http1 $PORT_TLS12 "TLS 1.2, ECDHE-RSA AES-128-GCM, HTTP/1.1: every method and status on one connection, then a second connection"
handshake $NAME TLS1.2 $GCM128
curl_conn $NAME --http1.1 -- "${ALL[@]}"
handshake www.$NAME TLS1.2 TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
curl_conn www.$NAME --http1.1 --ciphers ECDHE-RSA-AES256-GCM-SHA384 -- "GET /page.html 200" "POST /api/items 201"
end_scenario

scenario tls13-http1 $PORT_TLS13 "TLS 1.3 (TLS_AES_128_GCM_SHA256), HTTP/1.1: every method and status on one connection"
handshake $NAME TLS1.3 TLS_AES_128_GCM_SHA256
curl_conn $NAME --http1.1 --tls13-ciphers TLS_AES_128_GCM_SHA256 -- "${ALL[@]}"
end_scenario

scenario tls13-http2 $PORT_TLS13 "TLS 1.3 (TLS_AES_128_GCM_SHA256), HTTP/2 by ALPN: every method and status on one connection"
handshake $NAME TLS1.3 TLS_AES_128_GCM_SHA256
curl_conn $NAME --http2 --tls13-ciphers TLS_AES_128_GCM_SHA256 -- "${ALL[@]}"
end_scenario

scenario tls13-chacha20 $PORT_TLS13 "TLS 1.3, TLS_CHACHA20_POLY1305_SHA256, HTTP/1.1"
handshake $NAME TLS1.3 TLS_CHACHA20_POLY1305_SHA256
curl_conn $NAME --http1.1 --tls13-ciphers TLS_CHACHA20_POLY1305_SHA256 -- "GET / 200" "POST /api/items 201" "GET /missing 404" "GET /big.txt 200"
end_scenario

scenario tls13-aes256 $PORT_TLS13 "TLS 1.3, TLS_AES_256_GCM_SHA384, HTTP/2"
handshake $NAME TLS1.3 TLS_AES_256_GCM_SHA384
curl_conn $NAME --http2 --tls13-ciphers TLS_AES_256_GCM_SHA384 -- "GET / 200" "PUT /api/items/7 204" "GET /big.txt 200" "GET /fail 500"
end_scenario

scenario tls12-chacha20 $PORT_CHACHA "TLS 1.2, ECDHE-RSA-CHACHA20-POLY1305, HTTP/1.1"
handshake $NAME TLS1.2 TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
curl_conn $NAME --http1.1 --tls-max 1.2 --ciphers ECDHE-RSA-CHACHA20-POLY1305 -- "GET / 200" "POST /api/items 201" "DELETE /api/items/7 204" "GET /old 301" "GET /big.txt 200"
end_scenario

scenario tls12-cbc-sha256 $PORT_CBC "TLS 1.2, ECDHE-RSA-AES128-SHA256 (AES-CBC, HMAC-SHA256, encrypt-then-MAC), HTTP/1.1"
handshake $NAME TLS1.2 TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256
curl_conn $NAME --http1.1 --tls-max 1.2 --ciphers 'ECDHE-RSA-AES128-SHA256:@SECLEVEL=0' -- "GET / 200" "POST /api/items 201" "GET /missing 404" "GET /big.txt 200"
end_scenario

scenario tls12-cbc-sha1-rsa $PORT_CBC "TLS 1.2, AES128-SHA (RSA key exchange, AES-CBC, HMAC-SHA1, encrypt-then-MAC), HTTP/1.1"
handshake $NAME TLS1.2 TLS_RSA_WITH_AES_128_CBC_SHA
curl_conn $NAME --http1.1 --tls-max 1.2 --ciphers 'AES128-SHA:@SECLEVEL=0' -- "GET / 200" "PUT /api/items/7 204" "GET /big.txt 200" "GET /fail 500"
end_scenario

scenario strict-sni-ok $PORT_STRICT "the strict-SNI server, asked for tls.test: TLS 1.3, HTTP/1.1"
handshake $NAME TLS1.3 TLS_AES_256_GCM_SHA384
curl_conn $NAME --http1.1 -- "GET / 200" "GET /missing 404"
end_scenario

scenario wrong-sni $PORT_STRICT "the strict-SNI server, asked for wrong.test: refused with an unrecognized_name alert"
handshake wrong.test unrecognized_name
curl_fail wrong.test 35
end_scenario

scenario no-sni $PORT_STRICT "the strict-SNI server, asked for no name (curl to the IP address): refused"
handshake "" unrecognized_name
SSLKEYLOGFILE=$REC/$SCN.keys curl -sS --cacert "$pki/ca.pem" -o /dev/null "https://$IP:$SCN_PORT/" 2>"$WORK/logs/curl.err" &&
	die "$SCN: curl succeeded"
printf '    %s\n' "$(head -n 1 "$WORK/logs/curl.err")" >&2
end_scenario

scenario expired-tls12 $PORT_EXPIRED "an expired certificate, TLS 1.2: curl refuses it (certificate_expired, in clear)"
handshake expired.test certificate_expired
curl_fail expired.test 60 --tls-max 1.2
end_scenario

scenario expired-tls13 $PORT_EXPIRED "an expired certificate, TLS 1.3: curl refuses it (certificate_expired, in clear: the client has no handshake keys to send with before the server's Finished)"
handshake expired.test certificate_expired
curl_fail expired.test 60
end_scenario

scenario unknown-ca $PORT_TLS12 "tls.test's certificate, the client trusting another CA: unknown_ca (TLS 1.2, in clear)"
handshake $NAME unknown_ca
curl_fail $NAME 60 --cacert "$pki/other-ca.pem"
end_scenario

scenario tls10-refused $PORT_TLS12 "a client offering TLS 1.0 only (openssl s_client -tls1, SECLEVEL=0) to the TLS 1.2 server: protocol_version"
handshake $NAME protocol_version
s_client_fail 'alert protocol version' -tls1 -cipher 'DEFAULT@SECLEVEL=0'
end_scenario

scenario client-cert-tls12 $PORT_MTLS "a client certificate required, none sent, TLS 1.2: the server's handshake_failure, in clear"
handshake $NAME handshake_failure
s_client_fail 'alert handshake failure' -tls1_2
end_scenario

scenario client-cert-tls13 $PORT_MTLS "a client certificate required, none sent, TLS 1.3: the server's certificate_required, encrypted (the client has its Finished sent: the handshake is over for it)"
handshake $NAME certificate_required
s_client_fail 'alert certificate required' -tls1_3
end_scenario

scenario resumed-tls12 $PORT_TLS12 "TLS 1.2 session resumption: s_client -sess_out, then -sess_in (an abbreviated handshake)"
handshake $NAME TLS1.2 $GCM128
s_client -tls1_2 -sess_out "$WORK/tls12.session"
handshake $NAME TLS1.2 $GCM128
s_client -tls1_2 -sess_in "$WORK/tls12.session"
grep -q '^Reused, ' "$WORK/logs/s_client.out" ||
	die "$SCN: the second s_client did not resume the session"
end_scenario

scenario resumed-tls13 $PORT_TLS13 "TLS 1.3 resumption with a PSK (session ticket): s_client -sess_out, then -sess_in"
handshake $NAME TLS1.3 TLS_AES_256_GCM_SHA384
s_client -sess_out "$WORK/tls13.session"
handshake $NAME TLS1.3 TLS_AES_256_GCM_SHA384
s_client -sess_in "$WORK/tls13.session"
grep -q '^Reused, ' "$WORK/logs/s_client.out" ||
	die "$SCN: the second s_client did not resume the session"
end_scenario

scenario hello-retry $PORT_HRR "TLS 1.3 HelloRetryRequest: the client's key share is X25519, the server takes P-256 only"
handshake $NAME TLS1.3 TLS_AES_256_GCM_SHA384 2
s_client -tls1_3 -groups X25519:P-256
end_scenario

scenario key-update $PORT_TLS13 "TLS 1.3 KeyUpdate: s_client (HTTP/1.1 keep-alive) sends K twice, a KeyUpdate asking the server to update too; requests before, between and after"
handshake $NAME TLS1.3 TLS_AES_256_GCM_SHA384
s_client_key_update "GET / 200" K "GET /page.html 200" "GET /big.txt 200" "HEAD / 200" K "GET /missing 404" "GET / 200"
end_scenario

###############################################################################
# The manifest
###############################################################################

scenarios=()
while read -r scn; do
	f=$WORK/plan/$scn.port
	scenarios+=("$(jq -n --arg name "$scn" --arg desc "$(cat "$WORK/plan/$scn.description")" \
		--argjson port "$(cat "$f")" \
		--rawfile hs "$WORK/plan/$scn.handshakes" --rawfile calls "$WORK/plan/$scn.calls" \
		--rawfile ku "$WORK/plan/$scn.key_updates" '
		def rows: split("\n") | map(select(. != "") | split("\t"));
		{name: $name, description: $desc, pcap: ($name + ".pcap"), keylog: ($name + ".keys"),
		 server: {ip: "'"$IP"'", port: $port},
		 handshakes: ($hs | rows | map({sni: .[0], status: .[1]} + (if .[2] != "" then {cipher: .[2], cipher_id: .[3]} else {} end)
		             + {client_hellos: (.[4] | tonumber)})),
		 calls: ($calls | rows | map({proto: .[0], method: .[1], path: .[2], status: .[3]})),
		 key_updates: ($ku | rows | .[0] | {client: (.[0] | tonumber), server: (.[1] | tonumber)})}')")
done <"$WORK/plan/order"
printf '%s\n' "${scenarios[@]}" | jq -s --arg nginx "$(nginx -v 2>&1 | sed 's|.*nginx/||')" \
	--arg openssl "$(openssl version)" --arg curl "$(curl --version | head -n1)" '
	{recorded_by: "scripts/record-tls.sh", nginx: $nginx, openssl: $openssl, curl: $curl,
	 ca: "ca.pem", scenarios: .}' >"$REC/manifest.json"
cp "$pki/ca.pem" "$REC/ca.pem"
chmod 644 "$REC"/*.pcap "$REC/manifest.json" "$REC/ca.pem"
chmod 600 "$REC"/*.keys

mkdir -p "$out"
for f in "$REC"/*; do
	mv -f "$f" "$out/"
done
log "$out: $(jq '.scenarios | length' "$out/manifest.json") scenarios"
