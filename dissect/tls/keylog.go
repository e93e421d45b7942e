package tls

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/wirescope/wirescope/dissect/proto"
)

// A key log is secret: whoever holds it reads the sessions it names. It is
// read from a file only its owner (and group) may read, kept in memory,
// and never shown: no call, flow, error or log line carries a secret.

// MaxKeyLogSessions bounds the sessions a key log holds in memory (about
// 250 bytes each): past it the oldest sessions are forgotten (counted in
// Stats), as a growing key log's newest lines are those that match the
// traffic still to come.
const MaxKeyLogSessions = 1 << 18

// maxKeyLogLine is the longest line read: a label, a 64-digit client
// random and a secret of at most 64 bytes fit in well under 512.
const maxKeyLogLine = 512

// secrets are what a key log holds for one session, by client random.
type secrets struct {
	master []byte // TLS 1.2: CLIENT_RANDOM
	// TLS 1.3 traffic secrets: handshake and first application secrets,
	// client then server.
	clientHS, serverHS, clientApp, serverApp []byte
}

// KeyLog is an NSS key log (the format SSLKEYLOGFILE makes curl, browsers,
// OpenSSL, Go and NSS write): a line per secret, "LABEL <client random>
// <secret>" in hex. It is safe for concurrent use. When read from a file it
// reads the lines appended since, when asked for a session it does not
// hold (a hub whose clients keep writing to the file).
type KeyLog struct {
	mu       sync.RWMutex
	sessions map[[32]byte]*secrets
	// order holds the sessions' client randoms in the order they were
	// added, a ring of at most MaxKeyLogSessions from next.
	order [][32]byte
	next  int
	// lines counts lines read; skipped those that were not key log lines;
	// forgotten the sessions dropped for MaxKeyLogSessions.
	lines, skipped, forgotten int

	path    string
	file    os.FileInfo // the file as last read
	off     int64       // bytes of the file read, up to the last whole line
	checked time.Time   // when the file was last looked at for new lines
	now     func() time.Time
}

// ParseKeyLog reads a key log from r. Lines that are not key log lines are
// skipped and counted; an error is returned only when r fails.
func ParseKeyLog(r io.Reader) (*KeyLog, error) {
	k := &KeyLog{sessions: map[[32]byte]*secrets{}, now: time.Now}
	_, err := k.read(r, true)
	return k, err
}

// OpenKeyLog reads the key log file at path. It refuses a file others may
// read (a secret left world-readable has leaked already; wirescope does
// not make use of it), one that is not a regular file, and one that does
// not exist.
func OpenKeyLog(path string) (*KeyLog, error) {
	k := &KeyLog{sessions: map[[32]byte]*secrets{}, path: path, now: time.Now}
	if err := k.refresh(); err != nil {
		return nil, err
	}
	return k, nil
}

// checkMode refuses a key log others may read, or that is not a file.
func checkMode(path string, fi os.FileInfo) error {
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("TLS key log %s: not a regular file", path)
	}
	if fi.Mode().Perm()&0o004 != 0 {
		return fmt.Errorf("TLS key log %s: refused: its mode %v lets every user read these secrets (chmod o-r %s)", path, fi.Mode().Perm(), path)
	}
	return nil
}

// refresh reads what was appended to the file since the last read; the
// whole file again when it shrank (it was replaced).
func (k *KeyLog) refresh() error {
	f, err := os.Open(k.path)
	if err != nil {
		return fmt.Errorf("TLS key log: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("TLS key log: %w", err)
	}
	if err := checkMode(k.path, fi); err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	defer func() { k.file = fi }()
	if fi.Size() < k.off || (k.file != nil && !os.SameFile(k.file, fi)) {
		// Replaced, or cut: read afresh.
		k.sessions, k.order, k.next, k.off = map[[32]byte]*secrets{}, nil, 0, 0
		k.lines, k.skipped, k.forgotten = 0, 0, 0
	}
	if fi.Size() == k.off {
		return nil
	}
	if _, err := f.Seek(k.off, io.SeekStart); err != nil {
		return fmt.Errorf("TLS key log %s: %w", k.path, err)
	}
	// The file as first read is taken whole; later, a last line without
	// its newline is left for the next read, as a writer may be halfway
	// through it.
	n, err := k.read(f, k.off == 0)
	k.off += n
	if err != nil {
		return fmt.Errorf("TLS key log %s: %w", k.path, err)
	}
	return nil
}

// read adds the lines of r, the last one even without its newline when
// whole is set; it returns how many bytes they took. Callers hold mu or
// own k.
func (k *KeyLog) read(r io.Reader, whole bool) (int64, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var used int64
	for {
		line, err := br.ReadSlice('\n')
		switch {
		case err == bufio.ErrBufferFull:
			// A line longer than the buffer is no key log line: skip it.
			used += int64(len(line))
			for err == bufio.ErrBufferFull {
				line, err = br.ReadSlice('\n')
				used += int64(len(line))
			}
			k.lines++
			k.skipped++
			if err == io.EOF {
				return used, nil
			}
			if err != nil {
				return used, err
			}
			continue
		case err == io.EOF:
			if whole && len(line) > 0 {
				k.add(line)
				used += int64(len(line))
			}
			return used, nil
		case err != nil:
			return used, err
		}
		used += int64(len(line))
		k.add(line)
	}
}

// add reads one line.
func (k *KeyLog) add(line []byte) {
	line = bytes.TrimSpace(line)
	if len(line) == 0 || line[0] == '#' {
		return
	}
	k.lines++
	label, rest, ok1 := bytes.Cut(line, []byte{' '})
	crHex, secHex, ok2 := bytes.Cut(rest, []byte{' '})
	var cr [32]byte
	if !ok1 || !ok2 || len(line) > maxKeyLogLine || hex.DecodedLen(len(crHex)) != 32 || len(secHex) > 128 || len(secHex)%2 != 0 {
		k.skipped++
		return
	}
	if _, err := hex.Decode(cr[:], crHex); err != nil {
		k.skipped++
		return
	}
	if n := len(secHex) / 2; n != 32 && n != 48 {
		// A master secret is 48 bytes, a TLS 1.3 secret a hash's 32 or 48.
		k.skipped++
		return
	}
	sec := make([]byte, len(secHex)/2)
	if _, err := hex.Decode(sec, secHex); err != nil {
		k.skipped++
		return
	}
	var field func(*secrets) *[]byte
	switch string(label) {
	case "CLIENT_RANDOM":
		field = func(s *secrets) *[]byte { return &s.master }
	case "CLIENT_HANDSHAKE_TRAFFIC_SECRET":
		field = func(s *secrets) *[]byte { return &s.clientHS }
	case "SERVER_HANDSHAKE_TRAFFIC_SECRET":
		field = func(s *secrets) *[]byte { return &s.serverHS }
	case "CLIENT_TRAFFIC_SECRET_0":
		field = func(s *secrets) *[]byte { return &s.clientApp }
	case "SERVER_TRAFFIC_SECRET_0":
		field = func(s *secrets) *[]byte { return &s.serverApp }
	default:
		// EXPORTER_SECRET, EARLY_EXPORTER_SECRET, CLIENT_EARLY_TRAFFIC_SECRET
		// (0-RTT data is not decrypted) and labels of other protocols.
		k.skipped++
		return
	}
	s := k.sessions[cr]
	if s == nil {
		if len(k.order) < MaxKeyLogSessions {
			k.order = append(k.order, cr)
		} else {
			delete(k.sessions, k.order[k.next])
			k.forgotten++
			k.order[k.next] = cr
			k.next = (k.next + 1) % MaxKeyLogSessions
		}
		s = &secrets{}
		k.sessions[cr] = s
	}
	*field(s) = sec
}

// rereadEvery is how often, at most, a key log file is looked at for new
// lines when a session is not found in it.
const rereadEvery = time.Second

// lookup returns the secrets for the session of client random cr, reading
// lines appended to the file since the last read when it has none.
func (k *KeyLog) lookup(cr []byte) *secrets {
	if k == nil || len(cr) != 32 {
		return nil
	}
	key := [32]byte(cr)
	k.mu.RLock()
	s := k.sessions[key]
	due := k.path != "" && s == nil && k.now().Sub(k.checked) >= rereadEvery
	k.mu.RUnlock()
	if !due {
		return s
	}
	k.mu.Lock()
	k.checked = k.now()
	k.mu.Unlock()
	if k.refresh() != nil {
		return nil
	}
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.sessions[key]
}

// KeyLogStats say what a key log holds.
type KeyLogStats struct {
	// Sessions held; Lines read; Skipped lines that were not key log
	// lines or named a secret not used (0-RTT, exporters); Forgotten
	// sessions dropped, oldest first, past MaxKeyLogSessions.
	Sessions, Lines, Skipped, Forgotten int
}

// Stats returns what the key log holds.
func (k *KeyLog) Stats() KeyLogStats {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return KeyLogStats{len(k.sessions), k.lines, k.skipped, k.forgotten}
}

// errNoKeys is why a session is not decrypted when the key log lacks it.
var errNoKeys = errors.New("no key for this session")

// Fingerprint names what the protocol is configured with, for a workspace
// to tell its dissections apart: the key log's file, if any (not its
// secrets).
func (p Protocol) Fingerprint() string {
	if p.Keys == nil {
		return ""
	}
	return "keylog " + p.Keys.path
}

// WithKeys returns protocols with TLS's replaced by one that decrypts the
// sessions k holds (added when protocols lack it).
func WithKeys(protocols []proto.Protocol, k *KeyLog) []proto.Protocol {
	out := make([]proto.Protocol, 0, len(protocols)+1)
	found := false
	for _, p := range protocols {
		if _, ok := p.(Protocol); ok {
			p, found = Protocol{Keys: k}, true
		}
		out = append(out, p)
	}
	if !found {
		out = append(out, Protocol{Keys: k})
	}
	return out
}
