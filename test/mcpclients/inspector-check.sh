#!/usr/bin/env bash
# inspector-check.sh — list a stdio MCP server's tools with the MCP Inspector
# CLI in strict mode and fail on any tool-schema portability finding.
#
#   bash test/mcpclients/inspector-check.sh BINARY [SERVER ARGS…]
#
# SERVER ARGS default to "mcp --demo" (wirescope serving its built-in capture).
#
# What strict mode does (inspector 2.4.0 and later; read in
# clients/cli/build/index.js): after tools/list it lints every tool's
# inputSchema and outputSchema and, with --strict, prints each finding on
# stderr as
#     Warning: tool "NAME"      (or Error: tool "NAME")
#       Path: … / Issue: … / Suggestion: …
# followed by a summary line "N errors, N warnings across N tools.". It exits
# 6 (SCHEMA_UNPORTABLE) only when a finding is error-severity: warnings leave
# the exit code 0. So this script fails on a non-zero exit code and also on
# any finding or summary in stderr. Without --strict, the inspector prints
# only "Schema portability: … Re-run with --strict for details."; that line
# fails this script too.
#
# Inspector 2.x needs Node >= 22.19. `make deps` (scripts/install-node.sh)
# installs Node 22 from the npm registry at .cache/node/bin/node, which the
# Makefile puts first on PATH; INSPECTOR_NODE overrides which node runs the
# inspector.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ $# -ge 1 ] || { echo "usage: $0 BINARY [SERVER ARGS…]" >&2; exit 2; }
bin=$1
shift
[ $# -gt 0 ] || set -- mcp --demo

launcher=$here/node_modules/@modelcontextprotocol/inspector/clients/launcher/build/index.js
if [ ! -f "$launcher" ]; then
	echo "inspector-check: FAIL: $launcher is missing: run make npm-deps (npm ci --prefix test/mcpclients)" >&2
	exit 1
fi

# node_version_ok NODE: whether NODE is at least 22.19.
node_version_ok() {
	"$1" -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 22 || (a === 22 && b >= 19) ? 0 : 1)' 2>/dev/null
}
node=${INSPECTOR_NODE:-}
if [ -z "$node" ]; then
	for candidate in "$(command -v node || true)" "$here/../../.cache/node/bin/node"; do
		if [ -n "$candidate" ] && [ -x "$candidate" ] && node_version_ok "$candidate"; then
			node=$candidate
			break
		fi
	done
fi
if [ -z "$node" ] || ! node_version_ok "$node"; then
	echo "inspector-check: FAIL: no Node >= 22.19 for the inspector: run make deps (scripts/install-node.sh" \
		"installs one at .cache/node/bin/node), or set INSPECTOR_NODE" >&2
	exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export MCP_CATALOG_PATH=$work/catalog.json # keep the inspector away from ~/.mcp-inspector

echo "inspector-check: inspector $("$node" "$launcher" --cli --version 2>/dev/null || echo '?') on node $("$node" --version)"
echo "inspector-check: $bin $* (stdio): tools/list --strict"
rc=0
timeout 120 "$node" "$launcher" --cli --method tools/list --strict -- "$bin" "$@" >"$work/out.json" 2>"$work/err.txt" || rc=$?

fail=""
if [ "$rc" -ne 0 ]; then
	case $rc in
	6) fail="exit code 6: error-severity schema portability findings (--strict)" ;;
	124) fail="timed out after 120 s" ;;
	*) fail="exit code $rc" ;;
	esac
fi
findings=$(grep -E '^(Warning|Error): tool "|^Schema portability:|^[0-9]+ errors?, [0-9]+ warnings? across' "$work/err.txt" || true)
if [ -n "$findings" ]; then
	fail="${fail:+$fail; }schema portability findings on stderr"
fi
# The listing itself must be there: JSON with the tools.
tools=$("$node" -e '
	const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
	if (!Array.isArray(r.tools)) throw new Error("no tools array");
	console.log(r.tools.map((t) => t.name).sort().join(" "));
' "$work/out.json" 2>&1) || fail="${fail:+$fail; }stdout is not a tools/list result: $tools"

if [ -n "$fail" ]; then
	echo "inspector-check: FAIL: $fail" >&2
	echo "--- inspector stderr:" >&2
	cat "$work/err.txt" >&2
	echo "--- inspector stdout (first 60 lines):" >&2
	head -n 60 "$work/out.json" >&2
	exit 1
fi
echo "inspector-check: tools: $tools"
echo "inspector-check: PASS: no schema portability warnings or errors"
