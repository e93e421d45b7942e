#!/usr/bin/env bash
# record-ldap.sh — record LDAP from a real OpenLDAP server (slapd) and real
# clients (ldap-utils) on loopback, with a manifest of every operation the
# clients issued, for the LDAP dissector's recorded test.
#
# Usage:
#   scripts/record-ldap.sh OUTDIR
#       one capture per scenario, OUTDIR/NAME.pcap, and OUTDIR/manifest.json:
#         {"recorded_by": "scripts/record-ldap.sh",
#          "versions": {"slapd", "ldap-utils", "tshark"} (Debian package
#            versions),
#          "secrets": [every password used anywhere: the admin's, a wrong
#            one, the users', the old and new ones of ldappasswd; a
#            dissector must never show them],
#          "scenarios": [{
#            "name", "description", "pcap" (NAME.pcap), "ip": "127.0.0.49",
#            "port": 1389,
#            "connections"   TCP connections: one per client invocation
#                            (checked against the capture's SYNs)
#            "operations"    every LDAP operation, in the order the clients
#                            issued them (each invocation: its StartTLS with
#                            -ZZ, its bind, its operations, its unbind):
#              {"connection"  1-based, in the order the connections opened
#               "client"      ldapsearch, ldapadd, ...
#               "op"          bind|search|add|modify|delete|modifyDN|
#                             compare|extended|unbind
#               "dn"          the bind DN ("" anonymous), the search base
#                             ("" the root DSE), the entry's DN (add,
#                             modify, delete, compare; modifyDN: the old
#                             one); "" for extended and unbind
#               "result"      the response's resultCode as RFC 4511 names
#                             it (success, invalidCredentials,
#                             noSuchObject, sizeLimitExceeded,
#                             entryAlreadyExists, compareTrue, ...); ""
#                             for unbind, which gets no response
#               "entries"     search only: entries returned
#               "scope"       search only: baseObject, singleLevel or
#                             wholeSubtree
#               "filter"      search only: the filter as ldapsearch prints it
#               "oid"         extended only: the request's name
#               "encrypted"   true: sent inside TLS after StartTLS}
#            "tshark_ops"    {"bind": n, ...}: tshark's count of requests by
#                            operation (-d tcp.port==1389,ldap), before TLS
#            "encrypted_after_starttls"  true when the capture has StartTLS
#                            and TLS after it (starttls)
#            "secrets"       the passwords this scenario's clients sent
#          }]}
#
# Server: Debian's slapd (OpenLDAP 2.5), run by this script as the openldap
# user from its own slapd.conf in a temporary directory (never the system's
# service or /etc/ldap/slapd.d): ldap://127.0.0.49:1389/, an mdb database for
# dc=example,dc=com (rootdn cn=admin,dc=example,dc=com), the core, cosine and
# inetorgperson schemas, a throwaway self-signed certificate (openssl) for
# StartTLS, and seeded with slapadd: dc=example,dc=com, ou=People and four
# people (alice, bob, carol, dave). Clients: ldap-utils, every one with
# -x -H ldap://127.0.0.49:1389 and no ldap.conf or ldaprc. Scenarios:
#   bind      ldapwhoami as the admin, with a wrong password
#             (invalidCredentials), anonymously, as a user: bind, Who am I?
#             (extended 1.3.6.1.4.1.4203.1.11.3), unbind
#   search    anonymous searches with every scope and &, |, ! filters, a
#             base that does not exist (noSuchObject), -z 1
#             (sizeLimitExceeded), the root DSE as the admin, and two
#             searches on one connection (-f)
#   modify    ldapadd (one entry exists: entryAlreadyExists), ldapmodify
#             (replace, add, delete, two changes in one request, a delete of
#             a missing attribute: noSuchAttribute), ldapmodrdn,
#             ldapcompare (compareTrue, compareFalse), ldapdelete (one
#             missing: noSuchObject), ldappasswd (Password Modify,
#             1.3.6.1.4.1.4203.1.11.1, as the user, old and new password),
#             ldapwhoami with the new password
#   starttls  ldapsearch -ZZ as the admin and ldapwhoami -ZZ anonymously:
#             StartTLS (1.3.6.1.4.1.1466.20037) answered success, then TLS
#             (the admin's password is not in the capture)
# Every scenario is captured alone by tcpdump on lo, host 127.0.0.49 and
# port 1389.
#
# What the manifest says comes from the clients' output and exit codes
# (their stdout and stderr unbuffered into one stream, so in order:
# "ldap_bind: Invalid credentials (49)", "result: 32 No such object",
# "adding new entry", "ldap_add: Already exists (68)", -v's "Compare
# Result: Compare True (6)", "Rename Result:", "Result: Success (0)");
# each invocation's results are checked against what the script meant to
# provoke and against the client's exit code (its last error). Each capture
# is then read by tshark (-d tcp.port==1389,ldap: messageID, protocolOp,
# resultCode, requestName, the requests' DNs, searchResEntry counts): its
# requests, DNs, results, entries and extended OIDs must be the manifest's, connection by
# connection (for starttls: up to the StartTLS response), and its SYNs the
# connections. A scenario that does not end as scripted fails the run; a
# failed run leaves nothing in OUTDIR. Needs root (tcpdump; slapd started as
# root drops to openldap) and slapd, ldap-utils, openssl, tcpdump, tshark,
# jq, ss, flock and stdbuf (scripts/install-deps.sh). Everything started is
# stopped on exit.
set -euo pipefail

IP=127.0.0.49
PORT=1389
URL=ldap://$IP:$PORT
SUFFIX=dc=example,dc=com
PEOPLE=ou=People,$SUFFIX
ADMIN=cn=admin,$SUFFIX
ADMIN_PASS=adm1n-s3cret
WRONG_PASS=not-the-adm1n-pass
ALICE_PASS=al1ce-pass
BOB_PASS=b0b-old-pass
BOB_NEW_PASS=b0b-new-pass

die() {
	printf 'record-ldap: %s\n' "$*" >&2
	exit 1
}
log() { printf '==> %s\n' "$*" >&2; }

[[ $# -eq 1 && $1 != -* ]] || die "usage: record-ldap.sh OUTDIR"
out=$(realpath -m "$1")
[[ $(id -u) -eq 0 ]] || die "needs root (tcpdump captures on lo)"
PATH=$PATH:/usr/sbin:/sbin
for tool in flock slapd slapadd ldapsearch ldapadd ldapmodify ldapdelete ldapmodrdn ldapcompare ldapwhoami \
	ldappasswd openssl tcpdump tshark jq ss stdbuf dpkg-query; do
	command -v "$tool" >/dev/null || die "$tool is missing (sudo bash scripts/install-deps.sh)"
done
id openldap >/dev/null 2>&1 || die "no openldap user (the slapd package creates it)"
for s in core cosine inetorgperson; do
	[[ -r /etc/ldap/schema/$s.schema ]] || die "/etc/ldap/schema/$s.schema is missing (slapd)"
done

# One run at a time (from any checkout): a second waits for the first's
# server, port and captures to be gone, up to 10 minutes.
mkdir -p /run/lock
exec 9>/run/lock/wirescope-record-ldap.lock
flock -w 600 9 || die "another record-ldap.sh is still running (/run/lock/wirescope-record-ldap.lock)"

# shellcheck source=scripts/lib/proc.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/proc.sh"

WORK=$(mktemp -d /tmp/wirescope-ldap.XXXXXX)
SLAPD_PID=
cleanup() {
	local rc=$?
	set +e
	tcpdump_stop
	stop_pid "$SLAPD_PID"
	if [[ $rc -ne 0 ]]; then
		tail -n 20 "$WORK"/logs/* >&2 2>/dev/null
	fi
	rm -rf "$WORK"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$WORK"/{logs,rec,plan,in}
if ss -H -ltn "( sport = :$PORT )" | awk '{print $4}' | grep -Eq "^($IP|0\.0\.0\.0|\*|\[::\]):$PORT\$"; then
	die "$IP:$PORT is already in use"
fi

# The clients read no configuration but their command line and the
# LDAPTLS_* variables given to them.
export LDAPCONF=/dev/null LDAPRC=wirescope-no-ldaprc
unset LDAPNOINIT LDAPBASE LDAPURI LDAPBINDDN LDAPTLS_REQCERT LDAPTLS_CACERT LDAPTLS_CACERTDIR 2>/dev/null || true

###############################################################################
# Server
###############################################################################

SLAPD_DIR=$WORK/slapd
mkdir -p "$SLAPD_DIR/db"
chmod 711 "$WORK"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
	-keyout "$SLAPD_DIR/key.pem" -out "$SLAPD_DIR/cert.pem" -subj "/CN=$IP" \
	-addext "subjectAltName=IP:$IP" >"$WORK/logs/openssl.out" 2>&1 || die "openssl could not make a certificate"
cat >"$SLAPD_DIR/slapd.conf" <<EOF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
pidfile $SLAPD_DIR/slapd.pid
argsfile $SLAPD_DIR/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
TLSCertificateFile $SLAPD_DIR/cert.pem
TLSCertificateKeyFile $SLAPD_DIR/key.pem
sizelimit 500

database mdb
maxsize 16777216
suffix "$SUFFIX"
rootdn "$ADMIN"
rootpw $ADMIN_PASS
directory $SLAPD_DIR/db
access to attrs=userPassword by self write by anonymous auth by * none
access to * by * read
EOF
person() { # person UID GIVEN SN [PASSWORD]
	printf 'dn: uid=%s,%s\nobjectClass: inetOrgPerson\nuid: %s\ncn: %s %s\ngivenName: %s\nsn: %s\nmail: %s@example.com\n' \
		"$1" "$PEOPLE" "$1" "$2" "$3" "$2" "$3" "$1"
	[[ -z ${4:-} ]] || printf 'userPassword: %s\n' "$4"
	printf '\n'
}
{
	printf 'dn: %s\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n\n' "$SUFFIX"
	printf 'dn: %s\nobjectClass: organizationalUnit\nou: People\n\n' "$PEOPLE"
	person alice Alice Smith "$ALICE_PASS"
	person bob Bob Brown "$BOB_PASS"
	person carol Carol Jones
	person dave Dave Miller
} >"$WORK/in/seed.ldif"
slapadd -f "$SLAPD_DIR/slapd.conf" -l "$WORK/in/seed.ldif" >"$WORK/logs/slapadd.out" 2>&1 ||
	die "slapadd failed: $(cat "$WORK/logs/slapadd.out")"
chown -R openldap:openldap "$SLAPD_DIR"
slapd -u openldap -g openldap -f "$SLAPD_DIR/slapd.conf" -h "$URL/" -d 0 >"$WORK/logs/slapd.log" 2>&1 &
SLAPD_PID=$!
for _ in $(seq 100); do
	ss -H -ltn "( sport = :$PORT )" | grep -q "$IP:$PORT" && break
	kill -0 "$SLAPD_PID" 2>/dev/null || die "slapd exited at start: $(cat "$WORK/logs/slapd.log")"
	sleep 0.1
done
ss -H -ltn "( sport = :$PORT )" | grep -q "$IP:$PORT" || die "slapd does not listen on $IP:$PORT"
version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || die "dpkg-query: $1 is not installed"; }
V_SLAPD=$(version slapd)
V_UTILS=$(version ldap-utils)
V_TSHARK=$(version tshark)
log "slapd $V_SLAPD on $URL (as openldap, $SLAPD_DIR/slapd.conf); ldap-utils $V_UTILS; tshark $V_TSHARK"

###############################################################################
# Scenarios
###############################################################################

REC=$WORK/rec # the scenarios' captures, moved to OUTDIR at the end
SCN=
CONN=0

# scenario NAME DESCRIPTION: start the scenario's capture.
scenario() {
	SCN=$1
	CONN=0
	printf '%s\n' "$1" >>"$WORK/plan/order"
	printf '%s' "$2" >"$WORK/plan/$SCN.description"
	: >"$WORK/plan/$SCN.ops"
	: >"$WORK/plan/$SCN.secrets"
	log "$SCN: $2"
	tcpdump_start "$WORK/logs/tcpdump.err" -i lo -B 65536 -w "$REC/$SCN.pcap" "host $IP and tcp port $PORT" ||
		die "tcpdump did not start: $(cat "$WORK/logs/tcpdump.err")"
}

secret() { printf '%s\n' "$@" >>"$WORK/plan/$SCN.secrets"; }

# parse_client TOOL BINDDN STARTTLS OUTPUT: the operations a client's output
# says it issued, one a line: op, dn, result code ("" none), entries, oid,
# scope, filter. Its bind comes first (after StartTLS with -ZZ), its unbind
# last; a line "error<TAB>why" when the output is not understood.
parse_client() {
	awk -v tool="$1" -v binddn="$2" -v starttls="$3" '
		function push(o, d) { n++; op[n] = o; dn[n] = d; code[n] = 0; ent[n] = 0; oid[n] = ""; sc[n] = ""; fl[n] = "" }
		function paren(s,   c) { c = s; sub(/.*\(/, "", c); sub(/\)$/, "", c); return c }
		function quoted(s,   d) { d = s; sub(/^[^"]*"/, "", d); sub(/"[^"]*$/, "", d); return d }
		function err(why) { if (bad == "") bad = why }
		BEGIN { bindcode = 0; n = 0; entries = 0; total = 0; filter = ""; base = ""; scope = "" }
		/^ldap_start_tls/ { err("StartTLS failed: " $0); next }
		/^ldap_(sasl_)?bind(_s)?: .*\([0-9]+\)$/ { bindcode = paren($0); next }
		tool == "ldapsearch" && /^# base </ {
			base = $0; sub(/^# base </, "", base); scope = base
			sub(/> with scope [a-zA-Z]+$/, "", base); sub(/.*> with scope /, "", scope)
			if (scope == "baseObject") scope = "baseObject"
			else if (scope == "oneLevel") scope = "singleLevel"
			else if (scope == "subtree") scope = "wholeSubtree"
			else err("scope " scope)
			next
		}
		tool == "ldapsearch" && /^# filter: / { filter = substr($0, 11); next }
		tool == "ldapsearch" && /^dn::?( |$)/ { entries++; next }
		tool == "ldapsearch" && /^result: [0-9]+ / {
			push("search", base); code[n] = $2; ent[n] = entries; sc[n] = scope; fl[n] = filter; entries = 0; next
		}
		tool == "ldapsearch" && /^# numEntries: [0-9]+$/ { total += $3; next }
		/^adding new entry "/ { push("add", quoted($0)); next }
		/^modifying entry "/ { push("modify", quoted($0)); next }
		/^deleting entry "/ { push("delete", quoted($0)); next }
		/^Renaming "/ { push("modifyDN", quoted($0)); next }
		tool == "ldapcompare" && /^DN:.*, attr:/ { d = substr($0, 4); sub(/, attr:.*/, "", d); push("compare", d); next }
		/^(ldap_(add|modify|delete|rename|compare): |Compare Result: |Rename Result: ).*\([0-9]+\)$/ {
			if (n == 0) err("a result before any operation: " $0); else code[n] = paren($0); next
		}
		(tool == "ldapwhoami" || tool == "ldappasswd") && /^(Result: |ldap_(extended_operation|whoami|passwd)[a-z_]*: ).*\([0-9]+\)$/ {
			push("extended", "")
			oid[n] = tool == "ldapwhoami" ? "1.3.6.1.4.1.4203.1.11.3" : "1.3.6.1.4.1.4203.1.11.1"
			code[n] = paren($0); next
		}
		END {
			if (tool == "ldapsearch") {
				sum = 0; for (i = 1; i <= n; i++) sum += ent[i]
				if (sum != total) err("printed " sum " entries, numEntries says " total)
			}
			if (bindcode == 0 && n == 0) err("no operation found in its output")
			if (bindcode != 0 && n > 0) err("operations after a failed bind")
			if (bad != "") { printf "error\t%s\n", bad; exit }
			if (starttls) printf "extended\t\t0\t0\t1.3.6.1.4.1.1466.20037\t\t\n"
			printf "bind\t%s\t%s\t0\t\t\t\n", binddn, bindcode
			for (i = 1; i <= n; i++) printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", op[i], dn[i], code[i], ent[i], oid[i], sc[i], fl[i]
			printf "unbind\t\t\t0\t\t\t\n"
		}' "$4"
}

# cl "WANT" TOOL ARGS...: one client invocation (one connection): TOOL -x -H
# URL ARGS. WANT: the result codes its operations must have had, in order,
# StartTLS and unbind left out ("0 0 68": a bind and two operations). Its
# operations go to the scenario's plan.
cl() {
	local want=$1 tool=$2
	shift 2
	local binddn="" starttls=0 i
	local -a args=("$@")
	for ((i = 0; i < ${#args[@]}; i++)); do
		case ${args[i]} in
		-D) binddn=${args[i + 1]} ;;
		-ZZ) starttls=1 ;;
		esac
	done
	CONN=$((CONN + 1))
	local o=$WORK/logs/$SCN-$CONN.out rc=0
	timeout 30 stdbuf -o0 -e0 "$tool" -x -H "$URL" "$@" >"$o" 2>&1 || rc=$?
	((rc != 124)) || die "$SCN: $tool $* timed out"
	parse_client "$tool" "$binddn" "$starttls" "$o" >"$WORK/ops"
	if [[ $(head -c 6 "$WORK/ops") == error$'\t' ]]; then
		die "$SCN: $tool $*: $(cut -f2 "$WORK/ops"); it printed: $(cat "$o")"
	fi
	local got last
	got=$(awk -F'\t' '$1 != "unbind" && !($1 == "extended" && $5 == "1.3.6.1.4.1.1466.20037") { print $3 }' "$WORK/ops" | paste -sd' ' -)
	[[ $got == "$want" ]] || die "$SCN: $tool $*: results $got, want $want; it printed: $(cat "$o")"
	# The exit code is the last error's result code (ldapcompare: 5 or 6).
	last=$(awk -F'\t' '$3 != "" && $3 != 0 { c = $3 } END { print c + 0 }' "$WORK/ops")
	[[ $rc == "$last" ]] || die "$SCN: $tool $* exited $rc, its last error was $last: $(cat "$o")"
	# connection, client, the op's fields, encrypted (after StartTLS)
	awk -F'\t' -v OFS='\t' -v conn="$CONN" -v tool="$tool" -v tls="$starttls" '
		{ enc = (tls && !($1 == "extended" && $5 == "1.3.6.1.4.1.1466.20037")) ? 1 : 0
		  print conn, tool, $1, $2, $3, $4, $5, $6, $7, enc }' "$WORK/ops" >>"$WORK/plan/$SCN.ops"
	printf '    %-11s %-44s %s\n' "$tool" "$(printf '%s ' "$@" | cut -c1-44)" \
		"$(awk -F'\t' '{ printf "%s%s", sep, $1 ($3 != "" ? "=" $3 : "") ($1 == "search" ? "/" $4 : ""); sep = " " }' "$WORK/ops")" >&2
}

# tshark_reqs PCAP: tshark's reading of the capture, one line per request in
# order: connection (tcp.stream + 1), op, DN (the bind's name, the search's
# baseObject, modify's object, delRequest, the entry of add, modDN and
# compare; "" for the others), result code ("" unanswered), entries
# (search), oid (extended).
tshark_reqs() {
	tshark -r "$1" -d tcp.port==$PORT,ldap -Y ldap -T fields -e tcp.stream -e ldap.messageID -e ldap.protocolOp \
		-e ldap.resultCode -e ldap.requestName -e ldap.name -e ldap.baseObject -e ldap.object -e ldap.delRequest \
		-e ldap.entry -E occurrence=a -E aggregator=';' 2>"$WORK/logs/tshark.err" |
		awk -F'\t' -v OFS='\t' '
		BEGIN {
			split("0 bind 2 unbind 3 search 6 modify 8 add 10 delete 12 modifyDN 14 compare 16 abandon 23 extended", a, " ")
			for (i = 1; i < 22; i += 2) req[a[i]] = a[i + 1]
			split("1 5 7 9 11 13 15 24", b, " "); for (i in b) hasres[b[i]] = 1
			# the field holding a request'"'"'s DN: $6 name ... $10 entry
			split("0 6 3 7 6 8 10 9 8 10 12 10 14 10", c, " ")
			for (i = 1; i < 14; i += 2) dnf[c[i]] = c[i + 1]
			n = 0
		}
		{
			no = split($3, ops, ";"); split($2, ids, ";"); split($4, rcs, ";"); split($5, oids, ";"); ri = 1; oi = 1
			for (f = 6; f <= 10; f++) { nd[f] = split($f, dv, ";"); for (j = 1; j <= nd[f]; j++) dns[f, j] = dv[j]; di[f] = 1 }
			for (i = 1; i <= no; i++) {
				k = $1 SUBSEP ids[i]; o = ops[i]
				if (o in req) {
					n++; conn[n] = $1 + 1; rop[n] = req[o]; res[n] = ""; ent[n] = 0; roid[n] = ""; rdn[n] = ""; idx[k] = n
					if (o == 23) roid[n] = oids[oi++]
					if (o in dnf) { f = dnf[o]; if (di[f] <= nd[f]) rdn[n] = dns[f, di[f]]; di[f]++ }
				} else if (o == 4) {
					if (k in idx) ent[idx[k]]++; else orphan++
				} else if (o in hasres) {
					if (k in idx) res[idx[k]] = rcs[ri]; else orphan++
					ri++
				} else other++
			}
		}
		END {
			for (i = 1; i <= n; i++) print conn[i], rop[i], rdn[i], res[i], ent[i], roid[i]
			if (orphan) print "error", orphan " responses to no request"
			if (other) print "error", other " messages neither requests nor known responses"
		}'
}

# end_scenario: stop the capture; check it against the plan with tshark.
end_scenario() {
	tcpdump_stop 0.3
	local pcap=$REC/$SCN.pcap
	grep -qE '^0 packets dropped by kernel' "$WORK/logs/tcpdump.err" ||
		die "$SCN: tcpdump dropped packets: $(cat "$WORK/logs/tcpdump.err")"
	local syns
	syns=$(tshark -r "$pcap" -Y 'tcp.flags.syn == 1 && tcp.flags.ack == 0' 2>/dev/null | wc -l)
	[[ $syns == "$CONN" ]] || die "$SCN: $syns connections in the capture, $CONN client invocations"
	tshark_reqs "$pcap" >"$WORK/plan/$SCN.tshark"
	! grep -q '^error' "$WORK/plan/$SCN.tshark" || die "$SCN: tshark: $(grep '^error' "$WORK/plan/$SCN.tshark")"
	# The manifest's operations in tshark's terms, those sent in TLS left out.
	awk -F'\t' -v OFS='\t' '$10 == 0 { print $1, $3, $4, $5, ($3 == "search" ? $6 : 0), $7 }' \
		"$WORK/plan/$SCN.ops" >"$WORK/plan/$SCN.want"
	diff -u "$WORK/plan/$SCN.want" "$WORK/plan/$SCN.tshark" >"$WORK/logs/tshark.diff" ||
		die "$SCN: tshark's reading (+) differs from the manifest (-): $(cat "$WORK/logs/tshark.diff")"
	local enc=false
	if awk -F'\t' '$10 == 1 { f = 1 } END { exit !f }' "$WORK/plan/$SCN.ops"; then
		local hellos
		hellos=$(tshark -r "$pcap" -d tcp.port==$PORT,ldap -Y 'tls.handshake.type == 1' 2>/dev/null | wc -l)
		local starts
		starts=$(awk -F'\t' '$7 == "1.3.6.1.4.1.1466.20037" { n++ } END { print n + 0 }' "$WORK/plan/$SCN.ops")
		[[ $hellos == "$starts" ]] || die "$SCN: $hellos TLS ClientHellos after $starts StartTLS"
		enc=true
	fi
	printf '%s' "$enc" >"$WORK/plan/$SCN.encrypted"
	# The passwords: in the clear in the capture, or, after StartTLS, not at all.
	local s
	while IFS= read -r s; do
		if [[ $enc == true ]]; then
			! grep -aqF -- "$s" "$pcap" || die "$SCN: the password $s is in the clear in a TLS capture"
		else
			grep -aqF -- "$s" "$pcap" || die "$SCN: the password $s is not in the capture"
		fi
	done <"$WORK/plan/$SCN.secrets"
	printf '    %s.pcap: %s packets, %s connections, %s operations (%s read by tshark)\n' "$SCN" \
		"$(tshark -r "$pcap" 2>/dev/null | wc -l)" "$CONN" "$(wc -l <"$WORK/plan/$SCN.ops")" \
		"$(wc -l <"$WORK/plan/$SCN.tshark")" >&2
	SCN=
}

uid() { printf 'uid=%s,%s' "$1" "$PEOPLE"; }

###############################################################################

scenario bind "simple binds: ldapwhoami as the admin (success), with a wrong password (invalidCredentials, then unbind), anonymously (empty DN), as a user; Who am I? (1.3.6.1.4.1.4203.1.11.3) after each good bind"
cl "0 0" ldapwhoami -v -D "$ADMIN" -w "$ADMIN_PASS"
cl "49" ldapwhoami -v -D "$ADMIN" -w "$WRONG_PASS"
cl "0 0" ldapwhoami -v
cl "0 0" ldapwhoami -v -D "$(uid alice)" -w "$ALICE_PASS"
secret "$ADMIN_PASS" "$WRONG_PASS" "$ALICE_PASS"
end_scenario

scenario search "anonymous ldapsearch: the whole tree, scopes base/one/sub, filters with &, | and !, a base that does not exist (noSuchObject), -z 1 over four entries (sizeLimitExceeded); as the admin: the root DSE, and two searches on one connection (-f)"
cl "0 0" ldapsearch -o ldif-wrap=no -b "$SUFFIX"
cl "0 0" ldapsearch -o ldif-wrap=no -s base -b "$(uid alice)"
cl "0 0" ldapsearch -o ldif-wrap=no -s one -b "$PEOPLE" '(objectClass=inetOrgPerson)' cn mail
cl "0 0" ldapsearch -o ldif-wrap=no -s sub -b "$SUFFIX" '(&(objectClass=inetOrgPerson)(|(uid=alice)(uid=bob)))' uid
cl "0 0" ldapsearch -o ldif-wrap=no -b "$SUFFIX" '(&(objectClass=person)(!(uid=alice)))' cn
cl "0 32" ldapsearch -o ldif-wrap=no -b "ou=Nowhere,$SUFFIX"
cl "0 4" ldapsearch -o ldif-wrap=no -z 1 -s one -b "$PEOPLE" '(objectClass=inetOrgPerson)'
cl "0 0" ldapsearch -o ldif-wrap=no -D "$ADMIN" -w "$ADMIN_PASS" -s base -b "" '(objectClass=*)' +
printf '%s\n' alice nobody >"$WORK/in/uids"
cl "0 0 0" ldapsearch -o ldif-wrap=no -D "$ADMIN" -w "$ADMIN_PASS" -b "$PEOPLE" -f "$WORK/in/uids" '(uid=%s)' cn
secret "$ADMIN_PASS"
# What the searches must have returned: the tree has 6 entries, 4 people.
want_entries="6 1 4 2 3 0 1 1 1 0"
got_entries=$(awk -F'\t' '$3 == "search" { print $6 }' "$WORK/plan/$SCN.ops" | paste -sd' ' -)
[[ $got_entries == "$want_entries" ]] || die "$SCN: entries $got_entries, want $want_entries"
end_scenario

scenario modify "as the admin: ldapadd of 3 entries (the third exists: entryAlreadyExists), ldapmodify (replace, add, delete, replace+add in one request, delete of a missing attribute: noSuchAttribute), ldapmodrdn, ldapdelete of it and of a missing entry (noSuchObject); anonymous ldapcompare (compareTrue, compareFalse); ldappasswd as bob (Password Modify 1.3.6.1.4.1.4203.1.11.1, old and new password), ldapwhoami with the new one"
{
	person erin Erin Clark
	printf 'dn: uid=frank,%s\nobjectClass: inetOrgPerson\nuid: frank\ncn: Frank Hall\nsn: Hall\ndescription: temporary\n\n' "$PEOPLE"
	person alice Alice Smith
} >"$WORK/in/add.ldif"
cl "0 0 0 68" ldapadd -D "$ADMIN" -w "$ADMIN_PASS" -c -f "$WORK/in/add.ldif"
cat >"$WORK/in/modify.ldif" <<EOF
dn: $(uid erin)
changetype: modify
replace: sn
sn: Clarke

dn: $(uid erin)
changetype: modify
add: telephoneNumber
telephoneNumber: +1 555 0100

dn: $(uid frank)
changetype: modify
delete: description

dn: $(uid erin)
changetype: modify
replace: mail
mail: erin.clarke@example.com
-
add: title
title: Engineer

dn: $(uid frank)
changetype: modify
delete: description
EOF
cl "0 0 0 0 0 16" ldapmodify -D "$ADMIN" -w "$ADMIN_PASS" -c -f "$WORK/in/modify.ldif"
cl "0 0" ldapmodrdn -v -D "$ADMIN" -w "$ADMIN_PASS" -r "$(uid frank)" uid=frankie
cl "0 6" ldapcompare -v "$(uid alice)" sn:Smith
cl "0 5" ldapcompare -v "$(uid alice)" sn:Jones
cl "0 0 32" ldapdelete -v -D "$ADMIN" -w "$ADMIN_PASS" -c "$(uid frankie)" "$(uid ghost)"
cl "0 0" ldappasswd -v -D "$(uid bob)" -w "$BOB_PASS" -a "$BOB_PASS" -s "$BOB_NEW_PASS"
cl "0 0" ldapwhoami -v -D "$(uid bob)" -w "$BOB_NEW_PASS"
secret "$ADMIN_PASS" "$BOB_PASS" "$BOB_NEW_PASS"
end_scenario

scenario starttls "StartTLS (1.3.6.1.4.1.1466.20037, -ZZ: required) answered success, then TLS (the self-signed certificate as the CA): ldapsearch as the admin, ldapwhoami anonymously; tshark reads LDAP up to the StartTLS response"
export LDAPTLS_CACERT=$SLAPD_DIR/cert.pem
cl "0 0" ldapsearch -ZZ -o ldif-wrap=no -D "$ADMIN" -w "$ADMIN_PASS" \
	-b "$SUFFIX" '(objectClass=inetOrgPerson)' uid
cl "0 0" ldapwhoami -ZZ -v
unset LDAPTLS_CACERT
secret "$ADMIN_PASS"
end_scenario

###############################################################################
# The manifest
###############################################################################

scenarios=()
while read -r scn; do
	tshark_ops=$(cut -f2 "$WORK/plan/$scn.tshark" | LC_ALL=C sort | uniq -c |
		jq -Rn '[inputs | capture("^ *(?<n>[0-9]+) (?<op>.+)$") | {key: .op, value: (.n | tonumber)}] | from_entries')
	scenarios+=("$(jq -n --arg name "$scn" --rawfile desc "$WORK/plan/$scn.description" \
		--rawfile ops "$WORK/plan/$scn.ops" --rawfile secrets "$WORK/plan/$scn.secrets" \
		--argjson conns "$(awk -F'\t' '{ print $1 }' "$WORK/plan/$scn.ops" | sort -u | wc -l)" \
		--argjson tshark "$tshark_ops" --argjson enc "$(cat "$WORK/plan/$scn.encrypted")" \
		--arg ip "$IP" --argjson port "$PORT" '
		def rcname: {"0": "success", "1": "operationsError", "2": "protocolError", "3": "timeLimitExceeded",
			"4": "sizeLimitExceeded", "5": "compareFalse", "6": "compareTrue", "7": "authMethodNotSupported",
			"8": "strongerAuthRequired", "10": "referral", "11": "adminLimitExceeded",
			"12": "unavailableCriticalExtension", "13": "confidentialityRequired", "14": "saslBindInProgress",
			"16": "noSuchAttribute", "17": "undefinedAttributeType", "18": "inappropriateMatching",
			"19": "constraintViolation", "20": "attributeOrValueExists", "21": "invalidAttributeSyntax",
			"32": "noSuchObject", "33": "aliasProblem", "34": "invalidDNSyntax",
			"36": "aliasDereferencingProblem", "48": "inappropriateAuthentication", "49": "invalidCredentials",
			"50": "insufficientAccessRights", "51": "busy", "52": "unavailable", "53": "unwillingToPerform",
			"54": "loopDetect", "64": "namingViolation", "65": "objectClassViolation",
			"66": "notAllowedOnNonLeaf", "67": "notAllowedOnRDN", "68": "entryAlreadyExists",
			"69": "objectClassModsProhibited", "71": "affectsMultipleDSAs", "80": "other"}[.]
			// error("no RFC 4511 name for result code \(.)");
		{name: $name, description: $desc, pcap: ($name + ".pcap"), ip: $ip, port: $port, connections: $conns,
		 operations: ($ops | split("\n") | map(select(. != "") | split("\t") |
			{connection: (.[0] | tonumber), client: .[1], op: .[2], dn: .[3],
			 result: (if .[4] == "" then "" else (.[4] | rcname) end)}
			+ (if .[2] == "search" then {entries: (.[5] | tonumber), scope: .[7], filter: .[8]} else {} end)
			+ (if .[2] == "extended" then {oid: .[6]} else {} end)
			+ (if .[9] == "1" then {encrypted: true} else {} end))),
		 tshark_ops: $tshark, encrypted_after_starttls: $enc,
		 secrets: ($secrets | split("\n") | map(select(. != "")) | unique)}')")
done <"$WORK/plan/order"
printf '%s\n' "${scenarios[@]}" | jq -s --arg slapd "$V_SLAPD" --arg utils "$V_UTILS" --arg tshark "$V_TSHARK" \
	--arg p1 "$ADMIN_PASS" --arg p2 "$WRONG_PASS" --arg p3 "$ALICE_PASS" --arg p4 "$BOB_PASS" --arg p5 "$BOB_NEW_PASS" '
	{recorded_by: "scripts/record-ldap.sh", versions: {slapd: $slapd, "ldap-utils": $utils, tshark: $tshark},
	 secrets: ([$p1, $p2, $p3, $p4, $p5] | unique), scenarios: .}
	| if (.scenarios | map(.secrets[]) | unique) - .secrets != [] then error("a scenario secret missing at the top") else . end' \
	>"$REC/manifest.json"
chmod 644 "$REC"/*.pcap "$REC/manifest.json"

mkdir -p "$out"
rm -f "$out"/*.pcap "$out/manifest.json"
for f in "$REC"/*; do
	mv -f "$f" "$out/"
done
log "$out: $(jq '.scenarios | length' "$out/manifest.json") scenarios, $(jq '[.scenarios[].operations[]] | length' "$out/manifest.json") operations"
