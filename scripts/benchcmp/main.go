// Command benchcmp compares wirescope's dissection speed and memory with
// tshark's on the same HTTP/1.1 load capture, in the same run.
//
// It measures three commands over one cached capture of 50,000 keep-alive GET
// pairs recorded from a real nginx:
//
//	tshark -r F -q -z http,tree   the reference: full HTTP dissection, statistics only
//	wirescope dissect F           the default: every call as JSONL, written to /dev/null
//	wirescope dissect -q F        the same dissection, summary only (like-for-like with tshark -q)
//
// For every run it records the wall time around the child, the child's CPU
// time (user+sys) and its peak resident set size (ru_maxrss from wait4, KiB on
// Linux). Before measuring anything it checks that both tools read the whole
// capture: tshark must count 50,000 HTTP responses and wirescope 50,000 HTTP
// calls over every packet in the file, because a ratio over a misparse is
// worthless.
//
// The machines this runs on are shared and noisy, so absolute times mean
// little and are never compared across runs. Instead the commands are measured
// in rounds, one run of each per round, with the order rotated every round, so
// slow drift (other tenants, frequency scaling, page-cache pressure) falls on
// all of them alike; one warm-up run of each comes first so that every
// measured run reads the capture from the page cache. The figures reported are
// medians, which ignore the odd run hit by a burst of noise, and the verdicts
// are ratios of medians from the same run: wirescope should be at least 20
// times faster than tshark in wall time and use at most a quarter of its peak
// RSS.
//
// Usage (from the repository root; scripts/bench.sh, behind make bench, runs it):
//
//	go run ./scripts/benchcmp [-runs 7] [-capture PATH] [-rerecord] [-bin PATH] [-strict]
//
// The capture defaults to .cache/bench/http-load.pcap and is recorded with
// the shared make-http-load.sh only when missing or when -rerecord is given;
// recording needs root, nginx, curl, tcpdump and tshark. A missed target is
// reported, not asserted: the exit status is 0 unless -strict is given.
package main

import (
	"bufio"
	"bytes"
	"debug/buildinfo"
	"encoding/binary"
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
	wantPairs   = 50000 // GET/200 pairs in the capture
	connections = 10    // keep-alive connections make-http-load.sh opens

	minSpeedup  = 20.0 // tshark wall / wirescope wall must be at least this
	maxRSSRatio = 0.25 // wirescope peak RSS / tshark peak RSS must be at most this

	defaultRecorder = "/work/shared/corpus/perf/make-http-load.sh"
	defaultCapture  = ".cache/bench/http-load.pcap" // relative to the repository root
)

var errTargetsMissed = errors.New("performance targets missed")

type config struct {
	runs     int
	capture  string
	recorder string
	bin      string
	rerecord bool
	strict   bool
}

func main() {
	var c config
	flag.IntVar(&c.runs, "runs", 7, "measured runs of each command (after one warm-up run each)")
	flag.StringVar(&c.capture, "capture", "", "capture to measure (default <repo>/"+defaultCapture+")")
	flag.StringVar(&c.recorder, "recorder", defaultRecorder, "script that records the capture")
	flag.StringVar(&c.bin, "bin", "", "wirescope binary to measure (default: build ./cmd/wirescope into a temp dir)")
	flag.BoolVar(&c.rerecord, "rerecord", false, "record the capture again even if it exists")
	flag.BoolVar(&c.strict, "strict", false, "exit with status 1 when a performance target is missed")
	flag.Parse()
	if flag.NArg() > 0 || c.runs < 1 {
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
	if c.capture == "" {
		c.capture = filepath.Join(root, defaultCapture)
	}
	if _, err := exec.LookPath("tshark"); err != nil {
		return errors.New("tshark not found on PATH (apt-get install tshark, or run scripts/bench.sh)")
	}
	if err := ensureCapture(c.capture, c.recorder, c.rerecord); err != nil {
		return err
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

	facts, err := gatherFacts(c.capture, c.bin, root, built)
	if err != nil {
		return err
	}
	if err := verifyTshark(c.capture); err != nil {
		return fmt.Errorf("tshark does not read %s as %d GET/200 pairs: %w", c.capture, wantPairs, err)
	}
	if err := verifyWirescope(c.bin, c.capture, facts.packets); err != nil {
		return fmt.Errorf("wirescope does not read %s fully: %w", c.capture, err)
	}

	cmds := benchCommands(c.bin, c.capture, facts.packets)
	fmt.Fprintf(os.Stderr, "benchcmp: measuring %d runs of %d commands (after one warm-up run each)\n", c.runs, len(cmds))
	samples, err := measure(cmds, c.runs, os.Stderr)
	if err != nil {
		return err
	}
	facts.loadAfter = loadAvg()

	missed := report(os.Stdout, facts, cmds, samples)
	if missed > 0 && c.strict {
		return fmt.Errorf("%w: %d of %d (-strict)", errTargetsMissed, missed, 2*(len(cmds)-1))
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

// ---- the capture ----

// ensureCapture records the capture at path unless it already exists and
// rerecord is false.
func ensureCapture(path, recorder string, rerecord bool) error {
	if !rerecord {
		_, err := os.Stat(path)
		if err == nil {
			return nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("capture: %w", err)
		}
		fmt.Fprintf(os.Stderr, "benchcmp: %s is missing; recording it\n", path)
	}
	return recordCapture(path, recorder)
}

// recordCapture runs the recorder into a temporary file next to path, checks
// with tshark that it holds wantPairs 200 responses and only then moves it to
// path, so a failed recording leaves no capture behind.
func recordCapture(path, recorder string) error {
	nginx, err := checkRecordPrereqs(recorder)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("capture directory: %w", err)
	}
	work, err := os.MkdirTemp(filepath.Dir(path), "record-")
	if err != nil {
		return fmt.Errorf("recording directory: %w", err)
	}
	defer os.RemoveAll(work)
	binDir := filepath.Join(work, "bin")
	if err := writeNginxWrapper(binDir, nginx); err != nil {
		return err
	}

	tmp := filepath.Join(work, filepath.Base(path))
	cmd := exec.Command("bash", recorder, tmp, strconv.Itoa(wantPairs/connections))
	cmd.Env = append(cmd.Environ(), "PATH="+binDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	fmt.Fprintf(os.Stderr, "benchcmp: recording %d GET pairs with %s\n", wantPairs, recorder)
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("recording with %s: %w", recorder, err)
	}
	if err := verifyTshark(tmp); err != nil {
		return fmt.Errorf("recorded capture is not what the benchmark needs: %w", err)
	}
	if err := os.Chmod(tmp, 0o644); err != nil {
		return fmt.Errorf("recorded capture: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("caching the capture: %w", err)
	}
	fmt.Fprintf(os.Stderr, "benchcmp: cached the capture at %s\n", path)
	return nil
}

// checkRecordPrereqs names everything recording needs and lacks, all at once,
// and returns the path of the real nginx.
func checkRecordPrereqs(recorder string) (nginx string, err error) {
	var missing, tools []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (tcpdump captures on lo; run as root)")
	}
	if _, err := os.Stat(recorder); err != nil {
		missing = append(missing, "the recorder script "+recorder)
	}
	for _, tool := range []string{"bash", "curl", "tcpdump", "tshark"} {
		if _, err := exec.LookPath(tool); err != nil {
			tools = append(tools, tool)
		}
	}
	nginx, err = exec.LookPath("nginx")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/nginx"); serr != nil {
			tools = append(tools, "nginx")
		}
		nginx = "/usr/sbin/nginx"
	}
	if len(tools) > 0 {
		missing = append(missing, strings.Join(tools, ", ")+
			" (scripts/bench.sh installs them: apt-get install -y tshark tcpdump nginx-light curl)")
	}
	if len(missing) > 0 {
		return "", fmt.Errorf("cannot record the capture: missing %s", strings.Join(missing, "; "))
	}
	return nginx, nil
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

func writeNginxWrapper(dir, realNginx string) error {
	if strings.Contains(realNginx, "'") {
		return fmt.Errorf("nginx path %q: cannot quote it for the wrapper", realNginx)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("nginx wrapper: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "nginx"), fmt.Appendf(nil, nginxWrapper, realNginx), 0o755); err != nil {
		return fmt.Errorf("nginx wrapper: %w", err)
	}
	return nil
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

func buildWirescope(root, dir string) (string, error) {
	bin := filepath.Join(dir, "wirescope")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/wirescope")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building wirescope: %w\n%s", err, out)
	}
	return bin, nil
}

// treeRow matches a row of tshark's statistics tree: an item name (which may
// hold single spaces) and, after two or more spaces, its count.
var treeRow = regexp.MustCompile(`^\s*(\S.*?)\s{2,}(\d+)\s`)

// tsharkHTTPTree runs tshark's http,tree statistics over path and returns the
// count of each item ("HTTP Response Packets", "200 OK", ...).
func tsharkHTTPTree(path string) (map[string]uint64, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.Command("tshark", "-r", path, "-q", "-z", "http,tree")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("tshark -z http,tree: %w\n%s", err, stderr.Bytes())
	}
	tree := make(map[string]uint64)
	for line := range strings.Lines(stdout.String()) {
		if m := treeRow.FindStringSubmatch(line); m != nil {
			n, _ := strconv.ParseUint(m[2], 10, 64)
			tree[m[1]] = n
		}
	}
	if len(tree) == 0 {
		return nil, fmt.Errorf("tshark -z http,tree printed no statistics:\n%s", stdout.Bytes())
	}
	return tree, nil
}

// verifyTshark checks that tshark sees wantPairs responses in path, all 200.
func verifyTshark(path string) error {
	tree, err := tsharkHTTPTree(path)
	if err != nil {
		return err
	}
	resp, ok := tree["HTTP Response Packets"], tree["200 OK"]
	if resp != wantPairs || ok != wantPairs {
		return fmt.Errorf("tshark http,tree counts %d responses, %d of them 200 OK; want %d of each (4xx: %d, 5xx: %d)",
			resp, ok, wantPairs, tree["4xx: Client Error"], tree["5xx: Server Error"])
	}
	return nil
}

// summary is what wirescope's stderr summary says about a dissection.
type summary struct {
	packets   uint64
	httpCalls uint64
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
	var s summary
	s.packets, _ = strconv.ParseUint(head[1], 10, 64)
	for part := range strings.SplitSeq(calls[1], ", ") {
		if n, ok := strings.CutPrefix(part, "http "); ok {
			s.httpCalls, _ = strconv.ParseUint(n, 10, 64)
		}
	}
	return s, nil
}

// checkSummary returns a check for a wirescope run's stderr: all packets read
// and wantPairs HTTP calls matched.
func checkSummary(packets uint64) func(stderr string) error {
	return func(stderr string) error {
		s, err := parseSummary(stderr)
		if err != nil {
			return err
		}
		if s.httpCalls != wantPairs || s.packets != packets {
			return fmt.Errorf("summary shows http %d over %d packets, want http %d over %d packets:\n%s",
				s.httpCalls, s.packets, wantPairs, packets, stderr)
		}
		return nil
	}
}

func verifyWirescope(bin, path string, packets uint64) error {
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "dissect", "-q", path)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s dissect -q: %w\n%s", bin, err, stderr.Bytes())
	}
	return checkSummary(packets)(stderr.String())
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

func benchCommands(bin, capture string, packets uint64) []command {
	return []command{
		{name: "tshark -r F -q -z http,tree", short: "tshark", argv: []string{"tshark", "-r", capture, "-q", "-z", "http,tree"}, isBase: true},
		{name: "wirescope dissect F (jsonl)", short: "wirescope-jsonl", argv: []string{bin, "dissect", capture}, check: checkSummary(packets)},
		{name: "wirescope dissect -q F", short: "wirescope-q", argv: []string{bin, "dissect", "-q", capture}, check: checkSummary(packets)},
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
func measure(cmds []command, runs int, progress io.Writer) ([][]sample, error) {
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
		fmt.Fprintf(progress, "benchcmp: round %d/%d:%s\n", r+1, runs, line.String())
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

// facts describe the machine and the capture, to read the numbers by.
type facts struct {
	nproc        int
	cpuModel     string
	loadBefore   string
	loadAfter    string
	tshark       string
	goVersion    string
	wirescope    string
	capture      string
	captureBytes int64
	packets      uint64
}

func gatherFacts(capture, bin, root string, built bool) (facts, error) {
	fi, err := os.Stat(capture)
	if err != nil {
		return facts{}, fmt.Errorf("capture: %w", err)
	}
	packets, err := countPcapPackets(capture)
	if err != nil {
		return facts{}, err
	}
	return facts{
		nproc:        runtime.NumCPU(),
		cpuModel:     cpuModel(),
		loadBefore:   loadAvg(),
		tshark:       tsharkVersion(),
		goVersion:    goVersion(),
		wirescope:    describeBinary(bin, root, built),
		capture:      capture,
		captureBytes: fi.Size(),
		packets:      packets,
	}, nil
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

// report prints the facts, the per-command table and the verdicts, and
// returns how many targets were missed.
func report(w io.Writer, f facts, cmds []command, samples [][]sample) (missed int) {
	runs := len(samples[0])
	fmt.Fprintln(w, "\nmachine and inputs")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  nproc\t%d (%s)\n", f.nproc, f.cpuModel)
	fmt.Fprintf(tw, "  load average\t%s before, %s after\n", f.loadBefore, f.loadAfter)
	fmt.Fprintf(tw, "  tshark\t%s\n", f.tshark)
	fmt.Fprintf(tw, "  go\t%s\n", f.goVersion)
	fmt.Fprintf(tw, "  wirescope\t%s\n", f.wirescope)
	fmt.Fprintf(tw, "  capture\t%s: %s bytes (%.1f MiB), %s packets, %s HTTP GET/200 pairs\n",
		f.capture, group(uint64(f.captureBytes)), float64(f.captureBytes)/(1<<20), group(f.packets), group(wantPairs))
	tw.Flush()

	st := make([]stats, len(cmds))
	base := 0
	for i := range cmds {
		st[i] = summarize(samples[i])
		if cmds[i].isBase {
			base = i
		}
	}

	fmt.Fprintf(w, "\nper command: %d runs each, order rotated every round, after one warm-up run each\n", runs)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
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
			group(uint64(float64(f.packets)/secs)), group(uint64(wantPairs/secs)), float64(f.captureBytes)/(1<<20)/secs)
	}
	tw.Flush()

	if missed == 0 {
		fmt.Fprintln(w, "\nall targets met")
	} else {
		fmt.Fprintf(w, "\n%d of %d targets missed\n", missed, 2*(len(cmds)-1))
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
