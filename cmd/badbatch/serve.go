package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/badbatch/badbatch/httpapi"
	"github.com/badbatch/badbatch/journal"
	"github.com/badbatch/badbatch/storage"
	"github.com/badbatch/badbatch/storage/cluster"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// clusterOptions turns the cluster flags into cluster.Options.
func clusterOptions(f *serveFlags, so *storage.Options, logger *slog.Logger) (*cluster.Options, error) {
	switch {
	case f.nodeID == 0:
		return nil, errors.New("cluster mode needs --node-id")
	case f.clusterAddr == "":
		return nil, errors.New("cluster mode needs --cluster-addr")
	case f.clusterSecretFile == "":
		return nil, errors.New("cluster mode needs --cluster-secret-file")
	case f.peers == "" && f.join == "":
		return nil, errors.New("cluster mode needs --peers (a new cluster, or a restart) or --join URL (a new node)")
	}
	secret, err := os.ReadFile(f.clusterSecretFile)
	if err != nil {
		return nil, fmt.Errorf("--cluster-secret-file: %w", err)
	}
	secret = []byte(strings.TrimSpace(string(secret)))
	co := cluster.DefaultOptions()
	co.NodeID, co.ClusterAddr, co.Join, co.Secret = f.nodeID, f.clusterAddr, f.join, secret
	co.Store, co.Logger = so, logger
	co.ListenAddr = f.clusterListenAddr
	if f.snapshotEntries > 0 {
		co.SnapshotEntries = f.snapshotEntries
	}
	co.HTTPURL = f.advertiseURL
	if co.HTTPURL == "" {
		co.HTTPURL = "http://" + f.addr
	}
	if f.peers != "" {
		if co.Peers, err = cluster.ParsePeers(f.peers); err != nil {
			return nil, fmt.Errorf("--peers: %w", err)
		}
	}
	return co, nil
}

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
	corsOrigins       string
	longPollTimeout   time.Duration
	// Cluster mode.
	nodeID            uint64
	clusterAddr       string
	peers             string
	join              string
	clusterSecretFile string
	advertiseURL      string
	// Hidden tuning and test knobs (docs/cluster.md, "Tuning").
	clusterListenAddr string
	snapshotEntries   uint64
}

func newServeCmd() *cobra.Command {
	f := serveFlags{}
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
	f.register(cmd.Flags())
	withEnvHelp(cmd.Flags())
	return cmd
}

// register defines serve's flags on fs, bound to f.
func (f *serveFlags) register(fs *pflag.FlagSet) {
	d := httpapi.DefaultOptions()
	sd := storage.DefaultOptions()
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
	fs.DurationVar(&f.longPollTimeout, "long-poll-timeout", 30*time.Second, "how long a Durable Streams long-poll waits at the tail before it answers 204")
	fs.StringVar(&f.corsOrigins, "cors-origins", "", "answer cross-origin browser requests from these origins, `ORIGIN,...` (\"*\": any); empty: no CORS")
	fs.Uint64Var(&f.nodeID, "node-id", 0, "cluster mode: this node's id (never reused)")
	fs.StringVar(&f.clusterAddr, "cluster-addr", "", "cluster mode: host:port of this node's cluster port")
	fs.StringVar(&f.peers, "peers", "", "cluster mode: the initial members, `ID=HOST:PORT,...` (this node included); bootstraps a new cluster")
	fs.StringVar(&f.join, "join", "", "cluster mode: the HTTP URL of any member; this new node is added as a learner, then promoted")
	fs.StringVar(&f.clusterSecretFile, "cluster-secret-file", "", "cluster mode: file holding the secret that authenticates nodes (at least 16 bytes)")
	fs.StringVar(&f.advertiseURL, "advertise-url", "", "cluster mode: the URL clients reach this node at (default: http://ADDR)")
	fs.StringVar(&f.clusterListenAddr, "cluster-listen-addr", "", "cluster mode: listen here instead of on --cluster-addr, which peers still dial (a proxy or NAT in between)")
	fs.Uint64Var(&f.snapshotEntries, "snapshot-entries", cluster.DefaultSnapshotEntries, "cluster mode: applied entries raft keeps for slow followers; one further behind is sent a snapshot")
	_ = fs.MarkHidden("cluster-listen-addr")
	_ = fs.MarkHidden("snapshot-entries")
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
	opts.CORSOrigins = parseOrigins(f.corsOrigins)
	opts.LongPollTimeout = f.longPollTimeout
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
	var node *cluster.Node
	var store httpapi.Store
	var closeStore func() error
	if f.peers != "" || f.join != "" || f.nodeID != 0 || f.clusterAddr != "" {
		co, err := clusterOptions(f, so, logger)
		if err != nil {
			return err
		}
		if node, err = cluster.Open(f.dataDir, co); err != nil {
			return err
		}
		// Cluster mode does not heal: a node whose journal failed stops,
		// and raft carries on without it (docs/decisions/0021).
		store, opts.Cluster, closeStore = node.Store(), node, node.Close
		logger.Info("cluster node started", "node_id", f.nodeID, "cluster_addr", f.clusterAddr, "url", co.HTTPURL)
	} else {
		// Standalone: the Healer closes, repairs and reopens the store
		// after a journal failure (docs/decisions/0021).
		var arm func()
		if so.FS, arm, err = journalFaults(so.FS, logger); err != nil {
			return err
		}
		h, err := storage.OpenHealing(f.dataDir, so, nil)
		if err != nil {
			return err
		}
		arm()
		store, closeStore = h, h.Close
	}
	srv, err := httpapi.New(store, opts)
	if err != nil {
		return errors.Join(err, closeStore())
	}
	served := make(chan error, 1)
	go func() { served <- srv.ListenAndServe() }()
	logger.Info("badbatch serving", "addr", f.addr, "data_dir", f.dataDir, "sync", policy.String(),
		"auth", opts.Tokens != nil, "pid", os.Getpid())

	var serveErr error
	var nodeDone <-chan struct{}
	if node != nil {
		nodeDone = node.Done()
	}
	select {
	case serveErr = <-served: // could not listen, or failed
	case <-ctx.Done():
		logger.Info("shutting down", "timeout", f.shutdownTimeout)
	case <-nodeDone:
		serveErr = node.Err()
		logger.Error("cluster node stopped; shutting down", "err", serveErr)
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
	closeErr := closeStore()
	if closeErr == nil && shutdownErr == nil && serveErr == nil {
		logger.Info("stopped cleanly")
	}
	return errors.Join(serveErr, shutdownErr, closeErr)
}

// parseOrigins splits --cors-origins: comma-separated, blanks dropped.
func parseOrigins(v string) []string {
	var out []string
	for _, o := range strings.Split(v, ",") {
		if o = strings.TrimSpace(o); o != "" {
			out = append(out, strings.TrimSuffix(o, "/"))
		}
	}
	return out
}
