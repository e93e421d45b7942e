//go:build ignore

// attrib.bpf.c attributes TCP (MPTCP included) and UDP flows to the process
// that owns the socket. See README.md for the design and why each hook was
// chosen.
//
// Only UAPI headers are used (linux/bpf.h, libbpf's bpf_helpers.h); the few
// kernel structs the programs read are declared below with
// preserve_access_index, so CO-RE relocates their fields against the running
// kernel's BTF.

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define IPPROTO_MPTCP 262
#define SOCK_STREAM 1
#define SOCK_DGRAM 2
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define TCP_LISTEN 10
#define TCP_CLOSE 7
#define PF_KTHREAD 0x00200000

#define COMM_LEN 16
#define READ_ONCE(x) (*(volatile typeof(x) *)&(x))
#define FLOWS_MAX 65536
#define LISTENERS_MAX 16384
#define PENDING_MAX 1048576
#define NETNS_MAX 16384

// How a socket's owner was learned (owner.origin).
enum origin {
	ORIGIN_CREATE = 1, // the process that called socket(), or listen() or connect() on a kernel-made socket
	ORIGIN_SEED = 2,   // the start-up iterator: a process holding the socket in its fd table
};

// How a flow's tuple was learned (flow_val.side).
enum side {
	SIDE_CONNECT = 1, // sockops ACTIVE_ESTABLISHED: this socket connected
	SIDE_ACCEPT = 2,  // sockops PASSIVE_ESTABLISHED: this socket was accepted
	SIDE_SEND = 3,    // cgroup_skb egress: a UDP datagram sent from this socket
	SIDE_RECV = 4,    // cgroup_skb ingress: a UDP datagram delivered to this socket
	SIDE_SEED = 5,    // the start-up iterator: a connected socket found in an fd table
};

// owner is the process a socket belongs to, kept in the socket itself
// (sk_storage). BPF_F_CLONE copies it to the sockets a listener accepts.
struct owner {
	__u64 cgroup_id; // cgroup v2 id (kernfs inode number) of the process
	__u32 tgid;
	__u32 origin; // enum origin
	__u8 comm[COMM_LEN]; // the process's (thread group leader's) comm
};

// flow_key is one socket's view of a flow. Addresses are 16 bytes in
// network order, IPv4 as IPv4-mapped IPv6 (::ffff:a.b.c.d); ports are in
// host order. The padding is explicit and always zero.
struct flow_key {
	__u8 local_addr[16];
	__u8 remote_addr[16];
	__u16 local_port;
	__u16 remote_port;
	__u8 proto; // IPPROTO_TCP or IPPROTO_UDP
	__u8 pad[3];
};

// flow_val is the owner of the socket at flow_key's local end.
struct flow_val {
	__u64 cgroup_id;
	__u64 boot_ns; // bpf_ktime_get_boot_ns() when the entry was written
	__u32 tgid;
	__u8 side; // enum side
	__u8 pad[3];
	__u8 comm[COMM_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC | BPF_F_CLONE);
	__type(key, int);
	__type(value, struct owner);
} sk_owner SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, FLOWS_MAX);
	__type(key, struct flow_key);
	__type(value, struct flow_val);
} flows SEC(".maps");

// listen_key names a listening port: its network namespace (cookie), port
// (host order) and protocol (IPPROTO_TCP, also for MPTCP listeners).
struct listen_key {
	__u64 netns;
	__u16 port;
	__u8 proto;
	__u8 pad[5];
};

// listeners holds the owners of the listeners the start-up iterator found,
// for connections accepted later on a listener whose socket has no
// storage: MPTCP's, whose TCP subflow listener the kernel made and the
// iterator cannot reach from the process's file.
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, LISTENERS_MAX);
	__type(key, struct listen_key);
	__type(value, struct owner);
} listeners SEC(".maps");

// Kernel structs, only the fields read here; CO-RE finds them by name.
struct in6_addr___attrib {
	__u8 s6_addr[16];
};

struct ns_common {
	unsigned int inum;
} __attribute__((preserve_access_index));

struct net {
	struct ns_common ns;
	__u64 net_cookie;
} __attribute__((preserve_access_index));

typedef struct {
	struct net *net;
} __attribute__((preserve_access_index)) possible_net_t;

struct sock_common {
	unsigned short skc_family;
	volatile unsigned char skc_state;
	__be32 skc_daddr;
	__be32 skc_rcv_saddr;
	__be16 skc_dport;
	__u16 skc_num;
	struct in6_addr___attrib skc_v6_daddr;
	struct in6_addr___attrib skc_v6_rcv_saddr;
	possible_net_t skc_net;
} __attribute__((preserve_access_index));

struct sock {
	struct sock_common __sk_common;
	__u16 sk_protocol;
	__u16 sk_type;
} __attribute__((preserve_access_index));

struct socket {
	struct sock *sk;
} __attribute__((preserve_access_index));

struct kernfs_node {
	__u64 id;
} __attribute__((preserve_access_index));

struct cgroup {
	struct kernfs_node *kn;
} __attribute__((preserve_access_index));

struct css_set {
	struct cgroup *dfl_cgrp;
} __attribute__((preserve_access_index));

struct task_struct {
	unsigned int flags;
	int tgid;
	struct task_struct *group_leader;
	struct css_set *cgroups;
	char comm[COMM_LEN];
} __attribute__((preserve_access_index));

struct file;
struct seq_file;

struct bpf_iter_meta {
	struct seq_file *seq;
} __attribute__((preserve_access_index));

struct udp_sock;

struct bpf_iter__tcp {
	struct bpf_iter_meta *meta;
	struct sock_common *sk_common;
} __attribute__((preserve_access_index));

struct bpf_iter__udp {
	struct bpf_iter_meta *meta;
	struct udp_sock *udp_sk;
} __attribute__((preserve_access_index));

struct bpf_iter__task_file {
	struct bpf_iter_meta *meta;
	struct task_struct *task;
	__u32 fd;
	struct file *file;
} __attribute__((preserve_access_index));

static __always_inline void v4mapped(__u8 *dst, __u32 addr)
{
	__builtin_memset(dst, 0, 10);
	dst[10] = 0xff;
	dst[11] = 0xff;
	__builtin_memcpy(dst + 12, &addr, 4);
}

static __always_inline void copy_comm(__u8 *dst, const __u8 *src)
{
	__builtin_memcpy(dst, src, COMM_LEN);
}

// record stores the owner of the socket at key's local end. With force
// unset, an entry that already names the same process is left alone, so
// that a UDP socket's datagrams cost a lookup, not an update, each.
static __always_inline void record(struct flow_key *key, struct owner *o, __u8 side, int force)
{
	if (!force) {
		struct flow_val *old = bpf_map_lookup_elem(&flows, key);
		if (old && old->tgid == o->tgid && old->cgroup_id == o->cgroup_id)
			return;
	}
	struct flow_val v;
	__builtin_memset(&v, 0, sizeof(v));
	v.cgroup_id = o->cgroup_id;
	v.boot_ns = bpf_ktime_get_boot_ns();
	v.tgid = o->tgid;
	v.side = side;
	copy_comm(v.comm, o->comm);
	bpf_map_update_elem(&flows, key, &v, BPF_ANY);
}

// tracked says whether sockets of this protocol get an owner: TCP, UDP,
// and MPTCP, whose TCP subflows the kernel creates.
static __always_inline int tracked(__u32 protocol)
{
	return protocol == IPPROTO_TCP || protocol == IPPROTO_UDP || protocol == IPPROTO_MPTCP;
}

// owner_from_task describes task's process: the thread group leader's comm,
// as the calling thread's may be any name the process gave it.
static __always_inline void owner_from_task(struct owner *o, struct task_struct *task, __u32 origin)
{
	o->tgid = BPF_CORE_READ(task, tgid);
	o->origin = origin;
	o->cgroup_id = BPF_CORE_READ(task, cgroups, dfl_cgrp, kn, id);
	struct task_struct *leader = BPF_CORE_READ(task, group_leader);
	if (!leader || bpf_probe_read_kernel_str(o->comm, sizeof(o->comm), &leader->comm) < 0)
		__builtin_memset(o->comm, 0, sizeof(o->comm));
}

// sock_create runs in the process calling socket(): the owner is known
// here and nowhere else on the packet path. full reads the process's
// comm from its thread group leader, which needs bpf_get_current_task and
// bpf_probe_read_kernel (CAP_PERFMON, no kernel lockdown); without, the
// comm is the calling thread's.
static __always_inline int sock_create_(struct bpf_sock *ctx, int full)
{
	if (!tracked(ctx->protocol))
		return 1;
	struct owner *o = bpf_sk_storage_get(&sk_owner, ctx, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!o)
		return 1;
	o->tgid = bpf_get_current_pid_tgid() >> 32;
	o->origin = ORIGIN_CREATE;
	o->cgroup_id = bpf_get_current_cgroup_id();
	if (full) {
		struct task_struct *task = (struct task_struct *)bpf_get_current_task();
		struct task_struct *leader = BPF_CORE_READ(task, group_leader);
		if (leader && bpf_probe_read_kernel_str(o->comm, sizeof(o->comm), &leader->comm) > 0)
			return 1;
	}
	bpf_get_current_comm(o->comm, sizeof(o->comm));
	return 1;
}

SEC("cgroup/sock_create")
int sock_create(struct bpf_sock *ctx)
{
	return sock_create_(ctx, 1);
}

SEC("cgroup/sock_create")
int sock_create_basic(struct bpf_sock *ctx)
{
	return sock_create_(ctx, 0);
}

// adopt gives a TCP socket that has no owner, one the kernel created for
// a process (an MPTCP subflow), the owner of the process calling listen()
// or connect(). Kernel threads (MPTCP's path manager adding subflows) own
// nothing.
static __always_inline void adopt(struct bpf_sock *sk)
{
	if (bpf_sk_storage_get(&sk_owner, sk, 0, 0))
		return;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	if (!task || BPF_CORE_READ(task, flags) & PF_KTHREAD)
		return;
	struct owner cur;
	__builtin_memset(&cur, 0, sizeof(cur));
	owner_from_task(&cur, task, ORIGIN_CREATE);
	bpf_sk_storage_get(&sk_owner, sk, &cur, BPF_SK_STORAGE_GET_F_CREATE);
}

// tcp_established records a TCP connection when it is established, on
// both sides: ACTIVE_ESTABLISHED on the connecting socket,
// PASSIVE_ESTABLISHED on the accepted one, which carries its listener's
// owner (cloned; or, for a listener found by the start-up iterator without
// storage, from the listeners map). full also adopts kernel-made sockets at
// TCP_LISTEN and TCP_CONNECT, which run in the calling process. These
// four callbacks run without any BPF_SOCK_OPS_*_CB_FLAG, so no other
// TCP event reaches this program; it never sets reply, leaving the
// kernel's defaults.
static __always_inline int tcp_established_(struct bpf_sock_ops *skops, int full)
{
	__u8 side;
	switch (skops->op) {
	case BPF_SOCK_OPS_TCP_LISTEN_CB:
	case BPF_SOCK_OPS_TCP_CONNECT_CB:
		if (full && skops->sk)
			adopt(skops->sk);
		return 1;
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
		side = SIDE_CONNECT;
		break;
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
		side = SIDE_ACCEPT;
		break;
	default:
		return 1;
	}
	struct bpf_sock *sk = skops->sk;
	if (!sk)
		return 1;
	struct owner *o = bpf_sk_storage_get(&sk_owner, sk, 0, 0);
	if (!o && side == SIDE_ACCEPT) {
		struct listen_key lk;
		__builtin_memset(&lk, 0, sizeof(lk));
		lk.netns = bpf_get_netns_cookie(skops);
		lk.port = skops->local_port;
		lk.proto = IPPROTO_TCP;
		struct owner *l = bpf_map_lookup_elem(&listeners, &lk);
		if (l) {
			struct owner cur = *l;
			o = bpf_sk_storage_get(&sk_owner, sk, &cur, BPF_SK_STORAGE_GET_F_CREATE);
		}
	}
	if (!o)
		return 1;

	struct flow_key key;
	__builtin_memset(&key, 0, sizeof(key));
	key.proto = IPPROTO_TCP;
	__u32 family = skops->family;
	if (family == AF_INET) {
		v4mapped(key.local_addr, skops->local_ip4);
		v4mapped(key.remote_addr, skops->remote_ip4);
	} else if (family == AF_INET6) {
		// One 4-byte load each: the verifier refuses wider context loads,
		// which clang would otherwise merge these into.
		__u32 a[4];
		a[0] = READ_ONCE(skops->local_ip6[0]);
		a[1] = READ_ONCE(skops->local_ip6[1]);
		a[2] = READ_ONCE(skops->local_ip6[2]);
		a[3] = READ_ONCE(skops->local_ip6[3]);
		__builtin_memcpy(key.local_addr, a, 16);
		a[0] = READ_ONCE(skops->remote_ip6[0]);
		a[1] = READ_ONCE(skops->remote_ip6[1]);
		a[2] = READ_ONCE(skops->remote_ip6[2]);
		a[3] = READ_ONCE(skops->remote_ip6[3]);
		__builtin_memcpy(key.remote_addr, a, 16);
	} else {
		return 1;
	}
	key.local_port = skops->local_port;
	// remote_port holds the big-endian port in its upper 16 bits on
	// little-endian machines and in its lower 16 on big-endian ones:
	// bpf_ntohl gives the host-order port on both.
	key.remote_port = bpf_ntohl(skops->remote_port);
	record(&key, o, side, 1);
	return 1;
}

SEC("sockops")
int tcp_established(struct bpf_sock_ops *skops)
{
	return tcp_established_(skops, 1);
}

SEC("sockops")
int tcp_established_basic(struct bpf_sock_ops *skops)
{
	return tcp_established_(skops, 0);
}

// udp_record parses the IP and UDP headers of a datagram on a socket that
// has an owner and records the tuple from that socket's point of view.
static __always_inline void udp_record(struct __sk_buff *skb, int egress)
{
	struct bpf_sock *sk = skb->sk;
	if (!sk)
		return;
	sk = bpf_sk_fullsock(sk);
	if (!sk || sk->protocol != IPPROTO_UDP)
		return;
	struct owner *o = bpf_sk_storage_get(&sk_owner, sk, 0, 0);
	if (!o)
		return;

	struct flow_key key;
	__builtin_memset(&key, 0, sizeof(key));
	key.proto = IPPROTO_UDP;
	__u8 *src = egress ? key.local_addr : key.remote_addr;
	__u8 *dst = egress ? key.remote_addr : key.local_addr;
	__u32 l4;
	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		__u8 ip[20];
		if (bpf_skb_load_bytes(skb, 0, ip, sizeof(ip)) < 0)
			return;
		if ((ip[0] >> 4) != 4 || ip[9] != IPPROTO_UDP)
			return;
		if (((ip[6] & 0x1f) | ip[7]) != 0) // not the first fragment
			return;
		__u32 s, d;
		__builtin_memcpy(&s, ip + 12, 4);
		__builtin_memcpy(&d, ip + 16, 4);
		v4mapped(src, s);
		v4mapped(dst, d);
		l4 = (ip[0] & 0x0f) * 4;
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		__u8 ip6[40];
		if (bpf_skb_load_bytes(skb, 0, ip6, sizeof(ip6)) < 0)
			return;
		if ((ip6[0] >> 4) != 6 || ip6[6] != IPPROTO_UDP) // extension headers are not followed
			return;
		__builtin_memcpy(src, ip6 + 8, 16);
		__builtin_memcpy(dst, ip6 + 24, 16);
		l4 = 40;
	} else {
		return;
	}
	__u8 ports[4];
	if (bpf_skb_load_bytes(skb, l4, ports, sizeof(ports)) < 0)
		return;
	__u16 sport = ((__u16)ports[0] << 8) | ports[1];
	__u16 dport = ((__u16)ports[2] << 8) | ports[3];
	key.local_port = egress ? sport : dport;
	key.remote_port = egress ? dport : sport;
	record(&key, o, egress ? SIDE_SEND : SIDE_RECV, 0);
}

// udp_egress sees every datagram a socket sends (a DNS client's query and a
// DNS server's reply alike), before fragmentation. It never drops.
SEC("cgroup_skb/egress")
int udp_egress(struct __sk_buff *skb)
{
	udp_record(skb, 1);
	return 1;
}

// udp_ingress sees every datagram delivered to a socket, so that a socket
// that only receives is attributed too. It never drops.
SEC("cgroup_skb/ingress")
int udp_ingress(struct __sk_buff *skb)
{
	udp_record(skb, 0);
	return 1;
}

// record_seeded records what is known of a socket found by seeding, owned
// by o: a listening port's owner in listeners, a connected socket's tuple
// in flows. sk is read with CO-RE reads only, so that it may be a pointer
// the verifier does not trust.
static __always_inline void record_seeded(struct sock *sk, __u8 l4, struct owner *o)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	__u8 state = BPF_CORE_READ(sk, __sk_common.skc_state);
	__u16 lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	if (state == TCP_LISTEN) {
		struct listen_key lk;
		__builtin_memset(&lk, 0, sizeof(lk));
		lk.netns = BPF_CORE_READ(sk, __sk_common.skc_net.net, net_cookie);
		lk.port = lport;
		lk.proto = IPPROTO_TCP;
		struct owner l = *o;
		bpf_map_update_elem(&listeners, &lk, &l, BPF_ANY);
	}
	__be16 dport = BPF_CORE_READ(sk, __sk_common.skc_dport);
	if (dport == 0 || state == TCP_LISTEN || state == TCP_CLOSE)
		return;
	struct flow_key key;
	__builtin_memset(&key, 0, sizeof(key));
	key.proto = l4;
	if (family == AF_INET) {
		v4mapped(key.local_addr, BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr));
		v4mapped(key.remote_addr, BPF_CORE_READ(sk, __sk_common.skc_daddr));
	} else {
		BPF_CORE_READ_INTO(&key.local_addr, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO(&key.remote_addr, sk, __sk_common.skc_v6_daddr);
	}
	key.local_port = lport;
	key.remote_port = bpf_ntohs(dport);
	// An entry sockops or a datagram wrote since the programs were
	// attached is as good and newer: only fill gaps.
	if (!bpf_map_lookup_elem(&flows, &key))
		record(&key, o, SIDE_SEED, 1);
}

// Seeding gives the TCP, MPTCP and UDP sockets created before the agent an
// owner (a listener opened earlier, whose accepted connections then inherit
// it), records the tuples of those already connected, and the owners of
// listening ports (for MPTCP listeners, whose subflow listener the kernel
// made). It runs once at start, in two passes, because the socket a
// task_file iterator reaches through bpf_sock_from_file is not one
// bpf_sk_storage_get accepts on every kernel: 6.18's verifier types
// socket->sk as an untrusted pointer there. The first pass (seed_files)
// notes which process holds each socket, by the socket's address; the
// second (seed_tcp, seed_udp), over the kernel's TCP and UDP socket
// tables, where the socket is a pointer the verifier trusts, gives each
// noted socket its owner and records it.

// pending is the first pass's result: socket address → the process
// holding it. The last holder in pid order wins, so that of a listener
// shared by fork (nginx's master and workers) a worker, usually, owns it.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, PENDING_MAX);
	__type(key, __u64);
	__type(value, struct owner);
} pending SEC(".maps");

// netns_ref names a file descriptor of a process holding a socket of one
// network namespace, through which user space enters that namespace: the
// TCP and UDP iterators see the sockets of the namespace they are opened
// in only.
struct netns_ref {
	__u32 tgid;
	__u32 fd;
};

// seed_netns maps the inode number of each network namespace that holds a
// pending socket to one such socket.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, NETNS_MAX);
	__type(key, __u32);
	__type(value, struct netns_ref);
} seed_netns SEC(".maps");

// seed_files is the first pass, over every open file of every process.
// The socket behind a file is read with CO-RE reads only (the verifier
// may not trust it). TCP and UDP sockets are noted in pending, for the
// second pass. An MPTCP socket is not in the TCP tables (its subflows
// are): its listening port and connected tuple are recorded here, and it
// writes one byte to the iterator's output, for the count.
SEC("iter/task_file")
int seed_files(struct bpf_iter__task_file *ctx)
{
	struct task_struct *task = ctx->task;
	struct file *file = ctx->file;
	if (!task || !file)
		return 0;
	struct socket *sock = bpf_sock_from_file(file);
	if (!sock)
		return 0;
	struct sock *sk = BPF_CORE_READ(sock, sk);
	if (!sk)
		return 0;
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != AF_INET && family != AF_INET6)
		return 0;
	__u16 protocol = BPF_CORE_READ(sk, sk_protocol);
	__u16 type = BPF_CORE_READ(sk, sk_type);
	int stream = (protocol == IPPROTO_TCP || protocol == IPPROTO_MPTCP) && type == SOCK_STREAM;
	if (!stream && !(protocol == IPPROTO_UDP && type == SOCK_DGRAM))
		return 0;

	struct owner cur;
	__builtin_memset(&cur, 0, sizeof(cur));
	owner_from_task(&cur, task, ORIGIN_SEED);
	if (protocol != IPPROTO_MPTCP) {
		__u64 addr = (__u64)sk;
		bpf_map_update_elem(&pending, &addr, &cur, BPF_ANY);
		__u32 inum = BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
		struct netns_ref ref = {.tgid = cur.tgid, .fd = ctx->fd};
		bpf_map_update_elem(&seed_netns, &inum, &ref, BPF_NOEXIST);
		return 0;
	}

	// An MPTCP socket's addresses and state are its first subflow's.
	record_seeded(sk, IPPROTO_TCP, &cur);
	char one = 1;
	bpf_seq_write(ctx->meta->seq, &one, 1);
	return 0;
}

// seed_sock is the second pass for one socket of the kernel's tables: a
// socket noted by the first pass gets its owner in sk_owner (an owner set
// by sock_create since the programs were attached is kept; a seeded one
// is replaced by the last holder's) and is recorded. It writes one byte
// to the iterator's output per socket, for the count.
static __always_inline void seed_sock(struct seq_file *seq, struct sock_common *skc, __u8 l4)
{
	__u64 addr = (__u64)skc;
	struct owner *p = bpf_map_lookup_elem(&pending, &addr);
	if (!p)
		return;
	struct owner cur = *p;
	bpf_map_delete_elem(&pending, &addr);
	struct owner *o = bpf_sk_storage_get(&sk_owner, skc, &cur, BPF_SK_STORAGE_GET_F_CREATE);
	if (!o)
		return;
	if (o->origin != ORIGIN_CREATE && o->tgid != cur.tgid)
		__builtin_memcpy(o, &cur, sizeof(cur));
	struct owner now = *o;
	record_seeded((struct sock *)skc, l4, &now);
	char one = 1;
	bpf_seq_write(seq, &one, 1);
}

// seed_tcp is the second pass over the TCP sockets (listening and
// established) of the network namespace the iterator was opened in.
SEC("iter/tcp")
int seed_tcp(struct bpf_iter__tcp *ctx)
{
	struct sock_common *skc = ctx->sk_common;
	if (!skc)
		return 0;
	seed_sock(ctx->meta->seq, skc, IPPROTO_TCP);
	return 0;
}

// seed_udp is the second pass over the UDP sockets (bound ones) of the
// network namespace the iterator was opened in.
SEC("iter/udp")
int seed_udp(struct bpf_iter__udp *ctx)
{
	struct udp_sock *udp = ctx->udp_sk;
	if (!udp)
		return 0;
	seed_sock(ctx->meta->seq, (struct sock_common *)udp, IPPROTO_UDP);
	return 0;
}
