#!/usr/bin/env bash
# record-amqp.sh — record AMQP 0-9-1 from a real RabbitMQ and real clients on
# loopback, with a manifest of what the clients did, for the AMQP
# dissector's recorded test (cmd/wirescope/amqp_test.go).
#
# Usage:
#   scripts/record-amqp.sh OUTDIR
#       one capture per scenario, OUTDIR/NAME.pcap, and OUTDIR/manifest.json:
#         {"port": 15673, "secrets": [...], "scenarios": [{
#           "name", "pcap",
#           "methods":     the methods the clients sent that start an
#                          exchange, by class.method, counted (the
#                          handshake's start-ok/tune-ok answer the server's
#                          connection.start/.tune, which are counted as
#                          "connection.start"/"connection.tune" per
#                          connection); basic.ack/.nack the client sent
#           "publishes":   basic.publish the clients sent
#           "deliveries":  messages the clients received (basic.deliver,
#                          basic.get-ok)
#           "close_codes": reply codes of the closes the broker sent, as the
#                          client reported them (406, 404)
#           "client_error": the error code the client reported without a
#                          close from the broker (bad-password: 403)
#           "connections": TCP connections the scenario opened}]}
#       and "secrets": the passwords sent (right and wrong), which a
#       dissector must never show.
#
# Server: Debian's rabbitmq-server (3.10 on Debian 12) run as its own node
# wsamqp@localhost from a temporary directory (its own mnesia, logs, config,
# enabled-plugins file with no plugin: management off, Erlang cookie and
# HOME), listening on 127.0.0.47:15673, distribution port 25673; not the
# system service, which it neither needs nor touches. A user wsuser with a
# password is added; guest is not used. Clients: test/amqpapps' amqpclient
# (amqp091-go: publisher confirms, a consumer with acks and a nack, basic.get
# and a transaction, a queue declared twice with different arguments →
# channel.close 406, a publish to a missing exchange → channel.close 404, a
# wrong password → RabbitMQ 3.10 closes the TCP connection after
# connection.start-ok, without a connection.close; amqp091-go reports 403
# ACCESS_REFUSED itself) and amqp-tools
# (rabbitmq-c: amqp-declare-queue, amqp-publish, amqp-get,
# amqp-delete-queue). Every scenario is captured alone by tcpdump on lo,
# host 127.0.0.47 and port 15673. A scenario that does not end as scripted
# fails the run; a failed run leaves nothing in OUTDIR. Needs root (tcpdump)
# and rabbitmq-server, amqp-tools, go, tcpdump, tshark, jq, ss and flock
# (scripts/install-deps.sh). The node is stopped (rabbitmqctl stop) on exit,
# and epmd too when this script started it.
set -euo pipefail

IP=127.0.0.47
PORT=15673
DIST_PORT=25673
NODE=wsamqp@localhost
USER_NAME=wsuser
PASS=s3cret-amqp-pass
WRONG_PASS=n0t-the-amqp-pass

die() {
	printf 'record-amqp: %s\n' "$*" >&2
	exit 1
}
log() { printf '==> %s\n' "$*" >&2; }

[[ $# -eq 1 && $1 != -* ]] || die "usage: record-amqp.sh OUTDIR"
out=$(realpath -m "$1")
[[ $(id -u) -eq 0 ]] || die "needs root (tcpdump captures on lo)"
PATH=$PATH:/usr/sbin
RMQ=/usr/lib/rabbitmq/bin
for tool in flock go tcpdump tshark jq ss amqp-publish amqp-get amqp-declare-queue amqp-delete-queue; do
	command -v "$tool" >/dev/null || die "$tool is missing (scripts/install-deps.sh)"
done
[[ -x $RMQ/rabbitmq-server ]] || die "rabbitmq-server is missing (scripts/install-deps.sh)"

mkdir -p /run/lock
exec 9>/run/lock/wirescope-record-amqp.lock
flock -w 600 9 || die "another record-amqp.sh is still running (/run/lock/wirescope-record-amqp.lock)"

# shellcheck source=scripts/lib/proc.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/proc.sh"
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

WORK=$(mktemp -d /tmp/wirescope-amqp.XXXXXX)
log "building amqpclient (test/amqpapps)"
(cd "$repo/test/amqpapps" && go build -o "$WORK/amqpclient" ./cmd/amqpclient) || { rm -rf "$WORK"; die "building amqpclient failed"; }
SERVER_PID=
epmd_before=
pgrep -x epmd >/dev/null && epmd_before=1
export HOME=$WORK RABBITMQ_NODENAME=$NODE RABBITMQ_NODE_IP_ADDRESS=$IP RABBITMQ_NODE_PORT=$PORT \
	RABBITMQ_DIST_PORT=$DIST_PORT RABBITMQ_MNESIA_BASE=$WORK/mnesia RABBITMQ_LOG_BASE=$WORK/logs \
	RABBITMQ_CONFIG_FILE=$WORK/rabbitmq.conf RABBITMQ_ENABLED_PLUGINS_FILE=$WORK/enabled_plugins \
	RABBITMQ_PID_FILE=$WORK/rabbitmq.pid RABBITMQ_ADVANCED_CONFIG_FILE=$WORK/advanced.config \
	RABBITMQ_CONF_ENV_FILE=$WORK/rabbitmq-env.conf
cleanup() {
	local rc=$?
	set +e
	tcpdump_stop
	if [[ -n $SERVER_PID ]]; then
		timeout 60 "$RMQ/rabbitmqctl" -n "$NODE" stop >/dev/null 2>&1
		stop_pid "$SERVER_PID"
	fi
	# epmd outlives the node; stop it if this script started it and no
	# other node uses it.
	if [[ -z $epmd_before ]] && command -v epmd >/dev/null && ! epmd -names 2>/dev/null | grep -q '^name '; then
		epmd -kill >/dev/null 2>&1
	fi
	if [[ $rc -ne 0 ]]; then
		tail -n 30 "$WORK"/logs/*.log "$WORK"/logs/*.err >&2 2>/dev/null
		rm -rf "$out"
	fi
	rm -rf "$WORK"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$WORK"/{logs,rec,mnesia}
if ss -H -ltn "( sport = :$PORT or sport = :$DIST_PORT )" | grep -q .; then
	die "port $PORT or $DIST_PORT is already in use"
fi


###############################################################################
# Server
###############################################################################

head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$WORK/.erlang.cookie"
chmod 400 "$WORK/.erlang.cookie"
echo '[].' >"$WORK/enabled_plugins"
echo '[].' >"$WORK/advanced.config"
: >"$WORK/rabbitmq-env.conf"
cat >"$WORK/rabbitmq.conf" <<EOF
listeners.tcp.default = $IP:$PORT
loopback_users = none
log.console = false
log.file.level = info
EOF
log "starting rabbitmq-server ($NODE on $IP:$PORT)"
"$RMQ/rabbitmq-server" >"$WORK/logs/server.out" 2>"$WORK/logs/server.err" &
SERVER_PID=$!
# await_startup fails at once while the node is not reachable yet: ask
# again, up to 2 minutes (it takes 10 to 20 s).
up=
for _ in $(seq 60); do
	kill -0 "$SERVER_PID" 2>/dev/null || die "rabbitmq-server exited"
	if "$RMQ/rabbitmqctl" -n "$NODE" await_startup --timeout 10 >"$WORK/logs/await.err" 2>&1; then
		up=1
		break
	fi
	sleep 2
done
[[ -n $up ]] || die "rabbitmq-server did not start: $(tail -n 5 "$WORK/logs/await.err")"
"$RMQ/rabbitmqctl" -n "$NODE" add_user "$USER_NAME" "$PASS" >/dev/null 2>&1 || die "add_user failed"
"$RMQ/rabbitmqctl" -n "$NODE" set_permissions -p / "$USER_NAME" '.*' '.*' '.*' >/dev/null 2>&1 || die "set_permissions failed"
"$RMQ/rabbitmqctl" -n "$NODE" delete_user guest >/dev/null 2>&1 || true

URL="amqp://$USER_NAME:$PASS@$IP:$PORT/"
SCENARIOS=()

# capture NAME CMD...: run CMD with tcpdump capturing the broker's port
# into rec/NAME.pcap.
capture() {
	local name=$1
	shift
	tcpdump_start "$WORK/logs/tcpdump.err" -i lo -B 65536 -w "$WORK/rec/$name.pcap" "host $IP and tcp port $PORT" ||
		die "tcpdump did not start: $(cat "$WORK/logs/tcpdump.err")"
	"$@" || {
		tcpdump_stop 0.5
		die "scenario $name failed"
	}
	tcpdump_stop 0.5
}

# client NAME SCENARIO [URL]: one amqpclient scenario; its report joins
# the manifest.
client() {
	local name=$1 scn=$2 url=${3:-$URL}
	capture "$name" sh -c '"$0" -addr "$1" -scenario "$2" >"$3"' "$WORK/amqpclient" "$url" "$scn" "$WORK/rec/$name.json"
	local conns
	conns=$(tshark -r "$WORK/rec/$name.pcap" -Y 'tcp.flags.syn == 1 && tcp.flags.ack == 0' 2>/dev/null | wc -l)
	jq --arg n "$name" --argjson c "$conns" '{name: $n, pcap: ($n + ".pcap"), connections: $c} + .' "$WORK/rec/$name.json" >"$WORK/rec/$name.scn"
	SCENARIOS+=("$WORK/rec/$name.scn")
}

###############################################################################
# Scenarios
###############################################################################

log "scenario publish-confirm"
client publish-confirm publish-confirm
log "scenario consume"
client consume consume
log "scenario get-tx"
client get-tx get-tx
log "scenario declare-twice (channel.close 406)"
client declare-twice declare-twice
jq -e '.close_codes == [406]' "$WORK/rec/declare-twice.scn" >/dev/null || die "declare-twice: $(cat "$WORK/rec/declare-twice.scn")"
log "scenario missing-exchange (channel.close 404)"
client missing-exchange missing-exchange
jq -e '.close_codes == [404]' "$WORK/rec/missing-exchange.scn" >/dev/null || die "missing-exchange: $(cat "$WORK/rec/missing-exchange.scn")"
log "scenario bad-password (the connection dropped)"
client bad-password bad-password "amqp://$USER_NAME:$WRONG_PASS@$IP:$PORT/"
# RabbitMQ 3.10 answers a wrong password by closing the TCP connection,
# not with connection.close 403: amqp091-go reports ErrCredentials (403).
jq -e '.client_error == 403 and .close_codes == []' "$WORK/rec/bad-password.scn" >/dev/null || die "bad-password: $(cat "$WORK/rec/bad-password.scn")"

log "scenario amqp-tools (rabbitmq-c)"
tools() {
	local srv=(--server "$IP" --port "$PORT" --username "$USER_NAME" --password "$PASS")
	amqp-declare-queue "${srv[@]}" -q tools.q >/dev/null &&
		amqp-publish "${srv[@]}" -r tools.q -C text/plain -b "hello from amqp-tools" &&
		amqp-publish "${srv[@]}" -r tools.q -C text/plain -b "second" &&
		[[ $(amqp-get "${srv[@]}" -q tools.q) == "hello from amqp-tools" ]] &&
		amqp-delete-queue "${srv[@]}" -q tools.q >/dev/null
}
capture amqp-tools tools
# Each amqp-tools command is one connection: a channel, then its method.
jq -n '{name: "amqp-tools", pcap: "amqp-tools.pcap", connections: 5,
	methods: {"connection.open": 5, "channel.open": 5, "queue.declare": 1, "basic.publish": 2, "basic.get": 1, "queue.delete": 1,
		"channel.close": 5, "connection.close": 5},
	publishes: 2, deliveries: 1, close_codes: []}' >"$WORK/rec/amqp-tools.scn"
SCENARIOS+=("$WORK/rec/amqp-tools.scn")

###############################################################################
# Manifest
###############################################################################

mkdir -p "$out"
for s in "${SCENARIOS[@]}"; do
	n=$(jq -r .name "$s")
	cp "$WORK/rec/$n.pcap" "$out/"
done
jq -s --arg p "$PASS" --arg w "$WRONG_PASS" --argjson port "$PORT" \
	'{port: $port, secrets: [$p, $w], scenarios: .}' "${SCENARIOS[@]}" >"$out/manifest.json"
log "wrote $out (${#SCENARIOS[@]} scenarios)"
