//go:build linux

package bpf

import (
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"
)

// TestExplainVerifier checks the message of a program the verifier really
// rejects, as root: it names the program and the verifier's complaint with
// its instruction, and neither says "permission denied" (the EACCES the
// verifier returns is the rejection) nor suggests running as root.
func TestExplainVerifier(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("loading eBPF programs needs root")
	}
	_, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name: "bad", Type: ebpf.SocketFilter, License: "MIT",
		Instructions: asm.Instructions{asm.Return()}, // R0 is never set
	})
	if err == nil {
		t.Fatal("the verifier accepted a program that returns an unset R0")
	}
	msg := explain("load eBPF program bad (socket)", err).Error()
	t.Log(msg)
	for _, want := range []string{"load eBPF program bad (socket)", "verifier rejected it", "at instruction 0: (95) exit: R0 !read_ok"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q does not say %q", msg, want)
		}
	}
	for _, wrong := range []string{"permission denied", "run as root", "processed "} {
		if strings.Contains(msg, wrong) {
			t.Errorf("message %q says %q", msg, wrong)
		}
	}
	var ve *ebpf.VerifierError
	if !errors.As(explain("load", err), &ve) {
		t.Error("the explained error does not unwrap to the VerifierError")
	}
}

// TestExplainEPERM checks that EPERM gets a hint about privileges only when
// a capability is missing: as root with every capability (this test's
// process) it names the other suspects; with capabilities missing it names
// them, and tells root apart from a user.
func TestExplainEPERM(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the test checks the message of a process with every capability")
	}
	p := currentPrivileges()
	if missing := p.missing(loadCaps); len(missing) > 0 {
		t.Fatalf("running as root without %v", missing)
	}
	msg := explain("attach sock_create to cgroup /sys/fs/cgroup", unix.EPERM).Error()
	t.Log(msg)
	if strings.Contains(msg, "run as root") || !strings.Contains(msg, "although this process has CAP_BPF") {
		t.Errorf("as root with every capability: %q", msg)
	}
	if !errors.Is(explain("x", unix.EPERM), unix.EPERM) {
		t.Error("the explained error does not unwrap to EPERM")
	}

	all := p.caps
	for _, c := range []struct {
		name string
		p    privileges
		want string
	}{
		{"user", privileges{uid: 1000, caps: 0, ok: true}, "lacks CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN: run as root or grant them"},
		{"root in a container", privileges{uid: 0, caps: all &^ (1 << capBPF.bit) &^ (1 << capSysAdmin.bit), ok: true},
			"runs as root but lacks CAP_BPF (a container's capability set?)"},
		{"CAP_SYS_ADMIN stands for CAP_BPF", privileges{uid: 0, caps: all &^ (1 << capBPF.bit), ok: true}, "although this process has"},
		{"EACCES is no privilege problem", privileges{uid: 1000, caps: 0, ok: true}, ""},
	} {
		err := error(unix.EPERM)
		if c.want == "" {
			err = unix.EACCES
		}
		msg := explainFor("attach", err, c.p).Error()
		if c.want == "" {
			if strings.Contains(msg, "root") || strings.Contains(msg, "CAP_") {
				t.Errorf("%s: %q gives a privilege hint", c.name, msg)
			}
			continue
		}
		if !strings.Contains(msg, c.want) {
			t.Errorf("%s: %q does not say %q", c.name, msg, c.want)
		}
	}
}

// TestOpenUnprivileged opens the tracker as user nobody, in a child
// process, and checks that the error says which capabilities are missing
// and to run as root.
func TestOpenUnprivileged(t *testing.T) {
	if os.Getenv("WIRESCOPE_BPF_OPEN_CHILD") == "1" {
		tr, err := Open(slog.New(slog.NewTextHandler(os.Stdout, nil)))
		if err == nil {
			tr.Close()
			os.Stdout.WriteString("opened\n")
			return
		}
		os.Stdout.WriteString(err.Error() + "\n")
		return
	}
	privileged(t)
	// A copy of the test binary that user nobody may run: go test's is in
	// a directory of mode 0700.
	dir, err := os.MkdirTemp("", "wirescope-bpftest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	bin := filepath.Join(dir, "bpf.test")
	b, err := os.ReadFile(os.Args[0])
	if err == nil {
		err = os.WriteFile(bin, b, 0o755)
	}
	if err == nil {
		err = os.Chmod(dir, 0o755)
	}
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^TestOpenUnprivileged$", "-test.count=1")
	cmd.Env = append(os.Environ(), "WIRESCOPE_BPF_OPEN_CHILD=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	msg := string(out)
	t.Log(msg)
	if strings.Contains(msg, "opened") {
		t.Fatal("user nobody opened the tracker")
	}
	if !strings.Contains(msg, "run as root or grant them") || !strings.Contains(msg, "CAP_BPF") {
		t.Errorf("the error of user nobody does not say to run as root and which capabilities are missing:\n%s", msg)
	}
}
