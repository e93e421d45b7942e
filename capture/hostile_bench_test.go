package capture

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BenchmarkDissectHostileGzip measures `wirescope dissect` on the hostile
// capture of issue 11: a gzip'd pcap (about 1 MB) that declares a snap length
// of 2^31 and holds a 1 GiB record between two small packets. It builds the
// binary and the capture in a temporary directory, reports the peak RSS
// (maxrss-MB) and the run time, and fails when the RSS reaches 256 MB or the
// summary does not name the skipped packet. Run it with
//
//	go test ./capture -run '^$' -bench DissectHostileGzip -benchtime 1x
func BenchmarkDissectHostileGzip(b *testing.B) {
	dir := b.TempDir()
	bin := filepath.Join(dir, "wirescope")
	build := exec.Command("go", "build", "-o", bin, "../cmd/wirescope")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	path := filepath.Join(dir, "hostile.pcap.gz")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	r, off := hostilePcap(b, 1<<30)
	if _, err := io.Copy(f, gzipStream(r)); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	fi, _ := os.Stat(path)
	b.Logf("%s: %d bytes compressed", path, fi.Size())
	want := fmt.Sprintf("packet of %d bytes at offset %d exceeds the 262144-byte limit; skipped", 1<<30, off)
	b.ResetTimer()
	var rss int64
	for range b.N {
		var stderr bytes.Buffer
		cmd := exec.Command(bin, "dissect", "-q", path)
		cmd.Stderr = &stderr
		start := time.Now()
		if err := cmd.Run(); err != nil {
			b.Fatalf("dissect: %v\n%s", err, stderr.String())
		}
		b.ReportMetric(time.Since(start).Seconds(), "s/run")
		rss = max(rss, cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss<<10)
		if !strings.Contains(stderr.String(), want) || !strings.Contains(stderr.String(), " 2 packets") {
			b.Fatalf("summary does not report 2 packets and %q:\n%s", want, stderr.String())
		}
	}
	b.ReportMetric(float64(rss)/1e6, "maxrss-MB")
	if rss >= 256e6 {
		b.Errorf("peak RSS %d MB, want under 256 MB", rss/1e6)
	}
}
