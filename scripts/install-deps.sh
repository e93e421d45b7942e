#!/usr/bin/env bash
# install-deps.sh — install the Debian packages wirescope's tests, benchmarks
# and recording scripts use, if they are missing. Safe to run repeatedly; it
# does nothing when everything is present. Needs root (or sudo) to install.
set -euo pipefail

# command → Debian package
declare -A need=(
	[tshark]=tshark            # truth files: tests compare dissection with tshark's reading
	[capinfos]=tshark
	[tcpdump]=tcpdump          # recording captures, benchmarks
	[nginx]=nginx-light        # real HTTP server for recordings and the benchmark capture
	[dnsmasq]=dnsmasq-base     # real DNS server for recordings
	[dig]=bind9-dnsutils
	[ping]=iputils-ping        # the recorded ICMP test (cmd/wirescope/icmp_test.go): echo over IPv4 and IPv6
	[curl]=curl
	[nghttpd]=nghttp2-server   # real HTTP/2 server for the recorded HTTP/2 test (cmd/wirescope/http2_test.go)
	[nghttp]=nghttp2-client    # its HTTP/2 client (several requests on a connection, Upgrade: h2c)
	[h2load]=nghttp2-client    # many HTTP/2 streams on a few connections; scripts/record-tls.sh --bulk (HTTPS, SSLKEYLOGFILE)
	[nghttpx]=nghttp2-proxy    # takes Upgrade: h2c (nghttpd does not)
	[openssl]=openssl          # the kube-apiserver of the chart tests (scripts/k8s-env.sh): its certificates and keys; scripts/record-tls.sh: a throwaway CA, s_client
	[timeout]=coreutils        # scripts/record-tls.sh bounds each s_client
	[nc]=netcat-openbsd
	[jq]=jq
	[ip]=iproute2              # network namespaces and veth pairs for the agent's tests
	[nft]=nftables             # the cluster test: a Service's DNAT on the client's node, as kube-proxy does
	[sysctl]=procps
	[node]=nodejs              # MCP clients the tests drive (test/mcpclients: TypeScript SDK, Inspector)
	[npm]=npm
	[clang]=clang              # make generate: bpf2go compiles bpf/attrib.bpf.c
	[llvm-strip]=llvm          # make generate: bpf2go strips DWARF from the eBPF objects
	[redis-server]=redis-server  # real Redis 7 for scripts/record-redis.sh (run from its own config in a temporary directory)
	[redis-cli]=redis-tools      # its clients (a dependency of redis-server): redis-cli sessions, RESP3 (-3), pub/sub
	[redis-benchmark]=redis-tools # scripts/record-redis.sh: pipelined commands, and --bulk
	[psql]=postgresql-client     # psql; scripts/record-postgres.sh runs PostgreSQL 15's own psql and pgbench (the postgresql package, below)
	[setpriv]=util-linux         # scripts/record-postgres.sh runs postgres as the postgres user
	[mariadbd]=mariadb-server  # scripts/record-mysql.sh: MariaDB run from a temporary directory (no system service used)
	[mariadb-install-db]=mariadb-server
	[mariadb]=mariadb-client   # scripts/record-mysql.sh: the mariadb CLI and mysqlslap
	[mysqlslap]=mariadb-client
	[mosquitto]=mosquitto            # scripts/record-mqtt.sh: a real MQTT broker (3.1, 3.1.1, 5.0), run from its own config in a temporary directory
	[mosquitto_pub]=mosquitto-clients # its clients: mosquitto_pub/mosquitto_sub (-V mqttv31/mqttv311/mqttv5, -D properties)
	[kcat]=kcat                # scripts/record-kafka.sh: a second Kafka client (librdkafka, its own API versions), -P and -C
	[rabbitmq-server]=rabbitmq-server # scripts/record-amqp.sh: RabbitMQ run as its own node from a temporary directory (the system service, if the package starts one, is neither used nor in the way)
	[amqp-publish]=amqp-tools  # scripts/record-amqp.sh: rabbitmq-c's amqp-declare-queue, amqp-publish, amqp-get, amqp-delete-queue
	[slapd]=slapd              # scripts/record-ldap.sh: OpenLDAP's slapd and slapadd, run from its own slapd.conf in a temporary directory (the package's service, on 389 if its postinst starts one, is never used)
	[ldapsearch]=ldap-utils    # its clients: ldapsearch, ldapadd, ldapmodify, ldapdelete, ldapmodrdn, ldapcompare, ldapwhoami, ldappasswd
	[freeradius]=freeradius    # scripts/record-radius.sh: FreeRADIUS 3.2 run in the foreground from a copy of /etc/freeradius/3.0 in a temporary directory (the package's service, if its postinst starts one, is never used)
	[radclient]=freeradius-utils # its client: radclient (PAP, CHAP, accounting, Status-Server, retransmissions)
	[gcc]=gcc                  # bpf/tlslib's tests: a C program linked statically against libssl.a, then stripped
	[strip]=binutils           # bpf/tlslib's tests: strip, and readelf for the offsets the tests check against
	[readelf]=binutils
	[python3]=python3          # bpf/tlslib's tests: processes that map libssl (import ssl) and libgnutls (ctypes)
	[gnutls-cli]=gnutls-bin    # capture/tlsplain's test: a GnuTLS client read through the TLS probes
	[bssl-tool]=android-boringssl # capture/tlsplain's test: a BoringSSL client (Android's libssl.so.0, with symbols) read through the TLS probes
	[freeDiameterd]=freediameterd # scripts/record-diameter.sh: two freeDiameter peers (/usr/bin/freeDiameterd) run from their own configs in a temporary directory
)
# file → Debian package, for what is not a command
declare -A need_file=(
	[/usr/share/nginx/modules/ngx_http_echo_module.so]=libnginx-mod-http-echo # echo_sleep etc. in the eval scenario recordings
	[/usr/include/bpf/bpf_helpers.h]=libbpf-dev # make generate: the eBPF helper declarations
	[/usr/include/linux/bpf.h]=linux-libc-dev   # make generate: the eBPF UAPI
	[/usr/lib/postgresql/15/bin/postgres]=postgresql # PostgreSQL 15 (Debian 12) for scripts/record-postgres.sh: initdb, postgres, pgbench; its own clusters in a temporary directory, not the package's
	[/usr/lib/python3/dist-packages/requests/__init__.py]=python3-requests # capture/tlsplain's test: a Python client (Debian's python3, its ssl on the system libssl) read through the TLS probes
	[/usr/include/openssl/ssl.h]=libssl-dev # bpf/tlslib's tests: libssl.a and libcrypto.a for the statically linked TLS binary
	[/usr/include/stdio.h]=libc6-dev           # its static libc (libc.a)
	[/usr/lib/freeDiameter/dbg_msg_dumps.fdx]=freediameter-extensions # scripts/record-diameter.sh: dbg_msg_dumps (the manifest), acl_wl, dict_nasreq, dict_dcca
)
# nginx, mariadbd, slapd and freeradius live in /usr/sbin, which a user's PATH on Debian
# does not hold: without it they would count as missing on every run.
PATH=$PATH:/usr/sbin:/sbin
missing=()
for cmd in "${!need[@]}"; do
	command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}")
done
for file in "${!need_file[@]}"; do
	[ -e "$file" ] || missing+=("${need_file[$file]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0
mapfile -t pkgs < <(printf '%s\n' "${missing[@]}" | sort -u)
echo "install-deps: installing ${pkgs[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
# noninteractive: slapd's debconf questions (domain, admin password) take
# their defaults, a generated password, without prompting.
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
