// Command prepared drives MariaDB (or MySQL) through go-sql-driver/mysql with
// server-side prepared statements (interpolateParams off, the driver's
// default: COM_STMT_PREPARE, COM_STMT_EXECUTE, COM_STMT_CLOSE), one of them
// failing at execute (a duplicate key, 1062) and one at prepare (a missing
// table, 1146), then COM_PING on a second connection and COM_QUIT on both.
// It is the client of scripts/record-mysql.sh's "prepared" scenario.
//
// It prints one JSON object a line on stdout for every connection it opened
// and every command it made the driver send, in the order sent, with the
// outcome the driver reported: the recording's manifest is made of them.
//
//	{"conn":1,"event":"connect","user":"app","database":"shop","status":"ok"}
//	{"conn":1,"command":"COM_STMT_PREPARE","query":"…","status":"ok","params":3,"columns":0}
//	{"conn":1,"command":"COM_STMT_EXECUTE","query":"…","args":[10,"bolt",7],"status":"ok","results":[{"type":"ok","affected_rows":1}]}
//	{"conn":1,"command":"COM_STMT_EXECUTE","query":"…","args":[…],"status":"error","error":{"code":1062,"sqlstate":"23000","message":"…"}}
//	{"conn":1,"command":"COM_STMT_CLOSE","query":"…","status":"sent"}
//
// "sent": a command the server does not answer (COM_STMT_CLOSE, COM_QUIT).
// It exits 1 if any outcome differs from the one the scenario expects.
package main

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/go-sql-driver/mysql"
)

// result is one result the server sent for a command: a result set or an OK.
type result struct {
	Type         string `json:"type"` // "resultset" or "ok"
	Columns      *int   `json:"columns,omitempty"`
	Rows         *int   `json:"rows,omitempty"`
	AffectedRows *int64 `json:"affected_rows,omitempty"`
}

type sqlError struct {
	Code     uint16 `json:"code"`
	SQLState string `json:"sqlstate"`
	Message  string `json:"message"`
}

type line struct {
	Conn     int       `json:"conn"`
	Event    string    `json:"event,omitempty"`
	User     string    `json:"user,omitempty"`
	Database string    `json:"database,omitempty"`
	Command  string    `json:"command,omitempty"`
	Query    string    `json:"query,omitempty"`
	Args     []any     `json:"args,omitempty"`
	Status   string    `json:"status"` // ok, error, sent
	Params   *int      `json:"params,omitempty"`
	Columns  *int      `json:"columns,omitempty"`
	Results  []result  `json:"results,omitempty"`
	Error    *sqlError `json:"error,omitempty"`
}

var (
	out    = newEncoder()
	failed bool
)

func newEncoder() *json.Encoder {
	e := json.NewEncoder(os.Stdout)
	e.SetEscapeHTML(false)
	return e
}

func emit(l line) {
	if err := out.Encode(l); err != nil {
		fmt.Fprintln(os.Stderr, "prepared:", err)
		os.Exit(1)
	}
}

func intp(n int) *int { return &n }

// outcome fills l's status and error from err, and checks it against the
// error number wanted (0: success).
func outcome(l *line, err error, want uint16) {
	var me *mysql.MySQLError
	switch {
	case err == nil:
		l.Status = "ok"
	case errors.As(err, &me):
		l.Status = "error"
		l.Error = &sqlError{Code: me.Number, SQLState: string(me.SQLState[:]), Message: me.Message}
	default:
		fmt.Fprintf(os.Stderr, "prepared: %s %q: %v\n", l.Command, l.Query, err)
		os.Exit(1)
	}
	var got uint16
	if l.Error != nil {
		got = l.Error.Code
	}
	if got != want {
		fmt.Fprintf(os.Stderr, "prepared: %s %q: got error %d, want %d (%v)\n", l.Command, l.Query, got, want, err)
		failed = true
	}
}

// session is one connection of the pool, held for the commands made on it.
type session struct {
	n int
	c *sql.Conn
}

type stmt struct {
	s    *session
	text string
	st   *sql.Stmt
}

// prepare sends COM_STMT_PREPARE. The server's answer holds the counts of
// parameters and columns; database/sql exports neither, so the caller
// states them (the parameter count is checked by database/sql at every
// execute: it refuses a call whose arguments are not as many as the server
// said, before anything is sent).
func (s *session) prepare(ctx context.Context, query string, params, columns int, want uint16) *stmt {
	st, err := s.c.PrepareContext(ctx, query)
	l := line{Conn: s.n, Command: "COM_STMT_PREPARE", Query: query}
	outcome(&l, err, want)
	if err == nil {
		l.Params = intp(params)
		l.Columns = intp(columns)
	}
	emit(l)
	if err != nil {
		return nil
	}
	return &stmt{s: s, text: query, st: st}
}

// exec sends COM_STMT_EXECUTE for a statement that returns no rows.
func (st *stmt) exec(ctx context.Context, want uint16, args ...any) {
	res, err := st.st.ExecContext(ctx, args...)
	l := line{Conn: st.s.n, Command: "COM_STMT_EXECUTE", Query: st.text, Args: jsonArgs(args)}
	outcome(&l, err, want)
	if err == nil {
		n, err := res.RowsAffected()
		if err != nil {
			fmt.Fprintln(os.Stderr, "prepared:", err)
			os.Exit(1)
		}
		l.Results = []result{{Type: "ok", AffectedRows: &n}}
	}
	emit(l)
}

// query sends COM_STMT_EXECUTE for a statement returning a result set and
// reads all its rows.
func (st *stmt) query(ctx context.Context, want uint16, args ...any) {
	rows, err := st.st.QueryContext(ctx, args...)
	l := line{Conn: st.s.n, Command: "COM_STMT_EXECUTE", Query: st.text, Args: jsonArgs(args)}
	if err == nil {
		cols, cerr := rows.Columns()
		n := 0
		for rows.Next() {
			n++
		}
		err = errors.Join(cerr, rows.Err(), rows.Close())
		if err == nil {
			l.Results = []result{{Type: "resultset", Columns: intp(len(cols)), Rows: intp(n)}}
		}
	}
	outcome(&l, err, want)
	emit(l)
}

// close sends COM_STMT_CLOSE, which the server does not answer.
func (st *stmt) close() {
	err := st.st.Close()
	l := line{Conn: st.s.n, Command: "COM_STMT_CLOSE", Query: st.text}
	if err != nil {
		fmt.Fprintln(os.Stderr, "prepared: close:", err)
		os.Exit(1)
	}
	l.Status = "sent"
	emit(l)
}

// jsonArgs renders the arguments for the manifest: time.Time as RFC 3339,
// []byte as {"hex": …}.
func jsonArgs(args []any) []any {
	r := make([]any, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case time.Time:
			r[i] = v.Format(time.RFC3339Nano)
		case []byte:
			r[i] = map[string]string{"hex": hex.EncodeToString(v)}
		default:
			r[i] = v
		}
	}
	return r
}

func main() {
	addr := flag.String("addr", "127.0.0.43:13306", "server address")
	user := flag.String("user", "app", "user")
	password := flag.String("password", "", "password")
	dbname := flag.String("db", "shop", "database")
	flag.Parse()

	cfg := mysql.NewConfig()
	cfg.User = *user
	cfg.Passwd = *password
	cfg.Net = "tcp"
	cfg.Addr = *addr
	cfg.DBName = *dbname
	cfg.InterpolateParams = false // server-side prepared statements (the default, said again)
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "prepared:", err)
		os.Exit(1)
	}
	db := sql.OpenDB(connector)
	db.SetMaxIdleConns(2)
	db.SetMaxOpenConns(2)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	connect := func(n int) *session {
		c, err := db.Conn(ctx)
		l := line{Conn: n, Event: "connect", User: *user, Database: *dbname}
		outcome(&l, err, 0)
		emit(l)
		if err != nil {
			os.Exit(1)
		}
		return &session{n: n, c: c}
	}

	s1 := connect(1)
	ins := s1.prepare(ctx, "INSERT INTO items (id, name, qty) VALUES (?, ?, ?)", 3, 0, 0)
	ins.exec(ctx, 0, 10, "bolt", 7)
	ins.exec(ctx, 0, 11, "nut", 9)
	ins.exec(ctx, 1062, 10, "bolt again", 1) // duplicate key: fails at execute
	ins.close()

	sel := s1.prepare(ctx, "SELECT id, name, qty FROM items WHERE qty >= ? ORDER BY id", 1, 3, 0)
	sel.query(ctx, 0, 5)
	sel.query(ctx, 0, 1000) // no rows
	sel.close()

	s1.prepare(ctx, "SELECT id FROM nosuchtable WHERE id = ?", 1, 1, 1146) // fails at prepare

	upd := s1.prepare(ctx, "UPDATE items SET qty = qty + ? WHERE id = ?", 2, 0, 0)
	upd.exec(ctx, 0, 2, 11)
	upd.close()

	// Every parameter type the driver sends: integer, string, double,
	// NULL, bytes, a DATETIME.
	types := s1.prepare(ctx, "SELECT ? AS i, ? AS s, ? AS f, ? AS n, ? AS b, ? AS t", 6, 6, 0)
	types.query(ctx, 0, int64(-42), "héllo", 2.5, nil, []byte{0x00, 0xff, 'x'},
		time.Date(2024, 3, 5, 7, 8, 9, 123456000, time.UTC))
	types.close()

	del := s1.prepare(ctx, "DELETE FROM items WHERE id >= ?", 1, 0, 0)
	del.exec(ctx, 0, 10)
	del.close()

	// A second connection, opened while the first is held: COM_PING.
	s2 := connect(2)
	err = s2.c.PingContext(ctx)
	l := line{Conn: 2, Command: "COM_PING"}
	outcome(&l, err, 0)
	if err == nil {
		var zero int64
		l.Results = []result{{Type: "ok", AffectedRows: &zero}} // a ping's answer: an OK
	}
	emit(l)

	// Both back to the pool, then closed: COM_QUIT on each, the first
	// connection's first.
	for _, s := range []*session{s1, s2} {
		if err := s.c.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "prepared:", err)
			os.Exit(1)
		}
	}
	if err := db.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "prepared:", err)
		os.Exit(1)
	}
	emit(line{Conn: 1, Command: "COM_QUIT", Status: "sent"})
	emit(line{Conn: 2, Command: "COM_QUIT", Status: "sent"})
	if failed {
		os.Exit(1)
	}
}
