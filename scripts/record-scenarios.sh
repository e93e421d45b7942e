#!/usr/bin/env bash
# record-scenarios.sh — record the eval scenarios under evals/scenarios/ from
# real servers on loopback (see evals/README.md).
#
#   sudo bash scripts/record-scenarios.sh            all of them, one after another
#   sudo bash scripts/record-scenarios.sh NAME...    only these
#   bash scripts/record-scenarios.sh -l              list them
#
# Each scenario's record.sh uses its own 127.0.N.0/24 block and ports, checks
# its capture with tshark against its plan and replaces its files only when
# every check has passed; a failed scenario leaves its files as they were and
# the others are still recorded. Exits non-zero if any failed.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=$ROOT/evals/scenarios

mapfile -t all < <(find "$DIR" -mindepth 2 -maxdepth 2 -name record.sh -printf '%h\n' | xargs -r -n1 basename | sort)
[[ ${#all[@]} -gt 0 ]] || {
	echo "record-scenarios: no scenarios under $DIR" >&2
	exit 1
}

if [[ ${1:-} == -l ]]; then
	printf '%s\n' "${all[@]}"
	exit 0
fi
if [[ ${1:-} == -h || ${1:-} == --help ]]; then
	sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
	exit 0
fi

names=("$@")
[[ ${#names[@]} -gt 0 ]] || names=("${all[@]}")
for name in "${names[@]}"; do
	[[ -f $DIR/$name/record.sh ]] || {
		echo "record-scenarios: unknown scenario $name (have: ${all[*]})" >&2
		exit 2
	}
done
[[ $EUID -eq 0 ]] || {
	echo "record-scenarios: must run as root (tcpdump, dnsmasq on port 53)" >&2
	exit 1
}
bash "$ROOT/scripts/install-deps.sh"

failed=()
for name in "${names[@]}"; do
	printf '\n### %s\n' "$name" >&2
	start=$SECONDS
	if bash "$DIR/$name/record.sh"; then
		printf '### %s: recorded in %d s\n' "$name" $((SECONDS - start)) >&2
	else
		failed+=("$name")
		printf '### %s: FAILED (its files are unchanged)\n' "$name" >&2
	fi
done

printf '\n' >&2
for name in "${names[@]}"; do
	t=$DIR/$name/truth.json
	[[ -f $t ]] || continue
	jq -r --arg name "$name" '"\($name): \(.capture.bytes) bytes, \(.capture.duration_s) s, \(.http.requests) HTTP requests \(.http.statuses | tojson), \(.dns.queries) DNS queries \(.dns.rcodes | tojson), \(.tcp.refused) refused; \(.event.name) at \(.event.at)"' "$t" >&2
done
if [[ ${#failed[@]} -gt 0 ]]; then
	echo "record-scenarios: failed: ${failed[*]}" >&2
	exit 1
fi
