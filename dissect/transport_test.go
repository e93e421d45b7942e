package dissect_test

import (
	"testing"

	"github.com/gopacket/gopacket/layers"

	"github.com/wirescope/wirescope/dissect"
)

func TestTransportNames(t *testing.T) {
	for p := range 256 {
		name := dissect.TransportName(layers.IPProtocol(p))
		back, ok := dissect.TransportProto(name)
		if !ok || back != layers.IPProtocol(p) {
			t.Errorf("%d → %q → %d, %v", p, name, back, ok)
		}
	}
	for _, bad := range []string{"", "ip-", "ip-256", "ip--1", "TCP", "quic"} {
		if _, ok := dissect.TransportProto(bad); ok {
			t.Errorf("%q names a transport", bad)
		}
	}
}
