#!/usr/bin/env bash
# k8s-env.sh start|stop — the real etcd + kube-apiserver (and kubectl, helm)
# that the chart tests (charts/) run against, from ../shared/k8s/k8s-testenv.sh.
#
#   start  build the binaries if they are not cached (≈6 min on 2 cores, once:
#          $HOME/.cache/k8s-testbin/<version>), start the apiserver unless one
#          is running already (then it is reused, and stop leaves it alone),
#          and write the environment to .cache/k8s/env for the Makefile:
#          KUBECONFIG, K8S_TEST_APISERVER, K8S_BIN_DIR, PATH.
#   stop   stop the apiserver if start started it.
#
# Env: K8S_TESTENV (default ../shared/k8s/k8s-testenv.sh beside the clone),
# HELM_VERSION (default v3.21.4), and k8s-testenv.sh's own (K8S_VERSION,
# K8S_BIN_DIR, K8S_STATE_DIR, APISERVER_PORT).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
testenv=${K8S_TESTENV:-$root/../shared/k8s/k8s-testenv.sh}
dir=$root/.cache/k8s
envfile=$dir/env
owned=$dir/started-here
export HELM_VERSION=${HELM_VERSION:-v3.21.4}
export K8S_VERSION=${K8S_VERSION:-v1.37.1}
export K8S_BIN_DIR=${K8S_BIN_DIR:-$HOME/.cache/k8s-testbin/$K8S_VERSION}
export PATH=$PATH:/usr/local/go/bin

log() { echo "[k8s-env] $*" >&2; }

# running says whether the apiserver whose env k8s-testenv.sh recorded
# answers /readyz.
running() {
	local env server
	env=$(bash "$testenv" env 2>/dev/null) || return 1
	server=$(sed -n 's/^export K8S_TEST_APISERVER=//p' <<<"$env")
	[ -n "$server" ] && curl -ksf --max-time 5 "$server/readyz" >/dev/null 2>&1
}

start() {
	mkdir -p "$dir"
	if [ ! -f "$testenv" ]; then
		log "no $testenv: the tests that need a kube-apiserver will skip"
		echo "# k8s-env.sh: no k8s-testenv.sh at $testenv" >"$envfile"
		return 0
	fi
	# The build and the apiserver need them (TLS certificates, /readyz).
	if ! command -v openssl >/dev/null || ! command -v curl >/dev/null; then
		bash "$root/scripts/install-deps.sh"
	fi
	rm -f "$owned"
	local was_running=
	running && was_running=1
	# One build at a time on this machine: a second start waits for the first.
	mkdir -p "$K8S_BIN_DIR"
	local out
	# -o: the etcd and apiserver it leaves running must not hold the lock.
	out=$(flock -o "$K8S_BIN_DIR/.k8s-env.lock" bash "$testenv" start)
	if [ -z "$was_running" ]; then
		touch "$owned"
	else
		log "reusing the kube-apiserver already running (stop will leave it)"
	fi
	{
		echo "$out"
		echo "export K8S_BIN_DIR=$K8S_BIN_DIR"
		# The tests that need the apiserver fail rather than skip from here.
		echo "export K8S_ENV_REQUIRED=1"
	} >"$envfile"
	log "environment in ${envfile#"$root"/}"
}

stop() {
	if [ -f "$owned" ]; then
		bash "$testenv" stop
		rm -f "$owned"
	else
		log "leaving the kube-apiserver running: this script did not start it"
	fi
}

case "${1:-}" in
start) start ;;
stop) stop ;;
*)
	echo "usage: $0 start|stop" >&2
	exit 2
	;;
esac
