package bpffilter

import (
	"fmt"
	"strings"

	"golang.org/x/net/bpf"
)

// optimize threads jumps whose outcome is known: a test that loads the
// same bytes as the one before it on the path (the EtherType after the
// EtherType was compared) jumps straight to where that test would go.
// The loads skipped had been done, and succeeded, on the same path, and
// left A the same: the program accepts exactly the same packets, loads
// past the end included. Code left unreachable is removed.
func (g *gen) optimize() {
	for range 64 {
		if !g.thread() {
			break
		}
	}
	g.dropUnreachable()
}

// test is a block of loads ending in a conditional jump.
type test struct {
	key  string // the loads, "" when A is not a function of the packet alone
	op   uint16
	k    uint32
	t, f label
}

// testAt reads the block that starts at index i (after label markers).
func (g *gen) testAt(i int) (test, bool) {
	for i < len(g.code) && g.code[i].at > 0 {
		i++
	}
	var key strings.Builder
	for ; i < len(g.code); i++ {
		c := g.code[i]
		switch ins := c.ins.(type) {
		case bpf.LoadAbsolute, bpf.ALUOpConstant, bpf.LoadExtension:
			fmt.Fprintf(&key, "%#v;", ins)
			continue
		case nil:
			if c.at > 0 || c.ja > 0 || c.op&srcX != 0 || key.Len() == 0 {
				return test{}, false
			}
			return test{key: key.String(), op: c.op, k: c.k, t: c.t, f: c.f}, true
		}
		return test{}, false
	}
	return test{}, false
}

// known tells the outcome of a test (op, k) on A when the test before
// on the same value had the outcome was of (was, wk).
func known(was uint16, wk uint32, outcome bool, op uint16, k uint32) (bool, bool) {
	if was == op && wk == k {
		return outcome, true
	}
	if was != jeq || !outcome {
		return false, false
	}
	switch op { // A == wk
	case jeq:
		return wk == k, true
	case jgt:
		return wk > k, true
	case jge:
		return wk >= k, true
	case jset:
		return wk&k != 0, true
	}
	return false, false
}

func (g *gen) thread() bool {
	where := map[label]int{}
	for i, c := range g.code {
		if c.at > 0 {
			where[c.at] = i
		}
	}
	changed := false
	for i, c := range g.code {
		if c.ins != nil || c.at > 0 || c.ja > 0 {
			continue
		}
		// The block this jump ends.
		j := i
		for j > 0 && g.code[j-1].ins != nil {
			j--
		}
		src, ok := g.testAt(j)
		if !ok {
			continue
		}
		for _, outcome := range []bool{true, false} {
			target := &g.code[i].f
			if outcome {
				target = &g.code[i].t
			}
			dst, ok := g.testAt(where[*target])
			if !ok || dst.key != src.key {
				continue
			}
			if res, ok := known(src.op, src.k, outcome, dst.op, dst.k); ok {
				if res {
					*target = dst.t
				} else {
					*target = dst.f
				}
				changed = true
			}
		}
	}
	return changed
}

// dropUnreachable removes the instructions no path reaches.
func (g *gen) dropUnreachable() {
	where := map[label]int{}
	for i, c := range g.code {
		if c.at > 0 {
			where[c.at] = i
		}
	}
	seen := make([]bool, len(g.code))
	stack := []int{0}
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for ; i < len(g.code) && !seen[i]; i++ {
			seen[i] = true
			c := g.code[i]
			if _, ret := c.ins.(bpf.RetConstant); ret {
				break
			}
			if c.ja > 0 {
				stack = append(stack, where[c.ja])
				break
			}
			if c.ins == nil && c.at == 0 {
				stack = append(stack, where[c.t], where[c.f])
				break
			}
		}
	}
	out := g.code[:0]
	for i, c := range g.code {
		if seen[i] || c.at > 0 {
			out = append(out, c)
		}
	}
	g.code = out
}
