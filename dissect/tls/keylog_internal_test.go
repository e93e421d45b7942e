package tls

import (
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func line(label string, cr byte, secret byte, n int) string {
	return fmt.Sprintf("%s %s %s\n", label, strings.Repeat(fmt.Sprintf("%02x", cr), 32), strings.Repeat(fmt.Sprintf("%02x", secret), n))
}

// TestKeyLogParse: the labels of TLS 1.2 and 1.3 are read, others and
// malformed lines skipped and counted.
func TestKeyLogParse(t *testing.T) {
	in := "# a comment\n" +
		line("CLIENT_RANDOM", 1, 0xaa, 48) +
		line("CLIENT_HANDSHAKE_TRAFFIC_SECRET", 2, 0xb1, 32) +
		line("SERVER_HANDSHAKE_TRAFFIC_SECRET", 2, 0xb2, 32) +
		line("CLIENT_TRAFFIC_SECRET_0", 2, 0xb3, 32) +
		line("SERVER_TRAFFIC_SECRET_0", 2, 0xb4, 32) +
		line("EXPORTER_SECRET", 2, 0xb5, 32) +
		line("CLIENT_RANDOM", 3, 0xaa, 47) + // a secret of the wrong length
		"CLIENT_RANDOM zz " + strings.Repeat("aa", 48) + "\n" +
		"garbage\n" +
		strings.Repeat("x", 100000) + "\n" +
		strings.TrimSuffix(line("CLIENT_RANDOM", 4, 0xcc, 48), "\n") // the last line, without its newline
	k, err := ParseKeyLog(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	st := k.Stats()
	if st.Sessions != 3 || st.Skipped != 5 {
		t.Errorf("stats %+v, want 3 sessions and 5 lines skipped", st)
	}
	cr := func(b byte) []byte { return []byte(strings.Repeat(string([]byte{b}), 32)) }
	if s := k.lookup(cr(1)); s == nil || len(s.master) != 48 || s.master[0] != 0xaa {
		t.Errorf("TLS 1.2 session: %+v", s)
	}
	if s := k.lookup(cr(2)); s == nil || s.clientHS[0] != 0xb1 || s.serverHS[0] != 0xb2 || s.clientApp[0] != 0xb3 || s.serverApp[0] != 0xb4 {
		t.Errorf("TLS 1.3 session: %+v", s)
	}
	if k.lookup(cr(3)) != nil || k.lookup(cr(4)) == nil {
		t.Error("a bad secret was taken, or a whole last line without its newline was not")
	}
}

// TestKeyLogFile: a key log others may read is refused; one that grows is
// read again when a session is missing (at most once a second), without
// taking a line still being written; one replaced by a shorter file is read
// afresh.
func TestKeyLogFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keys")
	if err := os.WriteFile(path, []byte(line("CLIENT_RANDOM", 1, 0xaa, 48)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenKeyLog(path); err == nil || !strings.Contains(err.Error(), "-rw-r--r--") {
		t.Fatalf("a world-readable key log: %v", err)
	}
	if _, err := OpenKeyLog(dir); err == nil {
		t.Fatal("a directory taken as a key log")
	}
	if _, err := OpenKeyLog(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("a missing key log taken")
	}
	os.Chmod(path, 0o640)
	k, err := OpenKeyLog(path)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1000, 0)
	k.now = func() time.Time { return now }
	cr := func(b byte) []byte { return []byte(strings.Repeat(string([]byte{b}), 32)) }
	if k.lookup(cr(1)) == nil {
		t.Fatal("session 1 not found")
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	l2 := line("CLIENT_RANDOM", 2, 0xbb, 48)
	io.WriteString(f, l2[:50]) // a writer halfway through a line
	now = now.Add(2 * time.Second)
	if k.lookup(cr(2)) != nil {
		t.Fatal("a partial line taken")
	}
	io.WriteString(f, l2[50:])
	now = now.Add(500 * time.Millisecond)
	if k.lookup(cr(2)) != nil {
		t.Fatal("the file read again within a second")
	}
	now = now.Add(time.Second)
	if s := k.lookup(cr(2)); s == nil || s.master[0] != 0xbb {
		t.Fatalf("the grown file's session 2: %+v", s)
	}
	// Replaced by a shorter file: read afresh.
	if err := os.WriteFile(path, []byte(line("CLIENT_RANDOM", 3, 0xcc, 48)), 0o600); err != nil {
		t.Fatal(err)
	}
	now = now.Add(2 * time.Second)
	if k.lookup(cr(3)) == nil || k.lookup(cr(1)) != nil {
		t.Error("a replaced key log was not read afresh")
	}
	// Made world-readable meanwhile: no longer read.
	os.Chmod(path, 0o604)
	f2, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	io.WriteString(f2, line("CLIENT_RANDOM", 4, 0xdd, 48))
	f2.Close()
	now = now.Add(2 * time.Second)
	if k.lookup(cr(4)) != nil {
		t.Error("lines appended to a key log made world-readable were read")
	}
}

// manyLines generates n key log lines, each a session of its own.
type manyLines struct {
	n, i int
	buf  []byte
}

func (m *manyLines) Read(p []byte) (int, error) {
	for len(m.buf) < len(p) && m.i < m.n {
		m.buf = fmt.Appendf(m.buf, "CLIENT_RANDOM %064x %096x\n", m.i, m.i)
		m.i++
	}
	if len(m.buf) == 0 {
		return 0, io.EOF
	}
	n := copy(p, m.buf)
	m.buf = m.buf[n:]
	return n, nil
}

// TestKeyLogHuge: a key log of 10 million lines is read with the memory of
// MaxKeyLogSessions sessions, the newest kept.
func TestKeyLogHuge(t *testing.T) {
	n := 10_000_000
	if testing.Short() || raceEnabled {
		n = 1_500_000 // the same bound crossed, in a time the race detector allows
	}
	k, err := ParseKeyLog(&manyLines{n: n})
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	st := k.Stats()
	if st.Sessions != MaxKeyLogSessions || st.Lines != n || st.Forgotten != n-MaxKeyLogSessions {
		t.Errorf("stats %+v after %d lines", st, n)
	}
	if ms.HeapAlloc > 160<<20 {
		t.Errorf("%d MiB of heap after %d lines", ms.HeapAlloc>>20, n)
	}
	cr, _ := hex.DecodeString(fmt.Sprintf("%064x", n-1))
	if k.lookup(cr) == nil {
		t.Error("the newest session was not kept")
	}
	t.Logf("%d lines: %d sessions held, heap %d MiB", n, st.Sessions, ms.HeapAlloc>>20)
}
