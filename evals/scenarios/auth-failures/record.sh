#!/usr/bin/env bash
# Record the auth-failures scenario (127.0.5.0/24): the frontend, the mobile
# BFF and the reporting job call the orders API with bearer tokens. The
# reporting job's token expires about 40 s in: from then on every one of its
# requests gets 401 with {"error":"token expired"} and
# WWW-Authenticate: Bearer error="invalid_token"; the other callers keep
# getting 200/201 (and a few 404s for unknown orders, before and after).
#
#   sudo bash evals/scenarios/auth-failures/record.sh
#
# Writes capture.pcap, cluster.json, truth.json and scenario.json beside this
# script, once every check has passed (scripts/lib/record.sh).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR/../../.. source=scripts/lib/record.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../../scripts/lib/record.sh"

rec_init auth-failures 127.0.5

FRONTEND=127.0.5.10
MOBILE_BFF=127.0.5.11
REPORTING=127.0.5.12
ORDERS=127.0.5.20
PORT=8510
HOST=orders.shop.svc.cluster.local
# shellcheck disable=SC2034 # used by the library
REC_HTTP_PORTS=("$PORT")
EXPIRED_FLAG=$WORK/reporting-token-expired
# Sessions per client in phase 1 and phase 2.
FRONTEND_SESSIONS=(26 32)
MOBILE_SESSIONS=(30 36)
REPORTING_SESSIONS=(11 14)

cat >"$WORK/pods.tsv" <<EOF
frontend-7c5d9b8f46-wd8mq	shop	node-a	$FRONTEND	frontend	3.2.1	-	-
mobile-bff-66d9b7f5c8-tn4hs	shop	node-b	$MOBILE_BFF	mobile-bff	1.8.4	-	-
reporting-7d9f8b6c54-qz8rt	analytics	node-c	$REPORTING	reporting	0.14.2	-	-
orders-58c6b9d7f4-hx2mv	shop	node-b	$ORDERS	orders	3.1.0	-	-
EOF
cat >"$WORK/services.tsv" <<EOF
frontend	shop	10.96.12.40	frontend
mobile-bff	shop	10.96.12.52	mobile-bff
reporting	analytics	10.96.90.14	reporting
orders	shop	10.96.40.60	orders
EOF

###############################################################################
# Tokens: service-account JWTs (RS256, made-up signatures)
###############################################################################

b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
# jwt SUBJECT EXP: a token for SUBJECT expiring at EXP (epoch seconds).
jwt() {
	local header payload sig
	header=$(printf '{"alg":"RS256","kid":"k8s-sa-2026-10","typ":"JWT"}' | b64url)
	payload=$(printf '{"aud":["orders.shop.svc"],"exp":%s,"iat":%s,"iss":"https://kubernetes.default.svc.cluster.local","sub":"system:serviceaccount:%s"}' \
		"$2" "$(($2 - 3600))" "$1" | b64url)
	sig=$({
		printf '%s.%s' "$header" "$payload" | sha512sum
		printf '%s' "$payload" | sha512sum
	} | tr -d ' \n-' | b64url | cut -c1-342)
	printf '%s.%s.%s' "$header" "$payload" "$sig"
}
START=$(date +%s)
EXPIRES_AT=$((START + 39)) # the reporting token; phase 2 starts when it expires
FRONTEND_TOKEN=$(jwt shop:frontend $((START + 86400)))
MOBILE_TOKEN=$(jwt shop:mobile-bff $((START + 86400)))
REPORTING_TOKEN=$(jwt analytics:reporting "$EXPIRES_AT")

###############################################################################
# Server
###############################################################################

# orders knows the three tokens. Once the expiry flag exists, the reporting
# token is refused with 401 (error_page: the body and WWW-Authenticate).
nginx_start orders <<EOF
    map_hash_bucket_size 1024;
    map \$http_authorization \$caller {
        default anonymous;
        "Bearer $FRONTEND_TOKEN" frontend;
        "Bearer $MOBILE_TOKEN" mobile-bff;
        "Bearer $REPORTING_TOKEN" reporting;
    }
    server {
        listen $ORDERS:$PORT;
        server_name $HOST;
        set \$token_state \$caller;
        if (-f $EXPIRED_FLAG) { set \$token_state "\$caller:expired"; }
        if (\$token_state = "reporting:expired") { return 401; }
        error_page 401 @token_expired;
        location @token_expired {
            add_header WWW-Authenticate 'Bearer realm="orders", error="invalid_token", error_description="The access token expired"' always;
            return 401 '{"error":"token expired"}';
        }
        location = /api/orders {
            if (\$request_method = POST) {
                return 201 '{"order":"o-\$connection-\$connection_requests","status":"created"}';
            }
            return 200 '{"orders":[{"id":61042,"status":"open","total":89.89},{"id":61057,"status":"shipped","total":24.50}],"page":1}';
        }
        location = /api/orders/export {
            default_type text/csv;
            return 200 'order_id,created_at,status,total\n61042,2026-11-20T08:14:02Z,shipped,89.89\n61057,2026-11-20T09:40:51Z,shipped,24.50\n';
        }
        location ~ ^/api/orders/7000[0-9]\$ {
            return 404 '{"error":"order not found"}';
        }
        location ~ ^/api/orders/(?<id>[0-9]+)\$ {
            return 200 '{"id":\$id,"status":"open","items":2,"total":89.89}';
        }
        location / { return 404 '{"error":"not found"}'; }
    }
EOF

###############################################################################
# Plan
###############################################################################

auth() { printf 'Authorization: Bearer %s|Accept: application/json' "$1"; }

plan_frontend() {
	local phase k n id h
	h=$(auth "$FRONTEND_TOKEN")
	for phase in 1 2; do
		n=${FRONTEND_SESSIONS[$((phase - 1))]}
		for k in $(seq 0 $((n - 1))); do
			id=$((61000 + (k * 13 + phase * 7) % 400))
			req "$phase" "$k" "$FRONTEND" "$ORDERS:$PORT" "$HOST" GET "/api/orders?status=open&customer=$((3000 + k))" 200 "$h" -
			req "$phase" "$k" "$FRONTEND" "$ORDERS:$PORT" "$HOST" GET "/api/orders/$id" 200 "$h" -
			((k % 3 != 0)) || req "$phase" "$k" "$FRONTEND" "$ORDERS:$PORT" "$HOST" POST /api/orders 201 "$h" \
				"{\"cart\":\"c-$phase-$k\",\"payment\":\"card\"}"
			# A customer opens an old link now and then.
			((k % 7 != 3)) || req "$phase" "$k" "$FRONTEND" "$ORDERS:$PORT" "$HOST" GET "/api/orders/$((70000 + k % 10))" 404 "$h" -
		done
	done
}

plan_mobile() {
	local phase k n h
	h=$(auth "$MOBILE_TOKEN")
	for phase in 1 2; do
		n=${MOBILE_SESSIONS[$((phase - 1))]}
		for k in $(seq 0 $((n - 1))); do
			req "$phase" "$k" "$MOBILE_BFF" "$ORDERS:$PORT" "$HOST" GET "/api/orders?customer=$((4100 + k * 3))&limit=10" 200 "$h" -
			((k % 2 != 0)) || req "$phase" "$k" "$MOBILE_BFF" "$ORDERS:$PORT" "$HOST" GET "/api/orders/$((61200 + k))" 200 "$h" -
		done
	done
}

# plan_reporting: the report job's runs: an export and two pages of shipped
# orders, on one connection; all 401 once its token has expired.
plan_reporting() {
	local phase k n h status
	h=$(auth "$REPORTING_TOKEN")
	for phase in 1 2; do
		n=${REPORTING_SESSIONS[$((phase - 1))]}
		status=200
		((phase == 1)) || status=401
		for k in $(seq 0 $((n - 1))); do
			req "$phase" "$k" "$REPORTING" "$ORDERS:$PORT" "$HOST" GET "/api/orders/export?since=2026-11-20T00:00:00Z&format=csv" "$status" "$h" -
			req "$phase" "$k" "$REPORTING" "$ORDERS:$PORT" "$HOST" GET "/api/orders?status=shipped&page=1" "$status" "$h" -
			req "$phase" "$k" "$REPORTING" "$ORDERS:$PORT" "$HOST" GET "/api/orders?status=shipped&page=2" "$status" "$h" -
		done
	done
}

plan_frontend >"$WORK/plan/frontend.tsv"
plan_mobile >"$WORK/plan/mobile-bff.tsv"
plan_reporting >"$WORK/plan/reporting.tsv"
PLANS=("$WORK"/plan/{frontend,mobile-bff,reporting}.tsv)
expect_from_plans "${PLANS[@]}"

###############################################################################
# Record
###############################################################################

run_phase() {
	start_client frontend 0 run_sessions "$WORK/plan/frontend.tsv" "$1" 'frontend/3.2.1 (go-http-client/1.1)' 3/s 0.6
	start_client mobile-bff 0.4 run_sessions "$WORK/plan/mobile-bff.tsv" "$1" 'okhttp/4.12.0' 3/s 0.8
	start_client reporting 1 run_sessions "$WORK/plan/reporting.tsv" "$1" 'reporting/0.14.2 python-httpx/0.27.0' 2/s 2.4
	wait_clients
}

log "recording (about 90 s)"
capture_start
run_phase 1
# The token expires at EXPIRES_AT: wait for it if phase 1 ended early.
while (($(date +%s) < EXPIRES_AT)); do sleep 0.1; done
touch "$EXPIRED_FLAG"
mark_event token-expiry "the reporting job's service-account token expired (exp $(date -u -d "@$EXPIRES_AT" +%Y-%m-%dT%H:%M:%SZ)); nothing else changed"
run_phase 2
capture_stop

log "verifying what curl got"
verify_curl "${PLANS[@]}"

QUESTIONS=$(jq -n '[
	{id: "who-and-why",
	 ask: "Since about {{HHMM}} UTC some calls to the orders API fail with 401. Who is affected, and why?",
	 facts_all: ["reporting-7d9f8b6c54-qz8rt", "401"],
	 facts_any: [["token expired", "invalid_token"]]},
	{id: "others-affected",
	 ask: "Are the frontend and the mobile BFF affected by the orders 401s too?",
	 facts_all: ["frontend-7c5d9b8f46-wd8mq", "mobile-bff-66d9b7f5c8-tn4hs"]},
	{id: "which-endpoints",
	 ask: "Which orders endpoints does the reporting job call, and what do they return since {{HHMM}} UTC?",
	 facts_all: ["/api/orders/export", "401"]}
]')
verify_and_write "$WORK/pods.tsv" "$WORK/services.tsv" \
	"The reporting job's bearer token expires: from then on all its calls to orders get 401 {\"error\":\"token expired\"} with WWW-Authenticate: Bearer error=\"invalid_token\"; the frontend and mobile BFF keep getting 200/201 (and the same few 404s for unknown orders as before)." \
	"$QUESTIONS" \
	"orders ($ORDERS:$PORT, nginx) checks the Authorization header against three service-account tokens (JWT-shaped, made-up signatures). frontend, mobile-bff and reporting (curl) each use one keep-alive connection per session. The reporting token's exp is the event time: the script waits for it after phase 1, then a flag file makes orders answer the reporting token with 401 (error_page with WWW-Authenticate). The frontend's GET /api/orders/7000x are 404 in both phases."
