package bpffilter

import (
	"slices"

	"golang.org/x/net/bpf"
)

// The transport protocols whose header follows IPv4's, by accessor.
var transport = map[string]uint32{"tcp": 6, "udp": 17, "sctp": 132, "icmp": 1}

// relation compiles "arith op arith": first the checks that every
// protocol read exists in the packet (IPv4, the protocol, not a later
// fragment, as libpcap), then the values and the comparison.
func (g *gen) relation(r *rel, t, f label) error {
	l, rr := fold(r.l), fold(r.r)
	var protos []string
	collect(l, &protos)
	collect(rr, &protos)
	for _, p := range protos {
		next := g.label()
		switch {
		case p == "ether":
			// The link header's bytes, whatever the link type, as libpcap.
			continue
		case p == "ip":
			g.linkProto(0x800, next, f)
		case p == "ip6":
			g.linkProto(0x86dd, next, f)
		case p == "icmp6":
			l1 := g.label()
			g.linkProto(0x86dd, l1, f)
			g.place(l1)
			g.emit(bpf.LoadAbsolute{Off: g.link.nh + 6, Size: 1})
			g.jump(jeq, 58, next, f)
		default:
			l1 := g.label()
			g.ip4Proto(transport[p], l1, f)
			g.place(l1)
			g.emit(bpf.LoadAbsolute{Off: g.link.nh + 6, Size: 2})
			g.jump(jset, 0x1fff, f, next)
		}
		g.place(next)
	}
	op, swap := map[string]uint16{"=": jeq, "!=": jeq, ">": jgt, ">=": jge, "<": jge, "<=": jgt}[r.op], false
	switch r.op {
	case "!=", "<", "<=":
		swap = true
	}
	jt, jf := t, f
	if swap {
		jt, jf = f, t
	}
	if l.op == "" && rr.op == "" {
		if cmpConst(r.op, l.k, rr.k) {
			g.goTo(t)
		} else {
			g.goTo(f)
		}
		return nil
	}
	if rr.op == "" {
		if err := g.arith(l); err != nil {
			return err
		}
		g.jump(op, rr.k, jt, jf)
		return nil
	}
	if err := g.arith(rr); err != nil {
		return err
	}
	m, err := g.push()
	if err != nil {
		return err
	}
	if err := g.arith(l); err != nil {
		return err
	}
	g.emit(bpf.LoadScratch{Dst: bpf.RegX, N: m})
	g.mem--
	g.jump(op|srcX, 0, jt, jf)
	return nil
}

func cmpConst(op string, a, b uint32) bool {
	switch op {
	case "=":
		return a == b
	case "!=":
		return a != b
	case ">":
		return a > b
	case ">=":
		return a >= b
	case "<":
		return a < b
	}
	return a <= b
}

// collect lists the protocols an expression reads, in order, once each.
func collect(a *arith, out *[]string) {
	if a == nil {
		return
	}
	if a.op == "load" && !slices.Contains(*out, a.proto) {
		*out = append(*out, a.proto)
	}
	collect(a.a, out)
	collect(a.b, out)
	collect(a.idx, out)
}

// fold computes the operations between constants.
func fold(a *arith) *arith {
	if a == nil {
		return nil
	}
	c := *a
	c.a, c.b, c.idx = fold(a.a), fold(a.b), fold(a.idx)
	if c.a != nil && c.b != nil && c.a.op == "" && c.b.op == "" {
		x, y := c.a.k, c.b.k
		var v uint32
		switch c.op {
		case "+":
			v = x + y
		case "-":
			v = x - y
		case "*":
			v = x * y
		case "/", "%":
			if y == 0 {
				return &c // refused when generated
			}
			if c.op == "/" {
				v = x / y
			} else {
				v = x % y
			}
		case "&":
			v = x & y
		case "|":
			v = x | y
		case "<<":
			v = x << (y & 31)
		case ">>":
			v = x >> (y & 31)
		}
		return &arith{k: v}
	}
	return &c
}

var aluOps = map[string]bpf.ALUOp{"+": bpf.ALUOpAdd, "-": bpf.ALUOpSub, "*": bpf.ALUOpMul, "/": bpf.ALUOpDiv, "%": bpf.ALUOpMod,
	"&": bpf.ALUOpAnd, "|": bpf.ALUOpOr, "<<": bpf.ALUOpShiftLeft, ">>": bpf.ALUOpShiftRight}

// push takes a scratch memory slot (the machine has 16).
func (g *gen) push() (int, error) {
	if g.mem >= 16 {
		return 0, g.errf(0, nil, "the arithmetic is nested too deep for the 16 scratch slots")
	}
	g.emit(bpf.StoreScratch{Src: bpf.RegA, N: g.mem})
	g.mem++
	return g.mem - 1, nil
}

// arith leaves the value of an expression in A.
func (g *gen) arith(a *arith) error {
	switch a.op {
	case "":
		g.emit(bpf.LoadConstant{Dst: bpf.RegA, Val: a.k})
		return nil
	case "len":
		g.emit(bpf.LoadExtension{Num: bpf.ExtLen})
		return nil
	case "load":
		return g.load(a)
	}
	op := aluOps[a.op]
	if a.b.op == "" {
		if (a.op == "/" || a.op == "%") && a.b.k == 0 {
			return g.errf(0, nil, "division by zero")
		}
		if err := g.arith(a.a); err != nil {
			return err
		}
		g.emit(bpf.ALUOpConstant{Op: op, Val: a.b.k})
		return nil
	}
	if err := g.arith(a.b); err != nil {
		return err
	}
	m, err := g.push()
	if err != nil {
		return err
	}
	if err := g.arith(a.a); err != nil {
		return err
	}
	g.emit(bpf.LoadScratch{Dst: bpf.RegX, N: m})
	g.mem--
	g.emit(bpf.ALUOpX{Op: op})
	return nil
}

// load reads proto[idx:size]. Transport headers are found after the IPv4
// header (its length in X); icmp6 after IPv6's fixed header.
func (g *gen) load(a *arith) error {
	var base uint32
	_, overIP := transport[a.proto]
	switch a.proto {
	case "ether":
		base = 0
	case "ip", "ip6":
		base = g.link.nh
	case "icmp6":
		base = g.link.nh + 40
	default:
		base = g.link.nh
	}
	if a.idx.op == "" {
		if overIP {
			g.emit(bpf.LoadMemShift{Off: g.link.nh})
			g.emit(bpf.LoadIndirect{Off: base + a.idx.k, Size: a.size})
			return nil
		}
		g.emit(bpf.LoadAbsolute{Off: base + a.idx.k, Size: a.size})
		return nil
	}
	if err := g.arith(a.idx); err != nil {
		return err
	}
	if overIP {
		m, err := g.push()
		if err != nil {
			return err
		}
		g.emit(bpf.LoadMemShift{Off: g.link.nh})
		g.emit(bpf.LoadScratch{Dst: bpf.RegA, N: m})
		g.mem--
		g.emit(bpf.ALUOpX{Op: bpf.ALUOpAdd})
	}
	g.emit(bpf.TAX{})
	g.emit(bpf.LoadIndirect{Off: base, Size: a.size})
	return nil
}
