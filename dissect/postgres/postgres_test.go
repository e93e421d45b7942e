package postgres_test

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/wirescope/wirescope/dissect/postgres"
	"github.com/wirescope/wirescope/dissect/proto"
	"github.com/wirescope/wirescope/dissect/proto/prototest"
)

func init() { proto.Register(postgres.Protocol{}) }

// msg encodes a typed message.
func msg(typ byte, parts ...[]byte) []byte {
	body := bytes.Join(parts, nil)
	b := []byte{typ, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[1:], uint32(4+len(body)))
	return append(b, body...)
}

func cstr(s string) []byte { return append([]byte(s), 0) }
func i16(n int) []byte     { return binary.BigEndian.AppendUint16(nil, uint16(n)) }
func i32(n int) []byte     { return binary.BigEndian.AppendUint32(nil, uint32(n)) }

// startup encodes a StartupMessage with key/value pairs.
func startup(kv ...string) []byte {
	body := i32(3 << 16)
	for _, s := range kv {
		body = append(body, cstr(s)...)
	}
	body = append(body, 0)
	return append(i32(4+len(body)), body...)
}

func query(sql string) []byte { return msg('Q', cstr(sql)) }
func parse(name, sql string) []byte {
	return msg('P', cstr(name), cstr(sql), i16(0))
}
func bind(portal, stmt string) []byte {
	return msg('B', cstr(portal), cstr(stmt), i16(0), i16(0), i16(0))
}
func execute(portal string) []byte { return msg('E', cstr(portal), i32(0)) }
func describe(kind byte, name string) []byte {
	return msg('D', []byte{kind}, cstr(name))
}

var (
	sync         = msg('S')
	parseOK      = msg('1')
	bindOK       = msg('2')
	noData       = msg('n')
	authOK       = msg('R', i32(0))
	readyIdle    = msg('Z', []byte{'I'})
	readyFailed  = msg('Z', []byte{'E'})
	readyInTrans = msg('Z', []byte{'T'})
)

func complete(tag string) []byte { return msg('C', cstr(tag)) }
func rowDesc(cols ...string) []byte {
	b := i16(len(cols))
	for _, c := range cols {
		b = append(b, cstr(c)...)
		b = append(b, make([]byte, 18)...)
	}
	return msg('T', b)
}
func dataRow(vals ...string) []byte {
	b := i16(len(vals))
	for _, v := range vals {
		if v == "NULL" {
			b = append(b, i32(-1)...)
			continue
		}
		b = append(b, i32(len(v))...)
		b = append(b, v...)
	}
	return msg('D', b)
}
func pgError(code, message string) []byte {
	return msg('E', cstr("SERROR"), cstr("VERROR"), cstr("C"+code), cstr("M"+message), []byte{0})
}
func param(k, v string) []byte { return msg('S', cstr(k), cstr(v)) }

type session struct {
	t   *testing.T
	rec *prototest.Recorder
	p   proto.StreamParser
	ms  int
}

func newSession(t *testing.T, lim *proto.Limits) *session {
	if lim == nil {
		lim = &proto.Limits{}
	}
	rec := &prototest.Recorder{}
	return &session{t: t, rec: rec, p: postgres.Protocol{}.NewStream(rec, lim)}
}

func (s *session) at() time.Time {
	s.ms++
	return time.Unix(1700000000, 0).Add(time.Duration(s.ms) * time.Millisecond)
}

func (s *session) client(parts ...[]byte) *session {
	s.p.Feed(proto.Client, bytes.Join(parts, nil), s.at())
	return s
}

func (s *session) server(parts ...[]byte) *session {
	s.p.Feed(proto.Server, bytes.Join(parts, nil), s.at())
	return s
}

// login runs a trust startup.
func (s *session) login() *session {
	s.client(startup("user", "app", "database", "shop", "application_name", "billing"))
	s.server(authOK, param("server_version", "15.14"), msg('K', i32(4242), i32(7)), readyIdle)
	return s
}

func (s *session) end(r proto.EndReason) []*proto.Call {
	s.p.End(r, s.at())
	for i, c := range s.rec.Calls {
		prototest.CheckJSON(s.t, i, c)
	}
	return s.rec.Calls
}

type want struct {
	method, path, status, err string
	body                      string // the request body, when set
	oneWay                    bool
}

func check(t *testing.T, calls []*proto.Call, wants []want) {
	t.Helper()
	if len(calls) != len(wants) {
		for _, c := range calls {
			t.Logf("  %s %q %s err=%q extra=%v", c.Method, c.Path, c.Status, c.Error, c.Extra)
		}
		t.Fatalf("%d calls, want %d", len(calls), len(wants))
	}
	for i, w := range wants {
		c := calls[i]
		if c.Method != w.method || c.Path != w.path || c.Status != w.status || c.Error != w.err || c.OneWay != w.oneWay {
			t.Errorf("call %d: %s %q %q err=%q oneway=%v, want %s %q %q err=%q oneway=%v", i, c.Method, c.Path, c.Status, c.Error, c.OneWay,
				w.method, w.path, w.status, w.err, w.oneWay)
		}
		if w.body != "" && c.Request.Body != w.body {
			t.Errorf("call %d: body %q, want %q", i, c.Request.Body, w.body)
		}
	}
}

func TestSimpleQueries(t *testing.T) {
	s := newSession(t, nil).login()
	s.client(query("SELECT id, name FROM users WHERE id = 42 AND name = 'bob'"))
	s.server(rowDesc("id", "name"), dataRow("42", "bob"), complete("SELECT 1"), readyIdle)
	s.client(query("SELECT * FROM missing"))
	s.server(pgError("42P01", `relation "missing" does not exist`), readyIdle)
	s.client(query("BEGIN; INSERT INTO t VALUES (1), (2); COMMIT;"))
	s.server(complete("BEGIN"), complete("INSERT 0 2"), complete("COMMIT"), readyIdle)
	s.client(query(""))
	s.server(msg('I'), readyIdle)
	s.client(query("SELECT pg_sleep(10)"))
	s.server(pgError("57014", "canceling statement due to user request"), readyIdle)
	calls := s.end(proto.EndFIN)
	check(t, calls, []want{
		{method: "STARTUP", path: "shop", status: "OK", body: "user=app database=shop application_name=billing"},
		{method: "QUERY", path: "SELECT id, name FROM users WHERE id = ? AND name = ?", status: "OK", body: "SELECT id, name FROM users WHERE id = 42 AND name = 'bob'"},
		{method: "QUERY", path: "SELECT * FROM missing", status: "42P01"},
		{method: "QUERY", path: "BEGIN; INSERT INTO t VALUES (?), (?); COMMIT;", status: "OK"},
		{method: "QUERY", path: "", status: "OK"},
		{method: "QUERY", path: "SELECT pg_sleep(?)", status: "57014"},
	})
	st := calls[0]
	for k, v := range map[string]any{"user": "app", "database": "shop", "application_name": "billing", "server_version": "15.14", "backend_pid": int64(4242), "auth": "trust"} {
		if got := st.Extra.Get(k); got != v {
			t.Errorf("startup %s = %v, want %v", k, got, v)
		}
	}
	if calls[1].Extra.Get("rows") != int64(1) || calls[1].Response.Body != "id\tname\n42\tbob\n" || calls[1].Extra.Get("user") != "app" {
		t.Errorf("select: extra %v body %q", calls[1].Extra, calls[1].Response.Body)
	}
	if calls[2].Extra.Get("error") != `relation "missing" does not exist` || calls[2].Outcome() != proto.ClientError {
		t.Errorf("error: %v %v", calls[2].Extra, calls[2].Outcome())
	}
	if tags := calls[3].Extra.Get("tags"); len(tags.([]string)) != 3 || calls[3].Extra.Get("rows") != int64(2) {
		t.Errorf("multi-statement: %v", calls[3].Extra)
	}
	if calls[5].Outcome() != proto.ServerError {
		t.Errorf("57014: %v", calls[5].Outcome())
	}
}

func TestExtended(t *testing.T) {
	s := newSession(t, nil).login()
	// Unnamed statement, as most drivers send it.
	s.client(parse("", "SELECT abalance FROM pgbench_accounts WHERE aid = $1"), bind("", ""), describe('P', ""), execute(""), sync)
	s.server(parseOK, bindOK, rowDesc("abalance"), dataRow("0"), complete("SELECT 1"), readyIdle)
	// A named statement prepared once, executed twice.
	s.client(parse("P0_1", "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2"), describe('S', "P0_1"), sync)
	s.server(parseOK, msg('t', i16(2), i32(23), i32(23)), noData, readyIdle)
	s.client(bind("", "P0_1"), execute(""), sync)
	s.server(bindOK, complete("UPDATE 1"), readyInTrans)
	s.client(bind("", "P0_1"), execute(""), sync)
	s.server(bindOK, complete("UPDATE 1"), readyInTrans)
	// An execution error.
	s.client(parse("", "SELECT 1/0"), bind("", ""), execute(""), sync)
	s.server(parseOK, bindOK, pgError("22012", "division by zero"), readyIdle)
	// A parse error: the Execute after it fails with it.
	s.client(parse("", "SELEC 1"), bind("", ""), execute(""), sync)
	s.server(pgError("42601", `syntax error at or near "SELEC"`), readyIdle)
	// A prepared statement that does not parse, without an Execute.
	s.client(parse("bad", "SELECT FROM WHERE"), sync)
	s.server(pgError("42601", `syntax error at or near "WHERE"`), readyIdle)
	// Two executes in one batch, the first failing: the second is
	// skipped by the server.
	s.client(parse("", "INSERT INTO t VALUES (1)"), bind("", ""), execute(""), parse("", "SELECT 2"), bind("", ""), execute(""), sync)
	s.server(parseOK, bindOK, pgError("23505", "duplicate key value violates unique constraint"), readyFailed)
	calls := s.end(proto.EndFIN)
	check(t, calls, []want{
		{method: "STARTUP", path: "shop", status: "OK"},
		{method: "EXECUTE", path: "SELECT abalance FROM pgbench_accounts WHERE aid = $1", status: "OK"},
		{method: "EXECUTE", path: "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2", status: "OK"},
		{method: "EXECUTE", path: "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2", status: "OK"},
		{method: "EXECUTE", path: "SELECT ?/?", status: "22012"},
		{method: "EXECUTE", path: "SELEC ?", status: "42601"},
		{method: "PARSE", path: "SELECT FROM WHERE", status: "42601"},
		{method: "EXECUTE", path: "INSERT INTO t VALUES (?)", status: "23505"},
		{method: "EXECUTE", path: "SELECT ?", status: "23505"},
	})
	if calls[5].Extra.Get("failed_at") != "parse" || calls[8].Extra.Get("failed_at") != "execute" {
		t.Errorf("failed_at: %v / %v", calls[5].Extra, calls[8].Extra)
	}
	if calls[1].Extra.Get("rows") != int64(1) || calls[1].Response.Body != "abalance\n0\n" {
		t.Errorf("execute rows %v body %q", calls[1].Extra, calls[1].Response.Body)
	}
}

func TestCopyAndNotify(t *testing.T) {
	s := newSession(t, nil).login()
	s.client(query("COPY t FROM STDIN"))
	s.server(msg('G', []byte{0}, i16(1), i16(0)))
	s.client(msg('d', []byte("1\tone\n")), msg('d', []byte("2\ttwo\n")), msg('c'))
	s.server(complete("COPY 2"), readyIdle)
	s.client(query("COPY t TO STDOUT"))
	s.server(msg('H', []byte{0}, i16(1), i16(0)), msg('d', []byte("1\tone\n")), msg('c'), complete("COPY 1"), readyIdle)
	s.client(query("LISTEN jobs"))
	s.server(complete("LISTEN"), readyIdle)
	s.client(query("NOTIFY jobs, 'run 7'"))
	s.server(complete("NOTIFY"), msg('A', i32(4242), cstr("jobs"), cstr("run 7")), readyIdle)
	s.client(query("DO $$BEGIN RAISE NOTICE 'hi %', 1; END$$"))
	s.server(msg('N', cstr("SNOTICE"), cstr("C00000"), cstr("Mhi 1"), []byte{0}), complete("DO"), readyIdle)
	calls := s.end(proto.EndFIN)
	check(t, calls, []want{
		{method: "STARTUP", path: "shop", status: "OK"},
		{method: "QUERY", path: "COPY t FROM STDIN", status: "OK"},
		{method: "QUERY", path: "COPY t TO STDOUT", status: "OK"},
		{method: "QUERY", path: "LISTEN jobs", status: "OK"},
		{method: "NOTIFICATION", path: "jobs", oneWay: true},
		{method: "QUERY", path: "NOTIFY jobs, ?", status: "OK"},
		{method: "QUERY", path: "DO ?", status: "OK"},
	})
	if calls[1].Extra.Get("copy") != "in" || calls[1].Extra.Get("rows") != int64(2) || calls[1].Request.BodySize < 30 {
		t.Errorf("copy in: %v, %d bytes", calls[1].Extra, calls[1].Request.BodySize)
	}
	if calls[2].Extra.Get("copy") != "out" || calls[2].Extra.Get("rows") != int64(1) {
		t.Errorf("copy out: %v", calls[2].Extra)
	}
	if calls[4].Response.Body != "run 7" || calls[4].Outcome() != proto.OneWay {
		t.Errorf("notification %q %v", calls[4].Response.Body, calls[4].Outcome())
	}
	if n, _ := calls[6].Extra.Get("notices").([]string); len(n) != 1 || n[0] != "NOTICE: hi 1" {
		t.Errorf("notices %v", calls[6].Extra)
	}
}

// TestAuth: passwords are never read; a refused startup and a client
// that leaves during authentication are said so.
func TestAuth(t *testing.T) {
	s := newSession(t, nil)
	s.client(startup("user", "app", "database", "shop"))
	s.server(msg('R', i32(10), cstr("SCRAM-SHA-256"), []byte{0}))
	s.client(msg('p', cstr("SCRAM-SHA-256"), i32(32), []byte("n,,n=,r=s3cret-nonce-s3cret-pass")))
	s.server(msg('R', i32(11), []byte("r=...")))
	s.client(msg('p', []byte("c=biws,r=...,p=s3cret-proof")))
	s.server(msg('R', i32(12), []byte("v=...")), authOK, readyIdle)
	calls := s.end(proto.EndFIN)
	check(t, calls, []want{{method: "STARTUP", path: "shop", status: "OK"}})
	if calls[0].Extra.Get("auth") != "SASL SCRAM-SHA-256" {
		t.Errorf("auth %v", calls[0].Extra)
	}
	s = newSession(t, nil)
	s.client(startup("user", "app", "database", "shop"))
	s.server(msg('R', i32(5), []byte{1, 2, 3, 4}))
	s.client(msg('p', cstr("md5s3cret-pass")))
	s.server(msg('E', cstr("SFATAL"), cstr("VFATAL"), cstr("C28P01"), cstr(`Mpassword authentication failed for user "app"`), []byte{0}))
	calls = s.end(proto.EndFIN)
	check(t, calls, []want{{method: "STARTUP", path: "shop", status: "28P01"}})
	if calls[0].Extra.Get("auth") != "md5" || calls[0].Outcome() != proto.ClientError || calls[0].Extra.Get("severity") != "FATAL" {
		t.Errorf("refused startup: %v %v", calls[0].Extra, calls[0].Outcome())
	}
	// psql asks for the password after the server asked for it: the
	// first connection ends there.
	s3 := newSession(t, nil).login()
	s3.client(query("ALTER ROLE app PASSWORD 's3cret-new'")).server(complete("ALTER ROLE"), readyIdle)
	if c := s3.end(proto.EndFIN)[1]; c.Request.Body != "ALTER ROLE app PASSWORD '[redacted]'" || c.Path != "ALTER ROLE app PASSWORD ?" {
		t.Errorf("alter role: %q %q", c.Request.Body, c.Path)
	}
	s2 := newSession(t, nil)
	s2.client(startup("user", "app", "database", "shop"))
	s2.server(msg('R', i32(5), []byte{1, 2, 3, 4}))
	check(t, s2.end(proto.EndFIN), []want{{method: "STARTUP", path: "shop", err: "truncated: the client left during authentication (md5)"}})
	for _, c := range append(calls, s.rec.Calls...) {
		if bytes.Contains(c.AppendJSON(nil), []byte("s3cret")) {
			t.Errorf("a secret in %s", c.AppendJSON(nil))
		}
	}
}

// recorder that implements FlowNoter, as the engine's emitter does.
type noter struct {
	prototest.Recorder
	encrypted string
}

func (n *noter) Encrypted(s string)  { n.encrypted = s }
func (n *noter) SessionEnd(s string) {}

func TestSSLAndCancel(t *testing.T) {
	ssl := i32(8)
	ssl = append(ssl, i32(80877103)...)
	gss := append(i32(8), i32(80877104)...)
	// Refused: the startup goes on in clear.
	s := newSession(t, nil)
	s.client(gss)
	s.server([]byte{'N'})
	s.client(ssl)
	s.server([]byte{'N'})
	s.client(startup("user", "app"))
	s.server(authOK, readyIdle)
	calls := s.end(proto.EndFIN)
	check(t, calls, []want{{method: "STARTUP", path: "app", status: "OK"}})
	if calls[0].Extra.Get("ssl") != "refused by the server" {
		t.Errorf("ssl %v", calls[0].Extra)
	}
	// Accepted: the connection switches to TLS.
	s = newSession(t, nil)
	s.client(ssl)
	s.server([]byte{'S'})
	if len(s.rec.Upgrades) != 1 || s.rec.Upgrades[0] != proto.SwitchTLS {
		t.Errorf("upgrades %v", s.rec.Upgrades)
	}
	if len(s.end(proto.EndFIN)) != 0 {
		t.Errorf("calls before TLS: %v", s.rec.Calls)
	}
	// GSSAPI encryption: encrypted, not decryptable.
	n := &noter{}
	p := postgres.Protocol{}.NewStream(n, &proto.Limits{})
	at := time.Unix(1e9, 0)
	p.Feed(proto.Client, gss, at)
	p.Feed(proto.Server, []byte{'G'}, at)
	p.Feed(proto.Client, []byte{0x60, 0x82, 1, 2, 3}, at)
	p.End(proto.EndFIN, at)
	if n.encrypted != "not decryptable: GSSAPI encryption" || len(n.Calls) != 0 {
		t.Errorf("gss: %q %v", n.encrypted, n.Calls)
	}
	// A cancel request.
	s = newSession(t, nil)
	s.client(i32(16), i32(80877102), i32(4242), i32(99))
	calls = s.end(proto.EndFIN)
	check(t, calls, []want{{method: "CANCEL", oneWay: true}})
	if calls[0].Extra.Get("backend_pid") != int64(4242) {
		t.Errorf("cancel %v", calls[0].Extra)
	}
}

// TestGapsAndEnd: a gap in rows is counted; elsewhere the sides
// resynchronise; what waits at the end is unanswered.
func TestGapsAndEnd(t *testing.T) {
	s := newSession(t, nil).login()
	s.client(query("SELECT * FROM big"))
	row := dataRow(strings.Repeat("x", 1000))
	s.server(rowDesc("v"), row[:100])
	s.p.Gap(proto.Server, 800)
	s.server(row[900:], complete("SELECT 1"), readyIdle)
	s.client(query("SELECT 2"))
	s.p.Gap(proto.Server, -1)
	s.server([]byte("garbage"), complete("SELECT 1"), readyIdle)
	s.client(query("SELECT 3"))
	s.server(complete("SELECT 1"), readyIdle)
	s.client(query("SELECT 4")[:7])
	s.p.Gap(proto.Client, 20)
	s.client(query("SELECT 5"))
	s.server(complete("SELECT 1"), readyIdle)
	s.client(query("SELECT pg_sleep(100)"))
	calls := s.end(proto.EndRST)
	check(t, calls, []want{
		{method: "STARTUP", path: "shop", status: "OK"},
		{method: "QUERY", path: "SELECT * FROM big", status: "OK"},
		{method: "QUERY", path: "SELECT ?", err: "truncated: the answer may be among bytes missing from the capture"},
		{method: "QUERY", path: "SELECT ?", status: "OK"},
		{method: "QUERY", path: "SELECT ?", status: "OK"},
		{method: "QUERY", path: "SELECT pg_sleep(?)", err: "no response: connection reset"},
	})
	if calls[1].Extra.Get("bytes_missing") != true {
		t.Errorf("big select extra %v", calls[1].Extra)
	}
}

func TestDetect(t *testing.T) {
	for _, c := range []struct {
		data []byte
		v    proto.Verdict
		r    proto.Role
	}{
		{startup("user", "app", "database", "shop"), proto.Yes, proto.Client},
		{startup("user", "app")[:6], proto.Maybe, proto.RoleUnknown},
		{append(i32(8), i32(80877103)...), proto.Yes, proto.Client},
		{append(i32(16), append(i32(80877102), i32(1)...)...), proto.Yes, proto.Client},
		{query("SELECT 1"), proto.Yes, proto.Client},
		{parse("s1", "SELECT $1"), proto.Yes, proto.Client},
		{bytes.Join([][]byte{complete("SELECT 1"), readyIdle}, nil), proto.Yes, proto.Server},
		{[]byte("GET / HTTP/1.1\r\n\r\n"), proto.No, proto.RoleUnknown},
		{[]byte("Q\x00\x00\x00\x0abinary\x01\x02\x00"), proto.No, proto.RoleUnknown},
		{[]byte("\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03"), proto.No, proto.RoleUnknown},
		{[]byte("*1\r\n$4\r\nPING\r\n"), proto.No, proto.RoleUnknown},
	} {
		v, r := postgres.Protocol{}.DetectStream(c.data, 40000, 5432)
		if v != c.v || r != c.r {
			t.Errorf("%q: %v %v, want %v %v", c.data, v, r, c.v, c.r)
		}
	}
}

func TestNormalize(t *testing.T) {
	for _, c := range []struct{ sql, want string }{
		{"SELECT * FROM t WHERE id = 42", "SELECT * FROM t WHERE id = ?"},
		{"select  *\n from t where a in (1, 2, 3) and b = 'x''y'", "select * from t where a in (?) and b = ?"},
		{"SELECT E'it\\'s', $1, $$body$$, $tag$ x $tag$", "SELECT ?, $1, ?"},
		{"SELECT 1.5e-3, .5, 0x1F, col2 FROM t2", "SELECT ?, col2 FROM t2"},
		{"SELECT \"weird 'col'\" FROM t -- comment 'x'\n LIMIT 10", "SELECT \"weird 'col'\" FROM t LIMIT ?"},
		{"/* a /* nested */ comment */ UPDATE t SET x = -1", "UPDATE t SET x = -?"},
		{"INSERT INTO t VALUES (1, 'a'), (2, 'b')", "INSERT INTO t VALUES (?), (?)"},
		{"SELECT 'unterminated", "SELECT ?"},
	} {
		calls := newSession(t, nil).client(query(c.sql)).server(complete("SELECT 1"), readyIdle).end(proto.EndFIN)
		if len(calls) != 1 || calls[0].Path != c.want {
			t.Errorf("%q: %q, want %q", c.sql, calls[0].Path, c.want)
		}
	}
}

// TestStatusIsText: a SQLSTATE of digits stays a JSON string.
func TestStatusIsText(t *testing.T) {
	s := newSession(t, nil).login()
	s.client(query("SELECT 1/0")).server(pgError("22012", "division by zero"), readyIdle)
	calls := s.end(proto.EndFIN)
	if j := calls[1].AppendJSON(nil); !bytes.Contains(j, []byte(`"status":"22012"`)) {
		t.Errorf("%s", j)
	}
}
