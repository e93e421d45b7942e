//go:build !lean

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/wirescope/wirescope/bpf"
	"github.com/wirescope/wirescope/capture"
	"github.com/wirescope/wirescope/capture/agentapi"
	"github.com/wirescope/wirescope/capture/live"
	"github.com/wirescope/wirescope/capture/segstore"
	"github.com/wirescope/wirescope/capture/tlsplain"
	"github.com/wirescope/wirescope/server"
)

func newAgentCmd() *cobra.Command {
	var (
		ifaces       []string
		dataDir      string
		segmentBytes int64
		segmentAge   time.Duration
		maxBytes     int64
		maxAge       time.Duration
		filter       string
		snapLen      int
		dedupWindow  time.Duration
		statsEvery   time.Duration
		listen       string
		tokenFile    string
		nodeName     string
		conns        connFlags
		logs         logFlags
		tlsPlain     bool
		tlsRing      uint32
		tlsRate      uint64
	)
	cmd := &cobra.Command{
		Use:   "agent --iface IF... --data-dir DIR",
		Short: "Capture every packet on a node's interfaces into rolling PCAP segments",
		Long: `agent captures with AF_PACKET TPACKET_V3 rings on the interfaces it is given
(names or globs such as veth*, or any) into a segment store under --data-dir:
PCAP segments rotated by size and age, each with a flow index, the oldest
deleted past --max-bytes or --max-age. A packet seen on two interfaces (a
pod's veth and the bridge) is stored once. New interfaces matching a glob are
picked up as they appear. It needs CAP_NET_RAW (root).

With --listen it serves its API over HTTP to clients presenting the bearer
token (from WIRESCOPE_TOKEN or --token-file, created if missing): flows and
the PCAP of matching packets in a time range, statistics, snapshots, and
Prometheus metrics at /metrics. See the agentapi package for the endpoints.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(ifaces) == 0 || dataDir == "" {
				return errors.New("--iface and --data-dir are required")
			}
			logger, err := logs.logger(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			var token string
			if listen != "" {
				var err error
				if token, err = loadToken(tokenFile); err != nil {
					return err
				}
			}
			attr := openAttribution(logger)
			defer attr.Close()
			store, err := segstore.Open(dataDir, segstore.Options{SegmentBytes: segmentBytes, SegmentAge: segmentAge,
				MaxBytes: maxBytes, MaxAge: maxAge, SnapLen: snapLen, Logger: logger, Attribute: attr.Attribute()})
			if err != nil {
				return err
			}
			defer store.Close()
			src, err := live.Open(live.Options{Interfaces: ifaces, SnapLen: snapLen, Filter: filter, DedupWindow: dedupWindow, Logger: logger})
			if err != nil {
				return err
			}
			defer src.Close()
			plain := startTLSPlaintext(tlsPlain, store, tlsplain.Options{Probes: bpf.TLSOptions{RingBytes: tlsRing, BytesPerSecond: tlsRate}, Held: store.HoldsTCP, Log: logger}, logger)
			defer plain.Close()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if listen != "" {
				l, err := net.Listen("tcp", listen)
				if err != nil {
					return err
				}
				h, err := agentapi.Handler(agentapi.Options{Store: store, Token: token, Logger: logger, Node: nodeName,
					Capture: func() agentapi.Capture { return captureState(src, attr, plain) }, OpaqueTLS: plain.opaque})
				if err != nil {
					return err
				}
				go server.ServeHTTP(ctx, l, h, conns.options(logger))
				logger.Info("agent API listening", "url", "http://"+l.Addr().String()+"/v1/stats")
			}
			logger.Info("capturing", "interfaces", src.Interfaces(), "store", dataDir, "filter", filter, "attribution", attr.Status(), "tls_plaintext", plain.status)
			err = runCapture(ctx, src, store, logger, statsEvery)
			plain.Close() // before the store: its last records go in
			closeErr := store.Close()
			logAgentStats(logger, src, store)
			return errors.Join(err, closeErr)
		},
	}
	fl := cmd.Flags()
	fl.StringSliceVar(&ifaces, "iface", nil, "interface to capture on: a name, a glob (veth*) or any; repeat or separate with commas")
	fl.StringVar(&dataDir, "data-dir", "", "the segment store's directory")
	fl.Int64Var(&segmentBytes, "segment-bytes", segstore.DefaultSegmentBytes, "rotate segments at this size")
	fl.DurationVar(&segmentAge, "segment-age", segstore.DefaultSegmentAge, "rotate segments open this long")
	fl.Int64Var(&maxBytes, "max-bytes", 0, "delete the oldest segments past this many bytes in all (0: no limit)")
	fl.DurationVar(&maxAge, "max-age", 0, "delete segments older than this (0: no limit)")
	fl.StringVar(&filter, "filter", "", "BPF filter (tcpdump syntax) run in the kernel")
	fl.IntVar(&snapLen, "snaplen", 0, "keep at most this many bytes of each packet (0: whole packets)")
	fl.DurationVar(&dedupWindow, "dedup-window", capture.DefaultDedupWindow, "a packet seen again on another interface within this time is stored once")
	fl.DurationVar(&statsEvery, "stats-every", time.Minute, "log capture statistics this often")
	fl.StringVar(&listen, "listen", "", "serve the agent API on this address (host:port)")
	fl.StringVar(&nodeName, "node-name", os.Getenv("NODE_NAME"), "the node's name, as the hub names this capture point (default $NODE_NAME, else the host name)")
	fl.StringVar(&tokenFile, "token-file", "", "file holding the API's bearer token (created with a random one if missing)")
	fl.BoolVar(&tlsPlain, "tls-plaintext", true, "read TLS plaintext with eBPF uprobes on the processes' TLS libraries (OpenSSL, BoringSSL) and store it beside the packets")
	fl.Uint32Var(&tlsRing, "tls-ring-bytes", 8<<20, "the TLS plaintext ring buffer's size (a power of two); chunks that do not fit are dropped and counted")
	fl.Uint64Var(&tlsRate, "tls-bytes-per-sec", 64<<20, "read at most this much TLS plaintext a second, all processes together; the rest is dropped and counted")
	conns.register(cmd)
	logs.register(cmd)
	return cmd
}

// runCapture writes what src captures into store until ctx ends, with
// the housekeeping running beside it.
func runCapture(ctx context.Context, src *live.Source, store *segstore.Store, logger *slog.Logger, statsEvery time.Duration) error {
	go agentHousekeeping(ctx, src, store, logger, statsEvery)
	return src.Run(ctx, func(p *capture.Packet, iface string) error {
		if err := store.Write(p, iface); err != nil && !errors.Is(err, segstore.ErrFull) {
			return err
		}
		return nil
	})
}

// agentHousekeeping flushes the store every second, asks eBPF about new
// flows' processes, picks up new interfaces and logs statistics.
func agentHousekeeping(ctx context.Context, src *live.Source, store *segstore.Store, logger *slog.Logger, statsEvery time.Duration) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	lastStats := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if err := store.Flush(); err != nil {
			logger.Error("flush", "err", err)
		}
		store.Attribute()
		if added, err := src.Rescan(); err != nil {
			logger.Warn("rescan interfaces", "err", err)
		} else if len(added) > 0 {
			logger.Info("capturing on new interfaces", "interfaces", added)
		}
		if statsEvery > 0 && time.Since(lastStats) >= statsEvery {
			lastStats = time.Now()
			logAgentStats(logger, src, store)
		}
	}
}

func logAgentStats(logger *slog.Logger, src *live.Source, store *segstore.Store) {
	st := store.Stats()
	var kernel, drops uint64
	for _, i := range src.Stats() {
		kernel += i.Packets
		drops += i.Drops
	}
	logger.Info("capture", "stored_packets", st.Packets, "stored_bytes", st.Bytes, "kernel_packets", kernel, "kernel_drops", drops,
		"duplicates", src.Duplicates(), "store_dropped", st.Dropped, "segments", st.Segments, "disk_bytes", st.DiskBytes,
		"full", st.Full, "oldest", st.Oldest.Format(time.RFC3339Nano), "newest", st.Newest.Format(time.RFC3339Nano),
		"last_error", fmt.Sprint(st.LastError))
}

// captureState is what the agent API reports of the capture.
func captureState(src *live.Source, attr *attribution, plain *tlsPlaintext) agentapi.Capture {
	c := agentapi.Capture{Duplicates: src.Duplicates(), Attribution: attr.Status(), AttributionOn: attr.On(), TLSPlaintext: plain.status}
	if plain.r != nil {
		cov := plain.r.Coverage()
		c.TLS = &cov
	}
	for _, i := range src.Stats() {
		c.Interfaces = append(c.Interfaces, agentapi.Interface{Name: i.Name, Packets: i.Packets, Drops: i.Drops})
	}
	return c
}
