package main

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/wirescope/wirescope/capture"
	"github.com/wirescope/wirescope/capture/segstore"
	"github.com/wirescope/wirescope/dissect"
	"github.com/wirescope/wirescope/dissect/proto"
	"github.com/wirescope/wirescope/internal/redact"
	"github.com/wirescope/wirescope/internal/when"
	"github.com/wirescope/wirescope/server/identity"
)

type dissectFlags struct {
	cluster      string
	format       string
	flows        bool
	keylog       string
	quiet        bool
	maxBody      int
	maxHeader    int
	pagesPerConn int
	pagesTotal   int
	cpuProfile   string
	maxFlows     int
	maxParser    int
	maxPacket    int
	store        string
	from, to     string
	raw          bool
}

func newDissectCmd() *cobra.Command {
	var f dissectFlags
	cmd := &cobra.Command{
		Use:   "dissect FILE... | --store DIR [--from T --to T]",
		Short: "Turn pcap/pcapng captures into API calls (JSONL or a table)",
		Long: `Dissect reads pcap or pcapng files (gzip-compressed too; several files are
merged by timestamp), reassembles TCP, detects protocols from payload and prints
one API call per line. A summary goes to stderr: packets, flows, calls by
protocol, unanswered requests, truncated calls and bytes dropped to bound memory.

A damaged file yields every packet before the damage and a warning naming the
byte offset; a file that cannot be read at all is an error.

--store reads an agent's segment store instead (it may be capturing into it
meanwhile): the segments holding packets in [--from, --to), in time order.
Times are RFC 3339 or a negative duration back from now (-15m).`,
		Example: `  wirescope dissect capture.pcap
  wirescope dissect --cluster cluster.json --format table node-a.pcap node-b.pcap
  wirescope dissect --flows capture.pcapng | jq 'select(.kind=="flow")'
  wirescope dissect --store /var/lib/wirescope --from -10m -o table`,
		Args: func(cmd *cobra.Command, args []string) error {
			if f.store != "" {
				if len(args) > 0 {
					return errors.New("give capture files or --store, not both")
				}
				return nil
			}
			if f.from != "" || f.to != "" {
				return errors.New("--from and --to go with --store")
			}
			return cobra.MinimumNArgs(1)(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDissect(cmd.OutOrStdout(), cmd.ErrOrStderr(), args, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.cluster, "cluster", "", "cluster file (services and pods) to name the peers of each call")
	fl.StringVarP(&f.format, "format", "o", "jsonl", "output format: jsonl or table")
	fl.BoolVar(&f.flows, "flows", false, "also print one line per L4 flow that produced no call, per encrypted flow (whether it was decrypted), and per flow an ICMP error was about")
	registerKeyLog(fl, &f.keylog)
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "print only the summary")
	fl.IntVar(&f.maxBody, "max-body", 0, "body bytes shown per message after decoding (default 4096)")
	fl.IntVar(&f.maxHeader, "max-header", 0, "largest header block parsed, in bytes (default 65536)")
	fl.IntVar(&f.pagesPerConn, "max-pages-per-conn", 0, "out-of-order buffer per TCP connection, in 1900-byte pages (default 1024)")
	fl.IntVar(&f.pagesTotal, "max-pages", 0, "out-of-order buffer in total, in 1900-byte pages (default 8192)")
	fl.IntVar(&f.maxFlows, "max-flows", 0, "TCP connections, and UDP flows, tracked at once in total; past it the least active end early (default 8192)")
	fl.IntVar(&f.maxParser, "max-parser-bytes", 0, "bytes protocol parsers keep in total (partial messages, bodies kept for display, requests waiting for a response); past it the connections and UDP flows keeping the most end early (default 33554432)")
	fl.IntVar(&f.maxPacket, "max-packet", 0, "largest captured packet read from a file, in bytes; larger ones are skipped with a warning (default 262144)")
	fl.StringVar(&f.store, "store", "", "read the segment store in this directory (as `wirescope agent --data-dir` writes)")
	fl.StringVar(&f.from, "from", "", "with --store: the start of the window (RFC 3339, or -15m back from now)")
	fl.StringVar(&f.to, "to", "", "with --store: the end of the window")
	fl.BoolVar(&f.raw, "raw", false, "print secrets as captured; by default credential headers, secret-named parameters in URLs, forms and JSON, and URL userinfo are [redacted], as the MCP tools show them")
	fl.StringVar(&f.cpuProfile, "cpuprofile", "", "write a CPU profile to this file")
	fl.MarkHidden("cpuprofile")
	return cmd
}

func runDissect(stdout, stderr io.Writer, files []string, f dissectFlags) error {
	if f.format != "jsonl" && f.format != "table" {
		return fmt.Errorf("--format %q: want jsonl or table", f.format)
	}
	if f.cpuProfile != "" {
		pf, err := os.Create(f.cpuProfile)
		if err != nil {
			return err
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	ps, err := protocols(f.keylog)
	if err != nil {
		return err
	}
	opts := dissect.Options{
		Protocols:        ps,
		Limits:           proto.Limits{MaxBodyDisplay: f.maxBody, MaxHeaderBytes: f.maxHeader, Summary: f.quiet},
		MaxPagesPerConn:  f.pagesPerConn,
		MaxPagesTotal:    f.pagesTotal,
		MaxFlows:         f.maxFlows,
		MaxBufferedTotal: f.maxParser,
	}
	if f.cluster != "" {
		id, err := identity.LoadFile(f.cluster)
		if err != nil {
			return err
		}
		opts.Identity = id
	}
	var srcs []capture.Source
	defer func() {
		for _, s := range srcs {
			s.Close()
		}
	}()
	for _, name := range files {
		s, err := capture.OpenFile(name, capture.MaxPacket(f.maxPacket))
		if err != nil {
			return err
		}
		srcs = append(srcs, s)
	}
	if f.store != "" {
		s, err := storeSource(f.store, f.from, f.to, time.Now())
		if err != nil {
			return err
		}
		srcs = append(srcs, s)
		files = []string{f.store}
	}
	// Reading the capture (a Batcher), dissecting (one shard per CPU) and
	// encoding the records (asyncOut) run on goroutines of their own.
	src := capture.Merge(srcs...)
	srcs = nil // Run closes them

	w := bufio.NewWriterSize(stdout, 256<<10)
	var out outputter = &jsonlOut{w: w}
	if f.format == "table" {
		out = newTableOut(w)
	}
	var async *asyncOut
	if !f.quiet {
		async = newAsyncOut(out)
		opts.OnCall = async.call
		if !f.raw {
			opts.OnCall = func(c *dissect.Call) { async.call(redact.Call(c)) }
		}
		if f.flows {
			opts.OnFlow = func(fl *dissect.Flow) {
				if fl.Calls == 0 || fl.Encrypted || fl.ICMP != "" {
					async.flow(fl)
				}
			}
		}
	}
	// The engines' default bounds keep their live heap near 100 MiB at
	// worst (a flood of stalled connections); a soft memory limit stops the
	// collector from letting garbage double that (GOMEMLIMIT overrides it).
	if os.Getenv("GOMEMLIMIT") == "" {
		defer debug.SetMemoryLimit(debug.SetMemoryLimit(dissectMemoryLimit))
	}
	start := time.Now()
	st, warnings, err := dissect.NewParallel(opts, runtime.GOMAXPROCS(0)).Run(context.Background(), src, nil)
	if async != nil {
		async.close()
	}
	if err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	printSummary(stderr, files, st, warnings, time.Since(start))
	return nil
}

// dissectMemoryLimit is the soft memory limit of dissect.
const dissectMemoryLimit = 192 << 20

// asyncOut hands calls and flows, in batches, to a goroutine that encodes
// and writes them in the order they were produced.
type asyncOut struct {
	out  outputter
	cur  []record
	full chan []record
	free chan []record
	done chan struct{}
}

// record is a call or a flow to print.
type record struct {
	call *dissect.Call
	flow *dissect.Flow
}

const asyncBatch = 256

func newAsyncOut(out outputter) *asyncOut {
	a := &asyncOut{out: out, full: make(chan []record, 4), free: make(chan []record, 4), done: make(chan struct{})}
	for range 4 {
		a.free <- make([]record, 0, asyncBatch)
	}
	a.cur = <-a.free
	go func() {
		defer close(a.done)
		for recs := range a.full {
			for i, r := range recs {
				if r.call != nil {
					out.call(r.call)
				} else {
					out.flow(r.flow)
				}
				recs[i] = record{}
			}
			a.free <- recs[:0]
		}
		out.done()
	}()
	return a
}

func (a *asyncOut) add(r record) {
	a.cur = append(a.cur, r)
	if len(a.cur) == asyncBatch {
		a.full <- a.cur
		a.cur = <-a.free
	}
}

func (a *asyncOut) call(c *dissect.Call) { a.add(record{call: c}) }

func (a *asyncOut) flow(f *dissect.Flow) { a.add(record{flow: f}) }

// close writes what is left and waits for the writer.
func (a *asyncOut) close() {
	if len(a.cur) > 0 {
		a.full <- a.cur
	}
	close(a.full)
	<-a.done
}

type outputter interface {
	call(c *dissect.Call)
	flow(f *dissect.Flow)
	done()
}

type jsonlOut struct {
	w   *bufio.Writer
	buf []byte
}

func (o *jsonlOut) call(c *dissect.Call) {
	o.buf = c.AppendJSON(o.buf[:0])
	o.buf = append(o.buf, '\n')
	o.w.Write(o.buf)
}

func (o *jsonlOut) flow(f *dissect.Flow) {
	o.buf = f.AppendJSON(o.buf[:0])
	o.buf = append(o.buf, '\n')
	o.w.Write(o.buf)
}

func (o *jsonlOut) done() {}

// tableOut prints aligned columns, flushing every so many rows so that a
// large capture does not sit in memory.
type tableOut struct {
	tw   *tabwriter.Writer
	rows int
}

func newTableOut(w io.Writer) *tableOut {
	t := &tableOut{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	fmt.Fprintln(t.tw, "TIME\tPROTO\tSRC\tDST\tMETHOD\tPATH\tSTATUS\tLATENCY\tERROR")
	return t
}

func (t *tableOut) row(cols ...string) {
	for i, c := range cols {
		cols[i] = strings.Map(func(r rune) rune {
			if r < 0x20 || r == 0x7f {
				return '.'
			}
			return r
		}, c)
	}
	fmt.Fprintln(t.tw, strings.Join(cols, "\t"))
	if t.rows++; t.rows%200 == 0 {
		t.tw.Flush()
	}
}

func (t *tableOut) call(c *dissect.Call) {
	lat := ""
	if c.LatencyNS > 0 {
		lat = time.Duration(c.LatencyNS).Round(time.Microsecond).String()
	}
	t.row(c.TS.UTC().Format("15:04:05.000000"), c.Proto, peer(&c.Src), peer(&c.Dst), c.Method,
		clip(c.Path, 60), c.Status, lat, c.Error)
}

func (t *tableOut) flow(f *dissect.Flow) {
	t.row(f.First.UTC().Format("15:04:05.000000"), f.Transport, peer(&f.Src), peer(&f.Dst), "(flow)",
		fmt.Sprintf("%d+%d pkts %d+%d bytes", f.Packets[0], f.Packets[1], f.Bytes[0], f.Bytes[1]), f.State, "", "")
}

func (t *tableOut) done() { t.tw.Flush() }

func peer(e *proto.Endpoint) string {
	if e.Pod != "" {
		return e.Namespace + "/" + e.Pod
	}
	if e.Service != "" {
		return e.Namespace + "/svc/" + e.Service
	}
	if e.IP.Is6() && !e.IP.Is4In6() {
		return "[" + e.IP.String() + "]:" + strconv.Itoa(int(e.Port))
	}
	return e.IP.String() + ":" + strconv.Itoa(int(e.Port))
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

func printSummary(w io.Writer, files []string, st dissect.Stats, warns []capture.Warning, took time.Duration) {
	fmt.Fprintf(w, "wirescope: %d file(s), %d packets, %d bytes in %s\n", len(files), st.Packets, st.Bytes, took.Round(time.Millisecond))
	fmt.Fprintf(w, "  flows: %s (dissected: %s; undissected: %d)\n", counts(st.Flows), counts(without(st.FlowsByProto, "")), st.FlowsByProto[""])
	fmt.Fprintf(w, "  calls: %s\n", counts(st.Calls))
	fmt.Fprintf(w, "  unanswered: %d, without request: %d, truncated: %d, malformed: %d\n", st.Unanswered, st.Orphans, st.Truncated, st.Malformed)
	fmt.Fprintf(w, "  tcp: %d retransmissions, %d bytes missing from the capture, %d bytes skipped for memory bounds\n", st.Retransmissions, st.MissingBytes, st.SkippedBytes)
	if st.Evicted > 0 {
		fmt.Fprintf(w, "  flows ended early to bound memory (more open than --max-flows): %d\n", st.Evicted)
	}
	if st.MemoryEnded > 0 {
		fmt.Fprintf(w, "  flows ended early to bound what parsers buffer: %d\n", st.MemoryEnded)
	}
	d := st.Decode
	if skipped := d.UnsupportedLink + d.NotIP + d.Malformed + d.FragmentsDropped; skipped > 0 || st.TruncatedPackets > 0 {
		fmt.Fprintf(w, "  packets not decoded: %d unsupported link, %d not IP, %d malformed, %d IP fragments dropped; %d cut by snap length\n",
			d.UnsupportedLink, d.NotIP, d.Malformed, d.FragmentsDropped, st.TruncatedPackets)
	}
	for _, wa := range warns {
		fmt.Fprintf(w, "  warning: %s\n", wa)
	}
}

func without(m map[string]uint64, k string) map[string]uint64 {
	c := maps.Clone(m)
	delete(c, k)
	return c
}

// counts renders a map as "a 3, b 1", biggest first.
func counts(m map[string]uint64) string {
	if len(m) == 0 {
		return "none"
	}
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, func(a, b string) int { return cmp.Or(cmp.Compare(m[b], m[a]), strings.Compare(a, b)) })
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + " " + strconv.FormatUint(m[k], 10)
	}
	return strings.Join(parts, ", ")
}

// storeSource reads the packets of a segment store in [from, to).
func storeSource(dir, from, to string, now time.Time) (capture.Source, error) {
	segs, err := segstore.List(dir)
	if err != nil {
		return nil, err
	}
	f, err := when.Arg(from, now)
	if err != nil {
		return nil, fmt.Errorf("--from: %w", err)
	}
	t, err := when.Arg(to, now)
	if err != nil {
		return nil, fmt.Errorf("--to: %w", err)
	}
	if !f.IsZero() && !t.IsZero() && !f.Before(t) {
		return nil, fmt.Errorf("--from %s is not before --to %s", f.Format(time.RFC3339Nano), t.Format(time.RFC3339Nano))
	}
	if len(segs) == 0 {
		return nil, fmt.Errorf("the store in %s holds no segments yet", dir)
	}
	return segstore.Packets(segs, f, t), nil
}
