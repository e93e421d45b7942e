package ldap

import (
	"strconv"
	"strings"

	ber "github.com/go-asn1-ber/asn1-ber"

	"github.com/wirescope/wirescope/dissect/proto"
)

// maxFilterDepth caps how deep a filter is rendered.
const maxFilterDepth = 32

// str returns a primitive element's bytes as text.
func str(p *ber.Packet) string {
	if p == nil || p.TagType != ber.TypePrimitive || p.Data == nil {
		return ""
	}
	return p.Data.String()
}

func child(p *ber.Packet, i int) *ber.Packet {
	if p == nil || i >= len(p.Children) {
		return nil
	}
	return p.Children[i]
}

func intValue(p *ber.Packet) int64 {
	if p == nil {
		return 0
	}
	if v, ok := p.Value.(int64); ok {
		return v
	}
	return 0
}

var scopes = []string{"base", "one", "sub", "subordinate"}

// secretAttribute says whether an attribute's values are secrets.
func secretAttribute(name string) bool {
	n := strings.ToLower(name)
	return strings.Contains(n, "password") || strings.Contains(n, "pwd") || strings.Contains(n, "secret")
}

// describeRequest sets what a request says on its call.
func (c *conn) describeRequest(req *request, op *ber.Packet, msg *ber.Packet) {
	call := req.call
	var body strings.Builder
	switch req.op {
	case opBindRequest:
		call.Extra.Set("version", intValue(child(op, 0)))
		call.Path = str(child(op, 1))
		auth := child(op, 2)
		if auth != nil {
			switch auth.Tag {
			case 0:
				if str(auth) == "" {
					call.Extra.Set("auth", "anonymous")
					if call.Path != "" {
						call.Extra.Set("auth", "unauthenticated")
					}
				} else {
					call.Extra.Set("auth", "simple")
				}
			case 3:
				mech := str(child(auth, 0))
				req.mechanism = mech
				call.Extra.Set("auth", "sasl")
				call.Extra.Set("mechanism", mech)
			}
		}
	case opSearchRequest:
		call.Path = str(child(op, 0))
		if s := intValue(child(op, 1)); s >= 0 && int(s) < len(scopes) {
			call.Extra.Set("scope", scopes[s])
		}
		if n := intValue(child(op, 3)); n > 0 {
			call.Extra.Set("size_limit", n)
		}
		if n := intValue(child(op, 4)); n > 0 {
			call.Extra.Set("time_limit", n)
		}
		var f strings.Builder
		renderFilter(&f, child(op, 6), 0)
		call.Extra.Set("filter", f.String())
		if attrs := child(op, 7); attrs != nil && len(attrs.Children) > 0 {
			var names []string
			for _, a := range attrs.Children {
				if len(names) == 32 {
					break
				}
				names = append(names, str(a))
			}
			call.Extra.Set("attributes", strings.Join(names, ","))
		}
	case opModifyRequest:
		call.Path = str(child(op, 0))
		if changes := child(op, 1); changes != nil {
			var parts []string
			for _, ch := range changes.Children {
				if len(parts) == 32 {
					break
				}
				kind := [...]string{"add", "delete", "replace", "increment"}
				k := intValue(child(ch, 0))
				name := str(child(child(ch, 1), 0))
				if k >= 0 && int(k) < len(kind) {
					parts = append(parts, kind[k]+" "+name)
				}
				c.attributeBody(&body, name, child(child(ch, 1), 1))
			}
			call.Extra.Set("changes", strings.Join(parts, ","))
		}
	case opAddRequest:
		call.Path = str(child(op, 0))
		if attrs := child(op, 1); attrs != nil {
			var names []string
			for _, a := range attrs.Children {
				name := str(child(a, 0))
				if len(names) < 32 {
					names = append(names, name)
				}
				c.attributeBody(&body, name, child(a, 1))
			}
			call.Extra.Set("attributes", strings.Join(names, ","))
		}
	case opDelRequest:
		call.Path = str(op)
	case opModDNRequest:
		call.Path = str(child(op, 0))
		call.Extra.Set("new_rdn", str(child(op, 1)))
		if d := child(op, 2); d == nil {
		} else if b, ok := d.Value.(bool); ok {
			call.Extra.Set("delete_old_rdn", b)
		}
		if sup := child(op, 3); sup != nil {
			call.Extra.Set("new_superior", str(sup))
		}
	case opCompareRequest:
		call.Path = str(child(op, 0))
		ava := child(op, 1)
		name := str(child(ava, 0))
		call.Extra.Set("attribute", name)
		if !secretAttribute(name) && !c.lim.Summary {
			body.WriteString(name + "=" + str(child(ava, 1)))
		}
	case opAbandonRequest:
		if len(op.Data.Bytes()) <= 4 {
			v, _ := ber.ParseInt64(op.Data.Bytes())
			call.Extra.Set("abandoned_id", v)
		}
	case opExtendedRequest:
		oid := str(child(op, 0))
		call.Path = extendedName(oid)
		call.Extra.Set("oid", oid)
		// A password modify's identity is shown, its passwords never.
		if oid == "1.3.6.1.4.1.4203.1.11.1" {
			if v := child(op, 1); v != nil {
				if inner, err := ber.DecodePacketErr(v.Data.Bytes()); err == nil {
					for _, f := range inner.Children {
						if f.Tag == 0 {
							call.Extra.Set("user", str(f))
						}
					}
				}
			}
		}
	}
	if ctl := child(msg, 2); ctl != nil && ctl.ClassType == ber.ClassContext && ctl.Tag == 0 {
		var oids []string
		for _, cc := range ctl.Children {
			if len(oids) < 16 {
				oids = append(oids, str(child(cc, 0)))
			}
		}
		call.Extra.Set("controls", strings.Join(oids, ","))
	}
	if body.Len() > 0 && !c.lim.Summary {
		call.Request.SetBody([]byte(body.String()), c.lim.MaxBodyDisplay)
	}
}

// attributeBody appends an attribute's values, a secret's masked.
func (c *conn) attributeBody(b *strings.Builder, name string, vals *ber.Packet) {
	if c.lim.Summary || vals == nil || b.Len() > c.lim.MaxBodyDisplay {
		return
	}
	for _, v := range vals.Children {
		b.WriteString(name)
		b.WriteString(": ")
		if secretAttribute(name) {
			b.WriteString("[redacted]")
		} else {
			b.WriteString(str(v))
		}
		b.WriteByte('\n')
	}
}

// result reads an LDAPResult (and an extended response's name): the
// result code's name, with the matched DN, diagnostic message and
// referral in extra.
func (c *conn) result(call *proto.Call, op *ber.Packet) (status, oid string) {
	if op == nil || len(op.Children) < 3 {
		return "", ""
	}
	code := intValue(child(op, 0))
	status = resultName(code)
	call.Extra.Set("result_code", code)
	if m := str(child(op, 1)); m != "" {
		call.Extra.Set("matched_dn", m)
	}
	if d := str(child(op, 2)); d != "" {
		call.Extra.Set("diagnostic", d)
	}
	for _, ch := range op.Children[3:] {
		switch {
		case ch.ClassType == ber.ClassContext && ch.Tag == 3 && len(ch.Children) > 0:
			call.Extra.Set("referral", str(ch.Children[0]))
		case ch.ClassType == ber.ClassContext && ch.Tag == 10:
			oid = str(ch)
			call.Extra.Set("response_oid", oid)
		case ch.ClassType == ber.ClassContext && ch.Tag == 11 && call.Path == "whoami":
			call.Extra.Set("authz_id", str(ch))
		}
	}
	return status, oid
}

func extendedName(oid string) string {
	if n, ok := extendedNames[oid]; ok {
		return n
	}
	return oid
}

// renderFilter writes a search filter as RFC 4515 text.
func renderFilter(b *strings.Builder, f *ber.Packet, depth int) {
	if f == nil {
		return
	}
	if depth >= maxFilterDepth || b.Len() > 2048 {
		b.WriteString("(…)")
		return
	}
	b.WriteByte('(')
	switch f.Tag {
	case 0, 1:
		b.WriteByte("&|"[f.Tag])
		for _, ch := range f.Children {
			renderFilter(b, ch, depth+1)
		}
	case 2:
		b.WriteByte('!')
		renderFilter(b, child(f, 0), depth+1)
	case 3, 5, 6, 8:
		op := map[ber.Tag]string{3: "=", 5: ">=", 6: "<=", 8: "~="}[f.Tag]
		name := str(child(f, 0))
		b.WriteString(name + op)
		if secretAttribute(name) {
			b.WriteString("[redacted]")
		} else {
			b.WriteString(escapeFilter(str(child(f, 1))))
		}
	case 4:
		b.WriteString(str(child(f, 0)) + "=")
		subs := child(f, 1)
		if subs != nil {
			for i, s := range subs.Children {
				if s.Tag != 0 || i > 0 {
					b.WriteByte('*')
				}
				b.WriteString(escapeFilter(str(s)))
			}
			if n := len(subs.Children); n > 0 && subs.Children[n-1].Tag != 2 {
				b.WriteByte('*')
			}
		}
	case 7:
		b.WriteString(str(f) + "=*")
	case 9:
		b.WriteString("extensibleMatch")
	default:
		b.WriteString("filter" + strconv.Itoa(int(f.Tag)))
	}
	b.WriteByte(')')
}

// escapeFilter escapes a value as RFC 4515 does.
func escapeFilter(s string) string {
	if !strings.ContainsAny(s, "*()\\\x00") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '*', '(', ')', '\\', 0:
			b.WriteString("\\" + strconv.FormatUint(uint64(c)>>4, 16) + strconv.FormatUint(uint64(c)&15, 16))
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
