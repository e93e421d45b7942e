# shellcheck shell=bash
# scripts/lib/proc.sh — process helpers for the recording scripts. Sourced.

# stop_pid PID: TERM a process the script started (and its children), wait
# up to 5 s, KILL it if needed, and reap it. An empty PID does nothing.
stop_pid() {
	local pid=$1
	[[ -n $pid ]] || return 0
	if kill -0 "$pid" 2>/dev/null; then
		pkill -TERM -P "$pid" 2>/dev/null || true
		kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
	fi
	wait "$pid" 2>/dev/null || true
}

# tcpdump_start ERRLOG TCPDUMP-ARGS...: start tcpdump in the background with
# --immediate-mode (packets still in the ring buffer's current block are
# otherwise lost when tcpdump is interrupted), -s 0 (whole packets: lo's
# segments reach 64 KiB), -U and -Z root (it writes as root, into directories
# only root may write), plus the arguments given (-i, -w, -B, the filter), its
# stderr into ERRLOG. Give -B (KiB): with -s 0 the default 2 MiB ring holds
# about eight 256 KiB frames, and a burst on a loaded machine overflows it
# (a CI run lost 2 of an LDAP scenario's 148 packets so). Sets TCPDUMP_PID and returns once tcpdump listens;
# returns 1 if it did not start.
TCPDUMP_PID=
tcpdump_start() {
	local errlog=$1
	shift
	: >"$errlog"
	tcpdump --immediate-mode -s 0 -U -Z root "$@" 2>"$errlog" &
	TCPDUMP_PID=$!
	for _ in $(seq 100); do
		grep -q 'listening on' "$errlog" && return 0
		kill -0 "$TCPDUMP_PID" 2>/dev/null || break
		sleep 0.05
	done
	return 1
}

# tcpdump_stop [SETTLE]: wait SETTLE seconds (default 0) for the last packets
# to reach tcpdump, stop it (SIGINT: it writes what it holds and prints its
# counts on stderr) and reap it. Nothing when none runs: cleanup traps call
# it with no argument.
tcpdump_stop() {
	[[ -n $TCPDUMP_PID ]] || return 0
	[[ ${1:-0} == 0 ]] || sleep "$1"
	kill -INT "$TCPDUMP_PID" 2>/dev/null || true
	wait "$TCPDUMP_PID" 2>/dev/null || true
	TCPDUMP_PID=
}
