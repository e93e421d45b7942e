// Command natsclient runs one named scenario of NATS clients (nats.go)
// against an embedded nats-server (github.com/nats-io/nats-server/v2,
// started with server.NewServer on -listen, with the scenario's options),
// for scripts/record-nats.sh, and prints a JSON report of what was sent on
// stdout:
//
//	{"scenario", "connections": n (TCP connections dialled),
//	 "client_ops": {"CONNECT": n, "PUB": n, "HPUB": n, "SUB": n, "UNSUB": n,
//	   "PING": n, "PONG": n} (the operations the clients wrote, counted on
//	   their net.Conn by a reader of the protocol),
//	 "server_ops": {"INFO", "MSG", "HMSG", "+OK", "-ERR", "PING", "PONG"}
//	   (what the server wrote to them, counted alike),
//	 "errors": {"Authorization Violation": n, ...} (the -ERR texts read),
//	 "publishes": {"SUBJECT": n} (PUB and HPUB by subject),
//	 "requests": {"answered", "no_responders", "timed_out"} (the requester's
//	   results), "served": n (requests a responder answered),
//	 "ignored": n (requests a responder got and did not answer),
//	 "received": n (messages subscribers got),
//	 "varz": {"in_msgs", "out_msgs", "in_bytes", "out_bytes",
//	   "total_connections"} (the server's own counters at the end)}
//
// Scenarios (-scenario):
//
//	pubsub         three subscribers (two in queue group workers on orders.>,
//	               one on orders.new), 20 publishes to orders.new and 10 to
//	               orders.paid, then an UNSUB
//	request-reply  a responder on svc.echo (queue group echo) and a silent one
//	               on svc.silent; a requester: 10 requests to svc.echo
//	               (answered), 3 to svc.none (nobody subscribes: the server's
//	               503, "nats: no responders"), 2 to svc.silent (timed out)
//	headers        HPUB with headers to events.audit, received as HMSG; a
//	               request with headers answered with headers
//	verbose        a connection in verbose mode: every operation answered +OK
//	auth           user/password auth: alice publishes to orders.ok and to
//	               secret.x, which her permissions deny ("Permissions
//	               Violation for Publish to \"secret.x\"") and subscribes to
//	               secret.> (denied too); then a client with a wrong password
//	               ("Authorization Violation")
//	max-payload    the server's max_payload set to 4096: a 1000-byte publish
//	               (nats.go), then a raw connection publishing 5000 bytes
//	               ("Maximum Payload Violation"; nats.go itself refuses to)
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Secrets of the auth scenario.
const (
	user      = "alice"
	password  = "alice-s3cret-pass"
	wrongPass = "n0t-alices-pass"
)

type report struct {
	Scenario    string         `json:"scenario"`
	Connections int            `json:"connections"`
	ClientOps   map[string]int `json:"client_ops"`
	ServerOps   map[string]int `json:"server_ops"`
	Errors      map[string]int `json:"errors"`
	Publishes   map[string]int `json:"publishes"`
	Requests    struct {
		Answered     int `json:"answered"`
		NoResponders int `json:"no_responders"`
		TimedOut     int `json:"timed_out"`
	} `json:"requests"`
	Served   int64          `json:"served"`
	Ignored  int64          `json:"ignored"`
	Received int64          `json:"received"`
	Varz     map[string]any `json:"varz"`
}

// counter reads the protocol both ways on the clients' connections.
type counter struct {
	mu          sync.Mutex
	connections int
	client      map[string]int
	server      map[string]int
	errs        map[string]int
	publishes   map[string]int
}

func (c *counter) add(m map[string]int, k string) {
	c.mu.Lock()
	m[k]++
	c.mu.Unlock()
}

// stream reads one direction's operations: lines, and the payloads their
// sizes announce.
type stream struct {
	c      *counter
	client bool
	buf    []byte
	skip   int
}

func (s *stream) write(p []byte) {
	s.buf = append(s.buf, p...)
	for {
		if s.skip > 0 {
			n := min(s.skip, len(s.buf))
			s.buf, s.skip = s.buf[n:], s.skip-n
			if s.skip > 0 {
				return
			}
		}
		i := bytes.Index(s.buf, []byte("\r\n"))
		if i < 0 {
			return
		}
		line := string(s.buf[:i])
		s.buf = s.buf[i+2:]
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		op := strings.ToUpper(f[0])
		if s.client {
			s.c.add(s.c.client, op)
		} else {
			s.c.add(s.c.server, op)
		}
		switch op {
		case "PUB", "HPUB", "MSG", "HMSG":
			n, _ := strconv.Atoi(f[len(f)-1])
			s.skip = n + 2
			if s.client {
				s.c.add(s.c.publishes, f[1])
			}
		case "-ERR":
			s.c.add(s.c.errs, strings.Trim(strings.TrimSpace(strings.TrimPrefix(line, f[0])), "'"))
		}
	}
}

type countedConn struct {
	net.Conn
	mu   sync.Mutex
	r, w *stream
}

func (c *countedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.r.write(p[:n])
	c.mu.Unlock()
	return n, err
}

func (c *countedConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.mu.Lock()
	c.w.write(p[:n])
	c.mu.Unlock()
	return n, err
}

func (c *counter) Dial(network, address string) (net.Conn, error) {
	conn, err := net.Dial(network, address)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.connections++
	c.mu.Unlock()
	return &countedConn{Conn: conn, r: &stream{c: c}, w: &stream{c: c, client: true}}, nil
}

func main() {
	scenario := flag.String("scenario", "", "the scenario to run")
	listen := flag.String("listen", "127.0.0.48:14222", "the server's address")
	flag.Parse()
	host, portText, err := net.SplitHostPort(*listen)
	if err != nil {
		log.Fatal(err)
	}
	port, _ := strconv.Atoi(portText)
	opts := &server.Options{Host: host, Port: port, NoLog: true, NoSigs: true, ServerName: "wirescope-nats"}
	switch *scenario {
	case "auth":
		opts.Users = []*server.User{{Username: user, Password: password, Permissions: &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: []string{"orders.>", "secret.>"}, Deny: []string{"secret.>"}},
			Subscribe: &server.SubjectPermission{Allow: []string{">"}, Deny: []string{"secret.>"}},
		}}}
	case "max-payload":
		opts.MaxPayload = 4096
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		log.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		log.Fatal("nats-server is not ready")
	}
	c := &counter{client: map[string]int{}, server: map[string]int{}, errs: map[string]int{}, publishes: map[string]int{}}
	rep := &report{Scenario: *scenario}
	url := "nats://" + *listen
	connect := func(name string, extra ...nats.Option) *nats.Conn {
		o := append([]nats.Option{nats.Name(name), nats.SetCustomDialer(c), nats.NoReconnect(),
			nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {})}, extra...)
		nc, err := nats.Connect(url, o...)
		if err != nil {
			log.Fatalf("%s: connect: %v", name, err)
		}
		return nc
	}
	waitFor := func(what string, n *atomic.Int64, want int64) {
		for deadline := time.Now().Add(10 * time.Second); n.Load() < want; {
			if time.Now().After(deadline) {
				log.Fatalf("%s: %d of %d", what, n.Load(), want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	var received, served, ignored atomic.Int64
	switch *scenario {
	case "pubsub":
		subs := connect("subscribers")
		for _, s := range []struct{ subj, queue string }{{"orders.>", "workers"}, {"orders.>", "workers"}, {"orders.new", ""}} {
			if _, err := subs.QueueSubscribe(s.subj, s.queue, func(*nats.Msg) { received.Add(1) }); err != nil {
				log.Fatal(err)
			}
		}
		must(subs.Flush())
		pub := connect("publisher")
		for i := range 30 {
			subj := "orders.new"
			if i%3 == 2 {
				subj = "orders.paid"
			}
			must(pub.Publish(subj, fmt.Appendf(nil, `{"order":%d}`, i)))
		}
		must(pub.Flush())
		// orders.new: 20 to the queue group, 20 to the plain subscriber;
		// orders.paid: 10 to the queue group.
		waitFor("received", &received, 50)
		sub, err := subs.Subscribe("orders.cancelled", func(*nats.Msg) {})
		must(err)
		must(sub.Unsubscribe())
		must(subs.Flush())
		pub.Close()
		subs.Close()
	case "request-reply":
		resp := connect("responder")
		_, err := resp.QueueSubscribe("svc.echo", "echo", func(m *nats.Msg) {
			must(m.Respond(append([]byte("echo: "), m.Data...)))
			served.Add(1)
		})
		must(err)
		_, err = resp.Subscribe("svc.silent", func(*nats.Msg) { ignored.Add(1) })
		must(err)
		must(resp.Flush())
		req := connect("requester")
		for i := range 10 {
			m, err := req.Request("svc.echo", fmt.Appendf(nil, "ping %d", i), 5*time.Second)
			must(err)
			if !bytes.HasPrefix(m.Data, []byte("echo: ")) {
				log.Fatalf("reply %q", m.Data)
			}
			rep.Requests.Answered++
		}
		for range 3 {
			_, err := req.Request("svc.none", []byte("anyone?"), 5*time.Second)
			if !errors.Is(err, nats.ErrNoResponders) {
				log.Fatalf("svc.none: %v", err)
			}
			rep.Requests.NoResponders++
		}
		for range 2 {
			_, err := req.Request("svc.silent", []byte("hello?"), 300*time.Millisecond)
			if !errors.Is(err, nats.ErrTimeout) {
				log.Fatalf("svc.silent: %v", err)
			}
			rep.Requests.TimedOut++
		}
		waitFor("ignored", &ignored, 2)
		must(req.Flush())
		must(resp.Flush())
		req.Close()
		resp.Close()
	case "headers":
		subs := connect("audit-reader")
		_, err := subs.Subscribe("events.audit", func(m *nats.Msg) {
			if m.Header.Get("Trace-Id") == "" {
				log.Fatalf("no header: %v", m.Header)
			}
			received.Add(1)
		})
		must(err)
		_, err = subs.Subscribe("svc.headers", func(m *nats.Msg) {
			r := nats.NewMsg(m.Reply)
			r.Header.Set("Served-By", "audit-reader")
			r.Data = []byte("done")
			must(m.RespondMsg(r))
			served.Add(1)
		})
		must(err)
		must(subs.Flush())
		pub := connect("audit-writer")
		for i := range 5 {
			m := nats.NewMsg("events.audit")
			m.Header.Set("Trace-Id", fmt.Sprintf("trace-%d", i))
			m.Header.Add("X-Tag", "a")
			m.Header.Add("X-Tag", "b")
			m.Data = fmt.Appendf(nil, "audit event %d", i)
			must(pub.PublishMsg(m))
		}
		m := nats.NewMsg("svc.headers")
		m.Header.Set("Trace-Id", "req-1")
		m.Data = []byte("do it")
		r, err := pub.RequestMsg(m, 5*time.Second)
		must(err)
		if r.Header.Get("Served-By") != "audit-reader" {
			log.Fatalf("reply header %v", r.Header)
		}
		rep.Requests.Answered++
		must(pub.Flush())
		waitFor("received", &received, 5)
		pub.Close()
		subs.Close()
	case "verbose":
		nc := connect("verbose-client", func(o *nats.Options) error { o.Verbose = true; return nil })
		sub, err := nc.Subscribe("metrics.cpu", func(*nats.Msg) { received.Add(1) })
		must(err)
		for i := range 5 {
			must(nc.Publish("metrics.cpu", fmt.Appendf(nil, "%d", 40+i)))
		}
		must(nc.Flush())
		waitFor("received", &received, 5)
		must(sub.Unsubscribe())
		must(nc.Flush())
		nc.Close()
	case "auth":
		nc := connect("alice-app", nats.UserInfo(user, password))
		must(nc.Publish("orders.ok", []byte("allowed")))
		must(nc.Publish("secret.x", []byte("denied")))
		must(nc.Flush())
		_, err := nc.Subscribe("secret.>", func(*nats.Msg) {})
		must(err)
		must(nc.Flush())
		time.Sleep(100 * time.Millisecond) // the -ERRs reach the client
		nc.Close()
		_, err = nats.Connect(url, nats.Name("mallory-app"), nats.UserInfo(user, wrongPass), nats.SetCustomDialer(c), nats.NoReconnect())
		if !errors.Is(err, nats.ErrAuthorization) {
			log.Fatalf("a wrong password: %v", err)
		}
	case "max-payload":
		nc := connect("small-publisher")
		must(nc.Publish("uploads", bytes.Repeat([]byte("a"), 1000)))
		if err := nc.Publish("uploads", bytes.Repeat([]byte("b"), 5000)); !errors.Is(err, nats.ErrMaxPayload) {
			log.Fatalf("nats.go let a 5000-byte publish through: %v", err)
		}
		must(nc.Flush())
		nc.Close()
		rawMaxPayload(c, *listen)
	default:
		log.Fatalf("unknown scenario %q", *scenario)
	}
	// Let the server see every close before reading its counters.
	for deadline := time.Now().Add(5 * time.Second); srv.NumClients() > 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	v, err := srv.Varz(nil)
	must(err)
	rep.Varz = map[string]any{"in_msgs": v.InMsgs, "out_msgs": v.OutMsgs, "in_bytes": v.InBytes, "out_bytes": v.OutBytes,
		"total_connections": v.TotalConnections}
	srv.Shutdown()
	srv.WaitForShutdown()
	c.mu.Lock()
	rep.Connections, rep.ClientOps, rep.ServerOps, rep.Errors, rep.Publishes = c.connections, c.client, c.server, c.errs, c.publishes
	c.mu.Unlock()
	rep.Served, rep.Ignored, rep.Received = served.Load(), ignored.Load(), received.Load()
	must(json.NewEncoder(os.Stdout).Encode(rep))
}

// rawMaxPayload publishes 5000 bytes to a server whose max_payload is 4096
// over a connection of its own: CONNECT and PING, then the PUB; the server
// answers -ERR 'Maximum Payload Violation' and closes.
func rawMaxPayload(c *counter, addr string) {
	conn, err := c.Dial("tcp", addr)
	must(err)
	defer conn.Close()
	must(conn.SetDeadline(time.Now().Add(10 * time.Second)))
	r := bufio.NewReader(conn)
	// next reads the next line but the INFOs (the server sends one more
	// after the CONNECT).
	next := func() (string, error) {
		for {
			line, err := r.ReadString('\n')
			if err != nil || !strings.HasPrefix(line, "INFO ") {
				return line, err
			}
		}
	}
	line, err := r.ReadString('\n')
	must(err)
	if !strings.HasPrefix(line, "INFO ") {
		log.Fatalf("raw: %q", line)
	}
	_, err = conn.Write([]byte(`CONNECT {"verbose":false,"pedantic":false,"name":"raw-uploader","lang":"raw","version":"0","protocol":1}` + "\r\nPING\r\n"))
	must(err)
	if line, err = next(); err != nil || line != "PONG\r\n" {
		log.Fatalf("raw: %q %v", line, err)
	}
	_, err = conn.Write(append(append([]byte("PUB uploads 5000\r\n"), bytes.Repeat([]byte("c"), 5000)...), "\r\n"...))
	must(err)
	if line, err = next(); err != nil || line != "-ERR 'Maximum Payload Violation'\r\n" {
		log.Fatalf("raw: %q %v", line, err)
	}
	// The server closes the connection.
	if _, err := r.ReadByte(); err == nil {
		log.Fatal("raw: the server did not close")
	}
}

func must(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
