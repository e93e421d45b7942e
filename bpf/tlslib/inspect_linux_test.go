//go:build linux

package tlslib

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"debug/elf"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/arch/x86/x86asm"
)

// started is a process a test runs, and what it printed on its first line
// (when asked to wait for one).
type started struct {
	cmd   *exec.Cmd
	first string
}

// start runs name with args until the test ends and waits until its maps
// hold a file whose name contains mapped (a library it loads late, or
// "" for none), or it printed a first line (firstLine).
func start(t *testing.T, firstLine bool, mapped string, name string, args ...string) *started {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stderr = os.Stderr
	var out *bufio.Reader
	if firstLine {
		p, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		out = bufio.NewReader(p)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	s := &started{cmd: cmd}
	if firstLine {
		line, err := out.ReadString('\n')
		if err != nil {
			t.Fatalf("%s printed no line: %v", name, err)
		}
		s.first = strings.TrimSpace(line)
	}
	deadline := time.Now().Add(15 * time.Second)
	for mapped != "" {
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", cmd.Process.Pid))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if bytes.Contains(raw, []byte(mapped)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not map %s in 15 s", name, mapped)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return s
}

func need(t *testing.T, cmds ...string) {
	t.Helper()
	for _, c := range cmds {
		if _, err := exec.LookPath(c); err != nil {
			t.Fatalf("%s not found: run scripts/install-deps.sh (%v)", c, err)
		}
	}
}

// writeCert writes a self-signed ECDSA certificate and key for 127.0.0.1.
func writeCert(t *testing.T, dir string) (cert, key string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	cert, key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// freePort returns a TCP port free on 127.0.0.1 a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// silentServer accepts TCP connections and never answers: a TLS client
// connected to it waits in its handshake, alive, its libraries mapped.
func silentServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		var held []net.Conn
		for {
			c, err := l.Accept()
			if err != nil {
				for _, c := range held {
					c.Close()
				}
				return
			}
			held = append(held, c)
		}
	}()
	return l.Addr().String()
}

// openSSLVersion is the version of the library the openssl command runs
// with ("Library: OpenSSL 3.0.19 27 Jan 2026"): "OpenSSL 3.0.19".
func openSSLVersion(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("openssl", "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`Library: (OpenSSL \S+)`).FindSubmatch(out)
	if m == nil {
		m = regexp.MustCompile(`^(OpenSSL \S+)`).FindSubmatch(out)
	}
	if m == nil {
		t.Fatalf("openssl version printed %q", out)
	}
	return string(m[1])
}

// readelfOffset computes a function symbol's file offset the way readelf
// shows it: its value in `readelf -s` (.dynsym and .symtab), through the
// LOAD line of `readelf -l` that holds it.
func readelfOffset(t *testing.T, file, sym string) uint64 {
	t.Helper()
	out, err := exec.Command("readelf", "-W", "-s", file).Output()
	if err != nil {
		t.Fatalf("readelf -s %s: %v", file, err)
	}
	var value uint64
	found := false
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		if len(f) < 8 || f[3] != "FUNC" || f[6] == "UND" {
			continue
		}
		name, _, _ := strings.Cut(f[7], "@")
		if name == sym {
			value, err = strconv.ParseUint(f[1], 16, 64)
			if err != nil {
				t.Fatal(err)
			}
			found = true
			break
		}
	}
	if !found {
		t.Fatalf("readelf: no %s in %s", sym, file)
	}
	out, err = exec.Command("readelf", "-W", "-l", file).Output()
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		if len(f) < 6 || f[0] != "LOAD" {
			continue
		}
		var n [4]uint64 // offset, vaddr, paddr, filesz
		for i := range n {
			if n[i], err = strconv.ParseUint(strings.TrimPrefix(f[1+i], "0x"), 16, 64); err != nil {
				t.Fatal(err)
			}
		}
		if n[1] <= value && value < n[1]+n[3] {
			return value - n[1] + n[0]
		}
	}
	t.Fatalf("readelf: %s at %#x in no LOAD segment of %s", sym, value, file)
	return 0
}

// kernelOffset attaches a uprobe to sym of file by name, as cilium/ebpf
// resolves it itself, and returns the offset the kernel reports for it.
// With address set, it attaches at that file offset instead
// (UprobeOptions.Address) and returns what the kernel reports.
func kernelOffset(t *testing.T, file, sym string, address uint64) uint64 {
	t.Helper()
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:    ebpf.Kprobe,
		License: "GPL",
		Instructions: asm.Instructions{
			asm.Mov.Imm(asm.R0, 0),
			asm.Return(),
		},
	})
	if err != nil {
		t.Fatalf("load a probe program: %v", err)
	}
	defer prog.Close()
	ex, err := link.OpenExecutable(file)
	if err != nil {
		t.Fatal(err)
	}
	var opts *link.UprobeOptions
	if address != 0 {
		sym, opts = "", &link.UprobeOptions{Address: address}
	}
	l, err := ex.Uprobe(sym, prog, opts)
	if err != nil {
		t.Fatalf("uprobe %s %s: %v", file, sym, err)
	}
	defer l.Close()
	info, err := l.Info()
	if err != nil {
		t.Fatalf("link info: %v", err)
	}
	pe := info.PerfEvent()
	if pe == nil || pe.Uprobe() == nil {
		t.Fatalf("link info of a uprobe has no uprobe: %+v", info)
	}
	return uint64(pe.Uprobe().Offset)
}

// one returns the only target of kind k.
func one(t *testing.T, pid int, k Kind) Target {
	t.Helper()
	ts, err := Inspect(pid)
	if err != nil {
		t.Fatalf("Inspect(%d): %v", pid, err)
	}
	var got []Target
	for _, x := range ts {
		if x.Kind == k {
			got = append(got, x)
		}
	}
	if len(got) != 1 {
		t.Fatalf("Inspect(%d): %d targets of kind %v in %+v", pid, len(got), k, ts)
	}
	return got[0]
}

// checkIdentity checks Path is under the process's root (or its exe) and
// Dev/Ino are its stat's.
func checkIdentity(t *testing.T, x Target, wantBase string) {
	t.Helper()
	root := fmt.Sprintf("/proc/%d/root/", x.PID)
	if !strings.HasPrefix(x.Path, root) {
		t.Errorf("Path %q is not under %s", x.Path, root)
	}
	if wantBase != "" && filepath.Base(x.Path) != wantBase {
		t.Errorf("Path %q: want a file named %s", x.Path, wantBase)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(x.Path, &st); err != nil {
		t.Fatalf("stat %s: %v", x.Path, err)
	}
	if x.Dev != st.Dev || x.Ino != st.Ino {
		t.Errorf("Dev/Ino %d/%d, stat says %d/%d", x.Dev, x.Ino, st.Dev, st.Ino)
	}
}

// checkOpenSSLSymbols checks the offsets of the OpenSSL API against
// readelf's and against the kernel's for a uprobe attached by name.
func checkOpenSSLSymbols(t *testing.T, x Target) {
	t.Helper()
	for _, sym := range []string{"SSL_read", "SSL_write", "SSL_read_ex", "SSL_write_ex"} {
		off, ok := x.Symbols[sym]
		if !ok {
			t.Errorf("%s: no %s in %v", x.Library, sym, x.Symbols)
			continue
		}
		if want := readelfOffset(t, x.Path, sym); off != want {
			t.Errorf("%s: %#x, readelf says %#x", sym, off, want)
		}
		if os.Geteuid() == 0 {
			if k := kernelOffset(t, x.Path, sym, 0); off != k {
				t.Errorf("%s: %#x, a uprobe cilium/ebpf attaches by name is at %#x", sym, off, k)
			}
			if k := kernelOffset(t, x.Path, "", off); off != k {
				t.Errorf("%s: a uprobe at Address %#x is at %#x", sym, off, k)
			}
		}
	}
}

// TestOpenSSLProcesses inspects real processes that map the system's
// libssl: openssl s_server, python3 with ssl imported, curl in a
// handshake, nginx's master.
func TestOpenSSLProcesses(t *testing.T) {
	need(t, "openssl", "python3", "curl", "readelf")
	want := openSSLVersion(t)
	dir := t.TempDir()
	cert, key := writeCert(t, dir)
	type proc struct {
		name string
		run  func(t *testing.T) *started
	}
	procs := []proc{
		{"openssl s_server", func(t *testing.T) *started {
			return start(t, false, "libssl", "openssl", "s_server", "-quiet", "-accept", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "-cert", cert, "-key", key)
		}},
		{"python3 ssl", func(t *testing.T) *started {
			p := start(t, true, "libssl", "python3", "-c", "import ssl, time; print(ssl.OPENSSL_VERSION, flush=True); time.sleep(600)")
			if !strings.HasPrefix(p.first, want+" ") {
				t.Errorf("python's ssl says %q, openssl version %q: not the same library", p.first, want)
			}
			return p
		}},
		{"curl", func(t *testing.T) *started {
			return start(t, false, "libssl", "curl", "-sk", "--max-time", "600", "https://"+silentServer(t)+"/")
		}},
		{"nginx", func(t *testing.T) *started {
			if _, err := exec.LookPath("nginx"); err != nil {
				if _, err := os.Stat("/usr/sbin/nginx"); err != nil {
					t.Fatal("nginx not found: run scripts/install-deps.sh")
				}
			}
			conf := filepath.Join(dir, "nginx.conf")
			os.WriteFile(conf, fmt.Appendf(nil, `daemon off; worker_processes 1; pid %s/nginx.pid; error_log %s/error.log;
events {}
http { access_log off; client_body_temp_path %s; proxy_temp_path %s; fastcgi_temp_path %s; uwsgi_temp_path %s; scgi_temp_path %s;
  server { listen 127.0.0.1:%d ssl; ssl_certificate %s; ssl_certificate_key %s; return 200; } }
`, dir, dir, dir, dir, dir, dir, dir, freePort(t), cert, key), 0o600)
			bin := "/usr/sbin/nginx"
			if p, err := exec.LookPath("nginx"); err == nil {
				bin = p
			}
			return start(t, false, "libssl", bin, "-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", conf)
		}},
	}
	for _, p := range procs {
		t.Run(p.name, func(t *testing.T) {
			s := p.run(t)
			x := one(t, s.cmd.Process.Pid, OpenSSL)
			if x.Library != want {
				t.Errorf("Library %q, openssl version says %q", x.Library, want)
			}
			maj, min := versionNumbers(t, strings.TrimPrefix(want, "OpenSSL "))
			if x.Major != maj || x.Minor != min {
				t.Errorf("version %d.%d, want %d.%d", x.Major, x.Minor, maj, min)
			}
			if x.Reason != "" {
				t.Errorf("Reason %q for a probeable libssl", x.Reason)
			}
			if !strings.HasPrefix(filepath.Base(x.Path), "libssl.so") {
				t.Errorf("Path %q is not a libssl", x.Path)
			}
			checkIdentity(t, x, "")
			if x.MapIno != x.Ino {
				t.Errorf("maps shows inode %d, stat %d (no overlayfs here)", x.MapIno, x.Ino)
			}
			checkOpenSSLSymbols(t, x)
			if x.Returns != nil || x.GoFD != nil {
				t.Errorf("Go fields set for OpenSSL: %v %v", x.Returns, x.GoFD)
			}
		})
	}
}

func versionNumbers(t *testing.T, v string) (uint8, uint8) {
	t.Helper()
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		t.Fatalf("version %q", v)
	}
	a, err1 := strconv.Atoi(parts[0])
	b, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		t.Fatalf("version %q", v)
	}
	return uint8(a), uint8(b)
}

// TestNode inspects node, which links OpenSSL into its executable and
// exports its functions (when it links the system's libssl instead, that
// is what must be found).
func TestNode(t *testing.T) {
	need(t, "node", "readelf")
	s := start(t, true, "", "node", "-e", "console.log(process.versions.openssl); setTimeout(() => {}, 600000)")
	ts, err := Inspect(s.cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if slices.ContainsFunc(ts, func(x Target) bool { return x.Kind == OpenSSL }) {
		t.Logf("node maps a libssl: checked as OpenSSL by TestOpenSSLProcesses's rules")
		x := one(t, s.cmd.Process.Pid, OpenSSL)
		checkOpenSSLSymbols(t, x)
		return
	}
	x := one(t, s.cmd.Process.Pid, NodeOpenSSL)
	if want := "OpenSSL " + s.first + " (node)"; x.Library != want {
		t.Errorf("Library %q, node says %q", x.Library, want)
	}
	checkIdentity(t, x, "node")
	checkOpenSSLSymbols(t, x)
}

// goBinaries builds a Go program using crypto/tls three ways: normal,
// stripped (-s -w) and static (CGO_ENABLED=0), the last two also both.
func goBinaries(t *testing.T) (dir string, names []string) {
	t.Helper()
	dir = t.TempDir()
	src := `package main

import (
	"crypto/tls"
	"fmt"
	"os"
	"time"
)

func main() {
	if len(os.Args) > 1 {
		c, err := tls.Dial("tcp", os.Args[1], &tls.Config{InsecureSkipVerify: true})
		if err == nil {
			c.Write([]byte("x"))
			c.Read(make([]byte, 1))
		}
	}
	fmt.Println("ready")
	time.Sleep(10 * time.Minute)
}
`
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module tlsprog\n\ngo 1.22\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	builds := []struct {
		name string
		env  []string
		args []string
	}{
		{"normal", nil, nil},
		{"stripped", nil, []string{"-ldflags=-s -w"}},
		{"static", []string{"CGO_ENABLED=0"}, nil},
		{"static-stripped", []string{"CGO_ENABLED=0"}, []string{"-ldflags=-s -w"}},
	}
	for _, b := range builds {
		cmd := exec.Command("go", append(append([]string{"build", "-o", b.name}, b.args...), ".")...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), b.env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", b.name, err, out)
		}
		names = append(names, b.name)
	}
	return dir, names
}

// objdumpReturns lists the addresses of fn's RET instructions as `go tool
// objdump` prints them.
func objdumpReturns(t *testing.T, bin, fn string) []uint64 {
	t.Helper()
	out, err := exec.Command("go", "tool", "objdump", "-s", "^"+regexp.QuoteMeta(fn)+"$", bin).Output()
	if err != nil {
		t.Fatalf("go tool objdump %s: %v", fn, err)
	}
	var rets []uint64
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		if len(f) >= 4 && f[len(f)-1] == "RET" {
			a, err := strconv.ParseUint(strings.TrimPrefix(f[1], "0x"), 16, 64)
			if err != nil {
				t.Fatalf("objdump line %q: %v", line, err)
			}
			rets = append(rets, a)
		}
	}
	if len(rets) == 0 {
		t.Fatalf("objdump shows no RET in %s:\n%s", fn, out)
	}
	return rets
}

// TestGo inspects Go programs built by the test: normal, stripped and
// static. The stripped ones have no .symtab but keep .gopclntab, which
// gives the same offsets.
func TestGo(t *testing.T) {
	need(t, "go")
	dir, names := goBinaries(t)
	out, err := exec.Command("go", "env", "GOVERSION").Output()
	if err != nil {
		t.Fatal(err)
	}
	goVer := strings.TrimPrefix(strings.TrimSpace(string(out)), "go")
	byName := make(map[string]Target)
	for _, name := range names {
		bin := filepath.Join(dir, name)
		s := start(t, true, "", bin)
		x := one(t, s.cmd.Process.Pid, GoTLS)
		byName[name] = x
		t.Run(name, func(t *testing.T) {
			if want := "Go " + goVer + " crypto/tls"; x.Library != want {
				t.Errorf("Library %q, want %q", x.Library, want)
			}
			maj, min := versionNumbers(t, goVer)
			if x.Major != maj || x.Minor != min {
				t.Errorf("version %d.%d, want %s", x.Major, x.Minor, goVer)
			}
			if x.Reason != "" {
				t.Errorf("Reason %q", x.Reason)
			}
			checkIdentity(t, x, name)
			if p := fmt.Sprintf("/proc/%d/root%s", x.PID, bin); x.Path != p {
				t.Errorf("Path %q, want %q", x.Path, p)
			}
			if len(x.Symbols) != 2 || len(x.Returns) != 2 {
				t.Fatalf("Symbols %v Returns %v: want Read and Write", x.Symbols, x.Returns)
			}
			f, err := elf.Open(bin)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			code, err := os.ReadFile(bin)
			if err != nil {
				t.Fatal(err)
			}
			stripped := strings.Contains(name, "stripped")
			if _, err := f.Symbols(); stripped != errors.Is(err, elf.ErrNoSymbols) {
				t.Fatalf("%s: symbols: %v", name, err)
			}
			for _, fn := range []string{GoRead, GoWrite} {
				off := x.Symbols[fn]
				rets := x.Returns[fn]
				if !stripped {
					if want := readelfOffset(t, bin, fn); off != want {
						t.Errorf("%s: %#x, readelf says %#x", fn, off, want)
					}
					if os.Geteuid() == 0 {
						if k := kernelOffset(t, x.Path, fn, 0); k != off {
							t.Errorf("%s: %#x, a uprobe cilium/ebpf attaches by name is at %#x", fn, off, k)
						}
					}
					var want []uint64
					for _, a := range objdumpReturns(t, bin, fn) {
						o, ok := fileOffset(f, a)
						if !ok {
							t.Fatalf("objdump's RET %#x in no segment", a)
						}
						want = append(want, o)
					}
					if !slices.Equal(rets, want) {
						t.Errorf("%s: returns %#x, go tool objdump shows %#x", fn, rets, want)
					}
				} else {
					full := byName[strings.TrimSuffix(strings.TrimSuffix(name, "stripped"), "-")]
					if name == "stripped" {
						full = byName["normal"]
					}
					// -s -w drops .symtab and DWARF, after the code: the
					// code's layout, hence the offsets, stay.
					if full.Symbols[fn] != off || !slices.Equal(full.Returns[fn], rets) {
						t.Errorf("%s: %#x %#x from .gopclntab; the unstripped build: %#x %#x", fn, off, rets, full.Symbols[fn], full.Returns[fn])
					}
				}
				for _, r := range rets {
					if r <= off || r >= uint64(len(code)) {
						t.Fatalf("%s: return %#x outside the file or before the entry %#x", fn, r, off)
					}
					if runtime.GOARCH == "amd64" {
						inst, err := x86asm.Decode(code[r:], 64)
						if err != nil || inst.Op != x86asm.RET {
							t.Errorf("%s: %#x decodes to %v (%v), not RET", fn, r, inst, err)
						}
					}
				}
				if os.Geteuid() == 0 {
					for _, r := range rets {
						if k := kernelOffset(t, x.Path, "", r); k != r {
							t.Errorf("%s: uprobe at return %#x is at %#x", fn, r, k)
						}
					}
				}
			}
			g := x.GoFD
			if g == nil {
				t.Fatal("no GoFD")
			}
			wantSource := "DWARF"
			if stripped {
				wantSource = fmt.Sprintf("layout of Go 1.%d", min)
			}
			if g.Source != wantSource {
				t.Errorf("GoFD.Source %q, want %q", g.Source, wantSource)
			}
			if !g.RegABI {
				t.Error("RegABI false for Go 1.26")
			}
		})
	}
	// The layout the stripped builds get is the one DWARF gives.
	d, s := byName["normal"].GoFD, byName["stripped"].GoFD
	if d != nil && s != nil {
		dd, ss := *d, *s
		dd.Source, ss.Source = "", ""
		if dd != ss {
			t.Errorf("layout %+v, DWARF says %+v", ss, dd)
		}
		if dd.IfaceData != 8 || dd.PFDSysfd == 0 {
			t.Errorf("DWARF offsets %+v: want the interface's data word at 8, Sysfd after fdMutex", dd)
		}
	}
}

// TestStaticC builds a C program statically linked against libssl.a: with
// its symbols it is OpenSSL (the version from its own .rodata, offsets from
// .symtab); stripped, nothing says it does TLS.
func TestStaticC(t *testing.T) {
	need(t, "gcc", "strip", "readelf", "openssl")
	dir := t.TempDir()
	src := `#include <openssl/ssl.h>
#include <stdio.h>
#include <unistd.h>
int main(void) {
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL *ssl = SSL_new(ctx);
	char buf[16];
	size_t n;
	printf("ready\n");
	fflush(stdout);
	sleep(600);
	if (SSL_read(ssl, buf, sizeof buf) > 0 && SSL_read_ex(ssl, buf, 1, &n))
		SSL_write_ex(ssl, buf, 1, &n), SSL_write(ssl, buf, 1);
	return 0;
}
`
	if err := os.WriteFile(filepath.Join(dir, "tls.c"), []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "static-tls")
	cmd := exec.Command("gcc", "-static", "-O1", "-o", bin, "tls.c", "-lssl", "-lcrypto", "-lpthread")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gcc -static against libssl.a (libssl-dev; scripts/install-deps.sh): %v\n%s", err, out)
	}
	stripped := bin + "-stripped"
	if out, err := exec.Command("cp", bin, stripped).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	if out, err := exec.Command("strip", stripped).CombinedOutput(); err != nil {
		t.Fatalf("strip: %v %s", err, out)
	}

	s := start(t, true, "", bin)
	x := one(t, s.cmd.Process.Pid, OpenSSL)
	if want := openSSLVersion(t); x.Library != want {
		t.Errorf("Library %q, want %q (libssl.a is the same version as libssl.so)", x.Library, want)
	}
	checkIdentity(t, x, "static-tls")
	checkOpenSSLSymbols(t, x)

	s = start(t, true, "", stripped)
	ts, err := Inspect(s.cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 1 || ts[0].Kind != Unknown || ts[0].Reason != ReasonStaticStripped || ts[0].Path != "" || ts[0].Symbols != nil {
		t.Errorf("static stripped binary: %+v, want one Unknown target with reason %q", ts, ReasonStaticStripped)
	}
	// A static binary without TLS that keeps its symbols is nothing.
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(filepath.Join(dir, "plain.c"), []byte("#include <stdio.h>\n#include <unistd.h>\nint main(void){printf(\"ready\\n\");fflush(stdout);sleep(600);return 0;}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("gcc", "-static", "-o", plain, filepath.Join(dir, "plain.c")).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v %s", err, out)
	}
	s = start(t, true, "", plain)
	if ts, err := Inspect(s.cmd.Process.Pid); err != nil || len(ts) != 0 {
		t.Errorf("static binary with symbols and no TLS: %+v %v, want nothing", ts, err)
	}
}

// TestGnuTLS inspects a process that loads the system's libgnutls (python
// through ctypes, which also asks the library its version).
func TestGnuTLS(t *testing.T) {
	need(t, "python3")
	s := start(t, true, "libgnutls", "python3", "-c", `import ctypes, time
l = ctypes.CDLL("libgnutls.so.30")
l.gnutls_check_version.restype = ctypes.c_char_p
print(l.gnutls_check_version(None).decode(), flush=True)
time.sleep(600)`)
	x := one(t, s.cmd.Process.Pid, GnuTLS)
	if want := "GnuTLS " + s.first; x.Library != want {
		t.Errorf("Library %q, gnutls_check_version says %q", x.Library, want)
	}
	if x.Reason != "" || !x.Kind.Probeable() {
		t.Errorf("Reason %q: GnuTLS is probed", x.Reason)
	}
	checkIdentity(t, x, "")
	for _, fn := range []string{"gnutls_record_recv", "gnutls_record_send", "gnutls_handshake"} {
		if want := readelfOffset(t, x.Path, fn); x.Symbols[fn] != want {
			t.Errorf("%s: %#x, readelf says %#x", fn, x.Symbols[fn], want)
		}
	}
}

// TestJava inspects a real JVM when there is one.
func TestJava(t *testing.T) {
	if _, err := exec.LookPath("java"); err != nil {
		t.Skip("no java here: the fake /proc test covers the classification")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "Sleep.java")
	os.WriteFile(src, []byte(`public class Sleep { public static void main(String[] a) throws Exception { System.out.println("ready"); Thread.sleep(600000); } }`), 0o600)
	s := start(t, true, "libjvm.so", "java", "-Xmx32m", "-XX:+UseSerialGC", src)
	x := one(t, s.cmd.Process.Pid, Java)
	if x.Reason != ReasonJava || x.Library != "Java" {
		t.Errorf("%+v", x)
	}
	checkIdentity(t, x, "libjvm.so")
}

// fakeProc makes a /proc tree for pid under a temporary directory: maps,
// exe (a symlink to exe) and root (a symlink to /).
func fakeProc(t *testing.T, pid int, maps, exe string) *inspector {
	t.Helper()
	proc := t.TempDir()
	d := filepath.Join(proc, strconv.Itoa(pid))
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d, "maps"), []byte(maps), 0o644); err != nil {
		t.Fatal(err)
	}
	if exe != "" {
		if err := os.Symlink(exe, filepath.Join(d, "exe")); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("/", filepath.Join(d, "root")); err != nil {
		t.Fatal(err)
	}
	return &inspector{proc: proc}
}

// TestFakeMaps classifies the libraries a maps file names: a JVM, NSS, a
// libssl (the system's, reached through the fake root), and a non-ELF
// executable.
func TestFakeMaps(t *testing.T) {
	ssl, err := filepath.EvalSymlinks("/usr/lib/x86_64-linux-gnu/libssl.so.3")
	if runtime.GOARCH != "amd64" || err != nil {
		t.Skip("the fake maps name the amd64 Debian libssl.so.3")
	}
	crypto, _ := filepath.EvalSymlinks("/usr/lib/x86_64-linux-gnu/libcrypto.so.3")
	notELF := filepath.Join(t.TempDir(), "script")
	os.WriteFile(notELF, []byte("#!/bin/sh\nsleep 1\n"), 0o755)
	maps := `55d0c0a00000-55d0c0a01000 r--p 00000000 fd:00 1234 /usr/lib/jvm/java-21-openjdk-amd64/bin/java
7f0000000000-7f0000100000 r--p 00000000 fd:00 5678 /usr/lib/jvm/java-21-openjdk-amd64/lib/server/libjvm.so
7f0000100000-7f0000200000 r-xp 00100000 fd:00 5678 /usr/lib/jvm/java-21-openjdk-amd64/lib/server/libjvm.so
7f0000300000-7f0000400000 r--p 00000000 fd:00 9999 /usr/lib/x86_64-linux-gnu/libssl3.so
7f0000500000-7f0000600000 r--p 00000000 fd:01 4242 ` + ssl + `
7f0000600000-7f0000700000 r--p 00000000 fd:01 4343 ` + crypto + `
7f0000800000-7f0000900000 rw-p 00000000 00:00 0 [heap]
7f0000900000-7f0000a00000 r--p 00000000 fd:01 77 /tmp/some file with spaces (deleted)
`
	in := fakeProc(t, 4242, maps, notELF)
	ts, err := in.inspect(4242)
	if err != nil {
		t.Fatal(err)
	}
	kinds := make(map[Kind]Target)
	for _, x := range ts {
		kinds[x.Kind] = x
	}
	if len(ts) != 3 || len(kinds) != 3 {
		t.Fatalf("targets %+v: want Java, NSS, OpenSSL (the shell script exe is nothing)", ts)
	}
	if j := kinds[Java]; j.Reason != ReasonJava || !strings.HasSuffix(j.Path, "/root/usr/lib/jvm/java-21-openjdk-amd64/lib/server/libjvm.so") || j.MapIno != 5678 || j.MapDev != 0xfd00 {
		t.Errorf("Java: %+v", j)
	}
	if n := kinds[NSS]; n.Reason != ReasonNSS {
		t.Errorf("NSS: %+v", n)
	}
	o := kinds[OpenSSL]
	if want := openSSLVersion(t); o.Library != want || o.Reason != "" || o.MapIno != 4242 || o.MapDev != 0xfd01 || len(o.Symbols) != 4 {
		t.Errorf("OpenSSL: %+v, want %s", o, want)
	}
	// The same library file, read again: from the cache, the maps copied.
	o.Symbols["SSL_read"] = 1
	ts2, err := in.inspect(4242)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range ts2 {
		if x.Kind == OpenSSL && x.Symbols["SSL_read"] == 1 {
			t.Error("a caller's change to Symbols reached the cache")
		}
	}
	if len(in.cache) == 0 {
		t.Error("nothing cached")
	}

	// Without libcrypto mapped, the version comes from the SONAME.
	in = fakeProc(t, 4243, "7f0000500000-7f0000600000 r--p 00000000 fd:01 4242 "+ssl+"\n", "")
	ts, err = in.inspect(4243)
	if err != nil || len(ts) != 1 || ts[0].Library != "OpenSSL 3 (from the SONAME; version text not found)" || ts[0].Major != 3 {
		t.Errorf("libssl without libcrypto: %+v %v", ts, err)
	}
}

// TestBadInput: a pid that is gone, maps that cannot be read, executables
// that are not ELF or are truncated, a library that is not ELF.
func TestBadInput(t *testing.T) {
	// A real process that exited.
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	if _, err := Inspect(cmd.Process.Pid); !errors.Is(err, ErrExited) {
		t.Errorf("exited pid: %v, want ErrExited", err)
	}
	// Maps that cannot be read (a directory): an error that is not ErrExited.
	in := fakeProc(t, 7, "", "")
	d := filepath.Join(in.proc, "7")
	os.Remove(filepath.Join(d, "maps"))
	os.Mkdir(filepath.Join(d, "maps"), 0o755)
	if _, err := in.inspect(7); err == nil || errors.Is(err, ErrExited) {
		t.Errorf("unreadable maps: %v, want an error saying so", err)
	}
	// A library named libssl that is not ELF: a target saying it cannot
	// be read, no error.
	junk := filepath.Join(t.TempDir(), "libssl.so.3")
	os.WriteFile(junk, []byte("not an ELF file"), 0o644)
	in = fakeProc(t, 8, "7f0000500000-7f0000600000 r--p 00000000 fd:01 1 "+junk+"\n", junk)
	ts, err := in.inspect(8)
	if err != nil || len(ts) != 1 || !strings.HasPrefix(ts[0].Reason, "cannot read") {
		t.Errorf("non-ELF libssl: %+v %v", ts, err)
	}

	// Truncated and corrupted executables: no panic, no error, bounded
	// memory.
	dir, _ := goBinaries(t)
	full, err := os.ReadFile(filepath.Join(dir, "normal"))
	if err != nil {
		t.Fatal(err)
	}
	var bad [][]byte
	for _, n := range []int{0, 3, 52, 64, 200, 4096, len(full) / 3, len(full) / 2, len(full) - 1000} {
		bad = append(bad, full[:n])
	}
	seed := uint64(1)
	for range 20 {
		b := slices.Clone(full)
		for range 16 {
			seed = seed*6364136223846793005 + 1442695040888963407
			i := int(seed>>33) % 4096 // the headers
			b[i] = byte(seed >> 24)
		}
		bad = append(bad, b)
	}
	exe := filepath.Join(t.TempDir(), "exe")
	var ms runtime.MemStats
	for i, b := range bad {
		if err := os.WriteFile(exe, b, 0o755); err != nil {
			t.Fatal(err)
		}
		in := fakeProc(t, 9, "", exe)
		runtime.ReadMemStats(&ms)
		before := ms.TotalAlloc
		ts, err := in.inspect(9)
		runtime.ReadMemStats(&ms)
		if err != nil {
			t.Errorf("input %d: %v", i, err)
		}
		if alloc := ms.TotalAlloc - before; alloc > 64<<20 {
			t.Errorf("input %d (%d bytes): %d bytes allocated", i, len(b), alloc)
		}
		for _, x := range ts {
			if x.Kind != GoTLS && x.Kind != Unknown {
				t.Errorf("input %d: %+v", i, x)
			}
		}
	}
}

// BenchmarkInspect measures Inspect on a process whose files are cached
// (the cost at each exec of a binary seen before).
func BenchmarkInspect(b *testing.B) {
	cmd := exec.Command("python3", "-c", "import ssl, time; print('ready', flush=True); time.sleep(600)")
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		b.Skip(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	bufio.NewReader(out).ReadString('\n')
	for b.Loop() {
		if _, err := Inspect(cmd.Process.Pid); err != nil {
			b.Fatal(err)
		}
	}
}

// TestLibraryKind: libraries are told by their file names, the renamed
// copies Python wheels bundle included; NSS's libssl3 is not OpenSSL.
func TestLibraryKind(t *testing.T) {
	for name, want := range map[string]Kind{
		"libssl.so.3": OpenSSL, "libssl.so.1.1": OpenSSL, "libssl-1a2b3c4d.so.3": OpenSSL, "libssl-8f9e.so.1.1": OpenSSL,
		"libssl3.so": NSS, "libgnutls.so.30": GnuTLS, "libjvm.so": Java, "libboringssl.so": OpenSSL,
		"libssl-dev.txt": None, "libcrypto.so.3": None, "wrk-copy-libssl.so.3": None, "libc.so.6": None,
	} {
		if got := libraryKind(name); got != want {
			t.Errorf("%s: %v, want %v", name, got, want)
		}
	}
}
