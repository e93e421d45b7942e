//go:build !lean

package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/wirescope/wirescope/capture/live"
	"github.com/wirescope/wirescope/capture/segstore"
	"github.com/wirescope/wirescope/capture/source"
	"github.com/wirescope/wirescope/server/workspace"
)

// openStore serves a segment store another process writes.
func (f *sourceFlags) openStore(logger *slog.Logger) (backend, func(), error) {
	if _, err := segstore.List(f.store); err != nil {
		return nil, nil, err
	}
	opts, cleanup, err := f.growingOptions(logger)
	if err != nil {
		return nil, nil, err
	}
	list := func() ([]string, error) {
		segs, err := segstore.List(f.store)
		if err != nil {
			return nil, err
		}
		return segmentPaths(segs), nil
	}
	what := "the segment store in " + f.store
	g, err := workspace.OpenGrowing(opts, what, source.NewListed(what, list, 0), f.refresh)
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	logger.Info("serving a segment store", "store", f.store, "data_dir", opts.Dir)
	return g, func() { g.Close(); cleanup() }, nil
}

// openCapture captures on the interfaces into a store under the data
// directory, and serves it; each look for new packets closes the open
// segment, so that only whole segments are read.
func (f *sourceFlags) openCapture(ctx context.Context, logger *slog.Logger, files []string) (backend, func(), error) {
	opts, cleanup, err := f.growingOptions(logger)
	if err != nil {
		return nil, nil, err
	}
	attr := openAttribution(logger)
	store, err := segstore.Open(filepath.Join(opts.Dir, "store"), segstore.Options{MaxBytes: f.maxBytes, Logger: logger, Attribute: attr.Attribute()})
	if err != nil {
		attr.Close()
		cleanup()
		return nil, nil, err
	}
	src, err := live.Open(live.Options{Interfaces: f.ifaces, Filter: f.filter})
	if err != nil {
		store.Close()
		attr.Close()
		cleanup()
		return nil, nil, fmt.Errorf("%w (capturing needs root, or CAP_NET_RAW)", err)
	}
	capCtx, stopCapture := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- runCapture(capCtx, src, store, logger, 10*time.Minute) }()
	what := fmt.Sprintf("capturing on %v into %s (attribution %s)", src.Interfaces(), filepath.Join(opts.Dir, "store"), attr.Status())
	var served source.Source = source.NewStore(store, "this machine", func() uint64 {
		var n uint64
		for _, st := range src.Stats() {
			n += uint64(st.Drops)
		}
		return n
	})
	abort := func(err error) (backend, func(), error) {
		stopCapture()
		<-done
		store.Close()
		src.Close()
		attr.Close()
		cleanup()
		return nil, nil, err
	}
	if len(files) > 0 {
		// Capture files beside live traffic (make run as root: the demo
		// too): a fan-out of both.
		fs, err := source.OpenFiles(files, opts.FlowSpan)
		if err != nil {
			return abort(err)
		}
		served = source.NewFanout(source.FanoutOptions{Parts: []source.Source{served, fs}})
		what += fmt.Sprintf(", and %d capture files", len(files))
	}
	g, err := workspace.OpenGrowing(opts, what, served, f.refresh)
	if err != nil {
		return abort(err)
	}
	logger.Info("capturing and serving", "interfaces", src.Interfaces(), "data_dir", opts.Dir, "attribution", attr.Status())
	return g, func() {
		stopCapture()
		if err := <-done; err != nil {
			logger.Error("capture", "err", err)
		}
		logAgentStats(logger, src, store)
		g.Close()
		store.Close()
		src.Close()
		attr.Close()
		cleanup()
	}, nil
}

// growingOptions are the workspace options for a growing store, with a
// data directory (a temporary one, removed by cleanup, when none is
// given).
func (f *sourceFlags) growingOptions(logger *slog.Logger) (workspace.Options, func(), error) {
	opts, err := f.options()
	if err != nil {
		return opts, nil, err
	}
	opts.Logger = logger
	cleanup := func() {}
	if opts.Dir == "" {
		dir, err := os.MkdirTemp("", "wirescope-")
		if err != nil {
			return opts, nil, err
		}
		opts.Dir, cleanup = dir, func() { os.RemoveAll(dir) }
	}
	return opts, cleanup, nil
}

// segmentPaths lists the segments holding packets.
func segmentPaths(segs []segstore.Segment) []string {
	var out []string
	for _, g := range segs {
		if g.Packets > 0 || (!g.Closed && g.Size > 24) {
			out = append(out, g.Path)
		}
	}
	return out
}
