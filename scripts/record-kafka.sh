#!/usr/bin/env bash
# record-kafka.sh — record the Kafka protocol from a real broker (franz-go's
# kfake) and real clients (franz-go's kgo, and kcat: librdkafka) on
# loopback, with a manifest of what was sent, for the Kafka dissector's
# recorded tests and its benchmark.
#
# Usage:
#   scripts/record-kafka.sh OUTDIR
#       one capture per scenario, OUTDIR/NAME.pcap, and OUTDIR/manifest.json:
#         {"recorded_by", "versions": {go modules: franz-go, kfake, kmsg;
#            kcat, librdkafka, tshark}, "secrets": [passwords sent in the
#            captures, which a dissector must never show],
#          "api_names": {"0": "Produce", ...} (kmsg.NameForKey),
#          "scenarios": [{
#            "name", "description", "pcap", "ip", "port",
#            "connections"       TCP connections (the broker's log; checked
#                                against the capture's SYNs)
#            "requests"          {"Produce": n, ...}: requests by API name
#                                (kmsg.NameForKey), all connections, from the
#                                broker's log; checked against the clients'
#                                own counts (kgo's HookBrokerWrite; kcat's
#                                -d protocol "Sent ...Request" lines) and
#                                against kfake's own control-function counts
#            "versions"          {"Produce": [9], ...}: the versions used
#            "errors"            {"UNKNOWN_TOPIC_OR_PARTITION": n, ...}:
#                                responses holding that error code (anywhere
#                                in the response), as the broker gave them
#            "one_way"           acks=0 Produce requests (never answered)
#            "unanswered"        other requests the broker closed the
#                                connection on, or that were cut short by
#                                the client closing (a long-poll Fetch)
#            "unanswered_requests" {"Fetch": n, ...}: which
#            "topics"            topic names the requests named
#            "records_produced"  records in Produce requests answered without
#                                error, plus the acks=0 ones (the broker's
#                                reading of the batches; checked against the
#                                clients')
#            "codecs"            {"gzip": batches, ...} of those Produces
#            "records_consumed"  records the consumers got (the clients'
#                                report)
#            "secrets"           this scenario's passwords
#            "client"            the clients' own report (kafkaclient's JSON;
#                                kcat: records and request counts)
#            "tshark_requests"   {"Produce": n, ...}: tshark's count of Kafka
#                                requests (-d tcp.port==PORT,kafka,
#                                kafka.request_key); tshark 4.0 calls newer
#                                versions malformed but reads the key
#            "tshark_versions"   {"Produce": [9], ...} as tshark read them
#          }]}
#   scripts/record-kafka.sh --bulk OUT.pcap [RECORDS=200000]
#       a franz-go producer at full speed (linger 5 ms, acks=1, no
#       compression, 100-byte values, batches up to 16 KiB) of RECORDS
#       records to topic bulk (3 partitions), then a consumer (no group,
#       fetches up to 64 KiB) reading them back; OUT.pcap.json:
#       {"requests": {API name: n}, "versions": {API name: [versions]},
#       "connections", "records_produced", "records_consumed", "errors",
#       "one_way", "unanswered", "modules", "client_seconds"} from the
#       broker's log (checked against the clients' hook counts and the
#       capture's SYNs), and tshark's count, "tshark_requests". The
#       benchmark's input.
#
# Broker: test/kafkaapps/cmd/kfake-broker (franz-go's kfake: a Kafka broker
# in Go, one node, auto-creation of topics off) on 127.0.0.45:19092, and a
# second one with SASL/PLAIN on 127.0.0.45:19093 for the sasl scenario. It
# logs every request as it passes on the wire (a tap on its connections,
# decoded with kmsg): that log is the manifest's truth. Clients:
# test/kafkaapps/cmd/kafkaclient (franz-go) and kcat. Scenarios:
#   produce        4 idempotent producers (gzip, snappy, lz4, zstd), acks=all,
#                  300 records over orders, payments, events
#   produce-acks0  acks=0, idempotency off: 300 records to clicks in 5
#                  Produce requests nobody answers
#   consume-group  a consumer in group billing reads orders (100 records)
#                  from the start: FindCoordinator, JoinGroup (twice: the
#                  first gets MEMBER_ID_REQUIRED), SyncGroup, OffsetFetch,
#                  ListOffsets, Fetch, OffsetCommit, Heartbeat, LeaveGroup
#   unknown-topic  a record to no-such-topic (kgo fails it on Metadata), a
#                  raw Metadata request and a raw Produce v12 for it:
#                  UNKNOWN_TOPIC_OR_PARTITION
#   kcat           kcat -P (zstd) of 50 records to logs, kcat -C -e
#                  reading them back: librdkafka's own API versions. zstd:
#                  librdkafka 2.0.2 infers gzip, snappy and lz4 support from
#                  old API versions (MsgVer1: Produce v2) that kfake, as
#                  Kafka 4, no longer offers, and then sends those batches
#                  uncompressed ("Broker does not support compression type")
#   sasl           SASL/PLAIN (SaslHandshake v1, SaslAuthenticate) and a
#                  producer of 20 records; then a wrong password: the broker
#                  closes the connection unanswered (kgo tries twice)
# Every scenario is captured alone by tcpdump on lo (host 127.0.0.45 and
# the scenario's port). A scenario whose counts disagree fails the run; a
# failed run leaves nothing in OUTDIR (or no OUT.pcap). Needs root
# (tcpdump), go, kcat, tcpdump, tshark, jq, ss and flock
# (scripts/install-deps.sh). Everything started is stopped on exit.
set -euo pipefail

IP=127.0.0.45
PORT=19092
PORT_SASL=19093
SASL_USER=wirescope
SASL_PASS=kafka-s3cret-pass
WRONG_PASS=n0t-the-kafka-pass

die() {
	printf 'record-kafka: %s\n' "$*" >&2
	exit 1
}
log() { printf '==> %s\n' "$*" >&2; }

bulk=
if [[ ${1:-} == --bulk ]]; then
	bulk=1
	shift
	[[ $# -ge 1 && $# -le 2 ]] || die "usage: record-kafka.sh --bulk OUT.pcap [RECORDS=200000]"
	out=$(realpath -m "$1")
	records=${2:-200000}
	[[ $records =~ ^[1-9][0-9]*$ ]] || die "RECORDS is a positive number"
else
	[[ $# -eq 1 && $1 != -* ]] || die "usage: record-kafka.sh OUTDIR | record-kafka.sh --bulk OUT.pcap [RECORDS]"
	out=$(realpath -m "$1")
fi
[[ $(id -u) -eq 0 ]] || die "needs root (tcpdump captures on lo)"
PATH=$PATH:/usr/sbin:/usr/local/go/bin
for tool in flock go kcat tcpdump tshark jq ss; do
	command -v "$tool" >/dev/null || die "$tool is missing (sudo bash scripts/install-deps.sh)"
done
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# One run at a time (from any checkout): a second waits for the first's
# brokers, ports and captures to be gone, up to 10 minutes.
mkdir -p /run/lock
exec 9>/run/lock/wirescope-record-kafka.lock
flock -w 600 9 || die "another record-kafka.sh is still running (/run/lock/wirescope-record-kafka.lock)"

# shellcheck source=scripts/lib/proc.sh
source "$ROOT/scripts/lib/proc.sh"

WORK=$(mktemp -d /tmp/wirescope-kafka.XXXXXX)
declare -A BROKER_PID=() # port → kfake-broker's pid
cleanup() {
	local rc=$?
	set +e
	tcpdump_stop
	local pid
	for pid in "${BROKER_PID[@]}"; do
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

mkdir -p "$WORK"/{logs,bin,rec,plan}
for port in $PORT $PORT_SASL; do
	if ss -H -ltn "( sport = :$port )" | awk '{print $4}' | grep -Eq "^($IP|0\.0\.0\.0|\*|\[::\]):$port\$"; then
		die "$IP:$port is already in use"
	fi
done

log "building test/kafkaapps (kfake-broker, kafkaclient)"
(cd "$ROOT/test/kafkaapps" && go build -o "$WORK/bin/" ./cmd/kfake-broker ./cmd/kafkaclient) \
	>"$WORK/logs/go-build.log" 2>&1 || die "go build failed: $(cat "$WORK/logs/go-build.log")"
MODULES=$(cd "$ROOT/test/kafkaapps" && go list -m -json github.com/twmb/franz-go github.com/twmb/franz-go/pkg/kfake \
	github.com/twmb/franz-go/pkg/kmsg | jq -s 'map({key: .Path, value: .Version}) | from_entries')
"$WORK/bin/kafkaclient" -names >"$WORK/plan/names.json"

# start_broker PORT TOPICS [FLAGS...]: a kfake-broker on $IP:PORT with the
# topics (3 partitions each), logging to $WORK/logs/broker-PORT.jsonl;
# returns once it printed "ready".
start_broker() {
	local port=$1 topics=$2
	shift 2
	"$WORK/bin/kfake-broker" -listen "$IP:$port" -topics "$topics" -partitions 3 \
		-log "$WORK/logs/broker-$port.jsonl" "$@" >"$WORK/logs/broker-$port.out" 2>&1 &
	BROKER_PID[$port]=$!
	for _ in $(seq 100); do
		if grep -q '^ready' "$WORK/logs/broker-$port.out"; then
			ss -H -ltn "( sport = :$port )" | grep -q "$IP:$port" || die "kfake-broker does not listen on $IP:$port"
			return 0
		fi
		kill -0 "${BROKER_PID[$port]}" 2>/dev/null || die "kfake-broker on $port exited at start"
		sleep 0.1
	done
	die "kfake-broker on $port is not ready"
}

# stop_broker PORT: SIGTERM; it exits 2 when the requests kfake handled
# differ from those its tap read on the wire.
stop_broker() {
	local port=$1 rc=0
	kill -TERM "${BROKER_PID[$port]}"
	wait "${BROKER_PID[$port]}" || rc=$?
	unset "BROKER_PID[$port]"
	((rc == 0)) || die "kfake-broker on $port exited $rc: $(tail -n 3 "$WORK/logs/broker-$port.out")"
	local summary
	summary=$(tail -n 1 "$WORK/logs/broker-$port.jsonl")
	[[ $(jq -r .event <<<"$summary") == summary && $(jq '.mismatch | length' <<<"$summary") == 0 ]] ||
		die "kfake-broker on $port: $summary"
}

# broker_window PORT FROM OUT: the broker log's lines after line FROM, once
# every connection opened in them is closed (up to 10 s).
broker_window() {
	local port=$1 from=$2 dst=$3 opens closes
	for _ in $(seq 200); do
		tail -n +"$((from + 1))" "$WORK/logs/broker-$port.jsonl" >"$dst"
		opens=$(grep -c '"event":"open"' "$dst" || true)
		closes=$(grep -c '"event":"close"' "$dst" || true)
		((opens == closes)) && return 0
		sleep 0.05
	done
	die "$SCN: $((opens - closes)) connections still open on the broker"
}

# summarize LOG CLIENT-REPORT: the manifest's counts from a broker log
# window (JSON).
summarize() {
	jq -s --slurpfile client "$2" '
		map(select(.event == "request")) as $r
		| ($r | map(select(.api == "Produce" and (.one_way or ((.errors // []) | length) == 0)))) as $ok
		| {
			requests: ($r | group_by(.api) | map({key: .[0].api, value: length}) | from_entries),
			versions: ($r | group_by(.api) | map({key: .[0].api, value: (map(.version) | unique)}) | from_entries),
			errors: ([$r[] | (.errors // [])[]] | group_by(.) | map({key: .[0], value: length}) | from_entries),
			one_way: ($r | map(select(.one_way)) | length),
			unanswered: ($r | map(select((.one_way | not) and (.answered | not))) | length),
			unanswered_requests: ($r | map(select((.one_way | not) and (.answered | not))) | group_by(.api)
				| map({key: .[0].api, value: length}) | from_entries),
			topics: ([$r[] | (.topics // [])[]] | unique),
			records_produced: ($ok | map(.records) | add // 0),
			codecs: ([$ok[] | .codecs[]] | group_by(.) | map({key: .[0], value: length}) | from_entries),
			records_consumed: ($client[0].records_consumed // 0),
			decode_errors: ($r | map(select(.decode_error)) | length),
		}' "$1"
}

# tshark_counts PCAP PORT: tshark's Kafka requests, {"requests", "versions"}.
tshark_counts() {
	tshark -r "$1" -d "tcp.port==$2,kafka" -Y "kafka.request_key && tcp.dstport == $2" \
		-T fields -E separator=/t -e kafka.request_key -e kafka.api_version 2>/dev/null |
		jq -R -s --slurpfile names "$WORK/plan/names.json" '
			split("\n") | map(select(. != "") | split("\t") | [(.[0] | split(",")), (.[1] | split(","))]
				| . as [$k, $v] | range($k | length) | {api: ($names[0][$k[.]] // ("key " + $k[.])), version: ($v[.] | tonumber? // null)})
			| {requests: (group_by(.api) | map({key: .[0].api, value: length}) | from_entries),
			   versions: (group_by(.api) | map({key: .[0].api, value: (map(.version) | unique)}) | from_entries)}'
}

# The capture's connections: SYNs to the port.
syns() { tshark -r "$1" -Y "tcp.flags.syn == 1 && tcp.flags.ack == 0 && tcp.dstport == $2" 2>/dev/null | wc -l; }

###############################################################################
# --bulk
###############################################################################

if [[ -n $bulk ]]; then
	# Whole packets (Produce and Fetch carry up to a megabyte), a 256 MiB
	# ring; a run whose capture lost packets (a busy machine) is made
	# again, on a fresh broker, up to 3 times.
	for attempt in 1 2 3; do
		rm -f "$out" "$out.json"
		start_broker $PORT bulk
		tcpdump_start "$WORK/logs/tcpdump.err" -i lo -B 262144 -w "$out" "host $IP and tcp port $PORT" ||
			die "tcpdump did not start: $(cat "$WORK/logs/tcpdump.err")"
		SCN=bulk
		start=$(date +%s%N)
		"$WORK/bin/kafkaclient" -brokers "$IP:$PORT" -scenario bulk -topics bulk -records "$records" \
			>"$WORK/plan/bulk.client.json" 2>"$WORK/logs/client.err" || die "kafkaclient bulk failed: $(cat "$WORK/logs/client.err")"
		end=$(date +%s%N)
		broker_window $PORT 0 "$WORK/plan/bulk.log"
		tcpdump_stop 0.5
		stop_broker $PORT
		grep -qE '^0 packets dropped by kernel' "$WORK/logs/tcpdump.err" && break
		((attempt < 3)) || die "tcpdump dropped packets in 3 runs: $(grep dropped "$WORK/logs/tcpdump.err")"
		log "run $attempt: tcpdump $(grep 'dropped by kernel' "$WORK/logs/tcpdump.err"): again"
	done
	grep -E 'captured|dropped' "$WORK/logs/tcpdump.err" >&2
	summarize "$WORK/plan/bulk.log" "$WORK/plan/bulk.client.json" >"$WORK/plan/bulk.sum"
	jq -e --slurpfile c "$WORK/plan/bulk.client.json" '.requests == $c[0].requests' "$WORK/plan/bulk.sum" >/dev/null ||
		die "the broker's request counts $(jq -c .requests "$WORK/plan/bulk.sum") differ from the clients' $(jq -c .requests "$WORK/plan/bulk.client.json")"
	[[ $(jq .records_produced "$WORK/plan/bulk.sum") == "$records" && $(jq .records_consumed "$WORK/plan/bulk.sum") == "$records" ]] ||
		die "records produced/consumed: $(jq -c '[.records_produced, .records_consumed]' "$WORK/plan/bulk.sum"), want $records"
	[[ $(jq '.errors | length' "$WORK/plan/bulk.sum") == 0 && $(jq .decode_errors "$WORK/plan/bulk.sum") == 0 ]] ||
		die "errors in the bulk run: $(jq -c '[.errors, .decode_errors]' "$WORK/plan/bulk.sum")"
	conns=$(grep -c '"event":"open"' "$WORK/plan/bulk.log")
	[[ $(syns "$out" $PORT) == "$conns" ]] || die "the capture's connections differ from the broker's $conns"
	tshark_counts "$out" $PORT >"$WORK/plan/bulk.tshark"
	jq --argjson conns "$conns" --argjson modules "$MODULES" --arg records "$records" \
		--slurpfile tshark "$WORK/plan/bulk.tshark" \
		--arg secs "$(((end - start) / 1000000))e-3" '
		{recorded_by: "scripts/record-kafka.sh --bulk", modules: $modules, records: ($records | tonumber),
		 client_seconds: ($secs | tonumber), connections: $conns} + del(.decode_errors)
		+ {tshark_requests: $tshark[0].requests}' \
		"$WORK/plan/bulk.sum" >"$out.json"
	jq -c .requests "$out.json" >&2
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
SCN_FROM=0 # the broker log's line count at the scenario's start

# scenario NAME PORT DESCRIPTION: start recording a scenario.
scenario() {
	SCN=$1
	SCN_PORT=$2
	log "$SCN: $3"
	printf '%s' "$3" >"$WORK/plan/$SCN.description"
	printf '%s\n' "$SCN" >>"$WORK/plan/order"
	printf '%s\n' "$SCN_PORT" >"$WORK/plan/$SCN.port"
	: >"$WORK/plan/$SCN.secrets"
	SCN_FROM=$(wc -l <"$WORK/logs/broker-$SCN_PORT.jsonl")
	tcpdump_start "$WORK/logs/tcpdump.err" -i lo -B 65536 -w "$REC/$SCN.pcap" "host $IP and tcp port $SCN_PORT" ||
		die "tcpdump did not start: $(cat "$WORK/logs/tcpdump.err")"
}

# client ARGS...: kafkaclient on the scenario's broker; its report goes to
# $WORK/plan/$SCN.client.json.
client() {
	"$WORK/bin/kafkaclient" -brokers "$IP:$SCN_PORT" -scenario "$SCN" "$@" >"$WORK/plan/$SCN.client.json" \
		2>"$WORK/logs/client.err" || die "$SCN: kafkaclient failed: $(cat "$WORK/logs/client.err")"
}

# end_scenario: wait for the connections to close, stop the capture, check
# it dropped nothing, then the broker's counts against the clients' and the
# capture's.
end_scenario() {
	broker_window "$SCN_PORT" "$SCN_FROM" "$WORK/plan/$SCN.log"
	tcpdump_stop 0.3
	grep -qE '^0 packets dropped by kernel' "$WORK/logs/tcpdump.err" ||
		die "$SCN: tcpdump dropped packets: $(cat "$WORK/logs/tcpdump.err")"
	local pcap=$REC/$SCN.pcap sum=$WORK/plan/$SCN.sum conns n
	summarize "$WORK/plan/$SCN.log" "$WORK/plan/$SCN.client.json" >"$sum"
	conns=$(grep -c '"event":"open"' "$WORK/plan/$SCN.log")
	[[ $(syns "$pcap" "$SCN_PORT") == "$conns" ]] ||
		die "$SCN: the capture has $(syns "$pcap" "$SCN_PORT") connections, the broker saw $conns"
	printf '%s\n' "$conns" >"$WORK/plan/$SCN.conns"
	jq -e --slurpfile c "$WORK/plan/$SCN.client.json" '.requests == $c[0].requests' "$sum" >/dev/null ||
		die "$SCN: the broker's request counts $(jq -c .requests "$sum") differ from the clients' $(jq -c .requests "$WORK/plan/$SCN.client.json")"
	jq -e --slurpfile c "$WORK/plan/$SCN.client.json" '.records_produced == $c[0].records_produced' "$sum" >/dev/null ||
		die "$SCN: the broker read $(jq .records_produced "$sum") records produced, the clients $(jq .records_produced "$WORK/plan/$SCN.client.json")"
	[[ $(jq .decode_errors "$sum") == 0 ]] || die "$SCN: the broker's tap could not decode $(jq .decode_errors "$sum") requests"
	tshark -r "$pcap" -d "tcp.port==$SCN_PORT,kafka" -q -z io,phs 2>/dev/null | grep -qw kafka ||
		die "$SCN: tshark finds no kafka in $SCN.pcap"
	tshark_counts "$pcap" "$SCN_PORT" >"$WORK/plan/$SCN.tshark"
	n=$(sed -n 's/^\([0-9]*\) packets\? captured$/\1/p' "$WORK/logs/tcpdump.err")
	printf '    %s.pcap: %s packets, %s connections, requests %s, errors %s\n' "$SCN" "$n" "$conns" \
		"$(jq -c .requests "$sum")" "$(jq -c .errors "$sum")" >&2
	if ! jq -e --slurpfile t "$WORK/plan/$SCN.tshark" '.requests == $t[0].requests' "$sum" >/dev/null; then
		printf '    tshark reads other requests: %s\n' "$(jq -c .requests "$WORK/plan/$SCN.tshark")" >&2
	fi
}

# expect JQ-EXPRESSION: the scenario's summary must satisfy it (the script's
# own check of what it meant to provoke).
expect() {
	jq -e "$1" "$WORK/plan/$SCN.sum" >/dev/null || die "$SCN: want $1: $(jq -c . "$WORK/plan/$SCN.sum")"
}

start_broker $PORT orders,payments,events,clicks,logs
start_broker $PORT_SASL secure -sasl-user "$SASL_USER" -sasl-pass "$SASL_PASS"
log "kfake-broker ($(jq -r '[to_entries[] | "\(.key | sub(".*/"; "")) \(.value)"] | join(", ")' <<<"$MODULES")) on $IP:$PORT and $IP:$PORT_SASL (SASL/PLAIN)"

scenario produce $PORT "four idempotent franz-go producers in turn, one per codec (gzip, snappy, lz4, zstd), acks=all: 300 records, 25 per topic and codec, to orders, payments and events"
client -topics orders,payments,events -records 300
end_scenario
expect '.records_produced == 300 and .codecs == {"gzip": 3, "snappy": 3, "lz4": 3, "zstd": 3} and .errors == {}'

scenario produce-acks0 $PORT "a franz-go producer with acks=0 (idempotency off, no compression): 300 records to clicks in 5 Produce requests that get no response"
client -topics clicks -records 300
end_scenario
expect '.one_way == 5 and .requests.Produce == 5 and .records_produced == 300 and .errors == {}'

scenario consume-group $PORT "a franz-go consumer in group billing reading orders (100 records) from the start, committing, staying a second (heartbeats), leaving the group"
client -topics orders -group billing -records 100
end_scenario
# shellcheck disable=SC2016 # $k is jq's
expect '.records_consumed == 100 and ([.requests | ("JoinGroup", "SyncGroup", "Heartbeat", "OffsetFetch", "Fetch", "OffsetCommit", "LeaveGroup", "FindCoordinator") as $k | .[$k] // 0] | min) >= 1'

scenario unknown-topic $PORT "a record to no-such-topic (auto-creation off: kgo fails it on Metadata), then a raw Metadata request and a raw Produce v12 (acks=1) for it: UNKNOWN_TOPIC_OR_PARTITION"
client -topics no-such-topic
end_scenario
expect '.errors.UNKNOWN_TOPIC_OR_PARTITION >= 3 and .requests.Produce == 1 and .records_produced == 0'

scenario kcat $PORT "kcat (librdkafka) -P of 50 records to logs (zstd), then kcat -C -o beginning -e reading them back"
# Long, repetitive lines: librdkafka sends a batch uncompressed when
# compressing does not make it smaller. zstd: see the header.
for i in $(seq 1 50); do
	printf 'kcat-log-line-%02d level=info service=checkout msg="order accepted" path=/api/orders status=200 user_agent="kcat/librdkafka" path=/api/orders status=200\n' "$i"
done >"$WORK/plan/kcat.in"
timeout 60 kcat -P -b "$IP:$PORT" -t logs -z zstd -d protocol <"$WORK/plan/kcat.in" 2>"$WORK/logs/kcat-p.err" ||
	die "kcat: kcat -P failed: $(tail -n 5 "$WORK/logs/kcat-p.err")"
timeout 60 kcat -C -b "$IP:$PORT" -t logs -o beginning -e -q -d protocol >"$WORK/plan/kcat.out" 2>"$WORK/logs/kcat-c.err" ||
	die "kcat: kcat -C failed: $(tail -n 5 "$WORK/logs/kcat-c.err")"
[[ $(sort "$WORK/plan/kcat.out" | md5sum) == $(sort "$WORK/plan/kcat.in" | md5sum) ]] ||
	die "kcat: kcat -C printed $(wc -l <"$WORK/plan/kcat.out") lines, not the 50 sent"
# kcat's own count of what it sent: librdkafka's "Sent XRequest (vN" debug
# lines, named as kmsg names them.
cat "$WORK/logs/kcat-p.err" "$WORK/logs/kcat-c.err" | grep -o 'Sent [A-Za-z]*Request (v[0-9]*' |
	sed -E 's/^Sent ([A-Za-z]*)Request \(v([0-9]*)$/\1/; s/^ApiVersion$/ApiVersions/' |
	jq -R -s --argjson n 50 'split("\n") | map(select(. != "")) | group_by(.) | map({key: .[0], value: length}) | from_entries
		| {client: "kcat", requests: ., records_produced: $n, records_consumed: $n}' >"$WORK/plan/kcat.client.json"
end_scenario
expect '.records_produced == 50 and .errors == {} and (.codecs | keys) == ["zstd"]'

scenario sasl $PORT_SASL "SASL/PLAIN (SaslHandshake, SaslAuthenticate on every connection) and a franz-go producer of 20 records to secure; then a client with a wrong password: its SaslAuthenticate is answered by the broker closing the connection"
client -topics secure -records 20 -sasl-user "$SASL_USER" -sasl-pass "$SASL_PASS" -sasl-wrong "$WRONG_PASS"
printf '%s\n' "$SASL_PASS" "$WRONG_PASS" >"$WORK/plan/sasl.secrets"
end_scenario
expect '.records_produced == 20 and .requests.SASLAuthenticate == .requests.SASLHandshake and .unanswered_requests.SASLAuthenticate >= 1'

stop_broker $PORT
stop_broker $PORT_SASL

###############################################################################
# The manifest
###############################################################################

scenarios=()
while read -r scn; do
	scenarios+=("$(jq -n --arg name "$scn" --arg desc "$(cat "$WORK/plan/$scn.description")" \
		--argjson port "$(cat "$WORK/plan/$scn.port")" --argjson conns "$(cat "$WORK/plan/$scn.conns")" \
		--slurpfile sum "$WORK/plan/$scn.sum" --slurpfile client "$WORK/plan/$scn.client.json" \
		--slurpfile tshark "$WORK/plan/$scn.tshark" --rawfile secrets "$WORK/plan/$scn.secrets" '
		{name: $name, description: $desc, pcap: ($name + ".pcap"), ip: "'"$IP"'", port: $port, connections: $conns}
		+ ($sum[0] | del(.decode_errors))
		+ {secrets: ($secrets | split("\n") | map(select(. != ""))), client: $client[0],
		   tshark_requests: $tshark[0].requests, tshark_versions: $tshark[0].versions}')")
done <"$WORK/plan/order"
printf '%s\n' "${scenarios[@]}" | jq -s --argjson modules "$MODULES" --slurpfile names "$WORK/plan/names.json" \
	--arg kcat "$(kcat -V 2>&1 | sed -n 's/^Version \([^ ]*\).*/\1/p')" \
	--arg librdkafka "$(kcat -V 2>&1 | sed -n 's/.*librdkafka \([^ ]*\).*/\1/p')" \
	--arg tshark "$(tshark -v 2>/dev/null | sed -n '1s/^TShark (Wireshark) \([^ ]*\).*/\1/p')" \
	--arg go "$(go env GOVERSION)" '
	{recorded_by: "scripts/record-kafka.sh",
	 versions: ($modules + {kcat: $kcat, librdkafka: $librdkafka, tshark: $tshark, go: $go}),
	 secrets: (map(.secrets[]) | unique), api_names: $names[0], scenarios: .}' >"$REC/manifest.json"
chmod 644 "$REC"/*.pcap "$REC/manifest.json"

mkdir -p "$out"
for f in "$REC"/*; do
	mv -f "$f" "$out/"
done
log "$out: $(jq '.scenarios | length' "$out/manifest.json") scenarios"
