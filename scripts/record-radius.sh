#!/usr/bin/env bash
# record-radius.sh — record RADIUS from a real FreeRADIUS server and its
# radclient on loopback, with a manifest of every request the client sent,
# for the RADIUS dissector's recorded test.
#
# Usage:
#   scripts/record-radius.sh OUTDIR
#       one capture per scenario, OUTDIR/NAME.pcap, and OUTDIR/manifest.json:
#         {"recorded_by": "scripts/record-radius.sh",
#          "versions": {"freeradius", "freeradius-utils", "tshark"} (Debian
#            package versions),
#          "secrets": [every password and shared secret used anywhere (the
#            server's shared secret, a wrong one, the users' passwords and
#            wrong ones); a dissector must never show them],
#          "scenarios": [{
#            "name", "description", "pcap" (NAME.pcap), "ip": "127.0.0.50",
#            "auth_port": 11812, "acct_port": 11813,
#            "requests"  every request radclient sent, in order:
#              {"invocation"       1-based radclient run (its own socket:
#                                  one UDP flow)
#               "code"             Access-Request, Accounting-Request,
#                                  Status-Server (radclient's "Sent …")
#               "id"               the RADIUS identifier
#               "user"             User-Name ("" none)
#               "port"             the server port it went to
#               "response"         the code of the response radclient
#                                  received ("Received …"), "" when it
#                                  printed "No reply from server"
#               "retransmissions"  how many times radclient sent it again
#                                  (the same identifier and packet)
#               "acct_status_type" Accounting-Request only: Start, …}
#            "tshark"    {"requests": n, "responses": n}: the RADIUS
#                        packets tshark reads (-d udp.port==11812,radius
#                        -d udp.port==11813,radius), retransmissions
#                        included
#            "secrets"   the passwords and shared secrets this scenario's
#                        client used
#          }]}
#
# Server: Debian's freeradius (3.2), run by this script in the foreground
# (-f -l stdout, as root: no user/group to drop to) from a copy of
# /etc/freeradius/3.0 in a temporary directory, edited: raddbdir, logdir
# and run_dir inside it; only the always, chap, files and pap modules; one
# virtual server of its own (listening on 127.0.0.50:11812 auth and
# 127.0.0.50:11813 acct; authorize chap, files, pap; accounting ok;
# Status-Server on, as radiusd.conf has it); one client, 127.0.0.0/8 with
# the shared secret; the users file: bob (a password), alice (a password,
# Reply-Message and Session-Timeout) and carol (Auth-Type Reject with a
# Reply-Message). The system's service is neither used nor touched (if the
# package started one, it listens on 1812/1813 of other addresses and is
# not in the way). Client: radclient -x (freeradius-utils). Scenarios:
#   pap         Access-Requests with User-Password: bob right (Accept),
#               bob wrong (Reject), alice (Accept with Reply-Message and
#               Session-Timeout), carol (Reject with Reply-Message), one
#               with the NAS attributes (NAS-IP-Address, NAS-Identifier,
#               NAS-Port, NAS-Port-Type, Service-Type, Called- and
#               Calling-Station-Id)
#   chap        CHAP-Password: alice right (Accept), wrong (Reject)
#   accounting  Start, Interim-Update and Stop of one session, three
#               requests from one radclient (one socket, three IDs)
#   status      Status-Server to the auth port (Access-Accept) and to the
#               acct port (Accounting-Response)
#   unanswered  an Access-Request with Message-Authenticator signed with a
#               wrong shared secret: FreeRADIUS drops it without a response
#               ("invalid Message-Authenticator"), radclient -r 1 gives up
#   retransmit  an Accounting-Request with a wrong shared secret (dropped:
#               "invalid Request Authenticator"), radclient -r 3 -t 1 sends
#               it three times: the same identifier and authenticator
# Every scenario is captured alone by tcpdump on lo, host 127.0.0.50 and
# udp ports 11812 and 11813.
#
# What the manifest says comes from radclient's output (stdout and stderr
# unbuffered into one stream): "Sent CODE Id N … length L" with the
# attributes after it, "Received CODE Id N …", "No reply from server for
# ID N"; each invocation's responses are checked against what the script
# meant to provoke and against radclient's exit code (0 only when every
# response was the expected one). Each capture is then read by tshark: its
# requests and responses, code and identifier, packet for packet
# (retransmissions included), must be the manifest's. A scenario that does
# not end as scripted fails the run; a failed run leaves nothing in OUTDIR.
# Needs root (tcpdump) and freeradius, freeradius-utils, tcpdump, tshark,
# jq, ss, flock and stdbuf (scripts/install-deps.sh). Everything started is
# stopped on exit.
set -euo pipefail

IP=127.0.0.50
AUTH=11812
ACCT=11813
SECRET=s3cr3t-shared
WRONG_SECRET=n0t-the-shared-s3cret
BOB_PASS=b0b-radius-pass
ALICE_PASS=al1ce-radius-pass
CAROL_PASS=c4rol-radius-pass
WRONG_PASS=wr0ng-radius-pass

die() {
	printf 'record-radius: %s\n' "$*" >&2
	exit 1
}
log() { printf '==> %s\n' "$*" >&2; }

[[ $# -eq 1 && $1 != -* ]] || die "usage: record-radius.sh OUTDIR"
out=$(realpath -m "$1")
[[ $(id -u) -eq 0 ]] || die "needs root (tcpdump captures on lo)"
PATH=$PATH:/usr/sbin:/sbin
for tool in flock freeradius radclient tcpdump tshark jq ss stdbuf dpkg-query; do
	command -v "$tool" >/dev/null || die "$tool is missing (sudo bash scripts/install-deps.sh)"
done
[[ -r /etc/freeradius/3.0/radiusd.conf ]] || die "/etc/freeradius/3.0/radiusd.conf is missing (freeradius-config)"

# One run at a time (from any checkout): a second waits for the first's
# server, ports and captures to be gone, up to 10 minutes.
mkdir -p /run/lock
exec 9>/run/lock/wirescope-record-radius.lock
flock -w 600 9 || die "another record-radius.sh is still running (/run/lock/wirescope-record-radius.lock)"

# shellcheck source=scripts/lib/proc.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/proc.sh"

WORK=$(mktemp -d /tmp/wirescope-radius.XXXXXX)
RADIUSD_PID=
cleanup() {
	local rc=$?
	set +e
	tcpdump_stop
	stop_pid "$RADIUSD_PID"
	if [[ $rc -ne 0 ]]; then
		tail -n 30 "$WORK"/logs/* >&2 2>/dev/null
	fi
	rm -rf "$WORK"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$WORK"/{logs,rec,plan}
for port in $AUTH $ACCT; do
	if ss -H -lun "( sport = :$port )" | awk '{print $4}' | grep -Eq "^($IP|0\.0\.0\.0|\*|\[::\]):$port\$"; then
		die "$IP:$port is already in use"
	fi
done

###############################################################################
# Server
###############################################################################

D=$WORK/raddb
cp -a /etc/freeradius/3.0 "$D"
mkdir -p "$D/log" "$D/run"
sed -i -e "s|^raddbdir = .*|raddbdir = $D|" -e "s|^logdir = .*|logdir = $D/log|" -e "s|^run_dir = .*|run_dir = $D/run|" \
	-e 's@^\([[:space:]]*\)\(user\|group\) = freerad$@\1# \2 = freerad@' "$D/radiusd.conf"
! grep -Eq '^[[:space:]]*(user|group) = ' "$D/radiusd.conf" || die "could not keep freeradius from dropping to freerad"
grep -q "^raddbdir = $D\$" "$D/radiusd.conf" || die "could not point radiusd.conf at $D"
rm -f "$D"/mods-enabled/* "$D"/sites-enabled/*
for m in always chap files pap; do
	ln -s "../mods-available/$m" "$D/mods-enabled/$m"
done
cat >"$D/sites-enabled/wirescope" <<EOF
server wirescope {
	listen {
		type = auth
		ipaddr = $IP
		port = $AUTH
	}
	listen {
		type = acct
		ipaddr = $IP
		port = $ACCT
	}
	authorize {
		chap
		files
		pap
	}
	authenticate {
		Auth-Type PAP {
			pap
		}
		Auth-Type CHAP {
			chap
		}
	}
	preacct {
	}
	accounting {
		ok
	}
	post-auth {
		Post-Auth-Type REJECT {
			ok
		}
	}
}
EOF
cat >"$D/clients.conf" <<EOF
client loopback {
	ipaddr = 127.0.0.0/8
	secret = $SECRET
	require_message_authenticator = no
}
EOF
cat >"$D/mods-config/files/authorize" <<EOF
alice	Cleartext-Password := "$ALICE_PASS"
	Reply-Message := "Hello, alice", Session-Timeout := 3600

bob	Cleartext-Password := "$BOB_PASS"

carol	Auth-Type := Reject
	Reply-Message := "carol is not allowed"
EOF
freeradius -XC -d "$D" >"$WORK/logs/check.out" 2>&1 || die "freeradius -C refuses the configuration: $(tail -5 "$WORK/logs/check.out")"
freeradius -f -xx -l stdout -d "$D" >"$WORK/logs/radiusd.log" 2>&1 &
RADIUSD_PID=$!
listening() { ss -H -lun "( sport = :$AUTH or sport = :$ACCT )" | grep -c "$IP:"; }
for _ in $(seq 100); do
	[[ $(listening) == 2 ]] && break
	kill -0 "$RADIUSD_PID" 2>/dev/null || die "freeradius exited at start: $(tail -5 "$WORK/logs/radiusd.log")"
	sleep 0.1
done
[[ $(listening) == 2 ]] || die "freeradius does not listen on $IP:$AUTH and $IP:$ACCT"
version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || die "dpkg-query: $1 is not installed"; }
V_SERVER=$(version freeradius)
V_UTILS=$(version freeradius-utils)
V_TSHARK=$(version tshark)
log "freeradius $V_SERVER on $IP:$AUTH (auth) and $IP:$ACCT (acct), from $D; freeradius-utils $V_UTILS; tshark $V_TSHARK"

###############################################################################
# Scenarios
###############################################################################

REC=$WORK/rec # the scenarios' captures, moved to OUTDIR at the end
SCN=
INV=0

# scenario NAME DESCRIPTION: start the scenario's capture.
scenario() {
	SCN=$1
	INV=0
	printf '%s\n' "$1" >>"$WORK/plan/order"
	printf '%s' "$2" >"$WORK/plan/$SCN.description"
	: >"$WORK/plan/$SCN.reqs"
	: >"$WORK/plan/$SCN.secrets"
	log "$SCN: $2"
	tcpdump_start "$WORK/logs/tcpdump.err" -i lo -B 65536 -w "$REC/$SCN.pcap" "host $IP and (udp port $AUTH or udp port $ACCT)" ||
		die "tcpdump did not start: $(cat "$WORK/logs/tcpdump.err")"
}

secret() { printf '%s\n' "$@" >>"$WORK/plan/$SCN.secrets"; }

# parse_radclient OUTPUT: the requests radclient -x says it sent, one a
# line: code, id, user, port, response code ("" none), retransmissions,
# Acct-Status-Type; a line "error<TAB>why" when the output is not
# understood.
parse_radclient() {
	awk -v OFS='\t' '
		function err(why) { if (bad == "") bad = why }
		/^Sent [A-Za-z-]+ Id [0-9]+ from .* to .* length [0-9]+$/ {
			id = $4; port = $8; sub(/.*:/, "", port)
			if ((id in idx) && res[idx[id]] == "") { re[idx[id]]++; cur = 0; next }
			n++; idx[id] = n; code[n] = $2; ids[n] = id; user[n] = ""; prt[n] = port; res[n] = ""; re[n] = 0; ast[n] = ""
			cur = n; next
		}
		/^Received [A-Za-z-]+ Id [0-9]+ from / {
			cur = 0
			if (!($4 in idx)) { err("a response to no request: " $0); next }
			res[idx[$4]] = $2; next
		}
		/^\t/ && cur {
			if ($1 == "User-Name" && user[cur] == "") { u = $0; sub(/^[^"]*"/, "", u); sub(/"$/, "", u); user[cur] = u }
			if ($1 == "Acct-Status-Type") ast[cur] = $3
			next
		}
		/No reply from server for ID [0-9]+/ { cur = 0; next }
		{ cur = 0 }
		END {
			if (n == 0) err("no request found in its output")
			if (bad != "") { printf "error\t%s\n", bad; exit }
			for (i = 1; i <= n; i++) print code[i], ids[i], user[i], prt[i], res[i], re[i], ast[i]
		}' "$1"
}

# rc "WANT" RADCLIENT-ARGS... (the request attributes on stdin): one
# radclient -x run (one socket). WANT: the response codes, in order ("-"
# for none: "Access-Accept Access-Reject -"). Its requests go to the
# scenario's plan.
rc() {
	local want=$1
	shift
	INV=$((INV + 1))
	local o=$WORK/logs/$SCN-$INV.out code=0
	timeout 60 stdbuf -o0 -e0 radclient -x "$@" >"$o" 2>&1 || code=$?
	((code != 124)) || die "$SCN: radclient $* timed out"
	parse_radclient "$o" >"$WORK/reqs"
	if [[ $(head -c 6 "$WORK/reqs") == error$'\t' ]]; then
		die "$SCN: radclient $*: $(cut -f2 "$WORK/reqs"); it printed: $(cat "$o")"
	fi
	local got
	got=$(awk -F'\t' '{ print ($5 == "" ? "-" : $5) }' "$WORK/reqs" | paste -sd' ' -)
	[[ $got == "$want" ]] || die "$SCN: radclient $*: responses $got, want $want; it printed: $(cat "$o")"
	# radclient exits 0 only when every request got the response it
	# expected (an Accept for an Access-Request).
	local fails=0
	awk -F'\t' '$5 == "" || ($1 == "Access-Request" && $5 != "Access-Accept") { bad = 1 } END { exit !bad }' "$WORK/reqs" && fails=1
	if ((fails == 0 && code != 0 || fails == 1 && code == 0)); then
		die "$SCN: radclient $* exited $code for responses $got: $(cat "$o")"
	fi
	awk -F'\t' -v OFS='\t' -v inv="$INV" '{ print inv, $0 }' "$WORK/reqs" >>"$WORK/plan/$SCN.reqs"
	printf '    radclient %-44s %s\n' "$(printf '%s ' "$@" | cut -c1-44)" \
		"$(awk -F'\t' '{ printf "%s%s %s→%s%s", sep, $1, $3, ($5 == "" ? "none" : $5), ($6 > 0 ? " (+" $6 ")" : ""); sep = ", " }' "$WORK/reqs")" >&2
}

# tshark_packets PCAP: tshark's reading of the capture, one line per
# RADIUS packet: code, identifier.
tshark_packets() {
	tshark -r "$1" -d udp.port==$AUTH,radius -d udp.port==$ACCT,radius -Y radius -T fields \
		-e radius.code -e radius.id 2>"$WORK/logs/tshark.err"
}

# end_scenario: stop the capture; check it against the plan with tshark.
end_scenario() {
	tcpdump_stop 0.3
	local pcap=$REC/$SCN.pcap
	grep -qE '^0 packets dropped by kernel' "$WORK/logs/tcpdump.err" ||
		die "$SCN: tcpdump dropped packets: $(cat "$WORK/logs/tcpdump.err")"
	tshark_packets "$pcap" | LC_ALL=C sort >"$WORK/plan/$SCN.tshark"
	# The manifest's packets: each request 1 + retransmissions times, and
	# its response.
	awk -F'\t' -v OFS='\t' '
		BEGIN { split("Access-Request 1 Access-Accept 2 Access-Reject 3 Accounting-Request 4 Accounting-Response 5 Access-Challenge 11 Status-Server 12", a, " ")
			for (i = 1; i < 14; i += 2) num[a[i]] = a[i + 1] }
		{ for (k = 0; k <= $7; k++) print num[$2], $3; if ($6 != "") print num[$6], $3 }' \
		"$WORK/plan/$SCN.reqs" | LC_ALL=C sort >"$WORK/plan/$SCN.want"
	diff -u "$WORK/plan/$SCN.want" "$WORK/plan/$SCN.tshark" >"$WORK/logs/tshark.diff" ||
		die "$SCN: tshark's reading (+) differs from the manifest (-): $(cat "$WORK/logs/tshark.diff")"
	# The passwords are never in the clear (User-Password is hidden with
	# the shared secret, CHAP sends a hash), nor the shared secret.
	local s
	while IFS= read -r s; do
		! grep -aqF -- "$s" "$pcap" || die "$SCN: the secret $s is in the capture"
	done <"$WORK/plan/$SCN.secrets"
	printf '    %s.pcap: %s packets, %s requests (%s packets read by tshark)\n' "$SCN" \
		"$(tshark -r "$pcap" 2>/dev/null | wc -l)" "$(wc -l <"$WORK/plan/$SCN.reqs")" \
		"$(wc -l <"$WORK/plan/$SCN.tshark")" >&2
	SCN=
}

###############################################################################

scenario pap "PAP Access-Requests: bob with his password (Access-Accept), bob with a wrong one (Access-Reject), alice (Access-Accept with Reply-Message and Session-Timeout), carol (Access-Reject with Reply-Message), bob with the NAS attributes"
echo "User-Name=bob,User-Password=$BOB_PASS" | rc "Access-Accept" "$IP:$AUTH" auth "$SECRET"
echo "User-Name=bob,User-Password=$WRONG_PASS" | rc "Access-Reject" "$IP:$AUTH" auth "$SECRET"
echo "User-Name=alice,User-Password=$ALICE_PASS" | rc "Access-Accept" "$IP:$AUTH" auth "$SECRET"
echo "User-Name=carol,User-Password=$CAROL_PASS" | rc "Access-Reject" "$IP:$AUTH" auth "$SECRET"
echo "User-Name=bob,User-Password=$BOB_PASS,NAS-IP-Address=192.0.2.10,NAS-Identifier=ap-3.example,NAS-Port=42,NAS-Port-Type=Wireless-802.11,Service-Type=Framed-User,Called-Station-Id=\"02-00-00-00-00-01:corp\",Calling-Station-Id=02-00-00-00-00-99" |
	rc "Access-Accept" "$IP:$AUTH" auth "$SECRET"
secret "$SECRET" "$BOB_PASS" "$WRONG_PASS" "$ALICE_PASS" "$CAROL_PASS"
end_scenario

scenario chap "CHAP Access-Requests (CHAP-Password, the challenge in the Request Authenticator): alice with her password (Access-Accept with Reply-Message and Session-Timeout), with a wrong one (Access-Reject)"
echo "User-Name=alice,CHAP-Password=$ALICE_PASS" | rc "Access-Accept" "$IP:$AUTH" auth "$SECRET"
echo "User-Name=alice,CHAP-Password=$WRONG_PASS" | rc "Access-Reject" "$IP:$AUTH" auth "$SECRET"
secret "$SECRET" "$ALICE_PASS" "$WRONG_PASS"
end_scenario

scenario accounting "Accounting-Requests of one session from one radclient (one socket, three identifiers): Start, Interim-Update, Stop, each answered Accounting-Response"
cat >"$WORK/acct.txt" <<EOF
User-Name=bob,Acct-Status-Type=Start,Acct-Session-Id=sess-0001,NAS-IP-Address=192.0.2.10,NAS-Port=42,Framed-IP-Address=10.20.30.40,Acct-Authentic=RADIUS

User-Name=bob,Acct-Status-Type=Interim-Update,Acct-Session-Id=sess-0001,NAS-IP-Address=192.0.2.10,Acct-Session-Time=30,Acct-Input-Octets=1200,Acct-Output-Octets=3400

User-Name=bob,Acct-Status-Type=Stop,Acct-Session-Id=sess-0001,NAS-IP-Address=192.0.2.10,Acct-Session-Time=60,Acct-Terminate-Cause=User-Request
EOF
rc "Accounting-Response Accounting-Response Accounting-Response" -f "$WORK/acct.txt" "$IP:$ACCT" acct "$SECRET" </dev/null
secret "$SECRET"
end_scenario

scenario status "Status-Server (RFC 5997, with Message-Authenticator) to the auth port (answered Access-Accept) and to the acct port (answered Accounting-Response)"
echo "Message-Authenticator=0x00" | rc "Access-Accept" "$IP:$AUTH" status "$SECRET"
echo "Message-Authenticator=0x00" | rc "Accounting-Response" "$IP:$ACCT" status "$SECRET"
secret "$SECRET"
end_scenario

scenario unanswered "an Access-Request whose Message-Authenticator is signed with a wrong shared secret: FreeRADIUS drops it without a response (invalid Message-Authenticator); radclient -r 1 -t 2 sends it once"
echo "User-Name=bob,User-Password=$BOB_PASS,Message-Authenticator=0x00" | rc "-" -r 1 -t 2 "$IP:$AUTH" auth "$WRONG_SECRET"
secret "$WRONG_SECRET" "$BOB_PASS"
grep -q 'invalid Message-Authenticator' "$WORK/logs/radiusd.log" || die "$SCN: freeradius did not log the invalid Message-Authenticator"
end_scenario

scenario retransmit "an Accounting-Request with a wrong shared secret: FreeRADIUS drops it (invalid Request Authenticator); radclient -r 3 -t 1 sends it three times, the same identifier and authenticator"
echo "User-Name=bob,Acct-Status-Type=Start,Acct-Session-Id=sess-0002" | rc "-" -r 3 -t 1 "$IP:$ACCT" acct "$WRONG_SECRET"
secret "$WRONG_SECRET"
grep -q 'invalid Request Authenticator' "$WORK/logs/radiusd.log" || die "$SCN: freeradius did not log the invalid Request Authenticator"
[[ $(awk -F'\t' '{ print $7 }' "$WORK/plan/$SCN.reqs") == 2 ]] || die "$SCN: radclient did not send the request three times"
end_scenario

###############################################################################
# The manifest
###############################################################################

scenarios=()
while read -r scn; do
	scenarios+=("$(jq -n --arg name "$scn" --rawfile desc "$WORK/plan/$scn.description" \
		--rawfile reqs "$WORK/plan/$scn.reqs" --rawfile secrets "$WORK/plan/$scn.secrets" \
		--rawfile tshark "$WORK/plan/$scn.tshark" --arg ip "$IP" --argjson auth "$AUTH" --argjson acct "$ACCT" '
		{name: $name, description: $desc, pcap: ($name + ".pcap"), ip: $ip, auth_port: $auth, acct_port: $acct,
		 requests: ($reqs | split("\n") | map(select(. != "") | split("\t") |
			{invocation: (.[0] | tonumber), code: .[1], id: (.[2] | tonumber), user: .[3], port: (.[4] | tonumber),
			 response: .[5], retransmissions: (.[6] | tonumber)}
			+ (if .[7] != "" then {acct_status_type: .[7]} else {} end))),
		 tshark: ($tshark | split("\n") | map(select(. != "") | split("\t")[0] | tonumber) |
			{requests: map(select(. == 1 or . == 4 or . == 12 or . == 40 or . == 43)) | length,
			 responses: map(select(. != 1 and . != 4 and . != 12 and . != 40 and . != 43)) | length}),
		 secrets: ($secrets | split("\n") | map(select(. != "")) | unique)}')")
done <"$WORK/plan/order"
printf '%s\n' "${scenarios[@]}" | jq -s --arg server "$V_SERVER" --arg utils "$V_UTILS" --arg tshark "$V_TSHARK" \
	--arg s1 "$SECRET" --arg s2 "$WRONG_SECRET" --arg p1 "$BOB_PASS" --arg p2 "$ALICE_PASS" --arg p3 "$CAROL_PASS" \
	--arg p4 "$WRONG_PASS" '
	{recorded_by: "scripts/record-radius.sh", versions: {freeradius: $server, "freeradius-utils": $utils, tshark: $tshark},
	 secrets: ([$s1, $s2, $p1, $p2, $p3, $p4] | unique), scenarios: .}
	| if (.scenarios | map(.secrets[]) | unique) - .secrets != [] then error("a scenario secret missing at the top") else . end' \
	>"$REC/manifest.json"
chmod 644 "$REC"/*.pcap "$REC/manifest.json"

mkdir -p "$out"
rm -f "$out"/*.pcap "$out/manifest.json"
for f in "$REC"/*; do
	mv -f "$f" "$out/"
done
log "$out: $(jq '.scenarios | length' "$out/manifest.json") scenarios, $(jq '[.scenarios[].requests[]] | length' "$out/manifest.json") requests"
