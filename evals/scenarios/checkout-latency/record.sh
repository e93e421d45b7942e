#!/usr/bin/env bash
# Record the checkout-latency scenario (127.0.2.0/24): frontend pods and the
# mobile BFF call checkout; checkout calls inventory (stock, reserve) and
# payments (authorize) from its own address (nginx proxy_bind). Halfway
# through, inventory's POST /api/inventory/reserve turns slow (0.4-0.8 s,
# echo_sleep) with no deployment of anything: inventory's other endpoint and
# payments stay fast, and checkout's POST /api/checkout, which waits for the
# reservation, becomes slow too.
#
#   sudo bash evals/scenarios/checkout-latency/record.sh
#
# Writes capture.pcap, cluster.json, truth.json and scenario.json beside this
# script, once every check has passed (scripts/lib/record.sh).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR/../../.. source=scripts/lib/record.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../../scripts/lib/record.sh"

rec_init checkout-latency 127.0.2

FRONTEND_A=127.0.2.10
FRONTEND_B=127.0.2.11
MOBILE_BFF=127.0.2.12
CHECKOUT=127.0.2.20
INVENTORY=127.0.2.30
PAYMENTS=127.0.2.40
CHECKOUT_PORT=8220
INVENTORY_PORT=8230
PAYMENTS_PORT=8240
CHECKOUT_HOST=checkout.shop.svc.cluster.local
INVENTORY_HOST=inventory.shop.svc.cluster.local
PAYMENTS_HOST=payments.payments.svc.cluster.local
# shellcheck disable=SC2034 # used by the library
REC_HTTP_PORTS=("$CHECKOUT_PORT" "$INVENTORY_PORT" "$PAYMENTS_PORT")
SESSIONS=30 # per client and phase
SLOW_FLAG=$WORK/inventory-reserve-slow

cat >"$WORK/pods.tsv" <<EOF
frontend-7b8c6d9f54-jx4nq	shop	node-a	$FRONTEND_A	frontend	3.2.1	-	-
frontend-7b8c6d9f54-r9vzm	shop	node-b	$FRONTEND_B	frontend	3.2.1	-	-
mobile-bff-5d7f8b6c49-kc2wh	shop	node-c	$MOBILE_BFF	mobile-bff	1.8.4	-	-
checkout-5c8d7f9b64-zr4lx	shop	node-b	$CHECKOUT	checkout	2.4.0	-	-
inventory-7b6f9d4c85-m2qkw	shop	node-c	$INVENTORY	inventory	1.9.2	-	-
payments-84c7d95b6f-vj5ts	payments	node-a	$PAYMENTS	payments	3.0.1	-	-
EOF
cat >"$WORK/services.tsv" <<EOF
frontend	shop	10.96.12.40	frontend
mobile-bff	shop	10.96.12.52	mobile-bff
checkout	shop	10.96.40.30	checkout
inventory	shop	10.96.40.50	inventory
payments	payments	10.96.72.15	payments
EOF

###############################################################################
# Servers: one nginx per pod
###############################################################################

# checkout: quotes ask inventory for stock; a checkout reserves the stock
# (inventory) and then authorizes the payment (payments), one after the
# other, and answers once both have answered (echo_subrequest). Calls leave
# from the checkout pod's address (proxy_bind).
nginx_start checkout <<EOF
    server {
        listen $CHECKOUT:$CHECKOUT_PORT;
        server_name $CHECKOUT_HOST;
        proxy_bind \$server_addr;
        location = /api/checkout/quote {
            proxy_set_header Host $INVENTORY_HOST:$INVENTORY_PORT;
            proxy_pass http://$INVENTORY:$INVENTORY_PORT/api/inventory/stock/\$arg_sku;
        }
        location = /api/checkout {
            if (\$request_method != POST) { return 405 '{"error":"method not allowed"}'; }
            echo_before_body -n '{"order":"o-\$connection-\$connection_requests","reservation":';
            echo_subrequest POST /_inventory_reserve -b '{"order":"o-\$connection-\$connection_requests","items":2}';
            echo -n ',"payment":';
            echo_subrequest POST /_payments_authorize -b '{"order":"o-\$connection-\$connection_requests","amount":89.89,"currency":"EUR"}';
            echo '}';
        }
        location = /_inventory_reserve {
            internal;
            proxy_set_header Host $INVENTORY_HOST:$INVENTORY_PORT;
            proxy_set_header Content-Type application/json;
            proxy_pass http://$INVENTORY:$INVENTORY_PORT/api/inventory/reserve;
        }
        location = /_payments_authorize {
            internal;
            proxy_set_header Host $PAYMENTS_HOST:$PAYMENTS_PORT;
            proxy_set_header Content-Type application/json;
            proxy_pass http://$PAYMENTS:$PAYMENTS_PORT/api/payments/authorize;
        }
        location / { return 404 '{"error":"not found"}'; }
    }
EOF

# inventory: reserve takes 5 ms, or 0.4-0.8 s (by the request id's last hex
# digit) once the slow flag exists; stock takes 2 ms.
nginx_start inventory <<EOF
    map \$http_x_request_id \$slow_delay { ~[0-3]\$ 0.4; ~[4-7]\$ 0.5; ~[89ab]\$ 0.6; ~[cd]\$ 0.7; default 0.8; }
    server {
        listen $INVENTORY:$INVENTORY_PORT;
        server_name $INVENTORY_HOST;
        location = /api/inventory/reserve {
            if (\$request_method != POST) { return 405 '{"error":"method not allowed"}'; }
            if (-f $SLOW_FLAG) {
                echo_sleep \$slow_delay;
                echo -n '{"reservation":"r-\$connection","status":"reserved","warehouse":"eu-west-2"}';
                break;
            }
            echo_sleep 0.005;
            echo -n '{"reservation":"r-\$connection","status":"reserved","warehouse":"eu-west-2"}';
        }
        location ~ ^/api/inventory/stock/(?<sku>[0-9]+)\$ {
            echo_sleep 0.002;
            echo '{"sku":\$sku,"available":14,"warehouse":"eu-west-2"}';
        }
        location / { return 404 '{"error":"not found"}'; }
    }
EOF

nginx_start payments <<EOF
    server {
        listen $PAYMENTS:$PAYMENTS_PORT;
        server_name $PAYMENTS_HOST;
        location = /api/payments/authorize {
            if (\$request_method != POST) { return 405 '{"error":"method not allowed"}'; }
            echo_sleep 0.015;
            echo -n '{"authorization":"auth-\$connection","status":"approved"}';
        }
        location / { return 404 '{"error":"not found"}'; }
    }
EOF

###############################################################################
# Plan
###############################################################################

# plan_client C ADDR: client C (0, 1, 2), SESSIONS sessions per phase, the same
# shape in both phases. Every fourth session is one quote on a new
# connection; the others quote one or two items and check out.
plan_client() {
	local c=$1 addr=$2 phase k sku
	rid_seed $((3301 + c))
	for phase in 1 2; do
		for k in $(seq 0 $((SESSIONS - 1))); do
			quote() {
				next_rid
				req "$phase" "$k" "$addr" "$CHECKOUT:$CHECKOUT_PORT" "$CHECKOUT_HOST" GET "/api/checkout/quote?sku=$1" 200 \
					"X-Request-Id: $RID|Accept: application/json" -
			}
			sku=$((20000 + (k * 29 + c * 7) % 500))
			quote "$sku"
			((k % 4 != 3)) || continue
			((k % 2 != 0)) || quote $((sku + 3))
			next_rid
			req "$phase" "$k" "$addr" "$CHECKOUT:$CHECKOUT_PORT" "$CHECKOUT_HOST" POST /api/checkout 200 \
				"X-Request-Id: $RID|Accept: application/json" \
				"{\"cart\":\"c-$c-$phase-$k\",\"items\":[{\"sku\":$sku,\"qty\":1}],\"payment\":\"card\"}"
		done
	done
}

plan_client 0 "$FRONTEND_A" >"$WORK/plan/frontend-a.tsv"
plan_client 1 "$FRONTEND_B" >"$WORK/plan/frontend-b.tsv"
plan_client 2 "$MOBILE_BFF" >"$WORK/plan/mobile-bff.tsv"
PLANS=("$WORK"/plan/{frontend-a,frontend-b,mobile-bff}.tsv)
expect_from_plans "${PLANS[@]}"
# checkout's own calls: a quote asks inventory for stock, a checkout reserves
# and authorizes.
awk -F'\t' '{ print $1 "\t" $6 "\t" $7 }' "${PLANS[@]}" |
	while IFS=$'\t' read -r phase method path; do
		if [[ $method == GET ]]; then
			expect_http "$phase" "$CHECKOUT" "$INVENTORY" "$INVENTORY_PORT" GET "/api/inventory/stock/${path##*sku=}" 200
		else
			expect_http "$phase" "$CHECKOUT" "$INVENTORY" "$INVENTORY_PORT" POST /api/inventory/reserve 200
			expect_http "$phase" "$CHECKOUT" "$PAYMENTS" "$PAYMENTS_PORT" POST /api/payments/authorize 200
		fi
	done

###############################################################################
# Record
###############################################################################

run_phase() {
	start_client frontend-a 0 run_sessions "$WORK/plan/frontend-a.tsv" "$1" 'frontend/3.2.1 (go-http-client/1.1)' 3/s 0.6
	start_client frontend-b 0.4 run_sessions "$WORK/plan/frontend-b.tsv" "$1" 'frontend/3.2.1 (go-http-client/1.1)' 3/s 0.6
	start_client mobile-bff 0.8 run_sessions "$WORK/plan/mobile-bff.tsv" "$1" 'okhttp/4.12.0' 3/s 0.6
	wait_clients
}

log "recording (about 100 s)"
capture_start
run_phase 1
touch "$SLOW_FLAG"
mark_event slowdown "inventory's POST /api/inventory/reserve starts taking 0.4-0.8 s (no deployment; inventory-7b6f9d4c85-m2qkw keeps running)"
run_phase 2
capture_stop

log "verifying what curl got"
verify_curl "${PLANS[@]}"

QUESTIONS=$(jq -n '[
	{id: "why-slow",
	 ask: "Checkout has been slow since about {{HHMM}} UTC. Why?",
	 facts_all: ["inventory-7b6f9d4c85-m2qkw", "/api/inventory/reserve"]},
	{id: "which-endpoints",
	 ask: "Is all of checkout slow since {{HHMM}} UTC, or only some of its endpoints?",
	 facts_all: ["/api/checkout/quote", "/api/inventory/stock"]},
	{id: "payments",
	 ask: "Could the payments service be behind the checkout slowdown?",
	 facts_all: ["payments-84c7d95b6f-vj5ts", "/api/payments/authorize"]}
]')
verify_and_write "$WORK/pods.tsv" "$WORK/services.tsv" \
	"checkout's POST /api/checkout slows down because inventory's POST /api/inventory/reserve turned slow (0.4-0.8 s instead of 5 ms); no deployment, quotes (inventory stock) and payments stay fast." \
	"$QUESTIONS" \
	"Two frontend pods and the mobile BFF (curl) call checkout ($CHECKOUT:$CHECKOUT_PORT), keep-alive sessions and single quotes on new connections, the same plan shape in both phases. checkout (nginx) proxies quotes to inventory GET /api/inventory/stock/{sku} and runs POST /api/checkout as two calls in a row (echo_subrequest): inventory POST /api/inventory/reserve, then payments POST /api/payments/authorize, each on a new connection from $CHECKOUT (proxy_bind). inventory's reserve sleeps 5 ms; at the event a flag file makes it sleep 0.4-0.8 s (echo_sleep, by the X-Request-Id's last hex digit). Nothing is redeployed: there is no rollout_at. Latency is tshark's http.time (request to response headers)."
