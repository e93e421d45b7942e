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

func newSession(t *testing.T, lim *proto.Limits) *prototest.Session {
	return prototest.NewSession(t, postgres.Protocol{}, lim)
}

// login runs a trust startup.
func login(s *prototest.Session) *prototest.Session {
	s.Client(startup("user", "app", "database", "shop", "application_name", "billing"))
	s.Server(authOK, param("server_version", "15.14"), msg('K', i32(4242), i32(7)), readyIdle)
	return s
}

func TestSimpleQueries(t *testing.T) {
	s := login(newSession(t, nil))
	s.Client(query("SELECT id, name FROM users WHERE id = 42 AND name = 'bob'"))
	s.Server(rowDesc("id", "name"), dataRow("42", "bob"), complete("SELECT 1"), readyIdle)
	s.Client(query("SELECT * FROM missing"))
	s.Server(pgError("42P01", `relation "missing" does not exist`), readyIdle)
	s.Client(query("BEGIN; INSERT INTO t VALUES (1), (2); COMMIT;"))
	s.Server(complete("BEGIN"), complete("INSERT 0 2"), complete("COMMIT"), readyIdle)
	s.Client(query(""))
	s.Server(msg('I'), readyIdle)
	s.Client(query("SELECT pg_sleep(10)"))
	s.Server(pgError("57014", "canceling statement due to user request"), readyIdle)
	calls := s.End(proto.EndFIN)
	prototest.Check(t, calls, []prototest.Want{
		{Method: "STARTUP", Path: "shop", Status: "OK", Req: "user=app database=shop application_name=billing"},
		{Method: "QUERY", Path: "SELECT id, name FROM users WHERE id = ? AND name = ?", Status: "OK", Req: "SELECT id, name FROM users WHERE id = 42 AND name = 'bob'"},
		{Method: "QUERY", Path: "SELECT * FROM missing", Status: "42P01"},
		{Method: "QUERY", Path: "BEGIN; INSERT INTO t VALUES (?), (?); COMMIT;", Status: "OK"},
		{Method: "QUERY", Path: "", Status: "OK"},
		{Method: "QUERY", Path: "SELECT pg_sleep(?)", Status: "57014"},
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
	s := login(newSession(t, nil))
	// Unnamed statement, as most drivers send it.
	s.Client(parse("", "SELECT abalance FROM pgbench_accounts WHERE aid = $1"), bind("", ""), describe('P', ""), execute(""), sync)
	s.Server(parseOK, bindOK, rowDesc("abalance"), dataRow("0"), complete("SELECT 1"), readyIdle)
	// A named statement prepared once, executed twice.
	s.Client(parse("P0_1", "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2"), describe('S', "P0_1"), sync)
	s.Server(parseOK, msg('t', i16(2), i32(23), i32(23)), noData, readyIdle)
	s.Client(bind("", "P0_1"), execute(""), sync)
	s.Server(bindOK, complete("UPDATE 1"), readyInTrans)
	s.Client(bind("", "P0_1"), execute(""), sync)
	s.Server(bindOK, complete("UPDATE 1"), readyInTrans)
	// An execution error.
	s.Client(parse("", "SELECT 1/0"), bind("", ""), execute(""), sync)
	s.Server(parseOK, bindOK, pgError("22012", "division by zero"), readyIdle)
	// A parse error: the Execute after it fails with it.
	s.Client(parse("", "SELEC 1"), bind("", ""), execute(""), sync)
	s.Server(pgError("42601", `syntax error at or near "SELEC"`), readyIdle)
	// A prepared statement that does not parse, without an Execute.
	s.Client(parse("bad", "SELECT FROM WHERE"), sync)
	s.Server(pgError("42601", `syntax error at or near "WHERE"`), readyIdle)
	// Two executes in one batch, the first failing: the second is
	// skipped by the server.
	s.Client(parse("", "INSERT INTO t VALUES (1)"), bind("", ""), execute(""), parse("", "SELECT 2"), bind("", ""), execute(""), sync)
	s.Server(parseOK, bindOK, pgError("23505", "duplicate key value violates unique constraint"), readyFailed)
	calls := s.End(proto.EndFIN)
	prototest.Check(t, calls, []prototest.Want{
		{Method: "STARTUP", Path: "shop", Status: "OK"},
		{Method: "EXECUTE", Path: "SELECT abalance FROM pgbench_accounts WHERE aid = $1", Status: "OK"},
		{Method: "EXECUTE", Path: "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2", Status: "OK"},
		{Method: "EXECUTE", Path: "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2", Status: "OK"},
		{Method: "EXECUTE", Path: "SELECT ?/?", Status: "22012"},
		{Method: "EXECUTE", Path: "SELEC ?", Status: "42601"},
		{Method: "PARSE", Path: "SELECT FROM WHERE", Status: "42601"},
		{Method: "EXECUTE", Path: "INSERT INTO t VALUES (?)", Status: "23505"},
		{Method: "EXECUTE", Path: "SELECT ?", Status: "23505"},
	})
	if calls[5].Extra.Get("failed_at") != "parse" || calls[8].Extra.Get("failed_at") != "execute" {
		t.Errorf("failed_at: %v / %v", calls[5].Extra, calls[8].Extra)
	}
	if calls[1].Extra.Get("rows") != int64(1) || calls[1].Response.Body != "abalance\n0\n" {
		t.Errorf("execute rows %v body %q", calls[1].Extra, calls[1].Response.Body)
	}
}

func TestCopyAndNotify(t *testing.T) {
	s := login(newSession(t, nil))
	s.Client(query("COPY t FROM STDIN"))
	s.Server(msg('G', []byte{0}, i16(1), i16(0)))
	s.Client(msg('d', []byte("1\tone\n")), msg('d', []byte("2\ttwo\n")), msg('c'))
	s.Server(complete("COPY 2"), readyIdle)
	s.Client(query("COPY t TO STDOUT"))
	s.Server(msg('H', []byte{0}, i16(1), i16(0)), msg('d', []byte("1\tone\n")), msg('c'), complete("COPY 1"), readyIdle)
	s.Client(query("LISTEN jobs"))
	s.Server(complete("LISTEN"), readyIdle)
	s.Client(query("NOTIFY jobs, 'run 7'"))
	s.Server(complete("NOTIFY"), msg('A', i32(4242), cstr("jobs"), cstr("run 7")), readyIdle)
	s.Client(query("DO $$BEGIN RAISE NOTICE 'hi %', 1; END$$"))
	s.Server(msg('N', cstr("SNOTICE"), cstr("C00000"), cstr("Mhi 1"), []byte{0}), complete("DO"), readyIdle)
	calls := s.End(proto.EndFIN)
	prototest.Check(t, calls, []prototest.Want{
		{Method: "STARTUP", Path: "shop", Status: "OK"},
		{Method: "QUERY", Path: "COPY t FROM STDIN", Status: "OK"},
		{Method: "QUERY", Path: "COPY t TO STDOUT", Status: "OK"},
		{Method: "QUERY", Path: "LISTEN jobs", Status: "OK"},
		{Method: "NOTIFICATION", Path: "jobs", OneWay: true},
		{Method: "QUERY", Path: "NOTIFY jobs, ?", Status: "OK"},
		{Method: "QUERY", Path: "DO ?", Status: "OK"},
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
	s.Client(startup("user", "app", "database", "shop"))
	s.Server(msg('R', i32(10), cstr("SCRAM-SHA-256"), []byte{0}))
	s.Client(msg('p', cstr("SCRAM-SHA-256"), i32(32), []byte("n,,n=,r=s3cret-nonce-s3cret-pass")))
	s.Server(msg('R', i32(11), []byte("r=...")))
	s.Client(msg('p', []byte("c=biws,r=...,p=s3cret-proof")))
	s.Server(msg('R', i32(12), []byte("v=...")), authOK, readyIdle)
	calls := s.End(proto.EndFIN)
	prototest.Check(t, calls, []prototest.Want{{Method: "STARTUP", Path: "shop", Status: "OK"}})
	if calls[0].Extra.Get("auth") != "SASL SCRAM-SHA-256" {
		t.Errorf("auth %v", calls[0].Extra)
	}
	s = newSession(t, nil)
	s.Client(startup("user", "app", "database", "shop"))
	s.Server(msg('R', i32(5), []byte{1, 2, 3, 4}))
	s.Client(msg('p', cstr("md5s3cret-pass")))
	s.Server(msg('E', cstr("SFATAL"), cstr("VFATAL"), cstr("C28P01"), cstr(`Mpassword authentication failed for user "app"`), []byte{0}))
	calls = s.End(proto.EndFIN)
	prototest.Check(t, calls, []prototest.Want{{Method: "STARTUP", Path: "shop", Status: "28P01"}})
	if calls[0].Extra.Get("auth") != "md5" || calls[0].Outcome() != proto.ClientError || calls[0].Extra.Get("severity") != "FATAL" {
		t.Errorf("refused startup: %v %v", calls[0].Extra, calls[0].Outcome())
	}
	// psql asks for the password after the server asked for it: the
	// first connection ends there.
	s3 := login(newSession(t, nil))
	s3.Client(query("ALTER ROLE app PASSWORD 's3cret-new'")).Server(complete("ALTER ROLE"), readyIdle)
	if c := s3.End(proto.EndFIN)[1]; c.Request.Body != "ALTER ROLE app PASSWORD '[redacted]'" || c.Path != "ALTER ROLE app PASSWORD ?" {
		t.Errorf("alter role: %q %q", c.Request.Body, c.Path)
	}
	s2 := newSession(t, nil)
	s2.Client(startup("user", "app", "database", "shop"))
	s2.Server(msg('R', i32(5), []byte{1, 2, 3, 4}))
	prototest.Check(t, s2.End(proto.EndFIN), []prototest.Want{{Method: "STARTUP", Path: "shop", Err: "truncated: the client left during authentication (md5)"}})
	for _, c := range append(calls, s.Rec.Calls...) {
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
	s.Client(gss)
	s.Server([]byte{'N'})
	s.Client(ssl)
	s.Server([]byte{'N'})
	s.Client(startup("user", "app"))
	s.Server(authOK, readyIdle)
	calls := s.End(proto.EndFIN)
	prototest.Check(t, calls, []prototest.Want{{Method: "STARTUP", Path: "app", Status: "OK"}})
	if calls[0].Extra.Get("ssl") != "refused by the server" {
		t.Errorf("ssl %v", calls[0].Extra)
	}
	// Accepted: the connection switches to TLS.
	s = newSession(t, nil)
	s.Client(ssl)
	s.Server([]byte{'S'})
	if len(s.Rec.Upgrades) != 1 || s.Rec.Upgrades[0] != proto.SwitchTLS {
		t.Errorf("upgrades %v", s.Rec.Upgrades)
	}
	if len(s.End(proto.EndFIN)) != 0 {
		t.Errorf("calls before TLS: %v", s.Rec.Calls)
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
	s.Client(i32(16), i32(80877102), i32(4242), i32(99))
	calls = s.End(proto.EndFIN)
	prototest.Check(t, calls, []prototest.Want{{Method: "CANCEL", OneWay: true}})
	if calls[0].Extra.Get("backend_pid") != int64(4242) {
		t.Errorf("cancel %v", calls[0].Extra)
	}
}

// TestGapsAndEnd: a gap in rows is counted; elsewhere the sides
// resynchronise; what waits at the end is unanswered.
func TestGapsAndEnd(t *testing.T) {
	s := login(newSession(t, nil))
	s.Client(query("SELECT * FROM big"))
	row := dataRow(strings.Repeat("x", 1000))
	s.Server(rowDesc("v"), row[:100])
	s.P.Gap(proto.Server, 800)
	s.Server(row[900:], complete("SELECT 1"), readyIdle)
	s.Client(query("SELECT 2"))
	s.P.Gap(proto.Server, -1)
	s.Server([]byte("garbage"), complete("SELECT 1"), readyIdle)
	s.Client(query("SELECT 3"))
	s.Server(complete("SELECT 1"), readyIdle)
	s.Client(query("SELECT 4")[:7])
	s.P.Gap(proto.Client, 20)
	s.Client(query("SELECT 5"))
	s.Server(complete("SELECT 1"), readyIdle)
	s.Client(query("SELECT pg_sleep(100)"))
	calls := s.End(proto.EndRST)
	prototest.Check(t, calls, []prototest.Want{
		{Method: "STARTUP", Path: "shop", Status: "OK"},
		{Method: "QUERY", Path: "SELECT * FROM big", Status: "OK"},
		{Method: "QUERY", Path: "SELECT ?", Err: "truncated: the answer may be among bytes missing from the capture"},
		{Method: "QUERY", Path: "SELECT ?", Status: "OK"},
		{Method: "QUERY", Path: "SELECT ?", Status: "OK"},
		{Method: "QUERY", Path: "SELECT pg_sleep(?)", Err: "no response: connection reset"},
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
		calls := newSession(t, nil).Client(query(c.sql)).Server(complete("SELECT 1"), readyIdle).End(proto.EndFIN)
		if len(calls) != 1 || calls[0].Path != c.want {
			t.Errorf("%q: %q, want %q", c.sql, calls[0].Path, c.want)
		}
	}
}

// TestStatusIsText: a SQLSTATE of digits stays a JSON string.
func TestStatusIsText(t *testing.T) {
	s := login(newSession(t, nil))
	s.Client(query("SELECT 1/0")).Server(pgError("22012", "division by zero"), readyIdle)
	calls := s.End(proto.EndFIN)
	if j := calls[1].AppendJSON(nil); !bytes.Contains(j, []byte(`"status":"22012"`)) {
		t.Errorf("%s", j)
	}
}
