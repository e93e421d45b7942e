package bpffilter

import (
	"testing"

	"golang.org/x/net/bpf"
)

// FuzzCompile: any expression gives an error or a program the VM loads
// and runs on any packet; nothing panics.
func FuzzCompile(f *testing.F) {
	for _, e := range exprs {
		f.Add(e.expr, []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 8, 0, 0x45, 0, 0, 40, 0, 0, 0, 0, 64, 6})
	}
	f.Fuzz(func(t *testing.T, expr string, pkt []byte) {
		for _, l := range linkTypes {
			prog, err := Compile(expr, l.lt)
			if err != nil {
				continue
			}
			ins, ok := bpf.Disassemble(prog)
			if !ok {
				t.Fatalf("%q on %v: a program the disassembler does not know", expr, l.lt)
			}
			vm, err := bpf.NewVM(ins)
			if err != nil {
				t.Fatalf("%q on %v: %v", expr, l.lt, err)
			}
			if _, err := vm.Run(pkt); err != nil {
				t.Fatalf("%q on %v: %v", expr, l.lt, err)
			}
		}
	})
}
