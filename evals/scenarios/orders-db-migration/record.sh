#!/usr/bin/env bash
# Record the orders-db-migration scenario (127.0.7.0/24): the orders pods and
# the reports pod query a real PostgreSQL 15 (orders-db-0, 127.0.7.10:5432)
# with pgx (test/dbapps/pgclient: prepared statements, the extended
# protocol). At the rollout a migration job drops the index on
# orders.customer_id and renames orders.note to notes, and orders v2 replaces
# v1: v2's lookup of a customer's orders, the same statement as v1's, now
# scans the whole table (tens of ms instead of about 1 ms), and v2's new
# receipt statement still names the old column and fails every time with
# 42703 (undefined_column). Everything else stays OK.
#
#   sudo bash evals/scenarios/orders-db-migration/record.sh
#
# Writes capture.pcap, cluster.json, truth.json and scenario.json beside this
# script, once every check has passed. Uses scripts/lib/record.sh for the
# capture, the event, the TCP and address checks and the cluster file; the
# PostgreSQL calls are checked here: every statement's status as pgx got it
# against the plan, and tshark's reading of the capture (each Execute, failed
# Parse, simple Query and startup paired with its CommandComplete,
# ErrorResponse or ReadyForQuery) against the plan by phase, client, server,
# statement and status. Needs PostgreSQL 15 (Debian's postgresql package; run
# from its own data directory as the postgres user, never the system service)
# and Go (to build test/dbapps).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR/../../.. source=scripts/lib/record.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../../scripts/lib/record.sh"

rec_init orders-db-migration 127.0.7

DB=127.0.7.10
DB_PORT=5432
V1_PODS=(127.0.7.21 127.0.7.22) # orders 2.7.3
V2_PODS=(127.0.7.23 127.0.7.24) # orders 2.8.0
REPORTS=127.0.7.31
MIGRATE=127.0.7.40
PG_BIN=/usr/lib/postgresql/15/bin
STEPS=160     # statements per orders pod (one every 250 ms: 40 s)
REPORT_STEPS=40 # reports statements per phase (one a second)
ROWS=400000   # orders in the table before the capture: big enough that a sequential scan takes tens of ms
CUSTOMERS=40000 # about ten orders each
ORDERS_PASS=orders-app-s3cret
REPORTS_PASS=reports-s3cret

PATH=$PATH:/usr/local/go/bin
for tool in go runuser setpriv; do
	command -v "$tool" >/dev/null 2>&1 || die "missing command: $tool"
done
for tool in initdb postgres psql; do
	[[ -x $PG_BIN/$tool ]] || die "missing $PG_BIN/$tool (sudo bash scripts/install-deps.sh, or apt-get install postgresql)"
done
id postgres >/dev/null 2>&1 || die "no postgres user (the postgresql package creates it)"
# The clients' defaults only: no ~/.pgpass, service file or PGHOST from outside.
unset PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGPASSWORD PGPASSFILE PGSERVICE PGSERVICEFILE \
	PGAPPNAME PGOPTIONS PGSSLMODE PGREQUIRESSL PGCONNECT_TIMEOUT PSQLRC

cat >"$WORK/pods.tsv" <<EOF
orders-db-0	shop	node-c	$DB	orders-db	15	-	-
orders-6d8f7b9c5d-qx4lm	shop	node-a	${V1_PODS[0]}	orders	2.7.3	-216h	event
orders-6d8f7b9c5d-z7tnb	shop	node-b	${V1_PODS[1]}	orders	2.7.3	-216h	event
orders-5b4c8d7f69-h2wkr	shop	node-b	${V2_PODS[0]}	orders	2.8.0	event	-
orders-5b4c8d7f69-pj6sd	shop	node-a	${V2_PODS[1]}	orders	2.8.0	event	-
reports-7c9d5f8b46-mk2vr	shop	node-c	$REPORTS	reports	1.4.2	-	-
orders-migrate-7d5f8c9b4-wq4zk	shop	node-a	$MIGRATE	orders-migrate	2.8.0	event	-
EOF
cat >"$WORK/services.tsv" <<EOF
orders-db	shop	10.96.50.10	orders-db
orders	shop	10.96.50.20	orders
reports	shop	10.96.50.30	reports
EOF

###############################################################################
# Statements
###############################################################################

# Every statement is sent with parameters, none with literals, so the SQL
# text is what wirescope shows as the path.
# shellcheck disable=SC2016 # $1... are PostgreSQL's parameters
{
	SQL_BY_CUSTOMER='SELECT id, amount_cents, status FROM orders WHERE customer_id = $1'
	SQL_INSERT_V1='INSERT INTO orders (customer_id, amount_cents, status, note) VALUES ($1, $2, $3, $4) RETURNING id'
	SQL_INSERT_V2='INSERT INTO orders (customer_id, amount_cents, status, notes) VALUES ($1, $2, $3, $4) RETURNING id'
	SQL_SET_STATUS='UPDATE orders SET status = $1 WHERE id = $2'
	SQL_RECEIPT='SELECT id, amount_cents, note AS receipt_note FROM orders WHERE id = $1'
	SQL_REPORT='SELECT status, count(*), sum(amount_cents) FROM orders WHERE id > $1 GROUP BY status ORDER BY status'
	SQL_DROP_INDEX='DROP INDEX orders_customer_id_idx'
	SQL_RENAME='ALTER TABLE orders RENAME COLUMN note TO notes'
}

###############################################################################
# Server: orders-db-0
###############################################################################

PG_DIR=$WORK/pg
pg_admin() {
	runuser -u postgres -- "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_DIR/sock" -p "$DB_PORT" -U postgres "$@"
}

pg_start() {
	rec_main_shell pg_start
	port_free "$DB" "$DB_PORT"
	mkdir -p "$PG_DIR/sock"
	chown -R postgres: "$PG_DIR"
	(cd "$PG_DIR" && runuser -u postgres -- "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres -A trust -N -E UTF8 \
		--locale=C --no-instructions) >"$WORK/logs/initdb.log" 2>&1 || die "initdb failed: $(tail -n 5 "$WORK/logs/initdb.log")"
	cat >"$PG_DIR/data/pg_hba.conf" <<EOF
local all all trust
host all all $REC_NET.0/24 scram-sha-256
EOF
	cat >>"$PG_DIR/data/postgresql.conf" <<EOF
# evals/scenarios/orders-db-migration/record.sh
listen_addresses = '$DB'
port = $DB_PORT
unix_socket_directories = '$PG_DIR/sock'
password_encryption = scram-sha-256
ssl = off
fsync = off
synchronous_commit = off
full_page_writes = off
# One process per query: the sequential scan's time is the query's alone.
max_parallel_workers_per_gather = 0
logging_collector = off
log_connections = on
log_disconnections = on
log_min_error_statement = error
log_line_prefix = '%m [%p] %a %e '
EOF
	(cd "$PG_DIR" && exec setpriv --reuid=postgres --regid=postgres --init-groups -- "$PG_BIN/postgres" -D "$PG_DIR/data") \
		>"$WORK/logs/postgres.log" 2>&1 &
	REC_SERVER_PIDS[postgres]=$!
	for _ in $(seq 200); do
		pg_admin -d postgres -c 'SELECT 1' >/dev/null 2>&1 && break
		kill -0 "${REC_SERVER_PIDS[postgres]}" 2>/dev/null || die "postgres exited at start: $(tail -n 5 "$WORK/logs/postgres.log")"
		sleep 0.05
	done
	wait_listen "$DB" "$DB_PORT" tcp "${REC_SERVER_PIDS[postgres]}"
}

# The table and its data, over the unix socket (not captured).
pg_load() {
	pg_admin -d postgres >"$WORK/logs/load.log" 2>&1 <<EOF || die "loading the orders table failed: $(tail -n 5 "$WORK/logs/load.log")"
CREATE ROLE orders LOGIN PASSWORD '$ORDERS_PASS';
CREATE ROLE reports LOGIN PASSWORD '$REPORTS_PASS';
CREATE DATABASE shop OWNER orders;
\\c shop
SET ROLE orders;
CREATE TABLE orders (
    id bigserial PRIMARY KEY,
    customer_id integer NOT NULL,
    amount_cents bigint NOT NULL,
    status text NOT NULL,
    note text,
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO orders (customer_id, amount_cents, status, note, created_at)
SELECT 1 + (g::bigint * 7919) % $CUSTOMERS, 500 + (g::bigint * 104729) % 50000,
       (ARRAY['new', 'paid', 'shipped', 'delivered'])[1 + g % 4],
       CASE WHEN g % 5 = 0 THEN 'leave at the door' END,
       timestamptz '2026-01-01' + g * interval '1 minute'
FROM generate_series(1, $ROWS) g;
CREATE INDEX orders_customer_id_idx ON orders (customer_id);
GRANT SELECT ON orders TO reports;
VACUUM ANALYZE orders;
EOF
	local n
	n=$(pg_admin -d shop -At -c 'SELECT count(*) FROM orders')
	[[ $n -eq $ROWS ]] || die "orders holds $n rows, want $ROWS"
	ok "orders-db-0: PostgreSQL $PG_VERSION on $DB:$DB_PORT, orders: $n rows, $(pg_admin -d shop -At -c "SELECT pg_size_pretty(pg_table_size('orders'))"), index orders_customer_id_idx"
}

###############################################################################
# Plan
###############################################################################

# step PHASE SEQ MODE SQL ARGS EXPECT: a plan line for pgclient (see
# test/dbapps/pgclient). "query": pgx prepares the statement on first use
# and runs it with Bind/Execute, so its call is an EXECUTE, except that a
# statement the server cannot parse fails at its Parse, every time (a
# failed statement is not cached), and its call is a PARSE. "exec" without
# arguments: pgx sends a simple Query, a QUERY call.
step() { printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$@"; }

# plan_orders C ADDR VERSION PHASE: an orders pod's STEPS statements, in a
# cycle of eight: four lookups of a customer's orders, two new orders, and
# either two status updates (2.7.3) or one status update and one receipt
# (2.8.0).
plan_orders() {
	local c=$1 version=$3 phase=$4 k customer id
	local insert=$SQL_INSERT_V1
	[[ $version == 2.7.3 ]] || insert=$SQL_INSERT_V2
	for ((k = 0; k < STEPS; k++)); do
		customer=$((1 + (k * 104729 + c * 7919) % CUSTOMERS))
		id=$((1 + (k * 7919 + c * 31337) % ROWS))
		case $((k % 8)) in
		0 | 2 | 4 | 6) step "$phase" "$k" query "$SQL_BY_CUSTOMER" "i:$customer" OK ;;
		1 | 5)
			step "$phase" "$k" query "$insert" "i:$customer|i:$((500 + (k * 389 + c) % 50000))|s:new|s:$([[ $((k % 3)) == 0 ]] && echo 'gift wrap, please' || echo 'ring the bell')" OK
			;;
		3) step "$phase" "$k" query "$SQL_SET_STATUS" "s:shipped|i:$id" OK ;;
		7)
			if [[ $version == 2.7.3 ]]; then
				step "$phase" "$k" query "$SQL_SET_STATUS" "s:delivered|i:$id" OK
			else
				step "$phase" "$k" query "$SQL_RECEIPT" "i:$id" 42703
			fi
			;;
		esac
	done
}

plan_reports() {
	local phase k
	for phase in 1 2; do
		for ((k = 0; k < REPORT_STEPS; k++)); do
			step "$phase" "$k" query "$SQL_REPORT" "i:$((ROWS - 1000))" OK
		done
		((phase == 2)) || printf '1\tBARRIER\t%s\t%s\n' "$WORK/reports.paused" "$WORK/reports.resume"
	done
}

plan_migrate() {
	step 2 0 exec "$SQL_DROP_INDEX" - OK
	step 2 1 exec "$SQL_RENAME" - OK
}

plan_orders 0 "${V1_PODS[0]}" 2.7.3 1 >"$WORK/plan/orders-v1-a.tsv"
plan_orders 1 "${V1_PODS[1]}" 2.7.3 1 >"$WORK/plan/orders-v1-b.tsv"
plan_orders 2 "${V2_PODS[0]}" 2.8.0 2 >"$WORK/plan/orders-v2-a.tsv"
plan_orders 3 "${V2_PODS[1]}" 2.8.0 2 >"$WORK/plan/orders-v2-b.tsv"
plan_reports >"$WORK/plan/reports.tsv"
plan_migrate >"$WORK/plan/migrate.tsv"

# expect/pg.tsv: phase client server port method statement status, one line
# per call the capture must hold: each client's startup (its database as
# the statement) and its plan's statements.
: >"$WORK/expect/pg.tsv"
expect_pg_plan() { # expect_pg_plan PLAN CLIENT
	awk -F'\t' -v OFS='\t' -v client="$2" -v server="$DB" -v port="$DB_PORT" '
		$2 == "BARRIER" { next }
		!started++ { print $1, client, server, port, "STARTUP", "shop", "OK" }
		{ method = $3 == "exec" ? "QUERY" : ($6 == "OK" ? "EXECUTE" : "PARSE"); print $1, client, server, port, method, $4, $6 }
	' "$1" >>"$WORK/expect/pg.tsv"
}
expect_pg_plan "$WORK/plan/orders-v1-a.tsv" "${V1_PODS[0]}"
expect_pg_plan "$WORK/plan/orders-v1-b.tsv" "${V1_PODS[1]}"
expect_pg_plan "$WORK/plan/orders-v2-a.tsv" "${V2_PODS[0]}"
expect_pg_plan "$WORK/plan/orders-v2-b.tsv" "${V2_PODS[1]}"
expect_pg_plan "$WORK/plan/reports.tsv" "$REPORTS"
expect_pg_plan "$WORK/plan/migrate.tsv" "$MIGRATE"

###############################################################################
# Record
###############################################################################

log "building test/dbapps/pgclient"
(cd "$REC_ROOT/test/dbapps" && go build -o "$WORK/bin/pgclient" ./pgclient) >"$WORK/logs/go-build.log" 2>&1 ||
	die "go build test/dbapps/pgclient failed: $(tail -n 5 "$WORK/logs/go-build.log")"
PGX_VERSION=$(cd "$REC_ROOT/test/dbapps" && go list -m -f '{{.Version}}' github.com/jackc/pgx/v5)
PG_VERSION=$("$PG_BIN/postgres" --version | awk '{ print $3 }')

pg_start
pg_load

# client NAME POD USER PASSWORD APP EVERY: run pgclient with plan/NAME.tsv.
client() {
	local name=$1 pod=$2 user=$3 pass=$4 app=$5 every=$6
	env PGPASSWORD="$pass" "$WORK/bin/pgclient" -server "$DB:$DB_PORT" -pod "$pod" -user "$user" -database shop \
		-app "$app" -every "$every" -plan "$WORK/plan/$name.tsv" -out "$WORK/plan/$name.tsv.got"
}

# wait_pid PID NAME: wait for one client, fail if it failed.
wait_pid() {
	wait "$1" || die "$2 failed: $(tail -n 5 "$WORK/logs/$2.err")"
}

log "recording (about 85 s)"
capture_start
start_client reports 0.2 client reports "$REPORTS" reports "$REPORTS_PASS" reports 1s
REPORTS_PID=${REC_CLIENT_PIDS[-1]}
start_client orders-v1-a 0.3 client orders-v1-a "${V1_PODS[0]}" orders "$ORDERS_PASS" orders 250ms
V1A_PID=${REC_CLIENT_PIDS[-1]}
start_client orders-v1-b 0.425 client orders-v1-b "${V1_PODS[1]}" orders "$ORDERS_PASS" orders 250ms
V1B_PID=${REC_CLIENT_PIDS[-1]}
wait_pid "$V1A_PID" orders-v1-a
wait_pid "$V1B_PID" orders-v1-b
for _ in $(seq 300); do
	[[ -e $WORK/reports.paused ]] && break
	kill -0 "$REPORTS_PID" 2>/dev/null || die "reports exited before the rollout: $(tail -n 5 "$WORK/logs/reports.err")"
	sleep 0.05
done
[[ -e $WORK/reports.paused ]] || die "reports did not finish its first phase"
REC_CLIENT_PIDS=("$REPORTS_PID")
sleep 0.3

# The rollout: the migration job runs, then orders 2.8.0 replaces 2.7.3
# (whose pods have stopped: their connections are closed).
mark_event rollout "migration job orders-migrate-7d5f8c9b4-wq4zk ran DROP INDEX orders_customer_id_idx and ALTER TABLE orders RENAME COLUMN note TO notes; orders 2.7.3 (orders-6d8f7b9c5d-*) replaced by 2.8.0 (orders-5b4c8d7f69-*)"
client migrate "$MIGRATE" orders "$ORDERS_PASS" orders-migrate 200ms 2>>"$WORK/logs/migrate.err" ||
	die "the migration failed: $(tail -n 5 "$WORK/logs/migrate.err")"
start_client orders-v2-a 0.1 client orders-v2-a "${V2_PODS[0]}" orders "$ORDERS_PASS" orders 250ms
start_client orders-v2-b 0.225 client orders-v2-b "${V2_PODS[1]}" orders "$ORDERS_PASS" orders 250ms
touch "$WORK/reports.resume"
wait_clients
capture_stop
server_stop postgres

###############################################################################
# Verify
###############################################################################

log "verifying what pgx got"
for name in orders-v1-a orders-v1-b orders-v2-a orders-v2-b reports migrate; do
	plan=$WORK/plan/$name.tsv
	awk -F'\t' '$2 != "BARRIER" { print $1 "\t" $2 "\t" $6 }' "$plan" >"$plan.want"
	cut -f1-3 "$plan.got" >"$plan.have"
	diff -u "$plan.want" "$plan.have" >"$WORK/logs/$name.diff" ||
		die "$name: pgx's results differ from the plan: $(head -n 20 "$WORK/logs/$name.diff")"
	ok "$(printf '%-12s %4d statements as planned (%s)' "$name" "$(wc -l <"$plan.got")" \
		"$(cut -f3 "$plan.got" | sort | uniq -c | awk '{ printf "%s%s %s", sep, $1, $2; sep = ", " }')")"
done

log "verifying the capture with tshark"
verify_capture # the library's: size, addresses, no HTTP or DNS, TCP states

# seen/pg-calls.tsv: epoch client server port method statement status ms
# stream, from tshark's messages in order: a client's Startup message,
# Parse, Execute (of the statement its Bind named) and simple Query each
# open an operation; the server's ParseComplete closes a Parse (it was no
# call), CommandComplete an Execute or Query, ErrorResponse the oldest open
# one with its SQLSTATE, ReadyForQuery a startup. The time is from the
# message's frame to the answer's frame.
rec_tshark -Y pgsql -T json --no-duplicate-keys -J 'frame ip tcp pgsql' >"$WORK/seen/pgsql.json"
jq -r '.[]._source.layers as $l
	| ($l.pgsql | if type == "array" then .[] else . end) as $m
	| [$l.frame["frame.time_epoch"], $l.tcp["tcp.stream"], $l.ip["ip.src"], $l.ip["ip.dst"], $l.tcp["tcp.dstport"],
		$m["pgsql.type"], ($m["pgsql.statement"] // ""), ($m["pgsql.query"] // ""), ($m["pgsql.code"] // ""),
		(def list: if . == null then [] elif type == "array" then . else [.] end;
			($m["pgsql.parameter_name"] | list) as $n | ($m["pgsql.parameter_value"] | list) as $v
			| [range(0; $n | length) | select($n[.] == "database") | $v[.]] | first // "")]
	| @tsv' "$WORK/seen/pgsql.json" >"$WORK/seen/pgsql-messages.tsv"
awk -F'\t' -v OFS='\t' '
	function open(s, method, sql) { n = ++tail[s]; qm[s, n] = method; qs[s, n] = sql; qt[s, n] = $1 }
	function close_(s, status) {
		if (head[s] >= tail[s]) { printf "stream %s: %s at %s answers nothing\n", s, $6, $1 > "/dev/stderr"; bad = 1; return }
		n = ++head[s]
		if (qm[s, n] == "PARSE" && status == "OK") return # a Parse that worked: no call
		print qt[s, n], cli[s], srv[s], port[s], qm[s, n], qs[s, n], status, sprintf("%.3f", ($1 - qt[s, n]) * 1000), s
	}
	{ s = $2 }
	$6 == "Startup message" { cli[s] = $3; srv[s] = $4; port[s] = $5; open(s, "STARTUP", $10); next }
	$6 == "Parse" { sql[s, $7] = $8; open(s, "PARSE", $8); next }
	$6 == "Bind" { bound[s] = sql[s, $7]; next }
	$6 == "Execute" { open(s, "EXECUTE", bound[s]); next }
	$6 == "Simple query" { open(s, "QUERY", $8); next }
	$6 == "Parse completion" { if (qm[s, head[s] + 1] != "PARSE") { print "stream " s ": ParseComplete without a Parse" > "/dev/stderr"; bad = 1 } else close_(s, "OK"); next }
	$6 == "Command completion" || $6 == "Empty query response" { close_(s, "OK"); next }
	$6 == "Error" { close_(s, $9); next }
	$6 == "Ready for query" {
		if (qm[s, head[s] + 1] == "STARTUP") close_(s, "OK")
		if (head[s] < tail[s]) { printf "stream %s: %d operations unanswered at ReadyForQuery %s\n", s, tail[s] - head[s], $1 > "/dev/stderr"; bad = 1; head[s] = tail[s] }
		next
	}
	END {
		for (s in tail) if (head[s] < tail[s]) { printf "stream %s: %d operations unanswered at the end\n", s, tail[s] - head[s] > "/dev/stderr"; bad = 1 }
		exit bad
	}
' "$WORK/seen/pgsql-messages.tsv" | LC_ALL=C sort -t $'\t' -k1,1g >"$WORK/seen/pg-calls.tsv" ||
	die "tshark's PostgreSQL messages do not pair up (see above)"
cut -f1-7 "$WORK/seen/pg-calls.tsv" | _rec_phase >"$WORK/seen/pg.tsv"
tally <"$WORK/expect/pg.tsv" >"$WORK/expect/pg.count"
tally <"$WORK/seen/pg.tsv" >"$WORK/seen/pg.count"
diff -u "$WORK/expect/pg.count" "$WORK/seen/pg.count" >"$WORK/logs/pg.diff" ||
	die "PostgreSQL calls by phase, client, server, method, statement and status differ from the plan (- plan, + tshark): $(head -n 30 "$WORK/logs/pg.diff")"
ok "PostgreSQL: $(wc -l <"$WORK/seen/pg.tsv") calls, each answered; by phase, client, statement and status as planned"
# tshark's own count of ErrorResponse messages and their codes.
rec_tshark -Y 'pgsql.type == "Error"' -T fields -e pgsql.code | tally >"$WORK/seen/pg-errors.count"
awk -F'\t' '$7 != "OK" { print $7 }' "$WORK/expect/pg.tsv" | tally >"$WORK/expect/pg-errors.count"
diff -u "$WORK/expect/pg-errors.count" "$WORK/seen/pg-errors.count" >"$WORK/logs/pg-errors.diff" ||
	die "tshark's ErrorResponse codes differ from the plan: $(cat "$WORK/logs/pg-errors.diff")"
ok "tshark: ErrorResponse $(tr '\t\n' '= ' <"$WORK/seen/pg-errors.count")"

###############################################################################
# Outputs
###############################################################################

OUT=$WORK/out
rec_tshark -T fields -e frame.time_epoch >"$WORK/logs/times.txt"
PACKETS=$(wc -l <"$WORK/logs/times.txt")
FIRST=$(head -n 1 "$WORK/logs/times.txt")
LAST=$(tail -n 1 "$WORK/logs/times.txt")
BYTES=$(stat -c %s "$OUT/capture.pcap")
DURATION=$(awk -v a="$FIRST" -v b="$LAST" 'BEGIN { printf "%.3f", b - a }')
awk -v d="$DURATION" 'BEGIN { exit !(d >= 70 && d <= 95) }' || die "the capture lasts $DURATION s, not 70-95 s"

write_cluster "$OUT" "$WORK/pods.tsv" "$WORK/services.tsv" "$FIRST"

# Latency per phase, server, method and statement: tshark's time from the
# request's message to its answer (min, p50, p95, max; nearest rank). The
# startup (authentication included) is left out.
awk -F'\t' -v OFS='\t' -v t="$EVENT_EPOCH" '$5 != "STARTUP" { print ($1 + 0 >= t + 0) ? 2 : 1, $3, $4, $5, $6, $8 }' \
	"$WORK/seen/pg-calls.tsv" | LC_ALL=C sort -t $'\t' -k1,5 -k6,6g |
	awk -F'\t' -v OFS='\t' '
		function flush() {
			if (n == 0) return
			p50 = v[int((n + 1) / 2)]; p95 = v[int(n * 0.95 + 0.999999)]; if (p95 == "") p95 = v[n]
			printf "%s\t%d\t%.3f\t%.3f\t%.3f\t%.3f\n", key, n, v[1], p50, p95, v[n]
			n = 0
		}
		{ k = $1 OFS $2 OFS $3 OFS $4 OFS $5; if (k != key) { flush(); key = k }; v[++n] = $6 }
		END { flush() }
	' >"$WORK/seen/pg-latency.tsv"
# The point of the scenario: the customer lookup is much slower after the
# index is gone, and nothing else is.
read -r BEFORE_P50 AFTER_P50 < <(awk -F'\t' -v sql="$SQL_BY_CUSTOMER" '$5 == sql { p[$1] = $8 } END { print p[1], p[2] }' "$WORK/seen/pg-latency.tsv")
awk -v a="$BEFORE_P50" -v b="$AFTER_P50" 'BEGIN { exit !(a < 2 && b >= 10 && b >= 10 * a) }' ||
	die "the customer lookup's p50 went from $BEFORE_P50 ms to $AFTER_P50 ms: not clearly slower (want < 2 ms before, >= 10 ms and 10x after)"
ok "customer lookup p50 $BEFORE_P50 ms before, $AFTER_P50 ms after the index was dropped"

TOOLS=$(jq -n --arg postgresql "$PG_VERSION" --arg pgx "$PGX_VERSION" \
	--arg go "$(go env GOVERSION)" \
	--arg tcpdump "$(tcpdump --version 2>&1 | awk 'NR == 1 { print $3 }')" \
	--arg tshark "$(tshark --version 2>/dev/null | awk 'NR == 1 { print $3 }')" \
	'{postgresql: $postgresql, pgx: $pgx, go: $go, tcpdump: $tcpdump, tshark: $tshark}')
awk -F'\t' '{ print $1 "\t" $2 "\t" $3 "\t" $4 "\t" $5 }' "$WORK/seen/conns.tsv" | tally >"$WORK/logs/conns.count"
NOTES="orders pods (pgx $PGX_VERSION, test/dbapps/pgclient, one connection each from the pod's address, scram-sha-256) call PostgreSQL $PG_VERSION (orders-db-0, $DB:$DB_PORT; its own data directory, max_parallel_workers_per_gather=0) with pgx's default query exec mode: each statement is prepared once per connection (Parse, named stmtcache_...) and run with Bind/Execute, so each run is an EXECUTE call. The table orders ($ROWS rows, $CUSTOMERS customers, index orders_customer_id_idx on customer_id) was loaded before the capture over the unix socket. Before: orders 2.7.3 (${V1_PODS[*]}) send one statement every 250 ms (lookups by customer_id, inserts naming the column note, status updates), reports ($REPORTS) one aggregate a second on one connection kept across the rollout. At the rollout the job pod ($MIGRATE) ran two simple queries (QUERY calls): $SQL_DROP_INDEX; $SQL_RENAME; then orders 2.8.0 (${V2_PODS[*]}) started: the same lookup, now a sequential scan of the whole table, inserts naming notes, status updates, and a new receipt statement that still names note: the server refuses its Parse with 42703 (column \"note\" does not exist), and since pgx does not cache a statement that failed to prepare, every run is a failed Parse (a PARSE call, no Execute). Counts come from the plan and equal tshark's reading of the capture; latency is tshark's (the request message's frame to the CommandComplete or ErrorResponse frame). The statements carry parameters, no literals, so the statement is wirescope's path."

jq -n \
	--arg scenario "$REC_NAME" --arg notes "$NOTES" \
	--arg first "$(rfc3339 "$FIRST")" --arg last "$(rfc3339 "$LAST")" \
	--argjson packets "$PACKETS" --argjson bytes "$BYTES" --argjson duration "$DURATION" \
	--arg event_name "$EVENT_NAME" --arg event_what "$EVENT_WHAT" --arg event_at "$(rfc3339 "$EVENT_EPOCH")" \
	--argjson tools "$TOOLS" \
	--slurpfile cluster "$OUT/cluster.json" \
	--rawfile pg "$WORK/expect/pg.count" \
	--rawfile conns "$WORK/logs/conns.count" \
	--rawfile latency "$WORK/seen/pg-latency.tsv" '
	def rows($s): $s | split("\n") | map(select(length > 0) | split("\t"));
	def phase($p): if $p == "1" then "before" else "after" end;
	($cluster[0]) as $c
	| (reduce $c.pods[] as $p ({}; .[$p.ip] = $p.name)) as $podname
	| def who($ip): {ip: $ip, pod: ($podname[$ip] // null)};
	def statuses: group_by(.status) | map({key: .[0].status, value: (map(.n) | add)}) | from_entries;
	(rows($pg) | map({p: .[0], phase: phase(.[0]), client: .[1], server: .[2], port: (.[3] | tonumber),
		method: .[4], statement: .[5], status: .[6], n: (.[7] | tonumber)})) as $q
	| (rows($conns) | map({p: .[0], phase: phase(.[0]), client: .[1], server: .[2], port: (.[3] | tonumber),
		state: .[4], n: (.[5] | tonumber)})) as $t
	| {
		scenario: $scenario,
		notes: $notes,
		recorded_with: $tools,
		capture: {file: "capture.pcap", bytes: $bytes, packets: $packets,
			first_packet: $first, last_packet: $last, duration_s: $duration},
		event: {name: $event_name, at: $event_at, what: $event_what},
		phases: [{phase: "before", from: $first, to: $event_at}, {phase: "after", from: $event_at, to: $last}],
		postgres: {
			calls: ($q | map(.n) | add),
			statuses: ($q | statuses),
			by_phase: ($q | group_by(.p) | map({key: .[0].phase, value: {calls: (map(.n) | add), statuses: statuses}}) | from_entries),
			by_statement: ($q | group_by([.p, .server, .port, .method, .statement]) | map({
				phase: .[0].phase, server: who(.[0].server), port: .[0].port,
				method: .[0].method, statement: .[0].statement,
				calls: (map(.n) | add), statuses: statuses})),
			by_client: ($q | group_by([.p, .client, .server, .port, .method, .statement]) | map({
				phase: .[0].phase, client: who(.[0].client), server: who(.[0].server), port: .[0].port,
				method: .[0].method, statement: .[0].statement,
				calls: (map(.n) | add), statuses: statuses}))
		},
		http: {requests: 0, statuses: {}},
		dns: {queries: 0, rcodes: {}},
		tcp: {
			connections: ($t | map(.n) | add // 0),
			refused: ($t | map(select(.state == "refused")) | map(.n) | add // 0),
			reset: ($t | map(select(.state | startswith("reset"))) | map(.n) | add // 0),
			by_pair: ($t | group_by([.p, .client, .server, .port]) | map({
				phase: .[0].phase, client: who(.[0].client), server: who(.[0].server), port: .[0].port,
				connections: (map(.n) | add),
				states: (map({key: .state, value: .n}) | from_entries)}))
		},
		latency_ms: (rows($latency) | map({phase: phase(.[0]), server: who(.[1]), port: (.[2] | tonumber),
			method: .[3], statement: .[4], calls: (.[5] | tonumber),
			min: (.[6] | tonumber), p50: (.[7] | tonumber), p95: (.[8] | tonumber), max: (.[9] | tonumber)})),
		rollout_at: $event_at
	}' >"$OUT/truth.json"
[[ $(jq .postgres.calls "$OUT/truth.json") -eq $(wc -l <"$WORK/expect/pg.tsv") ]] || die "truth.json: wrong call total"

QUESTIONS=$(jq -n --arg slow "$SQL_BY_CUSTOMER" '[
	{id: "what-got-slower",
	 ask: "We ran the orders schema migration and rolled out orders v2 at {{HHMM}} UTC. Did anything get slower?",
	 facts_all: [$slow, "orders-db-0"]},
	{id: "new-db-errors",
	 ask: "Are there new database errors since {{HHMM}} UTC?",
	 facts_all: ["42703", "receipt_note", "orders-5b4c8d7f69"]}
]')
jq -n --arg name "$REC_NAME" --arg hhmm "$(hhmm "$EVENT_EPOCH")" --arg rollout "$(rfc3339 "$EVENT_EPOCH")" \
	--arg description "orders schema migration and orders 2.8.0 rollout: the job drops the index on orders.customer_id and renames note to notes; the new pods' lookup of a customer's orders (the same statement as before) goes from about 1 ms to a sequential scan of tens of ms on orders-db-0, and their new receipt statement fails every time with 42703 (column \"note\" does not exist); inserts, status updates and the reports aggregate stay OK." \
	--argjson questions "$QUESTIONS" '
	{name: $name, description: $description, capture: "capture.pcap", cluster: "cluster.json", rollout_at: $rollout,
	 questions: ($questions | map(.ask |= gsub("{{HHMM}}"; $hhmm)))}' >"$OUT/scenario.json"

# Every fact is something the capture or the cluster file holds.
{
	LC_ALL=C tr -c '[:print:]' '\n' <"$OUT/capture.pcap" | grep -E '.{3}'
	cat "$OUT/cluster.json"
} >"$WORK/logs/strings.txt"
while IFS= read -r fact; do
	grep -Fqi -- "$fact" "$WORK/logs/strings.txt" || die "fact \"$fact\" is nowhere in the capture or cluster file"
done < <(jq -r '.questions[].facts_all[]' "$OUT/scenario.json" | sort -u)
ok "scenario.json: $(jq '.questions | length' "$OUT/scenario.json") questions; every fact is in the capture or cluster file"

mkdir -p "$REC_OUT"
install -m 0644 "$OUT/capture.pcap" "$OUT/cluster.json" "$OUT/truth.json" "$OUT/scenario.json" "$REC_OUT/"
log "wrote $REC_OUT"
capinfos -c -u -s "$REC_OUT/capture.pcap" | sed 's/^/    /' >&2
jq -c '{postgres: .postgres.by_phase, tcp: {connections: .tcp.connections, refused: .tcp.refused, reset: .tcp.reset}, event: .event.at}' \
	"$REC_OUT/truth.json" >&2
jq -r '.latency_ms[] | "    \(.phase)\t\(.method)\t\(.calls)\tp50 \(.p50) ms\tp95 \(.p95) ms\t\(.statement)"' "$REC_OUT/truth.json" >&2
