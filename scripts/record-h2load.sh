#!/usr/bin/env bash
# record-h2load.sh — record the HTTP/2 load capture scripts/benchcmp measures:
# a real nghttpd (cleartext h2c, prior knowledge: --no-tls) on
# 127.0.0.24:18082 serving a 1,136-byte page (the size of the HTTP/1.1
# benchmark's), and h2load sending REQUESTS GETs for it over CONNECTIONS
# connections with STREAMS streams in flight on each (multiplexed, as HTTP/2
# is used), captured by tcpdump on lo.
#
# Usage: scripts/record-h2load.sh OUT.pcap [REQUESTS=50000] [CONNECTIONS=10] [STREAMS=10]
#
# Needs root (tcpdump), nghttpd (nghttp2-server), h2load (nghttp2-client) and
# tcpdump. It fails, leaving no OUT behind, unless h2load reports every
# request answered 2xx and tcpdump dropped no packet; scripts/benchcmp then
# checks the capture with tshark before caching it. The server runs from a
# temporary directory and is stopped on exit.
set -euo pipefail

ADDR=127.0.0.24
PORT=18082

die() {
	printf 'record-h2load: %s\n' "$*" >&2
	exit 1
}

[[ $# -ge 1 && $# -le 4 ]] || die "usage: record-h2load.sh OUT.pcap [REQUESTS=50000] [CONNECTIONS=10] [STREAMS=10]"
out=$(realpath -m "$1")
requests=${2:-50000}
connections=${3:-10}
streams=${4:-10}
[[ $(id -u) -eq 0 ]] || die "needs root (tcpdump captures on lo)"
for tool in nghttpd h2load tcpdump; do
	command -v "$tool" >/dev/null || [[ -x /usr/sbin/$tool ]] ||
		die "$tool is missing (apt-get install -y nghttp2-server nghttp2-client tcpdump)"
done
PATH=$PATH:/usr/sbin

# shellcheck source=scripts/lib/proc.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/proc.sh"

WORK=$(mktemp -d)
SERVER_PID=
cleanup() {
	local rc=$?
	set +e
	tcpdump_stop
	stop_pid "$SERVER_PID"
	if [[ $rc -ne 0 ]]; then
		tail -n 20 "$WORK"/*.log >&2 2>/dev/null
		rm -f "$out"
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT

mkdir -p "$WORK/www"
head -c 1136 /dev/zero | tr '\0' 'x' >"$WORK/www/index.html"
chmod -R a+rX "$WORK"

nghttpd --no-tls -a "$ADDR" -d "$WORK/www" "$PORT" >"$WORK/nghttpd.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 100); do
	if (exec 3<>"/dev/tcp/$ADDR/$PORT") 2>/dev/null; then
		break
	fi
	kill -0 "$SERVER_PID" 2>/dev/null || die "nghttpd exited"
	sleep 0.1
done
(exec 3<>"/dev/tcp/$ADDR/$PORT") 2>/dev/null || die "nghttpd does not listen on $ADDR:$PORT"

# -B: a 32 MiB buffer, so that h2load's bursts are not dropped while the
# other core is busy (tcpdump_start adds -s 0, --immediate-mode, -U, -Z root).
tcpdump_start "$WORK/tcpdump.log" -i lo -B 32768 -w "$out" "host $ADDR and tcp port $PORT" ||
	die "tcpdump did not start: $(cat "$WORK/tcpdump.log")"

# tcpdump listens before h2load connects: every connection is captured from
# its client preface on.
h2load -n "$requests" -c "$connections" -m "$streams" "http://$ADDR:$PORT/index.html" >"$WORK/h2load.log" 2>&1 ||
	die "h2load failed"
tcpdump_stop 0.5 # the last packets reach tcpdump

grep -E '^(finished|requests|status codes):' "$WORK/h2load.log" >&2
grep -qE "^requests: $requests total, $requests started, $requests done, $requests succeeded, 0 failed, 0 errored, 0 timeout" "$WORK/h2load.log" ||
	die "h2load did not get every request answered"
grep -qE "^status codes: $requests 2xx, 0 3xx, 0 4xx, 0 5xx" "$WORK/h2load.log" ||
	die "h2load got responses other than 2xx"
grep -E 'captured|dropped' "$WORK/tcpdump.log" >&2
grep -qE '^0 packets dropped by kernel' "$WORK/tcpdump.log" ||
	die "tcpdump dropped packets"
chmod 644 "$out"
