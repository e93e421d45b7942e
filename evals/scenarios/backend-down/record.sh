#!/usr/bin/env bash
# Record the backend-down scenario (127.0.4.0/24): the frontend calls the API
# gateway, which proxies /api/recommendations to two recommendations pods and
# /api/products/{id} to catalog; the email-digest job calls the
# recommendations pods directly. Halfway through, the server of one
# recommendations pod stops: its port is closed, the kernel answers every SYN
# with RST, the gateway answers 502 for the requests it routes there and the
# email-digest job's connections to it are refused. The other pod is fine.
#
#   sudo bash evals/scenarios/backend-down/record.sh
#
# Writes capture.pcap, cluster.json, truth.json and scenario.json beside this
# script, once every check has passed (scripts/lib/record.sh).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR/../../.. source=scripts/lib/record.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../../scripts/lib/record.sh"

rec_init backend-down 127.0.4

FRONTEND=127.0.4.5
DIGEST=127.0.4.6
GATEWAY=127.0.4.10
RECO_A=127.0.4.20 # stays up
RECO_B=127.0.4.21 # goes down
CATALOG=127.0.4.30
GATEWAY_PORT=8410
RECO_PORT=8420
CATALOG_PORT=8430
GATEWAY_HOST=api-gateway.shop.svc.cluster.local
RECO_HOST=recommendations.shop.svc.cluster.local
CATALOG_HOST=catalog.shop.svc.cluster.local
# shellcheck disable=SC2034 # used by the library
REC_HTTP_PORTS=("$GATEWAY_PORT" "$RECO_PORT" "$CATALOG_PORT")
SESSIONS=34       # frontend sessions per phase
DIGEST_CALLS=40   # email-digest requests per phase

cat >"$WORK/pods.tsv" <<EOF
frontend-7f6d9c8b45-pk4wd	shop	node-a	$FRONTEND	frontend	3.2.1	-	-
email-digest-5b9c7d6f84-hz7nq	shop	node-c	$DIGEST	email-digest	0.9.2	-	-
api-gateway-6d9f7c8b54-r8tkw	shop	node-a	$GATEWAY	api-gateway	2.1.0	-	-
recommendations-5b7c9d8f64-2mqxz	shop	node-b	$RECO_A	recommendations	4.2.0	-	-
recommendations-5b7c9d8f64-vt6kh	shop	node-c	$RECO_B	recommendations	4.2.0	-	-
catalog-7f5c9b8d46-2hvxr	shop	node-b	$CATALOG	catalog	2.3.0	-	-
EOF
# recommendations is headless: email-digest calls the pods directly.
cat >"$WORK/services.tsv" <<EOF
frontend	shop	10.96.12.40	frontend
email-digest	shop	10.96.12.77	email-digest
api-gateway	shop	10.96.10.5	api-gateway
recommendations	shop	None	recommendations
catalog	shop	10.96.33.7	catalog
EOF

###############################################################################
# Servers: one nginx per pod
###############################################################################

# The gateway picks the recommendations pod by the request id's last hex digit
# (even: A, odd: B), keeps trying a pod that fails (max_fails=0) and never
# retries on the other (proxy_next_upstream off): requests routed to a dead
# pod get nginx's own 502 page.
nginx_start api-gateway <<EOF
    map \$http_x_request_id \$reco_pod { ~[02468ace]\$ reco_a; default reco_b; }
    upstream reco_a { server $RECO_A:$RECO_PORT max_fails=0; }
    upstream reco_b { server $RECO_B:$RECO_PORT max_fails=0; }
    upstream catalog { server $CATALOG:$CATALOG_PORT max_fails=0; }
    server {
        listen $GATEWAY:$GATEWAY_PORT;
        server_name $GATEWAY_HOST;
        proxy_bind \$server_addr;
        proxy_next_upstream off;
        proxy_connect_timeout 2s;
        location = /api/recommendations {
            proxy_set_header Host $RECO_HOST:$RECO_PORT;
            proxy_pass http://\$reco_pod;
        }
        location ~ ^/api/products/[0-9]+\$ {
            proxy_set_header Host $CATALOG_HOST:$CATALOG_PORT;
            proxy_pass http://catalog;
        }
        location / { return 404 '{"error":"not found"}'; }
    }
EOF

# reco_server ADDR: a recommendations pod.
reco_server() {
	cat <<EOF
    server {
        listen $1:$RECO_PORT;
        server_name $RECO_HOST;
        location = /api/recommendations {
            echo_sleep 0.008;
            echo '{"user":"\$arg_user","items":[1042,2210,3307,1188,2764],"model":"als-v7"}';
        }
        location / { return 404 '{"error":"not found"}'; }
    }
EOF
}
nginx_start reco-a < <(reco_server "$RECO_A")
nginx_start reco-b < <(reco_server "$RECO_B")

nginx_start catalog <<EOF
    server {
        listen $CATALOG:$CATALOG_PORT;
        server_name $CATALOG_HOST;
        location ~ ^/api/products/(?<id>[0-9]+)\$ {
            echo_sleep 0.002;
            echo '{"id":\$id,"name":"Product \$id","price":59.90}';
        }
        location / { return 404 '{"error":"not found"}'; }
    }
EOF

###############################################################################
# Plan
###############################################################################

# plan_frontend: SESSIONS keep-alive sessions per phase through the gateway:
# products and recommendations. Every fifth session is a single request.
plan_frontend() {
	local phase k id user
	rid_seed 6007
	for phase in 1 2; do
		for k in $(seq 0 $((SESSIONS - 1))); do
			id=$((1000 + (k * 41) % 900))
			user=$((52000 + (phase - 1) * 500 + k))
			product() {
				next_rid
				req "$phase" "$k" "$FRONTEND" "$GATEWAY:$GATEWAY_PORT" "$GATEWAY_HOST" GET "/api/products/$1" 200 \
					"X-Request-Id: $RID|Accept: application/json" -
			}
			reco() {
				local status=200
				next_rid
				[[ $phase == 2 && ${RID: -1} == [13579bdf] ]] && status=502
				req "$phase" "$k" "$FRONTEND" "$GATEWAY:$GATEWAY_PORT" "$GATEWAY_HOST" GET "/api/recommendations?user=$user$1" \
					"$status" "X-Request-Id: $RID|Accept: application/json" -
			}
			if ((k % 5 == 4)); then
				reco ""
				continue
			fi
			product "$id"
			reco ""
			product $((id + 7))
			((k % 2 == 1)) || reco "&context=cart"
			((k % 3 != 0)) || product $((id + 13))
		done
	done
}

# plan_digest: DIGEST_CALLS requests per phase straight to the pods, in turn,
# each on a new connection; after the event those to pod B are refused.
plan_digest() {
	local phase k pod status
	rid_seed 6011
	for phase in 1 2; do
		for k in $(seq 0 $((DIGEST_CALLS - 1))); do
			pod=$RECO_A status=200
			if ((k % 2 == 1)); then
				pod=$RECO_B
				((phase == 1)) || status=refused
			fi
			next_rid
			req "$phase" "$k" "$DIGEST" "$pod:$RECO_PORT" "$RECO_HOST" GET \
				"/api/recommendations?user=$((70000 + (phase - 1) * 500 + k))&limit=5" "$status" \
				"X-Request-Id: $RID|Accept: application/json" -
		done
	done
}

plan_frontend >"$WORK/plan/frontend.tsv"
plan_digest >"$WORK/plan/email-digest.tsv"
PLANS=("$WORK"/plan/{frontend,email-digest}.tsv)
expect_from_plans "${PLANS[@]}"
# The gateway's own calls: one per request, to the pod the request id picks;
# to pod B after the event, a refused connection instead.
while IFS=$'\t' read -r phase _ _ _ _ method path status headers _; do
	if [[ $path == /api/products/* ]]; then
		expect_http "$phase" "$GATEWAY" "$CATALOG" "$CATALOG_PORT" "$method" "$path" 200
		continue
	fi
	rid=${headers#X-Request-Id: }
	rid=${rid%%|*}
	if [[ ${rid: -1} == [02468ace] ]]; then
		expect_http "$phase" "$GATEWAY" "$RECO_A" "$RECO_PORT" "$method" "$path" 200
	elif [[ $status == 502 ]]; then
		expect_refused "$phase" "$GATEWAY" "$RECO_B" "$RECO_PORT"
	else
		expect_http "$phase" "$GATEWAY" "$RECO_B" "$RECO_PORT" "$method" "$path" 200
	fi
done <"$WORK/plan/frontend.tsv"

###############################################################################
# Record
###############################################################################

run_phase() {
	start_client frontend 0 run_sessions "$WORK/plan/frontend.tsv" "$1" 'frontend/3.2.1 (go-http-client/1.1)' 4/s 0.6
	start_client email-digest 0.5 run_sessions "$WORK/plan/email-digest.tsv" "$1" 'email-digest/0.9.2 python-requests/2.31.0' 1/s 0.9
	wait_clients
}

log "recording (about 90 s)"
capture_start
run_phase 1
server_stop reco-b
wait_closed "$RECO_B" "$RECO_PORT"
mark_event pod-down "recommendations-5b7c9d8f64-vt6kh's server stopped (SIGTERM): $RECO_B:$RECO_PORT is closed; the pod is not deleted"
run_phase 2
capture_stop

log "verifying what curl got"
verify_curl "${PLANS[@]}"

QUESTIONS=$(jq -n '[
	{id: "what-happened",
	 ask: "Users have been getting errors from recommendations since about {{HHMM}} UTC. What happened?",
	 facts_all: ["recommendations-5b7c9d8f64-vt6kh", "/api/recommendations", "502"],
	 facts_any: [["refused", "reset", "RST"]]},
	{id: "all-pods",
	 ask: "Are all recommendations pods affected?",
	 facts_all: ["recommendations-5b7c9d8f64-vt6kh", "recommendations-5b7c9d8f64-2mqxz"]},
	{id: "who-else",
	 ask: "Besides the API gateway, is anything else failing to reach recommendations since {{HHMM}} UTC?",
	 facts_all: ["email-digest-5b9c7d6f84-hz7nq", "recommendations-5b7c9d8f64-vt6kh"],
	 facts_any: [["refused", "reset", "RST"]]}
]')
verify_and_write "$WORK/pods.tsv" "$WORK/services.tsv" \
	"One recommendations pod's server stops: connections to it are refused (RST), the API gateway answers 502 for the GET /api/recommendations requests it routes there, and the email-digest job's direct connections to it are refused; the other pod and /api/products/{id} are fine." \
	"$QUESTIONS" \
	"The frontend ($FRONTEND, curl, keep-alive sessions) calls the API gateway ($GATEWAY:$GATEWAY_PORT, nginx), which proxies GET /api/products/{id} to catalog and GET /api/recommendations to pod A ($RECO_A) or B ($RECO_B) by the X-Request-Id's last hex digit, from its own address (proxy_bind), with proxy_next_upstream off and max_fails=0. email-digest ($DIGEST) calls the pods directly, in turn, one request per connection. At the event pod B's nginx gets SIGTERM; afterwards each gateway request for B is one refused connection and a 502 (nginx's HTML error page), and each email-digest call to B is refused (curl exit 7, no HTTP)."
