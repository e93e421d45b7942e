//go:build linux

package tlsplain

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wirescope/wirescope/capture/segstore"
	"github.com/wirescope/wirescope/internal/testserver"
)

// TestReaderGoTLS reads Go's crypto/tls: a server built with symbols and a
// client built stripped (-s -w, static), over HTTP/2 and HTTP/1.1. The
// reader starts after the server, and the client starts after the reader.
func TestReaderGoTLS(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the probes need root")
	}
	dir := t.TempDir()
	server := testserver.BuildGoTLS(t, dir, "server")
	client := testserver.BuildGoTLS(t, dir, "client", "-ldflags=-s -w")
	addr := "127.0.0.43:18446"
	srv := exec.Command(server, "server", addr)
	// The server's output goes to a file: exec hands the descriptor over,
	// with no copying goroutine to race with waitListen's reading it.
	srvLog, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer srvLog.Close()
	srv.Stdout, srv.Stderr = srvLog, srvLog
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	waitListen(t, addr, srvLog.Name())

	st, err := segstore.Open(t.TempDir(), segstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r, err := Start(st, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cov := r.Coverage()
	i := slices.IndexFunc(cov.Processes, func(p Process) bool { return p.PID == srv.Process.Pid })
	if i < 0 || len(cov.Processes[i].Libraries) == 0 || !cov.Processes[i].Libraries[0].Probed ||
		!strings.HasPrefix(cov.Processes[i].Libraries[0].Name, "Go 1.") {
		t.Fatalf("the Go server (pid %d) is not covered: %+v", srv.Process.Pid, cov.Processes)
	}

	url := "https://" + addr
	// A new binary is probed when it executes, and the first calls of a
	// process that ends within milliseconds may come before the probes
	// are attached, or the process be gone before it is looked at: a run
	// that waits a second is probed; once its file is probed, every later
	// run of it is read from its first call.
	if out, err := exec.Command(client, "client", "-wait", url+"/warm-up").CombinedOutput(); err != nil {
		t.Fatalf("client: %v\n%s", err, out)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !slices.ContainsFunc(r.Coverage().Processes, func(p Process) bool {
		return p.Comm == "client" && len(p.Libraries) > 0 && p.Libraries[0].Probed
	}) {
		if time.Now().After(deadline) {
			t.Fatalf("the stripped Go client was not probed: %+v", r.Coverage().Processes)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, args := range [][]string{{url + "/h2-a", url + "/h2-b"}, {"-h1", url + "/h1-a", url + "/h1-b"}} {
		out, err := exec.Command(client, append([]string{"client"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("client %v: %v\n%s", args, err, out)
		}
	}
	// A process gone before it is looked at (a burst of execs kept the
	// reader busy): its executable, held open since its exec event, is
	// still probed, so that its next run is read, and the process is
	// named by its file, exited.
	short := filepath.Join(dir, "server-short") // a new file: not probed yet
	b, err := os.ReadFile(server)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(short, b, 0o755); err != nil {
		t.Fatal(err)
	}
	p := exec.Command(short, "server", "127.0.0.43:18452")
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	exe, err := os.Open("/proc/" + strconv.Itoa(p.Process.Pid) + "/exe")
	p.Process.Kill()
	p.Wait()
	if err != nil {
		t.Fatal(err)
	}
	defer exe.Close()
	r.inspect(p.Process.Pid, exe)
	exitedCov := r.Coverage()
	j := slices.IndexFunc(exitedCov.Processes, func(q Process) bool { return q.PID == p.Process.Pid })
	if j < 0 {
		t.Fatalf("the exited process %d is not listed: %+v", p.Process.Pid, exitedCov.Processes)
	}
	if q := exitedCov.Processes[j]; q.Comm != "server-short" || q.Exited.IsZero() || len(q.Libraries) != 1 || !q.Libraries[0].Probed ||
		q.Libraries[0].Path != short || !strings.HasPrefix(q.Libraries[0].Name, "Go 1.") {
		t.Errorf("the exited process: %+v", q)
	}
	for _, a := range exitedCov.Probed {
		if strings.HasPrefix(a.Path, "/proc/self/") {
			t.Errorf("a file probed through the agent's descriptor is listed as %s, not as the file", a.Path)
		}
	}
	cov = drain(r)
	if err := st.Flush(); err != nil {
		t.Fatal(err)
	}
	// The stripped client was probed too (through pclntab): both ends
	// read, one copy kept.
	if cov.Duplicates == 0 || cov.Counters.NoSocket != 0 {
		t.Errorf("duplicates %d, counters %+v", cov.Duplicates, cov.Counters)
	}
	streams := readPlaintext(t, st)
	var toServer, fromServer []byte
	for k, s := range streams {
		if k[1].String() == addr {
			toServer = append(toServer, s.data...)
		}
		if k[0].String() == addr {
			fromServer = append(fromServer, s.data...)
		}
		if s.gaps != 0 {
			t.Errorf("%v→%v: %d gaps", k[0], k[1], s.gaps)
		}
	}
	for _, want := range []string{"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "GET /h1-a HTTP/1.1\r\n", "GET /h1-b HTTP/1.1\r\n"} {
		if !bytes.Contains(toServer, []byte(want)) {
			t.Errorf("to the server: no %q in %q", want, toServer)
		}
	}
	for _, want := range []string{"go-probed HTTP/2.0 /h2-a", "go-probed HTTP/2.0 /h2-b", "go-probed HTTP/1.1 /h1-a", "go-probed HTTP/1.1 /h1-b"} {
		if !bytes.Contains(fromServer, []byte(want)) {
			t.Errorf("from the server: no %q in %q", want, fromServer)
		}
	}

}

// waitListen waits until something listens on addr; log is the file the
// listener's output goes to, quoted if it never listens.
func waitListen(t *testing.T, addr, log string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, _ := exec.Command("ss", "-ltnH", "src", addr).Output()
		if len(bytes.TrimSpace(out)) > 0 {
			return
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(log)
			t.Fatalf("nothing listens on %s: %s", addr, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
