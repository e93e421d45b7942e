// Command flowload holds many concurrent TCP connections open, for
// measuring what a capture agent costs with that many flows
// (scripts/bench-agent.sh runs it between two network namespaces).
//
//	flowload serve -listen 10.0.0.2:7000
//	flowload dial -to 10.0.0.2:7000 -conns 10000 -hold 20s -every 1s -size 64
//	flowload count -data-dir DIR -port 7000
//
// serve echoes every byte it reads on every connection it accepts, until
// SIGTERM or SIGINT. dial opens -conns connections (at most -parallel
// dials at a time), then keeps them all open for -hold: each one sends
// -size bytes every -every (each from its own offset in the period, so the
// load is spread) and reads the echo back; then it closes them all. It
// prints "flowload: open=N" to stderr when every connection is open and a
// summary line of key=value pairs to stdout at the end (held: how many
// lasted the whole hold), and exits non-zero when a connection could not
// be opened. count opens an agent's segment store (after the agent
// stopped) and prints the number of distinct TCP flows to or from -port in
// its flow indexes.
//
// Each side needs a file descriptor per connection: raise ulimit -n
// (Go raises the soft limit to the hard one by itself).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/wirescope/wirescope/capture/segstore"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "dial":
		err = dial(os.Args[2:])
	case "count":
		err = count(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "flowload:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: flowload serve -listen ADDR | dial -to ADDR [-conns N -hold D -every D -size B] | count -data-dir DIR [-port P]")
	os.Exit(2)
}

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	addr := fs.String("listen", "", "address to listen on (host:port)")
	fs.Parse(args)
	if *addr == "" {
		return errors.New("serve: -listen is required")
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	fmt.Fprintf(os.Stderr, "flowload: listening on %s\n", ln.Addr())
	accepted, warned := 0, false
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				fmt.Printf("accepted=%d\n", accepted)
				return nil
			}
			if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				if !warned {
					warned = true
					fmt.Fprintln(os.Stderr, "flowload: accept:", err, "(raise ulimit -n)")
				}
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return err
		}
		accepted++
		go echo(c)
	}
}

// echo writes back what it reads until the connection closes. It copies
// through a buffer of its own: io.Copy would splice through a pipe, two
// more file descriptors for every connection.
func echo(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 512)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func dial(args []string) error {
	fs := flag.NewFlagSet("dial", flag.ExitOnError)
	to := fs.String("to", "", "server address (host:port)")
	conns := fs.Int("conns", 10000, "connections to hold open at once")
	hold := fs.Duration("hold", 20*time.Second, "how long to keep them all open")
	every := fs.Duration("every", time.Second, "each connection sends a message this often")
	size := fs.Int("size", 64, "bytes of each message")
	parallel := fs.Int("parallel", 256, "dials in flight at once")
	timeout := fs.Duration("dial-timeout", 10*time.Second, "give up on a connection after this")
	fs.Parse(args)
	if *to == "" || *conns <= 0 || *size <= 0 || *every <= 0 || *parallel <= 0 {
		return errors.New("dial: -to is required; -conns, -size, -every and -parallel must be positive")
	}

	start := time.Now()
	open := make([]net.Conn, *conns)
	var failed atomic.Int64
	var firstErr error
	var errOnce sync.Once
	next := make(chan int)
	var wg sync.WaitGroup
	d := net.Dialer{Timeout: *timeout}
	for range *parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				c, err := d.Dial("tcp", *to)
				if err != nil {
					failed.Add(1)
					errOnce.Do(func() { firstErr = err })
					continue
				}
				open[i] = c
			}
		}()
	}
	for i := range *conns {
		next <- i
	}
	close(next)
	wg.Wait()
	dialTime := time.Since(start)
	established := *conns - int(failed.Load())
	fmt.Fprintf(os.Stderr, "flowload: open=%d failed=%d in %.1fs\n", established, failed.Load(), dialTime.Seconds())

	// Every connection talks until the hold is over.
	var sent, errs atomic.Int64
	var connErr error
	var connErrOnce sync.Once
	end := time.Now().Add(*hold)
	msg := make([]byte, *size)
	for i := range msg {
		msg[i] = 'a' + byte(i%26)
	}
	for _, c := range open {
		if c == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, len(msg))
			next := time.Now().Add(rand.N(*every))
			var err error
			for err == nil && next.Before(end) {
				time.Sleep(time.Until(next))
				next = next.Add(*every)
				c.SetDeadline(time.Now().Add(*every + 5*time.Second))
				if _, err = c.Write(msg); err == nil {
					if _, err = io.ReadFull(c, buf); err == nil {
						sent.Add(1)
					}
				}
			}
			if err != nil { // it dropped out before the hold was over
				errs.Add(1)
				connErrOnce.Do(func() { connErr = err })
			}
		}()
	}
	wg.Wait()
	for _, c := range open {
		if c != nil {
			c.Close()
		}
	}
	fmt.Printf("conns=%d established=%d failed=%d held=%d messages=%d dial_secs=%.2f secs=%.2f\n",
		*conns, established, failed.Load(), established-int(errs.Load()), sent.Load(), dialTime.Seconds(), time.Since(start).Seconds())
	if connErr != nil {
		fmt.Fprintf(os.Stderr, "flowload: %d connections dropped out, the first: %v\n", errs.Load(), connErr)
	}
	if firstErr != nil {
		return fmt.Errorf("%d connections failed, the first: %w", failed.Load(), firstErr)
	}
	return nil
}

func count(args []string) error {
	fs := flag.NewFlagSet("count", flag.ExitOnError)
	dir := fs.String("data-dir", "", "the agent's --data-dir (the agent must have stopped)")
	port := fs.Uint("port", 0, "count only flows to or from this port (0: every TCP flow)")
	fs.Parse(args)
	if *dir == "" {
		return errors.New("count: -data-dir is required")
	}
	st, err := segstore.Open(*dir, segstore.Options{})
	if err != nil {
		return err
	}
	defer st.Close()
	// A flow spanning several segments is in each one's index: count
	// it once, whichever side each says opened it.
	type key struct{ a, b netip.AddrPort }
	seen := map[key]bool{}
	rows := 0
	err = st.EachFlow(time.Time{}, time.Time{}, func(_ segstore.Segment, fl *segstore.Flow) bool {
		rows++
		if fl.Proto != layers.IPProtocolTCP || *port != 0 && fl.Src.Port() != uint16(*port) && fl.Dst.Port() != uint16(*port) {
			return true
		}
		k := key{fl.Src, fl.Dst}
		if k.b.Compare(k.a) < 0 {
			k.a, k.b = k.b, k.a
		}
		seen[k] = true
		return true
	})
	if err != nil {
		return err
	}
	fmt.Printf("flows=%d index_rows=%d segments=%d\n", len(seen), rows, len(st.Segments()))
	return nil
}
