//go:build linux

package bpf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"
)

// TLSProbes reads TLS plaintext from the TLS libraries of the node's
// processes (tls.bpf.c): attach a library file with AttachOpenSSL, then
// read what its calls carry with ReadChunk. It is safe for concurrent use.
type TLSProbes struct {
	log   *slog.Logger
	objs  tlsObjects
	links []link.Link // the system calls' and exec's
	// SyscallHook says how sockets are learned: "tracepoints" or "raw
	// tracepoint sys_enter" (and why).
	SyscallHook string

	chunks *ringbuf.Reader
	execs  *ringbuf.Reader

	mu      sync.Mutex
	files   map[fileID]*attachedFile
	cookies []Library // an attachment's cookie is its index here
	clock   *monoClock
}

type fileID struct{ dev, ino uint64 }

// statID is the identity of the file at path: one file is probed once,
// whatever path it is reached by.
func statID(path string) (fileID, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return fileID{}, fmt.Errorf("probe %s: %w", path, err)
	}
	return fileID{uint64(st.Dev), st.Ino}, nil
}

// attachedFile is a probed file and its probes.
type attachedFile struct {
	Attached
	links []link.Link
}

// OpenTLS loads the TLS probes and hooks the system calls and exec; no
// library is probed until AttachOpenSSL. The error says why it cannot.
func OpenTLS(logger *slog.Logger, o TLSOptions) (_ *TLSProbes, err error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if o.RingBytes == 0 {
		o.RingBytes = 8 << 20
	}
	if o.RingBytes&(o.RingBytes-1) != 0 || o.RingBytes < 1<<16 {
		return nil, fmt.Errorf("TLS ring buffer size %d: must be a power of two of at least 64 KiB", o.RingBytes)
	}
	if o.BytesPerSecond == 0 {
		o.BytesPerSecond = 64 << 20
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, explain("lift the locked-memory limit for eBPF maps", err)
	}
	spec, err := loadTls()
	if err != nil {
		return nil, err
	}
	spec.Maps[tlsMapChunks].MaxEntries = o.RingBytes
	if err := spec.Variables[tlsVarBytesPerSec].Set(o.BytesPerSecond); err != nil {
		return nil, fmt.Errorf("set the TLS rate cap: %w", err)
	}
	t := &TLSProbes{log: logger, files: map[fileID]*attachedFile{}, clock: newMonoClock()}
	defer func() {
		if err != nil {
			t.Close()
		}
	}()
	if err := spec.LoadAndAssign(&t.objs, nil); err != nil {
		return nil, explain("load the TLS probes", err)
	}
	if err := t.hookSyscalls(o.RawSyscalls); err != nil {
		return nil, err
	}
	l, err := link.AttachRawTracepoint(link.RawTracepointOptions{Name: "sched_process_exec", Program: t.objs.Exec})
	if err != nil {
		return nil, explain("attach to sched_process_exec", err)
	}
	t.links = append(t.links, l)
	if t.chunks, err = ringbuf.NewReader(t.objs.Chunks); err != nil {
		return nil, explain("read the TLS ring buffer", err)
	}
	if t.execs, err = ringbuf.NewReader(t.objs.Execs); err != nil {
		return nil, explain("read the exec ring buffer", err)
	}
	return t, nil
}

// hookSyscalls attaches the programs that learn an SSL object's socket:
// the tracepoints of the eight system calls (tracefs mounted if it is
// not), else the raw tracepoint on every system call's entry.
func (t *TLSProbes) hookSyscalls(raw bool) error {
	if !raw {
		why := ""
		if err := mountTracefs(); err != nil {
			why = err.Error()
		} else {
			tps := []struct {
				name string
				prog *ebpf.Program
			}{
				{"sys_enter_read", t.objs.SysRead}, {"sys_enter_write", t.objs.SysWrite},
				{"sys_enter_readv", t.objs.SysReadv}, {"sys_enter_writev", t.objs.SysWritev},
				{"sys_enter_sendto", t.objs.SysSendto}, {"sys_enter_recvfrom", t.objs.SysRecvfrom},
				{"sys_enter_sendmsg", t.objs.SysSendmsg}, {"sys_enter_recvmsg", t.objs.SysRecvmsg},
			}
			var links []link.Link
			for _, tp := range tps {
				l, err := link.Tracepoint("syscalls", tp.name, tp.prog, nil)
				if err != nil {
					why = fmt.Sprintf("tracepoint syscalls/%s: %v", tp.name, err)
					break
				}
				links = append(links, l)
			}
			if why == "" {
				t.links = append(t.links, links...)
				t.SyscallHook = "tracepoints"
				return nil
			}
			for _, l := range links {
				l.Close()
			}
		}
		t.log.Warn("bpf: TLS probes learn sockets from the raw sys_enter tracepoint (every system call's entry, a little more overhead)", "why", why)
		t.SyscallHook = "raw tracepoint sys_enter (" + why + ")"
	} else {
		t.SyscallHook = "raw tracepoint sys_enter (asked for)"
	}
	l, err := link.AttachRawTracepoint(link.RawTracepointOptions{Name: "sys_enter", Program: t.objs.SysEnter})
	if err != nil {
		return explain("attach to the raw tracepoint sys_enter", err)
	}
	t.links = append(t.links, l)
	return nil
}

// mountTracefs mounts tracefs at /sys/kernel/tracing unless it (or
// debugfs's tracing) is mounted already.
func mountTracefs() error {
	for _, dir := range []string{"/sys/kernel/tracing", "/sys/kernel/debug/tracing"} {
		var st unix.Statfs_t
		if unix.Statfs(dir, &st) == nil && st.Type == unix.TRACEFS_MAGIC {
			return nil
		}
	}
	if err := unix.Mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, ""); err != nil {
		return fmt.Errorf("mount tracefs at /sys/kernel/tracing: %w", err)
	}
	return nil
}

// AttachOpenSSL probes the OpenSSL (or BoringSSL) functions of the file at
// path — a libssl, or an executable that links one statically — as lib.
// A file attached before (the same device and inode, through any path) is
// not probed again: the earlier Attached is returned. symbols maps a
// function to its address in the file (0 or absent: cilium/ebpf finds it
// in the file's symbol tables).
func (t *TLSProbes) AttachOpenSSL(path string, lib Library, symbols map[string]uint64) (*Attached, error) {
	return t.attachCalls(path, lib, symbols, func() []callProbe {
		return []callProbe{
			{"SSL_write", t.objs.SslWrite, t.objs.SslWriteRet}, {"SSL_read", t.objs.SslRead, t.objs.SslReadRet},
			{"SSL_write_ex", t.objs.SslWriteEx, t.objs.SslWriteExRet}, {"SSL_read_ex", t.objs.SslReadEx, t.objs.SslReadExRet},
			{"SSL_do_handshake", t.objs.SslHandshake, t.objs.SslHandshakeRet},
		}
	}, []string{"SSL_read", "SSL_read_ex"}, []string{"SSL_write", "SSL_write_ex"})
}

// AttachGnuTLS probes GnuTLS's record functions in the file at path (a
// libgnutls) as lib, with OpenSSL's programs: gnutls_record_send and
// gnutls_record_recv take (session, buffer, size) and return the bytes
// moved or a negative error, as SSL_write and SSL_read do (the session
// stands for the SSL object), and gnutls_handshake's system calls name
// the socket as SSL_do_handshake's. symbols maps each to its address in
// the file (0 or absent: found by name).
func (t *TLSProbes) AttachGnuTLS(path string, lib Library, symbols map[string]uint64) (*Attached, error) {
	return t.attachCalls(path, lib, symbols, func() []callProbe {
		return []callProbe{
			{"gnutls_record_send", t.objs.SslWrite, t.objs.SslWriteRet}, {"gnutls_record_recv", t.objs.SslRead, t.objs.SslReadRet},
			{"gnutls_handshake", t.objs.SslHandshake, t.objs.SslHandshakeRet},
		}
	}, []string{"gnutls_record_recv"}, []string{"gnutls_record_send"})
}

// callProbe is a library function read at its entry and its return by an
// OpenSSL-shaped program pair.
type callProbe struct {
	fn          string
	entry, done *ebpf.Program
}

// attachCalls probes the functions calls returns (asked once the
// programs are known to be loaded) in the file at path as lib; it needs
// one of reads and one of writes.
func (t *TLSProbes) attachCalls(path string, lib Library, symbols map[string]uint64, calls func() []callProbe, reads, writes []string) (*Attached, error) {
	return t.attachOnce(path, lib, func() bool { return t.objs.SslWrite != nil }, func(ex *link.Executable, cookie uint64, a *attachedFile) error {
		for _, c := range calls() {
			opts := &link.UprobeOptions{Address: symbols[c.fn], Cookie: cookie}
			// The return probe first: a call entered before it is attached
			// leaves no entry for a later return to take.
			l, err := ex.Uretprobe(c.fn, c.done, opts)
			if errors.Is(err, link.ErrNoSymbol) {
				a.Missing = append(a.Missing, c.fn)
				continue
			}
			if err != nil {
				return explain("attach a return probe to "+c.fn+" in "+path, err)
			}
			a.links = append(a.links, l)
			if l, err = ex.Uprobe(c.fn, c.entry, opts); err != nil {
				return explain("attach a uprobe to "+c.fn+" in "+path, err)
			}
			a.links = append(a.links, l)
			a.Functions = append(a.Functions, c.fn)
		}
		if !hasAny(a.Functions, reads...) || !hasAny(a.Functions, writes...) {
			return fmt.Errorf("probe %s: it has no %s or no %s function (missing: %v)", path,
				strings.Join(reads, "/"), strings.Join(writes, "/"), a.Missing)
		}
		return nil
	})
}

// attachOnce probes the file at path once: a file attached before (the
// same device and inode, through any path) gives its earlier Attached.
// Under t.mu, once loaded says the programs are (they are not after
// Close), probe attaches the file's links to a under cookie; on its error
// they are closed.
func (t *TLSProbes) attachOnce(path string, lib Library, loaded func() bool, probe func(ex *link.Executable, cookie uint64, a *attachedFile) error) (*Attached, error) {
	id, err := statID(path)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if a, ok := t.files[id]; ok {
		return &a.Attached, nil
	}
	if !loaded() {
		return nil, ErrTLSClosed
	}
	ex, err := link.OpenExecutable(path)
	if err != nil {
		return nil, fmt.Errorf("probe %s: %w", path, err)
	}
	a := &attachedFile{Attached: Attached{Path: shownPath(path), Library: lib}}
	if err := probe(ex, uint64(len(t.cookies)), a); err != nil {
		for _, l := range a.links {
			l.Close()
		}
		return nil, err
	}
	t.cookies = append(t.cookies, lib)
	t.files[id] = a
	t.log.Info("bpf: TLS library probed", "path", a.Path, "library", lib.Name, "functions", a.Functions, "probes", len(a.links))
	return &a.Attached, nil
}

// Go's crypto/tls functions the probes read, and their programs.
const (
	GoTLSWrite = "crypto/tls.(*Conn).Write"
	GoTLSRead  = "crypto/tls.(*Conn).Read"
)

// GoProbe is where to probe a Go binary: the file offsets of each
// function's entry (Entry) and of each of its return instructions
// (Returns), and the struct offsets from a *tls.Conn to its socket.
type GoProbe struct {
	Entry   map[string]uint64
	Returns map[string][]uint64
	FD      GoOffsets
}

// tlsGoOffsets is tls.bpf.c's struct go_offsets.

// AttachGo probes Go's crypto/tls (*Conn).Read and Write in the
// executable at path: a uprobe at each entry and at each return
// instruction (Go moves stacks, so return probes are unsafe). A file
// attached before is not probed again.
func (t *TLSProbes) AttachGo(path string, lib Library, g GoProbe) (*Attached, error) {
	for _, fn := range []string{GoTLSWrite, GoTLSRead} {
		if g.Entry[fn] == 0 || len(g.Returns[fn]) == 0 {
			return nil, fmt.Errorf("probe %s: %s has no entry or no return instruction", path, fn)
		}
	}
	return t.attachOnce(path, lib, func() bool { return t.objs.GoTlsWrite != nil }, func(ex *link.Executable, cookie uint64, a *attachedFile) error {
		o := tlsGoOffsets{ConnConn: g.FD.ConnConn, IfaceData: g.FD.IfaceData, NetconnFd: g.FD.NetConnFD, NetfdPfd: g.FD.NetFDPFD, PfdSysfd: g.FD.PFDSysfd}
		if err := t.objs.GoOffsetsMap.Put(cookie, o); err != nil {
			return fmt.Errorf("probe %s: store the Go offsets: %w", path, err)
		}
		progs := map[string][2]*ebpf.Program{
			GoTLSWrite: {t.objs.GoTlsWrite, t.objs.GoTlsWriteRet},
			GoTLSRead:  {t.objs.GoTlsRead, t.objs.GoTlsReadRet},
		}
		for _, fn := range []string{GoTLSWrite, GoTLSRead} {
			// Its returns first: a call entered before the entry probe is
			// attached has no entry for them to take.
			p := progs[fn]
			for _, ret := range g.Returns[fn] {
				l, err := ex.Uprobe("", p[1], &link.UprobeOptions{Address: ret, Cookie: cookie})
				if err != nil {
					t.objs.GoOffsetsMap.Delete(cookie)
					return explain(fmt.Sprintf("attach a uprobe to a return of %s (file offset %#x) in %s", fn, ret, path), err)
				}
				a.links = append(a.links, l)
			}
			l, err := ex.Uprobe("", p[0], &link.UprobeOptions{Address: g.Entry[fn], Cookie: cookie})
			if err != nil {
				t.objs.GoOffsetsMap.Delete(cookie)
				return explain("attach a uprobe to "+fn+" in "+path, err)
			}
			a.links = append(a.links, l)
			a.Functions = append(a.Functions, fn)
		}
		return nil
	})
}

// shownPath is how an attached file is named: path, or for a file reached
// through a descriptor the agent holds (/proc/self/fd/N: its process was
// gone), the file it is.
func shownPath(path string) string {
	if strings.HasPrefix(path, "/proc/self/fd/") {
		if l, err := os.Readlink(path); err == nil {
			return l
		}
	}
	return path
}

func hasAny(list []string, names ...string) bool {
	for _, l := range list {
		for _, n := range names {
			if l == n {
				return true
			}
		}
	}
	return false
}

// Attached lists the library files probed.
func (t *TLSProbes) Attached() []Attached {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]Attached, 0, len(t.files))
	for _, a := range t.files {
		out = append(out, a.Attached)
	}
	return out
}

// ErrTLSClosed is returned by ReadChunk and ReadExec once Close ran.
var ErrTLSClosed = errors.New("TLS probes closed")

// SetChunkDeadline makes ReadChunk return os.ErrDeadlineExceeded when no
// chunk comes before t (zero: no deadline).
func (t *TLSProbes) SetChunkDeadline(at time.Time) { t.chunks.SetDeadline(at) }

// ReadChunk waits for the next chunk of plaintext and fills c; c.Data
// reuses rec's array. It returns ErrTLSClosed after Close.
func (t *TLSProbes) ReadChunk(c *Chunk, rec *ringbuf.Record) error {
	for {
		if err := t.chunks.ReadInto(rec); err != nil {
			if errors.Is(err, ringbuf.ErrClosed) {
				return ErrTLSClosed
			}
			return err
		}
		if t.decode(rec.RawSample, c) {
			return nil
		}
	}
}

// decode reads one ring record into c; false for a record too short.
func (t *TLSProbes) decode(b []byte, c *Chunk) bool {
	var h tlsChunk
	n := int(unsafe.Sizeof(h))
	if len(b) < n {
		return false
	}
	h = *(*tlsChunk)(unsafe.Pointer(&b[0]))
	data := b[n:]
	if int(h.Captured) < len(data) {
		data = data[:h.Captured]
	}
	*c = Chunk{
		Time: t.clock.wall(h.Ktime), PID: h.Tgid, TID: h.Tid, CgroupID: h.CgroupId, FD: h.Fd, Comm: cString(h.Comm[:]),
		Read: h.Dir == 1, Len: h.Len, Offset: h.Offset, Lost: h.Lost, Data: data,
		Local:  addrPort(h.Family, h.LocalAddr, h.LocalPort),
		Remote: addrPort(h.Family, h.RemoteAddr, h.RemotePort),
	}
	t.mu.Lock()
	if h.Cookie < uint64(len(t.cookies)) {
		c.Library = t.cookies[h.Cookie]
	}
	t.mu.Unlock()
	return true
}

func addrPort(family uint16, a [16]byte, port uint16) netip.AddrPort {
	var ip netip.Addr
	if family == unix.AF_INET {
		ip = netip.AddrFrom4([4]byte(a[:4]))
	} else {
		ip = netip.AddrFrom16(a).Unmap()
	}
	return netip.AddrPortFrom(ip, port)
}

// ReadExec waits for the next process that executed a program and
// returns its pid.
func (t *TLSProbes) ReadExec() (uint32, error) {
	var rec ringbuf.Record
	for {
		if err := t.execs.ReadInto(&rec); err != nil {
			if errors.Is(err, ringbuf.ErrClosed) {
				return 0, ErrTLSClosed
			}
			return 0, err
		}
		if len(rec.RawSample) >= 4 {
			return binary.NativeEndian.Uint32(rec.RawSample), nil
		}
	}
}

// Counters sums the probes' per-CPU counters.
func (t *TLSProbes) Counters() (TLSCounters, error) {
	var c TLSCounters
	fields := []*uint64{&c.Calls, &c.Chunks, &c.Bytes, &c.RingFull, &c.OverRate, &c.CutCalls, &c.NoSocket, &c.NotTCP, &c.ReadFaults, &c.LostBytes, &c.GoConn, &c.GoFD}
	t.mu.Lock()
	m := t.objs.Counters
	t.mu.Unlock()
	if m == nil {
		return c, ErrTLSClosed
	}
	for i, f := range fields {
		var per []uint64
		if err := m.Lookup(uint32(i), &per); err != nil {
			return c, fmt.Errorf("read the TLS counters: %w", err)
		}
		for _, v := range per {
			*f += v
		}
	}
	return c, nil
}

// Close detaches every probe and frees the programs and maps.
func (t *TLSProbes) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, a := range t.files {
		for _, l := range a.links {
			l.Close()
		}
	}
	t.files = map[fileID]*attachedFile{}
	for _, l := range t.links {
		l.Close()
	}
	t.links = nil
	if t.chunks != nil {
		t.chunks.Close()
	}
	if t.execs != nil {
		t.execs.Close()
	}
	err := t.objs.Close()
	t.objs = tlsObjects{}
	return err
}

// monoClock turns bpf_ktime_get_ns (CLOCK_MONOTONIC) into wall time.
type monoClock struct {
	mu     sync.Mutex
	offset int64 // wall − monotonic, ns
	at     time.Time
}

func newMonoClock() *monoClock {
	c := &monoClock{}
	c.sync()
	return c
}

func (c *monoClock) sync() {
	var ts unix.Timespec
	before := time.Now()
	if unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts) != nil {
		return
	}
	c.offset = before.UnixNano() - ts.Nano()
	c.at = before
}

// wall is the wall time of a monotonic timestamp; the offset is taken
// again every 10 s, so a stepped wall clock is followed.
func (c *monoClock) wall(mono uint64) time.Time {
	c.mu.Lock()
	if time.Since(c.at) > 10*time.Second {
		c.sync()
	}
	off := c.offset
	c.mu.Unlock()
	return time.Unix(0, int64(mono)+off)
}

// cString is the text of a NUL-terminated array.
func cString(b []int8) string {
	out := make([]byte, 0, len(b))
	for _, c := range b {
		if c == 0 {
			break
		}
		out = append(out, byte(c))
	}
	return string(out)
}
