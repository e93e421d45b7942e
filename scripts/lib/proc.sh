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
