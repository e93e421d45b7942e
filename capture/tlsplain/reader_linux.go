//go:build linux

package tlsplain

import (
	"errors"
	"os"
	"path"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cilium/ebpf/ringbuf"
	"github.com/wirescope/wirescope/bpf"
	"github.com/wirescope/wirescope/bpf/tlslib"
	"github.com/wirescope/wirescope/capture"
)

// Start opens the probes, probes the TLS libraries of the processes
// running now and keeps probing those of processes that start later (on
// exec, and every Options.Rescan), storing plaintext records with w. The
// error says why it cannot (no eBPF, no privileges): the agent then
// captures packets without plaintext and says so.
func Start(w Writer, o Options) (*Reader, error) {
	o.defaults()
	p, err := bpf.OpenTLS(o.Log, o.Probes)
	if err != nil {
		return nil, err
	}
	r := newReader(w, o)
	r.probes = p
	r.syscallHook = p.SyscallHook
	r.scanAll()
	r.wg.Add(3)
	go r.readChunks()
	go r.readExecs()
	go r.rescan()
	return r, nil
}

// Close stops the probes and waits for the reader's goroutines.
func (r *Reader) Close() error {
	r.closeOnce.Do(func() {
		close(r.done)
		r.probes.Close()
		r.wg.Wait()
	})
	return nil
}

// readChunks stores every chunk as a plaintext record. With
// Options.Held, a connection new to the reader waits (at most HoldFor,
// MaxHeldBytes in all) until the store holds its packets: its handshake's
// packets may still be in the capture's ring when its first plaintext
// comes.
func (r *Reader) readChunks() {
	defer r.wg.Done()
	var (
		c    bpf.Chunk
		rec  ringbuf.Record
		held heldChunks
	)
	w := &recordWriter{r: r}
	for {
		if r.o.Held != nil {
			r.probes.SetChunkDeadline(time.Now().Add(heldTick))
		}
		err := r.probes.ReadChunk(&c, &rec)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			held.settle(r, w, time.Now())
			continue
		}
		if err != nil {
			if !errors.Is(err, bpf.ErrTLSClosed) {
				r.log.Warn("tlsplain: reading the TLS ring buffer", "err", err)
			}
			return
		}
		r.mu.Lock()
		r.seenPID(int(c.PID), c.Comm, c.Library)
		known := r.seq.known(&c)
		r.mu.Unlock()
		if !known && r.o.Held != nil && (held.waiting(&c) || !r.o.Held(c.Local, c.Remote)) {
			held.add(r, &c, time.Now())
			continue
		}
		w.write(&c)
		held.settle(r, w, time.Now())
	}
}

// recordWriter numbers chunks and writes their records.
type recordWriter struct {
	r   *Reader
	buf []byte
	p   capture.Packet
}

func (w *recordWriter) write(c *bpf.Chunk) {
	r := w.r
	r.mu.Lock()
	var ok bool
	w.buf, ok = r.seq.record(w.buf[:0], c, &w.p)
	if ok {
		r.records++
	}
	r.mu.Unlock()
	if !ok {
		return
	}
	if err := r.w.Write(&w.p, Interface); err != nil {
		r.mu.Lock()
		r.writeErrors++
		r.mu.Unlock()
	}
}

// execEvent is a process that executed a program, with its executable
// held open from the moment the event was read (nil if it was gone by
// then).
type execEvent struct {
	pid int
	exe *os.File
}

// maxExecQueue bounds the execs waiting to be inspected (each holds a
// descriptor); past it an exec is left to the rescan.
const maxExecQueue = 1024

// readExecs reads the exec events as fast as they come, opening each
// process's executable at once: inspecting takes longer (a Go binary's
// symbols), and a burst of execs (a build, a shell loop) would otherwise
// delay the next process's look until it is gone. inspectExecs inspects
// them in order.
func (r *Reader) readExecs() {
	defer r.wg.Done()
	queue := make(chan execEvent, maxExecQueue)
	r.wg.Add(1)
	go r.inspectExecs(queue)
	defer close(queue)
	for {
		pid, err := r.probes.ReadExec()
		if err != nil {
			return
		}
		ev := execEvent{pid: int(pid)}
		if f, err := os.Open("/proc/" + strconv.Itoa(ev.pid) + "/exe"); err == nil {
			ev.exe = f
		}
		select {
		case queue <- ev:
		default:
			if ev.exe != nil {
				ev.exe.Close()
			}
			r.mu.Lock()
			r.execsSkipped++
			r.mu.Unlock()
		}
	}
}

// inspectExecs inspects each process that executed a program, again a
// little later (a library loaded after exec: Python imports ssl when
// asked).
func (r *Reader) inspectExecs(queue <-chan execEvent) {
	defer r.wg.Done()
	for ev := range queue {
		select {
		case <-r.done:
			if ev.exe != nil {
				ev.exe.Close()
			}
			continue
		default:
		}
		r.inspect(ev.pid, ev.exe)
		if ev.exe != nil {
			ev.exe.Close()
		}
		for _, d := range []time.Duration{50 * time.Millisecond, 500 * time.Millisecond, 3 * time.Second} {
			r.later(ev.pid, d)
		}
	}
}

// later inspects pid after d.
func (r *Reader) later(pid int, d time.Duration) {
	time.AfterFunc(d, func() {
		select {
		case <-r.done:
		default:
			r.inspect(pid, nil)
		}
	})
}

// rescan looks at every process again each Rescan.
func (r *Reader) rescan() {
	defer r.wg.Done()
	t := time.NewTicker(r.o.Rescan)
	defer t.Stop()
	for {
		select {
		case <-r.done:
			return
		case <-t.C:
			r.scanAll()
		}
	}
}

// scanAll inspects every process in /proc.
func (r *Reader) scanAll() {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		r.log.Warn("tlsplain: list processes", "err", err)
		return
	}
	alive := map[int]bool{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue
		}
		alive[pid] = true
		r.inspect(pid, nil)
	}
	r.mu.Lock()
	now := time.Now()
	for pid, pr := range r.procs {
		if !alive[pid] && pr.Exited.IsZero() {
			pr.Exited = now
		}
	}
	r.mu.Unlock()
}

// inspect finds pid's TLS libraries and probes those it can. exe is the
// process's executable, held open since its exec event (nil for the
// looks after it, and the rescan's): a process that ends within
// milliseconds of its exec (a CLI, a job) takes /proc/PID/root with it,
// but not this descriptor, through which its file is still probed, and
// read on its next run.
func (r *Reader) inspect(pid int, exe *os.File) {
	if pid == os.Getpid() {
		return
	}
	var exited time.Time
	comm := ""
	targets, err := tlslib.Inspect(pid)
	if errors.Is(err, tlslib.ErrExited) && exe != nil {
		// Gone before it was looked at: its executable is not. Its
		// libraries are not known (a library it loaded is probed when
		// another process maps it).
		if t := tlslib.InspectExecutable(pid, fdPath(exe)); t != nil {
			targets, err, exited = []tlslib.Target{*t}, nil, time.Now()
			if link, err := os.Readlink(fdPath(exe)); err == nil {
				comm = path.Base(strings.TrimSuffix(link, " (deleted)"))
				comm = comm[:min(len(comm), 15)] // the kernel's TASK_COMM_LEN-1
			}
		}
	}
	if err != nil {
		if errors.Is(err, tlslib.ErrExited) {
			r.mu.Lock()
			if pr := r.procs[pid]; pr != nil && pr.Exited.IsZero() {
				pr.Exited = time.Now()
			}
			r.mu.Unlock()
		}
		return
	}
	if exited.IsZero() {
		comm = readComm(pid)
	}
	var libs []Library
	for _, t := range targets {
		l := r.probe(t, exe)
		if exe != nil && l.Path == fdPath(exe) {
			// Show the file, not the agent's descriptor of it.
			if link, err := os.Readlink(l.Path); err == nil {
				l.Path = link
			}
		}
		libs = append(libs, l)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(libs) == 0 && r.procs[pid] == nil {
		return
	}
	pr := r.procs[pid]
	if comm == "" && pr != nil {
		comm = pr.Comm // gone since: keep what the chunks said
	}
	if pr == nil || pr.Comm != comm {
		if len(r.procs) >= r.o.MaxProcesses {
			r.forgetExited()
		}
		pr = &Process{PID: pid, First: time.Now()}
		r.procs[pid] = pr
	}
	pr.Comm, pr.Libraries, pr.Exited = comm, libs, exited
}

// fdPath is the path through which the agent reaches an open file.
func fdPath(f *os.File) string { return "/proc/self/fd/" + strconv.Itoa(int(f.Fd())) }

// probe attaches the probes to t's file once (through exe, the process's
// executable held open, when it is that file); it returns what the
// process uses and whether its plaintext is read.
func (r *Reader) probe(t tlslib.Target, exe *os.File) Library {
	l := Library{Name: t.Library, Kind: t.Kind.String(), Path: t.Path, Reason: t.Reason}
	if t.Kind == tlslib.Unknown {
		l.Name = "" // nothing says which library, or whether it does TLS
	}
	if t.Reason != "" || !t.Kind.Probeable() {
		if l.Reason == "" {
			l.Reason = t.Kind.String() + " not supported"
		}
		return l
	}
	kind := capture.LibOpenSSL
	switch t.Kind {
	case tlslib.BoringSSL:
		kind = capture.LibBoringSSL
	case tlslib.GnuTLS:
		kind = capture.LibGnuTLS
	case tlslib.GoTLS:
		kind = capture.LibGoTLS
		if t.GoFD == nil || !t.GoFD.RegABI {
			l.Reason = "Go before 1.17 (arguments on the stack) not supported"
			return l
		}
	}
	lib := bpf.Library{Kind: kind, Major: t.Major, Minor: t.Minor, Name: t.Library}
	key := fileKey{t.Dev, t.Ino}
	r.mu.Lock()
	why, tried := r.failed[key]
	r.mu.Unlock()
	if tried {
		l.Reason = why
		return l
	}
	attach := func(path string) error {
		var err error
		if kind == capture.LibGoTLS {
			o := t.GoFD
			_, err = r.probes.AttachGo(path, lib, bpf.GoProbe{Entry: t.Symbols, Returns: t.Returns,
				FD: bpf.GoOffsets{ConnConn: o.ConnConn, IfaceData: o.IfaceData, NetConnFD: o.NetConnFD, NetFDPFD: o.NetFDPFD, PFDSysfd: o.PFDSysfd}})
		} else if kind == capture.LibGnuTLS {
			_, err = r.probes.AttachGnuTLS(path, lib, t.Symbols)
		} else {
			_, err = r.probes.AttachOpenSSL(path, lib, nil)
		}
		return err
	}
	err := attach(t.Path)
	if err != nil && exe != nil && gone(t.PID) {
		// The process ended meanwhile, and its paths with it: its
		// executable, if that is the file, is probed through the
		// descriptor held.
		var st syscall.Stat_t
		if syscall.Fstat(int(exe.Fd()), &st) == nil && uint64(st.Dev) == t.Dev && st.Ino == t.Ino {
			err = attach(fdPath(exe))
		}
	}
	if err != nil && gone(t.PID) {
		// Not the file's fault: its next process is probed afresh.
		l.Reason = "exited before its probes were attached (" + err.Error() + ")"
		return l
	}
	if err != nil {
		r.log.Warn("tlsplain: cannot probe a TLS library", "path", t.Path, "library", t.Library, "err", err)
		l.Reason = "probes refused: " + err.Error()
		r.mu.Lock()
		r.failed[key] = l.Reason
		r.mu.Unlock()
		return l
	}
	l.Probed = true
	return l
}

// gone reports whether process pid has ended.
func gone(pid int) bool {
	_, err := os.Stat("/proc/" + strconv.Itoa(pid))
	return err != nil
}

// counters reads the probes' counters.
func (r *Reader) counters() (bpf.TLSCounters, error) { return r.probes.Counters() }

// hook says how sockets are learned.
func (r *Reader) hook() string { return r.syscallHook }
