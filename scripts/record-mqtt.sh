#!/usr/bin/env bash
# record-mqtt.sh — record MQTT from a real mosquitto broker and real clients
# on loopback, with a manifest of what the clients did, for the MQTT
# dissector's recorded test (cmd/wirescope/mqtt_test.go).
#
# Usage:
#   scripts/record-mqtt.sh OUTDIR
#       one capture per scenario, OUTDIR/NAME.pcap, and OUTDIR/manifest.json
#       saying what each holds: per TCP connection, in the order the clients
#       ran, {client, version, client_id, port, calls}, where calls are the
#       exchanges its -d (debug) output shows, in order, as
#       {method, path, status, direction, qos, retain}:
#         method     CONNECT, PUBLISH, SUBSCRIBE, UNSUBSCRIBE, PINGREQ,
#                    DISCONNECT
#         path       the client id (CONNECT), the topic (PUBLISH: the one
#                    given with -t when the client sent a topic alias in its
#                    place, the topic name it printed otherwise), the topic
#                    filter (SUBSCRIBE)
#         status     the MQTT 5.0 name of the answer's reason code as the
#                    client printed it (CONNACK's code, PUBACK's or PUBCOMP's
#                    RC, the QoS SUBACK granted: "Granted QoS 2"; a 3.1.x
#                    CONNACK return code by its 5.0 equivalent: 5 "Not
#                    authorized"); "" for what needs no answer (a QoS 0
#                    PUBLISH, DISCONNECT)
#         direction  "client→server", or "server→client" for a PUBLISH the
#                    broker sent to the subscriber (its status is what the
#                    client answered: PUBACK/PUBCOMP Success)
#         qos        the PUBLISH's QoS; retain: its retain flag (PUBLISH)
#         alias      true: the PUBLISH carried a topic alias instead of its
#                    topic (MQTT 5.0)
#       and per scenario: tcp_connections (SYNs in the capture), publishes
#       (the PUBLISH packets by topic, both directions, an aliased one under
#       the topic its alias stands for; checked against tshark's count), and
#       secrets (passwords sent in the capture, which a dissector
#       must never show; all of them again at the top).
#
# Server: Debian's mosquitto 2 on 127.0.0.46, from its own configuration in
# a temporary directory (per_listener_settings): port 11883 anonymous, and
# port 11884 with a password file (allow_anonymous false) for the auth
# scenario. Clients: mosquitto_pub and mosquitto_sub (mosquitto-clients)
# with -d, MQTT 3.1 (-V mqttv31), 3.1.1 (-V mqttv311) and 5.0 (-V mqttv5),
# each with its own client id (-i). Every scenario is captured alone by
# tcpdump on lo, host 127.0.0.46 and the scenario's port.
#
# A scenario that does not end as scripted (a client's exit status, what it
# printed, the connections in the capture, tshark's count of PUBLISH
# packets) fails the run; a failed run leaves nothing in OUTDIR. Needs root
# (tcpdump) and mosquitto, mosquitto_pub, mosquitto_sub, mosquitto_passwd,
# tcpdump, tshark, jq and ss (scripts/install-deps.sh). Everything started is
# stopped on exit.
set -euo pipefail

IP=127.0.0.46
PORT=11883      # anonymous
PORT_AUTH=11884 # password file
USER_NAME=meter
PASS=mq-s3cret-pass
WRONG_PASS=not-the-mq-pass

die() {
	printf 'record-mqtt: %s\n' "$*" >&2
	exit 1
}
log() { printf '==> %s\n' "$*" >&2; }

[[ $# -eq 1 && $1 != -* ]] || die "usage: record-mqtt.sh OUTDIR"
out=$(realpath -m "$1")
[[ $(id -u) -eq 0 ]] || die "needs root (tcpdump captures on lo)"
PATH=$PATH:/usr/sbin
for tool in flock stdbuf mosquitto mosquitto_pub mosquitto_sub mosquitto_passwd tcpdump tshark jq ss; do
	command -v "$tool" >/dev/null || die "$tool is missing (sudo bash scripts/install-deps.sh)"
done

# One run at a time (from any checkout): a second waits for the first's
# broker, ports and captures to be gone, up to 10 minutes.
mkdir -p /run/lock
exec 9>/run/lock/wirescope-record-mqtt.lock
flock -w 600 9 || die "another record-mqtt.sh is still running (/run/lock/wirescope-record-mqtt.lock)"

# shellcheck source=scripts/lib/proc.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/proc.sh"

WORK=$(mktemp -d /tmp/wirescope-mqtt.XXXXXX)
BROKER_PID=
BG_PIDS=() # subscribers running in the background
cleanup() {
	local rc=$?
	set +e
	tcpdump_stop
	local pid
	for pid in "${BG_PIDS[@]}"; do
		stop_pid "$pid"
	done
	stop_pid "$BROKER_PID"
	if [[ $rc -ne 0 ]]; then
		tail -n 20 "$WORK"/logs/* >&2 2>/dev/null
	fi
	rm -rf "$WORK"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$WORK"/{logs,rec,plan,broker}
for port in $PORT $PORT_AUTH; do
	if ss -H -ltn "( sport = :$port )" | awk '{print $4}' | grep -Eq "^($IP|0\.0\.0\.0|\*|\[::\]):$port\$"; then
		die "$IP:$port is already in use"
	fi
done

###############################################################################
# The broker
###############################################################################

mosquitto_passwd -c -b "$WORK/broker/passwd" "$USER_NAME" "$PASS" >"$WORK/logs/passwd.out" 2>&1 ||
	die "mosquitto_passwd failed: $(cat "$WORK/logs/passwd.out")"
chmod 600 "$WORK/broker/passwd"
# user root: mosquitto started as root would switch to the mosquitto user,
# who may not read the temporary directory (mode 700).
cat >"$WORK/broker/mosquitto.conf" <<EOF
user root
per_listener_settings true
persistence false
log_dest file $WORK/logs/mosquitto.log
log_type all
listener $PORT $IP
allow_anonymous true
listener $PORT_AUTH $IP
allow_anonymous false
password_file $WORK/broker/passwd
EOF
mosquitto -c "$WORK/broker/mosquitto.conf" >"$WORK/logs/mosquitto.out" 2>&1 &
BROKER_PID=$!
for _ in $(seq 100); do
	if ss -H -ltn "( sport = :$PORT_AUTH )" | grep -q "$IP:$PORT_AUTH" && ss -H -ltn "( sport = :$PORT )" | grep -q "$IP:$PORT"; then
		break
	fi
	kill -0 "$BROKER_PID" 2>/dev/null || die "mosquitto exited at start: $(cat "$WORK/logs/mosquitto.out")"
	sleep 0.1
done
ss -H -ltn "( sport = :$PORT )" | grep -q "$IP:$PORT" || die "mosquitto does not listen on $IP:$PORT"
MOSQUITTO_VERSION=$( (mosquitto -h 2>&1 || true) | sed -n "s/^mosquitto version \(.*\)$/\1/p" | head -n 1)
log "mosquitto $MOSQUITTO_VERSION on $IP:$PORT (anonymous) and $IP:$PORT_AUTH (password file)"

###############################################################################
# Scenarios
###############################################################################

REC=$WORK/rec
SCN=
SCN_PORT=
CONN=0

# scenario NAME PORT DESCRIPTION: start recording a scenario.
scenario() {
	SCN=$1
	SCN_PORT=$2
	CONN=0
	log "$SCN: $3"
	printf '%s' "$3" >"$WORK/plan/$SCN.description"
	printf '%s\n' "$SCN_PORT" >"$WORK/plan/$SCN.port"
	printf '%s\n' "$SCN" >>"$WORK/plan/order"
	: >"$WORK/plan/$SCN.conns"
	: >"$WORK/plan/$SCN.calls"
	: >"$WORK/plan/$SCN.secrets"
	tcpdump_start "$WORK/logs/tcpdump.err" -i lo -B 65536 -w "$REC/$SCN.pcap" "host $IP and tcp port $SCN_PORT" ||
		die "tcpdump did not start: $(cat "$WORK/logs/tcpdump.err")"
}

# end_scenario: stop the capture; check it dropped nothing, holds one SYN
# per connection, and that tshark counts as many PUBLISH packets per topic
# as the clients printed.
end_scenario() {
	tcpdump_stop 0.3
	grep -qE '^0 packets dropped by kernel' "$WORK/logs/tcpdump.err" ||
		die "$SCN: tcpdump dropped packets: $(cat "$WORK/logs/tcpdump.err")"
	local syns
	syns=$(tshark -r "$REC/$SCN.pcap" -Y 'tcp.flags.syn == 1 && tcp.flags.ack == 0' 2>/dev/null | wc -l)
	((syns == CONN)) || die "$SCN: the capture has $syns connections, the clients opened $CONN"
	printf '%s\n' "$syns" >"$WORK/plan/$SCN.tcp"
	# The clients' PUBLISH packets by topic (an aliased one under the topic
	# its alias stands for: tshark resolves aliases too).
	awk -F'\t' '$2 == "PUBLISH" { print $3 }' "$WORK/plan/$SCN.calls" | tally >"$WORK/plan/$SCN.publishes"
	tshark -r "$REC/$SCN.pcap" -d "tcp.port==$SCN_PORT,mqtt" -Y 'mqtt.msgtype == 3' -T fields -e mqtt.topic \
		-E occurrence=a -E aggregator='|' 2>/dev/null | tr '|' '\n' | tally >"$WORK/tshark.publishes"
	diff -u "$WORK/plan/$SCN.publishes" "$WORK/tshark.publishes" >"$WORK/logs/publishes.diff" ||
		die "$SCN: tshark's PUBLISH packets (+) differ from the clients' (-): $(cat "$WORK/logs/publishes.diff")"
	printf '    %s.pcap: %s connections, %s calls, %s PUBLISH packets\n' "$SCN" "$syns" \
		"$(wc -l <"$WORK/plan/$SCN.calls")" "$(awk -F'\t' '{ n += $2 } END { print n + 0 }' "$WORK/plan/$SCN.publishes")" >&2
	SCN=
}

# tally: lines → "LINE<TAB>COUNT", sorted.
tally() { LC_ALL=C sort | uniq -c | awk '{ n = $1; sub(/^ *[0-9]+ ?/, ""); printf "%s\t%d\n", $0, n }'; }

# client_calls CONN VERSION CLIENT-ID TOPIC DEBUG-OUTPUT: the exchanges a
# client's -d output shows, as the manifest's calls, one a line:
# conn, method, path, status, direction, qos, alias|"", retain.
client_calls() {
	awk -v conn="$1" -v ver="$2" -v id="$3" -v topic="$4" -v OFS='\t' '
		BEGIN {
			split("Success|Unsupported Protocol Version|Client Identifier not valid|Server unavailable|Bad User Name or Password|Not authorized", v3, "|")
			v5[0] = "Success"; v5[16] = "No matching subscribers"; v5[17] = "No subscription existed"
			v5[128] = "Unspecified error"; v5[133] = "Client Identifier not valid"; v5[134] = "Bad User Name or Password"
			v5[135] = "Not authorized"; v5[136] = "Server unavailable"; v5[144] = "Topic Name invalid"; v5[151] = "Quota exceeded"
		}
		function name(rc) { return (ver != "5.0" && rc >= 0 && rc <= 5) ? v3[rc + 1] : ((rc in v5) ? v5[rc] : "rc " rc) }
		function emit(i) { print conn, m[i], p[i], s[i], d[i], q[i], a[i], r[i] }
		# sending CONNECT ... received CONNACK (N)
		/ sending CONNECT$/ { n++; m[n] = "CONNECT"; p[n] = id; d[n] = "client→server"; connect = n; next }
		/ received CONNACK \(/ { match($0, /\(([0-9]+)\)/); s[connect] = name(substr($0, RSTART + 1, RLENGTH - 2) + 0); next }
		# sending PUBLISH (d0, q1, r0, m1, '\''a/b'\'', ... (2 bytes))
		/ (sending|received) PUBLISH \(/ {
			n++; m[n] = "PUBLISH"
			d[n] = ($0 ~ / sending /) ? "client→server" : "server→client"
			match($0, /, q[0-2],/); q[n] = substr($0, RSTART + 3, 1)
			match($0, /, r[01],/); r[n] = substr($0, RSTART + 3, 1)
			match($0, /, m[0-9]+,/); mid = substr($0, RSTART + 3, RLENGTH - 4)
			match($0, /'\''.*'\'', \.\.\./); t = substr($0, RSTART + 1, RLENGTH - 7)
			if (t == "(null)") { t = topic; a[n] = "alias" }
			p[n] = t
			if (q[n] > 0) pend[d[n] " " mid] = n
			next
		}
		# the publisher: received PUBACK (Mid: 1, RC:16) / PUBCOMP (Mid: 1, RC:0)
		/ received (PUBACK|PUBCOMP) \(Mid: [0-9]+, RC:[0-9]+\)/ {
			match($0, /Mid: [0-9]+/); mid = substr($0, RSTART + 5, RLENGTH - 5)
			match($0, /RC:[0-9]+/); rc = substr($0, RSTART + 3, RLENGTH - 3) + 0
			i = pend["client→server " mid]; if (i) s[i] = name(rc)
			next
		}
		# the subscriber: sending PUBACK (m1, rc0) / PUBCOMP (m1)
		/ sending (PUBACK|PUBCOMP) \(m[0-9]+/ {
			match($0, /\(m[0-9]+/); mid = substr($0, RSTART + 2, RLENGTH - 2)
			i = pend["server→client " mid]; if (i) s[i] = "Success"
			next
		}
		/ sending SUBSCRIBE \(/ {
			n++; m[n] = "SUBSCRIBE"; d[n] = "client→server"; subn = n
			match($0, /Topic: [^,]+/); p[n] = substr($0, RSTART + 7, RLENGTH - 7)
			next
		}
		/^Subscribed \(mid: [0-9]+\): / { g = $NF; s[subn] = (g <= 2) ? "Granted QoS " g : name(g + 0); next }
		/ sending PINGREQ$/ { n++; m[n] = "PINGREQ"; d[n] = "client→server"; ping = n; next }
		/ received PINGRESP$/ { s[ping] = "Success"; next }
		/ sending DISCONNECT$/ { n++; m[n] = "DISCONNECT"; d[n] = "client→server"; next }
		END { for (i = 1; i <= n; i++) emit(i) }' "$5"
}

# run_client [--bg FILE] CLIENT VERSION CLIENT-ID ARGS...: run mosquitto_pub
# or mosquitto_sub with -d against the scenario's port (in the background
# with --bg, its output in FILE, read later by client_done); a foreground
# client's calls are added to the scenario at once. Sets CONN.
declare -A CONN_OUT=() CONN_INFO=()
run_client() {
	local bg=
	if [[ $1 == --bg ]]; then
		bg=$2
		shift 2
	fi
	local client=$1 version=$2 id=$3
	shift 3
	local vflag
	case $version in
	3.1) vflag=mqttv31 ;;
	3.1.1) vflag=mqttv311 ;;
	5.0) vflag=mqttv5 ;;
	*) die "version $version" ;;
	esac
	CONN=$((CONN + 1))
	# The topic given with -t (a topic alias stands for it).
	local topic= prev=
	for a in "$@"; do
		[[ $prev != -t ]] || topic=$a
		prev=$a
	done
	CONN_INFO[$CONN]="$client	$version	$id	$topic"
	printf '%s\t%s\t%s\t%s\n' "$CONN" "$client" "$version" "$id" >>"$WORK/plan/$SCN.conns"
	if [[ -n $bg ]]; then
		# Line-buffered: its SUBACK line is awaited while it runs.
		stdbuf -oL "$client" -d -h $IP -p "$SCN_PORT" -V "$vflag" -i "$id" "$@" >"$bg" 2>&1 &
		BG_PIDS+=($!)
		CONN_OUT[$CONN]=$bg
		return 0
	fi
	local f=$WORK/logs/client$CONN.out rc=0
	timeout 30 "$client" -d -h $IP -p "$SCN_PORT" -V "$vflag" -i "$id" "$@" >"$f" 2>&1 || rc=$?
	printf '%s\n' "$rc" >"$WORK/logs/client$CONN.rc"
	CONN_OUT[$CONN]=$f
	client_done "$CONN"
	sed 's/^/        /' "$f" | grep -E 'sending|received|Subscribed|refused|error' | head -n 12 >&2 || true
}

# client_done CONN: add a connection's calls to the scenario.
client_done() {
	local client version id topic
	IFS=$'\t' read -r client version id topic <<<"${CONN_INFO[$1]}"
	client_calls "$1" "$version" "$id" "$topic" "${CONN_OUT[$1]}" >>"$WORK/plan/$SCN.calls"
}

# expect_rc CONN RC: a foreground client's exit status.
expect_rc() {
	local got
	got=$(cat "$WORK/logs/client$1.rc")
	[[ $got == "$2" ]] || die "$SCN: client $1 exited $got, want $2: $(cat "$WORK/logs/client$1.out")"
}

# expect_calls CONN LINE...: a connection's calls as "METHOD PATH STATUS
# DIRECTION QOS", in order (the script's own check of what it meant to
# provoke).
expect_calls() {
	local conn=$1 got want
	shift
	got=$(awk -F'\t' -v c="$conn" '$1 == c { printf "%s %s %s %s %s\n", $2, $3, $4, $5, $6 }' "$WORK/plan/$SCN.calls")
	want=$(printf '%s\n' "$@")
	[[ $got == "$want" ]] || die "$SCN: connection $conn's calls are
$got
want
$want"
}

# subscribe_bg VERSION CLIENT-ID ARGS...: a mosquitto_sub in the background,
# returning once it printed its SUBACK.
subscribe_bg() {
	local f=$WORK/logs/sub$((CONN + 1)).out
	run_client --bg "$f" mosquitto_sub "$@"
	for _ in $(seq 100); do
		grep -q '^Subscribed' "$f" && return 0
		sleep 0.05
	done
	die "$SCN: mosquitto_sub $* did not subscribe: $(cat "$f")"
}

# wait_bg COUNT: wait for the background subscribers (started with -C, they
# exit after COUNT messages... or -W seconds), then add their calls.
wait_bg() {
	local pid
	for pid in "${BG_PIDS[@]}"; do
		wait "$pid" || die "$SCN: a subscriber exited $?: $(cat "$WORK"/logs/sub*.out)"
	done
	BG_PIDS=()
	local c
	for c in $(seq "$CONN"); do
		[[ ${CONN_OUT[$c]} == */sub*.out ]] && client_done "$c"
	done
	return 0
}

secret() { printf '%s\n' "$@" >>"$WORK/plan/$SCN.secrets"; }

###############################################################################

scenario qos-v311 $PORT "MQTT 3.1.1 and 3.1: mosquitto_pub at QoS 0, 1 and 2, one connection each, nobody subscribed; one QoS 1 publish over MQTT 3.1 (MQIsdp)"
run_client mosquitto_pub 3.1.1 pub-q0 -q 0 -t plant/line1/temp -m 20.5
expect_rc 1 0
expect_calls 1 "CONNECT pub-q0 Success client→server " "PUBLISH plant/line1/temp  client→server 0" "DISCONNECT   client→server "
run_client mosquitto_pub 3.1.1 pub-q1 -q 1 -t plant/line1/temp -m 20.6
expect_calls 2 "CONNECT pub-q1 Success client→server " "PUBLISH plant/line1/temp Success client→server 1" "DISCONNECT   client→server "
run_client mosquitto_pub 3.1.1 pub-q2 -q 2 -t plant/line1/pressure -m 1013 --repeat 2
expect_calls 3 "CONNECT pub-q2 Success client→server " "PUBLISH plant/line1/pressure Success client→server 2" \
	"PUBLISH plant/line1/pressure Success client→server 2" "DISCONNECT   client→server "
run_client mosquitto_pub 3.1 pub-v31 -q 1 -t legacy/v31 -m old
expect_calls 4 "CONNECT pub-v31 Success client→server " "PUBLISH legacy/v31 Success client→server 1" "DISCONNECT   client→server "
end_scenario

scenario qos-v5 $PORT "MQTT 5.0: mosquitto_pub at QoS 0, 1 and 2, nobody subscribed (PUBACK No matching subscribers)"
run_client mosquitto_pub 5.0 pub5-q0 -q 0 -t plant/line2/temp -m 19.5
run_client mosquitto_pub 5.0 pub5-q1 -q 1 -t plant/line2/temp -m 19.6
expect_calls 2 "CONNECT pub5-q1 Success client→server " "PUBLISH plant/line2/temp No matching subscribers client→server 1" "DISCONNECT   client→server "
run_client mosquitto_pub 5.0 pub5-q2 -q 2 -t plant/line2/pressure -m 1012
expect_calls 3 "CONNECT pub5-q2 Success client→server " "PUBLISH plant/line2/pressure Success client→server 2" "DISCONNECT   client→server "
end_scenario

scenario retained $PORT "a retained message (-r, QoS 1, 3.1.1), then a 5.0 subscriber that receives it from the broker (retain flag set) and exits"
run_client mosquitto_pub 3.1.1 pub-retain -q 1 -r -t config/device7 -m '{"interval":30}'
expect_calls 1 "CONNECT pub-retain Success client→server " "PUBLISH config/device7 Success client→server 1" "DISCONNECT   client→server "
run_client mosquitto_sub 5.0 sub-retain -q 1 -t config/device7 -C 1 -W 10
expect_rc 2 0
expect_calls 2 "CONNECT sub-retain Success client→server " "SUBSCRIBE config/device7 Granted QoS 1 client→server " \
	"PUBLISH config/device7 Success server→client 1" "DISCONNECT   client→server "
# Clear the retained message (an empty retained publish), in the capture too.
run_client mosquitto_pub 3.1.1 pub-unretain -q 0 -r -t config/device7 -n
end_scenario

scenario subscribe $PORT "a 3.1.1 and a 5.0 mosquitto_sub on sub/# at QoS 2 receive QoS 0, 1 and 2 publishes from the broker (server→client, each at its publish's QoS) and exit after 3"
subscribe_bg 3.1.1 sub311 -q 2 -t 'sub/#' -C 3 -W 20
subscribe_bg 5.0 sub5 -q 2 -t 'sub/#' -C 3 -W 20
run_client mosquitto_pub 5.0 pub-s0 -q 0 -t sub/a -m zero
run_client mosquitto_pub 5.0 pub-s1 -q 1 -t sub/b -m one
run_client mosquitto_pub 3.1.1 pub-s2 -q 2 -t sub/c -m two
expect_calls 4 "CONNECT pub-s1 Success client→server " "PUBLISH sub/b Success client→server 1" "DISCONNECT   client→server "
wait_bg
for c in 1 2; do
	id=sub311
	[[ $c == 1 ]] || id=sub5
	expect_calls $c "CONNECT $id Success client→server " "SUBSCRIBE sub/# Granted QoS 2 client→server " \
		"PUBLISH sub/a  server→client 0" "PUBLISH sub/b Success server→client 1" "PUBLISH sub/c Success server→client 2" \
		"DISCONNECT   client→server "
done
end_scenario

scenario auth $PORT_AUTH "the password listener: a wrong password over 3.1.1 (CONNACK 5, Not authorized) and over 5.0 (0x87 Not authorized), then the right one over 5.0 and over 3.1.1 with a QoS 1 publish each"
run_client mosquitto_pub 3.1.1 auth-bad311 -u "$USER_NAME" -P "$WRONG_PASS" -q 1 -t secure/t -m x
expect_rc 1 5
expect_calls 1 "CONNECT auth-bad311 Not authorized client→server "
run_client mosquitto_pub 5.0 auth-bad5 -u "$USER_NAME" -P "$WRONG_PASS" -q 1 -t secure/t -m x
expect_rc 2 135
expect_calls 2 "CONNECT auth-bad5 Not authorized client→server "
run_client mosquitto_pub 5.0 auth-ok5 -u "$USER_NAME" -P "$PASS" -q 1 -t secure/t -m y
expect_rc 3 0
expect_calls 3 "CONNECT auth-ok5 Success client→server " "PUBLISH secure/t No matching subscribers client→server 1" "DISCONNECT   client→server "
run_client mosquitto_pub 3.1.1 auth-ok311 -u "$USER_NAME" -P "$PASS" -q 1 -t secure/t -m z
expect_calls 4 "CONNECT auth-ok311 Success client→server " "PUBLISH secure/t Success client→server 1" "DISCONNECT   client→server "
secret "$PASS" "$WRONG_PASS"
end_scenario

scenario v5-properties $PORT "MQTT 5.0 properties: a subscriber, then mosquitto_pub --repeat 3 with a topic alias (the 2nd and 3rd publishes carry the alias alone), user properties, content type, response topic and correlation data, a session expiry on CONNECT"
subscribe_bg 5.0 sub-props -q 1 -t 'props/#' -C 3 -W 20
run_client mosquitto_pub 5.0 pub-props -q 1 -t props/telemetry -m '{"v":1}' --repeat 3 \
	-D connect session-expiry-interval 120 -D publish topic-alias 1 -D publish user-property trace-id abc123 \
	-D publish user-property tenant blue -D publish content-type application/json \
	-D publish response-topic props/replies -D publish correlation-data req-42
expect_rc 2 0
wait_bg
expect_calls 1 "CONNECT sub-props Success client→server " "SUBSCRIBE props/# Granted QoS 1 client→server " \
	"PUBLISH props/telemetry Success server→client 1" "PUBLISH props/telemetry Success server→client 1" \
	"PUBLISH props/telemetry Success server→client 1" "DISCONNECT   client→server "
expect_calls 2 "CONNECT pub-props Success client→server " "PUBLISH props/telemetry Success client→server 1" \
	"PUBLISH props/telemetry Success client→server 1" "PUBLISH props/telemetry Success client→server 1" "DISCONNECT   client→server "
[[ $(awk -F'\t' '$1 == 2 && $7 == "alias"' "$WORK/plan/$SCN.calls" | wc -l) == 2 ]] ||
	die "$SCN: mosquitto_pub did not send 2 aliased publishes"
end_scenario

###############################################################################
# The manifest
###############################################################################

scenarios=()
while read -r scn; do
	scenarios+=("$(jq -n --arg name "$scn" --arg desc "$(cat "$WORK/plan/$scn.description")" \
		--argjson port "$(cat "$WORK/plan/$scn.port")" --argjson tcp "$(cat "$WORK/plan/$scn.tcp")" \
		--rawfile conns "$WORK/plan/$scn.conns" --rawfile calls "$WORK/plan/$scn.calls" \
		--rawfile pubs "$WORK/plan/$scn.publishes" --rawfile secrets "$WORK/plan/$scn.secrets" '
		def rows: split("\n") | map(select(. != "") | split("\t"));
		($calls | rows) as $calls |
		{name: $name, description: $desc, pcap: ($name + ".pcap"),
		 server: {ip: "'"$IP"'", port: $port}, tcp_connections: $tcp,
		 connections: ($conns | rows | map(. as $c |
			{client: $c[1], version: $c[2], client_id: $c[3],
			 calls: ($calls | map(select(.[0] == $c[0])) | map(
				{method: .[1], path: .[2], status: .[3], direction: .[4]}
				+ (if .[5] != "" then {qos: (.[5] | tonumber)} else {} end)
				+ (if .[7] != "" then {retain: (.[7] == "1")} else {} end)
				+ (if .[6] == "alias" then {alias: true} else {} end)))})),
		 publishes: ($pubs | rows | map({key: .[0], value: (.[1] | tonumber)}) | from_entries),
		 secrets: ($secrets | split("\n") | map(select(. != "")))}')")
done <"$WORK/plan/order"
printf '%s\n' "${scenarios[@]}" | jq -s --arg mosquitto "$MOSQUITTO_VERSION" '
	{recorded_by: "scripts/record-mqtt.sh", mosquitto: $mosquitto,
	 secrets: (map(.secrets[]) | unique), scenarios: .}' >"$REC/manifest.json"
chmod 644 "$REC"/*.pcap "$REC/manifest.json"

mkdir -p "$out"
for f in "$REC"/*; do
	mv -f "$f" "$out/"
done
log "$out: $(jq '.scenarios | length' "$out/manifest.json") scenarios"
