// Command mktruth writes the tshark truth file for a capture to standard
// output, in the schema of the shared corpus's *.truth.json files:
//
//	go run ./dissect/internal/truth/cmd/mktruth [-notes TEXT] FILE.pcap > FILE.truth.json
//
// It needs tshark on PATH; the truth is whatever that tshark reports, and the
// file records its version.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"

	"github.com/wirescope/wirescope/dissect/internal/truth"
)

func main() {
	notes := flag.String("notes", "", "`text` for the notes member: where tshark is known to be incomplete for this capture")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: mktruth [-notes TEXT] FILE.pcap > FILE.truth.json\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(flag.Arg(0), *notes); err != nil {
		fmt.Fprintf(os.Stderr, "mktruth: %v\n", err)
		os.Exit(1)
	}
}

func run(pcap, notes string) error {
	tool, err := truth.TsharkVersion()
	if err != nil {
		return err
	}
	f, err := truth.Generate(pcap)
	if err != nil {
		return err
	}
	f.Tool = tool
	f.Notes = notes
	w := bufio.NewWriter(os.Stdout)
	if err := f.Write(w); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}
