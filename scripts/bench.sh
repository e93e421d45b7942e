#!/usr/bin/env bash
# bench.sh — what `make bench` runs: the Go micro-benchmarks across the
# repository, then scripts/benchcmp, which measures `wirescope dissect` against
# tshark in the same run on three captures — `tshark -q -z http,tree` on a
# 50,000-pair HTTP/1.1 capture (nginx, curl), `tshark -q -z http2,tree` on
# a 50,000-stream HTTP/2 capture (nghttpd, h2load: 10 connections, 10 streams
# in flight on each) and `tshark -o tls.keylog_file:K -q -z http,tree` against
# `wirescope dissect --tls-keylog K` on a 50,000-pair HTTPS capture (TLS 1.2,
# nginx, h2load --h1 on 16 connections, with its key log K), and on three
# data-store loads with `tshark -d tcp.port==P,PROTO -q -z io,phs`:
# redis-benchmark (SET and GET, 100,000 of each), pgbench -S -M extended
# (200,000 transactions) and mysqlslap (200,000 queries against MariaDB), and
# with `-d tcp.port==19092,kafka` a Kafka load (a franz-go producer and
# consumer against franz-go's kfake broker, scripts/record-kafka.sh --bulk) — and
# prints the wall-time and peak-RSS ratios of each (see scripts/benchcmp/main.go), the
# agent against tcpdump (scripts/bench-agent.sh), the agent's TLS plaintext
# probes' cost to wrk over HTTPS to nginx (scripts/bench-tls.sh), the hub with 1, 10 and
# 50 agents (test/hubscale: about 40 s on 2 cores), and the hub's answers to
# 50 MCP clients at once (test/hubload: about 1 min).
#
# Usage: scripts/bench.sh [benchcmp flags: -runs N -only http1|http2|tls|redis|postgres|mysql|kafka -capture PATH
#                          -h2-capture PATH -tls-capture PATH -rerecord -bin PATH -strict]
#
# On a fresh Debian machine it installs what benchcmp needs (tshark, tcpdump,
# nginx-light, curl, nghttp2-server, nghttp2-client, openssl, jq, iproute2,
# redis-server, postgresql, mariadb-server and -client) when missing;
# recording the captures the first time needs root (scripts/record-h2load.sh
# records the HTTP/2 one, scripts/record-tls.sh --bulk the HTTPS one, and
# scripts/record-{redis,postgres,mysql}.sh --bulk the data stores'). Go itself must already be installed.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v go >/dev/null; then
	echo "bench.sh: go is not on PATH; install Go (see go.mod for the version)" >&2
	exit 1
fi

# nginx and nghttpd live in /usr/sbin, which a non-root PATH may lack.
missing=()
for tool in tshark tcpdump nginx curl nghttpd h2load openssl jq ss redis-server redis-benchmark pgbench mariadbd mysqlslap; do
	if ! command -v "$tool" >/dev/null && ! [ -x "/usr/sbin/$tool" ]; then
		missing+=("$tool")
	fi
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "bench.sh: missing ${missing[*]}; installing them (scripts/install-deps.sh)" >&2
	sudo=()
	if [ "$(id -u)" -ne 0 ]; then
		command -v sudo >/dev/null || { echo "bench.sh: not root and no sudo: install ${missing[*]} first" >&2; exit 1; }
		sudo=(sudo)
	fi
	"${sudo[@]}" bash scripts/install-deps.sh
fi

echo "== go micro-benchmarks"
go test -run '^$' -bench . -benchmem -count 1 ./...

echo
echo "== wirescope vs tshark: HTTP/1.1, HTTP/2, HTTPS (TLS 1.2, key log), Redis, PostgreSQL, MySQL, Kafka"
go run ./scripts/benchcmp "$@"

echo
# wirescope agent against tcpdump -w on the same veth traffic (needs root;
# it says so and skips otherwise). See scripts/bench-agent.sh -h.
bash scripts/bench-agent.sh

echo
# The agent's TLS plaintext probes (uprobes on OpenSSL): wrk over HTTPS to
# nginx without the agent, with it capturing packets only, with the probes
# on both ends and on nginx alone, interleaved run by run (needs root; it
# says so and skips otherwise). See scripts/bench-tls.sh -h; RUNS and SECS
# as for bench-agent.sh.
bash scripts/bench-tls.sh

echo
# The hub reading 1, 10 and 50 agents (real agent API, real hub binary,
# mcp-go's client); see test/hubscale/main.go. HUBSCALE_FLAGS passes flags
# (-runs, -calls-per-node, -agents).
echo "== hub scaling: 1, 10, 50 agents"
# shellcheck disable=SC2086
go run ./test/hubscale ${HUBSCALE_FLAGS:-}

echo
# 50 MCP clients (mcp-go, streamable HTTP, a session each) calling
# search_calls and summarize_traffic in a closed loop on the hub, on the same
# machine; see test/hubload/main.go. HUBLOAD_FLAGS passes flags (-clients,
# -secs, -runs, -pprof DIR).
echo "== hub load: 50 clients calling search_calls and summarize_traffic (target: >= 1000 calls/s, p99 < 150 ms, on 2 cores)"
# shellcheck disable=SC2086
go run ./test/hubload ${HUBLOAD_FLAGS:-}

echo
# The same load with every answer computed rather than remembered: each
# question in 100,000 variants (windows ending 1 ms, 2 ms, … earlier), as a
# live capture's relative windows make them.
echo "== hub load, every answer computed (-distinct 100000; same target)"
# shellcheck disable=SC2086
go run ./test/hubload -distinct 100000 ${HUBLOAD_FLAGS:-}
