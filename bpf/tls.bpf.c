//go:build ignore

// tls.bpf.c reads TLS plaintext where the process hands it to its TLS
// library and takes it back: uprobes on OpenSSL's (and BoringSSL's)
// SSL_write, SSL_write_ex, SSL_read and SSL_read_ex. See README.md, "TLS
// plaintext", for the design.
//
// The socket a call reads or writes is learned without knowing the
// library's structs: while a thread is inside SSL_read/SSL_write (or
// SSL_do_handshake), the read/write/send/recv system calls it makes name
// the file descriptor, which is remembered per SSL object. This holds for
// any BIO, curl's own included, and any OpenSSL version. At the call's
// return the descriptor leads, through the task's file table, to the
// socket and its addresses, read with CO-RE.
//
// Each call's plaintext goes to one ring buffer (one, not per CPU, so that
// the chunks of a connection arrive in the order they were made), at most
// MAX_CHUNKS events of CHUNK bytes per call (a longer call's last chunk
// says, by len − offset, how much of the call it stands for); a cap on
// bytes per second and a full ring drop chunks, and the bytes lost on a
// socket are told with its next chunk so that the reader leaves a gap of
// the right size.

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

// The registers of a user-space call (uprobe context); the fields are the
// kernel's names, which bpf_tracing.h uses when __VMLINUX_H__ is defined.
#if defined(__TARGET_ARCH_x86)
struct pt_regs {
	unsigned long r15, r14, r13, r12, bp, bx, r11, r10, r9, r8, ax, cx, dx, si, di, orig_ax, ip, cs, flags, sp, ss;
};
#elif defined(__TARGET_ARCH_arm64)
struct user_pt_regs {
	__u64 regs[31];
	__u64 sp;
	__u64 pc;
	__u64 pstate;
};
struct pt_regs {
	struct user_pt_regs user_regs;
	__u64 orig_x0;
};
#endif
#define __VMLINUX_H__
#include <bpf/bpf_tracing.h>

#define AF_INET 2
#define AF_INET6 10
#define SOCK_STREAM 1

#define CHUNK 16384   // plaintext bytes per event
#define MAX_CHUNKS 4  // events per call: calls over 64 KiB are cut
#define CALLS_MAX 65536
#define FDS_MAX 65536

// Directions (chunk.dir), and what a thread is inside (call.kind).
enum kind {
	KIND_WRITE = 0,
	KIND_READ = 1,
	KIND_HANDSHAKE = 2,
};

// Counters (the counters array's indexes).
enum counter {
	C_CALLS = 0,      // SSL_read/SSL_write calls that returned plaintext
	C_CHUNKS = 1,     // chunks sent to the ring
	C_BYTES = 2,      // plaintext bytes in them
	C_RING_FULL = 3,  // chunks dropped: the ring was full
	C_RATE = 4,       // chunks dropped: over bytes_per_sec
	C_CUT = 5,        // calls cut at MAX_CHUNKS*CHUNK bytes
	C_NO_FD = 6,      // calls whose socket was never learned
	C_NOT_SOCKET = 7, // calls on a descriptor that is not a TCP socket
	C_READ_FAULT = 8, // plaintext the probe could not read from the process
	C_LOST_BYTES = 9, // bytes of the chunks dropped
	C_GO_CONN = 10,   // Go calls whose *tls.Conn did not lead to a socket
	C_GO_FD = 11,     // Go calls whose socket's descriptor could not be read
	C_MAX = 12,
};

// Set by the loader before the programs load.
volatile const __u64 bytes_per_sec = 64 << 20;

// call is what a thread is inside, from the entry probe to the return.
struct call {
	__u64 ssl;     // the SSL object
	__u64 buf;     // the plaintext
	__u64 out_len; // SSL_read_ex/SSL_write_ex: where the length done goes; Go: the socket's fd (-1: unknown); 0 otherwise
	__u32 kind;    // enum kind
	__u32 pad;
};

// ssl_key names an SSL object of a process.
struct ssl_key {
	__u64 ssl;
	__u32 tgid;
	__u32 pad;
};

// lost_key names one direction of a process's socket.
struct lost_key {
	__u32 tgid;
	__s32 fd;
	__u32 dir;
	__u32 pad;
};

// chunk is an event's header; CHUNK bytes of data may follow.
struct chunk {
	__u64 ktime;     // bpf_ktime_get_ns() at the return
	__u64 cgroup_id; // the process's cgroup v2 id
	__u64 cookie;    // the attachment's cookie: the library it was read from
	__u32 tgid;
	__u32 tid;
	__s32 fd;
	__u32 len;      // the call's whole plaintext length
	__u32 offset;   // where this chunk starts within the call
	__u32 captured; // bytes of data that follow
	__u32 lost;     // bytes of this socket and direction dropped before this chunk
	__u16 family;   // AF_INET or AF_INET6
	__u16 local_port;
	__u16 remote_port;
	__u8 dir;       // KIND_WRITE or KIND_READ
	__u8 pad;
	__u8 local_addr[16]; // IPv4 in the first 4 bytes
	__u8 remote_addr[16];
	char comm[16]; // the thread's comm
};

struct event {
	struct chunk h;
	__u8 data[CHUNK];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CALLS_MAX);
	__type(key, __u64); // pid_tgid
	__type(value, struct call);
} calls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, FDS_MAX);
	__type(key, struct ssl_key);
	__type(value, __s32);
} ssl_fds SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, FDS_MAX);
	__type(key, struct lost_key);
	__type(value, __u64);
} lost SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20); // the loader sets the size
} chunks SEC(".maps");

// execs tells user space of processes that just executed a new program.
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 << 10);
} execs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct event);
} scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, C_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

// rate is the current second's budget: [0] the second, [1] bytes sent in it.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} rate SEC(".maps");

static __always_inline void count(__u32 c, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &c);
	if (v)
		*v += n;
}

// Kernel structs, only the fields read here; CO-RE finds them by name.
struct in6_addr___tls {
	__u8 s6_addr[16];
};

struct sock_common {
	unsigned short skc_family;
	__be32 skc_daddr;
	__be32 skc_rcv_saddr;
	__be16 skc_dport;
	__u16 skc_num;
	struct in6_addr___tls skc_v6_daddr;
	struct in6_addr___tls skc_v6_rcv_saddr;
} __attribute__((preserve_access_index));

struct sock {
	struct sock_common __sk_common;
	__u16 sk_type;
} __attribute__((preserve_access_index));

struct file;

struct socket {
	struct sock *sk;
	struct file *file;
} __attribute__((preserve_access_index));

struct file {
	void *private_data;
} __attribute__((preserve_access_index));

struct fdtable {
	unsigned int max_fds;
	struct file **fd;
} __attribute__((preserve_access_index));

struct files_struct {
	struct fdtable *fdt;
} __attribute__((preserve_access_index));

struct task_struct {
	struct files_struct *files;
} __attribute__((preserve_access_index));

// socket_of fills h's addresses from the TCP socket at descriptor fd of
// the current task; 0 when fd is not one.
static __always_inline int socket_of(__s32 fd, struct chunk *h)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	if (!fdt || fd < 0 || (unsigned int)fd >= BPF_CORE_READ(fdt, max_fds))
		return 0;
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *f = 0;
	if (bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]) || !f)
		return 0;
	// A socket's file points at its struct socket, which points back.
	struct socket *sock = BPF_CORE_READ(f, private_data);
	if (!sock || BPF_CORE_READ(sock, file) != f)
		return 0;
	struct sock *sk = BPF_CORE_READ(sock, sk);
	if (!sk || BPF_CORE_READ(sk, sk_type) != SOCK_STREAM)
		return 0;
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family == AF_INET) {
		__be32 l = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		__be32 r = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		__builtin_memcpy(h->local_addr, &l, 4);
		__builtin_memcpy(h->remote_addr, &r, 4);
	} else if (family == AF_INET6) {
		BPF_CORE_READ_INTO(&h->local_addr, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO(&h->remote_addr, sk, __sk_common.skc_v6_daddr);
	} else {
		return 0;
	}
	h->family = family;
	h->local_port = BPF_CORE_READ(sk, __sk_common.skc_num);
	h->remote_port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	return 1;
}

// budget takes n bytes from the current second's budget; 0 when over.
static __always_inline int budget(__u64 n)
{
	__u32 k0 = 0, k1 = 1;
	__u64 *sec = bpf_map_lookup_elem(&rate, &k0);
	__u64 *used = bpf_map_lookup_elem(&rate, &k1);
	if (!sec || !used)
		return 0;
	__u64 now = bpf_ktime_get_ns() / 1000000000ULL;
	if (*sec != now) {
		// A race here lets a few chunks more through at the turn of a
		// second; it never lets the budget run away.
		*sec = now;
		*used = 0;
	}
	if (__sync_fetch_and_add(used, n) + n > bytes_per_sec)
		return 0;
	return 1;
}

static __always_inline void note_lost(struct lost_key *k, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&lost, k);
	if (v) {
		__sync_fetch_and_add(v, n);
	} else {
		bpf_map_update_elem(&lost, k, &n, BPF_NOEXIST);
	}
	count(C_LOST_BYTES, n);
}

static __always_inline int enter(__u64 ssl, __u64 buf, __u64 out_len, __u32 kind)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct call c = {.ssl = ssl, .buf = buf, .out_len = out_len, .kind = kind};
	bpf_map_update_elem(&calls, &id, &c, BPF_ANY);
	return 0;
}

// emit sends n bytes of plaintext at buf, which the current thread's
// process read (kind KIND_READ) or wrote on descriptor fd.
static __always_inline int emit(void *ctx, __s32 fd, __u64 buf, __u64 n, __u32 kind)
{
	if (n > 0xffffffffULL)
		n = 0xffffffffULL;
	count(C_CALLS, 1);
	__u32 zero = 0;
	struct event *e = bpf_map_lookup_elem(&scratch, &zero);
	if (!e)
		return 0;
	__u64 id = bpf_get_current_pid_tgid();
	__builtin_memset(&e->h, 0, sizeof(e->h));
	e->h.fd = fd;
	if (!socket_of(fd, &e->h)) {
		count(C_NOT_SOCKET, 1);
		return 0;
	}
	e->h.tgid = id >> 32;
	e->h.tid = (__u32)id;
	e->h.cgroup_id = bpf_get_current_cgroup_id();
	e->h.cookie = bpf_get_attach_cookie(ctx);
	e->h.ktime = bpf_ktime_get_ns();
	bpf_get_current_comm(e->h.comm, sizeof(e->h.comm));
	e->h.len = n;
	e->h.dir = kind;
	struct lost_key lk = {.tgid = e->h.tgid, .fd = fd, .dir = kind};

	if (n > (__u64)MAX_CHUNKS * CHUNK)
		count(C_CUT, 1);
	for (int i = 0; i < MAX_CHUNKS; i++) {
		__u64 off = (__u64)i * CHUNK;
		if (off >= n)
			break;
		__u64 size = n - off;
		if (size > CHUNK)
			size = CHUNK;
		e->h.offset = off;
		// What a cut leaves out of the call is lost with its last chunk
		// when that is dropped; when it is sent, its len says it.
		__u64 after = (i == MAX_CHUNKS - 1) ? n - off - size : 0;
		if (!budget(size)) {
			count(C_RATE, 1);
			note_lost(&lk, size + after);
			continue;
		}
		size &= (CHUNK * 2 - 1); // for the verifier: size <= CHUNK
		if (size > CHUNK)
			size = CHUNK;
		if (bpf_probe_read_user(e->data, size, (void *)(buf + off))) {
			count(C_READ_FAULT, 1);
			note_lost(&lk, size + after);
			continue;
		}
		e->h.captured = size;
		__u64 *l = bpf_map_lookup_elem(&lost, &lk);
		e->h.lost = l ? (__u32)*l : 0;
		if (bpf_ringbuf_output(&chunks, e, sizeof(e->h) + size, 0)) {
			count(C_RING_FULL, 1);
			note_lost(&lk, size + after);
			continue;
		}
		if (l)
			bpf_map_delete_elem(&lost, &lk);
		count(C_CHUNKS, 1);
		count(C_BYTES, size);
	}
	return 0;
}

// done sends the plaintext of the OpenSSL call the thread returns from.
static __always_inline int done(struct pt_regs *ctx, int is_ex, __u32 kind)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct call *c = bpf_map_lookup_elem(&calls, &id);
	if (!c || c->kind == KIND_HANDSHAKE)
		return 0;
	struct call call = *c;
	bpf_map_delete_elem(&calls, &id);
	// An entry of the other function (left while the probes were being
	// attached) is not this call's.
	if (call.kind != kind)
		return 0;

	long ret = PT_REGS_RC(ctx);
	__u64 n = 0;
	if (is_ex) {
		if (ret != 1 || !call.out_len)
			return 0;
		if (bpf_probe_read_user(&n, sizeof(n), (void *)call.out_len))
			return 0;
	} else {
		if ((int)ret <= 0)
			return 0;
		n = (__u32)(int)ret;
	}
	if (n == 0)
		return 0;
	struct ssl_key sk = {.ssl = call.ssl, .tgid = id >> 32};
	__s32 *fdp = bpf_map_lookup_elem(&ssl_fds, &sk);
	if (!fdp) {
		count(C_CALLS, 1);
		count(C_NO_FD, 1);
		return 0;
	}
	return emit(ctx, *fdp, call.buf, n, call.kind);
}

// int SSL_write(SSL *ssl, const void *buf, int num)
SEC("uprobe/SSL_write")
int BPF_KPROBE(ssl_write, void *ssl, const void *buf)
{
	return enter((__u64)ssl, (__u64)buf, 0, KIND_WRITE);
}

SEC("uretprobe/SSL_write")
int ssl_write_ret(struct pt_regs *ctx) { return done(ctx, 0, KIND_WRITE); }

// int SSL_read(SSL *ssl, void *buf, int num)
SEC("uprobe/SSL_read")
int BPF_KPROBE(ssl_read, void *ssl, void *buf)
{
	return enter((__u64)ssl, (__u64)buf, 0, KIND_READ);
}

SEC("uretprobe/SSL_read")
int ssl_read_ret(struct pt_regs *ctx) { return done(ctx, 0, KIND_READ); }

// int SSL_write_ex(SSL *ssl, const void *buf, size_t num, size_t *written)
SEC("uprobe/SSL_write_ex")
int BPF_KPROBE(ssl_write_ex, void *ssl, const void *buf, __u64 num, __u64 *written)
{
	return enter((__u64)ssl, (__u64)buf, (__u64)written, KIND_WRITE);
}

SEC("uretprobe/SSL_write_ex")
int ssl_write_ex_ret(struct pt_regs *ctx) { return done(ctx, 1, KIND_WRITE); }

// int SSL_read_ex(SSL *ssl, void *buf, size_t num, size_t *readbytes)
SEC("uprobe/SSL_read_ex")
int BPF_KPROBE(ssl_read_ex, void *ssl, void *buf, __u64 num, __u64 *readbytes)
{
	return enter((__u64)ssl, (__u64)buf, (__u64)readbytes, KIND_READ);
}

SEC("uretprobe/SSL_read_ex")
int ssl_read_ex_ret(struct pt_regs *ctx) { return done(ctx, 1, KIND_READ); }

// int SSL_do_handshake(SSL *ssl): its system calls name the socket
// before the first SSL_read or SSL_write does.
SEC("uprobe/SSL_do_handshake")
int BPF_KPROBE(ssl_handshake, void *ssl)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct call c = {.ssl = (__u64)ssl, .kind = KIND_HANDSHAKE};
	bpf_map_update_elem(&calls, &id, &c, BPF_NOEXIST);
	return 0;
}

SEC("uretprobe/SSL_do_handshake")
int ssl_handshake_ret(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct call *c = bpf_map_lookup_elem(&calls, &id);
	if (c && c->kind == KIND_HANDSHAKE)
		bpf_map_delete_elem(&calls, &id);
	return 0;
}

// Go's crypto/tls: (*Conn).Write(b []byte) (int, error) and Read, in the
// register ABI. Go moves goroutine stacks, so there are no return probes:
// the loader attaches go_tls_*_ret at every return instruction of the
// function. A call is keyed by its goroutine (the g register), not the
// thread, which may change between entry and return.
#if defined(__TARGET_ARCH_x86)
#define GO_G(r) ((r)->r14)
#define GO_ARG1(r) ((r)->ax)
#define GO_ARG2(r) ((r)->bx)
#define GO_RET1(r) ((r)->ax)
#elif defined(__TARGET_ARCH_arm64)
#define GO_G(r) ((r)->user_regs.regs[28])
#define GO_ARG1(r) ((r)->user_regs.regs[0])
#define GO_ARG2(r) ((r)->user_regs.regs[1])
#define GO_RET1(r) ((r)->user_regs.regs[0])
#endif

// go_offsets lead from a *tls.Conn to its socket's descriptor
// (bpf/tlslib.GoOffsets), per binary: the key is its attachments' cookie.
struct go_offsets {
	__u64 conn_conn;  // tls.Conn.conn, a net.Conn interface
	__u64 iface_data; // the interface's data word
	__u64 netconn_fd; // net.conn.fd
	__u64 netfd_pfd;  // net.netFD.pfd
	__u64 pfd_sysfd;  // internal/poll.FD.Sysfd
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct go_offsets);
} go_offsets_map SEC(".maps");

// go_key names a goroutine's call of one of the functions (kind): an
// entry whose return was missed (the probes were being attached) is
// overwritten by the next call of the same function, never taken by the
// other's return.
struct go_key {
	__u64 g;
	__u32 tgid;
	__u32 kind;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CALLS_MAX);
	__type(key, struct go_key);
	__type(value, struct call);
} go_calls SEC(".maps");

// go_fd reads the descriptor of the socket under a *tls.Conn; -1 (and
// the counter saying where it failed) when it cannot.
static __always_inline __s64 go_fd(struct pt_regs *ctx, __u64 tlsconn)
{
	__u64 cookie = bpf_get_attach_cookie(ctx);
	struct go_offsets *o = bpf_map_lookup_elem(&go_offsets_map, &cookie);
	if (!o)
		return -1;
	__u64 conn = 0, netfd = 0;
	__s64 fd = -1;
	if (bpf_probe_read_user(&conn, sizeof(conn), (void *)(tlsconn + o->conn_conn + o->iface_data)) || !conn ||
	    bpf_probe_read_user(&netfd, sizeof(netfd), (void *)(conn + o->netconn_fd)) || !netfd) {
		count(C_GO_CONN, 1);
		return -1;
	}
	if (bpf_probe_read_user(&fd, sizeof(fd), (void *)(netfd + o->netfd_pfd + o->pfd_sysfd)) || fd < 0 || fd > 0x7fffffff) {
		count(C_GO_FD, 1);
		return -1;
	}
	return fd;
}

// go_enter keeps the call's buffer and its socket's descriptor, read now:
// at the return the connection may be closing (its descriptor -1).
static __always_inline int go_enter(struct pt_regs *ctx, __u32 kind)
{
	struct go_key k = {.g = GO_G(ctx), .tgid = bpf_get_current_pid_tgid() >> 32, .kind = kind};
	struct call c = {.ssl = GO_ARG1(ctx), .buf = GO_ARG2(ctx), .kind = kind};
	c.out_len = (__u64)go_fd(ctx, c.ssl); // the descriptor, or -1
	bpf_map_update_elem(&go_calls, &k, &c, BPF_ANY);
	return 0;
}

static __always_inline int go_done(struct pt_regs *ctx, __u32 kind)
{
	struct go_key k = {.g = GO_G(ctx), .tgid = bpf_get_current_pid_tgid() >> 32, .kind = kind};
	struct call *c = bpf_map_lookup_elem(&go_calls, &k);
	if (!c)
		return 0;
	struct call call = *c;
	bpf_map_delete_elem(&go_calls, &k);
	long n = GO_RET1(ctx);
	if (n <= 0)
		return 0;
	__s64 fd = (__s64)call.out_len;
	if (fd < 0) {
		count(C_CALLS, 1);
		count(C_NO_FD, 1);
		return 0;
	}
	return emit(ctx, (__s32)fd, call.buf, (__u64)n, call.kind);
}

SEC("uprobe/go_tls_write")
int go_tls_write(struct pt_regs *ctx) { return go_enter(ctx, KIND_WRITE); }
SEC("uprobe/go_tls_write_ret")
int go_tls_write_ret(struct pt_regs *ctx) { return go_done(ctx, KIND_WRITE); }
SEC("uprobe/go_tls_read")
int go_tls_read(struct pt_regs *ctx) { return go_enter(ctx, KIND_READ); }
SEC("uprobe/go_tls_read_ret")
int go_tls_read_ret(struct pt_regs *ctx) { return go_done(ctx, KIND_READ); }

// learn remembers fd as the socket of the SSL object the thread is in.
static __always_inline int learn(__s64 fd)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct call *c = bpf_map_lookup_elem(&calls, &id);
	if (!c || fd < 0 || fd > 0x7fffffff)
		return 0;
	struct ssl_key k = {.ssl = c->ssl, .tgid = id >> 32};
	__s32 v = fd;
	bpf_map_update_elem(&ssl_fds, &k, &v, BPF_ANY);
	return 0;
}

// The system calls' tracepoints (syscalls/sys_enter_*): args[0] is the fd.
struct sys_enter_ctx {
	__u64 common;
	__s64 id;
	__u64 args[6];
};

SEC("tracepoint/syscalls/sys_enter_read")
int sys_read(struct sys_enter_ctx *ctx) { return learn(ctx->args[0]); }
SEC("tracepoint/syscalls/sys_enter_write")
int sys_write(struct sys_enter_ctx *ctx) { return learn(ctx->args[0]); }
SEC("tracepoint/syscalls/sys_enter_readv")
int sys_readv(struct sys_enter_ctx *ctx) { return learn(ctx->args[0]); }
SEC("tracepoint/syscalls/sys_enter_writev")
int sys_writev(struct sys_enter_ctx *ctx) { return learn(ctx->args[0]); }
SEC("tracepoint/syscalls/sys_enter_sendto")
int sys_sendto(struct sys_enter_ctx *ctx) { return learn(ctx->args[0]); }
SEC("tracepoint/syscalls/sys_enter_recvfrom")
int sys_recvfrom(struct sys_enter_ctx *ctx) { return learn(ctx->args[0]); }
SEC("tracepoint/syscalls/sys_enter_sendmsg")
int sys_sendmsg(struct sys_enter_ctx *ctx) { return learn(ctx->args[0]); }
SEC("tracepoint/syscalls/sys_enter_recvmsg")
int sys_recvmsg(struct sys_enter_ctx *ctx) { return learn(ctx->args[0]); }

// Without tracefs (or where the per-call tracepoints do not attach), one
// raw tracepoint on every system call's entry does the same.
#if defined(__TARGET_ARCH_x86)
#define NR_READ 0
#define NR_WRITE 1
#define NR_READV 19
#define NR_WRITEV 20
#define NR_SENDTO 44
#define NR_RECVFROM 45
#define NR_SENDMSG 46
#define NR_RECVMSG 47
#define SYSCALL_ARG0(regs) (&(regs)->di)
#elif defined(__TARGET_ARCH_arm64)
#define NR_READ 63
#define NR_WRITE 64
#define NR_READV 65
#define NR_WRITEV 66
#define NR_SENDTO 206
#define NR_RECVFROM 207
#define NR_SENDMSG 211
#define NR_RECVMSG 212
#define SYSCALL_ARG0(regs) (&(regs)->user_regs.regs[0])
#endif

SEC("raw_tracepoint/sys_enter")
int sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
	long nr = ctx->args[1];
	switch (nr) {
	case NR_READ:
	case NR_WRITE:
	case NR_READV:
	case NR_WRITEV:
	case NR_SENDTO:
	case NR_RECVFROM:
	case NR_SENDMSG:
	case NR_RECVMSG:
		break;
	default:
		return 0;
	}
	__u64 id = bpf_get_current_pid_tgid();
	if (!bpf_map_lookup_elem(&calls, &id))
		return 0;
	struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
	__u64 fd = 0;
	bpf_probe_read_kernel(&fd, sizeof(fd), SYSCALL_ARG0(regs));
	return learn((__s64)fd);
}

// A process executed a program: user space looks at its libraries.
SEC("raw_tracepoint/sched_process_exec")
int exec(struct bpf_raw_tracepoint_args *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	bpf_ringbuf_output(&execs, &tgid, sizeof(tgid), 0);
	return 0;
}
