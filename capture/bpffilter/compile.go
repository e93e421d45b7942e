// Package bpffilter compiles capture filter expressions in the syntax of
// tcpdump and pcap-filter(7) to classic BPF programs, in pure Go: no
// tcpdump binary, no libpcap, no cgo. The programs are for a link type
// (Ethernet, raw IP as tun and WireGuard interfaces give it, Linux cooked)
// and follow the structure of libpcap's (the same checks, loads and
// offsets), so that they accept the same packets; the tests run both
// over real captures to hold that.
//
// The language covered is what is written to scope a capture: host, net
// (CIDR, "mask", short forms), port, portrange with src/dst and
// tcp/udp/sctp qualifiers; the protocols ip, ip6, arp, rarp, tcp, udp,
// sctp, icmp, icmp6, igmp; ip/ip6/ether proto; ether host/src/dst,
// broadcast and multicast; len, less, greater; relations over
// ether/ip/ip6/tcp/udp/sctp/icmp/icmp6[offset:size] with the tcpflags and
// icmptype constants; and, or, not, !, &&, || and parentheses, a bare id
// inheriting the qualifiers before it ("port 80 or 8080"). What it does
// not cover (vlan, mpls, host and service names, gateway, broadcast of
// ip, inbound, 802.11...) is refused with an Error that names the word
// and why; it never compiles a program that means something else.
package bpffilter

import (
	"errors"
	"fmt"
	"net/netip"

	"golang.org/x/net/bpf"
)

// LinkType is the link-layer header that the packets a program reads
// start with.
type LinkType int

const (
	// Ethernet: a 14-byte Ethernet header (Linux loopback has one too).
	Ethernet LinkType = iota
	// Raw: the IPv4 or IPv6 header first, no link header (tun, WireGuard,
	// ipip; libpcap's DLT_RAW).
	Raw
	// LinuxSLL: the 16-byte Linux cooked header (DLT_LINUX_SLL).
	LinuxSLL
)

func (l LinkType) String() string {
	switch l {
	case Ethernet:
		return "Ethernet"
	case Raw:
		return "raw IP"
	case LinuxSLL:
		return "Linux cooked"
	}
	return fmt.Sprintf("link type %d", int(l))
}

// Accept is what a program returns for a packet it accepts: the bytes
// to keep, as libpcap's programs return (tcpdump's default snap length).
const Accept = 262144

// maxInsns is the kernel's limit on a classic BPF program (BPF_MAXINSNS).
const maxInsns = 4096

// ErrLinkType is wrapped by the errors of expressions that need a header
// the link type lacks (ether host on a raw IP interface).
var ErrLinkType = errors.New("not possible on this link type")

// Error is an expression that cannot be compiled: its text, the offset in
// it where the problem is, and what the problem is.
type Error struct {
	Expr string
	Pos  int
	Msg  string
	err  error
}

func (e *Error) Error() string {
	return fmt.Sprintf("filter %q: at offset %d: %s", e.Expr, e.Pos, e.Msg)
}

func (e *Error) Unwrap() error { return e.err }

// Filter is a parsed expression, ready to compile for any link type.
type Filter struct {
	expr string
	root *node
}

// Parse reads an expression; errors are *Error.
func Parse(expr string) (*Filter, error) {
	root, err := parse(expr)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			e.Expr = expr
		}
		return nil, err
	}
	return &Filter{expr: expr, root: root}, nil
}

// String returns the expression.
func (f *Filter) String() string { return f.expr }

// Compile parses an expression and compiles it for a link type.
func Compile(expr string, lt LinkType) ([]bpf.RawInstruction, error) {
	f, err := Parse(expr)
	if err != nil {
		return nil, err
	}
	return f.Compile(lt)
}

// Compile returns the program for a link type. An expression that needs
// a header the link type lacks gives an *Error wrapping ErrLinkType; one
// that can match no packet of the link type (arp on raw IP) gives a
// program that rejects every packet.
func (f *Filter) Compile(lt LinkType) ([]bpf.RawInstruction, error) {
	g := &gen{expr: f.expr}
	switch lt {
	case Ethernet:
		g.link = link{nh: 14, et: 12, ether: true}
	case Raw:
		g.link = link{raw: true}
	case LinuxSLL:
		g.link = link{nh: 16, et: 14}
	default:
		return nil, &Error{Expr: f.expr, Msg: fmt.Sprintf("%v is not supported", lt), err: ErrLinkType}
	}
	g.lt = lt
	acc, rej := g.label(), g.label()
	if err := g.node(f.root, acc, rej); err != nil {
		return nil, err
	}
	g.place(acc)
	g.emit(bpf.RetConstant{Val: Accept})
	g.place(rej)
	g.emit(bpf.RetConstant{Val: 0})
	g.optimize()
	return g.assemble()
}

type link struct {
	nh    uint32 // offset of the network header
	et    uint32 // offset of the EtherType (not raw)
	ether bool   // an Ethernet header: MAC addresses
	raw   bool   // no link header: the IP version tells the protocol
}

type label int

// insn is an instruction whose jumps are labels until assembly, or a
// label's place (at > 0).
type insn struct {
	ins  bpf.Instruction // not a jump
	op   uint16          // a conditional jump's opcode (BPF_JMP|cond|src)
	k    uint32
	t, f label
	ja   label // an unconditional jump
	at   label
}

type gen struct {
	expr   string
	link   link
	lt     LinkType
	code   []insn
	labels int
	mem    int // scratch slots in use
}

const (
	jeq  = 0x15
	jgt  = 0x25
	jge  = 0x35
	jset = 0x45
	srcX = 0x08
)

func (g *gen) label() label           { g.labels++; return label(g.labels) }
func (g *gen) place(l label)          { g.code = append(g.code, insn{at: l}) }
func (g *gen) emit(i bpf.Instruction) { g.code = append(g.code, insn{ins: i}) }
func (g *gen) jump(op uint16, k uint32, t, f label) {
	g.code = append(g.code, insn{op: op, k: k, t: t, f: f})
}
func (g *gen) goTo(l label) { g.code = append(g.code, insn{ja: l}) }

func (g *gen) errf(pos int, wrapped error, format string, a ...any) error {
	return &Error{Expr: g.expr, Pos: pos, Msg: fmt.Sprintf(format, a...), err: wrapped}
}

// assemble resolves labels into jump offsets. A conditional jump reaches
// 255 instructions at most: a farther target is reached through an
// unconditional jump put right after it.
func (g *gen) assemble() ([]bpf.RawInstruction, error) {
	for {
		pos := map[label]int{}
		n := 0
		for _, c := range g.code {
			if c.at > 0 {
				pos[c.at] = n
				continue
			}
			n++
		}
		if n > maxInsns {
			return nil, g.errf(0, nil, "the program would have %d instructions, over the kernel's %d", n, maxInsns)
		}
		out := make([]bpf.RawInstruction, 0, n)
		fixed := true
		for i, c := range g.code {
			if c.at > 0 {
				continue
			}
			here := len(out)
			switch {
			case c.ins != nil:
				r, err := c.ins.Assemble()
				if err != nil {
					return nil, g.errf(0, nil, "assemble: %v", err)
				}
				out = append(out, r)
			case c.ja > 0:
				out = append(out, bpf.RawInstruction{Op: 0x05, K: uint32(pos[c.ja] - here - 1)})
			default:
				dt, df := pos[c.t]-here-1, pos[c.f]-here-1
				if dt > 255 || df > 255 {
					// Trampolines after the jump, and start again.
					var tramp []insn
					if dt > 255 {
						l := g.label()
						tramp = append(tramp, insn{at: l}, insn{ja: c.t})
						g.code[i].t = l
					}
					if df > 255 {
						l := g.label()
						tramp = append(tramp, insn{at: l}, insn{ja: c.f})
						g.code[i].f = l
					}
					g.code = append(g.code[:i+1], append(tramp, g.code[i+1:]...)...)
					fixed = false
				}
				out = append(out, bpf.RawInstruction{Op: c.op, Jt: uint8(dt), Jf: uint8(df), K: c.k})
			}
			if !fixed {
				break
			}
		}
		if fixed {
			return out, nil
		}
	}
}

func (g *gen) node(n *node, t, f label) error {
	switch n.kind {
	case nTrue:
		g.goTo(t)
	case nAnd:
		mid := g.label()
		if err := g.node(n.a, mid, f); err != nil {
			return err
		}
		g.place(mid)
		return g.node(n.b, t, f)
	case nOr:
		mid := g.label()
		if err := g.node(n.a, t, mid); err != nil {
			return err
		}
		g.place(mid)
		return g.node(n.b, t, f)
	case nNot:
		return g.node(n.a, f, t)
	case nPrim:
		return g.prim(n.prim, t, f)
	case nRel:
		return g.relation(n.rel, t, f)
	}
	return nil
}

// linkProto checks the network protocol (an EtherType): the EtherType
// field, or on raw IP the version nibble.
func (g *gen) linkProto(et uint32, t, f label) {
	if g.link.raw {
		var v uint32
		switch et {
		case 0x800:
			v = 0x40
		case 0x86dd:
			v = 0x60
		default:
			g.goTo(f) // no other protocol has no link header
			return
		}
		g.emit(bpf.LoadAbsolute{Off: 0, Size: 1})
		g.emit(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0xf0})
		g.jump(jeq, v, t, f)
		return
	}
	g.emit(bpf.LoadAbsolute{Off: g.link.et, Size: 2})
	g.jump(jeq, et, t, f)
}

// ip4Proto checks IPv4 and its protocol field.
func (g *gen) ip4Proto(p uint32, t, f label) {
	l := g.label()
	g.linkProto(0x800, l, f)
	g.place(l)
	g.emit(bpf.LoadAbsolute{Off: g.link.nh + 9, Size: 1})
	g.jump(jeq, p, t, f)
}

// ip6Proto checks IPv6 and its next header, or the next header after a
// fragment header, as libpcap does.
func (g *gen) ip6Proto(p uint32, t, f label) {
	l1, l2, l3 := g.label(), g.label(), g.label()
	g.linkProto(0x86dd, l1, f)
	g.place(l1)
	g.emit(bpf.LoadAbsolute{Off: g.link.nh + 6, Size: 1})
	g.jump(jeq, p, t, l2)
	g.place(l2)
	g.jump(jeq, 44, l3, f)
	g.place(l3)
	g.emit(bpf.LoadAbsolute{Off: g.link.nh + 40, Size: 1})
	g.jump(jeq, p, t, f)
}

// either generates a or b.
func (g *gen) either(a, b func(t, f label), t, f label) {
	mid := g.label()
	a(t, mid)
	g.place(mid)
	b(t, f)
}

func (g *gen) prim(p *prim, t, f label) error {
	q := p.q
	switch q.typ {
	case "":
		return g.protoAlone(p, t, f)
	case "broadcast", "multicast":
		if !g.link.ether {
			return g.errf(p.pos, ErrLinkType, "ether %s: a %v interface has no Ethernet header", q.typ, g.lt)
		}
		if q.typ == "multicast" {
			g.emit(bpf.LoadAbsolute{Off: 0, Size: 1})
			g.jump(jset, 1, t, f)
			return nil
		}
		l := g.label()
		g.emit(bpf.LoadAbsolute{Off: 2, Size: 4})
		g.jump(jeq, 0xffffffff, l, f)
		g.place(l)
		g.emit(bpf.LoadAbsolute{Off: 0, Size: 2})
		g.jump(jeq, 0xffff, t, f)
		return nil
	case "proto":
		n, err := protoNumber(q.proto, p.id)
		if err != nil {
			return g.errf(p.pos, nil, "%v", err)
		}
		switch q.proto {
		case "ether":
			g.linkProto(n, t, f)
		case "ip":
			g.ip4Proto(n, t, f)
		case "ip6":
			g.ip6Proto(n, t, f)
		case "":
			g.either(func(t, f label) { g.ip4Proto(n, t, f) }, func(t, f label) { g.ip6Proto(n, t, f) }, t, f)
		default:
			return g.errf(p.pos, nil, "%q cannot qualify proto", q.proto)
		}
		return nil
	case "port", "portrange":
		return g.port(p, t, f)
	case "host", "net":
		if q.proto == "ether" {
			return g.etherHost(p, t, f)
		}
		return g.host(p, t, f)
	}
	return g.errf(p.pos, nil, "%q is not supported", q.typ)
}

func (g *gen) protoAlone(p *prim, t, f label) error {
	switch p.q.proto {
	case "ip":
		g.linkProto(0x800, t, f)
	case "ip6":
		g.linkProto(0x86dd, t, f)
	case "arp":
		g.linkProto(0x806, t, f)
	case "rarp":
		g.linkProto(0x8035, t, f)
	case "icmp":
		g.ip4Proto(1, t, f)
	case "igmp":
		g.ip4Proto(2, t, f)
	case "icmp6":
		g.ip6Proto(58, t, f)
	case "tcp", "udp", "sctp":
		n := protoNames[p.q.proto]
		g.either(func(t, f label) { g.ip4Proto(n, t, f) }, func(t, f label) { g.ip6Proto(n, t, f) }, t, f)
	default:
		return g.errf(p.pos, nil, "%q is not a protocol this compiler knows", p.q.proto)
	}
	return nil
}

// words compares the words at off (masked) with want; all equal → t.
func (g *gen) words(off uint32, want, mask []uint32, t, f label) {
	var idx []int
	for i := range want {
		if mask[i] != 0 {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		g.goTo(t)
		return
	}
	for j, i := range idx {
		next := t
		if j < len(idx)-1 {
			next = g.label()
		}
		g.emit(bpf.LoadAbsolute{Off: off + 4*uint32(i), Size: 4})
		if mask[i] != 0xffffffff {
			g.emit(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: mask[i]})
		}
		g.jump(jeq, want[i]&mask[i], next, f)
		if next != t {
			g.place(next)
		}
	}
}

// dir applies a direction to a check of the source or the destination.
func (g *gen) dir(d string, check func(src bool, t, f label), t, f label) {
	switch d {
	case "src":
		check(true, t, f)
	case "dst":
		check(false, t, f)
	case "src and dst":
		mid := g.label()
		check(true, mid, f)
		g.place(mid)
		check(false, t, f)
	default: // "" and "src or dst"
		mid := g.label()
		check(true, t, mid)
		g.place(mid)
		check(false, t, f)
	}
}

func (g *gen) host(p *prim, t, f label) error {
	var pf netip.Prefix
	if p.q.typ == "host" {
		a, err := netip.ParseAddr(p.id)
		if err != nil {
			return g.errf(p.pos, nil, "%q is not an IP address", p.id)
		}
		pf = netip.PrefixFrom(a, a.BitLen())
	} else {
		var err error
		if pf, err = parseNet(p.id, p.mask); err != nil {
			return g.errf(p.pos, nil, "net %s: %v", p.id, err)
		}
	}
	a := pf.Addr()
	raw := a.AsSlice()
	want := make([]uint32, len(raw)/4)
	mask := make([]uint32, len(raw)/4)
	for i := range want {
		want[i] = uint32(raw[4*i])<<24 | uint32(raw[4*i+1])<<16 | uint32(raw[4*i+2])<<8 | uint32(raw[4*i+3])
		bits := min(max(pf.Bits()-32*i, 0), 32)
		if bits > 0 {
			mask[i] = ^uint32(0) << (32 - bits)
		}
	}
	nh := g.link.nh
	part := func(et, srcOff, dstOff uint32) func(t, f label) {
		return func(t, f label) {
			l := g.label()
			g.linkProto(et, l, f)
			g.place(l)
			g.dir(p.q.dir, func(src bool, t, f label) {
				off := dstOff
				if src {
					off = srcOff
				}
				g.words(off, want, mask, t, f)
			}, t, f)
		}
	}
	if a.Is6() {
		if p.q.proto != "" && p.q.proto != "ip6" {
			return g.errf(p.pos, nil, "%s %s %s: an IPv6 address", p.q.proto, p.q.typ, p.id)
		}
		part(0x86dd, nh+8, nh+24)(t, f)
		return nil
	}
	ip, arp, rarp := part(0x800, nh+12, nh+16), part(0x806, nh+14, nh+24), part(0x8035, nh+14, nh+24)
	switch p.q.proto {
	case "ip":
		ip(t, f)
	case "arp":
		arp(t, f)
	case "rarp":
		rarp(t, f)
	case "":
		g.either(ip, func(t, f label) { g.either(arp, rarp, t, f) }, t, f)
	default:
		return g.errf(p.pos, nil, "%s %s %s: an IPv4 address", p.q.proto, p.q.typ, p.id)
	}
	return nil
}

func (g *gen) etherHost(p *prim, t, f label) error {
	if !g.link.ether {
		return g.errf(p.pos, ErrLinkType, "ether %s: a %v interface has no Ethernet header", p.q.typ, g.lt)
	}
	mac, err := parseMAC(p.id)
	if err != nil {
		return g.errf(p.pos, nil, "%q is not an Ethernet address", p.id)
	}
	last := uint32(mac[2])<<24 | uint32(mac[3])<<16 | uint32(mac[4])<<8 | uint32(mac[5])
	first := uint32(mac[0])<<8 | uint32(mac[1])
	g.dir(p.q.dir, func(src bool, t, f label) {
		base := uint32(0)
		if src {
			base = 6
		}
		l := g.label()
		g.emit(bpf.LoadAbsolute{Off: base + 2, Size: 4})
		g.jump(jeq, last, l, f)
		g.place(l)
		g.emit(bpf.LoadAbsolute{Off: base, Size: 2})
		g.jump(jeq, first, t, f)
	}, t, f)
	return nil
}

// port checks TCP, UDP or SCTP ports: IPv6 with the transport header
// right after the fixed header, IPv4 not a later fragment, as libpcap.
func (g *gen) port(p *prim, t, f label) error {
	var lo, hi uint32
	var err error
	if p.q.typ == "port" {
		lo, err = parsePort(p.id)
		hi = lo
	} else {
		lo, hi, err = parseRange(p.id)
	}
	if err != nil {
		return g.errf(p.pos, nil, "%s %s: %v", p.q.typ, p.id, err)
	}
	protos := []uint32{132, 6, 17}
	if p.q.proto != "" {
		protos = []uint32{protoNames[p.q.proto]}
	}
	nh := g.link.nh
	cmp := func(load func(off uint32), srcOff uint32) func(src bool, t, f label) {
		return func(src bool, t, f label) {
			off := srcOff
			if !src {
				off += 2
			}
			load(off)
			if lo == hi {
				g.jump(jeq, lo, t, f)
				return
			}
			l := g.label()
			g.jump(jge, lo, l, f)
			g.place(l)
			g.jump(jgt, hi, f, t)
		}
	}
	protoIn := func(off uint32, t, f label) {
		g.emit(bpf.LoadAbsolute{Off: off, Size: 1})
		for i, pr := range protos {
			next := f
			if i < len(protos)-1 {
				next = g.label()
			}
			g.jump(jeq, pr, t, next)
			if next != f {
				g.place(next)
			}
		}
	}
	v6 := func(t, f label) {
		l1, l2 := g.label(), g.label()
		g.linkProto(0x86dd, l1, f)
		g.place(l1)
		protoIn(nh+6, l2, f)
		g.place(l2)
		g.dir(p.q.dir, cmp(func(off uint32) { g.emit(bpf.LoadAbsolute{Off: off, Size: 2}) }, nh+40), t, f)
	}
	v4 := func(t, f label) {
		l1, l2, l3 := g.label(), g.label(), g.label()
		g.linkProto(0x800, l1, f)
		g.place(l1)
		protoIn(nh+9, l2, f)
		g.place(l2)
		g.emit(bpf.LoadAbsolute{Off: nh + 6, Size: 2})
		g.jump(jset, 0x1fff, f, l3)
		g.place(l3)
		g.emit(bpf.LoadMemShift{Off: nh})
		g.dir(p.q.dir, cmp(func(off uint32) { g.emit(bpf.LoadIndirect{Off: off, Size: 2}) }, nh), t, f)
	}
	g.either(v6, v4, t, f)
	return nil
}
