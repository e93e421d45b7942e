// Command hubscale measures how `wirescope hub` behaves as the number of
// node agents grows: 1, 10 and 50 agents by default, each serving its own
// segment store over the real agent API, read by the real hub binary and
// asked through mcp-go's client.
//
// For every node it writes a segment store of synthetic, well-formed
// HTTP/1.1 traffic spread over the 15 minutes before now (capturetest.Conn:
// handshakes, keep-alive requests and responses, one in twenty a 5xx, FIN),
// with its own client and server addresses (node i's clients are
// 10.(i/200).(i%200).x, its servers 10.(100+i/200).(i%200).x), so no call
// is seen on two nodes. The stores are written once, for the largest agent
// count, and each is served by agentapi.Handler on its own 127.0.0.1
// listener as node-NN; a run with N agents gives the hub the first N.
//
// Each of -runs rounds per agent count starts two hubs on empty data
// directories (the index is rebuilt from the agents each time):
//
//	hub A: capture_status once untimed (a fresh hub's first answer may
//	       wait for the o200k_base token encoding, which takes about 0.26 s
//	       to load as the hub starts; -first-after waits before it;
//	       reported apart),
//	       then timed: capture_status (every agent's stats and flows),
//	       summarize_traffic over the 15 minutes twice (cold: it dissects
//	       all of it; warm: from the index), search_calls for 5xx; then its
//	       peak RSS (VmHWM) and CPU time (user+sys)
//	hub B: capture_status untimed, then dissect of one minute in the
//	       middle (nothing dissected before)
//
// Every answer is checked before its time counts: capture_status names
// every node, summarize_traffic counts exactly N×calls-per-node calls,
// search_calls finds exactly the 5xx calls written, dissect finds the
// minute's calls (within the connections cut by its edges). The table
// gives medians over the rounds.
//
// Usage (from the repository root; scripts/bench.sh runs it):
//
//	go run ./test/hubscale [-agents 1,10,50] [-calls-per-node 2000] [-runs 3] [-bin PATH] [-keep] [-first-after 1s]
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/wirescope/wirescope/capture"
	"github.com/wirescope/wirescope/capture/agentapi"
	"github.com/wirescope/wirescope/capture/capturetest"
	"github.com/wirescope/wirescope/capture/segstore"
	"github.com/wirescope/wirescope/test/internal/benchproc"
)

const (
	span        = 15 * time.Minute
	reqsPerConn = 4                      // keep-alive requests per connection
	reqGap      = 40 * time.Millisecond  // from a response to the next request
	callTimeout = 10 * time.Minute       // one tool call at most
	hubStart    = 30 * time.Second       // the hub prints its URL within this
	hubStop     = 15 * time.Second       // and exits within this of SIGTERM
	searchQuery = "outcome:server_error" // what search_calls is asked
)

type config struct {
	agents   []int
	calls    int
	runs     int
	bin      string
	keep     bool
	logLevel string
	pause    time.Duration
}

func main() {
	var c config
	var agents string
	flag.StringVar(&agents, "agents", "1,10,50", "agent counts to measure, comma-separated")
	flag.IntVar(&c.calls, "calls-per-node", 2000, "HTTP calls each node's store holds (over 15 minutes)")
	flag.IntVar(&c.runs, "runs", 3, "rounds per agent count (medians are reported)")
	flag.StringVar(&c.bin, "bin", "", "wirescope binary (default: build ./cmd/wirescope into a temp dir)")
	flag.BoolVar(&c.keep, "keep", false, "keep the temp dir (stores, hub logs) and print its path")
	flag.StringVar(&c.logLevel, "hub-log-level", "info", "the hubs' --log-level (their logs go to the temp dir)")
	flag.DurationVar(&c.pause, "first-after", 0, "wait this long after a hub prints its URL before its first question (as a person would)")
	flag.Parse()
	for _, s := range strings.Split(agents, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fatalf("-agents: %q is not a positive number", s)
		}
		c.agents = append(c.agents, n)
	}
	if c.calls < reqsPerConn || c.runs < 1 {
		fatalf("-calls-per-node must be at least %d and -runs at least 1", reqsPerConn)
	}
	if err := run(c); err != nil {
		fatalf("%v", err)
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "hubscale: "+format+"\n", args...)
	os.Exit(1)
}

func run(c config) error {
	dir, err := os.MkdirTemp("", "hubscale-")
	if err != nil {
		return err
	}
	if c.keep {
		fmt.Fprintf(os.Stderr, "hubscale: working in %s (kept)\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	if c.bin == "" {
		if c.bin, err = benchproc.BuildWirescope(dir); err != nil {
			return err
		}
	}

	// One set of nodes, the largest count; smaller counts take the first.
	nodes := slices.Max(c.agents)
	end := time.Now().Truncate(time.Minute)
	start := end.Add(-span)
	agentToken, hubToken := benchproc.RandomToken(), benchproc.RandomToken()
	agentTokenFile, hubTokenFile := filepath.Join(dir, "agent-token"), filepath.Join(dir, "hub-token")
	if err := os.WriteFile(agentTokenFile, []byte(agentToken+"\n"), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(hubTokenFile, []byte(hubToken+"\n"), 0o600); err != nil {
		return err
	}
	t0 := time.Now()
	var urls []string
	var truth []nodeTruth
	for i := range nodes {
		name := fmt.Sprintf("node-%02d", i)
		st, nt, err := writeStore(filepath.Join(dir, "stores", name), i, c.calls, start)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		defer st.Close()
		h, err := agentapi.Handler(agentapi.Options{Store: st, Node: name, Token: agentToken,
			Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			return err
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(l)
		defer srv.Close()
		urls = append(urls, "http://"+l.Addr().String())
		truth = append(truth, nt)
	}
	var packets uint64
	for _, t := range truth {
		packets += t.packets
	}
	fmt.Fprintf(os.Stderr, "hubscale: %d stores written in %s: %d calls and %d packets each (%s to %s)\n",
		nodes, time.Since(t0).Round(time.Millisecond), c.calls, packets/uint64(nodes), stamp(start), stamp(end))

	minute := start.Add(span / 2).Truncate(time.Minute)
	var rows []row
	for _, n := range c.agents {
		w := want{nodes: n, from: start, to: end, minFrom: minute, minTo: minute.Add(time.Minute)}
		for _, t := range truth[:n] {
			w.calls += t.calls
			w.errors += t.errors
			w.minute += t.inMinute(w.minFrom, w.minTo)
		}
		var rs []round
		for r := range c.runs {
			h := hubRun{bin: c.bin, dir: filepath.Join(dir, fmt.Sprintf("hub-%d-%d", n, r)), urls: urls[:n],
				agentTokenFile: agentTokenFile, hubTokenFile: hubTokenFile, token: hubToken, logLevel: c.logLevel, pause: c.pause}
			rd, err := h.measure(w)
			if err != nil {
				return fmt.Errorf("%d agents, round %d: %w (hub logs in %s; -keep keeps them)", n, r+1, err, h.dir)
			}
			fmt.Fprintf(os.Stderr, "hubscale: %d agents, round %d: %s\n", n, r+1, rd)
			rs = append(rs, rd)
		}
		rows = append(rows, row{agents: n, calls: w.calls, r: medianRound(rs)})
	}
	printTable(os.Stdout, rows, c.runs)
	return nil
}

// ---- the stores ----

// nodeTruth is what a node's store holds: its calls, the 5xx among them,
// and when each call's request was sent.
type nodeTruth struct {
	calls, errors int
	packets       uint64
	requests      []time.Time
}

func (t nodeTruth) inMinute(from, to time.Time) int {
	n := 0
	for _, r := range t.requests {
		if !r.Before(from) && r.Before(to) {
			n++
		}
	}
	return n
}

// statuses cycle through these: one in twenty a 503, one in twenty a 500,
// one in ten a 404.
var statuses = [20]int{200, 200, 404, 200, 201, 200, 200, 503, 200, 200, 200, 200, 404, 200, 200, 200, 500, 200, 200, 200}

var paths = []string{"/api/v1/orders/%d", "/api/v1/cart/%d", "/api/v1/users/%d/profile", "/api/v1/catalog/items/%d", "/healthz"}

// writeStore writes node i's traffic into a new store in dir: calls HTTP
// calls on connections of reqsPerConn keep-alive requests, spread evenly
// over [start, start+span) and ending a few seconds before its end. The
// store's clock is the packet time, so segments rotate every 5 minutes of
// traffic as an agent's would.
func writeStore(dir string, i, calls int, start time.Time) (*segstore.Store, nodeTruth, error) {
	var now time.Time
	st, err := segstore.Open(dir, segstore.Options{Now: func() time.Time { return now }, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, nodeTruth{}, err
	}
	var t nodeTruth
	var werr error
	emit := func(p capture.Packet) {
		now = p.Timestamp
		if err := st.Write(&p, "eth0"); err != nil && werr == nil {
			werr = err
		}
		t.packets++
	}
	conns := (calls + reqsPerConn - 1) / reqsPerConn
	every := (span - 5*time.Second) / time.Duration(conns)
	body := []byte(`{"id":42,"items":[1,2,3],"ok":true}`)
	for k := range conns {
		client := fmt.Sprintf("10.%d.%d.%d:%d", i/200, i%200, 1+k%200, 20000+k%40000)
		server := fmt.Sprintf("10.%d.%d.%d:8080", 100+i/200, i%200, 1+k%8)
		// Offset each node a little so their packets interleave in time.
		c := capturetest.NewConn(client, server, start.Add(time.Duration(k)*every+time.Duration(i%64)*every/64), emit)
		c.Handshake()
		for j := 0; j < reqsPerConn && t.calls < calls; j++ {
			c.T = c.T.Add(reqGap)
			n := t.calls
			path := fmt.Sprintf(paths[n%len(paths)], n%97)
			if paths[n%len(paths)] == "/healthz" {
				path = "/healthz"
			}
			t.requests = append(t.requests, c.T)
			c.Send(true, fmt.Appendf(nil, "GET %s HTTP/1.1\r\nHost: shop.svc\r\nUser-Agent: hubscale\r\nAccept: */*\r\n\r\n", path))
			st := statuses[(n+i)%len(statuses)]
			latency := time.Duration(1+n%13) * time.Millisecond
			if st >= 500 {
				latency += 250 * time.Millisecond
				t.errors++
			}
			c.T = c.T.Add(latency)
			c.Send(false, fmt.Appendf(nil, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
				st, http.StatusText(st), len(body), body))
			t.calls++
		}
		c.T = c.T.Add(reqGap)
		c.Close()
	}
	if werr == nil {
		werr = st.Flush()
	}
	if werr != nil {
		st.Close()
		return nil, t, werr
	}
	return st, t, nil
}

// ---- the hub ----

// want is what the answers must say for N agents.
type want struct {
	nodes                 int
	calls, errors, minute int
	from, to              time.Time
	minFrom, minTo        time.Time
}

// round is one round's measurements.
type round struct {
	first, status, sumCold, sumWarm, dissect, search time.Duration
	rssMiB, cpu                                      float64
}

func (r round) String() string {
	return fmt.Sprintf("first answer %s, capture_status %s, summarize cold %s warm %s, dissect 1 min %s, search %s, peak RSS %.0f MiB, CPU %.1f s",
		ms(r.first), ms(r.status), ms(r.sumCold), ms(r.sumWarm), ms(r.dissect), ms(r.search), r.rssMiB, r.cpu)
}

type hubRun struct {
	bin, dir                     string
	urls                         []string
	agentTokenFile, hubTokenFile string
	token, logLevel              string
	pause                        time.Duration
}

// measure runs hub A (status, summaries, search, RSS, CPU) and then hub B
// (dissect of a minute), each on a data directory of its own.
func (h hubRun) measure(w want) (round, error) {
	var rd round
	ctx, cancel := context.WithTimeout(context.Background(), 4*callTimeout)
	defer cancel()

	a, err := h.start(ctx, "a")
	if err != nil {
		return rd, err
	}
	err = func() error {
		defer a.close()
		c, err := benchproc.Connect(ctx, a.url, h.token, "hubscale", mcp.LATEST_PROTOCOL_VERSION, callTimeout)
		if err != nil {
			return err
		}
		defer c.Close()

		time.Sleep(h.pause)
		// The first answer may pay once for the process (the o200k_base
		// token encoding, loaded as the hub starts); it is reported apart.
		if _, rd.first, err = timed(ctx, c, "capture_status", nil); err != nil {
			return err
		}
		text, d, err := timed(ctx, c, "capture_status", map[string]any{"max_tokens": 32000})
		if err != nil {
			return err
		}
		if err := checkStatus(text, w.nodes); err != nil {
			return err
		}
		rd.status = d

		sumArgs := map[string]any{"from": rfc(w.from), "to": rfc(w.to)}
		for i, p := range []*time.Duration{&rd.sumCold, &rd.sumWarm} {
			text, d, err := timed(ctx, c, "summarize_traffic", sumArgs)
			if err != nil {
				return err
			}
			if err := checkCount(text, `^(\S+) calls? in `, w.calls, "summarize_traffic"); err != nil {
				return fmt.Errorf("%w (call %d)", err, i+1)
			}
			*p = d
		}

		text, d, err = timed(ctx, c, "search_calls", map[string]any{"query": searchQuery, "from": rfc(w.from), "to": rfc(w.to)})
		if err != nil {
			return err
		}
		if err := checkCount(text, `^(\S+) calls? match`, w.errors, "search_calls "+searchQuery); err != nil {
			return err
		}
		rd.search = d

		if rd.rssMiB, err = peakRSS(a.cmd.Process.Pid); err != nil {
			return err
		}
		return nil
	}()
	if err != nil {
		return rd, err
	}
	if err := a.stop(); err != nil {
		return rd, err
	}
	ps := a.cmd.ProcessState
	rd.cpu = (ps.UserTime() + ps.SystemTime()).Seconds()

	b, err := h.start(ctx, "b")
	if err != nil {
		return rd, err
	}
	defer b.close()
	c, err := benchproc.Connect(ctx, b.url, h.token, "hubscale", mcp.LATEST_PROTOCOL_VERSION, callTimeout)
	if err != nil {
		return rd, err
	}
	defer c.Close()
	if _, _, err := timed(ctx, c, "capture_status", nil); err != nil {
		return rd, err
	}
	res, d, err := call(ctx, c, "dissect", map[string]any{"from": rfc(w.minFrom), "to": rfc(w.minTo)})
	if err != nil {
		return rd, err
	}
	var info struct {
		Dissected []string          `json:"dissected"`
		Calls     map[string]uint64 `json:"calls"`
	}
	raw, _ := json.Marshal(res.StructuredContent)
	if err := json.Unmarshal(raw, &info); err != nil || len(info.Dissected) == 0 {
		return rd, fmt.Errorf("dissect: no structured answer or nothing dissected: %s (%v)", raw, err)
	}
	// A connection cut by the minute's edges may lose the call its edge
	// splits; allow one per connection crossing each edge and node.
	got, slack := int(info.Calls["http"]), 2*w.nodes
	if got < w.minute-slack || got > w.minute+slack {
		return rd, fmt.Errorf("dissect of %s to %s: %d HTTP calls, want %d (±%d): %s", rfc(w.minFrom), rfc(w.minTo), got, w.minute, slack, raw)
	}
	rd.dissect = d
	return rd, b.stop()
}

type hub struct {
	cmd     *exec.Cmd
	url     string
	log     *os.File
	stopped bool
}

var hubURL = regexp.MustCompile(`^wirescope hub: MCP over streamable HTTP at (http://\S+/mcp)$`)

func (h hubRun) start(ctx context.Context, name string) (*hub, error) {
	data := filepath.Join(h.dir, name)
	if err := os.MkdirAll(data, 0o700); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(h.dir, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, h.bin, "hub", "--agents", strings.Join(h.urls, ","),
		"--agent-token-file", h.agentTokenFile, "--token-file", h.hubTokenFile,
		"--listen", "127.0.0.1:0", "--data-dir", filepath.Join(data, "data"), "--log-level", h.logLevel)
	cmd.Env = os.Environ()
	cmd.Stderr = logf
	cmd.WaitDelay = hubStop
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	hb := &hub{cmd: cmd, log: logf}
	first := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			first <- sc.Text()
		}
		close(first)
		io.Copy(io.Discard, stdout)
	}()
	select {
	case line := <-first:
		m := hubURL.FindStringSubmatch(line)
		if m == nil {
			hb.close()
			return nil, fmt.Errorf("hub's first line %q gives no URL (log: %s)", line, logf.Name())
		}
		hb.url = m[1]
		return hb, nil
	case <-time.After(hubStart):
		hb.close()
		return nil, fmt.Errorf("hub printed no URL within %s (log: %s)", hubStart, logf.Name())
	}
}

// stop sends SIGTERM and waits for the hub to exit.
func (h *hub) stop() error {
	if h.stopped {
		return nil
	}
	h.stopped = true
	defer h.log.Close()
	return benchproc.Stop(h.cmd, h.log.Name(), hubStop)
}

// close stops the hub, ignoring how it exited (for error paths).
func (h *hub) close() { h.stop() }

// call calls a tool and times it; an isError answer is an error.
func call(ctx context.Context, c *client.Client, name string, args map[string]any) (*mcp.CallToolResult, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	t := time.Now()
	res, err := c.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: name, Arguments: args}})
	d := time.Since(t)
	if err != nil {
		return nil, d, fmt.Errorf("%s: %w", name, err)
	}
	if res.IsError {
		return nil, d, fmt.Errorf("%s: isError: %s", name, resultText(res))
	}
	return res, d, nil
}

func timed(ctx context.Context, c *client.Client, name string, args map[string]any) (string, time.Duration, error) {
	res, d, err := call(ctx, c, name, args)
	if err != nil {
		return "", d, err
	}
	return resultText(res), d, nil
}

func resultText(res *mcp.CallToolResult) string {
	var text []string
	for _, ct := range res.Content {
		if tc, ok := ct.(mcp.TextContent); ok {
			text = append(text, tc.Text)
		}
	}
	return strings.Join(text, "\n")
}

// ---- the checks ----

// checkStatus wants every node named as a source with packets, none
// unreachable and nothing left out.
func checkStatus(text string, nodes int) error {
	if strings.Contains(text, "UNREACHABLE") || strings.Contains(text, "incomplete") {
		return fmt.Errorf("capture_status names an unreachable agent:\n%s", text)
	}
	if !strings.Contains(text, fmt.Sprintf("sources (%d):", nodes)) {
		return fmt.Errorf("capture_status does not list %d sources:\n%s", nodes, text)
	}
	for i := range nodes {
		name := fmt.Sprintf("node-%02d", i)
		if !regexp.MustCompile(`(?m)^  \S+ ` + name + `: .* packets?`).MatchString(text) {
			return fmt.Errorf("capture_status does not show %s with its packets:\n%s", name, text)
		}
	}
	return nil
}

// checkCount wants the first line's number (matched by re's group) to be n,
// and no line saying calls are missing.
func checkCount(text, re string, n int, what string) error {
	first, _, _ := strings.Cut(text, "\n")
	m := regexp.MustCompile(re).FindStringSubmatch(first)
	if m == nil {
		return fmt.Errorf("%s: no count in %q", what, first)
	}
	got, err := strconv.Atoi(strings.ReplaceAll(m[1], ",", ""))
	if err != nil || got != n {
		return fmt.Errorf("%s counts %s calls, want %d:\n%s", what, m[1], n, text)
	}
	if strings.Contains(text, "not dissected yet") || strings.Contains(text, "incomplete") {
		return fmt.Errorf("%s says calls are missing:\n%s", what, text)
	}
	return nil
}

// peakRSS reads VmHWM from /proc/PID/status, in MiB.
func peakRSS(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			if err != nil {
				return 0, fmt.Errorf("VmHWM %q: %w", v, err)
			}
			return kb / 1024, nil
		}
	}
	return 0, errors.New("no VmHWM in /proc/PID/status")
}

// ---- the table ----

type row struct {
	agents, calls int
	r             round
}

func medianRound(rs []round) round {
	md := func(get func(round) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = get(r)
		}
		slices.Sort(v)
		if len(v)%2 == 1 {
			return v[len(v)/2]
		}
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	dur := func(get func(round) time.Duration) time.Duration {
		return time.Duration(md(func(r round) float64 { return float64(get(r)) }))
	}
	return round{
		first:   dur(func(r round) time.Duration { return r.first }),
		status:  dur(func(r round) time.Duration { return r.status }),
		sumCold: dur(func(r round) time.Duration { return r.sumCold }),
		sumWarm: dur(func(r round) time.Duration { return r.sumWarm }),
		dissect: dur(func(r round) time.Duration { return r.dissect }),
		search:  dur(func(r round) time.Duration { return r.search }),
		rssMiB:  md(func(r round) float64 { return r.rssMiB }),
		cpu:     md(func(r round) float64 { return r.cpu }),
	}
}

func printTable(w io.Writer, rows []row, runs int) {
	fmt.Fprintf(w, "hub scaling: medians of %d rounds, a fresh hub each (%d cores)\n", runs, runtime.NumCPU())
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "agents\tcalls\tcapture_status ms\tsummarize cold ms\tsummarize warm ms\tdissect 1 min ms\tsearch ms\thub peak RSS MiB\thub CPU s\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\t%s\t%s\t%.0f\t%.1f\t\n", r.agents, r.calls, ms(r.r.status), ms(r.r.sumCold),
			ms(r.r.sumWarm), ms(r.r.dissect), ms(r.r.search), r.r.rssMiB, r.r.cpu)
	}
	tw.Flush()
	for _, r := range rows {
		fmt.Fprintf(w, "first answer of a fresh hub, %d agents (not in the table): %s ms\n", r.agents, ms(r.r.first))
	}
}

// ---- helpers ----

func ms(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }

func rfc(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func stamp(t time.Time) string { return t.UTC().Format("15:04:05Z") }
