package workspace_test

import (
	"context"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/wirescope/wirescope/capture/capturetest"
	"github.com/wirescope/wirescope/capture/fileset"
	"github.com/wirescope/wirescope/dissect"
	"github.com/wirescope/wirescope/server/workspace"
)

// BenchmarkDissectWindow measures what the dissect tool does end to end —
// read a window, dissect it on every core, index the calls — against
// dissection alone of the same file in the same run ("ratio" is the share
// of dissection-alone speed the whole keeps).
func BenchmarkDissectWindow(b *testing.B) {
	path := filepath.Join(b.TempDir(), "load.pcap")
	packets, err := capturetest.WriteLoad(path, capturetest.Load{Conns: 2000, Requests: 50})
	if err != nil {
		b.Fatal(err)
	}
	const calls = 2000 * 50
	var alone float64
	b.Run("dissect-only", func(b *testing.B) {
		var took time.Duration
		for b.Loop() {
			set, err := fileset.Open([]string{path}, 0)
			if err != nil {
				b.Fatal(err)
			}
			src, _, err := set.Window(time.Time{}, time.Time{})
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			start := time.Now()
			if _, _, err := dissect.NewParallel(dissect.Options{OnCall: func(*dissect.Call) { n++ }}, 0).Run(context.Background(), src, nil); err != nil {
				b.Fatal(err)
			}
			took = time.Since(start)
			if n != calls {
				b.Fatalf("%d calls", n)
			}
		}
		alone = calls / took.Seconds()
		b.ReportMetric(alone, "calls/s")
		b.ReportMetric(float64(packets)/took.Seconds(), "packets/s")
		b.ReportMetric(0, "ns/op")
	})
	b.Run("dissect+index", func(b *testing.B) {
		var took, cpu time.Duration
		for b.Loop() {
			ws, err := workspace.Open(workspace.Options{Paths: []string{path}, Dir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			start, cpu0 := time.Now(), cpuTime()
			res, err := ws.Dissect(context.Background(), time.Time{}, time.Time{}, nil)
			took, cpu = time.Since(start), cpuTime()-cpu0
			if err != nil || res.Calls["http"] != calls {
				b.Fatalf("%v, %v", res.Calls, err)
			}
			ws.Close()
		}
		rate := calls / took.Seconds()
		b.ReportMetric(rate, "calls/s")
		b.ReportMetric(calls/cpu.Seconds(), "calls/cpu-s")
		b.ReportMetric(float64(packets)/took.Seconds(), "packets/s")
		if alone > 0 {
			b.ReportMetric(rate/alone, "ratio")
		}
		b.ReportMetric(0, "ns/op")
	})
}

// cpuTime returns the CPU time the process has used: other load on a
// shared machine disturbs calls per CPU-second less than calls per second.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
