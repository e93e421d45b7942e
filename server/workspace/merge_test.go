package workspace

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/wirescope/wirescope/dissect/proto"
)

// TestMerge: copies of one call are counted once whether two nodes saw it
// or one node saw it before and after its DNAT, in any order of capture
// time; identical calls on one connection stay apart.
func TestMerge(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 7, 0, 0, 0, time.UTC)
	client := netip.MustParseAddrPort("10.244.1.10:40000")
	svc := netip.MustParseAddrPort("10.96.0.10:80")
	pod := netip.MustParseAddrPort("10.244.2.10:8080")
	call := func(node string, dst netip.AddrPort, at time.Duration, path string) *proto.Call {
		c := &proto.Call{TS: t0.Add(at), Proto: "http", Method: "GET", Path: path, Status: "200", CapturedOn: []string{node},
			Src: proto.Endpoint{IP: client.Addr(), Port: client.Port(), Pod: "client"},
			Dst: proto.Endpoint{IP: dst.Addr(), Port: dst.Port()}}
		if dst == pod {
			c.Dst.Pod = "server"
		}
		return c
	}
	type want struct {
		n     int    // calls after the merge
		dups  uint64 // copies dropped
		nodes string // CapturedOn of each call kept
	}
	for _, tc := range []struct {
		name  string
		parts [][]*proto.Call
		want  want
	}{
		{"two nodes", [][]*proto.Call{
			{call("a", svc, 0, "/x")},
			{call("b", pod, time.Millisecond, "/x")}}, want{1, 1, "[a b]"}},
		{"client node before and after DNAT, server node", [][]*proto.Call{
			{call("a", svc, 0, "/x"), call("a", pod, 50*time.Microsecond, "/x")},
			{call("b", pod, time.Millisecond, "/x")}}, want{1, 2, "[a b]"}},
		{"server node's clock ahead of the client's", [][]*proto.Call{
			{call("a", svc, 0, "/x"), call("a", pod, 50*time.Microsecond, "/x")},
			{call("b", pod, -time.Second, "/x")}}, want{1, 2, "[a b]"}},
		{"one node before and after DNAT", [][]*proto.Call{
			{call("a", svc, 0, "/x"), call("a", pod, 50*time.Microsecond, "/x")},
			{}}, want{1, 1, "[a]"}},
		{"two identical calls on one connection", [][]*proto.Call{
			{call("a", svc, 0, "/x"), call("a", pod, 50*time.Microsecond, "/x"),
				call("a", svc, 5*time.Millisecond, "/x"), call("a", pod, 5*time.Millisecond+50*time.Microsecond, "/x")},
			{call("b", pod, time.Millisecond, "/x"), call("b", pod, 6*time.Millisecond, "/x")}}, want{2, 4, "[a b] [a b]"}},
		{"one node, two destinations far apart in time", [][]*proto.Call{
			{call("a", svc, 0, "/x"), call("a", pod, 500*time.Millisecond, "/x")}, {}}, want{2, 0, "[a] [a]"}},
		{"different paths", [][]*proto.Call{
			{call("a", svc, 0, "/x")},
			{call("b", pod, time.Millisecond, "/y")}}, want{2, 0, "[a] [b]"}},
		{"too far apart", [][]*proto.Call{
			{call("a", svc, 0, "/x")},
			{call("b", pod, 3*time.Second, "/x")}}, want{2, 0, "[a] [b]"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, dups := merge(tc.parts)
			var nodes []string
			for _, c := range out {
				nodes = append(nodes, fmt.Sprint(c.CapturedOn))
			}
			slices.Sort(nodes)
			got := want{len(out), dups, fmt.Sprint(nodes)}
			got.nodes = got.nodes[1 : len(got.nodes)-1]
			if got != tc.want {
				t.Fatalf("merge: %+v, want %+v", got, tc.want)
			}
			for _, c := range out {
				if !slices.Contains(c.CapturedOn, "b") || c.Merged == 0 {
					continue
				}
				// Merged copies keep the pod's destination, with the Service's as Via.
				if c.Dst.Pod != "server" || netip.AddrPortFrom(c.Dst.IP, c.Dst.Port) != pod || c.Via != svc {
					t.Errorf("kept dst %v (pod %q) via %v, want %v (server) via %v", c.Dst.IP, c.Dst.Pod, c.Via, pod, svc)
				}
			}
		})
	}
}
