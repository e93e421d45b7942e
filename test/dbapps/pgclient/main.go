// Command pgclient is a pod's PostgreSQL client for the eval scenarios: it
// connects once with pgx from the pod's address and runs a plan of
// statements, one after another at a fixed pace, and writes what each got.
//
//	pgclient -server 127.0.7.10:5432 -pod 127.0.7.21 -user orders -database shop \
//	  -app orders -every 250ms -plan PLAN -out GOT
//
// The password is read from PGPASSWORD. The connection leaves from -pod
// (pgx's DialFunc with net.Dialer.LocalAddr), as a pod's would.
//
// PLAN has one statement a line, tab-separated:
//
//	phase  seq  mode  sql  args  expect
//
// mode is "query" (conn.Query, reading every row: pgx's default query exec
// mode prepares the statement once per connection and runs it with
// Bind/Execute, the extended protocol) or "exec" (conn.Exec without
// arguments: pgx sends a simple Query message). args are "-" or values
// separated by "|", each "i:123" (an int64) or "s:text". expect is "OK" or
// the SQLSTATE the statement must fail with. A line "phase BARRIER READY GO"
// makes the client create the file READY and wait until GO exists before it
// goes on (a long-running pod that keeps its connection across the
// scenario's event).
//
// GOT gets one line per statement: phase, seq, status (OK or the SQLSTATE),
// milliseconds as pgx saw them. A statement whose status differs from
// expect does not stop the client; the script compares GOT with PLAN. The
// exit status is non-zero when the connection cannot be made or breaks.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

type step struct {
	phase, seq, mode, sql, expect string
	args                          []any
	barrierReady, barrierGo       string
}

func main() {
	server := flag.String("server", "", "server address, host:port")
	pod := flag.String("pod", "", "the pod's address: the connection's source address")
	user := flag.String("user", "", "user")
	database := flag.String("database", "", "database")
	app := flag.String("app", "", "application_name")
	every := flag.Duration("every", 250*time.Millisecond, "pace: one statement every this long")
	planFile := flag.String("plan", "", "the plan")
	outFile := flag.String("out", "", "where to write what each statement got")
	flag.Parse()
	if *server == "" || *pod == "" || *user == "" || *database == "" || *planFile == "" || *outFile == "" {
		fmt.Fprintln(os.Stderr, "pgclient: -server, -pod, -user, -database, -plan and -out are required")
		os.Exit(2)
	}
	if err := run(*server, *pod, *user, *database, *app, *every, *planFile, *outFile); err != nil {
		fmt.Fprintln(os.Stderr, "pgclient:", err)
		os.Exit(1)
	}
}

func run(server, pod, user, database, app string, every time.Duration, planFile, outFile string) error {
	steps, err := readPlan(planFile)
	if err != nil {
		return err
	}
	host, port, err := net.SplitHostPort(server)
	if err != nil {
		return err
	}
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%s user=%s dbname=%s sslmode=disable connect_timeout=10", host, port, user, database))
	if err != nil {
		return err
	}
	cfg.Password = os.Getenv("PGPASSWORD")
	if app != "" {
		cfg.RuntimeParams["application_name"] = app
	}
	local, err := net.ResolveTCPAddr("tcp", net.JoinHostPort(pod, "0"))
	if err != nil {
		return err
	}
	dialer := &net.Dialer{LocalAddr: local, Timeout: 10 * time.Second, KeepAlive: -1}
	cfg.DialFunc = dialer.DialContext

	out, err := os.Create(outFile)
	if err != nil {
		return err
	}
	defer out.Close()
	w := bufio.NewWriter(out)
	defer w.Flush()

	ctx := context.Background()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connect from %s to %s: %w", pod, server, err)
	}
	defer conn.Close(ctx)

	next := time.Now()
	for _, s := range steps {
		if s.barrierReady != "" {
			if err := w.Flush(); err != nil {
				return err
			}
			if err := os.WriteFile(s.barrierReady, nil, 0o644); err != nil {
				return err
			}
			for {
				if _, err := os.Stat(s.barrierGo); err == nil {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			next = time.Now()
			continue
		}
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		}
		next = next.Add(every)
		start := time.Now()
		status, err := do(ctx, conn, s)
		if err != nil {
			return fmt.Errorf("phase %s statement %s (%s): %w", s.phase, s.seq, s.sql, err)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%.3f\n", s.phase, s.seq, status, float64(time.Since(start).Microseconds())/1000)
	}
	return w.Flush()
}

// do runs one statement: its status is OK or the server's SQLSTATE; an
// error is anything else (the connection broke).
func do(ctx context.Context, conn *pgx.Conn, s step) (string, error) {
	var err error
	switch s.mode {
	case "exec":
		_, err = conn.Exec(ctx, s.sql, s.args...)
	default:
		var rows pgx.Rows
		rows, err = conn.Query(ctx, s.sql, s.args...)
		if err == nil {
			for rows.Next() {
			}
			rows.Close()
			err = rows.Err()
		}
	}
	if err == nil {
		return "OK", nil
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) && !conn.IsClosed() {
		return pe.Code, nil
	}
	return "", err
}

func readPlan(name string) ([]step, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var steps []step
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		fs := strings.Split(sc.Text(), "\t")
		if len(fs) == 4 && fs[1] == "BARRIER" {
			steps = append(steps, step{phase: fs[0], barrierReady: fs[2], barrierGo: fs[3]})
			continue
		}
		if len(fs) != 6 {
			return nil, fmt.Errorf("%s:%d: %d fields, want 6", name, n, len(fs))
		}
		s := step{phase: fs[0], seq: fs[1], mode: fs[2], sql: fs[3], expect: fs[5]}
		if s.mode != "query" && s.mode != "exec" {
			return nil, fmt.Errorf("%s:%d: mode %q", name, n, s.mode)
		}
		if fs[4] != "-" {
			for _, a := range strings.Split(fs[4], "|") {
				switch {
				case strings.HasPrefix(a, "i:"):
					v, err := strconv.ParseInt(a[2:], 10, 64)
					if err != nil {
						return nil, fmt.Errorf("%s:%d: %w", name, n, err)
					}
					s.args = append(s.args, v)
				case strings.HasPrefix(a, "s:"):
					s.args = append(s.args, a[2:])
				default:
					return nil, fmt.Errorf("%s:%d: argument %q", name, n, a)
				}
			}
		}
		if s.mode == "exec" && len(s.args) > 0 {
			return nil, fmt.Errorf("%s:%d: exec takes no arguments", name, n)
		}
		steps = append(steps, s)
	}
	return steps, sc.Err()
}
