package bpffilter

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestErrors: what the compiler refuses gets an Error that names the
// expression and what is wrong, never a program.
func TestErrors(t *testing.T) {
	for _, c := range []struct{ expr, want string }{
		{"tcp port", "expected an address, a port or a number after \"tcp port\""},
		{"vlan and tcp", "\"vlan\": VLAN tags are taken off by the kernel"},
		{"host example.com", "not an IP address (host names are not looked up)"},
		{"port http", "give a port number (service names are not looked up)"},
		{"port 70000", "above 65535"},
		{"net 10.0.0.1/8", "has bits set outside its mask"},
		{"tcp host 10.0.0.1", "\"tcp\" cannot qualify host"},
		{"ip6 host 10.0.0.1", "an IPv4 address"},
		{"tcp[13:3] = 1", "the size of tcp[...] must be 1, 2 or 4"},
		{"tcp[13] & 2", "expected a comparison"},
		{"arp[7] = 1", "only ether, ip, ip6, tcp, udp, sctp, icmp and icmp6 can be read"},
		{"(tcp", "unexpected"},
		{"tcp $ udp", "unexpected character '$'"},
		{"1.2.3.4", "needs host, net, port or a protocol before it"},
		{"inbound", "inbound/outbound are not supported"},
		{"ip[1] / 0 = 1", "division by zero"},
		{strings.Repeat("(", 300) + "tcp" + strings.Repeat(")", 300), "nested more than 200 deep"},
		{strings.Repeat("not ", 300) + "tcp", "nested more than 200 deep"},
		{"ip[" + strings.Repeat("(", 300) + "1" + strings.Repeat(")", 300) + "] = 1", "nested more than 200 deep"},
		{"tcp or " + strings.Repeat("port 1 or ", 7000) + "port 2", "over 65536"},
	} {
		_, err := Compile(c.expr, Ethernet)
		var fe *Error
		if !errors.As(err, &fe) {
			t.Errorf("%q: %v, want an *Error", c.expr, err)
			continue
		}
		if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), fmt.Sprintf("%q", c.expr)) {
			t.Errorf("%q: %q, want the expression and %q", c.expr, err, c.want)
		}
	}
	for _, expr := range []string{"ether host 00:11:22:33:44:55", "ether broadcast", "ether src 00:11:22:33:44:55 or tcp"} {
		_, err := Compile(expr, Raw)
		if !errors.Is(err, ErrLinkType) || !strings.Contains(err.Error(), "raw IP interface has no Ethernet header") {
			t.Errorf("%q on raw IP: %v, want ErrLinkType", expr, err)
		}
	}
}

// longExpr is an expression whose program is longer than a conditional
// jump reaches (255 instructions), so that it needs the assembler's
// unconditional jumps.
func longExpr() string {
	var parts []string
	for p := 1; p <= 20; p++ {
		parts = append(parts, fmt.Sprintf("not port %d", 1000+p))
	}
	return strings.Join(parts, " and ") + " or host 127.0.0.1"
}

func TestLongProgram(t *testing.T) {
	prog, err := Compile(longExpr(), Ethernet)
	if err != nil {
		t.Fatal(err)
	}
	if len(prog) <= 256 {
		t.Fatalf("%d instructions: the expression no longer tests far jumps", len(prog))
	}
}
