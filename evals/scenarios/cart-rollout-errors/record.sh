#!/usr/bin/env bash
# Record the cart-rollout-errors scenario (127.0.1.0/24): two frontend pods
# call the cart service; halfway through, cart 1.4.0 is replaced by 1.5.0, whose
# POST /api/cart/items answers 502 for 11 of 16 request ids because its
# connection to cart-db (127.0.1.40:5432) is refused. Other endpoints are fine.
#
#   sudo bash evals/scenarios/cart-rollout-errors/record.sh
#
# Writes capture.pcap, cluster.json, truth.json and scenario.json beside this
# script, once every check has passed (scripts/lib/record.sh).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR/../../.. source=scripts/lib/record.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../../scripts/lib/record.sh"

rec_init cart-rollout-errors 127.0.1

FRONTEND_A=127.0.1.10
FRONTEND_B=127.0.1.11
OLD_PODS=(127.0.1.20 127.0.1.21) # cart 1.4.0
NEW_PODS=(127.0.1.30 127.0.1.31) # cart 1.5.0
CART_DB=127.0.1.40
PORT=8110
DB_PORT=5432
HOST=cart.shop.svc.cluster.local
# shellcheck disable=SC2034 # used by the library
REC_HTTP_PORTS=("$PORT")
SESSIONS=40 # per frontend and phase

cat >"$WORK/pods.tsv" <<EOF
frontend-7d9c5b8f46-k2x8q	shop	node-a	$FRONTEND_A	frontend	3.2.1	-	-
frontend-7d9c5b8f46-w5nrt	shop	node-b	$FRONTEND_B	frontend	3.2.1	-	-
cart-6f7d8c9b5-p4x2n	shop	node-a	${OLD_PODS[0]}	cart	1.4.0	-52h	event
cart-6f7d8c9b5-hq7zl	shop	node-b	${OLD_PODS[1]}	cart	1.4.0	-52h	event
cart-85b9d7c64f-t6wkm	shop	node-b	${NEW_PODS[0]}	cart	1.5.0	event	-
cart-85b9d7c64f-9rnxv	shop	node-c	${NEW_PODS[1]}	cart	1.5.0	event	-
cart-db-6c9f7d5b84-qm2zt	shop	node-c	$CART_DB	cart-db	15.6	-	-
EOF
cat >"$WORK/services.tsv" <<EOF
frontend	shop	10.96.12.40	frontend
cart	shop	10.96.40.10	cart
cart-db	shop	10.96.40.20	cart-db
EOF

###############################################################################
# Servers: one nginx per version, one server block per pod
###############################################################################

# cart_server ADDR VERSION: a cart pod. 1.5.0 writes new items through cart-db
# for request ids ending in 0-9 or a ($via_db): the connection is refused and
# the pod answers 502.
cart_server() {
	local addr=$1 version=$2 items
	items="return 201 '{\"item_id\":\"i-\$connection-\$connection_requests\",\"status\":\"added\"}';"
	if [[ $version == 1.5.0 ]]; then
		items="if (\$via_db) { rewrite ^ /_cartdb last; }
            $items"
	fi
	cat <<EOF
    server {
        listen $addr:$PORT;
        server_name $HOST;
        location = /api/cart {
            return 200 '{"cart_id":"c-\$connection","items":[{"sku":"SKU-1042","qty":1},{"sku":"SKU-2210","qty":2}],"currency":"EUR"}';
        }
        location = /api/cart/items {
            if (\$request_method != POST) { return 405 '{"error":"method not allowed"}'; }
            $items
        }
        location = /api/cart/totals {
            return 200 '{"subtotal":84.90,"shipping":4.99,"total":89.89,"currency":"EUR"}';
        }
        location ~ ^/api/cart/lines/[0-9]+\$ {
            if (\$request_method != DELETE) { return 405 '{"error":"method not allowed"}'; }
            return 204;
        }
        location = /_cartdb {
            internal;
            proxy_bind \$server_addr;
            proxy_connect_timeout 2s;
            proxy_pass http://$CART_DB:$DB_PORT;
            error_page 502 504 @cartdb_down;
        }
        location @cartdb_down {
            return 502 '{"error":"upstream connect error: cart-db refused connection"}';
        }
        location / { return 404 '{"error":"not found"}'; }
    }
EOF
}

###############################################################################
# Plan
###############################################################################

# plan_frontend C ADDR: frontend C (0 or 1), SESSIONS sessions per phase. Three
# in four sessions are keep-alive (3 to 5 requests), every fourth is a single
# request on a new connection. Sessions alternate between the two pods of the
# phase's version.
plan_frontend() {
	local c=$1 addr=$2 phase k pod sku status
	local -a pods
	rid_seed $((7919 + c))
	for phase in 1 2; do
		pods=("${OLD_PODS[@]}")
		((phase == 1)) || pods=("${NEW_PODS[@]}")
		for k in $(seq 0 $((SESSIONS - 1))); do
			pod=${pods[$(((k + c) % 2))]}:$PORT
			one() { # one METHOD PATH EXPECT BODY
				next_rid
				req "$phase" "$k" "$addr" "$pod" "$HOST" "$1" "$2" "$3" "X-Request-Id: $RID|Accept: application/json" "$4"
			}
			add_item() {
				sku=$((1000 + (k * 37 + c * 11 + $1) % 400))
				next_rid
				status=201
				[[ $phase == 2 && ${RID: -1} == [0-9a] ]] && status=502
				req "$phase" "$k" "$addr" "$pod" "$HOST" POST /api/cart/items "$status" \
					"X-Request-Id: $RID|Accept: application/json" "{\"sku\":\"SKU-$sku\",\"qty\":$((k % 3 + 1))}"
			}
			if ((k % 4 == 3)); then
				one GET /api/cart/totals 200 -
				continue
			fi
			one GET /api/cart 200 -
			add_item 0
			((k % 2 == 1)) || add_item 1
			one GET /api/cart/totals 200 -
			((k % 3 != 0)) || one DELETE "/api/cart/lines/$((50000 + k * 7 + c))" 204 -
		done
	done
}

plan_frontend 0 "$FRONTEND_A" >"$WORK/plan/frontend-a.tsv"
plan_frontend 1 "$FRONTEND_B" >"$WORK/plan/frontend-b.tsv"
PLANS=("$WORK/plan/frontend-a.tsv" "$WORK/plan/frontend-b.tsv")
expect_from_plans "${PLANS[@]}"
# Every 502 is one refused connection from the new pod to cart-db.
awk -F'\t' '$8 == "502" { split($4, t, ":"); print $1 "\t" t[1] }' "${PLANS[@]}" |
	while IFS=$'\t' read -r phase pod; do expect_refused "$phase" "$pod" "$CART_DB" "$DB_PORT"; done

###############################################################################
# Record
###############################################################################

nginx_start cart-1.4.0 < <(cart_server "${OLD_PODS[0]}" 1.4.0; cart_server "${OLD_PODS[1]}" 1.4.0)

UA='frontend/3.2.1 (go-http-client/1.1)'
run_phase() {
	start_client frontend-a 0 run_sessions "$WORK/plan/frontend-a.tsv" "$1" "$UA" 4/s 0.4
	start_client frontend-b 0.3 run_sessions "$WORK/plan/frontend-b.tsv" "$1" "$UA" 4/s 0.4
	wait_clients
}

log "recording (about 90 s)"
capture_start
run_phase 1
# The rollout: the 1.5.0 pods come up, traffic moves to them, the 1.4.0 pods go.
nginx_start cart-1.5.0 < <(
	echo "    map \$http_x_request_id \$via_db { ~[0-9a]\$ 1; default 0; }"
	cart_server "${NEW_PODS[0]}" 1.5.0
	cart_server "${NEW_PODS[1]}" 1.5.0
)
mark_event rollout "cart 1.4.0 (cart-6f7d8c9b5-*) replaced by 1.5.0 (cart-85b9d7c64f-*)"
server_stop cart-1.4.0
for pod in "${OLD_PODS[@]}"; do wait_closed "$pod" "$PORT"; done
run_phase 2
capture_stop

log "verifying what curl got"
verify_curl "${PLANS[@]}"

QUESTIONS=$(jq -n '[
	{id: "what-broke",
	 ask: "We rolled out cart 1.5.0 at {{HHMM}} UTC. Did the rollout break anything?",
	 facts_all: ["cart-85b9d7c64f", "/api/cart/items", "502"],
	 facts_any: [["upstream", "cart-db"]]},
	{id: "which-pods",
	 ask: "Which cart pods are returning errors since {{HHMM}} UTC, and on which endpoint?",
	 facts_all: ["cart-85b9d7c64f-t6wkm", "cart-85b9d7c64f-9rnxv", "/api/cart/items", "502"]},
	{id: "root-cause",
	 ask: "The new cart pods fail to add items to carts. What are they failing to reach?",
	 facts_all: ["cart-db"],
	 facts_any: [["refused", "RST", "reset"]]}
]')
verify_and_write "$WORK/pods.tsv" "$WORK/services.tsv" \
	"cart 1.5.0 rollout: POST /api/cart/items on the new pods answers 502 (cart-db connection refused) for about two thirds of requests; GET /api/cart, GET /api/cart/totals and DELETE /api/cart/lines/{id} stay fine." \
	"$QUESTIONS" \
	"frontend pods (127.0.1.10/.11, curl) call cart on port $PORT, keep-alive sessions and single-request connections, sessions alternating between the two pods of the current version. At the rollout the 1.5.0 nginx started, traffic moved to it and the 1.4.0 nginx stopped. In 1.5.0, POST /api/cart/items with an X-Request-Id ending in 0-9 or a is proxied to cart-db $CART_DB:$DB_PORT, where nothing listens: the kernel answers RST, nginx answers 502 with a JSON body. Each 502 is one refused connection from the answering cart pod."
