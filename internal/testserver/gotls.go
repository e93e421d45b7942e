package testserver

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// goTLSApp is an HTTPS server and client using only Go's standard library:
// "server ADDR" serves every path with "go-probed " + the path, on a key
// made at start; "client [-h1] URL..." GETs each URL on one connection
// (HTTP/2 unless -h1) and prints the bodies.
const goTLSApp = `package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"time"
)

func main() {
	switch os.Args[1] {
	case "server":
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
		der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		srv := &http.Server{Addr: os.Args[2], Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "go-probed %s %s", r.Proto, r.URL.Path)
		}), TLSConfig: &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}}
		fmt.Println(srv.ListenAndServeTLS("", ""))
		os.Exit(1)
	case "client":
		urls := os.Args[2:]
		tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true}
		for len(urls) > 0 && urls[0][0] == '-' {
			switch urls[0] {
			case "-h1":
				tr.ForceAttemptHTTP2 = false
				tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
			case "-wait":
				time.Sleep(time.Second)
			}
			urls = urls[1:]
		}
		c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		for _, u := range urls {
			resp, err := c.Get(u)
			if err != nil {
				fmt.Println(err)
				os.Exit(1)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			fmt.Printf("%d %s\n", resp.StatusCode, b)
		}
	}
}
`

// BuildGoTLS builds, in dir, an HTTPS server and client using only Go's
// standard library (CGO_ENABLED=0: static), with extra go build flags, and
// returns its path: "server ADDR" serves every path with "go-probed " +
// the protocol and path on a key made at start; "client [-h1] [-wait] URL..."
// GETs each URL on one connection (HTTP/2 unless -h1; after a second with
// -wait) and prints the bodies.
func BuildGoTLS(t testing.TB, dir, name string, flags ...string) string {
	t.Helper()
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "main.go"), []byte(goTLSApp), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte("module goapp\n\ngo 1.21\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, name)
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH to build the Go TLS program")
	}
	cmd := exec.Command(gobin, append(append([]string{"build", "-o", out}, flags...), ".")...)
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=", "GOTOOLCHAIN=local")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %v: %v\n%s", flags, err, b)
	}
	return out
}
