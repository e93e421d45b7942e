//go:build linux

package tlsplain

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/wirescope/wirescope/capture"
	"github.com/wirescope/wirescope/capture/segstore"
	"github.com/wirescope/wirescope/internal/testserver"
)

// stream is one direction of a connection, rebuilt from plaintext records.
type stream struct {
	next uint32
	data []byte
	gaps int
	pids map[uint32]bool
}

// readPlaintext reads every plaintext record of the store's segments and
// rebuilds each direction's bytes in seq order.
func readPlaintext(t *testing.T, st *segstore.Store) map[[2]netip.AddrPort]*stream {
	t.Helper()
	out := map[[2]netip.AddrPort]*stream{}
	dec := capture.NewDecoder()
	for _, seg := range st.Segments() {
		if seg.LinkType != capture.LinkTypeTLSPlaintext {
			continue
		}
		f, err := capture.OpenFile(seg.Path)
		if err != nil {
			t.Fatal(err)
		}
		var p capture.Packet
		for {
			if err := f.Next(&p); err != nil {
				if !errors.Is(err, io.EOF) {
					t.Fatal(err)
				}
				break
			}
			var d capture.Decoded
			if err := dec.Decode(p.LinkType, p.Data, p.Length, p.Timestamp, &d); err != nil {
				t.Fatalf("record of %s: %v", seg.Path, err)
			}
			h, _ := capture.ParsePlaintextHeader(p.Data)
			k := [2]netip.AddrPort{netip.AddrPortFrom(d.Src, d.SrcPort), netip.AddrPortFrom(d.Dst, d.DstPort)}
			s := out[k]
			if s == nil {
				s = &stream{next: 1, pids: map[uint32]bool{}}
				out[k] = s
			}
			if d.TCP.Seq != s.next {
				s.gaps++
			}
			s.next = d.TCP.Seq + uint32(len(d.Payload))
			s.data = append(s.data, d.Payload...)
			s.pids[h.PID] = true
		}
		f.Close()
	}
	return out
}

// TestReaderStoresPlaintext runs the reader against real processes:
// nginx (running before the reader starts) and curl and Python (started
// after) over TLS 1.3 and 1.2, HTTP/1.1 and HTTP/2, and reads the
// plaintext back from the store's segments.
func TestReaderStoresPlaintext(t *testing.T) {
	needTools(t, "curl", "/usr/bin/python3")
	addr := "127.0.0.42:18445"
	nginx := testserver.NginxTLS(t, addr)
	st, r := startReader(t)
	closed := false
	defer func() {
		if !closed {
			r.Close()
		}
	}()

	// The library nginx maps was probed at start.
	cov := r.Coverage()
	i := slices.IndexFunc(cov.Processes, func(p Process) bool { return p.PID == nginx })
	if i < 0 || len(cov.Processes[i].Libraries) == 0 || !cov.Processes[i].Libraries[0].Probed ||
		!strings.HasPrefix(cov.Processes[i].Libraries[0].Name, "OpenSSL 3.") {
		t.Fatalf("nginx (pid %d) not covered: %+v", nginx, cov.Processes)
	}
	if !strings.HasPrefix(cov.SyscallHook, "tracepoints") {
		t.Errorf("syscall hook %q", cov.SyscallHook)
	}

	url := "https://" + addr
	runs := []struct {
		name string
		args []string
		want []string // client → server, in order
	}{
		{"curl http/1.1 tls1.3", []string{"curl", "-sk", "--http1.1", "--tlsv1.3", url + "/a", url + "/b?q=1", url + "/big"},
			[]string{"GET /a HTTP/1.1\r\n", "GET /b?q=1 HTTP/1.1\r\n", "GET /big HTTP/1.1\r\n"}},
		{"curl http/2 tls1.2", []string{"curl", "-sk", "--http2", "--tls-max", "1.2", url + "/h2-one", url + "/h2-two"},
			[]string{"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"}},
		{"python requests", []string{"/usr/bin/python3", "-c", `import requests, urllib3
urllib3.disable_warnings()
s = requests.Session()
for p in ("/py-one", "/py-two"):
    r = s.get("` + url + `" + p, verify=False)
    assert r.status_code == 200 and r.text == "probed\n", (r.status_code, r.text)
`}, []string{"GET /py-one HTTP/1.1\r\n", "GET /py-two HTTP/1.1\r\n"}},
	}
	// BoringSSL: Android's libssl.so.0 (Debian's android-libboringssl)
	// under its bssl tool, whose request waits a second, after the
	// reader's looks at the libraries it loaded: a library file never
	// seen before is probed once a process has mapped it.
	bssl, err := exec.LookPath("bssl-tool")
	if err != nil {
		t.Skip("bssl-tool (android-boringssl) is not installed (make test installs it)")
	}
	runs = append(runs, struct {
		name string
		args []string
		want []string
	}{"bssl (BoringSSL) tls1.3", []string{"sh", "-c", `(sleep 1; printf 'GET /bssl HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'; sleep 1) | "$0" client -connect "$1"`, bssl, addr},
		[]string{"GET /bssl HTTP/1.1\r\n"}})
	// GnuTLS: its gnutls-cli (gnutls-bin), likewise.
	gnutls, err := exec.LookPath("gnutls-cli")
	if err != nil {
		t.Skip("gnutls-cli (gnutls-bin) is not installed (make test installs it)")
	}
	host, port, _ := strings.Cut(addr, ":")
	runs = append(runs, struct {
		name string
		args []string
		want []string
	}{"gnutls-cli (GnuTLS) tls1.3", []string{"sh", "-c", `(sleep 1; printf 'GET /gnutls HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'; sleep 1) | "$0" --insecure --logfile=/dev/null -p "$2" "$1"`, gnutls, host, port},
		[]string{"GET /gnutls HTTP/1.1\r\n"}})
	for _, run := range runs {
		out, err := exec.Command(run.args[0], run.args[1:]...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", run.name, err, out)
		}
	}
	cov = drain(r)
	closed = true
	if err := st.Flush(); err != nil {
		t.Fatal(err)
	}
	streams := readPlaintext(t, st)

	for _, run := range runs {
		var found *stream
		for k, s := range streams {
			if k[1].String() == addr && bytes.HasPrefix(s.data, []byte(run.want[0])) {
				found = s
			}
		}
		if found == nil {
			for k, s := range streams {
				t.Logf("%v→%v: %d bytes %.60q", k[0], k[1], len(s.data), s.data)
			}
			t.Fatalf("%s: no stream to %s starts with %q", run.name, addr, run.want[0])
		}
		at := 0
		for _, w := range run.want {
			j := bytes.Index(found.data[at:], []byte(w))
			if j < 0 {
				t.Fatalf("%s: %q not in order in %q", run.name, w, found.data)
			}
			at += j + len(w)
		}
		if found.gaps != 0 {
			t.Errorf("%s: %d gaps", run.name, found.gaps)
		}
	}
	// The responses came back whole: /big's 100,000 bytes among them.
	var body int
	for k, s := range streams {
		if k[0].String() == addr {
			body += bytes.Count(s.data, []byte("0123456789"))
			if s.gaps != 0 {
				t.Errorf("%v→%v: %d gaps", k[0], k[1], s.gaps)
			}
		}
	}
	if body < 10000 {
		t.Errorf("the /big response: %d of 10,000 runs of 0123456789 stored", body)
	}
	// bssl and gnutls-cli were read through their own libraries' probes.
	for comm, kind := range map[string]string{"bssl-tool": "BoringSSL", "gnutls-cli": "GnuTLS"} {
		if !slices.ContainsFunc(cov.Processes, func(p Process) bool {
			return p.Comm == comm && p.Chunks > 0 && slices.ContainsFunc(p.Libraries, func(l Library) bool { return l.Probed && l.Kind == kind })
		}) {
			t.Errorf("%s is not read through %s: %+v", comm, kind, cov.Processes)
		}
	}
	// Both ends were probed: one copy of each connection was stored.
	if cov.Duplicates == 0 || cov.Records == 0 || cov.WriteErrors != 0 {
		t.Errorf("records %d, duplicates %d, write errors %d", cov.Records, cov.Duplicates, cov.WriteErrors)
	}
	if cov.Counters.RingFull != 0 || cov.Counters.OverRate != 0 || cov.Counters.NoSocket != 0 {
		t.Errorf("counters %+v", cov.Counters)
	}
	var probed []string
	for _, a := range cov.Probed {
		probed = append(probed, a.Path)
	}
	sort.Strings(probed)
	if len(probed) == 0 {
		t.Error("no library file listed as probed")
	}
	t.Logf("probed %v; %d records, %d duplicates, counters %+v", probed, cov.Records, cov.Duplicates, cov.Counters)
}

// needTools skips the test unless it runs as root (the probes need it)
// with tools on its PATH.
func needTools(t *testing.T, tools ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the probes need root")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (make test installs it)", tool)
		}
	}
}

// startReader starts a reader (processes looked at again every 200 ms)
// storing into a fresh store, closed when the test ends.
func startReader(t *testing.T) (*segstore.Store, *Reader) {
	t.Helper()
	st, err := segstore.Open(t.TempDir(), segstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	r, err := Start(st, Options{Rescan: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return st, r
}

// drain waits (5 s at most) until every chunk the probes sent is stored
// or left out as the other end's copy, then stops r and returns its last
// coverage.
func drain(r *Reader) Coverage {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		c := r.Coverage()
		if c.Counters.Chunks > 0 && c.Records+c.Duplicates >= c.Counters.Chunks {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	cov := r.Coverage()
	r.Close()
	return cov
}

// TestReaderMountNamespace: a process in a mount namespace of its own (as
// a container's) whose libssl is another file than the host's at the same
// path: the reader opens the library through the process's root, so the
// namespace's file is probed and read, not the host's; two processes of
// namespaces sharing that file probe it once.
func TestReaderMountNamespace(t *testing.T) {
	needTools(t, "curl", "unshare")
	addr := "127.0.0.42:18453"
	nginx := testserver.NginxTLS(t, addr)
	// The host's libssl, as nginx maps it, and a copy of it: another
	// inode, which the namespaces mount over the host's path.
	maps, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", nginx))
	if err != nil {
		t.Fatal(err)
	}
	var host string
	for line := range strings.Lines(string(maps)) {
		if f := strings.Fields(line); len(f) == 6 && strings.Contains(f[5], "/libssl.so") {
			host = f[5]
			break
		}
	}
	if host == "" {
		t.Fatalf("nginx maps no libssl:\n%s", maps)
	}
	b, err := os.ReadFile(host)
	if err != nil {
		t.Fatal(err)
	}
	copied := filepath.Join(t.TempDir(), "libssl.so.3")
	if err := os.WriteFile(copied, b, 0o755); err != nil {
		t.Fatal(err)
	}
	_, r := startReader(t)
	defer r.Close()
	var pids []int
	for _, p := range []string{"/ns-one", "/ns-two"} {
		// unshare and sh exec: the pid is curl's. Its second request,
		// half a second after the first, comes after the reader's look
		// at the libraries it loaded (a process that ends within
		// milliseconds of loading a library file never seen before
		// ends before it is probed; the next process of that file is
		// read from its first call).
		cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c",
			`mount --bind "$1" "$2" && exec curl -sk --http1.1 --rate 2/s "$3" "$3"`, "sh", copied, host, "https://"+addr+p)
		if out, err := cmd.CombinedOutput(); err != nil || string(out) != "probed\nprobed\n" {
			t.Fatalf("curl %s in its namespace: %v\n%s", p, err, out)
		}
		pids = append(pids, cmd.Process.Pid)
	}
	cov := drain(r)
	for _, pid := range pids {
		i := slices.IndexFunc(cov.Processes, func(p Process) bool { return p.PID == pid })
		if i < 0 {
			t.Fatalf("curl %d is not listed: %+v", pid, cov.Processes)
		}
		p := cov.Processes[i]
		// Read: its chunks came from the namespace's file, as the host's
		// is another inode, probed apart (for nginx).
		// (curl maps GnuTLS too, through libldap: probed, not used.)
		if p.Chunks == 0 || !slices.ContainsFunc(p.Libraries, func(l Library) bool {
			return l.Probed && strings.HasPrefix(l.Name, "OpenSSL 3.") && l.Path == fmt.Sprintf("/proc/%d/root%s", pid, host)
		}) {
			t.Errorf("curl %d in its namespace not read: %+v", pid, p)
		}
	}
	// The copy is probed once, through the first namespace's root; the
	// host's file once more (for nginx, or whichever process mapping it
	// was seen first).
	var copies, hosts int
	for _, a := range cov.Probed {
		switch {
		case a.Path == fmt.Sprintf("/proc/%d/root%s", pids[0], host) || a.Path == fmt.Sprintf("/proc/%d/root%s", pids[1], host):
			copies++
		case strings.HasSuffix(a.Path, "/root"+host):
			hosts++
		}
	}
	if copies != 1 || hosts != 1 {
		t.Errorf("the namespaces' libssl probed %d times, the host's %d (want 1 and 1): %+v", copies, hosts, cov.Probed)
	}
}
