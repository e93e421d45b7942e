package workspace

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime/debug"

	"github.com/gopacket/gopacket/layers"

	"github.com/wirescope/wirescope/capture/flowindex"
	"github.com/wirescope/wirescope/tools"
)

// stateFile, in the data directory, says what the index there holds, so
// that a workspace reopened on the same captures answers from the calls
// dissected before instead of dissecting again.
const stateFile = "state.json"

// stateVersion changes when what dissection produces changes in a way that
// makes calls indexed before wrong.
const stateVersion = 2 // 2: calls carry their pods' versions

// state is stateFile's content.
type state struct {
	// Captures fingerprints the capture files and the build that dissected
	// them: the index is reused only for the same.
	Captures string            `json:"captures"`
	Covered  []tools.Window    `json:"covered"`
	Calls    map[string]uint64 `json:"calls"`
	Missing  uint64            `json:"missing_bytes"`
	Labels   []label           `json:"labels"`
}

// label is a flow's dissected protocol.
type label struct {
	A     netip.AddrPort `json:"a"`
	B     netip.AddrPort `json:"b"`
	Proto uint8          `json:"ip_proto"`
	Name  string         `json:"proto"`
	// Encrypted: the flow's payload is encrypted (TLS, or turned to TLS
	// after its protocol's STARTTLS); Decryption whether it was read.
	Encrypted  bool   `json:"encrypted,omitempty"`
	Decryption string `json:"decryption,omitempty"`
	// ICMP is the ICMP error the flow drew; Refused that it said the
	// destination was unreachable.
	ICMP    string `json:"icmp,omitempty"`
	Refused bool   `json:"icmp_refused,omitempty"`
}

// fingerprint identifies the captures (each file's path, size in packets
// and bytes, and time range), the identities (the cluster file) and the
// dissecting build.
func (w *Workspace) fingerprint() string {
	h := sha256.New()
	fmt.Fprintf(h, "state %d\n", stateVersion)
	if bi, ok := debug.ReadBuildInfo(); ok {
		fmt.Fprintf(h, "build %s", bi.Main.Version)
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" || s.Key == "vcs.modified" {
				fmt.Fprintf(h, " %s=%s", s.Key, s.Value)
			}
		}
		fmt.Fprintln(h)
	}
	if w.opts.Identity != nil {
		fmt.Fprintf(h, "identity %s\n", w.opts.Identity.Fingerprint())
	}
	fmt.Fprintf(h, "source %s\n", w.src.Fingerprint())
	for _, p := range w.protocols {
		// A protocol configured to read more (TLS with a key log) makes
		// another dissection.
		if f, ok := p.(interface{ Fingerprint() string }); ok && f.Fingerprint() != "" {
			fmt.Fprintf(h, "protocol %s %s\n", p.Name(), f.Fingerprint())
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// loadState restores what an earlier run dissected into dir's index, and
// reports whether the index is theirs to keep: false when there is no
// state, or it is of other captures, or it cannot be read.
func (w *Workspace) loadState() bool {
	b, err := os.ReadFile(filepath.Join(w.dir, stateFile))
	if err != nil {
		return false
	}
	var st state
	if json.Unmarshal(b, &st) != nil || st.Captures != w.fp {
		return false
	}
	for _, c := range st.Covered {
		w.covered = w.covered.add(c.From, c.To)
	}
	for p, n := range st.Calls {
		w.calls[p] = n
	}
	w.missing = st.Missing
	for _, l := range st.Labels {
		w.labels[flowindex.NewKey(l.A, l.B, layers.IPProtocol(l.Proto))] = flowLabel{l.Name, l.Encrypted, l.Decryption, l.ICMP, l.Refused}
	}
	return true
}

// saveState records what the index holds. Callers hold mu.
func (w *Workspace) saveState() error {
	if w.temp {
		return nil // removed on Close: nothing to reopen
	}
	st := state{Captures: w.fp, Covered: w.covered, Calls: w.calls, Missing: w.missing}
	for k, l := range w.labels {
		st.Labels = append(st.Labels, label{A: k.A, B: k.B, Proto: uint8(k.Proto), Name: l.name, Encrypted: l.encrypted, Decryption: l.decryption, ICMP: l.icmp, Refused: l.refused})
	}
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	tmp := filepath.Join(w.dir, stateFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(w.dir, stateFile))
}
