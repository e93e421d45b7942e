package bpffilter

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// token kinds.
const (
	tkEOF = iota
	tkWord
	tkOp // ( ) [ ] : ! & | + - * / % ^ << >> = == != < <= > >= && ||
)

type token struct {
	kind int
	s    string
	pos  int
}

// lex splits an expression into words and operators. A word is a run of
// letters, digits and . : - / _ \ (addresses, CIDR, port ranges,
// tcp-syn); inside brackets ':' and '-' are operators, so tcp[13:1] and
// tcp[x-1] split.
func lex(s string) ([]token, error) {
	var out []token
	depth := 0
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case isWordByte(c, depth) && c != '-' && c != '/':
			j := i
			for j < len(s) && isWordByte(s[j], depth) {
				j++
			}
			out = append(out, token{tkWord, s[i:j], i})
			i = j
		default:
			op := ""
			for _, two := range []string{"&&", "||", "<<", ">>", "==", "!=", "<=", ">="} {
				if strings.HasPrefix(s[i:], two) {
					op = two
					break
				}
			}
			if op == "" {
				if !strings.ContainsRune("()[]:!&|+-*/%^=<>", rune(c)) {
					return nil, &Error{Pos: i, Msg: fmt.Sprintf("unexpected character %q", c)}
				}
				op = string(c)
			}
			switch op {
			case "[":
				depth++
			case "]":
				depth--
			}
			out = append(out, token{tkOp, op, i})
			i += len(op)
		}
	}
	return append(out, token{tkEOF, "", len(s)}), nil
}

func isWordByte(c byte, depth int) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '\\', c == '/':
		return true
	case c == ':' || c == '-':
		return depth == 0
	}
	return false
}

// Node kinds of the boolean tree.
type nodeKind int

const (
	nAnd nodeKind = iota
	nOr
	nNot
	nPrim // a primitive: host, net, port, protocol...
	nRel  // a relation between two arithmetic expressions
	nTrue // matches everything
)

type node struct {
	kind nodeKind
	a, b *node
	prim *prim
	rel  *rel
}

// Qualifiers of a primitive (pcap-filter(7)): protocol, direction, type.
type quals struct {
	proto string // "", ether, ip, ip6, arp, rarp, tcp, udp, sctp
	dir   string // "", src, dst, "src or dst", "src and dst"
	typ   string // "", host, net, port, portrange, proto
}

type prim struct {
	q  quals
	id string // the address, port, range or number; "" for a bare protocol
	// mask is the netmask word of "net A mask M".
	mask string
	pos  int
}

// arith is an arithmetic expression (relations: tcp[13] & 2 != 0).
type arith struct {
	op   string // "" leaf constant, "len", "load", or a binary operator
	k    uint32 // constant
	a, b *arith
	// load: proto[idx : size].
	proto string
	idx   *arith
	size  int
}

type rel struct {
	op   string // = != < <= > >=
	l, r *arith
}

// Bounds on hostile input: the expression's length, and how deep
// parentheses and "not" nest (the parser recurses).
const (
	maxExprLen = 64 << 10
	maxDepth   = 200
)

type parser struct {
	toks  []token
	i     int
	depth int
	last  *quals // the qualifiers a bare id inherits ("port 80 or 8080")
}

func (p *parser) peek() token { return p.toks[p.i] }
func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tkEOF {
		p.i++
	}
	return t
}
func (p *parser) isOp(s string) bool   { t := p.peek(); return t.kind == tkOp && t.s == s }
func (p *parser) isWord(s string) bool { t := p.peek(); return t.kind == tkWord && t.s == s }

func (p *parser) errf(t token, format string, a ...any) error {
	return &Error{Pos: t.pos, Msg: fmt.Sprintf(format, a...)}
}

// parse reads a whole expression. "and" and "or" have the same precedence
// and associate left to right, as in pcap-filter(7); "not" binds tighter.
func parse(s string) (*node, error) {
	if len(s) > maxExprLen {
		return nil, &Error{Msg: fmt.Sprintf("the expression is %d bytes, over %d", len(s), maxExprLen)}
	}
	toks, err := lex(s)
	if err != nil {
		return nil, err
	}
	if len(toks) == 1 {
		return &node{kind: nTrue}, nil
	}
	p := &parser{toks: toks}
	n, err := p.expr()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tkEOF {
		return nil, p.errf(t, "unexpected %q", t.s)
	}
	return n, nil
}

func (p *parser) expr() (*node, error) {
	n, err := p.unary()
	if err != nil {
		return nil, err
	}
	for {
		var k nodeKind
		switch {
		case p.isWord("and") || p.isOp("&&"):
			k = nAnd
		case p.isWord("or") || p.isOp("||"):
			k = nOr
		default:
			return n, nil
		}
		p.next()
		m, err := p.unary()
		if err != nil {
			return nil, err
		}
		n = &node{kind: k, a: n, b: m}
	}
}

// enter counts one more level of nesting; leave with the returned func.
func (p *parser) enter() (func(), error) {
	if p.depth >= maxDepth {
		return nil, p.errf(p.peek(), "nested more than %d deep", maxDepth)
	}
	p.depth++
	return func() { p.depth-- }, nil
}

func (p *parser) unary() (*node, error) {
	leave, err := p.enter()
	if err != nil {
		return nil, err
	}
	defer leave()
	t := p.peek()
	switch {
	case t.kind == tkEOF:
		return nil, p.errf(t, "the expression ends too early")
	case p.isWord("not") || p.isOp("!"):
		p.next()
		n, err := p.unary()
		if err != nil {
			return nil, err
		}
		return &node{kind: nNot, a: n}, nil
	case p.isOp("("):
		// A parenthesis opens a boolean expression, or an arithmetic one
		// when a comparison follows its close: (tcp[13] & 2) != 0.
		save, last := p.i, p.last
		p.next()
		n, err := p.expr()
		if err == nil && !p.isOp(")") {
			err = p.errf(p.peek(), "unexpected %q, expected )", p.peek().s)
		}
		if err == nil {
			p.next()
			if !p.isRelOp() {
				return n, nil
			}
		}
		p.i, p.last = save, last
		r, rerr := p.relation()
		if rerr != nil && err != nil {
			return nil, err
		}
		return r, rerr
	case t.kind == tkWord && p.startsArith(t):
		return p.relation()
	}
	return p.primitive()
}

// startsArith tells whether a word begins an arithmetic relation: a
// number, len, or a protocol followed by '['.
func (p *parser) startsArith(t token) bool {
	if t.s == "len" {
		return true
	}
	if p.toks[p.i+1].kind == tkOp && p.toks[p.i+1].s == "[" {
		return true
	}
	if _, err := parseNum(t.s); err == nil {
		// A number starts a relation when a comparison follows it;
		// otherwise it is a bare id ("port 80 or 8080").
		return p.relAhead()
	}
	return false
}

// relAhead tells whether a comparison operator follows before the next
// and/or (a number starting a relation: 2 < tcp[13]).
func (p *parser) relAhead() bool {
	for j := p.i; j < len(p.toks); j++ {
		t := p.toks[j]
		if t.kind == tkEOF || (t.kind == tkWord && (t.s == "and" || t.s == "or")) || (t.kind == tkOp && (t.s == "&&" || t.s == "||")) {
			return false
		}
		if t.kind == tkOp && relOps[t.s] {
			return true
		}
	}
	return false
}

var relOps = map[string]bool{"=": true, "==": true, "!=": true, "<": true, "<=": true, ">": true, ">=": true}

func (p *parser) isRelOp() bool { t := p.peek(); return t.kind == tkOp && relOps[t.s] }

var (
	protoQuals = map[string]bool{"ether": true, "ip": true, "ip6": true, "arp": true, "rarp": true, "tcp": true, "udp": true, "sctp": true}
	// Protocols that are a whole primitive alone.
	protoAlone = map[string]bool{"ether": false, "ip": true, "ip6": true, "arp": true, "rarp": true, "tcp": true, "udp": true,
		"sctp": true, "icmp": true, "icmp6": true, "igmp": true}
	typeWords = map[string]bool{"host": true, "net": true, "port": true, "portrange": true, "proto": true}
	// Words of pcap-filter(7) this compiler does not take, with why.
	unsupported = map[string]string{
		"vlan":       "VLAN tags are taken off by the kernel before a socket filter runs; filter on what the tag carries",
		"mpls":       "MPLS is not supported",
		"pppoed":     "PPPoE is not supported",
		"pppoes":     "PPPoE is not supported",
		"geneve":     "Geneve is not supported",
		"gateway":    "gateway needs host name lookups and is not supported",
		"broadcast":  "broadcast is supported only as \"ether broadcast\"",
		"multicast":  "multicast is supported only as \"ether multicast\"",
		"protochain": "protochain is not supported",
		"inbound":    "inbound/outbound are not supported",
		"outbound":   "inbound/outbound are not supported",
		"ifname":     "ifname is not supported", "on": "pflog fields are not supported",
		"wlan": "802.11 is not supported", "type": "802.11 is not supported", "subtype": "802.11 is not supported",
		"atalk": "AppleTalk is not supported", "aarp": "AppleTalk is not supported", "decnet": "DECnet is not supported",
		"iso": "ISO protocols are not supported", "esis": "ISO protocols are not supported", "isis": "ISO protocols are not supported",
		"clnp": "ISO protocols are not supported", "stp": "STP is not supported", "ipx": "IPX is not supported",
		"netbeui": "NetBEUI is not supported", "lat": "LAT is not supported", "sca": "SCA is not supported",
		"mopdl": "MOP is not supported", "moprc": "MOP is not supported", "fddi": "FDDI is not supported",
		"tr": "token ring is not supported", "ah": "use \"ip proto 51\"", "esp": "use \"ip proto 50\"",
		"pim": "use \"ip proto 103\"", "vrrp": "use \"ip proto 112\"", "carp": "use \"ip proto 112\"",
		"radio": "802.11 radio headers are not supported", "llc": "LLC is not supported", "slip": "SLIP is not supported",
		"less": "", "greater": "",
	}
)

func (p *parser) primitive() (*node, error) {
	start := p.peek()
	if why, ok := unsupported[start.s]; ok && why != "" && start.kind == tkWord {
		return nil, p.errf(start, "%q: %s", start.s, why)
	}
	switch start.s {
	case "less", "greater":
		p.next()
		t := p.next()
		k, err := parseNum(t.s)
		if t.kind != tkWord || err != nil {
			return nil, p.errf(t, "%s needs a number", start.s)
		}
		op := "<="
		if start.s == "greater" {
			op = ">="
		}
		return &node{kind: nRel, rel: &rel{op: op, l: &arith{op: "len"}, r: &arith{k: k}}}, nil
	}
	var q quals
	pos := start.pos
	// [proto]
	if t := p.peek(); t.kind == tkWord && protoQuals[t.s] {
		q.proto = t.s
		p.next()
		if !p.startsQualOrID() {
			if !protoAlone[q.proto] {
				return nil, p.errf(t, "%q needs host, src, dst, proto, broadcast or multicast after it", t.s)
			}
			p.last = nil
			return &node{kind: nPrim, prim: &prim{q: q, pos: pos}}, nil
		}
	} else if t.kind == tkWord && protoAlone[t.s] {
		p.next()
		p.last = nil
		return &node{kind: nPrim, prim: &prim{q: quals{proto: t.s}, pos: pos}}, nil
	}
	if q.proto == "ether" && (p.isWord("broadcast") || p.isWord("multicast")) {
		w := p.next().s
		p.last = nil
		return &node{kind: nPrim, prim: &prim{q: quals{proto: "ether", typ: w}, pos: pos}}, nil
	}
	// [dir]
	if p.isWord("src") || p.isWord("dst") {
		q.dir = p.next().s
		if (p.isWord("or") || p.isWord("and")) && p.toks[p.i+1].kind == tkWord && p.toks[p.i+1].s == map[string]string{"src": "dst", "dst": "src"}[q.dir] {
			q.dir = "src " + p.next().s + " dst"
			p.next()
		}
	}
	// [type]
	if t := p.peek(); t.kind == tkWord && typeWords[t.s] {
		q.typ = t.s
		p.next()
	}
	if q == (quals{}) {
		// A bare id takes the qualifiers of the primitive before it; at
		// the start libpcap refuses it, and so does this.
		if p.last == nil {
			return nil, p.errf(start, "%q needs host, net, port or a protocol before it", start.s)
		}
		q = *p.last
	}
	if q.typ == "" {
		q.typ = "host"
	}
	t := p.next()
	if t.kind != tkWord || typeWords[t.s] || t.s == "and" || t.s == "or" || t.s == "not" {
		return nil, p.errf(t, "expected an address, a port or a number after %q", strings.Join(strings.Fields(q.proto+" "+q.dir+" "+q.typ), " "))
	}
	pr := &prim{q: q, id: t.s, pos: t.pos}
	if q.typ == "net" && p.isWord("mask") {
		p.next()
		m := p.next()
		if m.kind != tkWord {
			return nil, p.errf(m, "mask needs an address")
		}
		pr.mask = m.s
	}
	if err := checkPrim(pr); err != nil {
		return nil, err
	}
	qq := q
	p.last = &qq
	return &node{kind: nPrim, prim: pr}, nil
}

// startsQualOrID tells whether what follows a protocol word belongs to
// its primitive (ip src 10.0.0.1, tcp port 80) rather than to the next.
func (p *parser) startsQualOrID() bool {
	t := p.peek()
	if t.kind != tkWord {
		return false
	}
	return t.s == "src" || t.s == "dst" || typeWords[t.s] || t.s == "broadcast" || t.s == "multicast"
}

// checkPrim refuses combinations pcap-filter(7) refuses, and ids this
// compiler cannot take (host and service names: nothing is looked up).
func checkPrim(pr *prim) error {
	q := pr.q
	bad := func(format string, a ...any) error { return &Error{Pos: pr.pos, Msg: fmt.Sprintf(format, a...)} }
	switch q.typ {
	case "host", "net":
		switch q.proto {
		case "tcp", "udp", "sctp":
			return bad("%q cannot qualify %s", q.proto, q.typ)
		case "ether":
			if q.typ == "net" {
				return bad("\"ether net\" is not a primitive")
			}
			if _, err := parseMAC(pr.id); err != nil {
				return bad("%q is not an Ethernet address", pr.id)
			}
			return nil
		}
		if q.typ == "host" {
			a, err := netip.ParseAddr(pr.id)
			if err != nil {
				return bad("%q is not an IP address (host names are not looked up)", pr.id)
			}
			if a.Zone() != "" {
				return bad("%q: zones are not supported", pr.id)
			}
			if a.Is6() && !a.Is4In6() && (q.proto == "ip" || q.proto == "arp" || q.proto == "rarp") {
				return bad("%s host %s: an IPv6 address", q.proto, pr.id)
			}
			if a.Is4() && q.proto == "ip6" {
				return bad("ip6 host %s: an IPv4 address", pr.id)
			}
			return nil
		}
		_, err := parseNet(pr.id, pr.mask)
		if err != nil {
			return bad("net %s: %v", pr.id, err)
		}
	case "port", "portrange":
		switch q.proto {
		case "", "tcp", "udp", "sctp":
		default:
			return bad("%q cannot qualify %s", q.proto, q.typ)
		}
		if q.typ == "port" {
			if _, err := parsePort(pr.id); err != nil {
				return bad("port %s: %v", pr.id, err)
			}
			return nil
		}
		if _, _, err := parseRange(pr.id); err != nil {
			return bad("portrange %s: %v", pr.id, err)
		}
	case "proto":
		if q.dir != "" {
			return bad("%q cannot qualify proto", q.dir)
		}
		if _, err := protoNumber(q.proto, pr.id); err != nil {
			return bad("proto %s: %v", pr.id, err)
		}
	}
	return nil
}

func parseNum(s string) (uint32, error) {
	v, err := strconv.ParseUint(s, 0, 32)
	return uint32(v), err
}

func parsePort(s string) (uint32, error) {
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("give a port number (service names are not looked up)")
	}
	if v > 65535 {
		return 0, fmt.Errorf("above 65535")
	}
	return uint32(v), nil
}

func parseRange(s string) (uint32, uint32, error) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return 0, 0, fmt.Errorf("give FIRST-LAST")
	}
	lo, err := parsePort(a)
	if err != nil {
		return 0, 0, err
	}
	hi, err := parsePort(b)
	if err != nil {
		return 0, 0, err
	}
	if lo > hi {
		lo, hi = hi, lo
	}
	return lo, hi, nil
}

// parseNet reads 10.0.0.0/8, 10.1 (the octets given), 2001:db8::/32 and
// "A mask M"; bits set outside the mask are an error, as in libpcap.
func parseNet(id, mask string) (netip.Prefix, error) {
	if mask != "" {
		a, err := netip.ParseAddr(id)
		m, err2 := netip.ParseAddr(mask)
		if err != nil || err2 != nil || !a.Is4() || !m.Is4() {
			return netip.Prefix{}, fmt.Errorf("mask needs IPv4 addresses")
		}
		mb := m.As4()
		v := uint32(mb[0])<<24 | uint32(mb[1])<<16 | uint32(mb[2])<<8 | uint32(mb[3])
		bits := 0
		for v&0x80000000 != 0 {
			bits++
			v <<= 1
		}
		if v != 0 {
			return netip.Prefix{}, fmt.Errorf("mask %s is not contiguous", mask)
		}
		return checkNet(netip.PrefixFrom(a, bits), id+" mask "+mask)
	}
	if strings.Contains(id, "/") {
		pf, err := netip.ParsePrefix(id)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("not a network")
		}
		return checkNet(pf, id)
	}
	if a, err := netip.ParseAddr(id); err == nil {
		return checkNet(netip.PrefixFrom(a, a.BitLen()), id)
	}
	// 10, 10.1, 10.1.2: the octets given are the network.
	parts := strings.Split(id, ".")
	if len(parts) > 3 {
		return netip.Prefix{}, fmt.Errorf("not a network")
	}
	var b [4]byte
	for i, s := range parts {
		v, err := strconv.ParseUint(s, 10, 8)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("not a network (host names are not looked up)")
		}
		b[i] = byte(v)
	}
	return netip.PrefixFrom(netip.AddrFrom4(b), 8*len(parts)), nil
}

func checkNet(pf netip.Prefix, id string) (netip.Prefix, error) {
	if pf.Addr().Zone() != "" {
		return pf, fmt.Errorf("zones are not supported")
	}
	if pf.Masked() != pf {
		return pf, fmt.Errorf("%s has bits set outside its mask", id)
	}
	return pf, nil
}

func parseMAC(s string) ([6]byte, error) {
	var out [6]byte
	parts := strings.FieldsFunc(s, func(r rune) bool { return r == ':' || r == '-' || r == '.' })
	if len(parts) != 6 {
		return out, fmt.Errorf("not an Ethernet address")
	}
	for i, x := range parts {
		v, err := strconv.ParseUint(x, 16, 8)
		if err != nil {
			return out, fmt.Errorf("not an Ethernet address")
		}
		out[i] = byte(v)
	}
	return out, nil
}

var protoNames = map[string]uint32{"icmp": 1, "igmp": 2, "tcp": 6, "udp": 17, "icmp6": 58, "sctp": 132,
	"ip": 0x800, "ip6": 0x86dd, "arp": 0x806, "rarp": 0x8035}

// protoNumber reads the number of "ip proto 17", "proto \tcp",
// "ether proto \arp".
func protoNumber(qual, id string) (uint32, error) {
	if v, err := parseNum(id); err == nil {
		lim := uint32(255)
		if qual == "ether" {
			lim = 65535
		}
		if v > lim {
			return 0, fmt.Errorf("above %d", lim)
		}
		return v, nil
	}
	name := strings.TrimPrefix(id, "\\")
	v, ok := protoNames[name]
	isEther := name == "ip" || name == "ip6" || name == "arp" || name == "rarp"
	if !ok || isEther != (qual == "ether") {
		return 0, fmt.Errorf("unknown protocol %q", id)
	}
	return v, nil
}

// Arithmetic: | lowest, then &, shifts, + -, * / %, as in libpcap.
var arithLevels = [][]string{{"|"}, {"&"}, {"<<", ">>"}, {"+", "-"}, {"*", "/", "%"}}

// accessors are the protocols whose bytes a relation may read.
var accessors = map[string]bool{"ether": true, "ip": true, "ip6": true, "tcp": true, "udp": true, "sctp": true, "icmp": true, "icmp6": true}

var constants = map[string]uint32{
	"tcpflags": 13, "tcp-fin": 0x01, "tcp-syn": 0x02, "tcp-rst": 0x04, "tcp-push": 0x08, "tcp-ack": 0x10, "tcp-urg": 0x20,
	"tcp-ece": 0x40, "tcp-cwr": 0x80,
	"icmptype": 0, "icmpcode": 1, "icmp-echoreply": 0, "icmp-unreach": 3, "icmp-sourcequench": 4, "icmp-redirect": 5,
	"icmp-echo": 8, "icmp-routeradvert": 9, "icmp-routersolicit": 10, "icmp-timxceed": 11, "icmp-paramprob": 12,
	"icmp-tstamp": 13, "icmp-tstampreply": 14, "icmp-ireq": 15, "icmp-ireqreply": 16, "icmp-maskreq": 17, "icmp-maskreply": 18,
	"icmp6type": 0, "icmp6code": 1, "icmp6-echo": 128, "icmp6-echoreply": 129, "icmp6-destinationunreach": 1,
	"icmp6-packettoobig": 2, "icmp6-timeexceeded": 3, "icmp6-parameterproblem": 4, "icmp6-routersolicit": 133,
	"icmp6-routeradvert": 134, "icmp6-neighborsolicit": 135, "icmp6-neighboradvert": 136, "icmp6-redirect": 137,
}

func (p *parser) relation() (*node, error) {
	l, err := p.arith(0)
	if err != nil {
		return nil, err
	}
	t := p.next()
	if t.kind != tkOp || !relOps[t.s] {
		return nil, p.errf(t, "expected a comparison (=, !=, <, <=, >, >=)")
	}
	r, err := p.arith(0)
	if err != nil {
		return nil, err
	}
	op := t.s
	if op == "==" {
		op = "="
	}
	p.last = nil
	return &node{kind: nRel, rel: &rel{op: op, l: l, r: r}}, nil
}

func (p *parser) arith(level int) (*arith, error) {
	if level == len(arithLevels) {
		return p.operand()
	}
	a, err := p.arith(level + 1)
	if err != nil {
		return nil, err
	}
	for {
		t := p.peek()
		found := false
		for _, op := range arithLevels[level] {
			if t.kind == tkOp && t.s == op {
				found = true
			}
		}
		if !found {
			return a, nil
		}
		p.next()
		b, err := p.arith(level + 1)
		if err != nil {
			return nil, err
		}
		a = &arith{op: t.s, a: a, b: b}
	}
}

func (p *parser) operand() (*arith, error) {
	leave, err := p.enter()
	if err != nil {
		return nil, err
	}
	defer leave()
	t := p.next()
	switch {
	case t.kind == tkOp && t.s == "(":
		a, err := p.arith(0)
		if err != nil {
			return nil, err
		}
		if c := p.next(); c.kind != tkOp || c.s != ")" {
			return nil, p.errf(c, "expected )")
		}
		return a, nil
	case t.kind == tkOp && t.s == "-":
		a, err := p.operand()
		if err != nil {
			return nil, err
		}
		return &arith{op: "-", a: &arith{k: 0}, b: a}, nil
	case t.kind != tkWord:
		return nil, p.errf(t, "expected a number, len or PROTO[OFFSET]")
	case t.s == "len":
		return &arith{op: "len"}, nil
	case accessors[t.s] && p.isOp("["):
		p.next()
		idx, err := p.arith(0)
		if err != nil {
			return nil, err
		}
		size := 1
		if p.isOp(":") {
			p.next()
			s := p.next()
			switch s.s {
			case "1", "2", "4":
				size = int(s.s[0] - '0')
			default:
				return nil, p.errf(s, "the size of %s[...] must be 1, 2 or 4", t.s)
			}
		}
		if c := p.next(); c.kind != tkOp || c.s != "]" {
			return nil, p.errf(c, "expected ]")
		}
		return &arith{op: "load", proto: t.s, idx: idx, size: size}, nil
	}
	if v, ok := constants[t.s]; ok {
		return &arith{k: v}, nil
	}
	if _, ok := accessors[t.s]; ok || t.s == "arp" || t.s == "rarp" || t.s == "igmp" {
		return nil, p.errf(t, "%s[...]: only ether, ip, ip6, tcp, udp, sctp, icmp and icmp6 can be read", t.s)
	}
	v, err := parseNum(t.s)
	if err != nil {
		return nil, p.errf(t, "%q is not a number or a known constant", t.s)
	}
	return &arith{k: v}, nil
}
