#!/usr/bin/env bash
# Record the harmless-rollout scenario (127.0.6.0/24): two frontend pods and
# the mobile BFF call the catalog service; halfway through, catalog 2.3.0 is
# replaced by 2.3.1, which behaves exactly the same. Both versions answer 404
# for a few discontinued products, at the same rate before and after.
#
#   sudo bash evals/scenarios/harmless-rollout/record.sh
#
# Writes capture.pcap, cluster.json, truth.json and scenario.json beside this
# script, once every check has passed (scripts/lib/record.sh).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR/../../.. source=scripts/lib/record.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../../scripts/lib/record.sh"

rec_init harmless-rollout 127.0.6

FRONTEND_A=127.0.6.10
FRONTEND_B=127.0.6.11
MOBILE_BFF=127.0.6.12
OLD_PODS=(127.0.6.20 127.0.6.21) # catalog 2.3.0
NEW_PODS=(127.0.6.30 127.0.6.31) # catalog 2.3.1
PORT=8610
HOST=catalog.shop.svc.cluster.local
# shellcheck disable=SC2034 # used by the library
REC_HTTP_PORTS=("$PORT")
SESSIONS=32 # per client and phase

cat >"$WORK/pods.tsv" <<EOF
frontend-5f8b7c9d64-ld9wz	shop	node-a	$FRONTEND_A	frontend	3.2.1	-	-
frontend-5f8b7c9d64-x7qkp	shop	node-c	$FRONTEND_B	frontend	3.2.1	-	-
mobile-bff-66d9b7f5c8-tn4hs	shop	node-b	$MOBILE_BFF	mobile-bff	1.8.4	-	-
catalog-7f5c9b8d46-2hvxr	shop	node-a	${OLD_PODS[0]}	catalog	2.3.0	-75h	event
catalog-7f5c9b8d46-mq8zc	shop	node-b	${OLD_PODS[1]}	catalog	2.3.0	-75h	event
catalog-6d4b8c9f75-w2kfj	shop	node-b	${NEW_PODS[0]}	catalog	2.3.1	event	-
catalog-6d4b8c9f75-9zbtn	shop	node-c	${NEW_PODS[1]}	catalog	2.3.1	event	-
EOF
cat >"$WORK/services.tsv" <<EOF
frontend	shop	10.96.12.40	frontend
mobile-bff	shop	10.96.12.52	mobile-bff
catalog	shop	10.96.33.7	catalog
EOF

###############################################################################
# Servers: one nginx per version, one server block per pod, same behaviour
###############################################################################

# catalog_server ADDR VERSION: a catalog pod. Products 90001-90009 were
# discontinued: 404. Listing pages take about 3 ms (echo_sleep).
catalog_server() {
	local addr=$1 version=$2
	cat <<EOF
    server {
        listen $addr:$PORT;
        server_name $HOST;
        location = /api/catalog/categories {
            return 200 '{"categories":[{"id":"shoes","count":412},{"id":"outdoor","count":198},{"id":"kids","count":87}]}';
        }
        location = /api/catalog/products {
            echo_sleep 0.003;
            echo '{"products":[{"id":1042,"name":"Trail runner","price":89.90},{"id":1043,"name":"Leather boot","price":129.00}],"page":\$arg_page}';
        }
        location ~ ^/api/catalog/products/9000[1-9]\$ {
            return 404 '{"error":"product not found","reason":"discontinued"}';
        }
        location ~ ^/api/catalog/products/(?<id>[0-9]+)\$ {
            return 200 '{"id":\$id,"name":"Product \$id","price":59.90,"stock":14}';
        }
        location = /healthz { return 200 '{"status":"ok","version":"$version"}'; }
        location / { return 404 '{"error":"not found"}'; }
    }
EOF
}

###############################################################################
# Plan
###############################################################################

# plan_client C ADDR: client C (0, 1, 2), SESSIONS sessions per phase, the same
# requests in both phases. Every fourth session is one product lookup on a new
# connection; the others are keep-alive browsing sessions. Every eighth
# session looks up a discontinued product (404).
plan_client() {
	local c=$1 addr=$2 phase k pod id
	local -a pods
	rid_seed $((4243 + c))
	for phase in 1 2; do
		pods=("${OLD_PODS[@]}")
		((phase == 1)) || pods=("${NEW_PODS[@]}")
		for k in $(seq 0 $((SESSIONS - 1))); do
			pod=${pods[$(((k + c) % 2))]}:$PORT
			one() { # one PATH EXPECT
				next_rid
				req "$phase" "$k" "$addr" "$pod" "$HOST" GET "$1" "$2" "X-Request-Id: $RID|Accept: application/json" -
			}
			id=$((1000 + (k * 53 + c * 17) % 700))
			if ((k % 4 == 3)); then
				one "/api/catalog/products/$id" 200
				continue
			fi
			((k % 5 != 0)) || one /api/catalog/categories 200
			one "/api/catalog/products?category=shoes&page=$((k % 6 + 1))" 200
			one "/api/catalog/products/$id" 200
			one "/api/catalog/products/$((id + 1))" 200
			((k % 8 != 5)) || one "/api/catalog/products/$((90001 + (k + c) % 9))" 404
			((k % 2 != 0)) || one "/api/catalog/products?category=outdoor&page=1" 200
		done
	done
}

plan_client 0 "$FRONTEND_A" >"$WORK/plan/frontend-a.tsv"
plan_client 1 "$FRONTEND_B" >"$WORK/plan/frontend-b.tsv"
plan_client 2 "$MOBILE_BFF" >"$WORK/plan/mobile-bff.tsv"
PLANS=("$WORK"/plan/{frontend-a,frontend-b,mobile-bff}.tsv)
expect_from_plans "${PLANS[@]}"

###############################################################################
# Record
###############################################################################

nginx_start catalog-2.3.0 < <(catalog_server "${OLD_PODS[0]}" 2.3.0; catalog_server "${OLD_PODS[1]}" 2.3.0)

run_phase() {
	start_client frontend-a 0 run_sessions "$WORK/plan/frontend-a.tsv" "$1" 'frontend/3.2.1 (go-http-client/1.1)' 4/s 0.5
	start_client frontend-b 0.3 run_sessions "$WORK/plan/frontend-b.tsv" "$1" 'frontend/3.2.1 (go-http-client/1.1)' 4/s 0.5
	start_client mobile-bff 0.6 run_sessions "$WORK/plan/mobile-bff.tsv" "$1" 'okhttp/4.12.0' 4/s 0.5
	wait_clients
}

log "recording (about 90 s)"
capture_start
run_phase 1
# The rollout: the 2.3.1 pods come up, traffic moves to them, the 2.3.0 pods go.
nginx_start catalog-2.3.1 < <(catalog_server "${NEW_PODS[0]}" 2.3.1; catalog_server "${NEW_PODS[1]}" 2.3.1)
mark_event rollout "catalog 2.3.0 (catalog-7f5c9b8d46-*) replaced by 2.3.1 (catalog-6d4b8c9f75-*)"
server_stop catalog-2.3.0
for pod in "${OLD_PODS[@]}"; do wait_closed "$pod" "$PORT"; done
run_phase 2
capture_stop

log "verifying what curl got"
verify_curl "${PLANS[@]}"

QUESTIONS=$(jq -n '[
	{id: "anything-to-worry",
	 ask: "We rolled out catalog 2.3.1 at {{HHMM}} UTC. Anything to worry about?",
	 facts_all: ["catalog-6d4b8c9f75", "/api/catalog/products"]},
	{id: "404s-new",
	 ask: "I see 404s from catalog. Did they start with the {{HHMM}} UTC rollout?",
	 facts_all: ["404", "/api/catalog/products/", "catalog-7f5c9b8d46"],
	 facts_any: [["discontinued", "not found"]]}
]')
verify_and_write "$WORK/pods.tsv" "$WORK/services.tsv" \
	"catalog 2.3.1 rollout that changes nothing: same endpoints, statuses and latency before and after, including the same small background of 404s for discontinued products." \
	"$QUESTIONS" \
	"Two frontend pods and the mobile BFF (curl) call catalog on port $PORT with the same plan in both phases: keep-alive browsing sessions and single-request connections, alternating between the two pods of the current version. At the rollout the 2.3.1 nginx started, traffic moved to it and the 2.3.0 nginx stopped. Both versions run the same configuration: products 90001-90009 answer 404 (discontinued), listing pages sleep 3 ms (echo_sleep). Status counts per phase are identical by construction; latency differs only by chance."
