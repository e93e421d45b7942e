#!/usr/bin/env bash
# Record the dns-misspelt-service scenario (127.0.3.0/24): the frontend
# places orders with the orders service; for each order, orders looks up
# inventory and payments in cluster DNS (dnsmasq as CoreDNS on 127.0.3.53, A
# and AAAA like Go's resolver) and calls them. Halfway through, a config
# change misspells the payments host name: orders now looks up
# paymnets.payments.svc.cluster.local, gets NXDOMAIN, never calls payments
# again, and answers the frontend 503.
#
#   sudo bash evals/scenarios/dns-misspelt-service/record.sh
#
# Writes capture.pcap, cluster.json, truth.json and scenario.json beside this
# script, once every check has passed (scripts/lib/record.sh).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR/../../.. source=scripts/lib/record.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../../scripts/lib/record.sh"

rec_init dns-misspelt-service 127.0.3

FRONTEND=127.0.3.5
ORDERS=127.0.3.10
PAYMENTS=127.0.3.20
INVENTORY=127.0.3.30
DNS=127.0.3.53
ORDERS_PORT=8310
PAYMENTS_PORT=8320
INVENTORY_PORT=8330
ORDERS_HOST=orders.shop.svc.cluster.local
PAYMENTS_NAME=payments.payments.svc.cluster.local
TYPO_NAME=paymnets.payments.svc.cluster.local
INVENTORY_NAME=inventory.shop.svc.cluster.local
# shellcheck disable=SC2034 # used by the library
REC_HTTP_PORTS=("$ORDERS_PORT" "$PAYMENTS_PORT" "$INVENTORY_PORT")
ORDERS_PER_PHASE=80
CHANGED_FLAG=$WORK/orders-config-changed

cat >"$WORK/pods.tsv" <<EOF
frontend-6c9d8b7f45-vh2lp	shop	node-a	$FRONTEND	frontend	3.2.1	-	-
orders-6b8f9c7d54-x2vkp	shop	node-b	$ORDERS	orders	3.1.0	-	-
payments-5f6c8d9b47-lq4wz	payments	node-c	$PAYMENTS	payments	2.0.3	-	-
inventory-7c9d5f8b46-hn2rt	shop	node-a	$INVENTORY	inventory	1.9.2	-	-
coredns-5d78c9869d-8xk2m	kube-system	node-b	$DNS	coredns	1.11.1	-	-
EOF
# payments and inventory are headless: their names resolve to the pods.
cat >"$WORK/services.tsv" <<EOF
frontend	shop	10.96.12.40	frontend
orders	shop	10.96.40.60	orders
payments	payments	None	payments
inventory	shop	None	inventory
kube-dns	kube-system	10.96.0.10	coredns
EOF

###############################################################################
# Servers
###############################################################################

# shellcheck disable=SC2054 # the commas belong to dnsmasq's option values
dnsmasq_start coredns "$DNS" 53 --local=/cluster.local/ --local-ttl=30 \
	--host-record="$ORDERS_HOST,$ORDERS" \
	--host-record="$PAYMENTS_NAME,$PAYMENTS" \
	--host-record="$INVENTORY_NAME,$INVENTORY"

# orders: answers an order after 250 ms (while it reserves stock and charges
# the payment, which the order loop below does from the orders pod's
# address); once the config has changed, with 503 and the resolver's error.
nginx_start orders <<EOF
    server {
        listen $ORDERS:$ORDERS_PORT;
        server_name $ORDERS_HOST;
        location = /api/orders {
            if (\$request_method != POST) { return 405 '{"error":"method not allowed"}'; }
            if (-f $CHANGED_FLAG) {
                echo_sleep 0.25;
                echo_status 503;
                echo '{"error":"payment failed: dial tcp: lookup $TYPO_NAME on 10.96.0.10:53: no such host"}';
                break;
            }
            echo_sleep 0.25;
            echo_status 201;
            echo '{"order":"o-\$connection","status":"paid"}';
        }
        location ~ ^/api/orders/(?<id>[0-9]+)\$ {
            return 200 '{"order":"o-\$id","status":"processing"}';
        }
        location / { return 404 '{"error":"not found"}'; }
    }
EOF

nginx_start payments <<EOF
    server {
        listen $PAYMENTS:$PAYMENTS_PORT;
        server_name $PAYMENTS_NAME;
        location = /api/payments/charge {
            if (\$request_method != POST) { return 405 '{"error":"method not allowed"}'; }
            echo_sleep 0.02;
            echo '{"charge":"ch-\$connection","status":"succeeded"}';
        }
        location / { return 404 '{"error":"not found"}'; }
    }
EOF

nginx_start inventory <<EOF
    server {
        listen $INVENTORY:$INVENTORY_PORT;
        server_name $INVENTORY_NAME;
        location = /api/inventory/reserve {
            if (\$request_method != POST) { return 405 '{"error":"method not allowed"}'; }
            echo_sleep 0.005;
            echo '{"reservation":"r-\$connection","status":"reserved"}';
        }
        location / { return 404 '{"error":"not found"}'; }
    }
EOF

###############################################################################
# Plan: the steps of every order, in order
###############################################################################

# One step a line, tab-separated:
#   dns   PHASE CLIENT SERVER NAME TYPE RCODE
#   http  PHASE CLIENT TARGET HOST METHOD PATH STATUS BODY fg|bg
#         TARGET is ADDR:PORT or @NAME:PORT (the address NAME last resolved to)
#   wait  PHASE   (wait for the background request; check its status)
#   sleep PHASE SECONDS
step() { local IFS=$'\t'; printf '%s\n' "$*"; }

plan_orders() {
	local phase k name rcode
	for phase in 1 2; do
		name=$PAYMENTS_NAME rcode=NOERROR
		((phase == 1)) || name=$TYPO_NAME rcode=NXDOMAIN
		for k in $(seq 0 $((ORDERS_PER_PHASE - 1))); do
			local id=$((81000 + (phase - 1) * 1000 + k))
			# The frontend places the order; orders answers when done.
			step http "$phase" "$FRONTEND" "$ORDERS:$ORDERS_PORT" "$ORDERS_HOST" POST /api/orders \
				"$([[ $phase == 1 ]] && echo 201 || echo 503)" "{\"cart\":\"c-$id\",\"payment\":\"card\"}" bg
			# orders: reserve stock, then charge.
			step dns "$phase" "$ORDERS" "$DNS" "$INVENTORY_NAME" A NOERROR
			step dns "$phase" "$ORDERS" "$DNS" "$INVENTORY_NAME" AAAA NOERROR
			step http "$phase" "$ORDERS" "@$INVENTORY_NAME:$INVENTORY_PORT" "$INVENTORY_NAME" POST \
				/api/inventory/reserve 200 "{\"order\":\"o-$id\",\"items\":$((k % 3 + 1))}" fg
			step dns "$phase" "$ORDERS" "$DNS" "$name" A "$rcode"
			step dns "$phase" "$ORDERS" "$DNS" "$name" AAAA "$rcode"
			((phase == 2)) || step http "$phase" "$ORDERS" "@$PAYMENTS_NAME:$PAYMENTS_PORT" "$PAYMENTS_NAME" POST \
				/api/payments/charge 200 "{\"order\":\"o-$id\",\"amount\":$((20 + k % 50)).90,\"currency\":\"EUR\"}" fg
			step wait "$phase"
			# Now and then the frontend polls an earlier order.
			((k % 4 != 1)) || step http "$phase" "$FRONTEND" "$ORDERS:$ORDERS_PORT" "$ORDERS_HOST" GET \
				"/api/orders/$((id - 1))" 200 - fg
			step sleep "$phase" 0.3
		done
	done
}
plan_orders >"$WORK/plan/orders.steps"

# The expected traffic, names resolved as planned.
declare -A PLANNED_ADDR=([$INVENTORY_NAME]=$INVENTORY [$PAYMENTS_NAME]=$PAYMENTS)
while IFS=$'\t' read -r kind phase client target host method path status _; do
	case $kind in
	dns) expect_dns "$phase" "$client" "$target" "$host" "$method" "$path" ;;
	http)
		if [[ $target == @* ]]; then
			target=${target#@}
			target=${PLANNED_ADDR[${target%:*}]}:${target##*:}
		fi
		expect_http "$phase" "$client" "${target%:*}" "${target##*:}" "$method" "$path" "$status"
		;;
	esac
done <"$WORK/plan/orders.steps"

###############################################################################
# Record
###############################################################################

# lookup CLIENT SERVER NAME TYPE RCODE: dig like a pod's resolver (one try);
# fails unless the answer's rcode is RCODE. Prints the first address.
lookup() {
	local out rcode
	out=$(dig -b "$1" "@$2" +tries=1 +time=2 +noall +comments +answer "$3" "$4" 2>/dev/null) ||
		die "dig $3 $4 failed"
	rcode=$(sed -n 's/.*status: \([A-Z]*\),.*/\1/p' <<<"$out")
	[[ $rcode == "$5" ]] || die "dig $3 $4: $rcode, planned $5"
	awk '$4 == "A" || $4 == "AAAA" { print $5; exit }' <<<"$out"
}

# call CLIENT ADDR:PORT HOST METHOD PATH BODY: one request on a new
# connection; prints the status.
call() {
	local -a body=()
	[[ $6 == - ]] || body=(-H 'Content-Type: application/json' --data-raw "$6")
	curl -sS --max-time 10 --interface "$1" -A 'Go-http-client/1.1' -o /dev/null -w '%{http_code}' \
		--resolve "$3:${2##*:}:${2%:*}" -H 'Accept: application/json' "${body[@]}" \
		-X "$4" "http://$3:${2##*:}$5"
}

# run_orders PHASE: the steps of PHASE, checking every status and rcode.
# Consecutive lookups run at the same time (A and AAAA, like Go's resolver).
run_orders() {
	local want=$1 kind phase client target host method path status body mode got bg_pid='' bg_want='' addr i
	local bg_out=$WORK/logs/bg.status
	local -a pending=()
	declare -A resolved=()
	flush_lookups() {
		local pid name type
		for i in "${!pending[@]}"; do
			IFS='|' read -r pid name type <<<"${pending[$i]}"
			wait "$pid" || die "the lookup of $name $type failed"
			[[ $type != A ]] || resolved[$name]=$(cat "$WORK/logs/lookup.$i")
		done
		pending=()
	}
	while IFS=$'\t' read -r kind phase client target host method path status body mode; do
		[[ $phase == "$want" ]] || continue
		[[ $kind == dns ]] || flush_lookups
		case $kind in
		dns)
			lookup "$client" "$target" "$host" "$method" "$path" >"$WORK/logs/lookup.${#pending[@]}" &
			pending+=("$!|$host|$method")
			;;
		http)
			if [[ $target == @* ]]; then
				target=${target#@}
				addr=${resolved[${target%:*}]:-}
				[[ -n $addr ]] || die "$host was not resolved"
				target=$addr:${target##*:}
			fi
			if [[ $mode == bg ]]; then
				call "$client" "$target" "$host" "$method" "$path" "$body" >"$bg_out" &
				bg_pid=$! bg_want=$status
				sleep 0.01
			else
				got=$(call "$client" "$target" "$host" "$method" "$path" "$body")
				[[ $got == "$status" ]] || die "$method $path from $client: $got, planned $status"
			fi
			;;
		wait)
			wait "$bg_pid" || die "the frontend's request failed"
			got=$(cat "$bg_out")
			[[ $got == "$bg_want" ]] || die "POST /api/orders: $got, planned $bg_want"
			;;
		sleep) sleep "$client" ;;
		esac
	done <"$WORK/plan/orders.steps"
	flush_lookups
}

log "recording (about 100 s)"
capture_start
start_client orders 0 run_orders 1
wait_clients
touch "$CHANGED_FLAG"
mark_event config-change "orders' payments URL changed to http://$TYPO_NAME:$PAYMENTS_PORT (misspelt); orders is not restarted"
start_client orders 0 run_orders 2
wait_clients
capture_stop

QUESTIONS=$(jq -n '[
	{id: "orders-failing",
	 ask: "Orders have been failing since about {{HHMM}} UTC. What is wrong?",
	 facts_all: ["paymnets.payments.svc.cluster.local", "NXDOMAIN", "orders-6b8f9c7d54-x2vkp"]},
	{id: "payments-reached",
	 ask: "Is the orders service still reaching payments?",
	 facts_all: ["orders-6b8f9c7d54-x2vkp", "payments-5f6c8d9b47-lq4wz", "/api/payments/charge"]},
	{id: "dns-broken",
	 ask: "Is cluster DNS itself broken since {{HHMM}} UTC?",
	 facts_all: ["inventory.shop.svc.cluster.local", "NOERROR", "NXDOMAIN"]}
]')
verify_and_write "$WORK/pods.tsv" "$WORK/services.tsv" \
	"A config change in orders misspells the payments host: orders looks up paymnets.payments.svc.cluster.local, gets NXDOMAIN, stops calling payments and answers POST /api/orders with 503; DNS itself is fine (inventory still resolves)." \
	"$QUESTIONS" \
	"dnsmasq on $DNS:53 stands in for CoreDNS (pod coredns-5d78c9869d-8xk2m, Service kube-dns 10.96.0.10), --local=/cluster.local/ so unknown cluster names are NXDOMAIN. For each order the frontend ($FRONTEND, curl) POSTs /api/orders to orders ($ORDERS:$ORDERS_PORT, nginx answering after 250 ms); meanwhile the orders pod's outgoing calls run from $ORDERS: dig A and AAAA at once for $INVENTORY_NAME (AAAA is NOERROR without answers), POST /api/inventory/reserve to the address dig returned, dig A and AAAA for the payments name, and POST /api/payments/charge to its address. Every fourth order the frontend also polls GET /api/orders/{id}. At the event a flag file makes orders answer 503 with Go's resolver error, and the order loop looks up the misspelt name: NXDOMAIN for A and AAAA, no call to payments. Every request is on a new connection."
