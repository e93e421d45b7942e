#!/usr/bin/env bash
# record-mongo.sh — record the MongoDB wire protocol from a real server and
# the official Go driver on loopback, with a manifest of what the client did,
# for the MongoDB dissector's tests.
#
# Usage:
#   scripts/record-mongo.sh OUTDIR
#       OUTDIR/mongo.pcap: one run of test/mongoapps/cmd/mongoclient (see
#       its doc comment for the scenario: ping, hello, inserts (a document
#       sequence: OP_MSG kind-1 section), finds (one with batchSize 2 over
#       10 documents: find and getMores), aggregate, update, delete, count, a
#       duplicate _id (write error 11000), an unknown command (59
#       CommandNotFound), a w:0 insert (OP_MSG moreToCome), a client
#       offering compression).
#       OUTDIR/manifest.json: the client's JSON lines as an array, one object
#       per operation, in order:
#         {"seq", "client": main|unacknowledged|compressed, "op": connect|
#          runCommand|insertOne|…|disconnect, "database", "collection"?,
#          "detail"?, "status": ok|error|sent, "result"?, "error"?: {"code",
#          "codeName", "message"},
#          "commands": [{"command", "database", "request_id", "status":
#             ok|error|sent (w:0: no answer awaited), "documents"? (in the
#             insert's document sequence), "batch"?, "cursor_open"? (the
#             answer's cursor), "n"?, "n_modified"?, "write_errors"?,
#             "code"?, "codeName"? (a failed command's; the code only
#             when the operation failed with it: the driver ignores
#             endSessions' failure and its event gives the name alone)}]}
#       Every command's request ID is the OP_MSG's requestID on the wire;
#       its answer is the OP_MSG whose responseTo is that ID.
#
# Server: FerretDB v1.24 (the MongoDB wire protocol over SQLite, pure Go)
# embedded in test/mongoapps/cmd/ferretdb-lite, on 127.0.0.44:27017, its
# SQLite files in a temporary directory. No MongoDB server is packaged for
# Debian. What FerretDB does that MongoDB would not: it does not offer
# compression in its hello answer (so the driver sends no OP_COMPRESSED;
# FerretDB closes a connection that sends one), it answers an OP_MSG with
# moreToCome set (the w:0 insert) all the same, and it answers endSessions
# with an error (the driver ignores it). The capture is checked with tshark
# (-d tcp.port==27017,mongo, -T json --no-duplicate-keys): every OP_MSG the
# client sent is a command of the manifest with the same request ID, name,
# database, documents, moreToCome flag, and the answer's outcome, error code,
# batch, n and write errors; every other request is a driver handshake
# (OP_QUERY isMaster, answered by OP_REPLY). Or the run fails.
#
# Needs root (tcpdump), go, tcpdump, tshark, jq and ss
# (scripts/install-deps.sh). Both programs are built from test/mongoapps
# into the temporary directory. Everything it starts is stopped on exit; a
# failed run leaves nothing in OUTDIR.
set -euo pipefail

IP=127.0.0.44
PORT=27017

die() {
	printf 'record-mongo: %s\n' "$*" >&2
	exit 1
}
log() { printf '==> %s\n' "$*" >&2; }

[[ $# -eq 1 && $1 != -* ]] || die "usage: record-mongo.sh OUTDIR"
out=$(realpath -m "$1")
[[ $(id -u) -eq 0 ]] || die "needs root (tcpdump captures on lo)"
PATH=$PATH:/usr/sbin:/usr/local/go/bin
for tool in go tcpdump tshark jq ss; do
	command -v "$tool" >/dev/null || die "$tool is missing (sudo bash scripts/install-deps.sh)"
done
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# shellcheck source=scripts/lib/proc.sh
source "$ROOT/scripts/lib/proc.sh"

WORK=$(mktemp -d /tmp/wirescope-mongo.XXXXXX)
FERRET_PID=
cleanup() {
	local rc=$?
	set +e
	tcpdump_stop
	stop_pid "$FERRET_PID"
	if [[ $rc -ne 0 ]]; then
		tail -n 20 "$WORK"/logs/* >&2 2>/dev/null
	fi
	rm -rf "$WORK"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$WORK"/{logs,bin,rec}
if ss -H -ltn "( sport = :$PORT )" | awk '{print $4}' | grep -Eq "^($IP|0\.0\.0\.0|\*|\[::\]):$PORT\$"; then
	die "$IP:$PORT is already in use"
fi

log "building test/mongoapps (ferretdb-lite, mongoclient)"
(cd "$ROOT/test/mongoapps" && go build -o "$WORK/bin/" ./cmd/ferretdb-lite ./cmd/mongoclient) \
	>"$WORK/logs/go-build.log" 2>&1 || die "go build failed: $(cat "$WORK/logs/go-build.log")"
versions=$(cd "$ROOT/test/mongoapps" && go list -m -f '{{.Path}} {{.Version}}' \
	github.com/FerretDB/FerretDB go.mongodb.org/mongo-driver | paste -sd, - | sed 's/,/, /')

"$WORK/bin/ferretdb-lite" -listen "$IP:$PORT" -dir "$WORK/data" >"$WORK/logs/ferretdb.log" 2>&1 &
FERRET_PID=$!
ready=
for _ in $(seq 100); do
	if ss -H -ltn "( sport = :$PORT )" | grep -q "$IP:$PORT"; then
		ready=1
		break
	fi
	kill -0 "$FERRET_PID" 2>/dev/null || die "ferretdb-lite exited at start"
	sleep 0.1
done
[[ -n $ready ]] || die "ferretdb-lite does not listen on $IP:$PORT"
log "ferretdb-lite ($versions) on $IP:$PORT"

PCAP=$WORK/rec/mongo.pcap
tcpdump_start "$WORK/logs/tcpdump.err" -i lo -B 65536 -w "$PCAP" "host $IP and tcp port $PORT" ||
	die "tcpdump did not start: $(cat "$WORK/logs/tcpdump.err")"
"$WORK/bin/mongoclient" -uri "mongodb://$IP:$PORT/?directConnection=true" -db shop \
	>"$WORK/logs/mongoclient.jsonl" 2>"$WORK/logs/mongoclient.err" ||
	die "mongoclient failed: $(cat "$WORK/logs/mongoclient.err")"
tcpdump_stop 0.3
grep -qE '^0 packets dropped by kernel' "$WORK/logs/tcpdump.err" ||
	die "tcpdump dropped packets: $(cat "$WORK/logs/tcpdump.err")"
printf '    mongo.pcap: %s packets\n' "$(sed -n 's/^\([0-9]*\) packets\? captured$/\1/p' "$WORK/logs/tcpdump.err")" >&2
jq -s . "$WORK/logs/mongoclient.jsonl" >"$WORK/rec/manifest.json"
printf '    mongoclient: %s operations, %s commands\n' "$(jq length "$WORK/rec/manifest.json")" \
	"$(jq '[.[].commands[]] | length' "$WORK/rec/manifest.json")" >&2

###############################################################################
# tshark's reading, against the manifest
###############################################################################

# tshark -T json --no-duplicate-keys: a BSON document is an object with
# mongo.elements: names (a string, or an array of them) and name_tree (their
# values, in the same order): made a JSON object again here, its first key
# kept apart (an OP_MSG body's first key is the command).
cat >"$WORK/messages.jq" <<'EOF'
def arr: if . == null then [] elif type == "array" then . else [.] end;
def hex: ltrimstr("0x") | ascii_downcase | explode
  | reduce .[] as $c (0; . * 16 + (if $c >= 97 then $c - 87 else $c - 48 end));
def doc:
  def val:
    if has("mongo.document") then (.["mongo.document"] | doc)
    elif has("mongo.element.value.string") then .["mongo.element.value.string"]
    elif has("mongo.element.value.int") then (.["mongo.element.value.int"] | tonumber)
    elif has("mongo.element.value.int64") then (.["mongo.element.value.int64"] | tonumber)
    elif has("mongo.element.value.double") then (.["mongo.element.value.double"] | tonumber)
    elif has("mongo.element.value.bool") then (.["mongo.element.value.bool"] == "1")
    else null end;
  (.["mongo.elements"] // {}) as $e
  | [($e["mongo.element.name"] | arr), ($e["mongo.element.name_tree"] | arr)] | transpose
  | map({key: .[0], value: (.[1] | val)}) | from_entries;
def first_key: (.["mongo.elements"] // {})["mongo.element.name"] | arr | .[0];
[.[]._source.layers | (.tcp["tcp.stream"] | tonumber) as $s | (.mongo | arr)[]
 | (.["mongo.opcode"] | tonumber) as $op
 | {stream: $s, opcode: $op, request_id: (.["mongo.request_id"] | hex), response_to: (.["mongo.response_to"] | hex)}
 + if $op == 2013 then
     (.["mongo.msg.sections.section"] | arr) as $sec
     | ($sec | map(select(.["mongo.msg.sections.section.kind"] == "0")) | .[0]["mongo.msg.sections.section.body"]) as $body
     | {more_to_come: (.["mongo.msg.flags_tree"]["mongo.msg.flags.moretocome"] == "1"),
        command: ($body | first_key), body: ($body | doc),
        sequences: ($sec | map(select(.["mongo.msg.sections.section.kind"] == "1")
                   | {id: .["mongo.msg.sections.section.doc_sequence_id"],
                      documents: (.["mongo.msg.sections.section.doc_sequence"]["mongo.document"] | arr | length)}))}
   elif $op == 2004 then
     {collection: .["mongo.full_collection_name"], command: (.["mongo.query"] | first_key), body: (.["mongo.query"] | doc)}
   elif $op == 1 then
     {body: (.["mongo.document"] | arr | .[0] | doc)}
   else {} end]
EOF

# check.jq: $m (the manifest) against the messages: a list of what differs.
cat >"$WORK/check.jq" <<'EOF'
. as $msgs
| [$msgs[] | select(.opcode == 2013 and .response_to == 0)] as $reqs
| [$m[].commands[]] as $cmds
| def batch: (.body.cursor.firstBatch // .body.cursor.nextBatch // {}) | length;
  [ ($cmds[] as $c
    | ([$reqs[] | select(.request_id == $c.request_id)]) as $r
    | if ($r | length) != 1 then "request \($c.request_id) (\($c.command)): \($r | length) OP_MSG with that requestID"
      else $r[0] as $q
      | ([$msgs[] | select(.response_to == $c.request_id)]) as $a
      | (if $q.command != $c.command then "request \($c.request_id): tshark reads \($q.command), the client sent \($c.command)" else empty end),
        (if $q.body["$db"] != $c.database then "request \($c.request_id): $db \($q.body["$db"]), want \($c.database)" else empty end),
        (if $q.more_to_come != ($c.status == "sent") then "request \($c.request_id): moreToCome \($q.more_to_come), status \($c.status)" else empty end),
        (if ($c.documents != null) and ([$q.sequences[] | select(.id == "documents") | .documents] != [$c.documents])
         then "request \($c.request_id): document sequence \($q.sequences), want \($c.documents) documents" else empty end),
        (if $c.status == "sent" then empty
         elif ($a | length) != 1 then "request \($c.request_id): \($a | length) answers"
         else $a[0] as $p
         | (if ($p.body.ok == 1) != ($c.status == "ok") then "request \($c.request_id): ok \($p.body.ok), status \($c.status)" else empty end),
           (if $c.status == "error" and (($c.code != null and $p.body.code != $c.code) or $p.body.codeName != $c.codeName)
            then "request \($c.request_id): code \($p.body.code) \($p.body.codeName), want \($c.code) \($c.codeName)" else empty end),
           (if $c.batch != null and ($p | batch) != $c.batch then "request \($c.request_id): batch \($p | batch), want \($c.batch)" else empty end),
           (if $c.cursor_open != null and (($p.body.cursor.id != 0) != $c.cursor_open) then "request \($c.request_id): cursor id \($p.body.cursor.id)" else empty end),
           (if $c.n != null and $p.body.n != $c.n then "request \($c.request_id): n \($p.body.n), want \($c.n)" else empty end),
           (if $c.n_modified != null and $p.body.nModified != $c.n_modified then "request \($c.request_id): nModified \($p.body.nModified), want \($c.n_modified)" else empty end),
           (if ([$p.body.writeErrors // {} | .[] | .code]) != ([$c.write_errors // [] | .[] | .code])
            then "request \($c.request_id): writeErrors \($p.body.writeErrors), want \($c.write_errors)" else empty end)
         end)
      end),
    ($reqs[] | select(.request_id as $id | [$cmds[] | .request_id] | index($id) | not)
     | "OP_MSG request \(.request_id) (\(.command)) on stream \(.stream) is in no manifest line"),
    ($msgs[] | select(.opcode == 2004 and (.collection != "admin.$cmd" or .command != "isMaster"))
     | "OP_QUERY \(.request_id): \(.collection) \(.command), not a handshake"),
    ($msgs[] | select(.opcode != 2013 and .opcode != 2004 and .opcode != 1) | "opcode \(.opcode) (request \(.request_id))")
  ]
EOF

tshark -r "$PCAP" -d "tcp.port==$PORT,mongo" -Y mongo -T json --no-duplicate-keys 2>"$WORK/logs/tshark.err" |
	jq -f "$WORK/messages.jq" >"$WORK/messages.json" ||
	die "reading the capture with tshark failed: $(cat "$WORK/logs/tshark.err")"
problems=$(jq -r --slurpfile m "$WORK/rec/manifest.json" '($m[0]) as $m | '"$(cat "$WORK/check.jq")"' | .[]' "$WORK/messages.json")
[[ -z $problems ]] || die "tshark's reading differs from the manifest:"$'\n'"$problems"
jq -r '
	"    tshark agrees: \([.[].stream] | unique | length) connections, "
	+ "\([.[] | select(.opcode == 2004)] | length) handshakes (OP_QUERY isMaster / OP_REPLY), "
	+ "\([.[] | select(.opcode == 2013 and .response_to == 0)] | length) OP_MSG requests "
	+ "(\([.[] | select(.sequences != null) | .sequences[]] | length) with a document sequence, "
	+ "\([.[] | select(.more_to_come)] | length) moreToCome), "
	+ "\([.[] | select(.opcode == 2013 and .response_to != 0)] | length) OP_MSG answers, "
	+ "\([.[] | select(.opcode == 2012)] | length) OP_COMPRESSED"' "$WORK/messages.json" >&2
# FerretDB answers a moreToCome message all the same: say so.
jq -r '[.[] | select(.more_to_come)] as $mc | . as $all | $mc[]
	| .request_id as $id | ([$all[] | select(.response_to == $id)] | length) as $n
	| select($n > 0) | "    note: FerretDB answered the moreToCome OP_MSG \($id) (\(.command)) anyway: \($n) answer(s)"' \
	"$WORK/messages.json" >&2

chmod 644 "$WORK/rec/mongo.pcap" "$WORK/rec/manifest.json"
mkdir -p "$out"
for f in "$WORK/rec"/*; do
	mv -f "$f" "$out/"
done
log "$out: mongo.pcap, manifest.json ($(jq length "$out/manifest.json") operations)"
