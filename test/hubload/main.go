// Command hubload measures how many search_calls and summarize_traffic
// answers `wirescope hub` gives per second to many MCP clients at once, and
// how long each takes.
//
// It writes a capture of synthetic, well-formed HTTP/1.1 traffic between the
// pods of six services over ten minutes (capturetest.Conn: handshakes,
// keep-alive requests and responses, FIN; statuses and latencies vary by
// service and route) and the cluster file naming those pods, builds the
// real binary and starts `wirescope hub --pcap … --cluster …` on them.
// A first client dissects the whole capture (the dissect tool) and asks each
// question of the mix once, keeping its answer. Then -clients mcp-go
// streamable-HTTP clients, each with its own session (protocol revision
// 2025-11-25, initialized), call the tools in a closed loop for -secs: each
// picks the next question of the mix (searches by outcome, status, path,
// service and latency, summaries by endpoint, service and status, whole and
// partial windows, relative and absolute, an address filter). Every answer
// must be the one the first client got for the same question: a tool
// error, a failed call or a different answer fails the run.
//
// The hub remembers answers; with -distinct N each question comes in N
// variants (its window ending 0.5 ms, 1 ms, … earlier), each answer checked
// against the variant's first, so that most answers are computed (as in a
// live capture, where relative windows count back from now).
//
// It prints, for each of -runs rounds (a fresh hub each) and their median:
//
//	clients=50 calls/s=… p50=…ms p99=…ms errors=0
//
// The target of issue 17 is 1,000 calls/s at 50 clients with p99 under
// 150 ms, with the clients on the same machine as the hub.
//
// With -pprof DIR the hub serves net/http/pprof (--pprof-addr) and hubload
// writes a CPU profile of the load (the -secs of the last round) and the
// hub's mutex and block profiles to DIR; read them with go tool pprof.
//
// Usage (from the repository root; scripts/bench.sh runs it):
//
//	go run ./test/hubload [-clients 50] [-secs 10] [-runs 3] [-calls 6000] [-distinct 1] [-bin PATH] [-keep] [-pprof DIR]
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/wirescope/wirescope/capture/capturetest"
	"github.com/wirescope/wirescope/test/internal/benchproc"
)

const (
	span        = 10 * time.Minute
	reqsPerConn = 4
	callTimeout = 2 * time.Minute
	hubStart    = 30 * time.Second
	hubStop     = 15 * time.Second
)

type config struct {
	clients, secs, runs, calls int
	distinct                   int
	bin, pprofDir              string
	keep                       bool
}

func main() {
	var c config
	flag.IntVar(&c.clients, "clients", 50, "MCP clients calling at once, each in its own session")
	flag.IntVar(&c.secs, "secs", 10, "seconds each round's clients call for")
	flag.IntVar(&c.runs, "runs", 3, "rounds, a fresh hub each (the median is reported)")
	flag.IntVar(&c.calls, "calls", 6000, "HTTP calls the capture holds (over 10 minutes)")
	flag.IntVar(&c.distinct, "distinct", 1, "variants of each question (windows ending 1 ms, 2 ms, … earlier, up to 100,000): more makes the hub compute answers rather than remember them")
	flag.StringVar(&c.bin, "bin", "", "wirescope binary (default: build ./cmd/wirescope into a temp dir)")
	flag.BoolVar(&c.keep, "keep", false, "keep the temp dir (capture, cluster file, hub logs) and print its path")
	flag.StringVar(&c.pprofDir, "pprof", "", "write the hub's CPU (during the last round's load), mutex and block profiles to this directory")
	flag.Parse()
	if c.clients < 1 || c.secs < 1 || c.runs < 1 || c.calls < 100 || c.distinct < 1 || c.distinct > 100_000 {
		fatalf("-clients, -secs and -runs must be at least 1, -calls at least 100, -distinct 1 to 100000")
	}
	if err := run(c); err != nil {
		fatalf("%v", err)
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "hubload: "+format+"\n", args...)
	os.Exit(1)
}

func run(c config) error {
	dir, err := os.MkdirTemp("", "hubload-")
	if err != nil {
		return err
	}
	if c.keep {
		fmt.Fprintf(os.Stderr, "hubload: working in %s (kept)\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	if c.bin == "" {
		if c.bin, err = benchproc.BuildWirescope(dir); err != nil {
			return err
		}
	}
	start := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	pcap, cluster := filepath.Join(dir, "capture.pcap"), filepath.Join(dir, "cluster.json")
	packets, err := writeCapture(pcap, start, c.calls)
	if err != nil {
		return err
	}
	if err := writeCluster(cluster); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "hubload: capture of %d calls (%d packets) over %s, %d services\n", c.calls, packets, span, len(services))
	token := benchproc.RandomToken()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		return err
	}
	mix := questions(start)
	var rounds []result
	for r := range c.runs {
		profile := ""
		if c.pprofDir != "" && r == c.runs-1 {
			profile = c.pprofDir
		}
		res, err := round(c, dir, r, pcap, cluster, tokenFile, token, start, mix, profile)
		if err != nil {
			return fmt.Errorf("round %d: %w", r+1, err)
		}
		fmt.Printf("round %d: %s\n", r+1, res)
		rounds = append(rounds, res)
	}
	slices.SortFunc(rounds, func(a, b result) int { return int(a.rate - b.rate) })
	med := rounds[len(rounds)/2]
	fmt.Printf("hub load: median of %d rounds (by calls/s), %d cores, clients on the same machine; target: ≥ 1000 calls/s, p99 < 150 ms\n",
		c.runs, runtime.NumCPU())
	fmt.Println(med)
	return nil
}

// ---- the capture ----

type service struct {
	name   string
	pods   []string // IPs
	routes []route
}

type route struct {
	method, path string // path may hold %d, filled with a small number
	// statuses cycle; latency is base plus a few ms, a 5xx slower.
	statuses []int
	base     time.Duration
}

var services = []service{
	{name: "frontend", pods: []string{"10.0.1.10", "10.0.1.11"}, routes: []route{
		{"GET", "/", []int{200}, 2 * time.Millisecond},
		{"GET", "/product/%d", []int{200, 200, 200, 404}, 8 * time.Millisecond}}},
	{name: "cart", pods: []string{"10.0.2.10", "10.0.2.11"}, routes: []route{
		{"GET", "/api/cart", []int{200}, 3 * time.Millisecond},
		{"POST", "/api/cart/items", []int{201, 201, 502, 201, 201}, 12 * time.Millisecond},
		{"DELETE", "/api/cart/lines/%d", []int{204, 404}, 4 * time.Millisecond}}},
	{name: "checkout", pods: []string{"10.0.3.10", "10.0.3.11"}, routes: []route{
		{"POST", "/api/checkout", []int{200, 200, 200, 500}, 140 * time.Millisecond}}},
	{name: "catalog", pods: []string{"10.0.4.10", "10.0.4.11"}, routes: []route{
		{"GET", "/api/catalog/items/%d", []int{200, 200, 200, 200, 200, 200, 404}, 5 * time.Millisecond},
		{"GET", "/api/catalog/search?q=shoe%d", []int{200}, 30 * time.Millisecond}}},
	{name: "users", pods: []string{"10.0.5.10", "10.0.5.11"}, routes: []route{
		{"GET", "/api/users/%d/profile", []int{200, 200, 401, 200, 200, 200, 200, 200, 200, 200}, 6 * time.Millisecond}}},
	{name: "payments", pods: []string{"10.0.6.10"}, routes: []route{
		{"POST", "/v1/charges", []int{200, 200, 200, 200, 200, 503}, 90 * time.Millisecond}}},
}

// callers says who calls whom: clients of a service are the pods of the
// services before the arrow; frontend is called from outside (10.9.0.x).
var callers = map[string][]string{
	"frontend": {"10.9.0.1", "10.9.0.2", "10.9.0.3"},
	"cart":     services[0].pods,
	"checkout": services[0].pods,
	"catalog":  services[0].pods,
	"users":    services[0].pods,
	"payments": services[2].pods,
}

// writeCapture writes calls HTTP calls, reqsPerConn per connection, spread
// over [start, start+span), to path.
func writeCapture(path string, start time.Time, calls int) (int, error) {
	f, err := capturetest.CreatePCAP(path)
	if err != nil {
		return 0, err
	}
	conns := (calls + reqsPerConn - 1) / reqsPerConn
	every := (span - 2*time.Second) / time.Duration(conns)
	n := 0
	for k := range conns {
		s := services[k%len(services)]
		from := callers[s.name][k%len(callers[s.name])]
		client := fmt.Sprintf("%s:%d", from, 20000+k%40000)
		server := s.pods[(k/len(services))%len(s.pods)] + ":8080"
		c := capturetest.NewConn(client, server, start.Add(time.Duration(k)*every), f.Emit)
		c.Handshake()
		for j := 0; j < reqsPerConn && n < calls; j++ {
			c.T = c.T.Add(3 * time.Millisecond)
			r := s.routes[(k+j)%len(s.routes)]
			p := r.path
			if strings.Contains(p, "%d") {
				p = fmt.Sprintf(p, (k*7+j)%50)
			}
			c.Send(true, fmt.Appendf(nil, "%s %s HTTP/1.1\r\nHost: %s.shop.svc\r\nUser-Agent: hubload\r\nAccept: */*\r\n\r\n", r.method, p, s.name))
			st := r.statuses[(k/len(services)+j)%len(r.statuses)]
			lat := r.base + time.Duration((k+j)%7)*time.Millisecond
			if st >= 500 {
				lat += 200 * time.Millisecond
			}
			c.T = c.T.Add(lat)
			body := `{"ok":true}`
			if st >= 400 {
				body = `{"error":"` + http.StatusText(st) + `"}`
			}
			c.Send(false, fmt.Appendf(nil, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
				st, http.StatusText(st), len(body), body))
			n++
		}
		c.T = c.T.Add(3 * time.Millisecond)
		c.Close()
	}
	return f.Packets, f.Close()
}

// writeCluster writes the cluster file naming the services' pods.
func writeCluster(path string) error {
	type svc struct {
		Name      string            `json:"name"`
		Namespace string            `json:"namespace"`
		ClusterIP string            `json:"clusterIP"`
		Selector  map[string]string `json:"selector"`
	}
	type pod struct {
		Name      string            `json:"name"`
		Namespace string            `json:"namespace"`
		Node      string            `json:"node"`
		IP        string            `json:"ip"`
		Labels    map[string]string `json:"labels"`
	}
	var out struct {
		Services []svc `json:"services"`
		Pods     []pod `json:"pods"`
	}
	for i, s := range services {
		out.Services = append(out.Services, svc{s.name, "shop", fmt.Sprintf("10.96.%d.10", i+1), map[string]string{"app": s.name}})
		for j, ip := range s.pods {
			out.Pods = append(out.Pods, pod{fmt.Sprintf("%s-5d8f9c7b6-%c%c%c%c%c", s.name, 'a'+j, 'k', 'x', 'q', '2'+i), "shop",
				fmt.Sprintf("node-%c", 'a'+(i+j)%3), ip, map[string]string{"app": s.name, "version": "1.0.0"}})
		}
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// ---- the questions ----

type question struct {
	tool string
	args map[string]any
}

func (q question) String() string {
	b, _ := json.Marshal(q.args)
	return q.tool + " " + string(b)
}

// questions is the mix the clients cycle through: what an assistant
// investigating the capture asks, searches and summaries about equally.
func questions(start time.Time) []question {
	at := func(d time.Duration) string { return start.Add(d).Format(time.RFC3339Nano) }
	base := []question{
		{"summarize_traffic", map[string]any{}},
		{"search_calls", map[string]any{"query": "outcome:server_error"}},
		{"summarize_traffic", map[string]any{"group_by": "service"}},
		{"search_calls", map[string]any{"query": "outcome:server_error", "service": "checkout"}},
		{"summarize_traffic", map[string]any{"from": "-5m"}},
		{"search_calls", map[string]any{"query": "status:>=500", "from": "-5m"}},
		{"summarize_traffic", map[string]any{"group_by": "status", "service": "cart"}},
		{"search_calls", map[string]any{"query": "path:/api/cart*", "limit": 10}},
		{"summarize_traffic", map[string]any{"from": at(75 * time.Second), "to": at(7*time.Minute + 40*time.Second)}},
		{"search_calls", map[string]any{"service": "payments", "from": at(150 * time.Second), "to": at(6 * time.Minute)}},
		{"summarize_traffic", map[string]any{"group_by": "endpoint", "protocol": "http", "from": at(3 * time.Minute), "to": at(4 * time.Minute)}},
		{"search_calls", map[string]any{"query": "+dst.service:checkout +latency_ms:>200"}},
		{"summarize_traffic", map[string]any{"service": "users", "from": "-2m"}},
		{"search_calls", map[string]any{}},
		{"summarize_traffic", map[string]any{"group_by": "pod", "ip": "10.0.2.10"}},
		{"search_calls", map[string]any{"query": "status:404", "limit": 50, "max_tokens": 1000}},
		{"summarize_traffic", map[string]any{"group_by": "workload", "namespace": "shop", "from": at(5*time.Minute + 30*time.Second)}},
		{"search_calls", map[string]any{"query": "outcome:client_error", "pod": "users-5d8f9c7b6-bkxq6", "from": "-8m", "to": "-1m"}},
	}
	return base
}

// variant is question q with its window's end moved v × 0.5 ms earlier (an
// absolute or relative "to", or the end of the data when it has none);
// variant 0 is q.
func variant(q question, v int, start time.Time) question {
	if v == 0 {
		return q
	}
	args := map[string]any{}
	for k, a := range q.args {
		args[k] = a
	}
	d := time.Duration(v) * 500 * time.Microsecond
	switch to, _ := args["to"].(string); {
	case to == "":
		args["to"] = start.Add(span - d).Format(time.RFC3339Nano)
	case strings.HasPrefix(to, "-"):
		rel, _ := time.ParseDuration(to[1:])
		args["to"] = "-" + (rel + d).String()
	default:
		t, _ := time.Parse(time.RFC3339Nano, to)
		args["to"] = t.Add(-d).Format(time.RFC3339Nano)
	}
	return question{q.tool, args}
}

// ---- a round ----

type result struct {
	clients  int
	calls    int
	errors   int
	secs     float64
	rate     float64
	p50, p99 time.Duration
	first    string // the first error
}

func (r result) String() string {
	s := fmt.Sprintf("clients=%d calls/s=%.0f p50=%.1fms p99=%.1fms calls=%d errors=%d", r.clients, r.rate,
		float64(r.p50.Microseconds())/1000, float64(r.p99.Microseconds())/1000, r.calls, r.errors)
	if r.first != "" {
		s += " first error: " + r.first
	}
	return s
}

func round(c config, dir string, r int, pcap, cluster, tokenFile, token string, start time.Time, mix []question, profile string) (result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(c.secs)*time.Second+10*time.Minute)
	defer cancel()
	h, err := startHub(ctx, c.bin, filepath.Join(dir, fmt.Sprintf("round-%d", r+1)), pcap, cluster, tokenFile, profile != "")
	if err != nil {
		return result{}, err
	}
	defer h.stop()

	// The reference answers: the whole capture dissected first, then each
	// question once.
	first, err := benchproc.Connect(ctx, h.url, token, "hubload", mcp.ProtocolVersion20251125, callTimeout)
	if err != nil {
		return result{}, err
	}
	if _, _, err := call(ctx, first, "dissect", map[string]any{}); err != nil {
		first.Close()
		return result{}, err
	}
	want := make([]string, len(mix))
	for i, q := range mix {
		if want[i], _, err = call(ctx, first, q.tool, q.args); err != nil {
			first.Close()
			return result{}, err
		}
		if strings.HasPrefix(want[i], "0 calls") {
			first.Close()
			return result{}, fmt.Errorf("%s finds nothing: the mix should ask about calls there are:\n%s", q, want[i])
		}
	}
	first.Close()

	clients := make([]*client.Client, c.clients)
	for i := range clients {
		if clients[i], err = benchproc.Connect(ctx, h.url, token, "hubload", mcp.ProtocolVersion20251125, callTimeout); err != nil {
			return result{}, fmt.Errorf("client %d: %w", i, err)
		}
		defer clients[i].Close()
	}

	var profErr error
	var profWG sync.WaitGroup
	if profile != "" {
		profWG.Add(1)
		go func() {
			defer profWG.Done()
			profErr = fetch(h.pprof+"/debug/pprof/profile?seconds="+fmt.Sprint(c.secs), filepath.Join(profile, "cpu.pprof"))
		}()
	}
	var (
		mu        sync.Mutex
		latencies []time.Duration
		errs      int
		firstErr  string
		stop      atomic.Bool
		wg        sync.WaitGroup
		variants  sync.Map // "question/variant" → the first answer
	)
	t0 := time.Now()
	for i, cl := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for k, n := i, 0; !stop.Load(); k, n = k+1, n+1 {
				q, v := mix[k%len(mix)], (n*c.clients+i)*7919%c.distinct
				q = variant(q, v, start)
				text, d, err := call(ctx, cl, q.tool, q.args)
				if err == nil {
					before := want[k%len(mix)]
					if v > 0 {
						// A variant's first answer is the one later
						// answers must give.
						w, _ := variants.LoadOrStore(fmt.Sprint(k%len(mix), "/", v), text)
						before = w.(string)
					}
					if text != before {
						err = fmt.Errorf("%s answered otherwise than before:\n%s\n--- before:\n%s", q, text, before)
					}
				}
				if err != nil {
					mu.Lock()
					if errs == 0 {
						firstErr = err.Error()
					}
					errs++
					mu.Unlock()
					continue
				}
				mine = append(mine, d)
			}
			mu.Lock()
			latencies = append(latencies, mine...)
			mu.Unlock()
		}()
	}
	time.Sleep(time.Duration(c.secs) * time.Second)
	stop.Store(true)
	wg.Wait()
	took := time.Since(t0)
	profWG.Wait()
	if profErr != nil {
		return result{}, profErr
	}
	if profile != "" {
		for _, p := range []string{"mutex", "block", "goroutine"} {
			if err := fetch(h.pprof+"/debug/pprof/"+p, filepath.Join(profile, p+".pprof")); err != nil {
				return result{}, err
			}
		}
	}
	slices.Sort(latencies)
	res := result{clients: c.clients, calls: len(latencies), errors: errs, secs: took.Seconds(), first: firstErr}
	res.rate = float64(len(latencies)) / took.Seconds()
	if len(latencies) > 0 {
		res.p50 = latencies[len(latencies)*50/100]
		res.p99 = latencies[min(len(latencies)-1, len(latencies)*99/100)]
	}
	if errs > 0 {
		return res, fmt.Errorf("%d calls failed: %s", errs, res)
	}
	return res, nil
}

// fetch writes what url answers to path.
func fetch(url, path string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("%s: %s: %s", url, resp.Status, b)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// ---- the hub ----

type hub struct {
	cmd        *exec.Cmd
	url, pprof string
	log        *os.File
	stopErr    error
	stopOnce   sync.Once
}

var hubURL = regexp.MustCompile(`^wirescope hub: MCP over streamable HTTP at (http://\S+/mcp)$`)

var pprofURL = regexp.MustCompile(`"pprof listening".*"url":"(http://[^"]+)"|msg="pprof listening".* url=(http://\S+)`)

func startHub(ctx context.Context, bin, dir, pcap, cluster, tokenFile string, pprof bool) (*hub, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "hub.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	args := []string{"hub", "--pcap", pcap, "--cluster", cluster, "--token-file", tokenFile, "--listen", "127.0.0.1:0",
		"--data-dir", filepath.Join(dir, "data"), "--max-conns-per-ip", "1024"}
	if pprof {
		args = append(args, "--pprof-addr", "127.0.0.1:0")
	}
	cmd := exec.CommandContext(ctx, bin, args...)
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
	h := &hub{cmd: cmd, log: logf}
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
			h.stop()
			return nil, fmt.Errorf("hub's first line %q gives no URL (log: %s)", line, logPath)
		}
		h.url = m[1]
	case <-time.After(hubStart):
		h.stop()
		return nil, fmt.Errorf("hub printed no URL within %s (log: %s)", hubStart, logPath)
	}
	if pprof {
		b, _ := os.ReadFile(logPath)
		m := pprofURL.FindSubmatch(b)
		if m == nil {
			h.stop()
			return nil, fmt.Errorf("the hub's log names no pprof address (log: %s)", logPath)
		}
		h.pprof = strings.TrimSuffix(string(m[1])+string(m[2]), "/debug/pprof/")
	}
	return h, nil
}

// stop sends SIGTERM and waits for the hub to exit.
func (h *hub) stop() error {
	h.stopOnce.Do(func() {
		defer h.log.Close()
		h.stopErr = benchproc.Stop(h.cmd, h.log.Name(), hubStop)
	})
	return h.stopErr
}

// call calls a tool and times it; an isError answer is an error.
func call(ctx context.Context, c *client.Client, name string, args map[string]any) (string, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	t := time.Now()
	res, err := c.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: name, Arguments: args}})
	d := time.Since(t)
	if err != nil {
		return "", d, fmt.Errorf("%s: %w", name, err)
	}
	var text []string
	for _, ct := range res.Content {
		if tc, ok := ct.(mcp.TextContent); ok {
			text = append(text, tc.Text)
		}
	}
	if res.IsError {
		return "", d, fmt.Errorf("%s %v: isError: %s", name, args, strings.Join(text, "\n"))
	}
	return strings.Join(text, "\n"), d, nil
}
