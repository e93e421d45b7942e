package bpffilter

import (
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/net/bpf"
)

// benchExprs are filters of increasing size: the one make run uses, a
// service's port, a host and its ports, and the HTTP GET relation.
var benchExprs = []string{
	"not port 8898",
	"tcp port 8080",
	"host 127.0.0.1 and (port 8080 or port 5432)",
	"tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x47455420",
}

func benchName(expr string) string {
	return strings.NewReplacer(" ", "_", "[", "", "]", "", "(", "", ")", "").Replace(expr)
}

// BenchmarkCompile: compiling an expression for Ethernet, here and by
// running tcpdump -ddd (what capture/live did), in the same run.
func BenchmarkCompile(b *testing.B) {
	_, tcpdumpErr := exec.LookPath("tcpdump")
	for _, expr := range benchExprs {
		b.Run(benchName(expr)+"/bpffilter", func(b *testing.B) {
			for b.Loop() {
				if _, err := Compile(expr, Ethernet); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(benchName(expr)+"/tcpdump", func(b *testing.B) {
			if tcpdumpErr != nil {
				b.Skip("tcpdump is not installed")
			}
			for b.Loop() {
				if _, msg := refProgram(b, Ethernet, expr); msg != "" {
					b.Fatal(msg)
				}
			}
		})
	}
}

// BenchmarkRun: running the program over every test packet (Ethernet)
// in golang.org/x/net/bpf's VM, ours and tcpdump's, in the same run;
// ns/packet is per packet. The kernel runs the same instructions (JITed).
func BenchmarkRun(b *testing.B) {
	pkts := testPackets(b)[Ethernet].data
	_, tcpdumpErr := exec.LookPath("tcpdump")
	run := func(b *testing.B, prog []bpf.RawInstruction) {
		ins, _ := bpf.Disassemble(prog)
		vm, err := bpf.NewVM(ins)
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			for _, p := range pkts {
				vm.Run(p)
			}
		}
		b.ReportMetric(float64(len(prog)), "instructions")
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(pkts)), "ns/packet")
	}
	for _, expr := range benchExprs {
		b.Run(benchName(expr)+"/bpffilter", func(b *testing.B) {
			prog, err := Compile(expr, Ethernet)
			if err != nil {
				b.Fatal(err)
			}
			run(b, prog)
		})
		b.Run(benchName(expr)+"/tcpdump", func(b *testing.B) {
			if tcpdumpErr != nil {
				b.Skip("tcpdump is not installed")
			}
			prog, msg := refProgram(b, Ethernet, expr)
			if msg != "" {
				b.Fatal(msg)
			}
			run(b, prog)
		})
	}
}
