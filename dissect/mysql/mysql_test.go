package mysql_test

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/wirescope/wirescope/dissect/mysql"
	"github.com/wirescope/wirescope/dissect/proto"
	"github.com/wirescope/wirescope/dissect/proto/prototest"
)

func init() { proto.Register(mysql.Protocol{}) }

// pkt frames a payload as one packet with sequence seq.
func pkt(seq byte, payload ...[]byte) []byte {
	p := bytes.Join(payload, nil)
	return append([]byte{byte(len(p)), byte(len(p) >> 8), byte(len(p) >> 16), seq}, p...)
}

func lenenc(n int) []byte {
	switch {
	case n < 251:
		return []byte{byte(n)}
	case n < 1<<16:
		return []byte{0xfc, byte(n), byte(n >> 8)}
	}
	return []byte{0xfd, byte(n), byte(n >> 8), byte(n >> 16)}
}

func lstr(s string) []byte { return append(lenenc(len(s)), s...) }
func u16(n int) []byte     { return binary.LittleEndian.AppendUint16(nil, uint16(n)) }
func u32(n int) []byte     { return binary.LittleEndian.AppendUint32(nil, uint32(n)) }

const (
	capsClassic = 0x0000_0200 | 0x0000_8000 | 0x0008_0000 | 0x0000_0008 // 4.1, secure, plugin auth, with db
	capsNew     = capsClassic | 0x0100_0000                             // and CLIENT_DEPRECATE_EOF
)

func greeting(caps int) []byte {
	return pkt(0, []byte{10}, []byte("10.11.6-MariaDB\x00"), u32(77), []byte("abcdefgh"), []byte{0},
		u16(caps&0xffff), []byte{33}, u16(2), u16(caps>>16), []byte{21}, make([]byte, 10), []byte("ijklmnopqrst\x00"),
		[]byte("mysql_native_password\x00"))
}

func handshakeResponse(caps int, user, db string) []byte {
	return pkt(1, u32(caps), u32(1<<24), []byte{33}, make([]byte, 23), []byte(user+"\x00"),
		[]byte{20}, []byte("s3cret-scramble-0123"), []byte(db+"\x00"), []byte("mysql_native_password\x00"))
}

func ok(seq byte, affected, insertID int) []byte {
	return pkt(seq, []byte{0}, lenenc(affected), lenenc(insertID), u16(2), u16(0))
}

func okMore(seq byte, affected int) []byte {
	return pkt(seq, []byte{0}, lenenc(affected), lenenc(0), u16(2|0x0008), u16(0))
}

func errPkt(seq byte, code int, state, msg string) []byte {
	return pkt(seq, []byte{0xff}, u16(code), []byte("#"+state+msg))
}

func eof(seq byte, status int) []byte { return pkt(seq, []byte{0xfe}, u16(0), u16(status)) }

func column(seq byte, name string) []byte {
	return pkt(seq, lstr("def"), lstr("shop"), lstr("t"), lstr("t"), lstr(name), lstr(name), []byte{0x0c}, u16(33), u32(255), []byte{0xfd}, u16(0), []byte{0}, u16(0))
}

func row(seq byte, vals ...string) []byte {
	var b []byte
	for _, v := range vals {
		if v == "NULL" {
			b = append(b, 0xfb)
			continue
		}
		b = append(b, lstr(v)...)
	}
	return pkt(seq, b)
}

// resultSet is a text result set in the classic protocol (EOF packets) or
// the new one (an OK with 0xfe ends it).
func resultSet(deprecate bool, status int, cols []string, rows ...[]string) []byte {
	var out []byte
	seq := byte(1)
	out = append(out, pkt(seq, lenenc(len(cols)))...)
	for _, c := range cols {
		seq++
		out = append(out, column(seq, c)...)
	}
	if !deprecate {
		seq++
		out = append(out, eof(seq, 2)...)
	}
	for _, r := range rows {
		seq++
		out = append(out, row(seq, r...)...)
	}
	seq++
	if deprecate {
		out = append(out, pkt(seq, []byte{0xfe}, lenenc(0), lenenc(0), u16(status), u16(0))...)
	} else {
		out = append(out, eof(seq, status)...)
	}
	return out
}

func query(sql string) []byte { return pkt(0, []byte{3}, []byte(sql)) }

func newSession(t *testing.T, lim *proto.Limits) *prototest.Session {
	return prototest.NewSession(t, mysql.Protocol{}, lim)
}

func login(s *prototest.Session, caps int) *prototest.Session {
	s.Server(greeting(caps))
	s.Client(handshakeResponse(caps, "app", "shop"))
	s.Server(ok(2, 0, 0))
	return s
}

func TestQueries(t *testing.T) {
	for _, deprecate := range []bool{false, true} {
		caps := capsClassic
		if deprecate {
			caps = capsNew
		}
		s := login(newSession(t, nil), caps)
		s.Client(query("SELECT id, name FROM users WHERE id > 10"))
		s.Server(resultSet(deprecate, 2, []string{"id", "name"}, []string{"11", "ann"}, []string{"12", "NULL"}))
		s.Client(query("SELECT * FROM missing"))
		s.Server(errPkt(1, 1146, "42S02", "Table 'shop.missing' doesn't exist"))
		s.Client(query("INSERT INTO t VALUES (1, 'a'), (2, 'b')"))
		s.Server(ok(1, 2, 7))
		s.Client(query("SELECT 1; SELECT 2"))
		s.Server(resultSet(deprecate, 2|0x0008, []string{"1"}, []string{"1"}))
		s.Server(bytes.ReplaceAll(resultSet(deprecate, 2, []string{"2"}, []string{"2"}), []byte{1, 0, 0, 1}, []byte{1, 0, 0, 5}))
		s.Client(query("CALL p()"))
		s.Server(resultSet(deprecate, 2|0x0008, []string{"x"}), okMore(4, 0)[:0], ok(4, 0, 0))
		s.Client(pkt(0, []byte{2}, []byte("other")))
		s.Server(ok(1, 0, 0))
		s.Client(query("SELECT 1"))
		s.Server(resultSet(deprecate, 2, []string{"1"}))
		s.Client(pkt(0, []byte{0x0e}))
		s.Server(ok(1, 0, 0))
		s.Client(query("SELECT SLEEP(100)"))
		s.Server(errPkt(1, 1317, "70100", "Query execution was interrupted"))
		s.Client(pkt(0, []byte{1}))
		calls := s.End(proto.EndFIN)
		prototest.Check(t, calls, []prototest.Want{
			{Method: "CONNECT", Path: "shop", Status: "OK"},
			{Method: "COM_QUERY", Path: "SELECT id, name FROM users WHERE id > ?", Status: "OK"},
			{Method: "COM_QUERY", Path: "SELECT * FROM missing", Status: "1146"},
			{Method: "COM_QUERY", Path: "INSERT INTO t VALUES (?), (?)", Status: "OK"},
			{Method: "COM_QUERY", Path: "SELECT ?; SELECT ?", Status: "OK"},
			{Method: "COM_QUERY", Path: "CALL p()", Status: "OK"},
			{Method: "COM_INIT_DB", Path: "other", Status: "OK"},
			{Method: "COM_QUERY", Path: "SELECT ?", Status: "OK"},
			{Method: "COM_PING", Status: "OK"},
			{Method: "COM_QUERY", Path: "SELECT SLEEP(?)", Status: "1317"},
			{Method: "COM_QUIT", OneWay: true},
		})
		if got := calls[1].Response.Body; got != "id\tname\n11\tann\n12\tNULL\n" || calls[1].Extra.Get("rows") != int64(2) {
			t.Errorf("deprecate=%v: rows %v body %q", deprecate, calls[1].Extra, got)
		}
		if calls[2].Extra.Get("sqlstate") != "42S02" || calls[2].Extra.Get("error") != "Table 'shop.missing' doesn't exist" || calls[2].Outcome() != proto.ClientError {
			t.Errorf("error: %v", calls[2].Extra)
		}
		if calls[3].Extra.Get("affected_rows") != int64(2) || calls[3].Extra.Get("last_insert_id") != int64(7) {
			t.Errorf("insert: %v", calls[3].Extra)
		}
		if calls[4].Extra.Get("result_sets") != int64(2) || calls[4].Extra.Get("rows") != int64(2) {
			t.Errorf("multi-statement: %v", calls[4].Extra)
		}
		if calls[8].Extra.Get("database") != "other" {
			t.Errorf("after COM_INIT_DB: %v", calls[8].Extra)
		}
		if calls[9].Outcome() != proto.ServerError {
			t.Errorf("1317: %v", calls[9].Outcome())
		}
		st := calls[0]
		for k, v := range map[string]any{"user": "app", "database": "shop", "server_version": "10.11.6-MariaDB", "auth_plugin": "mysql_native_password", "connection_id": int64(77)} {
			if got := st.Extra.Get(k); got != v {
				t.Errorf("connect %s = %v, want %v", k, got, v)
			}
		}
	}
}

func TestPrepared(t *testing.T) {
	s := login(newSession(t, nil), capsClassic)
	s.Client(pkt(0, []byte{0x16}, []byte("SELECT name FROM users WHERE id = ?")))
	s.Server(pkt(1, []byte{0}, u32(5), u16(1), u16(1), []byte{0}, u16(0)), column(2, "?"), eof(3, 2), column(4, "name"), eof(5, 2))
	s.Client(pkt(0, []byte{0x17}, u32(5), []byte{0}, u32(1), []byte{0}, []byte{1}, u16(3), u32(42)))
	s.Server(pkt(1, lenenc(1)), column(2, "name"), eof(3, 2), pkt(4, []byte{0, 0}, lstr("bob")), eof(5, 2))
	s.Client(pkt(0, []byte{0x16}, []byte("INSERT INTO users VALUES (?, ?)")))
	s.Server(pkt(1, []byte{0}, u32(6), u16(0), u16(2), []byte{0}, u16(0)), column(2, "?"), column(3, "?"), eof(4, 2))
	s.Client(pkt(0, []byte{0x17}, u32(6), []byte{0}, u32(1)))
	s.Server(errPkt(1, 1062, "23000", "Duplicate entry '1' for key 'PRIMARY'"))
	s.Client(pkt(0, []byte{0x16}, []byte("SELECT * FROM nope WHERE a = ?")))
	s.Server(errPkt(1, 1146, "42S02", "Table 'shop.nope' doesn't exist"))
	s.Client(pkt(0, []byte{0x19}, u32(5)))
	s.Client(pkt(0, []byte{0x17}, u32(99), []byte{0}, u32(1)))
	s.Server(ok(1, 1, 0))
	calls := s.End(proto.EndFIN)
	prototest.Check(t, calls, []prototest.Want{
		{Method: "CONNECT", Path: "shop", Status: "OK"},
		{Method: "COM_STMT_PREPARE", Path: "SELECT name FROM users WHERE id = ?", Status: "OK"},
		{Method: "COM_STMT_EXECUTE", Path: "SELECT name FROM users WHERE id = ?", Status: "OK"},
		{Method: "COM_STMT_PREPARE", Path: "INSERT INTO users VALUES (?)", Status: "OK"},
		{Method: "COM_STMT_EXECUTE", Path: "INSERT INTO users VALUES (?)", Status: "1062"},
		{Method: "COM_STMT_PREPARE", Path: "SELECT * FROM nope WHERE a = ?", Status: "1146"},
		{Method: "COM_STMT_CLOSE", Path: "SELECT name FROM users WHERE id = ?", OneWay: true},
		{Method: "COM_STMT_EXECUTE", Status: "OK"},
	})
	if calls[2].Extra.Get("rows") != int64(1) || calls[2].Extra.Get("statement_id") != int64(5) {
		t.Errorf("execute: %v", calls[2].Extra)
	}
	if calls[7].Extra.Get("statement") == nil {
		t.Errorf("unknown statement: %v", calls[7].Extra)
	}
}

func TestHandshakes(t *testing.T) {
	// An auth switch, then a refusal.
	s := newSession(t, nil)
	s.Server(greeting(capsClassic))
	s.Client(handshakeResponse(capsClassic, "app", "shop"))
	s.Server(pkt(2, []byte{0xfe}, []byte("caching_sha2_password\x00"), []byte("scramble0123456789ab\x00")))
	s.Client(pkt(3, []byte("s3cret-response-bytes-012345678")))
	s.Server(errPkt(4, 1045, "28000", "Access denied for user 'app'@'localhost' (using password: YES)"))
	calls := s.End(proto.EndFIN)
	prototest.Check(t, calls, []prototest.Want{{Method: "CONNECT", Path: "shop", Status: "1045"}})
	if calls[0].Extra.Get("auth_plugin") != "caching_sha2_password" || bytes.Contains(calls[0].AppendJSON(nil), []byte("s3cret")) {
		t.Errorf("connect: %s", calls[0].AppendJSON(nil))
	}
	// Too many connections: refused in the greeting.
	s = newSession(t, nil)
	s.Server(errPkt(0, 1040, "08004", "Too many connections"))
	calls = s.End(proto.EndFIN)
	prototest.Check(t, calls, []prototest.Want{{Method: "CONNECT", Status: "1040"}})
	if calls[0].Outcome() != proto.ServerError {
		t.Errorf("1040: %v", calls[0].Outcome())
	}
	// An SSL request: the connection turns to TLS.
	s = newSession(t, nil)
	s.Server(greeting(capsClassic | 0x800))
	s.Client(pkt(1, u32(capsClassic|0x800), u32(1<<24), []byte{33}, make([]byte, 23)))
	calls = s.End(proto.EndFIN)
	prototest.Check(t, calls, []prototest.Want{{Method: "CONNECT", Status: "TLS"}})
	if len(s.Rec.Upgrades) != 1 || s.Rec.Upgrades[0] != proto.SwitchTLS {
		t.Errorf("upgrades %v", s.Rec.Upgrades)
	}
	// A client that leaves during authentication.
	s = newSession(t, nil)
	s.Server(greeting(capsClassic))
	s.Client(handshakeResponse(capsClassic, "app", ""))
	s.Server(pkt(2, []byte{1, 4}))
	prototest.Check(t, s.End(proto.EndFIN), []prototest.Want{{Method: "CONNECT", Err: "truncated: connection fin during authentication"}})
}

// TestBigAndBroken: a 40 MiB query in 16 MiB packets, rows cut by gaps,
// and bytes that are not MySQL.
func TestBigAndBroken(t *testing.T) {
	s := login(newSession(t, nil), capsNew)
	big := "SELECT '" + strings.Repeat("x", 40<<20) + "'"
	payload := append([]byte{3}, big...)
	var wire []byte
	seq := byte(0)
	for len(payload) >= 0xffffff {
		wire = append(wire, pkt(seq, payload[:0xffffff])...)
		payload = payload[0xffffff:]
		seq++
	}
	wire = append(wire, pkt(seq, payload)...)
	most := 0
	for i := 0; i < len(wire); i += 1 << 20 {
		s.Client(wire[i:min(i+1<<20, len(wire))])
		most = max(most, s.P.(proto.Buffering).Buffered())
	}
	s.Server(resultSet(true, 2, []string{"x"}, []string{"short"}))
	if most > 1<<20 {
		t.Errorf("held %d bytes", most)
	}
	// A gap inside a row.
	s.Client(query("SELECT v FROM big"))
	rs := resultSet(true, 2, []string{"v"}, []string{strings.Repeat("y", 5000)})
	cut := bytes.Index(rs, []byte("yyyy")) + 100
	s.Server(rs[:cut])
	s.P.Gap(proto.Server, 1000)
	s.Server(rs[cut+1000:])
	// A gap between commands: the waiting one is reported, the next read.
	s.Client(query("SELECT 3"))
	s.P.Gap(proto.Server, -1)
	s.Server([]byte("\x99\x99 garbage"))
	s.Client(query("SELECT 4"))
	s.Server(resultSet(true, 2, []string{"4"}, []string{"4"}))
	calls := s.End(proto.EndFIN)
	prototest.Check(t, calls, []prototest.Want{
		{Method: "CONNECT", Path: "shop", Status: "OK"},
		{Method: "COM_QUERY", Path: "SELECT ?", Status: "OK"},
		{Method: "COM_QUERY", Path: "SELECT v FROM big", Status: "OK"},
		{Method: "COM_QUERY", Path: "SELECT ?", Err: "truncated: the answer may be among bytes missing from the capture"},
		{Method: "COM_QUERY", Path: "SELECT ?", Status: "OK"},
	})
	if calls[1].Request.BodySize != int64(len(wire)) || !calls[1].Request.BodyTruncated {
		t.Errorf("big query: %d bytes of %d, truncated %v", calls[1].Request.BodySize, len(wire), calls[1].Request.BodyTruncated)
	}
	if calls[2].Extra.Get("bytes_missing") != true || calls[2].Extra.Get("rows") != int64(1) {
		t.Errorf("gap in a row: %v", calls[2].Extra)
	}
}

func TestDetect(t *testing.T) {
	for _, c := range []struct {
		data []byte
		v    proto.Verdict
		r    proto.Role
	}{
		{greeting(capsClassic), proto.Yes, proto.Server},
		{query("SELECT 1"), proto.Yes, proto.Client},
		{query("select * from t")[:12], proto.Maybe, proto.RoleUnknown},
		{pkt(0, []byte{0x0e}), proto.Yes, proto.Client},
		{query("\x01\x02binary"), proto.No, proto.RoleUnknown},
		{[]byte("GET / HTTP/1.1\r\n\r\n"), proto.No, proto.RoleUnknown},
		{[]byte("\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03"), proto.No, proto.RoleUnknown},
		{[]byte("*1\r\n$4\r\nPING\r\n"), proto.No, proto.RoleUnknown},
	} {
		v, r := mysql.Protocol{}.DetectStream(c.data, 40000, 3306)
		if v != c.v || r != c.r {
			t.Errorf("%q: %v %v, want %v %v", c.data, v, r, c.v, c.r)
		}
	}
}

// FuzzStream feeds arbitrary bytes in arbitrary pieces, with gaps.
func FuzzStream(f *testing.F) {
	join := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	f.Add(join(handshakeResponse(capsClassic, "u", "d"), query("SELECT 1")), join(greeting(capsClassic), ok(2, 0, 0), resultSet(false, 2, []string{"a"}, []string{"1"})), byte(0))
	f.Add(join(query("SELECT 1; SELECT 2"), pkt(0, []byte{0x16}, []byte("SELECT ?"))), join(resultSet(true, 10, []string{"a"}), ok(1, 0, 0), pkt(1, []byte{0}, u32(1), u16(1), u16(1), []byte{0}, u16(0)), column(2, "?"), column(3, "a")), byte(3))
	f.Add(join(query("LOAD DATA LOCAL INFILE 'x' INTO TABLE t"), pkt(2, []byte("1,2\n")), pkt(3)), join(pkt(1, []byte{0xfb}, []byte("x")), ok(4, 1, 0)), byte(0x81))
	f.Add([]byte("\xff\xff\xff\x00\x03SELECT"), []byte("\x05\x00\x00\x01\xfe\xff\xff\xff\xff"), byte(0x80))
	f.Fuzz(func(t *testing.T, client, server []byte, split byte) {
		prototest.FuzzFeed(t, mysql.Protocol{}, client, server, split, 1<<20)
	})
}

// TestMariaDBCachedMetadata: with MARIADB_CLIENT_CACHE_METADATA agreed,
// an execute's result set may come without its column definitions.
func TestMariaDBCachedMetadata(t *testing.T) {
	caps := capsNew &^ 1 // no CLIENT_MYSQL: MariaDB's extended capabilities follow
	g := pkt(0, []byte{10}, []byte("5.5.5-10.11.19-MariaDB\x00"), u32(9), []byte("abcdefgh"), []byte{0},
		u16(caps&0xffff), []byte{33}, u16(2), u16(caps>>16), []byte{21}, make([]byte, 6), u32(1<<4), []byte("ijklmnopqrst\x00"),
		[]byte("mysql_native_password\x00"))
	resp := pkt(1, u32(caps), u32(1<<24), []byte{33}, make([]byte, 19), u32(1<<4), []byte("app\x00"),
		[]byte{20}, []byte("scramble-scramble-01"), []byte("shop\x00"), []byte("mysql_native_password\x00"))
	s := newSession(t, nil)
	s.Server(g).Client(resp).Server(ok(2, 0, 0))
	s.Client(pkt(0, []byte{0x16}, []byte("SELECT a FROM t WHERE b = ?")))
	s.Server(pkt(1, []byte{0}, u32(3), u16(1), u16(1), []byte{0}, u16(0)), column(2, "?"), column(3, "a"))
	s.Client(pkt(0, []byte{0x17}, u32(3), []byte{0}, u32(1)))
	s.Server(pkt(1, lenenc(1), []byte{1}), column(2, "a"), pkt(3, []byte{0, 0}, lstr("x")), pkt(4, []byte{0xfe}, lenenc(0), lenenc(0), u16(2), u16(0)))
	s.Client(pkt(0, []byte{0x17}, u32(3), []byte{0}, u32(1)))
	s.Server(pkt(1, lenenc(1), []byte{0}), pkt(2, []byte{0, 0}, lstr("y")), pkt(3, []byte{0, 0}, lstr("z")), pkt(4, []byte{0xfe}, lenenc(0), lenenc(0), u16(2), u16(0)))
	s.Client(query("SELECT 1"))
	s.Server(resultSet(true, 2, []string{"1"}, []string{"1"}))
	calls := s.End(proto.EndFIN)
	prototest.Check(t, calls, []prototest.Want{
		{Method: "CONNECT", Path: "shop", Status: "OK"},
		{Method: "COM_STMT_PREPARE", Path: "SELECT a FROM t WHERE b = ?", Status: "OK"},
		{Method: "COM_STMT_EXECUTE", Path: "SELECT a FROM t WHERE b = ?", Status: "OK"},
		{Method: "COM_STMT_EXECUTE", Path: "SELECT a FROM t WHERE b = ?", Status: "OK"},
		{Method: "COM_QUERY", Path: "SELECT ?", Status: "OK"},
	})
	if calls[2].Extra.Get("rows") != int64(1) || calls[3].Extra.Get("rows") != int64(2) {
		t.Errorf("rows: %v, %v", calls[2].Extra, calls[3].Extra)
	}
}
