package storage

import (
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/badbatch/badbatch"
	"github.com/badbatch/badbatch/disruptor"
	"github.com/badbatch/badbatch/journal"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// Default option values.
const (
	DefaultRingSize          = 8192
	DefaultIdempotencyWindow = 10 * time.Minute
	DefaultMaxRecordBytes    = 4 << 20
	DefaultMaxBatchBytes     = 32 << 20
	// DefaultIndexFlushBytes bounds the journal an Open has to re-apply
	// after a crash (see docs/storage.md for the measured catch-up rate).
	DefaultIndexFlushBytes = 64 << 20
)

// ClusterDir is the directory, inside a store's data directory, where the
// cluster mode keeps its consensus state (storage/cluster). A standalone
// Open refuses a data directory that has one (ErrWrongMode).
const ClusterDir = "cluster"

// MaxIdempotencyKeyLength and MaxCursorNameLength bound those strings.
const (
	MaxIdempotencyKeyLength = badbatch.MaxIdempotencyKeyLength
	MaxCursorNameLength     = 200
)

// Options configures Open. The zero value of every field means "default";
// DefaultOptions returns them filled in. Open copies the struct and never
// modifies the caller's value.
type Options struct {
	// FS is the file system of both the journal and the Pebble index, so
	// that one crash image covers both. nil means vfs.Default.
	FS vfs.FS
	// RingSize is the number of ring slots, that is appends in flight. It
	// must be a power of two (default 8192).
	RingSize int
	// WaitStrategy is how the pipeline's processors wait for work; nil
	// means disruptor.DefaultWaitStrategy().
	WaitStrategy disruptor.WaitStrategy
	// SyncPolicy is the journal's fsync policy (default journal.SyncAlways:
	// nothing is acknowledged before its fsync). Weaker policies are opt-in
	// and named in AppendResult.Durability.
	SyncPolicy journal.SyncPolicy
	// SyncInterval is the fsync period under journal.SyncInterval.
	SyncInterval time.Duration
	// SegmentSize is the journal's segment size (default: the journal's).
	SegmentSize int64
	// RetentionBytes and RetentionAge bound the journal (0: keep all).
	// Retention drops whole sealed segments, and only those the index has
	// durably applied.
	RetentionBytes int64
	RetentionAge   time.Duration
	// IdempotencyWindow is how long an idempotency key is remembered,
	// measured in journaled group timestamps (default 10 minutes).
	IdempotencyWindow time.Duration
	// MaxRecordBytes bounds one record: key + value + header names and
	// values (default 4 MiB).
	MaxRecordBytes int
	// MaxBatchBytes bounds one append: the sum of its records' sizes
	// (default 32 MiB).
	MaxBatchBytes int
	// IndexFlushBytes: the index is flushed at least every this many
	// journal bytes applied, which bounds the journal Open re-applies after
	// a crash (default 64 MiB).
	IndexFlushBytes int64
	// Handlers are the embedder's business logic, called on the
	// business-logic goroutine for every committed record (see Handler).
	Handlers []Handler
	// Logger receives recovery reports, handler errors and journal events;
	// nil discards.
	Logger *slog.Logger
	// Metrics, if set, observes the pipeline (see MetricsHook).
	Metrics MetricsHook
	// Replication, when set, runs the store in cluster mode: its journal
	// is a replicated log that the consensus module (storage/cluster)
	// writes, ring batches are proposed to it, and the business logic
	// applies only what it reports committed. nil means standalone.
	Replication *Replication
}

// MetricsHook observes the pipeline for a metrics exporter. Every method
// runs on a pipeline goroutine and must be fast and must not block or call
// back into the store. Implementations must be safe for concurrent use.
type MetricsHook interface {
	// ObserveAppend reports one completed append: the time from the
	// producer's call to completion, its record count and outcome (nil,
	// an *OffsetMismatchError, or ErrUnavailable).
	ObserveAppend(latency time.Duration, records int, err error)
	// ObserveBatch reports one business-logic batch: the appends and
	// records it applied and the ring slots still occupied when it began.
	ObserveBatch(appends, records int, ringOccupancy int64)
	// ObserveFsync reports one journal fsync's duration.
	ObserveFsync(d time.Duration)
}

// DefaultOptions returns a new Options with every default filled in.
func DefaultOptions() *Options {
	j := journal.DefaultOptions()
	return &Options{
		FS:                vfs.Default,
		RingSize:          DefaultRingSize,
		SyncPolicy:        journal.SyncAlways,
		SyncInterval:      j.SyncInterval,
		SegmentSize:       j.SegmentSize,
		IdempotencyWindow: DefaultIdempotencyWindow,
		MaxRecordBytes:    DefaultMaxRecordBytes,
		MaxBatchBytes:     DefaultMaxBatchBytes,
		IndexFlushBytes:   DefaultIndexFlushBytes,
		Logger:            slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

// withDefaults returns a copy of o (nil: all defaults) with zero fields
// filled in, validated. The Handlers slice is copied too.
func (o *Options) withDefaults() (Options, error) {
	var c Options
	if o != nil {
		c = *o
	}
	d := DefaultOptions()
	if c.FS == nil {
		c.FS = d.FS
	}
	if c.RingSize == 0 {
		c.RingSize = d.RingSize
	}
	if c.SyncInterval == 0 {
		c.SyncInterval = d.SyncInterval
	}
	if c.SegmentSize == 0 {
		c.SegmentSize = d.SegmentSize
	}
	if c.IdempotencyWindow == 0 {
		c.IdempotencyWindow = d.IdempotencyWindow
	}
	if c.MaxRecordBytes == 0 {
		c.MaxRecordBytes = d.MaxRecordBytes
	}
	if c.MaxBatchBytes == 0 {
		c.MaxBatchBytes = d.MaxBatchBytes
	}
	if c.IndexFlushBytes == 0 {
		c.IndexFlushBytes = d.IndexFlushBytes
	}
	if c.Logger == nil {
		c.Logger = d.Logger
	}
	c.Handlers = append([]Handler(nil), c.Handlers...)
	switch {
	case c.RingSize < 2 || c.RingSize&(c.RingSize-1) != 0:
		return c, fmt.Errorf("%w: options: RingSize %d is not a power of two >= 2", ErrInvalidArgument, c.RingSize)
	case c.SyncPolicy > journal.SyncNone:
		return c, fmt.Errorf("%w: options: unknown SyncPolicy %d", ErrInvalidArgument, c.SyncPolicy)
	case c.SyncInterval < 0:
		return c, fmt.Errorf("%w: options: SyncInterval %v < 0", ErrInvalidArgument, c.SyncInterval)
	case c.RetentionBytes < 0 || c.RetentionAge < 0:
		return c, fmt.Errorf("%w: options: negative retention", ErrInvalidArgument)
	case c.IdempotencyWindow < 0:
		return c, fmt.Errorf("%w: options: IdempotencyWindow %v < 0", ErrInvalidArgument, c.IdempotencyWindow)
	case c.MaxRecordBytes < 0 || c.MaxBatchBytes < 0:
		return c, fmt.Errorf("%w: options: negative size limit", ErrInvalidArgument)
	case c.MaxRecordBytes > c.MaxBatchBytes:
		return c, fmt.Errorf("%w: options: MaxRecordBytes %d > MaxBatchBytes %d", ErrInvalidArgument, c.MaxRecordBytes, c.MaxBatchBytes)
	case c.IndexFlushBytes < 0:
		return c, fmt.Errorf("%w: options: IndexFlushBytes %d < 0", ErrInvalidArgument, c.IndexFlushBytes)
	case c.Replication != nil && c.Replication.Proposer == nil:
		return c, fmt.Errorf("%w: options: Replication.Proposer is nil", ErrInvalidArgument)
	case c.Replication != nil && c.Replication.MaxInFlightBytes < 0:
		return c, fmt.Errorf("%w: options: Replication.MaxInFlightBytes < 0", ErrInvalidArgument)
	case c.Replication != nil && c.Replication.MaxEntryBytes < 0:
		return c, fmt.Errorf("%w: options: Replication.MaxEntryBytes < 0", ErrInvalidArgument)
	}
	if c.Replication != nil {
		r := *c.Replication
		c.Replication = &r
	}
	for i, h := range c.Handlers {
		if h == nil {
			return c, fmt.Errorf("%w: options: Handlers[%d] is nil", ErrInvalidArgument, i)
		}
	}
	return c, nil
}
