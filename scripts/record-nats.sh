#!/usr/bin/env bash
# record-nats.sh — record the NATS client protocol from a real nats-server
# (embedded in test/natsapps/cmd/natsclient: github.com/nats-io/nats-server/v2
# started with server.NewServer) and real nats.go clients on loopback, with a
# manifest of what the clients sent and the server counted, for the NATS
# dissector's recorded test (cmd/wirescope/nats_test.go).
#
# Usage:
#   scripts/record-nats.sh OUTDIR
#       one capture per scenario, OUTDIR/NAME.pcap, and OUTDIR/manifest.json:
#         {"recorded_by", "versions": {go modules: nats-server, nats.go; go,
#            tshark}, "secrets": [passwords sent in the captures, which a
#            dissector must never show],
#          "scenarios": [{
#            "name", "description", "pcap", "ip", "port",
#            "connections"   TCP connections the clients dialled (checked
#                            against the capture's SYNs)
#            "client_ops"    {"CONNECT": n, "PUB": n, "HPUB": n, "SUB": n,
#                            "UNSUB": n, "PING": n, "PONG": n}: the
#                            operations the clients wrote, counted on their
#                            net.Conn by a reader of the protocol
#            "server_ops"    {"INFO", "MSG", "HMSG", "+OK", "-ERR", "PING",
#                            "PONG"}: what the server wrote to them
#            "errors"        {"Authorization Violation": n, ...}: the -ERR
#                            texts the clients read
#            "publishes"     {"SUBJECT": n}: PUB and HPUB by subject
#            "requests"      {"answered", "no_responders", "timed_out"}: the
#                            requester's results ("nats: no responders" is
#                            the server's 503 HMSG; a timeout is a request
#                            nobody answered)
#            "served"        requests a responder answered (its PUB to the
#                            reply subject)
#            "ignored"       requests a responder got and did not answer
#            "received"      messages the subscribers got
#            "varz"          the server's own counters at the end
#                            (server.Varz): in_msgs (every PUB/HPUB read,
#                            refused ones too), out_msgs (deliveries; the
#                            server's 503 status messages are not counted),
#                            in_bytes, out_bytes (payload and header bytes),
#                            total_connections; checked against the clients'
#                            counts
#            "secrets"       this scenario's passwords
#          }]}
# tshark 4.0 has no NATS dissector: the script only checks that the capture
# holds the scenario's connections; the server's counters are the second
# reading.
#
# Server: 127.0.0.48:14222, a fresh one per scenario. Scenarios (see
# test/natsapps/cmd/natsclient): pubsub, request-reply, headers, verbose,
# auth (user/password, permission violations, a wrong password),
# max-payload (max_payload 4096, a raw 5000-byte PUB). Every scenario is
# captured alone by tcpdump on lo (host 127.0.0.48 and tcp port 14222). A
# scenario whose counts disagree fails the run; a failed run leaves nothing
# in OUTDIR. Needs root (tcpdump), go, tcpdump, tshark, jq, ss and flock
# (scripts/install-deps.sh). Everything started is stopped on exit.
set -euo pipefail

IP=127.0.0.48
PORT=14222

die() {
	printf 'record-nats: %s\n' "$*" >&2
	exit 1
}
log() { printf '==> %s\n' "$*" >&2; }

[[ $# -eq 1 && $1 != -* ]] || die "usage: record-nats.sh OUTDIR"
out=$(realpath -m "$1")
[[ $(id -u) -eq 0 ]] || die "needs root (tcpdump captures on lo)"
PATH=$PATH:/usr/sbin:/usr/local/go/bin
for tool in flock go tcpdump tshark jq ss; do
	command -v "$tool" >/dev/null || die "$tool is missing (sudo bash scripts/install-deps.sh)"
done
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# One run at a time (from any checkout): a second waits for the first's
# server, port and captures to be gone, up to 10 minutes.
mkdir -p /run/lock
exec 9>/run/lock/wirescope-record-nats.lock
flock -w 600 9 || die "another record-nats.sh is still running (/run/lock/wirescope-record-nats.lock)"

# shellcheck source=scripts/lib/proc.sh
source "$ROOT/scripts/lib/proc.sh"

WORK=$(mktemp -d /tmp/wirescope-nats.XXXXXX)
CLIENT_PID=
cleanup() {
	local rc=$?
	set +e
	tcpdump_stop
	stop_pid "$CLIENT_PID"
	if [[ $rc -ne 0 ]]; then
		tail -n 20 "$WORK"/logs/* >&2 2>/dev/null
	fi
	rm -rf "$WORK"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$WORK"/{logs,bin,rec,plan}
if ss -H -ltn "( sport = :$PORT )" | awk '{print $4}' | grep -Eq "^($IP|0\.0\.0\.0|\*|\[::\]):$PORT\$"; then
	die "$IP:$PORT is already in use"
fi

log "building test/natsapps (natsclient: nats.go clients and an embedded nats-server)"
(cd "$ROOT/test/natsapps" && go build -o "$WORK/bin/" ./cmd/natsclient) \
	>"$WORK/logs/go-build.log" 2>&1 || die "go build failed: $(cat "$WORK/logs/go-build.log")"
MODULES=$(cd "$ROOT/test/natsapps" && go list -m -json github.com/nats-io/nats-server/v2 github.com/nats-io/nats.go |
	jq -s 'map({key: .Path, value: .Version}) | from_entries')

# The capture's connections: SYNs to the port.
syns() { tshark -r "$1" -Y "tcp.flags.syn == 1 && tcp.flags.ack == 0 && tcp.dstport == $PORT" 2>/dev/null | wc -l; }

SCN=
# record NAME SECRETS DESCRIPTION: one scenario, captured alone.
record() {
	SCN=$1
	local secrets=$2 desc=$3 pcap=$WORK/rec/$1.pcap rep=$WORK/plan/$1.json n
	log "$SCN: $desc"
	tcpdump_start "$WORK/logs/tcpdump.err" -i lo -B 65536 -w "$pcap" "host $IP and tcp port $PORT" ||
		die "tcpdump did not start: $(cat "$WORK/logs/tcpdump.err")"
	"$WORK/bin/natsclient" -scenario "$SCN" -listen "$IP:$PORT" >"$rep" 2>"$WORK/logs/client.err" &
	CLIENT_PID=$!
	wait "$CLIENT_PID" || die "$SCN: natsclient failed: $(cat "$WORK/logs/client.err")"
	CLIENT_PID=
	tcpdump_stop 0.3
	grep -qE '^0 packets dropped by kernel' "$WORK/logs/tcpdump.err" ||
		die "$SCN: tcpdump dropped packets: $(cat "$WORK/logs/tcpdump.err")"
	[[ $(syns "$pcap") == "$(jq .connections "$rep")" ]] ||
		die "$SCN: the capture has $(syns "$pcap") connections, the clients dialled $(jq .connections "$rep")"
	# The server's counters against the clients': every PUB/HPUB read, and
	# every delivery but the 503 status messages.
	jq -e '.varz.in_msgs == ((.client_ops.PUB // 0) + (.client_ops.HPUB // 0) - (.errors["Maximum Payload Violation"] // 0))
		and .varz.out_msgs == ((.server_ops.MSG // 0) + (.server_ops.HMSG // 0) - .requests.no_responders)
		and .varz.total_connections == .connections' "$rep" >/dev/null ||
		die "$SCN: the server's counters $(jq -c .varz "$rep") disagree with the clients' $(jq -c '[.client_ops, .server_ops]' "$rep")"
	n=$(sed -n 's/^\([0-9]*\) packets\? captured$/\1/p' "$WORK/logs/tcpdump.err")
	printf '    %s.pcap: %s packets, client %s, server %s, errors %s\n' "$SCN" "$n" "$(jq -c .client_ops "$rep")" \
		"$(jq -c .server_ops "$rep")" "$(jq -c .errors "$rep")" >&2
	jq --arg name "$SCN" --arg desc "$desc" --arg secrets "$secrets" --argjson port "$PORT" '
		{name: $name, description: $desc, pcap: ($name + ".pcap"), ip: "'"$IP"'", port: $port}
		+ del(.scenario) + {secrets: ($secrets | split(" ") | map(select(. != "")))}' "$rep" >"$WORK/plan/$SCN.scn"
	printf '%s\n' "$SCN" >>"$WORK/plan/order"
}

# expect JQ-EXPRESSION: the scenario's report must satisfy it (the script's
# own check of what it meant to provoke).
expect() {
	jq -e "$1" "$WORK/plan/$SCN.json" >/dev/null || die "$SCN: want $1: $(jq -c . "$WORK/plan/$SCN.json")"
}

record pubsub "" "three subscribers (two in queue group workers on orders.>, one on orders.new), 20 publishes to orders.new and 10 to orders.paid, a SUB and its UNSUB"
expect '.client_ops.PUB == 30 and .server_ops.MSG == 50 and .received == 50 and .client_ops.UNSUB == 1'
record request-reply "" "a responder on svc.echo (queue group echo) and a silent one on svc.silent; 10 requests answered, 3 to svc.none (no responders: the server's 503), 2 to svc.silent timed out"
expect '.requests == {"answered": 10, "no_responders": 3, "timed_out": 2} and .served == 10 and .ignored == 2 and .server_ops.HMSG == 3'
record headers "" "5 HPUBs with headers to events.audit, received as HMSG; a request with headers answered with headers"
expect '.client_ops.HPUB == 7 and .server_ops.HMSG == 7 and .received == 5 and .served == 1'
record verbose "" "a connection in verbose mode: SUB, 5 PUBs, UNSUB, each answered +OK"
expect '.server_ops["+OK"] == 8 and .client_ops.PUB == 5'
record auth "alice-s3cret-pass n0t-alices-pass" "user/password: alice publishes to orders.ok, to secret.x (denied) and subscribes to secret.> (denied); then a wrong password"
expect '.errors == {"Authorization Violation": 1, "Permissions Violation for Publish to \"secret.x\"": 1, "Permissions Violation for Subscription to \"secret.>\"": 1}'
record max-payload "" "max_payload 4096: a 1000-byte publish (nats.go refuses a 5000-byte one itself), then a raw connection publishing 5000 bytes: Maximum Payload Violation"
expect '.errors == {"Maximum Payload Violation": 1} and .client_ops.PUB == 2'

###############################################################################
# The manifest
###############################################################################

while read -r scn; do
	cat "$WORK/plan/$scn.scn"
done <"$WORK/plan/order" | jq -s --argjson modules "$MODULES" \
	--arg tshark "$(tshark -v 2>/dev/null | sed -n '1s/^TShark (Wireshark) \([^ ]*\).*/\1/p')" \
	--arg go "$(go env GOVERSION)" '
	{recorded_by: "scripts/record-nats.sh", versions: ($modules + {tshark: $tshark, go: $go}),
	 secrets: (map(.secrets[]) | unique), scenarios: .}' >"$WORK/rec/manifest.json"
chmod 644 "$WORK"/rec/*.pcap "$WORK/rec/manifest.json"

mkdir -p "$out"
for f in "$WORK"/rec/*; do
	mv -f "$f" "$out/"
done
log "$out: $(jq '.scenarios | length' "$out/manifest.json") scenarios"
