package storage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/badbatch/badbatch/journal"
)

// HealOptions tune a Healer. The zero value of a field means its default.
type HealOptions struct {
	// MinBackoff is the wait before the first reopen after a failure
	// (default 100ms). Each failed reopen doubles it, up to MaxBackoff;
	// every wait is jittered to between half and all of it.
	MinBackoff time.Duration
	// MaxBackoff caps the wait between reopens (default 10s). The Healer
	// retries forever while the error persists (a full disk that an
	// operator frees up).
	MaxBackoff time.Duration
	// StableAfter: a store that fails again within this time of its
	// reopen does not restart the backoff at MinBackoff but carries on
	// doubling it, so a disk that accepts Open but fails every write does
	// not make the store flap (default 30s).
	StableAfter time.Duration
	// CheckInterval is how often the Healer polls the store's Err when no
	// call has reported a failure (default 100ms).
	CheckInterval time.Duration
	// ReadWait bounds how long a read (Read, Wait, Streams, ...) that finds
	// the store being reopened waits for the new one before it answers
	// ErrUnavailable (default 2s, and never past its context). Mutations
	// never wait: they answer ErrUnavailable at once.
	ReadWait time.Duration
}

// DefaultHealOptions returns the defaults of HealOptions.
func DefaultHealOptions() *HealOptions {
	return &HealOptions{
		MinBackoff:    100 * time.Millisecond,
		MaxBackoff:    10 * time.Second,
		StableAfter:   30 * time.Second,
		CheckInterval: 100 * time.Millisecond,
		ReadWait:      2 * time.Second,
	}
}

func (o *HealOptions) withDefaults() (HealOptions, error) {
	var c HealOptions
	if o != nil {
		c = *o
	}
	d := DefaultHealOptions()
	if c.MinBackoff == 0 {
		c.MinBackoff = d.MinBackoff
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = max(d.MaxBackoff, c.MinBackoff)
	}
	if c.StableAfter == 0 {
		c.StableAfter = d.StableAfter
	}
	if c.CheckInterval == 0 {
		c.CheckInterval = d.CheckInterval
	}
	if c.ReadWait == 0 {
		c.ReadWait = d.ReadWait
	}
	if c.MinBackoff < 0 || c.MaxBackoff < c.MinBackoff || c.StableAfter < 0 || c.CheckInterval < 0 || c.ReadWait < 0 {
		return c, fmt.Errorf("%w: heal options: want 0 <= MinBackoff <= MaxBackoff and no negative duration", ErrInvalidArgument)
	}
	return c, nil
}

// HealStats counts a Healer's failures and recoveries.
type HealStats struct {
	// Failures is how many times the store failed (a journal write or
	// fsync, replication or index error) and was taken down to reopen.
	Failures uint64
	// Recoveries is how many of those reopens succeeded.
	Recoveries uint64
	// ReopenAttempts counts every reopen tried, failed ones included.
	ReopenAttempts uint64
	// DroppedEntries is how many journal entries past the last successful
	// fsync the repairs dropped (entries no append was acknowledged for).
	DroppedEntries uint64
	// Healthy: a store is open and its Err is nil.
	Healthy bool
}

// Healer owns a standalone Store's lifecycle and heals it: when the store
// fails (its Err turns non-nil: a failed journal write or fsync, or an
// index error), the Healer closes it, repairs the journal and reopens it,
// with capped, jittered exponential backoff, forever while the error
// persists. It has the Store's request methods (it satisfies
// httpapi.Store) and forwards each call to the store that is open at the
// time.
//
// While a store is failed or being reopened, mutations answer
// ErrUnavailable (the HTTP API's 503) and reads wait up to
// HealOptions.ReadWait for the new store. A call in flight on the store
// being closed ends as Store's own calls end on Close: an append already in
// the ring commits or fails as a whole, any other append fails; a Wait
// blocked on the old store carries on on the new one, so long-lived tails
// ride through the reopen.
//
// Repair: under journal.SyncAlways, every entry above the journal's last
// successful fsync (Journal.Synced) is dropped before the reopen. No such
// entry was acknowledged (the business logic applies a batch only after
// its fsync), and after a failed fsync the page cache may hold data the
// disk does not, so that a later successful fsync would make acknowledged
// entries depend on ones that may vanish on power loss. Under the weaker
// policies acknowledged entries may lie above that mark, and the Healer
// keeps whatever the journal's own repair keeps. The index and the
// idempotency table are rebuilt from the journal by Open, as after a crash.
//
// A Healer is for standalone stores only; see docs/decisions/0021 for why
// cluster mode does not heal. It is safe for concurrent use.
type Healer struct {
	dir  string
	opts *Options // the caller's; Open never modifies it
	ho   HealOptions
	log  *slog.Logger

	// cur is the open store, nil while one is being reopened.
	cur atomic.Pointer[Store]
	mu  struct {
		sync.Mutex
		// installed is closed, and replaced, whenever cur changes or the
		// Healer closes; waiters for a new store select on it.
		installed chan struct{}
		closed    bool
		cause     error // the failure being healed (nil when healthy)
	}
	kick chan struct{}
	stop chan struct{}
	done chan struct{}

	stats struct {
		failures, recoveries, attempts, dropped atomic.Uint64
	}
	closeOnce sync.Once
	closeErr  error
}

// OpenHealing opens the store in dir (as Open does, with opts) and returns
// a Healer that owns it. opts may be nil; neither opts nor ho is modified.
// A Replication option is refused: cluster mode does not heal.
func OpenHealing(dir string, opts *Options, ho *HealOptions) (*Healer, error) {
	if opts != nil && opts.Replication != nil {
		return nil, fmt.Errorf("%w: a Healer is for standalone stores (cluster mode does not heal)", ErrInvalidArgument)
	}
	h2, err := ho.withDefaults()
	if err != nil {
		return nil, err
	}
	st, err := Open(dir, opts)
	if err != nil {
		return nil, err
	}
	h := &Healer{dir: dir, opts: opts, ho: h2, log: st.log,
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	h.mu.installed = make(chan struct{})
	h.cur.Store(st)
	go h.run()
	return h, nil
}

// Store returns the store open now, or nil while it is being reopened or
// after Close. It may be closed by the Healer at any time after it is
// returned: its calls then answer ErrClosed.
func (h *Healer) Store() *Store { return h.cur.Load() }

// Stats returns the Healer's counters.
func (h *Healer) Stats() HealStats {
	return HealStats{
		Failures:       h.stats.failures.Load(),
		Recoveries:     h.stats.recoveries.Load(),
		ReopenAttempts: h.stats.attempts.Load(),
		DroppedEntries: h.stats.dropped.Load(),
		Healthy:        h.Ready(),
	}
}

// Close stops healing and closes the open store, if any. A heal in
// progress is abandoned between attempts. Calls after the first return its
// result.
func (h *Healer) Close() error {
	h.closeOnce.Do(func() {
		close(h.stop)
		<-h.done
		h.mu.Lock()
		h.mu.closed = true
		h.wakeLocked()
		h.mu.Unlock()
		if st := h.cur.Load(); st != nil {
			h.closeErr = st.Close()
		}
	})
	return h.closeErr
}

// installLocked publishes st as the current store (nil: none) and wakes
// every waiter. REQUIRES: mu held.
func (h *Healer) installLocked(st *Store) {
	h.cur.Store(st)
	h.wakeLocked()
}

// wakeLocked wakes every caller waiting for a store. REQUIRES: mu held.
func (h *Healer) wakeLocked() {
	close(h.mu.installed)
	h.mu.installed = make(chan struct{})
}

// notify asks the healing goroutine to check the store now.
func (h *Healer) notify() {
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

// run is the healing goroutine: Close stops it and waits for it.
func (h *Healer) run() {
	defer close(h.done)
	tick := time.NewTicker(h.ho.CheckInterval)
	defer tick.Stop()
	backoff := h.ho.MinBackoff
	var recoveredAt time.Time
	for {
		select {
		case <-h.stop:
			return
		case <-h.kick:
		case <-tick.C:
		}
		st := h.cur.Load()
		if st == nil || st.Err() == nil {
			continue
		}
		if time.Since(recoveredAt) >= h.ho.StableAfter {
			backoff = h.ho.MinBackoff
		}
		var ok bool
		backoff, ok = h.heal(st, backoff)
		if !ok {
			return
		}
		recoveredAt = time.Now()
	}
}

// heal closes the failed store old, then repairs and reopens until it
// succeeds (true) or the Healer is closed (false). It returns the backoff
// the next heal starts from if the new store fails soon.
func (h *Healer) heal(old *Store, backoff time.Duration) (time.Duration, bool) {
	cause := old.Err()
	h.stats.failures.Add(1)
	h.log.Error("storage: store failed; closing it to repair and reopen", "dir", h.dir, "err", cause)
	began := time.Now()
	h.mu.Lock()
	h.mu.cause = cause
	h.installLocked(nil)
	h.mu.Unlock()
	if err := old.Close(); err != nil {
		h.log.Warn("storage: closing the failed store", "dir", h.dir, "err", err)
	}
	// The mark is taken after Close: a journal that had not failed yet
	// (an index failure) syncs on Close.
	synced, truncate := old.j.Synced(), old.opts.SyncPolicy == journal.SyncAlways
	jo := old.journalOptions()
	for attempt := 1; ; attempt++ {
		t := time.NewTimer(jittered(backoff))
		select {
		case <-h.stop:
			t.Stop()
			return backoff, false
		case <-t.C:
		}
		backoff = nextBackoff(backoff, h.ho.MaxBackoff)
		h.stats.attempts.Add(1)
		st, err := h.reopen(jo, synced, truncate)
		if err != nil {
			h.log.Warn("storage: reopen failed; retrying", "dir", h.dir, "attempt", attempt, "next_in_max", backoff, "err", err)
			continue
		}
		h.mu.Lock()
		if h.mu.closed {
			h.mu.Unlock()
			_ = st.Close()
			return backoff, false
		}
		h.mu.cause = nil
		h.installLocked(st)
		h.mu.Unlock()
		h.stats.recoveries.Add(1)
		h.log.Info("storage: store reopened after a failure", "dir", h.dir, "attempts", attempt,
			"downtime", time.Since(began), "err", cause)
		return backoff, true
	}
}

// jittered returns a wait drawn uniformly from [b/2, b], so that servers
// that failed together do not retry in step.
func jittered(b time.Duration) time.Duration { return b/2 + rand.N(b/2+1) }

// nextBackoff doubles b, capped at most.
func nextBackoff(b, most time.Duration) time.Duration { return min(b*2, most) }

// reopen repairs the journal (dropping entries above synced when truncate)
// and opens the store.
func (h *Healer) reopen(jo *journal.Options, synced uint64, truncate bool) (*Store, error) {
	if truncate {
		j, err := journal.Open(h.opts0().FS.PathJoin(h.dir, "journal"), jo)
		if err != nil {
			return nil, fmt.Errorf("storage: repair: open journal: %w", err)
		}
		last := j.LastIndex()
		err = nil
		if last > synced {
			err = j.TruncateBack(synced)
		}
		if cerr := j.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("storage: repair: drop unsynced entries above %d: %w", synced, err)
		}
		if last > synced {
			h.stats.dropped.Add(last - synced)
			h.log.Warn("storage: dropped journal entries that no fsync confirmed (none was acknowledged)",
				"dir", h.dir, "from_index", synced+1, "to_index", last)
		}
	}
	return Open(h.dir, h.opts)
}

// opts0 is the caller's options with defaults filled (for the FS).
func (h *Healer) opts0() Options {
	o, _ := h.opts.withDefaults() // validated by the first Open
	return o
}

// current returns the open store. With wait, it waits up to ReadWait (and
// ctx) for one while a store is being reopened.
func (h *Healer) current(ctx context.Context, wait bool) (*Store, error) {
	var timer *time.Timer
	for {
		h.mu.Lock()
		st, closed, cause, installed := h.cur.Load(), h.mu.closed, h.mu.cause, h.mu.installed
		h.mu.Unlock()
		switch {
		case closed:
			return nil, ErrClosed
		case st != nil:
			return st, nil
		case !wait:
			return nil, unavailable(cause)
		}
		if timer == nil {
			timer = time.NewTimer(h.ho.ReadWait)
			defer timer.Stop()
		}
		select {
		case <-installed:
		case <-timer.C:
			return nil, unavailable(cause)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func unavailable(cause error) error {
	if cause == nil {
		return fmt.Errorf("%w: the store is being reopened", ErrUnavailable)
	}
	return fmt.Errorf("%w: the store is being reopened after: %w", ErrUnavailable, cause)
}

// settle maps the error of a call on st: a failure kicks the healing
// goroutine, and ErrClosed from a store the Healer took down (not from
// Healer.Close) becomes ErrUnavailable, so that clients retry.
func (h *Healer) settle(st *Store, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrUnavailable) {
		h.notify()
		return err
	}
	if errors.Is(err, ErrClosed) && h.cur.Load() != st {
		h.mu.Lock()
		closed, cause := h.mu.closed, h.mu.cause
		h.mu.Unlock()
		if !closed {
			return unavailable(cause)
		}
	}
	return err
}

// mutate runs f on the open store, at once or not at all.
func mutate[T any](h *Healer, ctx context.Context, f func(*Store) (T, error)) (T, error) {
	st, err := h.current(ctx, false)
	if err != nil {
		var zero T
		return zero, err
	}
	v, err := f(st)
	return v, h.settle(st, err)
}

// read runs f on the open store, waiting (ReadWait) for a reopen, and runs
// it again on the new store if the Healer closed the old one under it.
func read[T any](h *Healer, ctx context.Context, f func(*Store) (T, error)) (T, error) {
	for {
		st, err := h.current(ctx, true)
		if err != nil {
			var zero T
			return zero, err
		}
		v, err := f(st)
		if err != nil && errors.Is(err, ErrClosed) && h.cur.Load() != st && !h.isClosed() {
			continue
		}
		return v, h.settle(st, err)
	}
}

func (h *Healer) isClosed() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.mu.closed
}

// AppendWith is Store.AppendWith on the open store.
func (h *Healer) AppendWith(ctx context.Context, stream string, opts AppendOptions, recs ...Record) (AppendResult, error) {
	return mutate(h, ctx, func(s *Store) (AppendResult, error) { return s.AppendWith(ctx, stream, opts, recs...) })
}

// AppendAsync is Store.AppendAsync on the open store. A failure that only
// the future reports is noticed by the healing goroutine's next check.
func (h *Healer) AppendAsync(stream string, opts AppendOptions, recs ...Record) (*AppendFuture, error) {
	return mutate(h, context.Background(), func(s *Store) (*AppendFuture, error) { return s.AppendAsync(stream, opts, recs...) })
}

// CreateStream is Store.CreateStream on the open store.
func (h *Healer) CreateStream(ctx context.Context, stream string, cfg StreamConfig, recs ...Record) (CreateResult, error) {
	return mutate(h, ctx, func(s *Store) (CreateResult, error) { return s.CreateStream(ctx, stream, cfg, recs...) })
}

// ForkStream is Store.ForkStream on the open store.
func (h *Healer) ForkStream(ctx context.Context, stream, source string, offset, sub uint64, cfg *StreamConfig, recs ...Record) (AppendResult, error) {
	return mutate(h, ctx, func(s *Store) (AppendResult, error) {
		return s.ForkStream(ctx, stream, source, offset, sub, cfg, recs...)
	})
}

// CloseStream is Store.CloseStream on the open store.
func (h *Healer) CloseStream(ctx context.Context, stream string, opts AppendOptions, recs ...Record) (AppendResult, error) {
	return mutate(h, ctx, func(s *Store) (AppendResult, error) { return s.CloseStream(ctx, stream, opts, recs...) })
}

// DeleteStream is Store.DeleteStream on the open store.
func (h *Healer) DeleteStream(ctx context.Context, stream string) error {
	_, err := mutate(h, ctx, func(s *Store) (struct{}, error) { return struct{}{}, s.DeleteStream(ctx, stream) })
	return err
}

// SetCursor is Store.SetCursor on the open store.
func (h *Healer) SetCursor(ctx context.Context, stream, name string, offset uint64) error {
	_, err := mutate(h, ctx, func(s *Store) (struct{}, error) { return struct{}{}, s.SetCursor(ctx, stream, name, offset) })
	return err
}

// Read is Store.Read on the open store.
func (h *Healer) Read(ctx context.Context, stream string, from uint64, limit int) ([]StoredRecord, error) {
	return read(h, ctx, func(s *Store) ([]StoredRecord, error) { return s.Read(ctx, stream, from, limit) })
}

// ReadFromTime is Store.ReadFromTime on the open store.
func (h *Healer) ReadFromTime(ctx context.Context, stream string, t time.Time, limit int) ([]StoredRecord, error) {
	return read(h, ctx, func(s *Store) ([]StoredRecord, error) { return s.ReadFromTime(ctx, stream, t, limit) })
}

// ReadGlobal is Store.ReadGlobal on the open store.
func (h *Healer) ReadGlobal(ctx context.Context, fromSeq uint64, limit int) ([]StoredRecord, error) {
	return read(h, ctx, func(s *Store) ([]StoredRecord, error) { return s.ReadGlobal(ctx, fromSeq, limit) })
}

// Streams is Store.Streams on the open store.
func (h *Healer) Streams(ctx context.Context) ([]StreamInfo, error) {
	return read(h, ctx, func(s *Store) ([]StreamInfo, error) { return s.Streams(ctx) })
}

// StreamInfo is Store.StreamInfo on the open store.
func (h *Healer) StreamInfo(ctx context.Context, stream string) (StreamInfo, error) {
	return read(h, ctx, func(s *Store) (StreamInfo, error) { return s.StreamInfo(ctx, stream) })
}

// Cursor is Store.Cursor on the open store.
func (h *Healer) Cursor(ctx context.Context, stream, name string) (uint64, error) {
	return read(h, ctx, func(s *Store) (uint64, error) { return s.Cursor(ctx, stream, name) })
}

// Wait is Store.Wait on the open store. When the Healer takes that store
// down, Wait carries on on the reopened one (its commits are the same up to
// the failure), so a tail rides through the reopen; while no store is
// open it waits for one until ctx ends.
func (h *Healer) Wait(ctx context.Context, stream string, offset uint64) error {
	for {
		st, err := h.current(ctx, true)
		if errors.Is(err, ErrUnavailable) {
			continue // still reopening: keep waiting, ctx bounds it
		}
		if err != nil {
			return err
		}
		err = st.Wait(ctx, stream, offset)
		if err != nil && errors.Is(err, ErrClosed) && h.cur.Load() != st && !h.isClosed() {
			continue
		}
		return err
	}
}

// Ready reports whether a store is open, recovered and healthy.
func (h *Healer) Ready() bool {
	st := h.cur.Load()
	return st != nil && !h.isClosed() && st.Ready()
}

// Err returns nil while a healthy store is open; while the store is failed
// or being reopened, an error wrapping ErrUnavailable and the cause; after
// Close, ErrClosed.
func (h *Healer) Err() error {
	st, err := h.current(context.Background(), false)
	if err != nil {
		return err
	}
	return st.Err()
}
