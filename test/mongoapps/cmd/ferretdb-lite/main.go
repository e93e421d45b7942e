// Command ferretdb-lite runs FerretDB (the MongoDB wire protocol over SQLite,
// embedded) on one TCP address until it is interrupted or terminated: the
// MongoDB server of scripts/record-mongo.sh.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen", "127.0.0.44:27017", "TCP address to listen on")
	dir := flag.String("dir", "", "SQLite database directory (created if missing; required)")
	debug := flag.Bool("debug", false, "log every request and response")
	flag.Parse()
	if *dir == "" || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: ferretdb-lite -dir DIR [-listen ADDR] [-debug]")
		os.Exit(2)
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "ferretdb-lite:", err)
		os.Exit(1)
	}
	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	// The SQLite handler wants a directory URI ending in a slash.
	d := *dir
	if d[len(d)-1] != '/' {
		d += "/"
	}
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: *listen},
		Logger:    logger,
		Handler:   "sqlite",
		SQLiteURL: "file:" + d,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "ferretdb-lite:", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger.Info("ferretdb-lite: serving", "listen", *listen, "dir", *dir)
	if err := f.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "ferretdb-lite:", err)
		os.Exit(1)
	}
	logger.Info("ferretdb-lite: stopped")
}
