//go:build linux

package bpf

import (
	"bytes"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf/ringbuf"
	"github.com/wirescope/wirescope/internal/testserver"
)

// systemLibSSL is the libssl curl links, as ldd says.
func systemLibSSL(t *testing.T) string {
	t.Helper()
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl is not installed (make test installs it)")
	}
	out, err := exec.Command("ldd", curl).Output()
	if err != nil {
		t.Fatalf("ldd %s: %v", curl, err)
	}
	m := regexp.MustCompile(`libssl\.so[.0-9]* => (\S+)`).FindSubmatch(out)
	if m == nil {
		t.Skipf("curl does not link libssl dynamically:\n%s", out)
	}
	return string(m[1])
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("loading eBPF programs needs root")
	}
}

// TestTLSProbesCurl reads the plaintext of curl's HTTPS request to
// nginx from both ends' libssl calls, with the sockets learned
// by the per-call tracepoints and, as where tracefs cannot be mounted, by
// the raw sys_enter tracepoint; over TLS 1.2 and 1.3.
func TestTLSProbesCurl(t *testing.T) {
	requireRoot(t)
	lib := systemLibSSL(t)
	for _, tc := range []struct {
		name string
		raw  bool
		tls  string
	}{
		{"tracepoints/tls1.3", false, "--tlsv1.3"},
		{"raw-sys-enter/tls1.2", true, "--tls-max"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := OpenTLS(nil, TLSOptions{RawSyscalls: tc.raw})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			if tc.raw != strings.HasPrefix(p.SyscallHook, "raw") {
				t.Fatalf("SyscallHook %q, raw asked: %v", p.SyscallHook, tc.raw)
			}
			a, err := p.AttachOpenSSL(lib, Library{Kind: 1, Major: 3, Name: "OpenSSL 3"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, fn := range []string{"SSL_read", "SSL_write", "SSL_read_ex", "SSL_write_ex", "SSL_do_handshake"} {
				if !hasAny(a.Functions, fn) {
					t.Errorf("%s not probed in %s (missing %v)", fn, lib, a.Missing)
				}
			}
			// The same file through another path is not probed again.
			if b, err := p.AttachOpenSSL("/proc/self/root"+lib, Library{}, nil); err != nil || b != a {
				t.Errorf("second attach of the same file: %v, %p != %p", err, b, a)
			}

			addr := "127.0.0.41:18443"
			if tc.raw {
				addr = "127.0.0.41:18444"
			}
			testserver.NginxTLS(t, addr)
			args := []string{"-sk", "-o", "/dev/null", "--http1.1", "https://" + addr + "/probe-path?x=1"}
			if tc.tls == "--tls-max" {
				args = append(args, "--tls-max", "1.2")
			} else {
				args = append(args, tc.tls)
			}
			got := make(chan []Chunk, 1)
			go func() {
				var all []Chunk
				var c Chunk
				var rec ringbuf.Record
				for {
					p.chunks.SetDeadline(time.Now().Add(3 * time.Second))
					if err := p.ReadChunk(&c, &rec); err != nil {
						got <- all
						return
					}
					c.Data = bytes.Clone(c.Data)
					all = append(all, c)
				}
			}()
			curl := exec.Command("curl", args...)
			if out, err := curl.CombinedOutput(); err != nil {
				t.Fatalf("curl: %v\n%s", err, out)
			}
			chunks := <-got
			server := netip.MustParseAddrPort(addr)
			var reqW, reqR, respW, respR bool
			for _, c := range chunks {
				if c.Library.Name != "OpenSSL 3" || c.Len == 0 || len(c.Data) == 0 || c.Time.IsZero() {
					t.Errorf("chunk %+v", c)
				}
				if d := time.Since(c.Time); d < 0 || d > time.Minute {
					t.Errorf("chunk time %v is %v from now", c.Time, d)
				}
				req := bytes.HasPrefix(c.Data, []byte("GET /probe-path?x=1 HTTP/1.1\r\n"))
				resp := bytes.HasPrefix(c.Data, []byte("HTTP/1.1 200 OK\r\n"))
				switch {
				case req && !c.Read && c.Remote == server && c.PID == uint32(curl.Process.Pid):
					reqW = true // curl wrote it
				case req && c.Read && c.Local == server:
					reqR = true // s_server read it
				case resp && !c.Read && c.Local == server:
					respW = true
				case resp && c.Read && c.Remote == server && c.PID == uint32(curl.Process.Pid):
					respR = true
				}
			}
			if !reqW || !reqR || !respW || !respR {
				for _, c := range chunks {
					t.Logf("pid %d read=%v %v→%v len %d: %.40q", c.PID, c.Read, c.Local, c.Remote, c.Len, c.Data)
				}
				t.Fatalf("request written by curl %v, read by the server %v; response written %v, read by curl %v", reqW, reqR, respW, respR)
			}
			cs, err := p.Counters()
			if err != nil {
				t.Fatal(err)
			}
			if cs.Chunks < 4 || cs.Bytes == 0 || cs.Calls < cs.Chunks/4 {
				t.Errorf("counters %+v", cs)
			}
		})
	}
}

// TestTLSProbesAttachErrors: files that are not TLS libraries are refused
// with the reason, and nothing stays attached.
func TestTLSProbesAttachErrors(t *testing.T) {
	requireRoot(t)
	p, err := OpenTLS(nil, TLSOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := p.AttachOpenSSL("/nonexistent/libssl.so.3", Library{}, nil); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	sh, _ := exec.LookPath("sh")
	if _, err := p.AttachOpenSSL(sh, Library{}, nil); err == nil || !strings.Contains(err.Error(), "no SSL_read/SSL_read_ex or no SSL_write/SSL_write_ex") {
		t.Errorf("a shell as libssl: %v", err)
	}
	if _, err := p.AttachGnuTLS(sh, Library{}, nil); err == nil || !strings.Contains(err.Error(), "no gnutls_record_recv or no gnutls_record_send") {
		t.Errorf("a shell as libgnutls: %v", err)
	}
	if n := len(p.Attached()); n != 0 {
		t.Errorf("%d files attached after refusals", n)
	}
	if _, err := OpenTLS(nil, TLSOptions{RingBytes: 1000}); err == nil {
		t.Error("a ring of 1000 bytes was accepted")
	}
}
