// Package testserver starts the real servers tests talk to (nginx with
// TLS), on addresses the test gives, stopped when the test ends.
package testserver

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// NginxTLS starts nginx with TLS 1.2 and 1.3, HTTP/1.1 and HTTP/2 (ALPN)
// on addr, with a fresh self-signed key, answering every request 200
// "probed\n" (and /big with 100,000 bytes), until the test ends. It
// returns nginx's pid (one process: no master).
func NginxTLS(t testing.TB, addr string) int {
	t.Helper()
	for _, tool := range []string{"openssl", "nginx"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (make test installs it)", tool)
		}
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "big"), []byte(strings.Repeat("0123456789", 10000)), 0o644); err != nil {
		t.Fatal(err)
	}
	key, crt := SelfSigned(t, dir)
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
		location = /big { alias `+dir+`/big; default_type application/octet-stream; }
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
			return cmd.Process.Pid
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx does not listen on %s: %s", addr, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// SelfSigned writes a fresh self-signed P-256 key and certificate for
// wirescope.test into dir (with the openssl command) and returns their
// paths.
func SelfSigned(t testing.TB, dir string) (key, crt string) {
	t.Helper()
	key, crt = filepath.Join(dir, "key.pem"), filepath.Join(dir, "crt.pem")
	if out, err := exec.Command("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
		"-nodes", "-keyout", key, "-out", crt, "-days", "1", "-subj", "/CN=wirescope.test").CombinedOutput(); err != nil {
		t.Fatalf("openssl req: %v\n%s", err, out)
	}
	return key, crt
}
