#!/usr/bin/env bash
# record-diameter.sh — record Diameter (RFC 6733) between two real
# freeDiameter peers and a minimal client on loopback, with a manifest of
# every request freeDiameter logged, for the Diameter dissector's recorded
# test.
#
# Usage:
#   scripts/record-diameter.sh OUTDIR
#       one capture per scenario, OUTDIR/NAME.pcap, and OUTDIR/manifest.json:
#         {"recorded_by": "scripts/record-diameter.sh",
#          "versions": {"freediameterd", "tshark"} (Debian package versions),
#          "scenarios": [{
#            "name", "description", "pcap" (NAME.pcap),
#            "port": 13869 (peer2's: every connection is to it),
#            "connections"  TCP connections (checked against the SYNs)
#            "requests"     every request peer2 sent or received, in the
#                           order its log shows them:
#              {"command"     the abbreviation (CER, DWR, DPR, CCR, AAR)
#               "code"        the command code
#               "hop_by_hop"  "0x…", as tshark prints it
#               "sender"      the Origin-Host of the side that sent it
#               "receiver"    the Origin-Host of the side it was sent to
#               "from_server" true when peer2, the side connected to,
#                             sent it
#               "result_code" the answer's Result-Code (0: no answer)
#               "result"      its RFC 6733 name
#               "error_bit"   the answer's E flag}
#          }]}
#
# Peers: Debian's freeDiameterd 1.2.1, run by this script from their own
# configurations in a temporary directory (never /etc/freeDiameter):
# peer1.localdomain listens on 127.0.0.51:13868, peer2.localdomain on
# 127.0.0.52:13869, realm localdomain, TCP only (No_SCTP), IPv4 only, Tc
# and Tw 6 s (DWRs flow after 6 s ± 2 s of quiet). freeDiameter wants a
# certificate even when no peer uses TLS: each gets a throwaway
# self-signed one (openssl). peer1 connects to peer2 with No_TLS; peer2
# accepts peer1 and the client by acl_wl.fdx (ALLOW_IPSEC: no TLS). Both
# load dict_nasreq.fdx and dict_dcca.fdx, and dbg_msg_dumps.fdx (0x0080:
# every message sent and received, with its flags, command code,
# Hop-by-Hop Identifier and AVPs) — the manifest is read from peer2's
# dump. Debian ships no test_app.fdx, so application requests come from
# test/diameterapps (standard library only, built here): client.localdomain
# on 127.0.0.53 sends CER, CCRs and an AAR, a DWR and a DPR to peer2; no
# freeDiameter peer has a Credit-Control or NASREQ server, so peer2 and
# peer1 (to which peer2 relays what is for it) answer them with errors, E
# bit set. Scenarios:
#   peers  peer1 connects (CER/CEA), the peers idle 15 s (DWR/DWA from
#          either side; peer2's are requests from the server side), peer1
#          stops (DPR/DPA, Disconnect-Cause REBOOTING)
#   apps   peer1 connects; the client: CER; CCR to peer2 (3007
#          DIAMETER_APPLICATION_UNSUPPORTED); CCR to peer1 (relayed by peer2
#          on its connection to peer1, a request from the server side: 3007
#          from peer1); CCR to an unknown host (relayed to peer1: 3002
#          DIAMETER_UNABLE_TO_DELIVER); AAR to another realm (3002 from
#          peer2); DWR; DPR; then peer1 stops (DPR/DPA)
# Every scenario is captured alone by tcpdump on lo, tcp port 13868 or
# 13869. The client's own log of what it sent and received must match
# peer2's dump and the results scripted. A scenario that does not end as
# scripted fails the run; a failed run leaves nothing in OUTDIR. Needs root
# (tcpdump) and freeDiameterd, freediameter-extensions, openssl, go,
# tcpdump, tshark, jq, ss and flock (scripts/install-deps.sh). Everything
# started is stopped on exit.
set -euo pipefail

P1=127.0.0.51
P2=127.0.0.52
CLIENT=127.0.0.53
PORT1=13868
PORT2=13869
EXT=/usr/lib/freeDiameter

die() {
	printf 'record-diameter: %s\n' "$*" >&2
	exit 1
}
log() { printf '==> %s\n' "$*" >&2; }

[[ $# -eq 1 && $1 != -* ]] || die "usage: record-diameter.sh OUTDIR"
out=$(realpath -m "$1")
[[ $(id -u) -eq 0 ]] || die "needs root (tcpdump captures on lo)"
for tool in flock freeDiameterd openssl go tcpdump tshark jq ss dpkg-query; do
	command -v "$tool" >/dev/null || die "$tool is missing (sudo bash scripts/install-deps.sh)"
done
for x in acl_wl dbg_msg_dumps dict_nasreq dict_dcca; do
	[[ -r $EXT/$x.fdx ]] || die "$EXT/$x.fdx is missing (freediameter-extensions)"
done

# One run at a time (from any checkout).
mkdir -p /run/lock
exec 9>/run/lock/wirescope-record-diameter.lock
flock -w 600 9 || die "another record-diameter.sh is still running (/run/lock/wirescope-record-diameter.lock)"

# shellcheck source=scripts/lib/proc.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/proc.sh"
APPS=$(realpath "$(dirname "${BASH_SOURCE[0]}")/../test/diameterapps")

WORK=$(mktemp -d /tmp/wirescope-diameter.XXXXXX)
PEER1_PID=
PEER2_PID=
cleanup() {
	local rc=$?
	set +e
	tcpdump_stop
	stop_pid "$PEER1_PID"
	stop_pid "$PEER2_PID"
	if [[ $rc -ne 0 ]]; then
		tail -n 20 "$WORK"/logs/*.err "$WORK"/logs/*.out >&2 2>/dev/null
	fi
	rm -rf "$WORK"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$WORK"/{logs,rec,plan,conf}
for p in "$P1:$PORT1" "$P2:$PORT2"; do
	if ss -H -ltn "( sport = :${p#*:} )" | awk '{print $4}' | grep -Eq "^(${p%:*}|0\.0\.0\.0|\*|\[::\]):${p#*:}\$"; then
		die "$p is already in use"
	fi
done

(cd "$APPS" && GOFLAGS=-mod=mod go build -o "$WORK/diameter-client" .) >"$WORK/logs/build.out" 2>&1 ||
	die "go build test/diameterapps: $(cat "$WORK/logs/build.out")"

# conf N IP PORT: peer N's configuration.
conf() {
	local n=$1 ip=$2 port=$3 c=$WORK/conf
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -keyout "$c/key$n.pem" \
		-out "$c/cert$n.pem" -subj "/CN=peer$n.localdomain" >"$WORK/logs/openssl.out" 2>&1 ||
		die "openssl could not make a certificate"
	cat >"$c/peer$n.conf" <<EOF
Identity = "peer$n.localdomain";
Realm = "localdomain";
Port = $port;
SecPort = 0;
No_SCTP;
No_IPv6;
ListenOn = "$ip";
TLS_Cred = "$c/cert$n.pem", "$c/key$n.pem";
TLS_CA = "$c/cert$n.pem";
TcTimer = 6;
TwTimer = 6;
AppServThreads = 2;
LoadExtension = "$EXT/dbg_msg_dumps.fdx" : "0x0080";
LoadExtension = "$EXT/dict_nasreq.fdx";
LoadExtension = "$EXT/dict_dcca.fdx";
EOF
}
conf 1 $P1 $PORT1
conf 2 $P2 $PORT2
printf 'ConnectPeer = "peer2.localdomain" { ConnectTo = "%s"; Port = %s; No_TLS; };\n' $P2 $PORT2 >>"$WORK/conf/peer1.conf"
printf 'ALLOW_IPSEC *.localdomain\n' >"$WORK/conf/acl.conf"
printf 'LoadExtension = "%s/acl_wl.fdx" : "%s";\n' "$EXT" "$WORK/conf/acl.conf" >>"$WORK/conf/peer2.conf"

version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || die "dpkg-query: $1 is not installed"; }
V_FD=$(version freediameterd)
V_TSHARK=$(version tshark)
log "freeDiameterd $V_FD on $P1:$PORT1 and $P2:$PORT2; tshark $V_TSHARK"

# start_peers: peer2, then peer1, which connects to it.
start_peers() {
	freeDiameterd -c "$WORK/conf/peer2.conf" >"$WORK/logs/$SCN-peer2.out" 2>&1 &
	PEER2_PID=$!
	for _ in $(seq 100); do
		ss -H -ltn "( sport = :$PORT2 )" | grep -q "$P2:$PORT2" && break
		kill -0 "$PEER2_PID" 2>/dev/null || die "peer2 exited at start: $(tail -5 "$WORK/logs/$SCN-peer2.out")"
		sleep 0.1
	done
	freeDiameterd -c "$WORK/conf/peer1.conf" >"$WORK/logs/$SCN-peer1.out" 2>&1 &
	PEER1_PID=$!
	for _ in $(seq 100); do
		grep -q "Connected to 'peer1.localdomain'" "$WORK/logs/$SCN-peer2.out" && return 0
		kill -0 "$PEER1_PID" 2>/dev/null || die "peer1 exited at start: $(tail -5 "$WORK/logs/$SCN-peer1.out")"
		sleep 0.1
	done
	die "$SCN: peer1 did not connect to peer2: $(grep -E 'ERROR|FATAL' "$WORK/logs/$SCN-peer2.out" | tail -5)"
}

# stop_peers: peer1 first (it sends DPR), then peer2.
stop_peers() {
	stop_pid "$PEER1_PID"
	PEER1_PID=
	sleep 0.5
	stop_pid "$PEER2_PID"
	PEER2_PID=
}

REC=$WORK/rec
SCN=
scenario() {
	SCN=$1
	printf '%s\n' "$1" >>"$WORK/plan/order"
	printf '%s' "$2" >"$WORK/plan/$SCN.description"
	log "$SCN: $2"
	tcpdump_start "$WORK/logs/tcpdump.err" -i lo -B 65536 -w "$REC/$SCN.pcap" "tcp port $PORT1 or tcp port $PORT2" ||
		die "tcpdump did not start: $(cat "$WORK/logs/tcpdump.err")"
}

# dump LOG: the messages of a dbg_msg_dumps log, one a line: RCV|SND,
# the peer, command code, flags, hop-by-hop, Result-Code (- none).
dump() {
	awk '
		function flush() { if (cc != "") print dir, p, cc, fl, h, rc; cc = ""; inmsg = 0 }
		/^[0-9:]+  [A-Z!]+ +[^ ]/ && !/  [A-Z!]+        / { flush() }
		/ (RCV from|SND to) .*:$/ {
			dir = ($3 == "RCV") ? "RCV" : "SND"; p = $0; sub(/.*(from|to) \047/, "", p); sub(/\047:$/, "", p)
			gsub(/ /, "_", p); inmsg = 1; rc = "-"; next
		}
		inmsg && /Flags: 0x/ { fl = $4 }
		inmsg && /Command Code:/ { cc = $5 }
		inmsg && /Hop-by-Hop Identifier:/ { h = tolower($5) }
		inmsg && /AVP: \047Result-Code\047\(268\)/ { v = $0; sub(/.*val=\047[A-Za-z_]*\047 \(/, "", v); sub(/ .*/, "", v); rc = v }
		END { flush() }' "$1"
}

# requests DUMP: the requests of a dump with their answers, one a line:
# code, hop-by-hop, sender, receiver, result code (0 none), error bit (0/1).
requests() {
	awk '
		{ dir[NR] = $1; peer[NR] = $2; cc[NR] = $3; fl[NR] = $4; h[NR] = $5; rc[NR] = $6 }
		END {
			for (i = 1; i <= NR; i++) {
				if (index("89ABCDEF", substr(toupper(fl[i]), 3, 1)) == 0) continue
				r = 0; e = 0; pr = peer[i]
				for (j = i + 1; j <= NR; j++)
					if (h[j] == h[i] && cc[j] == cc[i] && dir[j] != dir[i] && index("89ABCDEF", substr(toupper(fl[j]), 3, 1)) == 0) {
						r = (rc[j] == "-") ? 0 : rc[j]; e = (index("2367ABEF", substr(toupper(fl[j]), 3, 1)) > 0); pr = peer[j]; break
					}
				if (pr == "<unknown_peer>") { print "error", "no peer for " h[i]; continue }
				print cc[i], h[i], (dir[i] == "RCV" ? pr : "peer2.localdomain"), (dir[i] == "RCV" ? "peer2.localdomain" : pr), r, e
			}
		}' "$1"
}

end_scenario() {
	tcpdump_stop 0.3
	local pcap=$REC/$SCN.pcap
	grep -qE '^0 packets dropped by kernel' "$WORK/logs/tcpdump.err" ||
		die "$SCN: tcpdump dropped packets: $(cat "$WORK/logs/tcpdump.err")"
	dump "$WORK/logs/$SCN-peer2.out" >"$WORK/plan/$SCN.dump"
	requests "$WORK/plan/$SCN.dump" >"$WORK/plan/$SCN.reqs"
	! grep -q '^error' "$WORK/plan/$SCN.reqs" || die "$SCN: $(grep '^error' "$WORK/plan/$SCN.reqs")"
	awk '$5 == 0 { bad = 1 } END { exit bad }' "$WORK/plan/$SCN.reqs" ||
		die "$SCN: a request without an answer in peer2's log: $(cat "$WORK/plan/$SCN.reqs")"
	local syns
	syns=$(tshark -r "$pcap" -Y 'tcp.flags.syn == 1 && tcp.flags.ack == 0' 2>/dev/null | wc -l)
	printf '%s' "$syns" >"$WORK/plan/$SCN.conns"
	printf '    %s.pcap: %s packets, %s connections, %s requests in peer2'"'"'s log\n' "$SCN" \
		"$(tshark -r "$pcap" 2>/dev/null | wc -l)" "$syns" "$(wc -l <"$WORK/plan/$SCN.reqs")" >&2
	SCN=
}

###############################################################################

scenario peers "peer1 connects to peer2 (CER/CEA), the peers idle 15 s (DWR/DWA, Tw 6 s, from either side), peer1 stops (DPR/DPA)"
start_peers
sleep 15
stop_peers
end_scenario
want() { # want SCN PATTERN WHAT: the requests must match
	grep -Eq "$2" "$WORK/plan/$1.reqs" || die "$1: no $3 in peer2's log: $(cat "$WORK/plan/$1.reqs")"
}
want peers '^257 .* peer1.localdomain peer2.localdomain 2001 0$' "CER from peer1 answered 2001"
want peers '^280 .* 2001 0$' "DWR answered 2001"
want peers '^282 .* peer1.localdomain peer2.localdomain 2001 0$' "DPR from peer1 answered 2001"

scenario apps "the client (test/diameterapps, client.localdomain): CER; CCR to peer2 (3007); CCR to peer1, relayed by peer2 (3007); CCR to an unknown host, relayed (3002); AAR to another realm (3002); DWR; DPR; then peer1 stops (DPR)"
start_peers
"$WORK/diameter-client" -connect $P2:$PORT2 -from $CLIENT \
	-requests ccr:peer2.localdomain,ccr:peer1.localdomain,ccr:nowhere.localdomain,aar:elsewhere.example \
	>"$WORK/logs/client.out" 2>"$WORK/logs/client.err" || die "the client failed: $(cat "$WORK/logs/client.err")"
sleep 0.3
stop_peers
end_scenario
got=$(awk '$1 == "RCV" && $3 == "A" { printf "%s%s=%s", sep, $2, $5; sep = " " }' "$WORK/logs/client.out")
[[ $got == "257=2001 272=3007 272=3007 272=3002 265=3002 280=2001 282=2001" ]] ||
	die "apps: the client's answers were $got: $(cat "$WORK/logs/client.out")"
# The client's requests, as peer2 logged them, are the client's log's.
diff <(awk '$1 == "SND" && $3 == "R" { print $2, $4 }' "$WORK/logs/client.out") \
	<(awk '$3 == "client.localdomain" { print $1, $2 }' "$WORK/plan/apps.reqs") >"$WORK/logs/client.diff" ||
	die "apps: peer2's log (+) differs from the client's (-): $(cat "$WORK/logs/client.diff")"
want apps '^272 .* peer2.localdomain peer1.localdomain 3007 1$' "CCR relayed by peer2 to peer1 answered 3007"
want apps '^272 .* peer2.localdomain peer1.localdomain 3002 1$' "CCR relayed by peer2 to peer1 answered 3002"

###############################################################################
# The manifest
###############################################################################

scenarios=()
while read -r scn; do
	scenarios+=("$(jq -n --arg name "$scn" --rawfile desc "$WORK/plan/$scn.description" \
		--rawfile reqs "$WORK/plan/$scn.reqs" --argjson conns "$(cat "$WORK/plan/$scn.conns")" --argjson port $PORT2 '
		def cmd: {"257": "CER", "280": "DWR", "282": "DPR", "272": "CCR", "265": "AAR", "258": "RAR", "275": "STR", "274": "ASR"}[.]
			// ("cmd-" + .);
		def rcname: {"2001": "DIAMETER_SUCCESS", "3001": "DIAMETER_COMMAND_UNSUPPORTED", "3002": "DIAMETER_UNABLE_TO_DELIVER",
			"3003": "DIAMETER_REALM_NOT_SERVED", "3004": "DIAMETER_TOO_BUSY", "3005": "DIAMETER_LOOP_DETECTED",
			"3007": "DIAMETER_APPLICATION_UNSUPPORTED", "3010": "DIAMETER_UNKNOWN_PEER", "5010": "DIAMETER_NO_COMMON_APPLICATION",
			"5012": "DIAMETER_UNABLE_TO_COMPLY"}[.] // error("no name for Result-Code \(.)");
		{name: $name, description: $desc, pcap: ($name + ".pcap"), port: $port, connections: $conns,
		 requests: ($reqs | split("\n") | map(select(. != "") | split(" ") |
			{command: (.[0] | cmd), code: (.[0] | tonumber), hop_by_hop: .[1], sender: .[2], receiver: .[3],
			 from_server: (.[2] == "peer2.localdomain"), result_code: (.[4] | tonumber), result: (.[4] | rcname),
			 error_bit: (.[5] == "1")}))}')")
done <"$WORK/plan/order"
printf '%s\n' "${scenarios[@]}" | jq -s --arg fd "$V_FD" --arg tshark "$V_TSHARK" '
	{recorded_by: "scripts/record-diameter.sh", versions: {freediameterd: $fd, tshark: $tshark}, scenarios: .}' \
	>"$REC/manifest.json"
chmod 644 "$REC"/*.pcap "$REC/manifest.json"

mkdir -p "$out"
rm -f "$out"/*.pcap "$out/manifest.json"
for f in "$REC"/*; do
	mv -f "$f" "$out/"
done
log "$out: $(jq '.scenarios | length' "$out/manifest.json") scenarios, $(jq '[.scenarios[].requests[]] | length' "$out/manifest.json") requests"
