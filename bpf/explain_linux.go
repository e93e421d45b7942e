//go:build linux

package bpf

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// capability is a Linux capability's number and name.
type capability struct {
	bit  uint
	name string
}

var (
	capDACReadSearch = capability{2, "CAP_DAC_READ_SEARCH"}
	capNetAdmin      = capability{12, "CAP_NET_ADMIN"}
	capSysPtrace     = capability{19, "CAP_SYS_PTRACE"}
	capSysAdmin      = capability{21, "CAP_SYS_ADMIN"}
	capPerfmon       = capability{38, "CAP_PERFMON"}
	capBPF           = capability{39, "CAP_BPF"}

	// loadCaps are needed to load and attach the programs, procfsCaps
	// also to seed from /proc, netnsCaps to seed with the iterators the
	// sockets of other network namespaces (setns, and their namespace
	// file or a copy of their descriptor).
	loadCaps   = []capability{capBPF, capPerfmon, capNetAdmin}
	procfsCaps = []capability{capSysPtrace, capDACReadSearch}
	netnsCaps  = []capability{capSysAdmin, capSysPtrace}
)

// privileges is what the process may do: its uid and effective
// capabilities.
type privileges struct {
	uid  int
	caps uint64 // effective set, bit n = capability n
	ok   bool   // caps was read
}

// currentPrivileges reads the process's effective capabilities from
// /proc/self/status.
func currentPrivileges() privileges {
	p := privileges{uid: os.Geteuid()}
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return p
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CapEff:"); ok {
			if caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64); err == nil {
				p.caps, p.ok = caps, true
			}
		}
	}
	return p
}

// missing returns the names of those of want the process lacks.
// CAP_SYS_ADMIN stands for CAP_BPF and CAP_PERFMON, as it does on kernels
// before 5.8. Unknown capabilities are not reported missing for root.
func (p privileges) missing(want []capability) []string {
	if !p.ok {
		if p.uid == 0 {
			return nil
		}
		var names []string
		for _, c := range want {
			names = append(names, c.name)
		}
		return names
	}
	var names []string
	for _, c := range want {
		has := p.caps&(1<<c.bit) != 0
		if (c == capBPF || c == capPerfmon) && p.caps&(1<<capSysAdmin.bit) != 0 {
			has = true
		}
		if !has {
			names = append(names, c.name)
		}
	}
	return names
}

// hint says what to do about the capabilities in missing: run as root, or,
// for a process that is root already (a container's capability set), grant
// them.
func (p privileges) hint(missing []string) string {
	list := strings.Join(missing, ", ")
	if p.uid != 0 {
		return "this process lacks " + list + ": run as root or grant them"
	}
	return "this process runs as root but lacks " + list + " (a container's capability set?): grant them"
}

// explainedError is an error whose message says what was being done and
// what to do about it, and which unwraps to the cause.
type explainedError struct {
	msg string
	err error
}

func (e *explainedError) Error() string { return e.msg }
func (e *explainedError) Unwrap() error { return e.err }

// explain wraps err with what was being done and, where the cause is a
// known one, what to do about it.
func explain(what string, err error) error {
	return explainFor(what, err, currentPrivileges())
}

// explainFor is explain for a process with privileges p. A hint about
// privileges is given only for EPERM (or a verifier rejection, since
// helpers are refused without CAP_PERFMON) when p lacks a capability the
// programs need; the verifier's EACCES is the rejection, not a privilege
// problem, and says so.
func explainFor(what string, err error, p privileges) error {
	var ve *ebpf.VerifierError
	switch {
	case errors.As(err, &ve):
		msg := fmt.Sprintf("%s: the kernel's verifier rejected it: %s", what, verifierSummary(ve))
		if missing := p.missing(loadCaps); len(missing) > 0 {
			msg += "; " + p.hint(missing)
		}
		return &explainedError{msg, err}
	case errors.Is(err, ebpf.ErrNotSupported):
		return fmt.Errorf("%s: this kernel lacks a feature it needs: %w", what, err)
	case errors.Is(err, unix.EPERM):
		if missing := p.missing(loadCaps); len(missing) > 0 {
			return fmt.Errorf("%s: %w; %s", what, err, p.hint(missing))
		}
		return fmt.Errorf("%s: %w, although this process has CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN (kernel lockdown, or a seccomp or LSM policy?)", what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// verifierSummary is the verifier's complaint: its last line, after the
// instruction it is about when it names a register or argument, without
// the statistics that end the log.
func verifierSummary(ve *ebpf.VerifierError) string {
	log := ve.Log
	for len(log) > 0 {
		last := strings.TrimSpace(log[len(log)-1])
		if last != "" && !strings.HasPrefix(last, "processed ") && !strings.HasPrefix(last, "verification time") &&
			!strings.HasPrefix(last, "stack depth") {
			break
		}
		log = log[:len(log)-1]
	}
	if len(log) == 0 {
		return fmt.Sprintf("%v (no verifier log)", ve.Cause)
	}
	last := strings.TrimSpace(log[len(log)-1])
	if len(log) >= 2 {
		prev := strings.TrimSpace(log[len(log)-2])
		// "122: (85) call bpf_sk_storage_get#107" then "R2 type=…".
		if n, _, ok := strings.Cut(prev, ":"); ok && n != "" && strings.Trim(n, "0123456789") == "" {
			if _, err := strconv.Atoi(strings.SplitN(last, ":", 2)[0]); err != nil {
				return "at instruction " + prev + ": " + last
			}
		}
	}
	return last
}
