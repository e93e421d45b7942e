package ldap_test

import (
	"bytes"
	"encoding/json"
	"strconv"
	"testing"

	ber "github.com/go-asn1-ber/asn1-ber"

	"github.com/wirescope/wirescope/dissect/ldap"
	"github.com/wirescope/wirescope/dissect/proto"
	"github.com/wirescope/wirescope/dissect/proto/prototest"
)

func init() { proto.Register(ldap.Protocol{}) }

// msg is an LDAPMessage: message ID, the operation, optional controls.
func msg(id int64, op *ber.Packet, controls ...*ber.Packet) []byte {
	m := ber.NewSequence("LDAPMessage")
	m.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, id, "id"))
	m.AppendChild(op)
	if len(controls) > 0 {
		c := ber.Encode(ber.ClassContext, ber.TypeConstructed, 0, nil, "controls")
		for _, x := range controls {
			c.AppendChild(x)
		}
		m.AppendChild(c)
	}
	return m.Bytes()
}

func app(tag int, constructed bool, kids ...*ber.Packet) *ber.Packet {
	tt := ber.TypePrimitive
	if constructed {
		tt = ber.TypeConstructed
	}
	p := ber.Encode(ber.ClassApplication, tt, ber.Tag(tag), nil, "op")
	for _, k := range kids {
		p.AppendChild(k)
	}
	return p
}

func octets(s string) *ber.Packet {
	return ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, s, "")
}

func integer(v int64) *ber.Packet {
	return ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, v, "")
}

func enum(v int64) *ber.Packet {
	return ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, v, "")
}

func ctx(tag int, s string) *ber.Packet {
	return ber.NewString(ber.ClassContext, ber.TypePrimitive, ber.Tag(tag), s, "")
}

func ctxC(tag int, kids ...*ber.Packet) *ber.Packet {
	p := ber.Encode(ber.ClassContext, ber.TypeConstructed, ber.Tag(tag), nil, "")
	for _, k := range kids {
		p.AppendChild(k)
	}
	return p
}

func seq(kids ...*ber.Packet) *ber.Packet {
	p := ber.NewSequence("")
	for _, k := range kids {
		p.AppendChild(k)
	}
	return p
}

func set(kids ...*ber.Packet) *ber.Packet {
	p := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSet, nil, "")
	for _, k := range kids {
		p.AppendChild(k)
	}
	return p
}

func bind(id int64, dn, password string) []byte {
	return msg(id, app(0, true, integer(3), octets(dn), ctx(0, password)))
}

func result(id int64, tag int, code int64, diag string, extra ...*ber.Packet) []byte {
	return msg(id, app(tag, true, append([]*ber.Packet{enum(code), octets(""), octets(diag)}, extra...)...))
}

func search(id int64, base string, scope int64, filter *ber.Packet, attrs ...string) []byte {
	as := seq()
	for _, a := range attrs {
		as.AppendChild(octets(a))
	}
	return msg(id, app(3, true, octets(base), enum(scope), enum(0), integer(0), integer(0),
		ber.NewBoolean(ber.ClassUniversal, ber.TypePrimitive, ber.TagBoolean, false, ""), filter, as))
}

func entry(id int64, dn string) []byte {
	return msg(id, app(4, true, octets(dn), seq(seq(octets("cn"), set(octets("x"))))))
}

func TestDetect(t *testing.T) {
	cases := []struct {
		data []byte
		v    proto.Verdict
		r    proto.Role
	}{
		{bind(1, "cn=admin", "pw"), proto.Yes, proto.Client},
		{result(1, 1, 0, ""), proto.Yes, proto.Server},
		{msg(5, app(2, false)), proto.Yes, proto.Client},
		{bind(1, "cn=admin", "pw")[:3], proto.Maybe, proto.RoleUnknown},
		{[]byte("\x30\x84\xff\xff\xff\xff\x02\x01\x01"), proto.No, proto.RoleUnknown},
		{[]byte("\x30\x05\x02\x01\x01\x04\x00"), proto.No, proto.RoleUnknown}, // not APPLICATION
		{[]byte("GET / HTTP/1.1\r\n"), proto.No, proto.RoleUnknown},
		{[]byte("\x16\x03\x01\x00\x05"), proto.No, proto.RoleUnknown},
	}
	for i, c := range cases {
		v, r := ldap.Protocol{}.DetectStream(c.data, 50000, 389)
		if v != c.v || (v == proto.Yes && r != c.r) {
			t.Errorf("case %d: %v %v, want %v %v", i, v, r, c.v, c.r)
		}
	}
}

func TestOperations(t *testing.T) {
	const pass = "s3cret-bind"
	s := prototest.NewSession(t, ldap.Protocol{}, nil)
	s.Client(bind(1, "cn=admin,dc=example,dc=com", pass))
	s.Server(result(1, 1, 49, "invalid credentials"))
	s.Client(bind(2, "cn=admin,dc=example,dc=com", pass))
	s.Server(result(2, 1, 0, ""))
	filter := ctxC(0, ctxC(3, octets("objectClass"), octets("person")), ctxC(1, ber.NewString(ber.ClassContext, ber.TypePrimitive, 7, "mail", ""),
		ctxC(2, ctxC(4, octets("cn"), seq(ctx(0, "Bab"), ctx(2, "s*"))))))
	s.Client(search(3, "ou=People,dc=example,dc=com", 2, filter, "cn", "mail"))
	// Entries, split across segments, then the done.
	e1, e2 := entry(3, "uid=a,ou=People,dc=example,dc=com"), entry(3, "uid=b,ou=People,dc=example,dc=com")
	all := append(append(e1, e2...), result(3, 5, 0, "")...)
	s.Server(all[:7])
	s.Server(all[7:40])
	s.Server(all[40:])
	s.Client(msg(4, app(6, true, octets("uid=a,ou=People,dc=example,dc=com"),
		seq(seq(enum(2), seq(octets("userPassword"), set(octets(pass)))), seq(enum(0), seq(octets("mail"), set(octets("a@x"))))))))
	s.Server(result(4, 7, 50, "no write access"))
	s.Client(msg(5, app(14, true, octets("uid=a,ou=People,dc=example,dc=com"), seq(octets("cn"), octets("x")))))
	s.Server(result(5, 15, 6, ""))
	s.Client(msg(6, ber.NewString(ber.ClassApplication, ber.TypePrimitive, 10, "uid=gone,dc=example,dc=com", "")))
	s.Server(result(6, 11, 32, ""))
	s.Client(msg(7, app(23, true, ctx(0, "1.3.6.1.4.1.4203.1.11.3"))))
	s.Server(result(7, 24, 0, "", ctx(11, "dn:cn=admin,dc=example,dc=com")))
	s.Client(msg(8, ber.NewInteger(ber.ClassApplication, ber.TypePrimitive, 16, int64(5), "")))
	s.Server(result(0, 24, 52, "server shutting down", ctx(10, "1.3.6.1.4.1.1466.20036")))
	s.Client(msg(9, app(2, false)))
	calls := s.End(proto.EndFIN)
	prototest.Check(t, calls, []prototest.Want{
		{Method: "bind", Path: "cn=admin,dc=example,dc=com", Status: "invalidCredentials"},
		{Method: "bind", Path: "cn=admin,dc=example,dc=com", Status: "success"},
		{Method: "search", Path: "ou=People,dc=example,dc=com", Status: "success", Resp: "uid=a,ou=People,dc=example,dc=com\nuid=b,ou=People,dc=example,dc=com\n"},
		{Method: "modify", Path: "uid=a,ou=People,dc=example,dc=com", Status: "insufficientAccessRights", Req: "userPassword: [redacted]\nmail: a@x\n"},
		{Method: "compare", Path: "uid=a,ou=People,dc=example,dc=com", Status: "compareTrue", Req: "cn=x"},
		{Method: "delete", Path: "uid=gone,dc=example,dc=com", Status: "noSuchObject"},
		{Method: "extended", Path: "whoami", Status: "success"},
		{Method: "abandon", OneWay: true},
		{Method: "extended", Path: "noticeOfDisconnection", Status: "unavailable", OneWay: true},
		{Method: "unbind", OneWay: true},
	})
	if f := calls[2].Extra.Get("filter"); f != "(&(objectClass=person)(|(mail=*)(!(cn=Bab*s\\2a))))" {
		t.Errorf("filter %v", f)
	}
	if calls[2].Extra.Get("entries") != 2 || calls[2].Extra.Get("scope") != "sub" || calls[2].Extra.Get("attributes") != "cn,mail" {
		t.Errorf("search extra %v", calls[2].Extra)
	}
	if calls[3].Extra.Get("changes") != "replace userPassword,add mail" {
		t.Errorf("modify extra %v", calls[3].Extra)
	}
	if calls[6].Extra.Get("authz_id") != "dn:cn=admin,dc=example,dc=com" {
		t.Errorf("whoami extra %v", calls[6].Extra)
	}
	want := []proto.Outcome{proto.ClientError, proto.OK, proto.OK, proto.ClientError, proto.OK, proto.ClientError, proto.OK, proto.OneWay, proto.OneWay, proto.OneWay}
	for i, c := range calls {
		if c.Outcome() != want[i] {
			t.Errorf("call %d %s: outcome %v, want %v", i, c.Method, c.Outcome(), want[i])
		}
		b, _ := json.Marshal(c)
		if bytes.Contains(b, []byte(pass)) {
			t.Errorf("call %d shows the password: %s", i, b)
		}
	}
}

// TestStartTLS: a StartTLS answered success hands the connection over,
// with the bytes that followed in the same segment.
func TestStartTLS(t *testing.T) {
	s := prototest.NewSession(t, ldap.Protocol{}, nil)
	s.Client(msg(1, app(23, true, ctx(0, "1.3.6.1.4.1.1466.20037"))))
	s.Server(append(result(1, 24, 0, ""), 0x16, 0x03, 0x03))
	calls := s.End(proto.EndFIN)
	prototest.Check(t, calls, []prototest.Want{{Method: "extended", Path: "startTLS", Status: "success"}})
	if len(s.Rec.Upgrades) != 1 || s.Rec.Upgrades[0] != proto.SwitchTLS {
		t.Fatalf("upgrades %v", s.Rec.Upgrades)
	}
	h := s.P.(proto.HandingOver).HandOver()
	if len(h.Chunks) != 1 || !bytes.Equal(h.Chunks[0].Data, []byte{0x16, 0x03, 0x03}) || h.Chunks[0].Role != proto.Server {
		t.Errorf("handed over %+v", h.Chunks)
	}
}

// TestGapsAndSplits: byte by byte the same calls; a gap inside an entry
// keeps the search (its entry counted, the call truncated); a gap that
// loses the client's place is found again at the next message.
func TestGapsAndSplits(t *testing.T) {
	rec := &prototest.Recorder{}
	p := ldap.Protocol{}.NewStream(rec, &proto.Limits{})
	s := prototest.Session{T: t, Rec: rec, P: p}
	b := bind(1, "cn=x", "y")
	for i := range b {
		p.Feed(proto.Client, b[i:i+1], s.At())
	}
	r := result(1, 1, 0, "")
	for i := range r {
		p.Feed(proto.Server, r[i:i+1], s.At())
	}
	s.Client(search(2, "dc=x", 0, ber.NewString(ber.ClassContext, ber.TypePrimitive, 7, "objectClass", "")))
	e := entry(2, "cn=big,dc=x")
	s.Server(e[:10])
	p.Gap(proto.Server, len(e)-10)
	s.Server(result(2, 5, 0, ""))
	s.Client(search(3, "dc=x", 0, ber.NewString(ber.ClassContext, ber.TypePrimitive, 7, "objectClass", ""))[:8])
	p.Gap(proto.Client, -1)
	s.Client("garbage that is not a message")
	s.Client(msg(4, app(2, false)))
	calls := s.End(proto.EndFIN)
	prototest.Check(t, calls, []prototest.Want{
		{Method: "bind", Path: "cn=x", Status: "success"},
		{Method: "search", Path: "dc=x", Status: "success", Err: "truncated: " + strconv.Itoa(len(e)-10) + " bytes of the response missing from the capture"},
		{Method: "unbind", OneWay: true},
		// The cut search waits for a result until the end.
		{Method: "search", Err: "truncated: " + strconv.Itoa(len(search(3, "dc=x", 0, ber.NewString(ber.ClassContext, ber.TypePrimitive, 7, "objectClass", "")))-8) + " bytes of the request missing from the capture"},
	})
	if calls[1].Extra.Get("entries") != 1 {
		t.Errorf("entries %v", calls[1].Extra.Get("entries"))
	}
}
