package storage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/badbatch/badbatch"
	"github.com/badbatch/badbatch/disruptor"
	"github.com/badbatch/badbatch/internal/vfsutil"
	"github.com/badbatch/badbatch/journal"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// Store is an embeddable journaled log store: named streams of records,
// appended atomically and durably, read back by offset, time or global
// position. It is safe for concurrent use.
type Store struct {
	opts     Options
	dir      string
	indexDir string
	log      *slog.Logger
	metrics  MetricsHook
	// clock is the producers' clock (see now): time.Now, but for tests
	// that open through export_test.go.
	clock func() time.Time

	j *journal.Journal
	// jErr is j for Err, which producers call without readMu: a snapshot
	// install swaps j under readMu only.
	jErr atomic.Pointer[journal.Journal]
	x    *index
	d    *disruptor.Disruptor[slot]
	bp   *businessProcessor // standalone only
	// rep is the cluster-mode state (nil standalone).
	rep *replica

	// closed is set by Close before it seals the ring (see publish).
	closed atomic.Bool
	// failure is the first fatal error (journal, replication or index);
	// once set, every append fails with ErrUnavailable wrapping it.
	failure atomic.Pointer[error]
	// closing is closed by Close, to end Store.Wait calls.
	closing   chan struct{}
	closeOnce sync.Once
	closeErr  error
	// readMu keeps the index and journal open under readers: readers hold
	// it shared, Close exclusively while it closes them.
	readMu sync.RWMutex
	// detached is set, under readMu, when a snapshot install failed after
	// closing the index and journal: reads answer Err until reopened.
	detached bool
	// recovery is what the last recovery re-applied (Stats.Recovery); a
	// snapshot install recovers again while readers call Stats.
	recovery atomic.Pointer[RecoveryStats]

	// stateMu guards inserts into app.streams and every streamState.pub.
	stateMu sync.RWMutex
	app     *applier

	// Tailing waiters: notify holds the channel the next commit closes;
	// the business logic swaps it only while waiters > 0.
	notify  atomic.Pointer[chan struct{}]
	waiters atomic.Int64

	encoders sync.Pool   // *encoder
	slotBufs slotBuffers // the ring slots' encoded-group buffers

	// durableEntry: every journal entry below it is applied by an index
	// flush that has completed. Retention never truncates at or past it.
	durableEntry atomic.Uint64
	// retentionFloor: retention removes no entry at or after it (see
	// SetRetentionFloor).
	retentionFloor atomic.Uint64
	// The retention goroutine (only with a retention limit).
	retainKick chan struct{}
	retainStop chan struct{}
	retainWG   sync.WaitGroup
	// retainMu serializes retention passes (the goroutine's, Open's and
	// tests').
	retainMu sync.Mutex

	stats struct {
		appends, records, bytes atomic.Uint64
		rejected, duplicates    atomic.Uint64
		batches, handlerErrors  atomic.Uint64
		indexFlushes            atomic.Uint64
	}
}

// Open opens (creating if needed) the store in dir: the journal in
// dir/journal, the index in dir/index. It repairs the journal's tail,
// brings the index up to the journal's end by re-running the business
// logic (rebuilding the index from scratch if it is ahead of the journal),
// and starts the pipeline. opts may be nil; Open never modifies it.
func Open(dir string, opts *Options) (*Store, error) {
	return open(dir, opts, time.Now)
}

// open is Open with clock as the producers' clock.
func open(dir string, opts *Options, clock func() time.Time) (*Store, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Store{
		opts:     o,
		dir:      dir,
		indexDir: o.FS.PathJoin(dir, indexDirName),
		log:      o.Logger,
		metrics:  o.Metrics,
		clock:    clock,
		closing:  make(chan struct{}),
	}
	ch := make(chan struct{})
	s.notify.Store(&ch)
	s.retentionFloor.Store(noRetentionFloor)
	s.encoders.New = func() any { return new(encoder) }

	if o.Replication != nil {
		r := &replica{
			s:        s,
			proposer: o.Replication.Proposer,
			maxBytes: o.Replication.MaxInFlightBytes,
			kick:     make(chan struct{}, 1),
			room:     make(chan struct{}, 1),
			buffers:  make(chan []byte, 16),
			stop:     make(chan struct{}),
		}
		if r.maxBytes == 0 {
			r.maxBytes = defaultMaxInFlightBytes
		}
		s.rep = r
	} else if _, err := o.FS.Stat(o.FS.PathJoin(dir, ClusterDir)); err == nil {
		return nil, fmt.Errorf("%w: %s holds a cluster node's data (%s/); start it in cluster mode", ErrWrongMode, dir, ClusterDir)
	}
	if err := mkdirDurable(o.FS, dir); err != nil {
		return nil, fmt.Errorf("storage: create %s: %w", dir, err)
	}
	if s.rep != nil {
		if err := finishInstall(o.FS, dir, o.Replication.SnapshotIndex); err != nil {
			return nil, err
		}
	}
	s.j, err = journal.Open(JournalDir(o.FS, dir), s.journalOptions())
	if err != nil {
		return nil, fmt.Errorf("storage: open journal: %w", err)
	}
	s.jErr.Store(s.j)
	if err := s.openIndex(); err != nil {
		_ = s.j.Close()
		return nil, err
	}
	if err := s.recover(); err != nil {
		_ = s.x.close(false)
		_ = s.j.Close()
		return nil, err
	}
	start := s.startPipeline
	if s.rep != nil {
		start = s.startReplica
	}
	if err := start(); err != nil {
		_ = s.x.close(false)
		_ = s.j.Close()
		return nil, err
	}
	s.startRetention()
	return s, nil
}

func (s *Store) journalOptions() *journal.Options {
	maxEntry := int64(journal.DefaultMaxEntrySize)
	if need := int64(s.opts.MaxBatchBytes)*2 + 1<<20; need > maxEntry {
		maxEntry = min(need, 1<<30)
	}
	jo := &journal.Options{
		FS:           s.opts.FS,
		SyncPolicy:   s.opts.SyncPolicy,
		SyncInterval: s.opts.SyncInterval,
		SegmentSize:  s.opts.SegmentSize,
		MaxEntrySize: maxEntry,
		Logger:       s.log,
		// No RetentionBytes/RetentionAge: retention is the store's (see
		// retention.go).
	}
	if m := s.metrics; m != nil {
		jo.OnSync = m.ObserveFsync
	}
	return jo
}

func (s *Store) openIndex() error {
	x, err := openIndex(s.indexDir, s.opts.FS, s.log)
	if err != nil {
		return err
	}
	app := newApplier(x, int64(s.opts.IdempotencyWindow), &s.stateMu)
	if err := app.load(); err != nil {
		_ = x.close(false)
		return fmt.Errorf("storage: load index %s: %w", s.indexDir, err)
	}
	s.x = x
	s.stateMu.Lock()
	s.app = app
	s.stateMu.Unlock()
	return nil
}

// mkdirDurable creates dir and its missing parents durably.
func mkdirDurable(fs vfs.FS, dir string) error { return vfsutil.MkdirAll(fs, dir) }

// removeIndex closes the index and deletes its directory.
func (s *Store) removeIndex() error {
	if err := s.x.close(false); err != nil {
		return fmt.Errorf("storage: close index: %w", err)
	}
	if err := s.opts.FS.RemoveAll(s.indexDir); err != nil {
		return fmt.Errorf("storage: remove index %s: %w", s.indexDir, err)
	}
	return nil
}

// fail records the first fatal error.
func (s *Store) fail(err error) {
	if s.failure.CompareAndSwap(nil, &err) {
		s.log.Error("storage: not accepting appends until reopened", "err", err)
	}
}

// Err returns nil while the store is healthy. After a journal, replication
// or index failure it returns an error wrapping ErrUnavailable and the
// cause; the store then acknowledges nothing until it is closed and
// reopened (Open repairs).
func (s *Store) Err() error {
	if p := s.failure.Load(); p != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, *p)
	}
	if err := s.jErr.Load().Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return nil
}

// Ready reports whether the store is open, recovered and healthy.
func (s *Store) Ready() bool { return !s.closed.Load() && s.Err() == nil }

// SyncPolicy returns the journal's sync policy.
func (s *Store) SyncPolicy() journal.SyncPolicy { return s.opts.SyncPolicy }

// Stats returns a snapshot of the store's counters.
func (s *Store) Stats() Stats {
	st := Stats{
		Appends:       s.stats.appends.Load(),
		Records:       s.stats.records.Load(),
		Bytes:         s.stats.bytes.Load(),
		Rejected:      s.stats.rejected.Load(),
		Duplicates:    s.stats.duplicates.Load(),
		Batches:       s.stats.batches.Load(),
		HandlerErrors: s.stats.handlerErrors.Load(),
		IndexFlushes:  s.stats.indexFlushes.Load(),
		RingSize:      int64(s.opts.RingSize),
		Journal:       s.j.Stats(),
	}
	if r := s.recovery.Load(); r != nil {
		st.Recovery = *r
	}
	if !s.closed.Load() {
		st.RingOccupancy = int64(s.opts.RingSize) - s.d.RingBuffer().RemainingCapacity()
	}
	s.stateMu.RLock()
	st.Streams = len(s.app.streams)
	s.stateMu.RUnlock()
	return st
}

// Close stops accepting appends, lets every append already in the ring
// commit or fail as a whole, stops the pipeline's goroutines, flushes the
// index and closes the journal. Calls after the first return its result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		// Shutdown seals the ring: claims made before the seal are
		// published and drained, later ones fail (publish: ErrClosed).
		var errs []error
		if err := s.d.Shutdown(context.Background()); err != nil && !errors.Is(err, disruptor.ErrHalted) {
			errs = append(errs, fmt.Errorf("storage: stop pipeline: %w", err))
		}
		if s.rep != nil {
			s.rep.stopReplica()
		} else {
			s.bp.stop()
		}
		s.stopRetention()
		close(s.closing)
		s.readMu.Lock()
		healthy := s.failure.Load() == nil
		if err := s.x.close(healthy); err != nil {
			errs = append(errs, fmt.Errorf("storage: close index: %w", err))
		}
		if err := s.j.Close(); err != nil && !(s.detached && errors.Is(err, journal.ErrClosed)) {
			errs = append(errs, fmt.Errorf("storage: close journal: %w", err))
		}
		s.readMu.Unlock()
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// Wait blocks until the stream's NextOffset is greater than offset (the
// record at offset is committed), ctx ends (ctx.Err()) or the store closes
// (ErrClosed). The stream need not exist yet. When the stream is closed
// and holds no record at offset, none will ever come: Wait returns
// ErrStreamClosed at once.
func (s *Store) Wait(ctx context.Context, stream string, offset uint64) error {
	if err := ValidateStreamName(stream); err != nil {
		return err
	}
	closed := false
	err := s.waitFor(ctx, func() bool {
		m, _ := s.lookup(stream)
		closed = m.Closed && m.NextOffset <= offset
		return m.NextOffset > offset || closed
	})
	if err == nil && closed {
		return fmt.Errorf("%w: stream %q ends at offset %d", ErrStreamClosed, stream, offset)
	}
	return err
}

// waitFor blocks until done reports true (checked after every business
// logic batch), ctx ends (ctx.Err()) or the store closes (ErrClosed).
func (s *Store) waitFor(ctx context.Context, done func() bool) error {
	s.waiters.Add(1)
	defer s.waiters.Add(-1)
	for {
		ch := *s.notify.Load()
		if s.closed.Load() {
			return ErrClosed
		}
		if done() {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.closing:
			return ErrClosed
		}
	}
}

// wake releases every Wait blocked on the current notify channel.
// Business-logic goroutine only.
func (s *Store) wake() {
	if s.waiters.Load() == 0 {
		return
	}
	ch := make(chan struct{})
	old := s.notify.Swap(&ch)
	close(*old)
}

// lookup returns the published metadata of a stream.
func (s *Store) lookup(stream string) (streamMeta, bool) {
	s.stateMu.RLock()
	defer s.stateMu.RUnlock()
	st, ok := s.app.streams[stream]
	if !ok || !s.visible(st, s.now()) {
		return streamMeta{}, false
	}
	return st.pub, true
}

// visible reports whether readers see st at wall-clock time now: it was
// created or written, and has not expired. REQUIRES: stateMu held.
func (s *Store) visible(st *streamState, now int64) bool {
	if (st.pub.NextOffset == 0 && !st.pub.Explicit) || st.pub.SoftDeleted {
		return false
	}
	return !st.pub.expired(now, st.touched.Load())
}

func infoOf(name string, m streamMeta) StreamInfo {
	info := StreamInfo{
		Stream:      name,
		FirstOffset: m.FirstOffset,
		NextOffset:  m.NextOffset,
		Records:     m.NextOffset - m.FirstOffset,
		Bytes:       m.Bytes,
		Closed:      m.Closed,
		ContentType: m.Config.ContentType,
		TTLSeconds:  m.Config.TTL / int64(time.Second),
		ForkedFrom:  m.Source,
		ForkOffset:  m.ForkOffset,
	}
	if info.ContentType == "" {
		info.ContentType = badbatch.DefaultContentType
	}
	if m.NextOffset > 0 {
		info.LastTimestamp = time.Unix(0, m.LastTime)
	}
	if m.Config.ExpiresAt != 0 {
		info.ExpiresAt = time.Unix(0, m.Config.ExpiresAt)
	}
	return info
}

// StreamInfo describes one stream, or returns ErrNotFound. It reads memory
// only; ctx is checked first, for the same signature as the client's.
func (s *Store) StreamInfo(ctx context.Context, stream string) (StreamInfo, error) {
	if err := ctx.Err(); err != nil {
		return StreamInfo{}, err
	}
	if err := ValidateStreamName(stream); err != nil {
		return StreamInfo{}, err
	}
	if s.closed.Load() {
		return StreamInfo{}, ErrClosed
	}
	m, ok := s.lookup(stream)
	if !ok {
		return StreamInfo{}, s.missing(stream)
	}
	if m.Source != "" {
		m.FirstOffset = chainFirst(s.forkChain(stream))
	}
	return infoOf(stream, m), nil
}

// Streams lists every stream, sorted by name. ctx is checked first.
func (s *Store) Streams(ctx context.Context) ([]StreamInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if s.closed.Load() {
		return nil, ErrClosed
	}
	now := s.now()
	s.stateMu.RLock()
	out := make([]StreamInfo, 0, len(s.app.streams))
	for name, st := range s.app.streams {
		if s.visible(st, now) {
			out = append(out, infoOf(name, st.pub))
		}
	}
	s.stateMu.RUnlock()
	slices.SortFunc(out, func(a, b StreamInfo) int {
		switch {
		case a.Stream < b.Stream:
			return -1
		case a.Stream > b.Stream:
			return 1
		}
		return 0
	})
	return out, nil
}
