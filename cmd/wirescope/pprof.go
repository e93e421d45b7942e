//go:build !lean

package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"runtime"
)

// listenPprof listens on addr for the hub's --pprof-addr, which must be a
// loopback address: the profiles are served without authentication and
// tell a lot about the process.
func listenPprof(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("--pprof-addr %q: %w", addr, err)
	}
	if ip, err := netip.ParseAddr(host); host != "localhost" && (err != nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("--pprof-addr %q: want a loopback address (127.0.0.1:PORT, [::1]:PORT or localhost:PORT)", addr)
	}
	return net.Listen("tcp", addr)
}

// pprofHandler serves net/http/pprof at /debug/pprof/ and turns on the
// mutex and block profiles (a fifth of contention events, blocking of a
// microsecond or more), which cost little while nobody reads them.
func pprofHandler() http.Handler {
	runtime.SetMutexProfileFraction(5)
	runtime.SetBlockProfileRate(1000)
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
