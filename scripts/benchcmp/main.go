// Command benchcmp compares wirescope's dissection speed and memory with
// tshark's on the same captures, in the same run: an HTTP/1.1 load, an
// HTTP/2 load and an HTTPS load (HTTP/1.1 over TLS 1.2, decrypted with the
// clients' key log).
//
// Each workload is one cached capture and three commands over it:
//
//	HTTP/1.1: 50,000 keep-alive GET pairs on 10 connections, recorded from a real nginx
//	  tshark -r F -q -z http,tree                          the reference: full HTTP dissection, statistics only
//	  wirescope dissect F                                  the default: every call as JSONL, written to /dev/null
//	  wirescope dissect -q F                               the same dissection, summary only (like-for-like with tshark -q)
//
//	HTTP/2: 50,000 GET streams from h2load on 10 connections, 10 in flight on each, from a real nghttpd (h2c)
//	  tshark -r F -d tcp.port==18082,http2 -q -z http2,tree   the reference (frames counted by type)
//	  wirescope dissect F
//	  wirescope dissect -q F
//
//	HTTPS: 50,000 GET pairs from h2load --h1 on 16 TLS 1.2 connections (ECDHE-RSA-AES128-GCM-SHA256) to a real nginx, with h2load's key log K
//	  tshark -r F -o tls.keylog_file:K -q -z http,tree     the reference: decryption and full HTTP dissection
//	  wirescope dissect --tls-keylog K F
//	  wirescope dissect --tls-keylog K -q F
//
//	Redis: redis-benchmark -t set,get (100,000 of each on 16 connections, no pipelining) against a real redis-server
//	  tshark -r F -d tcp.port==16379,resp -q -z io,phs      the reference: every RESP payload dissected (tshark has no RESP statistics)
//	  wirescope dissect F
//	  wirescope dissect -q F
//
//	PostgreSQL: pgbench -S -M extended (200,000 select-only transactions on 8 connections) against a real PostgreSQL 15
//	  tshark -r F -d tcp.port==15432,pgsql -q -z io,phs     the reference: every message dissected
//	  wirescope dissect F
//	  wirescope dissect -q F
//
//	MySQL: mysqlslap (200,000 copies of one SELECT on 8 connections) against a real MariaDB 10.11
//	  tshark -r F -d tcp.port==13306,mysql -q -z io,phs     the reference: every packet dissected
//	  wirescope dissect F
//	  wirescope dissect -q F
//
// The data stores' captures come with a JSON file beside them (F.json) the
// recorder wrote: the commands, transactions or queries its load tool sent,
// from which the calls wirescope must count are derived (for Redis the
// commands; for PostgreSQL the Executes, pgbench's two set-up queries and a
// startup per connection; for MySQL the queries, and a login and a
// COM_QUIT per connection); tshark must decode the protocol in at least as
// many frames.
//
// For every run it records the wall time around the child, the child's CPU
// time (user+sys) and its peak resident set size (ru_maxrss from wait4, KiB on
// Linux). Before measuring anything it checks that both tools read the whole
// capture, because a ratio over a misparse is worthless. HTTP/1.1: tshark
// must count 50,000 HTTP responses, all 200 OK, and wirescope 50,000 HTTP
// calls over every packet in the file. HTTP/2: tshark's tree must count
// 100,000 HEADERS frames (a request's and a response's per stream), and
// tshark's fields (the :status of every response HEADERS frame, with its
// connection and stream id) and wirescope's JSONL must both hold the 50,000
// streams, every one answered 200, and the same ones; a disagreement is
// reported stream by stream. HTTPS: tshark, decrypting, must count 50,000
// HTTP requests and 50,000 responses, all 200 OK, and wirescope 50,000 HTTP
// calls and a TLS handshake per connection over every packet in the file.
//
// The machines this runs on are shared and noisy, so absolute times mean
// little and are never compared across runs. Instead the commands of a
// workload are measured in rounds, one run of each per round, with the order
// rotated every round, so slow drift (other tenants, frequency scaling,
// page-cache pressure) falls on all of them alike; one warm-up run of each
// comes first so that every measured run reads the capture from the page
// cache. The figures reported are medians, which ignore the odd run hit by a
// burst of noise, and the verdicts are ratios of medians from the same rounds:
// wirescope should be at least 20 times faster than tshark in wall time and
// use at most a quarter of its peak RSS, on each workload.
//
// Usage (from the repository root; scripts/bench.sh, behind make bench, runs it):
//
//	go run ./scripts/benchcmp [-runs 7] [-only http1|http2|tls|redis|postgres|mysql] [-capture PATH] [-h2-capture PATH] [-tls-capture PATH] [-rerecord] [-bin PATH] [-strict]
//
// The captures default to .cache/bench/http-load.pcap (recorded with the
// shared make-http-load.sh; needs nginx and curl), .cache/bench/h2load.pcap
// (recorded with scripts/record-h2load.sh; needs nghttpd and h2load) and
// .cache/bench/tls-load.pcap with its key log beside it,
// .cache/bench/tls-load.pcap.keys (recorded with scripts/record-tls.sh
// --bulk; needs nginx, openssl, curl, h2load, jq and ss; the key log is
// mode 0600, given to the user sudo ran as, if any). Each is recorded only
// when missing (for HTTPS: the capture or its key log) or when -rerecord is
// given; recording needs root, tcpdump and tshark. A missed target is reported, not asserted: the
// exit status is 0 unless -strict is given.
package main

import (
	"bufio"
	"bytes"
	"debug/buildinfo"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

const (
	wantCalls   = 50000 // request/response pairs (HTTP/1.1) or streams (HTTP/2) in each capture, all GET/200
	connections = 10    // connections each recorder opens
	h2Streams   = 10    // HTTP/2 streams h2load keeps in flight on each connection
	h2Port      = 18082 // the port record-h2load.sh's nghttpd listens on; tshark is told it is HTTP/2

	minSpeedup  = 20.0 // tshark wall / wirescope wall must be at least this
	maxRSSRatio = 0.25 // wirescope peak RSS / tshark peak RSS must be at most this

	tlsConnections = 16 // TLS connections h2load opens for the HTTPS capture (record-tls.sh --bulk's default)

	defaultRecorder    = "/work/shared/corpus/perf/make-http-load.sh"
	defaultH2Recorder  = "scripts/record-h2load.sh"    // relative to the repository root
	defaultTLSRecorder = "scripts/record-tls.sh"       // relative to the repository root
	defaultCapture     = ".cache/bench/http-load.pcap" // relative to the repository root
	defaultH2Capture   = ".cache/bench/h2load.pcap"    // relative to the repository root
	defaultTLSCapture  = ".cache/bench/tls-load.pcap"  // relative to the repository root; its key log is this + ".keys"
)

var errTargetsMissed = errors.New("performance targets missed")

type config struct {
	runs       int
	only       string
	capture    string
	recorder   string
	h2Capture  string
	h2Recorder string
	tlsCapture string
	bin        string
	rerecord   bool
	strict     bool
}

func main() {
	var c config
	flag.IntVar(&c.runs, "runs", 7, "measured runs of each command (after one warm-up run each)")
	flag.StringVar(&c.only, "only", "", "measure one workload only: http1, http2, tls, redis, postgres or mysql (default all)")
	flag.StringVar(&c.capture, "capture", "", "HTTP/1.1 capture to measure (default <repo>/"+defaultCapture+")")
	flag.StringVar(&c.recorder, "recorder", defaultRecorder, "script that records the HTTP/1.1 capture")
	flag.StringVar(&c.h2Capture, "h2-capture", "", "HTTP/2 capture to measure, on port "+strconv.Itoa(h2Port)+" (default <repo>/"+defaultH2Capture+")")
	flag.StringVar(&c.h2Recorder, "h2-recorder", "", "script that records the HTTP/2 capture (default <repo>/"+defaultH2Recorder+")")
	flag.StringVar(&c.tlsCapture, "tls-capture", "", "HTTPS capture to measure, its key log beside it as PATH.keys (default <repo>/"+defaultTLSCapture+")")
	flag.StringVar(&c.bin, "bin", "", "wirescope binary to measure (default: build ./cmd/wirescope into a temp dir as make build does: the lean build, with the full one beside it)")
	flag.BoolVar(&c.rerecord, "rerecord", false, "record the captures again even if they exist")
	flag.BoolVar(&c.strict, "strict", false, "exit with status 1 when a performance target is missed")
	flag.Parse()
	if flag.NArg() > 0 || c.runs < 1 || (c.only != "" && !slices.Contains([]string{"http1", "http2", "tls", "redis", "postgres", "mysql", "kafka"}, c.only)) {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(c); err != nil {
		fmt.Fprintln(os.Stderr, "benchcmp:", err)
		os.Exit(1)
	}
}

func run(c config) error {
	if runtime.GOOS != "linux" {
		return fmt.Errorf("runs on Linux only (ru_maxrss units, tcpdump on lo), not %s", runtime.GOOS)
	}
	root, err := repoRoot()
	if err != nil {
		return err
	}
	if _, err := exec.LookPath("tshark"); err != nil {
		return errors.New("tshark not found on PATH (apt-get install tshark, or run scripts/bench.sh)")
	}
	var works []*workload
	for _, w := range workloads(c, root) {
		if c.only == "" || c.only == w.key {
			works = append(works, w)
		}
	}
	for _, w := range works {
		if err := ensureCapture(w, c.rerecord); err != nil {
			return fmt.Errorf("%s: %w", w.title, err)
		}
		if w.countCalls != nil {
			if w.calls, err = w.countCalls(w.capture); err != nil {
				return fmt.Errorf("%s: %w", w.title, err)
			}
		}
	}
	built := c.bin == ""
	if built {
		dir, err := os.MkdirTemp("", "benchcmp-")
		if err != nil {
			return fmt.Errorf("temp dir for the wirescope build: %w", err)
		}
		defer os.RemoveAll(dir)
		if c.bin, err = buildWirescope(root, dir); err != nil {
			return err
		}
	}

	m := gatherMachine(c.bin, root, built)
	inputs := make([]input, len(works))
	for i, w := range works {
		if inputs[i], err = readInput(w.capture); err != nil {
			return err
		}
		if err := w.verifyTshark(w); err != nil {
			return fmt.Errorf("tshark does not read %s as %d %s: %w", w.capture, w.calls, w.unit, err)
		}
		if err := w.verifyWirescope(w, c.bin, inputs[i].packets); err != nil {
			return fmt.Errorf("wirescope does not read %s fully: %w", w.capture, err)
		}
	}

	results := make([][][]sample, len(works))
	cmds := make([][]command, len(works))
	for i, w := range works {
		cmds[i] = benchCommands(w, c.bin, inputs[i].packets)
		fmt.Fprintf(os.Stderr, "benchcmp: %s: measuring %d runs of %d commands (after one warm-up run each)\n", w.title, c.runs, len(cmds[i]))
		if results[i], err = measure(cmds[i], c.runs, os.Stderr, w.title); err != nil {
			return fmt.Errorf("%s: %w", w.title, err)
		}
	}
	m.loadAfter = loadAvg()

	reportMachine(os.Stdout, m)
	missed, targets := 0, 0
	for i, w := range works {
		missed += report(os.Stdout, w, inputs[i], cmds[i], results[i])
		targets += 2 * (len(cmds[i]) - 1)
	}
	if missed == 0 {
		fmt.Fprintln(os.Stdout, "\nall targets met")
	} else {
		fmt.Fprintf(os.Stdout, "\n%d of %d targets missed\n", missed, targets)
	}
	if missed > 0 && c.strict {
		return fmt.Errorf("%w: %d of %d (-strict)", errTargetsMissed, missed, targets)
	}
	return nil
}

// repoRoot finds the module root by walking up from the working directory.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("working directory: %w", err)
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.mod in %s or above: run from the wirescope repository", dir)
		}
	}
}

// ---- the workloads ----

// A workload is one capture, how to record it, the tshark statistics that
// are its reference, and how to check that both tools read it whole.
type workload struct {
	key   string // -only's name
	title string // as printed: HTTP/1.1, HTTP/2
	unit  string // what a call of it is: "pairs", "streams"
	calls uint64 // GET/200 calls the capture holds
	about string // the capture, as printed under its table

	capture string
	// keyLog says the capture is TLS and its key log is capture + ".keys"
	// (the recorder writes it there): tshark and wirescope are given it.
	keyLog   bool
	recorder string
	// recordFlags are the recorder's arguments before its output file,
	// recordArgs those after it.
	recordFlags, recordArgs []string
	// recordTools are the programs recording needs, and installHint the
	// packages that hold them.
	recordTools []string
	installHint string
	// prepare, when set, readies a recording in the temporary directory
	// work and returns the directories to put first on the recorder's PATH.
	prepare func(work string) ([]string, error)

	tsharkArgs   []string // after -r F (and the key log's -o, see tsharkArgv)
	summaryProto string   // the protocol's name in wirescope's summary
	// handshakes, when not 0, is the TLS handshakes wirescope's summary
	// must count (one per connection).
	handshakes uint64

	verifyTshark    func(w *workload) error
	verifyWirescope func(w *workload, bin string, packets uint64) error
	// countCalls, when set, reads the calls the capture holds from the
	// recorder's JSON beside it (capture + ".json").
	countCalls func(capture string) (uint64, error)
}

// keys returns w's key log, "" for a capture without one.
func (w *workload) keys() string {
	if !w.keyLog {
		return ""
	}
	return w.capture + ".keys"
}

// tsharkArgv returns tshark's arguments after -r F: the key log, if any,
// then w.tsharkArgs.
func (w *workload) tsharkArgv() []string {
	if k := w.keys(); k != "" {
		return append([]string{"-o", "tls.keylog_file:" + k}, w.tsharkArgs...)
	}
	return w.tsharkArgs
}

// dissectArgv returns wirescope's arguments: dissect, the key log if any,
// the flags given, the capture.
func (w *workload) dissectArgv(flags ...string) []string {
	argv := []string{"dissect"}
	if k := w.keys(); k != "" {
		argv = append(argv, "--tls-keylog", k)
	}
	return append(append(argv, flags...), w.capture)
}

// shorten writes the capture and key log paths in a command line as F and
// K, as the table prints it.
func (w *workload) shorten(argv []string) string {
	out := make([]string, len(argv))
	for i, a := range argv {
		switch k := w.keys(); {
		case a == w.capture:
			a = "F"
		case k != "" && strings.Contains(a, k):
			a = strings.ReplaceAll(a, k, "K")
		}
		out[i] = a
	}
	return strings.Join(out, " ")
}

func workloads(c config, root string) []*workload {
	orRoot := func(path, def string) string {
		if path == "" {
			return filepath.Join(root, def)
		}
		return path
	}
	return []*workload{{
		key:   "http1",
		title: "HTTP/1.1",
		unit:  "pairs",
		calls: wantCalls,
		about: fmt.Sprintf("HTTP/1.1 GET/200 pairs on %d keep-alive connections (nginx, curl)", connections),

		capture:     orRoot(c.capture, defaultCapture),
		recorder:    c.recorder,
		recordArgs:  []string{strconv.Itoa(wantCalls / connections)},
		recordTools: []string{"bash", "curl", "tcpdump", "tshark", "nginx"},
		installHint: "tshark tcpdump nginx-light curl",
		prepare:     prepareNginx,

		tsharkArgs:      []string{"-q", "-z", "http,tree"},
		summaryProto:    "http",
		verifyTshark:    verifyTsharkHTTP1,
		verifyWirescope: verifyWirescopeSummary,
	}, {
		key:   "http2",
		title: "HTTP/2",
		unit:  "streams",
		calls: wantCalls,
		about: fmt.Sprintf("HTTP/2 GET/200 streams on %d h2c connections, %d in flight on each (nghttpd, h2load)", connections, h2Streams),

		capture:     orRoot(c.h2Capture, defaultH2Capture),
		recorder:    orRoot(c.h2Recorder, defaultH2Recorder),
		recordArgs:  []string{strconv.Itoa(wantCalls), strconv.Itoa(connections), strconv.Itoa(h2Streams)},
		recordTools: []string{"bash", "nghttpd", "h2load", "tcpdump", "tshark"},
		installHint: "nghttp2-server nghttp2-client tcpdump tshark",

		tsharkArgs:      []string{"-d", "tcp.port==" + strconv.Itoa(h2Port) + ",http2", "-q", "-z", "http2,tree"},
		summaryProto:    "http2",
		verifyTshark:    verifyTsharkHTTP2,
		verifyWirescope: verifyWirescopeHTTP2,
	}, {
		key:   "tls",
		title: "HTTPS",
		unit:  "pairs",
		calls: wantCalls,
		about: fmt.Sprintf("HTTP/1.1 GET/200 pairs on %d TLS 1.2 keep-alive connections, ECDHE-RSA-AES128-GCM-SHA256, decrypted with the key log (nginx, h2load --h1)", tlsConnections),

		capture:     orRoot(c.tlsCapture, defaultTLSCapture),
		keyLog:      true,
		recorder:    filepath.Join(root, defaultTLSRecorder),
		recordFlags: []string{"--bulk"},
		recordArgs:  []string{strconv.Itoa(wantCalls), strconv.Itoa(tlsConnections)},
		recordTools: []string{"bash", "nginx", "openssl", "curl", "h2load", "tcpdump", "tshark", "jq", "ss"},
		installHint: "nginx-light openssl curl nghttp2-client tcpdump tshark jq iproute2",

		tsharkArgs:      []string{"-q", "-z", "http,tree"},
		summaryProto:    "http",
		handshakes:      tlsConnections,
		verifyTshark:    verifyTsharkHTTPS,
		verifyWirescope: verifyWirescopeSummary,
	}, {
		key:   "redis",
		title: "Redis",
		unit:  "commands",
		about: "redis-benchmark -t set,get: SET and GET on 16 connections, no pipelining (redis-server 7)",

		capture:     orRoot("", ".cache/bench/redis-load.pcap"),
		recorder:    filepath.Join(root, "scripts/record-redis.sh"),
		recordFlags: []string{"--bulk"},
		recordArgs:  []string{"100000", "16"},
		recordTools: []string{"bash", "redis-server", "redis-cli", "redis-benchmark", "tcpdump", "tshark", "jq"},
		installHint: "redis-server tcpdump tshark jq",

		tsharkArgs:      []string{"-d", "tcp.port==16379,resp", "-q", "-z", "io,phs"},
		summaryProto:    "redis",
		verifyTshark:    verifyTsharkFrames("resp"),
		verifyWirescope: verifyWirescopeSummary,
		countCalls:      redisCalls,
	}, {
		key:   "postgres",
		title: "PostgreSQL",
		unit:  "calls",
		about: "pgbench -S -M extended: select-only transactions on 8 connections (PostgreSQL 15)",

		capture:     orRoot("", ".cache/bench/pg-load.pcap"),
		recorder:    filepath.Join(root, "scripts/record-postgres.sh"),
		recordFlags: []string{"--bulk"},
		recordArgs:  []string{"200000", "8"},
		recordTools: []string{"bash", "psql", "pgbench", "tcpdump", "tshark", "jq"},
		installHint: "postgresql postgresql-client tcpdump tshark jq",

		tsharkArgs:      []string{"-d", "tcp.port==15432,pgsql", "-q", "-z", "io,phs"},
		summaryProto:    "postgres",
		verifyTshark:    verifyTsharkFrames("pgsql"),
		verifyWirescope: verifyWirescopeSummary,
		countCalls:      postgresCalls,
	}, {
		key:   "mysql",
		title: "MySQL",
		unit:  "calls",
		about: "mysqlslap: one SELECT on 8 connections (MariaDB 10.11)",

		capture:     orRoot("", ".cache/bench/mysql-load.pcap"),
		recorder:    filepath.Join(root, "scripts/record-mysql.sh"),
		recordFlags: []string{"--bulk"},
		recordArgs:  []string{"200000", "8"},
		recordTools: []string{"bash", "mariadbd", "mariadb", "mysqlslap", "tcpdump", "tshark", "jq"},
		installHint: "mariadb-server mariadb-client tcpdump tshark jq",

		tsharkArgs:      []string{"-d", "tcp.port==13306,mysql", "-q", "-z", "io,phs"},
		summaryProto:    "mysql",
		verifyTshark:    verifyTsharkFrames("mysql"),
		verifyWirescope: verifyWirescopeSummary,
		countCalls:      mysqlCalls,
	}, {
		key:   "kafka",
		title: "Kafka",
		unit:  "requests",
		about: "a franz-go producer at full speed (acks=1) and a consumer reading the records back, against franz-go's kfake broker",

		capture:     orRoot("", ".cache/bench/kafka-load.pcap"),
		recorder:    filepath.Join(root, "scripts/record-kafka.sh"),
		recordFlags: []string{"--bulk"},
		recordArgs:  []string{"200000"},
		recordTools: []string{"bash", "go", "tcpdump", "tshark", "jq"},
		installHint: "tcpdump tshark jq",

		tsharkArgs:      []string{"-d", "tcp.port==19092,kafka", "-q", "-z", "io,phs"},
		summaryProto:    "kafka",
		verifyTshark:    verifyTsharkFrames("kafka"),
		verifyWirescope: verifyWirescopeSummary,
		countCalls:      kafkaCalls,
	}}
}

// readCounts reads the recorder's JSON beside a capture.
func readCounts(capture string, v any) error {
	b, err := os.ReadFile(capture + ".json")
	if err != nil {
		return fmt.Errorf("the recorder's counts: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("the recorder's counts %s.json: %w", capture, err)
	}
	return nil
}

// redisCalls: every command redis-benchmark sent ({"SET": n, "GET": n,
// "CONFIG GET": 2}).
func redisCalls(capture string) (uint64, error) {
	var counts map[string]uint64
	if err := readCounts(capture, &counts); err != nil {
		return 0, err
	}
	var n uint64
	for _, c := range counts {
		n += c
	}
	return n, nil
}

// postgresCalls: the Executes, pgbench's set-up queries and a startup per
// connection.
func postgresCalls(capture string) (uint64, error) {
	var c struct {
		Executes     uint64 `json:"executes"`
		SetupQueries uint64 `json:"setup_queries"`
		Connections  uint64 `json:"connections"`
	}
	if err := readCounts(capture, &c); err != nil {
		return 0, err
	}
	return c.Executes + c.SetupQueries + c.Connections, nil
}

// mysqlCalls: the queries, and a login and a COM_QUIT per connection.
func mysqlCalls(capture string) (uint64, error) {
	var c struct {
		Queries     uint64 `json:"queries"`
		Connections uint64 `json:"connections"`
	}
	if err := readCounts(capture, &c); err != nil {
		return 0, err
	}
	return c.Queries + 2*c.Connections, nil
}

// kafkaCalls: every request the broker's log has ({"requests":
// {"Produce": n, "Fetch": n, "Metadata": n …}}).
func kafkaCalls(capture string) (uint64, error) {
	var counts struct {
		Requests map[string]uint64 `json:"requests"`
	}
	if err := readCounts(capture, &counts); err != nil {
		return 0, err
	}
	var n uint64
	for _, c := range counts.Requests {
		n += c
	}
	if n == 0 {
		return 0, fmt.Errorf("%s.json counts no requests", capture)
	}
	return n, nil
}

// phsRow is a protocol's line of tshark's io,phs: "  resp   frames:400002 bytes:35900258".
var phsRow = regexp.MustCompile(`^\s*(\S+)\s+frames:(\d+)\s+bytes:(\d+)`)

// verifyTsharkFrames checks that tshark's protocol hierarchy decodes proto
// in at least as many frames as the capture holds calls: a capture tshark
// does not read as the protocol (a port it is not told of) would show it
// in none.
func verifyTsharkFrames(proto string) func(w *workload) error {
	return func(w *workload) error {
		var stdout, stderr bytes.Buffer
		cmd := exec.Command("tshark", append([]string{"-r", w.capture}, w.tsharkArgv()...)...)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("tshark %s: %w\n%s", strings.Join(w.tsharkArgv(), " "), err, stderr.Bytes())
		}
		var frames uint64
		for line := range strings.Lines(stdout.String()) {
			if m := phsRow.FindStringSubmatch(line); m != nil && m[1] == proto {
				n, _ := strconv.ParseUint(m[2], 10, 64)
				frames = max(frames, n)
			}
		}
		if frames < w.calls {
			return fmt.Errorf("tshark decodes %s in %d frames, fewer than the %d calls the capture holds:\n%s", proto, frames, w.calls, stdout.Bytes())
		}
		return nil
	}
}

// ---- the captures ----

// ensureCapture records w's capture unless it already exists (with its key
// log, for a TLS one) and rerecord is false.
func ensureCapture(w *workload, rerecord bool) error {
	if !rerecord {
		missing := ""
		for _, f := range []string{w.capture, w.keys()} {
			if f == "" {
				continue
			}
			_, err := os.Stat(f)
			if errors.Is(err, fs.ErrNotExist) {
				missing = f
				break
			}
			if err != nil {
				return fmt.Errorf("capture: %w", err)
			}
		}
		if missing == "" {
			return checkKeyLog(w)
		}
		fmt.Fprintf(os.Stderr, "benchcmp: %s is missing; recording the capture\n", missing)
	}
	if err := recordCapture(w); err != nil {
		return err
	}
	return checkKeyLog(w)
}

// checkKeyLog checks that w's key log, if any, can be read: tshark given
// one it cannot read decrypts nothing and says nothing of why.
func checkKeyLog(w *workload) error {
	k := w.keys()
	if k == "" {
		return nil
	}
	f, err := os.Open(k)
	if err != nil {
		return fmt.Errorf("key log: %w (it is mode 0600; recorded as root, it is given to the user sudo ran as, else chown it)", err)
	}
	return f.Close()
}

// recordCapture runs w's recorder into a temporary file next to its
// capture, checks with tshark that it holds w.calls 200 responses and only
// then moves it into place, so a failed recording leaves no capture behind.
func recordCapture(w *workload) error {
	if err := checkRecordPrereqs(w); err != nil {
		return err
	}
	path := w.capture
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("capture directory: %w", err)
	}
	work, err := os.MkdirTemp(filepath.Dir(path), "record-")
	if err != nil {
		return fmt.Errorf("recording directory: %w", err)
	}
	defer os.RemoveAll(work)
	var pathDirs []string
	if w.prepare != nil {
		if pathDirs, err = w.prepare(work); err != nil {
			return err
		}
	}

	tmp := filepath.Join(work, filepath.Base(path))
	argv := append(append(append([]string{w.recorder}, w.recordFlags...), tmp), w.recordArgs...)
	cmd := exec.Command("bash", argv...)
	cmd.Env = append(cmd.Environ(), "PATH="+strings.Join(append(pathDirs, os.Getenv("PATH")), string(os.PathListSeparator)))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	fmt.Fprintf(os.Stderr, "benchcmp: recording the %s capture with %s %s\n", w.title, w.recorder, strings.Join(append(slices.Clone(w.recordFlags), w.recordArgs...), " "))
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("recording with %s: %w", w.recorder, err)
	}
	recorded := *w
	recorded.capture = tmp
	if w.countCalls != nil {
		if recorded.calls, err = w.countCalls(tmp); err != nil {
			return err
		}
	}
	if err := w.verifyTshark(&recorded); err != nil {
		return fmt.Errorf("recorded capture is not what the benchmark needs: %w", err)
	}
	if err := os.Chmod(tmp, 0o644); err != nil {
		return fmt.Errorf("recorded capture: %w", err)
	}
	if w.keyLog {
		// The key log first: a capture in place has its key log. It stays
		// 0600 (wirescope refuses one others may read); under sudo it is
		// given to the user sudo ran as, who measures it later.
		keys := recorded.keys()
		if err := os.Chmod(keys, 0o600); err != nil {
			return fmt.Errorf("recorded key log: %w", err)
		}
		if err := chownToSudoUser(keys); err != nil {
			return err
		}
		if err := os.Rename(keys, w.keys()); err != nil {
			return fmt.Errorf("caching the key log: %w", err)
		}
	}
	if w.countCalls != nil {
		// The recorder's counts first: a capture in place has them.
		if err := os.Rename(tmp+".json", path+".json"); err != nil {
			return fmt.Errorf("caching the recorder's counts: %w", err)
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("caching the capture: %w", err)
	}
	fmt.Fprintf(os.Stderr, "benchcmp: cached the capture at %s\n", path)
	return nil
}

// chownToSudoUser gives path to the user sudo ran as (SUDO_UID, SUDO_GID),
// when there is one.
func chownToSudoUser(path string) error {
	uid, err1 := strconv.Atoi(os.Getenv("SUDO_UID"))
	gid, err2 := strconv.Atoi(os.Getenv("SUDO_GID"))
	if err1 != nil || err2 != nil || os.Geteuid() != 0 {
		return nil
	}
	if err := os.Chown(path, uid, gid); err != nil {
		return fmt.Errorf("giving %s to the sudo user: %w", path, err)
	}
	return nil
}

// lookTool finds a program on PATH or in /usr/sbin, which a non-root PATH
// may lack (nginx, nghttpd).
func lookTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	p := filepath.Join("/usr/sbin", name)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%s not found", name)
	}
	return p, nil
}

// checkRecordPrereqs names everything recording w needs and lacks, all at
// once.
func checkRecordPrereqs(w *workload) error {
	var missing, tools []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (tcpdump captures on lo; run as root)")
	}
	if _, err := os.Stat(w.recorder); err != nil {
		missing = append(missing, "the recorder script "+w.recorder)
	}
	for _, tool := range w.recordTools {
		if _, err := lookTool(tool); err != nil {
			tools = append(tools, tool)
		}
	}
	if len(tools) > 0 {
		missing = append(missing, strings.Join(tools, ", ")+
			" (scripts/bench.sh installs them: apt-get install -y "+w.installHint+")")
	}
	if len(missing) > 0 {
		return fmt.Errorf("cannot record the capture: missing %s", strings.Join(missing, "; "))
	}
	return nil
}

// nginxWrapper works around make-http-load.sh serving its page from a
// mktemp -d directory: that is mode 0700, nginx's worker runs as nobody, and
// every response would be a 403 instead of the page.
const nginxWrapper = `#!/bin/sh
# Written by benchcmp: open up the directory of nginx's -c config file and its
# www/ so that the worker (user nobody) can serve from them, then run nginx.
prev=
for arg in "$@"; do
	if [ "$prev" = -c ]; then
		dir=$(dirname "$arg")
		chmod 755 "$dir"
		if [ -d "$dir/www" ]; then chmod 755 "$dir/www"; fi
	fi
	prev=$arg
done
exec '%s' "$@"
`

// prepareNginx writes the nginx wrapper into work/bin, for the HTTP/1.1
// recorder to find first on its PATH.
func prepareNginx(work string) ([]string, error) {
	realNginx, err := lookTool("nginx")
	if err != nil {
		return nil, err
	}
	if strings.Contains(realNginx, "'") {
		return nil, fmt.Errorf("nginx path %q: cannot quote it for the wrapper", realNginx)
	}
	dir := filepath.Join(work, "bin")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("nginx wrapper: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "nginx"), fmt.Appendf(nil, nginxWrapper, realNginx), 0o755); err != nil {
		return nil, fmt.Errorf("nginx wrapper: %w", err)
	}
	return []string{dir}, nil
}

// countPcapPackets counts the records of a classic pcap file by walking its
// record headers, independently of both tools under test.
func countPcapPackets(path string) (uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("counting packets: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	var hdr [24]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, fmt.Errorf("counting packets in %s: file header: %w", path, err)
	}
	var order binary.ByteOrder
	switch binary.LittleEndian.Uint32(hdr[:4]) {
	case 0xa1b2c3d4, 0xa1b23c4d:
		order = binary.LittleEndian
	case 0xd4c3b2a1, 0x4d3cb2a1:
		order = binary.BigEndian
	default:
		return 0, fmt.Errorf("counting packets in %s: not a classic pcap file (magic %x)", path, hdr[:4])
	}
	var n uint64
	var rec [16]byte
	for {
		_, err := io.ReadFull(r, rec[:])
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return 0, fmt.Errorf("counting packets in %s: record %d header: %w", path, n+1, err)
		}
		size := int(order.Uint32(rec[8:12]))
		if _, err := r.Discard(size); err != nil {
			return 0, fmt.Errorf("counting packets in %s: record %d data: %w", path, n+1, err)
		}
		n++
	}
}

// ---- the tools ----

// buildWirescope builds wirescope as make build does: the lean build, which
// is what `wirescope dissect` runs, and the full one beside it.
func buildWirescope(root, dir string) (string, error) {
	bin := filepath.Join(dir, "wirescope")
	for _, args := range [][]string{{"build", "-o", filepath.Join(dir, "wirescope-full"), "./cmd/wirescope"},
		{"build", "-tags", "lean", "-o", bin, "./cmd/wirescope"}} {
		cmd := exec.Command("go", args...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
		}
	}
	return bin, nil
}

// treeRow matches a row of tshark's statistics tree: an item name (which may
// hold single spaces) and, after two or more spaces, its count.
var treeRow = regexp.MustCompile(`^\s*(\S.*?)\s{2,}(\d+)\s`)

// tsharkTree runs w's reference statistics (tshark -r F w.tsharkArgs...)
// over w's capture and returns the count of each item ("HTTP Response
// Packets", "200 OK", "HEADERS", ...).
func tsharkTree(w *workload) (map[string]uint64, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.Command("tshark", append([]string{"-r", w.capture}, w.tsharkArgv()...)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("tshark %s: %w\n%s", strings.Join(w.tsharkArgv(), " "), err, stderr.Bytes())
	}
	tree := make(map[string]uint64)
	for line := range strings.Lines(stdout.String()) {
		if m := treeRow.FindStringSubmatch(line); m != nil {
			n, _ := strconv.ParseUint(m[2], 10, 64)
			tree[m[1]] = n
		}
	}
	if len(tree) == 0 {
		return nil, fmt.Errorf("tshark %s printed no statistics:\n%s", strings.Join(w.tsharkArgs, " "), stdout.Bytes())
	}
	return tree, nil
}

// verifyTsharkHTTP1 checks that tshark sees w.calls responses, all 200.
func verifyTsharkHTTP1(w *workload) error {
	tree, err := tsharkTree(w)
	if err != nil {
		return err
	}
	resp, ok := tree["HTTP Response Packets"], tree["200 OK"]
	if resp != w.calls || ok != w.calls {
		return fmt.Errorf("tshark http,tree counts %d responses, %d of them 200 OK; want %d of each (4xx: %d, 5xx: %d)",
			resp, ok, w.calls, tree["4xx: Client Error"], tree["5xx: Server Error"])
	}
	return nil
}

// verifyTsharkHTTPS checks that tshark, decrypting with the key log, sees
// w.calls GET requests and w.calls responses, all 200: without the key
// (or with keys it cannot use) it would see no HTTP at all.
func verifyTsharkHTTPS(w *workload) error {
	tree, err := tsharkTree(w)
	if err != nil {
		return err
	}
	req, get := tree["HTTP Request Packets"], tree["GET"]
	resp, ok := tree["HTTP Response Packets"], tree["200 OK"]
	if req != w.calls || get != w.calls || resp != w.calls || ok != w.calls {
		return fmt.Errorf("tshark http,tree with the key log counts %d requests (%d GET) and %d responses (%d 200 OK); want %d of each",
			req, get, resp, ok, w.calls)
	}
	return nil
}

// A streamKey names an HTTP/2 stream in a capture: the client's end of its
// connection and its stream id.
type streamKey struct {
	client string // ip:port
	id     uint64
}

func (k streamKey) String() string { return fmt.Sprintf("%s stream %d", k.client, k.id) }

// verifyTsharkHTTP2 checks that tshark's http2,tree counts two HEADERS
// frames per stream, and that tshark's reading of every response HEADERS
// frame (tsharkStreams) gives w.calls streams, all 200.
func verifyTsharkHTTP2(w *workload) error {
	tree, err := tsharkTree(w)
	if err != nil {
		return err
	}
	if h := tree["HEADERS"]; h != 2*w.calls {
		return fmt.Errorf("tshark http2,tree counts %d HEADERS frames, want %d (a request's and a response's per stream; DATA: %d, RST_STREAM: %d, GOAWAY: %d)",
			h, 2*w.calls, tree["DATA"], tree["RST_STREAM"], tree["GOAWAY"])
	}
	streams, err := tsharkStreams(w.capture)
	if err != nil {
		return err
	}
	var ok uint64
	others := map[string]int{}
	for _, status := range streams {
		if status == "200" {
			ok++
		} else {
			others[status]++
		}
	}
	if uint64(len(streams)) != w.calls || ok != w.calls {
		return fmt.Errorf("tshark reads %d HTTP/2 responses, %d of them 200; want %d of each (others by status: %v)",
			len(streams), ok, w.calls, others)
	}
	return nil
}

// tsharkStreams reads the :status of every response in an HTTP/2 capture
// with tshark, by stream. A packet carries several frames, so tshark prints
// each field's values for all of them, in order: the frame types and stream
// ids pair up, and the statuses go with the HEADERS frames (type 1) in turn.
func tsharkStreams(path string) (map[streamKey]string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.Command("tshark", "-r", path, "-d", "tcp.port=="+strconv.Itoa(h2Port)+",http2",
		"-Y", "http2.headers.status", "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=,",
		"-e", "frame.number", "-e", "ip.dst", "-e", "tcp.dstport", "-e", "http2.type", "-e", "http2.streamid", "-e", "http2.headers.status")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("tshark -T fields http2: %w\n%s", err, stderr.Bytes())
	}
	return parseTsharkStreams(stdout.String())
}

// parseTsharkStreams reads tsharkStreams's fields: per packet its number,
// the destination address and port (the client's, for a response), then
// the frame types, stream ids and statuses of the frames in it.
func parseTsharkStreams(out string) (map[streamKey]string, error) {
	streams := map[streamKey]string{}
	for line := range strings.Lines(out) {
		f := strings.Split(strings.TrimRight(line, "\n"), "\t")
		if len(f) != 6 {
			return nil, fmt.Errorf("tshark -T fields http2: unexpected line %q", line)
		}
		types, ids, statuses := strings.Split(f[3], ","), strings.Split(f[4], ","), strings.Split(f[5], ",")
		if len(types) != len(ids) {
			return nil, fmt.Errorf("tshark -T fields http2: frame %s: %d frame types but %d stream ids", f[0], len(types), len(ids))
		}
		next := 0
		for i, typ := range types {
			if typ != "1" { // HEADERS
				continue
			}
			if next == len(statuses) {
				return nil, fmt.Errorf("tshark -T fields http2: frame %s: more HEADERS frames than statuses (%s)", f[0], f[5])
			}
			id, err := strconv.ParseUint(ids[i], 10, 32)
			if err != nil {
				return nil, fmt.Errorf("tshark -T fields http2: frame %s: stream id %q", f[0], ids[i])
			}
			k := streamKey{client: f[1] + ":" + f[2], id: id}
			if prev, dup := streams[k]; dup {
				return nil, fmt.Errorf("tshark -T fields http2: frame %s: a second response on %s (%s, then %s)", f[0], k, prev, statuses[next])
			}
			streams[k] = statuses[next]
			next++
		}
		if next != len(statuses) {
			return nil, fmt.Errorf("tshark -T fields http2: frame %s: more statuses (%s) than HEADERS frames", f[0], f[5])
		}
	}
	return streams, nil
}

// summary is what wirescope's stderr summary says about a dissection.
type summary struct {
	packets uint64
	calls   map[string]uint64 // by protocol
}

var (
	summaryHead  = regexp.MustCompile(`(?m)^wirescope: \d+ file\(s\), (\d+) packets`)
	summaryCalls = regexp.MustCompile(`(?m)^  calls: (.*)$`)
)

func parseSummary(stderr string) (summary, error) {
	head, calls := summaryHead.FindStringSubmatch(stderr), summaryCalls.FindStringSubmatch(stderr)
	if head == nil || calls == nil {
		return summary{}, fmt.Errorf("no summary in wirescope's stderr:\n%s", stderr)
	}
	s := summary{calls: map[string]uint64{}}
	s.packets, _ = strconv.ParseUint(head[1], 10, 64)
	for part := range strings.SplitSeq(calls[1], ", ") {
		if p, n, ok := strings.Cut(part, " "); ok {
			s.calls[p], _ = strconv.ParseUint(n, 10, 64)
		}
	}
	return s, nil
}

// checkSummary returns a check for a wirescope run's stderr: all packets read
// and w.calls calls of w's protocol matched.
func checkSummary(w *workload, packets uint64) func(stderr string) error {
	return func(stderr string) error {
		s, err := parseSummary(stderr)
		if err != nil {
			return err
		}
		if n := s.calls[w.summaryProto]; n != w.calls || s.packets != packets {
			return fmt.Errorf("summary shows %s %d over %d packets, want %s %d over %d packets:\n%s",
				w.summaryProto, n, s.packets, w.summaryProto, w.calls, packets, stderr)
		}
		if n := s.calls["tls"]; w.handshakes != 0 && n != w.handshakes {
			return fmt.Errorf("summary shows tls %d, want a handshake per connection, %d:\n%s", n, w.handshakes, stderr)
		}
		return nil
	}
}

// verifyWirescopeSummary checks wirescope dissect -q's summary: every packet
// read, w.calls calls (and w.handshakes TLS handshakes).
func verifyWirescopeSummary(w *workload, bin string, packets uint64) error {
	var stderr bytes.Buffer
	cmd := exec.Command(bin, w.dissectArgv("-q")...)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s dissect -q: %w\n%s", bin, err, stderr.Bytes())
	}
	return checkSummary(w, packets)(stderr.String())
}

// h2Call is what the HTTP/2 check reads of a JSONL call.
type h2Call struct {
	Proto  string          `json:"proto"`
	Status json.RawMessage `json:"status"` // a number, or a string when not numeric ("" without a response)
	Error  string          `json:"error"`
	Src    struct {
		IP   string `json:"ip"`
		Port int    `json:"port"`
	} `json:"src"`
	Extra struct {
		StreamID uint64 `json:"stream_id"`
	} `json:"extra"`
}

// verifyWirescopeHTTP2 checks the summary as verifyWirescopeSummary does,
// then reads every call wirescope dissect prints and compares the HTTP/2
// ones with tshark's reading, stream by stream: the same streams, each
// answered 200, with no error.
func verifyWirescopeHTTP2(w *workload, bin string, packets uint64) error {
	if err := verifyWirescopeSummary(w, bin, packets); err != nil {
		return err
	}
	var stderr bytes.Buffer
	cmd := exec.Command(bin, w.dissectArgv()...)
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("%s dissect: %w", bin, err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s dissect: %w", bin, err)
	}
	got := map[streamKey]string{}
	var problems []string
	sc := bufio.NewScanner(stdout)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var c h2Call
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			problems = append(problems, fmt.Sprintf("unreadable line %.100q: %v", sc.Bytes(), err))
			continue
		}
		if c.Proto != "http2" {
			continue
		}
		k := streamKey{client: c.Src.IP + ":" + strconv.Itoa(c.Src.Port), id: c.Extra.StreamID}
		status := strings.Trim(string(c.Status), `"`)
		if status == "" {
			status = "none"
		}
		if c.Error != "" {
			status += " (" + c.Error + ")"
		}
		if prev, dup := got[k]; dup {
			problems = append(problems, fmt.Sprintf("%s: two calls (%s, then %s)", k, prev, status))
		}
		got[k] = status
	}
	scanErr := sc.Err()
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("%s dissect: %w\n%s", bin, err, stderr.Bytes())
	}
	if scanErr != nil {
		return fmt.Errorf("%s dissect: reading its output: %w", bin, scanErr)
	}
	want, err := tsharkStreams(w.capture)
	if err != nil {
		return err
	}
	problems = append(problems, compareStreams(want, got)...)
	if len(problems) > 0 {
		const show = 20
		more := ""
		if len(problems) > show {
			more = fmt.Sprintf("\n  ... and %d more", len(problems)-show)
		}
		return fmt.Errorf("wirescope's HTTP/2 calls differ from tshark's streams in %d ways:\n  %s%s",
			len(problems), strings.Join(problems[:min(show, len(problems))], "\n  "), more)
	}
	return nil
}

// compareStreams lists, in stream order, the streams tshark and wirescope
// read differently: missing from either, or with another status.
func compareStreams(tshark, ws map[streamKey]string) []string {
	keys := make([]streamKey, 0, len(tshark)+len(ws))
	for k := range tshark {
		keys = append(keys, k)
	}
	for k := range ws {
		if _, ok := tshark[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b streamKey) int {
		if c := strings.Compare(a.client, b.client); c != 0 {
			return c
		}
		return int(a.id) - int(b.id)
	})
	var diffs []string
	for _, k := range keys {
		t, inT := tshark[k]
		g, inW := ws[k]
		switch {
		case !inW:
			diffs = append(diffs, fmt.Sprintf("%s: tshark %s, no wirescope call", k, t))
		case !inT:
			diffs = append(diffs, fmt.Sprintf("%s: wirescope %s, no response in tshark", k, g))
		case t != g:
			diffs = append(diffs, fmt.Sprintf("%s: tshark %s, wirescope %s", k, t, g))
		}
	}
	return diffs
}

// ---- measuring ----

// A command is one of the measured command lines.
type command struct {
	name   string // as printed in the table
	short  string // as printed in the progress lines
	argv   []string
	isBase bool                      // the reference the others are compared with (tshark)
	check  func(stderr string) error // run after every run; nil checks nothing
}

func benchCommands(w *workload, bin string, packets uint64) []command {
	tshark := append([]string{"tshark", "-r", w.capture}, w.tsharkArgv()...)
	jsonl := append([]string{bin}, w.dissectArgv()...)
	quiet := append([]string{bin}, w.dissectArgv("-q")...)
	return []command{
		{name: w.shorten(tshark), short: "tshark", argv: tshark, isBase: true},
		{name: "wirescope " + w.shorten(jsonl[1:]) + " (jsonl)", short: "wirescope-jsonl", argv: jsonl, check: checkSummary(w, packets)},
		{name: "wirescope " + w.shorten(quiet[1:]), short: "wirescope-q", argv: quiet, check: checkSummary(w, packets)},
	}
}

// A sample is what one run of a command cost.
type sample struct {
	wall   time.Duration
	cpu    time.Duration // user + system
	rssKiB int64         // peak resident set size
}

// runOnce runs c with stdout to /dev/null and measures it.
func runOnce(c command) (sample, error) {
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return sample{}, fmt.Errorf("%s: %w", c.name, err)
	}
	defer devnull.Close()
	var stderr bytes.Buffer
	cmd := exec.Command(c.argv[0], c.argv[1:]...)
	cmd.Stdout, cmd.Stderr = devnull, &stderr

	start := time.Now()
	err = cmd.Run()
	wall := time.Since(start)
	if err != nil {
		return sample{}, fmt.Errorf("%s: %w\n%s", c.name, err, stderr.Bytes())
	}
	if c.check != nil {
		if err := c.check(stderr.String()); err != nil {
			return sample{}, fmt.Errorf("%s: %w", c.name, err)
		}
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return sample{}, fmt.Errorf("%s: no rusage for the child", c.name)
	}
	ps := cmd.ProcessState
	return sample{wall: wall, cpu: ps.UserTime() + ps.SystemTime(), rssKiB: ru.Maxrss}, nil
}

// measure runs each command once to warm the page cache, then runs rounds
// of one run per command, rotating the order every round so that drift in the
// machine's speed hits every command alike. It returns the samples per command.
func measure(cmds []command, runs int, progress io.Writer, title string) ([][]sample, error) {
	for _, c := range cmds {
		if _, err := runOnce(c); err != nil {
			return nil, fmt.Errorf("warm-up: %w", err)
		}
	}
	samples := make([][]sample, len(cmds))
	for r := range runs {
		var line strings.Builder
		for k := range cmds {
			i := (r + k) % len(cmds)
			s, err := runOnce(cmds[i])
			if err != nil {
				return nil, fmt.Errorf("round %d: %w", r+1, err)
			}
			samples[i] = append(samples[i], s)
			fmt.Fprintf(&line, "  %s %s", cmds[i].short, ms(s.wall))
		}
		fmt.Fprintf(progress, "benchcmp: %s round %d/%d:%s\n", title, r+1, runs, line.String())
	}
	return samples, nil
}

// ---- reporting ----

type stats struct {
	medWall, minWall, medCPU time.Duration
	medRSS                   int64 // KiB
}

func summarize(ss []sample) stats {
	walls, cpus, rss := make([]time.Duration, len(ss)), make([]time.Duration, len(ss)), make([]int64, len(ss))
	for i, s := range ss {
		walls[i], cpus[i], rss[i] = s.wall, s.cpu, s.rssKiB
	}
	return stats{medWall: median(walls), minWall: slices.Min(walls), medCPU: median(cpus), medRSS: median(rss)}
}

// median of a non-empty slice; the mean of the middle two for an even length.
func median[T ~int64](xs []T) T {
	s := slices.Sorted(slices.Values(xs))
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// machine describes the machine and the tools, to read the numbers by.
type machine struct {
	nproc      int
	cpuModel   string
	loadBefore string
	loadAfter  string
	tshark     string
	goVersion  string
	wirescope  string
}

// input describes a workload's capture.
type input struct {
	capture string
	bytes   int64
	packets uint64
}

func gatherMachine(bin, root string, built bool) machine {
	return machine{
		nproc:      runtime.NumCPU(),
		cpuModel:   cpuModel(),
		loadBefore: loadAvg(),
		tshark:     tsharkVersion(),
		goVersion:  goVersion(),
		wirescope:  describeBinary(bin, root, built),
	}
}

func readInput(capture string) (input, error) {
	fi, err := os.Stat(capture)
	if err != nil {
		return input{}, fmt.Errorf("capture: %w", err)
	}
	packets, err := countPcapPackets(capture)
	if err != nil {
		return input{}, err
	}
	return input{capture: capture, bytes: fi.Size(), packets: packets}, nil
}

func tsharkVersion() string {
	out, err := exec.Command("tshark", "--version").Output()
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	first, _, _ := strings.Cut(string(out), "\n")
	return first
}

func goVersion() string {
	if out, err := exec.Command("go", "version").Output(); err == nil {
		return strings.TrimSpace(string(out))
	}
	return runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + " (benchcmp's own)"
}

// describeBinary names the wirescope binary with the Go version and VCS
// revision it was built from.
// Builds with -buildvcs=false carry no revision; for those, the repository's
// HEAD is shown when bin was built here.
func describeBinary(bin, root string, built bool) string {
	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		return bin
	}
	desc := bin + ", built with " + bi.GoVersion
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if rev != "" {
		desc += " at " + rev[:min(len(rev), 12)]
		if modified == "true" {
			desc += " (+ uncommitted changes)"
		}
	} else if built {
		if out, err := exec.Command("git", "-C", root, "rev-parse", "--short=12", "HEAD").Output(); err == nil {
			desc += " from the working tree at HEAD " + strings.TrimSpace(string(out))
		}
	}
	return desc
}

func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	for line := range strings.Lines(string(data)) {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(data))
	return strings.Join(f[:min(3, len(f))], " ")
}

// reportMachine prints the facts every workload's figures are read by.
func reportMachine(w io.Writer, m machine) {
	fmt.Fprintln(w, "\nmachine and tools")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  nproc\t%d (%s)\n", m.nproc, m.cpuModel)
	fmt.Fprintf(tw, "  load average\t%s before, %s after\n", m.loadBefore, m.loadAfter)
	fmt.Fprintf(tw, "  tshark\t%s\n", m.tshark)
	fmt.Fprintf(tw, "  go\t%s\n", m.goVersion)
	fmt.Fprintf(tw, "  wirescope\t%s\n", m.wirescope)
	tw.Flush()
}

// report prints a workload's capture, its per-command table and its
// verdicts, and returns how many of its targets were missed.
func report(w io.Writer, wl *workload, in input, cmds []command, samples [][]sample) (missed int) {
	runs := len(samples[0])
	fmt.Fprintf(w, "\n== %s\n", wl.title)
	fmt.Fprintf(w, "capture %s: %s bytes (%.1f MiB), %s packets, %s %s\n",
		in.capture, group(uint64(in.bytes)), float64(in.bytes)/(1<<20), group(in.packets), group(wl.calls), wl.about)
	if k := wl.keys(); k != "" {
		fmt.Fprintf(w, "key log %s\n", k)
	}

	st := make([]stats, len(cmds))
	base := 0
	for i := range cmds {
		st[i] = summarize(samples[i])
		if cmds[i].isBase {
			base = i
		}
	}

	fmt.Fprintf(w, "\nper command: %d runs each, order rotated every round, after one warm-up run each\n", runs)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "command\tmedian wall\tmin wall\tmedian CPU\tmedian peak RSS\t")
	for i, c := range cmds {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\n", c.name, ms(st[i].medWall), ms(st[i].minWall), ms(st[i].medCPU), mib(st[i].medRSS))
	}
	tw.Flush()

	fmt.Fprintf(w, "\nratios of medians (targets: tshark wall / wirescope wall >= %.0fx, wirescope RSS / tshark RSS <= %.2f)\n", minSpeedup, maxRSSRatio)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "wirescope mode\ttshark wall / wirescope wall\twirescope RSS / tshark RSS\ttshark CPU / wirescope CPU (info)")
	for i, c := range cmds {
		if i == base {
			continue
		}
		speedup := float64(st[base].medWall) / float64(st[i].medWall)
		rss := float64(st[i].medRSS) / float64(st[base].medRSS)
		cpu := float64(st[base].medCPU) / float64(max(st[i].medCPU, time.Millisecond))
		fmt.Fprintf(tw, "%s\t%5.1fx  %s\t%5.3f  %s\t%5.1fx\n", c.name,
			speedup, verdict(speedup >= minSpeedup, &missed), rss, verdict(rss <= maxRSSRatio, &missed), cpu)
	}
	tw.Flush()

	fmt.Fprintln(w, "\nwirescope throughput (at median wall)")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for i, c := range cmds {
		if i == base {
			continue
		}
		secs := st[i].medWall.Seconds()
		fmt.Fprintf(tw, "%s\t%s packets/s\t%s calls/s\t%.0f MiB/s\n", c.name,
			group(uint64(float64(in.packets)/secs)), group(uint64(float64(wl.calls)/secs)), float64(in.bytes)/(1<<20)/secs)
	}
	tw.Flush()

	if missed == 0 {
		fmt.Fprintf(w, "\n%s: all targets met\n", wl.title)
	} else {
		fmt.Fprintf(w, "\n%s: %d of %d targets missed\n", wl.title, missed, 2*(len(cmds)-1))
	}
	return missed
}

func verdict(ok bool, missed *int) string {
	if ok {
		return "PASS"
	}
	*missed++
	return "MISS"
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

func mib(kib int64) string { return fmt.Sprintf("%.1f MiB", float64(kib)/1024) }

// group renders n with thousands separators: 1234567 -> "1,234,567".
func group(n uint64) string {
	s := strconv.FormatUint(n, 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
