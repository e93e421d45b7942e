//go:build linux

package bpf

import (
	"bytes"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf/ringbuf"
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

// tlsServer starts nginx with TLS (1.2 and 1.3) on addr, answering every
// request 200 "probed\n", with a fresh key.
func tlsServer(t *testing.T, addr string) {
	t.Helper()
	for _, tool := range []string{"openssl", "nginx"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (make test installs it)", tool)
		}
	}
	dir := t.TempDir()
	key, crt := filepath.Join(dir, "key.pem"), filepath.Join(dir, "crt.pem")
	if out, err := exec.Command("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
		"-nodes", "-keyout", key, "-out", crt, "-days", "1", "-subj", "/CN=wirescope.test").CombinedOutput(); err != nil {
		t.Fatalf("openssl req: %v\n%s", err, out)
	}
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(`daemon off;
master_process off;
pid `+dir+`/nginx.pid;
error_log stderr warn;
events {}
http {
	access_log off;
	client_body_temp_path `+dir+`/body;
	proxy_temp_path `+dir+`/proxy;
	fastcgi_temp_path `+dir+`/fastcgi;
	uwsgi_temp_path `+dir+`/uwsgi;
	scgi_temp_path `+dir+`/scgi;
	server {
		listen `+addr+` ssl http2;
		ssl_certificate `+crt+`;
		ssl_certificate_key `+key+`;
		ssl_protocols TLSv1.2 TLSv1.3;
		location / { return 200 "probed\n"; }
	}
}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("nginx", "-p", dir, "-c", conf, "-e", "stderr")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(5 * time.Second)
	for {
		out, _ := exec.Command("ss", "-ltnH", "sport = :"+addr[strings.LastIndexByte(addr, ':')+1:]).Output()
		if len(bytes.TrimSpace(out)) > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx does not listen on %s: %s", addr, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
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
			tlsServer(t, addr)
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
	if _, err := p.AttachOpenSSL(sh, Library{}, nil); err == nil || !strings.Contains(err.Error(), "no SSL_read or SSL_write") {
		t.Errorf("a shell as libssl: %v", err)
	}
	if n := len(p.Attached()); n != 0 {
		t.Errorf("%d files attached after refusals", n)
	}
	if _, err := OpenTLS(nil, TLSOptions{RingBytes: 1000}); err == nil {
		t.Error("a ring of 1000 bytes was accepted")
	}
}
