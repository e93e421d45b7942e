#!/usr/bin/env bash
# Record the billing-consumer-rebalance scenario (127.0.8.0/24): a real Kafka
# broker, franz-go's kfake (test/kafkaapps/cmd/kfake-broker, kafka-0,
# 127.0.8.10:9092, topic orders with 3 partitions), and real franz-go (kgo)
# clients (test/kafkaapps/cmd/kafkascenario), each pod's connections leaving
# from its own address. Two checkout pods produce to orders throughout (one
# record per Produce request every 250 ms each, acks=all, idempotent). The
# consumer group billing is read by three billing 1.4.2 pods; at the rollout
# they stop (leaving the group) and three billing 2.0.0 pods start. 2.0.0 has
# a bug: each pod closes its Kafka client and opens a new one every 5 s (a
# config reload that restarts the consumer), so the group rebalances again and
# again: every LeaveGroup and every JoinGroup of a new member sends the group
# back to preparing a rebalance, and the other members' Heartbeat and SyncGroup
# calls are answered REBALANCE_IN_PROGRESS until they have joined again, and a
# restarted member starts again from the group's last commit. The producers'
# Produce calls stay OK.
#
#   sudo bash evals/scenarios/billing-consumer-rebalance/record.sh
#
# Writes capture.pcap, cluster.json, truth.json and scenario.json beside this
# script, once every check has passed. Uses scripts/lib/record.sh for the
# capture, the event, the address checks and the cluster file. The Kafka
# calls are checked here: the broker's own log of every request (kfake-broker
# taps its connections; each request with its connection, correlation ID, API,
# version and the error names of its response, and kfake's count of what it
# handled) against the clients' own counts (kgo hooks) and against tshark's
# reading of the capture (every request's client address, port, correlation ID
# and API key, every response's correlation ID, and the error code of the
# responses tshark 4.0 can decode), and against the plan: the producers'
# records and Produce calls exactly, all OK; the consumers' group calls
# answered REBALANCE_IN_PROGRESS many times more after the rollout than before.
# Needs Go (to build test/kafkaapps).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR/../../.. source=scripts/lib/record.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../../scripts/lib/record.sh"

rec_init billing-consumer-rebalance 127.0.8

KAFKA=127.0.8.10
KAFKA_PORT=9092
V1_PODS=(127.0.8.21 127.0.8.22 127.0.8.23) # billing 1.4.2
V2_PODS=(127.0.8.24 127.0.8.25 127.0.8.26) # billing 2.0.0
PRODUCERS=(127.0.8.31 127.0.8.32)          # checkout 3.2.1
TOPIC=orders
GROUP=billing
RECORDS=270         # records per producer, one every 300 ms: 81 s
EVERY=300ms
PHASE1=38           # seconds of billing 1.4.2
RESTART_EVERY=5s    # billing 2.0.0's bug
RESTART_FIRST=(5s 6.7s 8.4s) # staggered, as pods started a moment apart would be

PATH=$PATH:/usr/local/go/bin
command -v go >/dev/null 2>&1 || die "missing command: go"

cat >"$WORK/pods.tsv" <<EOF
kafka-0	payments	node-c	$KAFKA	kafka	3.9.0	-	-
billing-6d9f8b7c5d-k2xqp	payments	node-a	${V1_PODS[0]}	billing	1.4.2	-216h	event
billing-6d9f8b7c5d-m7wtz	payments	node-b	${V1_PODS[1]}	billing	1.4.2	-216h	event
billing-6d9f8b7c5d-r4hvn	payments	node-c	${V1_PODS[2]}	billing	1.4.2	-216h	event
billing-7f5c8b9d46-bx9rl	payments	node-b	${V2_PODS[0]}	billing	2.0.0	event	-
billing-7f5c8b9d46-hq2zs	payments	node-c	${V2_PODS[1]}	billing	2.0.0	event	-
billing-7f5c8b9d46-t8kvw	payments	node-a	${V2_PODS[2]}	billing	2.0.0	event	-
checkout-75b8c9d6f4-pw2mx	payments	node-a	${PRODUCERS[0]}	checkout	3.2.1	-	-
checkout-75b8c9d6f4-z9lrt	payments	node-b	${PRODUCERS[1]}	checkout	3.2.1	-	-
EOF
cat >"$WORK/services.tsv" <<EOF
kafka	payments	10.96.60.10	kafka
EOF

###############################################################################
# Build and start the broker
###############################################################################

log "building test/kafkaapps (kfake-broker, kafkascenario)"
(cd "$REC_ROOT/test/kafkaapps" && go build -o "$WORK/bin/" ./cmd/kfake-broker ./cmd/kafkascenario) \
	>"$WORK/logs/go-build.log" 2>&1 || die "go build test/kafkaapps failed: $(tail -n 5 "$WORK/logs/go-build.log")"
FRANZ_VERSION=$(cd "$REC_ROOT/test/kafkaapps" && go list -m -f '{{.Version}}' github.com/twmb/franz-go)
KFAKE_VERSION=$(cd "$REC_ROOT/test/kafkaapps" && go list -m -f '{{.Version}}' github.com/twmb/franz-go/pkg/kfake)

kafka_start() {
	rec_main_shell kafka_start
	port_free "$KAFKA" "$KAFKA_PORT"
	"$WORK/bin/kfake-broker" -listen "$KAFKA:$KAFKA_PORT" -topics "$TOPIC" -partitions 3 \
		-log "$WORK/logs/broker.jsonl" >"$WORK/logs/broker.out" 2>"$WORK/logs/broker.err" &
	REC_SERVER_PIDS[kafka]=$!
	wait_listen "$KAFKA" "$KAFKA_PORT" tcp "${REC_SERVER_PIDS[kafka]}"
}

# pod NAME ADDR ARGS...: one pod's client in the background (not in a
# subshell, so SIGTERM reaches it); its report in plan/NAME.json. Sets POD_PID.
POD_PID=
declare -A PIDS=()
pod() {
	local name=$1 addr=$2
	shift 2
	"$WORK/bin/kafkascenario" -brokers "$KAFKA:$KAFKA_PORT" -pod "$addr" -topic "$TOPIC" "$@" \
		>"$WORK/plan/$name.json" 2>"$WORK/logs/$name.err" &
	POD_PID=$!
	PIDS[$name]=$POD_PID
	REC_CLIENT_PIDS+=("$POD_PID")
}

# stop_pods NAME...: SIGTERM the pods' clients (a consumer commits and leaves
# the group) and wait for each; fail if one failed.
stop_pods() {
	local name
	for name in "$@"; do kill -TERM "${PIDS[$name]}"; done
	for name in "$@"; do
		wait "${PIDS[$name]}" || die "$name failed: $(tail -n 5 "$WORK/logs/$name.err")"
	done
}

###############################################################################
# Record
###############################################################################

kafka_start
log "recording (about 82 s)"
capture_start
sleep 0.3
pod checkout-a "${PRODUCERS[0]}" -role producer -client-id checkout -records "$RECORDS" -every "$EVERY"
pod checkout-b "${PRODUCERS[1]}" -role producer -client-id checkout -records "$RECORDS" -every "$EVERY"
sleep 0.5
for i in 0 1 2; do
	pod "billing-v1-$i" "${V1_PODS[$i]}" -role consumer -client-id billing -group "$GROUP"
done
sleep "$PHASE1"
stop_pods billing-v1-0 billing-v1-1 billing-v1-2
sleep 0.3

mark_event rollout "billing 1.4.2 (billing-6d9f8b7c5d-*) replaced by 2.0.0 (billing-7f5c8b9d46-*), whose consumers close and reopen their Kafka client every $RESTART_EVERY"
for i in 0 1 2; do
	pod "billing-v2-$i" "${V2_PODS[$i]}" -role consumer -client-id billing -group "$GROUP" \
		-restart-every "$RESTART_EVERY" -restart-first "${RESTART_FIRST[$i]}"
done
wait "${PIDS[checkout-a]}" || die "checkout-a failed: $(tail -n 5 "$WORK/logs/checkout-a.err")"
wait "${PIDS[checkout-b]}" || die "checkout-b failed: $(tail -n 5 "$WORK/logs/checkout-b.err")"
stop_pods billing-v2-0 billing-v2-1 billing-v2-2
REC_CLIENT_PIDS=()
capture_stop
# The broker checks at exit that kfake handled exactly the requests its tap
# saw, and says so in its last line.
kill -TERM "${REC_SERVER_PIDS[kafka]}"
wait "${REC_SERVER_PIDS[kafka]}" || die "kfake-broker: $(tail -n 3 "$WORK/logs/broker.err")"
unset 'REC_SERVER_PIDS[kafka]'

###############################################################################
# Verify
###############################################################################

BLOG=$WORK/logs/broker.jsonl
log "verifying the clients' reports and the broker's log"
for name in checkout-a checkout-b; do
	jq -e --argjson n "$RECORDS" '.records_produced == $n and .produce_errors == 0 and .requests.Produce == $n' \
		"$WORK/plan/$name.json" >/dev/null || die "$name: not $RECORDS records in $RECORDS Produce requests: $(jq -c . "$WORK/plan/$name.json")"
done
tail -n 1 "$BLOG" | jq -e '.event == "summary" and (.mismatch | length == 0)' >/dev/null ||
	die "kfake-broker's summary: $(tail -n 1 "$BLOG")"
# Requests per pod and API: the broker's log against the clients' hooks.
jq -r 'select(.event == "request") | [(.client | split(":")[0]), .api] | @tsv' "$BLOG" | tally >"$WORK/seen/broker-requests.count"
for f in "$WORK"/plan/*.json; do
	jq -r '.pod as $p | .requests | to_entries[] | [$p, .key, .value] | @tsv' "$f"
done | LC_ALL=C sort >"$WORK/expect/client-requests.count"
diff -u "$WORK/expect/client-requests.count" "$WORK/seen/broker-requests.count" >"$WORK/logs/requests.diff" ||
	die "requests per pod and API: the clients' hooks (-) and the broker (+) differ: $(head -n 20 "$WORK/logs/requests.diff")"
ok "broker: $(jq -s 'map(select(.event == "request")) | length' "$BLOG") requests, as the clients counted them, kfake handled them all"

log "verifying the capture with tshark"
PCAP=$WORK/out/capture.pcap
BYTES=$(stat -c %s "$PCAP")
((BYTES <= REC_MAX_PCAP_BYTES)) || die "capture is $BYTES bytes, over $REC_MAX_PCAP_BYTES"
rec_tshark -T fields -e ip.src -e ip.dst | tr '\t' '\n' | sort -u >"$WORK/seen/addresses.txt"
if grep -v "^${REC_NET//./\\.}\.[0-9]*\$" "$WORK/seen/addresses.txt" >"$WORK/logs/foreign.txt"; then
	die "addresses outside $REC_NET.0/24 in the capture: $(head -n 5 "$WORK/logs/foreign.txt" | tr '\n' ' ')"
fi
KDEC=(-d "tcp.port==$KAFKA_PORT,kafka")

# Requests as tshark reads them: time, client address and port, correlation
# ID, API key and version; the broker's: client, correlation ID, API key,
# version. One line each, joined on the connection and correlation ID.
rec_tshark "${KDEC[@]}" -Y 'kafka.request_key' -T fields -E occurrence=f \
	-e frame.time_epoch -e ip.src -e tcp.srcport -e kafka.correlation_id -e kafka.request_key -e kafka.api_version \
	>"$WORK/seen/tshark-requests.raw"
awk -F'\t' -v OFS='\t' '{ print $2 ":" $3, $4, $5, $6 }' "$WORK/seen/tshark-requests.raw" | LC_ALL=C sort >"$WORK/seen/tshark-requests.tsv"
jq -r 'select(.event == "request") | [.client, .corr, .api_key, .version] | @tsv' "$BLOG" | LC_ALL=C sort >"$WORK/seen/broker-requests.tsv"
diff -u "$WORK/seen/broker-requests.tsv" "$WORK/seen/tshark-requests.tsv" >"$WORK/logs/tshark-requests.diff" ||
	die "requests (client, correlation ID, API key, version): the broker (-) and tshark (+) differ: $(head -n 20 "$WORK/logs/tshark-requests.diff")"
ok "tshark: the same $(wc -l <"$WORK/seen/tshark-requests.tsv") requests as the broker (connection, correlation ID, API key, version)"

# Responses: tshark reads the correlation ID of every one; the requests the
# broker answered are exactly those.
rec_tshark "${KDEC[@]}" -Y "kafka && tcp.srcport == $KAFKA_PORT" -T fields -E occurrence=f \
	-e ip.dst -e tcp.dstport -e kafka.correlation_id | awk -F'\t' -v OFS='\t' '{ print $1 ":" $2, $3 }' |
	LC_ALL=C sort >"$WORK/seen/tshark-responses.tsv"
jq -r 'select(.event == "request" and .answered) | [.client, .corr] | @tsv' "$BLOG" | LC_ALL=C sort >"$WORK/seen/broker-answered.tsv"
diff -u "$WORK/seen/broker-answered.tsv" "$WORK/seen/tshark-responses.tsv" >"$WORK/logs/tshark-responses.diff" ||
	die "responses (client, correlation ID): the broker (-) and tshark (+) differ: $(head -n 20 "$WORK/logs/tshark-responses.diff")"
UNANSWERED=$(jq -s 'map(select(.event == "request" and (.answered | not))) | length' "$BLOG")
ok "tshark: $(wc -l <"$WORK/seen/tshark-responses.tsv") responses, the ones the broker wrote; $UNANSWERED requests cut short by their client closing"

# Error codes, where tshark 4.0 decodes the response (it knows older versions
# of most APIs: here Heartbeat v4 and SyncGroup v5, among others): its first
# kafka.error against the broker's.
rec_tshark -2 "${KDEC[@]}" -Y "kafka.response_key && !_ws.malformed && tcp.srcport == $KAFKA_PORT" -T fields -E occurrence=f \
	-e ip.dst -e tcp.dstport -e kafka.correlation_id -e kafka.response_key -e kafka.error |
	awk -F'\t' -v OFS='\t' '{ print $1 ":" $2, $3, $4, ($5 == "" ? 0 : $5) }' | LC_ALL=C sort >"$WORK/seen/tshark-errors.tsv"
jq -r 'def code: {"REBALANCE_IN_PROGRESS": 27, "ILLEGAL_GENERATION": 22, "UNKNOWN_MEMBER_ID": 25, "MEMBER_ID_REQUIRED": 79,
		"NOT_COORDINATOR": 16, "COORDINATOR_LOAD_IN_PROGRESS": 14}[.] // -1;
	select(.event == "request" and .answered) | [.client, .corr, .api_key, ((.errors // [])[0] // "" | if . == "" then 0 else code end)] | @tsv' \
	"$BLOG" | LC_ALL=C sort >"$WORK/seen/broker-errors.tsv"
LC_ALL=C join -t $'\t' <(awk -F'\t' '{ print $1 "/" $2 "\t" $3 "\t" $4 }' "$WORK/seen/tshark-errors.tsv" | LC_ALL=C sort) \
	<(awk -F'\t' '{ print $1 "/" $2 "\t" $3 "\t" $4 }' "$WORK/seen/broker-errors.tsv" | LC_ALL=C sort) >"$WORK/seen/errors-joined.tsv"
[[ $(wc -l <"$WORK/seen/errors-joined.tsv") -eq $(wc -l <"$WORK/seen/tshark-errors.tsv") ]] ||
	die "tshark decodes responses the broker did not write"
awk -F'\t' '$2 != $4 || $3 != $5 { print; bad = 1 } END { exit bad }' "$WORK/seen/errors-joined.tsv" >"$WORK/logs/errors.diff" ||
	die "error codes: tshark and the broker differ (request, tshark key, code, broker key, code): $(head -n 10 "$WORK/logs/errors.diff")"
awk -F'\t' '{ print $2 }' "$WORK/seen/errors-joined.tsv" | tally >"$WORK/seen/tshark-decoded.count"
# The point: tshark sees the heartbeats answered REBALANCE_IN_PROGRESS.
awk -F'\t' '$2 == 12 && $3 == 27' "$WORK/seen/errors-joined.tsv" | grep -q . ||
	die "tshark decodes no Heartbeat answered REBALANCE_IN_PROGRESS"
ok "tshark decodes $(wc -l <"$WORK/seen/errors-joined.tsv") responses (by API key: $(tr '\t\n' '= ' <"$WORK/seen/tshark-decoded.count")); their error codes are the broker's"

# seen/kafka.tsv: phase client api status records_returned records, per
# request, the phase by tshark's time of the request.
awk -F'\t' -v OFS='\t' '{ print $2 ":" $3 "/" $4, $1 }' "$WORK/seen/tshark-requests.raw" | LC_ALL=C sort >"$WORK/seen/request-times.tsv"
jq -r 'select(.event == "request") | [.client + "/" + (.corr | tostring), (.client | split(":")[0]), .api,
		(if .answered then ((.errors // [])[0] // "OK") else "no response" end), (.records_returned // 0), (.records // 0)] | @tsv' \
	"$BLOG" | LC_ALL=C sort >"$WORK/seen/broker-calls.tsv"
LC_ALL=C join -t $'\t' "$WORK/seen/request-times.tsv" "$WORK/seen/broker-calls.tsv" | cut -f2- | _rec_phase >"$WORK/seen/kafka.tsv"
[[ $(wc -l <"$WORK/seen/kafka.tsv") -eq $(wc -l <"$WORK/seen/broker-calls.tsv") ]] || die "requests without a time"
cut -f1-4 "$WORK/seen/kafka.tsv" | tally >"$WORK/seen/kafka.count"

# The plan: the producers' Produce calls, exactly, all OK; the consumers'
# group calls answered REBALANCE_IN_PROGRESS far more often after the rollout.
awk -F'\t' -v OFS='\t' '$3 == "Produce" { print $2, $4 }' "$WORK/seen/kafka.tsv" | tally >"$WORK/seen/produce.count"
printf '%s\tOK\t%s\n' "${PRODUCERS[0]}" "$RECORDS" "${PRODUCERS[1]}" "$RECORDS" >"$WORK/expect/produce.count"
diff -u "$WORK/expect/produce.count" "$WORK/seen/produce.count" >"$WORK/logs/produce.diff" ||
	die "Produce calls by producer and status differ from the plan: $(cat "$WORK/logs/produce.diff")"
awk -F'\t' '$3 == "Produce" && $6 != 1 { bad = 1 } END { exit bad }' "$WORK/seen/kafka.tsv" || die "a Produce request holds other than one record"
count() { awk -F'\t' -v p="$1" -v api="$2" -v st="$3" '$1 == p && (api == "*" || $3 == api) && $4 == st { n++ } END { print n + 0 }' "$WORK/seen/kafka.tsv"; }
RIP_BEFORE=$(count 1 '*' REBALANCE_IN_PROGRESS)
RIP_AFTER=$(count 2 '*' REBALANCE_IN_PROGRESS)
HB_RIP_AFTER=$(count 2 Heartbeat REBALANCE_IN_PROGRESS)
((RIP_AFTER >= 15 && RIP_AFTER >= 4 * RIP_BEFORE && HB_RIP_AFTER >= 10)) ||
	die "REBALANCE_IN_PROGRESS: $RIP_BEFORE before, $RIP_AFTER after ($HB_RIP_AFTER heartbeats): no rebalance storm (want >= 15, >= 4x before, >= 10 heartbeats)"
# Each 2.0.0 pod joins again and again; the 1.4.2 pods join once or twice.
for addr in "${V2_PODS[@]}"; do
	n=$(awk -F'\t' -v a="$addr" '$2 == a && $3 == "LeaveGroup"' "$WORK/seen/kafka.tsv" | wc -l)
	((n >= 5)) || die "$addr left the group $n times, want >= 5"
done
# Nothing but the group's calls fails: no errors on Produce, Fetch, Metadata.
if awk -F'\t' '$4 != "OK" && $4 != "no response" && $3 !~ /^(JoinGroup|SyncGroup|Heartbeat|OffsetCommit|LeaveGroup|OffsetFetch)$/' \
	"$WORK/seen/kafka.tsv" | grep -q .; then
	die "unexpected errors: $(awk -F'\t' '$4 != "OK" && $4 != "no response" && $3 !~ /Group|Heartbeat|Offset/' "$WORK/seen/kafka.tsv" | head -n 5)"
fi
awk -F'\t' '$4 == "no response" && $3 != "Fetch" { bad = 1 } END { exit bad }' "$WORK/seen/kafka.tsv" ||
	die "requests other than a long-poll Fetch left unanswered"
ok "plan: Produce $((2 * RECORDS)) calls OK; REBALANCE_IN_PROGRESS $RIP_BEFORE before, $RIP_AFTER after ($HB_RIP_AFTER heartbeats)"

# TCP connections: who opened them, refused or reset (the library's reading).
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
				if (!(s in cli)) { print "stream " s " opened before the capture" > "/dev/stderr"; bad = 1; continue }
				st = "ok"
				if (s in rst) st = (s in acc) ? "reset-by-" rst[s] : (rst[s] == "server" ? "refused" : "reset-by-client")
				else if (!(s in acc)) st = "no-answer"
				print first[s], cli[s], srv[s], port[s], st
			}
			exit bad
		}
	' | _rec_phase >"$WORK/seen/conns.tsv"
CONNS_BROKER=$(jq -s 'map(select(.event == "open")) | length' "$BLOG")
[[ $(wc -l <"$WORK/seen/conns.tsv") -eq $CONNS_BROKER ]] ||
	die "tshark sees $(wc -l <"$WORK/seen/conns.tsv") connections, the broker accepted $CONNS_BROKER"
if awk -F'\t' '$5 == "refused" || $5 == "no-answer" || $5 == "reset-by-server"' "$WORK/seen/conns.tsv" | grep -q .; then
	die "connections refused, unanswered or reset by the broker: $(awk -F'\t' '$5 != "ok"' "$WORK/seen/conns.tsv" | head -n 5)"
fi
RESETS=$(awk -F'\t' '$5 == "reset-by-client"' "$WORK/seen/conns.tsv" | wc -l)
ok "TCP: $CONNS_BROKER connections to kafka-0, none refused; $RESETS reset by a client closing"

###############################################################################
# Outputs
###############################################################################

OUT=$WORK/out
rec_tshark -T fields -e frame.time_epoch >"$WORK/logs/times.txt"
PACKETS=$(wc -l <"$WORK/logs/times.txt")
FIRST=$(head -n 1 "$WORK/logs/times.txt")
LAST=$(tail -n 1 "$WORK/logs/times.txt")
DURATION=$(awk -v a="$FIRST" -v b="$LAST" 'BEGIN { printf "%.3f", b - a }')
awk -v d="$DURATION" 'BEGIN { exit !(d >= 70 && d <= 95) }' || die "the capture lasts $DURATION s, not 70-95 s"

write_cluster "$OUT" "$WORK/pods.tsv" "$WORK/services.tsv" "$FIRST"

TOOLS=$(jq -n --arg franz "$FRANZ_VERSION" --arg kfake "$KFAKE_VERSION" \
	--arg go "$(go env GOVERSION)" \
	--arg tcpdump "$(tcpdump --version 2>&1 | awk 'NR == 1 { print $3 }')" \
	--arg tshark "$(tshark --version 2>/dev/null | awk 'NR == 1 { print $3 }')" \
	'{"franz-go": $franz, kfake: $kfake, go: $go, tcpdump: $tcpdump, tshark: $tshark}')
awk -F'\t' '{ print $1 "\t" $2 "\t" $3 "\t" $4 "\t" $5 }' "$WORK/seen/conns.tsv" | tally >"$WORK/logs/conns.count"
# Records the consumers' fetches returned, per phase and pod.
awk -F'\t' -v OFS='\t' '$3 == "Fetch" { n[$1 OFS $2] += $5 } END { for (k in n) print k, n[k] }' "$WORK/seen/kafka.tsv" |
	LC_ALL=C sort >"$WORK/logs/fetched.tsv"
DECODED=$(awk -F'\t' 'BEGIN { split("0=Produce 1=Fetch 3=Metadata 8=OffsetCommit 9=OffsetFetch 10=FindCoordinator 11=JoinGroup 12=Heartbeat 13=LeaveGroup 14=SyncGroup 18=ApiVersions 22=InitProducerID 23=OffsetForLeaderEpoch", a, " "); for (i in a) { split(a[i], kv, "="); nm[kv[1]] = kv[2] } }
	{ printf "%s%s %s", sep, $2, (($1 in nm) ? nm[$1] : "key " $1); sep = ", " }' "$WORK/seen/tshark-decoded.count")
NOTES="kafka-0 is franz-go's kfake ($KFAKE_VERSION; test/kafkaapps/cmd/kfake-broker on $KAFKA:$KAFKA_PORT, topic $TOPIC with 3 partitions), the clients franz-go kgo $FRANZ_VERSION (test/kafkaapps/cmd/kafkascenario) with kgo's default API versions, every connection from its pod's address. checkout (${PRODUCERS[*]}, client ID checkout) produces $RECORDS records each, one kgo.ProduceSync every $EVERY (one record per Produce request), acks=all, idempotent, throughout the capture. Group $GROUP (client ID billing, kgo defaults: cooperative-sticky balancer, autocommit every 5 s and on revoke): billing 1.4.2 (${V1_PODS[*]}) consume for ${PHASE1} s and stop, leaving the group; at the rollout billing 2.0.0 (${V2_PODS[*]}) start and each closes its client (commit, LeaveGroup) and opens a new one (JoinGroup: MEMBER_ID_REQUIRED, then joined) every $RESTART_EVERY, staggered: the group rebalances again and again, the other members' Heartbeat and SyncGroup answered REBALANCE_IN_PROGRESS. Counts come from the broker's log of every request (kfake-broker taps its connections: API, version, correlation ID, the error names of the response), equal to the clients' own counts (kgo hooks) and to kfake's; tshark 4.0 reads the API key, version and correlation ID of every request and the correlation ID of every response, and both sets equal the broker's; it decodes only the responses of the versions it knows (here $DECODED; not Produce v13, Fetch v18, JoinGroup v9, LeaveGroup v5, OffsetCommit v10 and Metadata v13, which it calls malformed or leaves undecoded), and their error codes equal the broker's. A status is OK or the first error name the broker's response holds; no response: a long-poll Fetch the client closed its connection on. Phases by tshark's time of each request. records_fetched: records of the batches the Fetch responses carried (the broker's reading), per phase and pod; after the rollout they include records fetched again by a restarted consumer from the group's last commit."

jq -n \
	--arg scenario "$REC_NAME" --arg notes "$NOTES" \
	--arg first "$(rfc3339 "$FIRST")" --arg last "$(rfc3339 "$LAST")" \
	--argjson packets "$PACKETS" --argjson bytes "$BYTES" --argjson duration "$DURATION" \
	--arg event_name "$EVENT_NAME" --arg event_what "$EVENT_WHAT" --arg event_at "$(rfc3339 "$EVENT_EPOCH")" \
	--argjson tools "$TOOLS" \
	--slurpfile cluster "$OUT/cluster.json" \
	--rawfile kafka "$WORK/seen/kafka.count" \
	--rawfile conns "$WORK/logs/conns.count" \
	--rawfile fetched "$WORK/logs/fetched.tsv" \
	--argjson unanswered "$UNANSWERED" --argjson resets "$RESETS" '
	def rows($s): $s | split("\n") | map(select(length > 0) | split("\t"));
	def phase($p): if $p == "1" then "before" else "after" end;
	($cluster[0]) as $c
	| (reduce $c.pods[] as $p ({}; .[$p.ip] = $p.name)) as $podname
	| def who($ip): {ip: $ip, pod: ($podname[$ip] // null)};
	def statuses: group_by(.status) | map({key: .[0].status, value: (map(.n) | add)}) | from_entries;
	(rows($kafka) | map({p: .[0], phase: phase(.[0]), client: .[1], api: .[2], status: .[3], n: (.[4] | tonumber)})) as $q
	| (rows($conns) | map({p: .[0], phase: phase(.[0]), client: .[1], server: .[2], port: (.[3] | tonumber),
		state: .[4], n: (.[5] | tonumber)})) as $t
	| {
		scenario: $scenario,
		notes: $notes,
		recorded_with: $tools,
		capture: {file: "capture.pcap", bytes: $bytes, packets: $packets,
			first_packet: $first, last_packet: $last, duration_s: $duration},
		event: {name: $event_name, at: $event_at, what: $event_what},
		phases: [{phase: "before", from: $first, to: $event_at}, {phase: "after", from: $event_at, to: $last}],
		kafka: {
			server: who("127.0.8.10"), port: 9092, topic: "orders", group: "billing",
			requests: ($q | map(.n) | add),
			unanswered: $unanswered,
			statuses: ($q | statuses),
			by_phase: ($q | group_by(.p) | map({key: .[0].phase, value: {requests: (map(.n) | add), statuses: statuses,
				by_api: (group_by(.api) | map({key: .[0].api, value: statuses}) | from_entries)}}) | from_entries),
			by_client: ($q | group_by([.p, .client, .api]) | map({
				phase: .[0].phase, client: who(.[0].client), api: .[0].api,
				requests: (map(.n) | add), statuses: statuses})),
			records_fetched: (rows($fetched) | map({phase: phase(.[0]), client: who(.[1]), records: (.[2] | tonumber)}))
		},
		http: {requests: 0, statuses: {}},
		dns: {queries: 0, rcodes: {}},
		tcp: {
			connections: ($t | map(.n) | add // 0),
			refused: ($t | map(select(.state == "refused")) | map(.n) | add // 0),
			reset: $resets,
			by_pair: ($t | group_by([.p, .client, .server, .port]) | map({
				phase: .[0].phase, client: who(.[0].client), server: who(.[0].server), port: .[0].port,
				connections: (map(.n) | add),
				states: (map({key: .state, value: .n}) | from_entries)}))
		},
		rollout_at: $event_at
	}' >"$OUT/truth.json"
[[ $(jq .kafka.requests "$OUT/truth.json") -eq $(wc -l <"$WORK/seen/kafka.tsv") ]] || die "truth.json: wrong request total"

QUESTIONS=$(jq -n --arg produced "$((2 * RECORDS))" '[
	{id: "why-behind",
	 ask: "We rolled out billing 2.0 at {{HHMM}} UTC; the billing consumers are falling behind on orders. Why?",
	 facts_all: ["REBALANCE_IN_PROGRESS", "billing-7f5c8b9d46", "Heartbeat"],
	 facts_any: [["JoinGroup", "LeaveGroup", "SyncGroup"]]},
	{id: "producers-affected",
	 ask: "Are the producers writing to orders affected by the billing rollout at {{HHMM}} UTC?",
	 facts_all: ["Produce", "checkout-75b8c9d6f4", $produced]}
]')
jq -n --arg name "$REC_NAME" --arg hhmm "$(hhmm "$EVENT_EPOCH")" --arg rollout "$(rfc3339 "$EVENT_EPOCH")" \
	--arg description "billing 2.0.0 rollout: the new consumers (billing-7f5c8b9d46-*) close and reopen their Kafka client every 5 s, leaving and rejoining group billing, so the group rebalances again and again: their Heartbeat and SyncGroup calls answered REBALANCE_IN_PROGRESS by kafka-0 (group billing, topic orders); the checkout producers' Produce calls to orders stay OK." \
	--argjson questions "$QUESTIONS" '
	{name: $name, description: $description, capture: "capture.pcap", cluster: "cluster.json", rollout_at: $rollout,
	 questions: ($questions | map(.ask |= gsub("{{HHMM}}"; $hhmm)))}' >"$OUT/scenario.json"

# Every fact is something the capture, the broker's answers (kmsg error
# names), the API names, the planned Produce count or the cluster file hold.
{
	LC_ALL=C tr -c '[:print:]' '\n' <"$OUT/capture.pcap" | grep -E '.{3}'
	cat "$OUT/cluster.json"
	cut -f3,4 "$WORK/seen/kafka.tsv" | tr '\t' '\n' | sort -u
	awk -F'\t' '$3 == "Produce" && $4 == "OK"' "$WORK/seen/kafka.tsv" | wc -l
} >"$WORK/logs/strings.txt"
while IFS= read -r fact; do
	grep -Fqi -- "$fact" "$WORK/logs/strings.txt" || die "fact \"$fact\" is nowhere in the capture, its calls or the cluster file"
done < <(jq -r '.questions[] | (.facts_all // [])[], ((.facts_any // [])[][])' "$OUT/scenario.json" | sort -u)
ok "scenario.json: $(jq '.questions | length' "$OUT/scenario.json") questions; every fact is in the capture, its calls or the cluster file"

mkdir -p "$REC_OUT"
install -m 0644 "$OUT/capture.pcap" "$OUT/cluster.json" "$OUT/truth.json" "$OUT/scenario.json" "$REC_OUT/"
log "wrote $REC_OUT"
capinfos -c -u -s "$REC_OUT/capture.pcap" | sed 's/^/    /' >&2
jq -c '.kafka.by_phase | map_values({requests, statuses})' "$REC_OUT/truth.json" >&2
jq -r '.kafka.records_fetched[] | "    fetched \(.phase)\t\(.client.pod)\t\(.records)"' "$REC_OUT/truth.json" >&2
