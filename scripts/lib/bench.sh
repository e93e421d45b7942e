# shellcheck shell=bash
# What the benchmark scripts (bench-agent.sh, bench-tls.sh) share: the
# processes they start and the cleanup that stops them and removes their
# work directory, and small measuring helpers. The script sets BENCH_NAME
# (its name in messages) and KEEP (1: keep the work directory), and may
# define bench_cleanup_more, which the cleanup runs after stopping the
# processes; WORK is its work directory once made.

# shellcheck source=scripts/lib/proc.sh
source "$(dirname "${BASH_SOURCE[0]}")/proc.sh"

# Everything the script starts, for the cleanup; forget removes what was
# stopped and reaped (its PID may be reused).
PIDS=()
forget() {
	local keep=() p
	for p in "${PIDS[@]}"; do
		[[ $p == "$1" ]] || keep+=("$p")
	done
	PIDS=("${keep[@]}")
}
WORK=

# shellcheck disable=SC2317 # run by the trap
bench_cleanup() {
	local rc=$? pid
	set +e
	for pid in "${PIDS[@]}"; do
		stop_pid "$pid"
	done
	if declare -F bench_cleanup_more >/dev/null; then
		bench_cleanup_more
	fi
	if [[ -n $WORK ]]; then
		if (( KEEP )); then
			echo "$BENCH_NAME: kept $WORK" >&2
		else
			rm -rf "$WORK"
		fi
	fi
	exit "$rc"
}
trap bench_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# cpu_ticks PID: utime+stime in clock ticks (children excluded).
cpu_ticks() {
	local s
	s=$(<"/proc/$1/stat")
	s=${s##*) }
	# shellcheck disable=SC2086
	set -- $s
	echo $(( ${12} + ${13} ))
}
now() { date +%s.%N; }

# wait_log FILE PATTERN PID: wait (up to 15 s) until FILE has PATTERN.
wait_log() {
	for _ in $(seq 150); do
		grep -q -- "$2" "$1" 2>/dev/null && return 0
		if ! kill -0 "$3" 2>/dev/null; then
			echo "$BENCH_NAME: $(basename "$1" .log) exited before saying '$2':" >&2
			tail -5 "$1" >&2
			return 1
		fi
		sleep 0.1
	done
	echo "$BENCH_NAME: $(basename "$1" .log) did not say '$2' within 15 s:" >&2
	tail -5 "$1" >&2
	return 1
}

# median: of the numbers on stdin, one a line ("-" for none).
median() {
	sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
maxof() { sort -g | tail -1 | grep . || echo -; }
