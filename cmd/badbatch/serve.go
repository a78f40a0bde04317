package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/badbatch/badbatch/httpapi"
	"github.com/badbatch/badbatch/journal"
	"github.com/badbatch/badbatch/storage"
	"github.com/spf13/cobra"
)

type serveFlags struct {
	dataDir           string
	addr              string
	tokensFile        string
	insecureNoAuth    bool
	sync              string
	syncInterval      time.Duration
	segmentSize       int64
	retentionBytes    int64
	retentionAge      time.Duration
	idempotencyWindow time.Duration
	maxRecordBytes    int
	maxRequestBytes   int64
	rateLimit         float64
	rateBurst         int
	shutdownTimeout   time.Duration
	logLevel          string
	logFormat         string
}

func newServeCmd() *cobra.Command {
	f := serveFlags{}
	d := httpapi.DefaultOptions()
	sd := storage.DefaultOptions()
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the HTTP API over a store in --data-dir",
		Long: `Serve the HTTP API v1 (docs/http-api.md) over the store in --data-dir.

With no flags it serves ./data on 127.0.0.1:8080 without auth. Serving on a
non-loopback address needs --tokens-file, or --insecure-no-auth to accept the
risk. SIGTERM or SIGINT shut it down gracefully: it stops accepting, finishes
the appends in flight, ends the tails and closes the store.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runServe(cmd.Context(), cmd, &f) },
	}
	fs := cmd.Flags()
	fs.StringVar(&f.dataDir, "data-dir", "./data", "data directory (journal and index)")
	fs.StringVar(&f.addr, "addr", d.Addr, "listen address")
	fs.StringVar(&f.tokensFile, "tokens-file", "", "bearer tokens file, one `TOKEN PERMISSIONS [PREFIXES]` per line (no file: no auth)")
	fs.BoolVar(&f.insecureNoAuth, "insecure-no-auth", false, "allow serving without auth on a non-loopback address")
	fs.StringVar(&f.sync, "sync", "always", "journal fsync policy: always (fsync before every ack), interval or none")
	fs.DurationVar(&f.syncInterval, "sync-interval", sd.SyncInterval, "fsync period under --sync interval")
	fs.Int64Var(&f.segmentSize, "segment-size", sd.SegmentSize, "journal segment size in bytes")
	fs.Int64Var(&f.retentionBytes, "retention-bytes", 0, "keep at most this many journal bytes (0: all)")
	fs.DurationVar(&f.retentionAge, "retention-age", 0, "drop journal segments older than this (0: never)")
	fs.DurationVar(&f.idempotencyWindow, "idempotency-window", sd.IdempotencyWindow, "how long an Idempotency-Key is remembered")
	fs.IntVar(&f.maxRecordBytes, "max-record-bytes", d.MaxRecordBytes, "largest record (key + value + headers)")
	fs.Int64Var(&f.maxRequestBytes, "max-request-bytes", d.MaxRequestBytes, "largest request body")
	fs.Float64Var(&f.rateLimit, "rate-limit", 0, "requests per second per token (per client IP without auth); 0: unlimited")
	fs.IntVar(&f.rateBurst, "rate-burst", 100, "rate limiter burst")
	fs.DurationVar(&f.shutdownTimeout, "shutdown-timeout", 30*time.Second, "how long a graceful shutdown may take")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	withEnvHelp(fs)
	return cmd
}

func newLogger(cmd *cobra.Command, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: %w", level, err)
	}
	ho := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), ho)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(cmd.ErrOrStderr(), ho)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

func runServe(ctx context.Context, cmd *cobra.Command, f *serveFlags) error {
	logger, err := newLogger(cmd, f.logLevel, f.logFormat)
	if err != nil {
		return err
	}
	policy, err := journal.ParseSyncPolicy(f.sync)
	if err != nil {
		return fmt.Errorf("--sync: %w", err)
	}
	opts := httpapi.DefaultOptions()
	opts.Addr = f.addr
	opts.AllowInsecureNoAuth = f.insecureNoAuth
	opts.MaxRecordBytes = f.maxRecordBytes
	opts.MaxRequestBytes = f.maxRequestBytes
	opts.RateLimit, opts.RateBurst = f.rateLimit, f.rateBurst
	opts.Logger = logger
	opts.Metrics = httpapi.NewMetrics()
	if f.tokensFile != "" {
		if opts.Tokens, err = httpapi.LoadTokens(f.tokensFile); err != nil {
			return err
		}
	}
	// Refuse an open address before touching the data directory.
	if err := httpapi.CheckListen(opts.Addr, opts.Tokens != nil, opts.AllowInsecureNoAuth); err != nil {
		return err
	}

	so := storage.DefaultOptions()
	so.SyncPolicy = policy
	so.SyncInterval = f.syncInterval
	so.SegmentSize = f.segmentSize
	so.RetentionBytes, so.RetentionAge = f.retentionBytes, f.retentionAge
	so.IdempotencyWindow = f.idempotencyWindow
	so.MaxRecordBytes = f.maxRecordBytes
	so.MaxBatchBytes = int(max(f.maxRequestBytes, int64(f.maxRecordBytes)))
	so.Logger = logger
	so.Metrics = opts.Metrics
	store, err := storage.Open(f.dataDir, so)
	if err != nil {
		return err
	}
	srv, err := httpapi.New(store, opts)
	if err != nil {
		return errors.Join(err, store.Close())
	}
	served := make(chan error, 1)
	go func() { served <- srv.ListenAndServe() }()
	logger.Info("badbatch serving", "addr", f.addr, "data_dir", f.dataDir, "sync", policy.String(),
		"auth", opts.Tokens != nil, "pid", os.Getpid())

	var serveErr error
	select {
	case serveErr = <-served: // could not listen, or failed
	case <-ctx.Done():
		logger.Info("shutting down", "timeout", f.shutdownTimeout)
	}
	sctx, cancel := context.WithTimeout(context.Background(), f.shutdownTimeout)
	defer cancel()
	shutdownErr := srv.Shutdown(sctx)
	if serveErr == nil {
		serveErr = <-served
	}
	if errors.Is(serveErr, httpapi.ErrServerClosed) {
		serveErr = nil
	}
	closeErr := store.Close()
	if closeErr == nil && shutdownErr == nil && serveErr == nil {
		logger.Info("stopped cleanly")
	}
	return errors.Join(serveErr, shutdownErr, closeErr)
}
