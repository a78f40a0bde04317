package storage

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/badbatch/badbatch"
)

// This file is the stream lifecycle: create with a configuration, close,
// delete, and idempotent producers. Each is journaled as a group with
// control bytes (journal.GroupHasControl) on the stream's own name, decided
// by the business logic from the journal alone (docs/decisions/0018), so
// that rebuilding the index and a cluster's followers reach the same state.

// StreamConfig is a stream's configuration (badbatch.StreamConfig).
type StreamConfig = badbatch.StreamConfig

// Producer identifies an idempotent producer's append
// (badbatch.Producer).
type Producer = badbatch.Producer

// controlOp is what a group with control bytes does.
type controlOp uint8

const (
	opAppend controlOp = 1 // records with options (producer, close, must-exist)
	opCreate controlOp = 2 // create with a configuration, with optional initial records
	opDelete controlOp = 3 // delete the stream (no records)
	opTouch  controlOp = 4 // a read slid the stream's TTL (no records)
	opFork   controlOp = 5 // create as a fork of another stream, with optional records
)

// control flags: which optional fields follow.
const (
	ctlConfig    = 1 << 0 // content type, TTL, expires-at
	ctlClose     = 1 << 1 // close the stream after the group's records
	ctlProducer  = 1 << 2 // producer id, epoch, seq
	ctlMustExist = 1 << 3 // refuse unless the stream exists
	ctlIfExpired = 1 << 4 // delete only a stream that has expired (the reaper)
	ctlFork      = 1 << 5 // source stream and fork offset
	ctlStreamSeq = 1 << 6 // a writer's sequence label
	ctlKnown     = ctlConfig | ctlClose | ctlProducer | ctlMustExist | ctlIfExpired | ctlFork | ctlStreamSeq
)

// control is the decoded control bytes of a group. Its byte slices alias
// the group.
//
// Layout (part of the journal format, see doc.go):
//
//	[0]      op
//	uvarint  flags
//	config:   uvarint content-type length, content type, uvarint TTL (ns), varint expires-at (unix ns, 0 = none)
//	producer: uvarint id length, id, uvarint epoch, uvarint seq
//	fork:     uvarint source length, source, uvarint fork offset, uvarint sub-offset
//	seq:      uvarint stream-seq length, stream seq
type control struct {
	Op          controlOp
	Flags       uint64
	ContentType []byte
	TTL         int64 // nanoseconds, 0 = none
	ExpiresAt   int64 // unix nanoseconds, 0 = none
	ProducerID  []byte
	Epoch, Seq  uint64
	Source      []byte
	ForkOffset  uint64
	ForkSub     uint64
	StreamSeq   []byte
}

var errBadControl = fmt.Errorf("%w: bad control bytes", errCorruptIndex)

func appendControl(dst []byte, c *control) []byte {
	dst = append(dst, byte(c.Op))
	dst = binary.AppendUvarint(dst, c.Flags)
	if c.Flags&ctlConfig != 0 {
		dst = binary.AppendUvarint(dst, uint64(len(c.ContentType)))
		dst = append(dst, c.ContentType...)
		dst = binary.AppendUvarint(dst, uint64(c.TTL))
		dst = binary.AppendVarint(dst, c.ExpiresAt)
	}
	if c.Flags&ctlProducer != 0 {
		dst = binary.AppendUvarint(dst, uint64(len(c.ProducerID)))
		dst = append(dst, c.ProducerID...)
		dst = binary.AppendUvarint(dst, c.Epoch)
		dst = binary.AppendUvarint(dst, c.Seq)
	}
	if c.Flags&ctlFork != 0 {
		dst = binary.AppendUvarint(dst, uint64(len(c.Source)))
		dst = append(dst, c.Source...)
		dst = binary.AppendUvarint(dst, c.ForkOffset)
		dst = binary.AppendUvarint(dst, c.ForkSub)
	}
	if c.Flags&ctlStreamSeq != 0 {
		dst = binary.AppendUvarint(dst, uint64(len(c.StreamSeq)))
		dst = append(dst, c.StreamSeq...)
	}
	return dst
}

// decodeControl parses b. Every byte must be used, and unknown ops and
// flags are refused: they may add fields.
func decodeControl(b []byte) (control, error) {
	var c control
	if len(b) == 0 {
		return c, errBadControl
	}
	c.Op = controlOp(b[0])
	if c.Op < opAppend || c.Op > opFork {
		return c, fmt.Errorf("%w: op %d", errBadControl, b[0])
	}
	p := 1
	uv := func() (uint64, bool) {
		v, n := binary.Uvarint(b[p:])
		if n <= 0 {
			return 0, false
		}
		p += n
		return v, true
	}
	bytesField := func() ([]byte, bool) {
		l, ok := uv()
		if !ok || l > uint64(len(b)-p) {
			return nil, false
		}
		v := b[p : p+int(l)]
		p += int(l)
		return v, true
	}
	var ok bool
	if c.Flags, ok = uv(); !ok || c.Flags&^ctlKnown != 0 {
		return c, fmt.Errorf("%w: flags", errBadControl)
	}
	if c.Flags&ctlConfig != 0 {
		if c.ContentType, ok = bytesField(); !ok {
			return c, errBadControl
		}
		ttl, ok := uv()
		if !ok || ttl > math.MaxInt64 {
			return c, errBadControl
		}
		c.TTL = int64(ttl)
		v, n := binary.Varint(b[p:])
		if n <= 0 {
			return c, errBadControl
		}
		p += n
		c.ExpiresAt = v
	}
	if c.Flags&ctlProducer != 0 {
		if c.ProducerID, ok = bytesField(); !ok {
			return c, errBadControl
		}
		if c.Epoch, ok = uv(); !ok {
			return c, errBadControl
		}
		if c.Seq, ok = uv(); !ok {
			return c, errBadControl
		}
	}
	if c.Flags&ctlFork != 0 {
		if c.Source, ok = bytesField(); !ok {
			return c, errBadControl
		}
		if c.ForkOffset, ok = uv(); !ok {
			return c, errBadControl
		}
		if c.ForkSub, ok = uv(); !ok {
			return c, errBadControl
		}
	}
	if c.Flags&ctlStreamSeq != 0 {
		if c.StreamSeq, ok = bytesField(); !ok {
			return c, errBadControl
		}
	}
	if p != len(b) {
		return c, fmt.Errorf("%w: %d stray bytes", errBadControl, len(b)-p)
	}
	return c, nil
}

// streamConfigOf is the configuration a control carries.
func (c *control) config() streamConfig {
	return streamConfig{ContentType: string(c.ContentType), TTL: c.TTL, ExpiresAt: c.ExpiresAt}
}

// streamConfig is a stream's stored configuration.
type streamConfig struct {
	ContentType string
	TTL         int64 // ns
	ExpiresAt   int64 // unix ns
}

// normalized is c with the defaults of a stream made by an append.
func (c streamConfig) normalized() streamConfig {
	if c.ContentType == "" {
		c.ContentType = badbatch.DefaultContentType
	}
	return c
}

func configOf(cfg *StreamConfig) streamConfig {
	c := streamConfig{ContentType: cfg.ContentType, TTL: int64(cfg.TTL)}
	if c.ContentType == "" {
		c.ContentType = badbatch.DefaultContentType
	}
	if !cfg.ExpiresAt.IsZero() {
		c.ExpiresAt = cfg.ExpiresAt.UnixNano()
	}
	return c
}

// MaxContentTypeLength bounds StreamConfig.ContentType, in bytes.
const MaxContentTypeLength = 256

func validateConfig(cfg *StreamConfig) error {
	if len(cfg.ContentType) > MaxContentTypeLength {
		return fmt.Errorf("%w: content type is %d bytes, at most %d", ErrInvalidArgument, len(cfg.ContentType), MaxContentTypeLength)
	}
	for i := 0; i < len(cfg.ContentType); i++ {
		if c := cfg.ContentType[i]; c < 0x20 || c > 0x7e {
			return fmt.Errorf("%w: content type %q must be printable ASCII", ErrInvalidArgument, cfg.ContentType)
		}
	}
	if cfg.TTL < 0 {
		return fmt.Errorf("%w: negative TTL %v", ErrInvalidArgument, cfg.TTL)
	}
	if cfg.TTL > 0 && !cfg.ExpiresAt.IsZero() {
		return fmt.Errorf("%w: a stream has a TTL or an expiry time, not both", ErrInvalidArgument)
	}
	if !cfg.ExpiresAt.IsZero() && (cfg.ExpiresAt.Before(minTimestamp) || cfg.ExpiresAt.After(maxTimestamp)) {
		return fmt.Errorf("%w: expiry time %v outside the representable range", ErrInvalidArgument, cfg.ExpiresAt)
	}
	return nil
}

func validateProducer(p *Producer) error {
	if p == nil {
		return nil
	}
	if len(p.ID) == 0 || len(p.ID) > badbatch.MaxProducerIDLength {
		return fmt.Errorf("%w: producer id is %d bytes, want 1 to %d", ErrInvalidArgument, len(p.ID), badbatch.MaxProducerIDLength)
	}
	if p.Epoch > math.MaxInt64 || p.Seq > math.MaxInt64 {
		return fmt.Errorf("%w: producer epoch and seq must be below 2^63", ErrInvalidArgument)
	}
	return nil
}

// controlFor is the control an append with opts needs, if any.
func controlFor(opts *AppendOptions) (control, bool) {
	c := control{Op: opAppend}
	if opts.Close {
		c.Flags |= ctlClose
	}
	if opts.MustExist {
		c.Flags |= ctlMustExist
	}
	if p := opts.Producer; p != nil {
		c.Flags |= ctlProducer
		c.ProducerID, c.Epoch, c.Seq = stringBytes(p.ID), p.Epoch, p.Seq
	}
	if opts.StreamSeq != "" {
		c.Flags |= ctlStreamSeq
		c.StreamSeq = stringBytes(opts.StreamSeq)
	}
	return c, c.Flags != 0
}

// CreateResult is what CreateStream did.
type CreateResult struct {
	// Created is false when the stream already existed with an equal
	// configuration: nothing changed and recs were not appended.
	Created bool
	// Append describes the initial records, when there were any and the
	// stream was created.
	Append AppendResult
}

// CreateStream creates stream with cfg, and appends recs (possibly none)
// as its first records, atomically. If the stream exists with an equal
// configuration it changes nothing (Created false); with another one it
// returns ErrStreamExists. A stream that was appended to without being
// created has the default configuration (DefaultContentType, no TTL, open).
//
// Errors, none of which changes anything stored: those of AppendWith for
// the records, ErrInvalidArgument for a bad configuration, ErrStreamExists.
func (s *Store) CreateStream(ctx context.Context, stream string, cfg StreamConfig, recs ...Record) (CreateResult, error) {
	if err := ctx.Err(); err != nil {
		return CreateResult{}, err
	}
	if err := ValidateStreamName(stream); err != nil {
		return CreateResult{}, err
	}
	if err := validateConfig(&cfg); err != nil {
		return CreateResult{}, err
	}
	if len(recs) > 0 {
		if err := s.validateAppend(stream, &AppendOptions{}, recs); err != nil {
			return CreateResult{}, err
		}
	}
	sc := configOf(&cfg)
	c := control{Op: opCreate, Flags: ctlConfig, ContentType: stringBytes(sc.ContentType), TTL: sc.TTL, ExpiresAt: sc.ExpiresAt}
	if cfg.Closed {
		c.Flags |= ctlClose
	}
	res, err := s.command(ctx, stream, &c, nil, recs)
	if err != nil {
		return CreateResult{}, err
	}
	return CreateResult{Created: !res.Replayed, Append: res}, nil
}

// CloseStream closes stream, after appending recs (possibly none) as its
// last records, atomically. Closing a closed stream again without records
// succeeds and changes nothing. opts may carry an expected last offset, an
// idempotency key or a producer, as for AppendWith.
//
// Errors: those of AppendWith, ErrNotFound for a stream that does not
// exist, ErrStreamClosed when recs are given and the stream is already
// closed.
func (s *Store) CloseStream(ctx context.Context, stream string, opts AppendOptions, recs ...Record) (AppendResult, error) {
	opts.Close, opts.MustExist = true, true
	if len(recs) > 0 {
		return s.AppendWith(ctx, stream, opts, recs...)
	}
	if err := ctx.Err(); err != nil {
		return AppendResult{}, err
	}
	if err := ValidateStreamName(stream); err != nil {
		return AppendResult{}, err
	}
	if err := validateProducer(opts.Producer); err != nil {
		return AppendResult{}, err
	}
	c, _ := controlFor(&opts)
	return s.command(ctx, stream, &c, &opts, nil)
}

// DeleteStream deletes stream: reads answer ErrNotFound afterwards, and a
// stream created again under the name starts empty, at offset 0. The
// delete is journaled; the records' space comes back through retention
// (nothing is rewritten). The global log (ReadGlobal) keeps showing the
// deleted records until retention removes them.
//
// Errors: ErrInvalidStream, ErrNotFound (no such stream), ErrClosed,
// ErrUnavailable, ctx's error (the delete may still happen).
func (s *Store) DeleteStream(ctx context.Context, stream string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := ValidateStreamName(stream); err != nil {
		return err
	}
	c := control{Op: opDelete}
	_, err := s.command(ctx, stream, &c, nil, nil)
	return err
}

// ForkStream creates stream as a fork of source at offset: the fork reads
// source's records [0, offset) without copying them, then its own, which
// start at offset (recs, possibly none, appended atomically with the
// fork). sub > 0 forks inside the record at offset: the fork's first own
// record is a copy of that record's first sub bytes. cfg nil takes the
// source's configuration. Forking again with the same source, offset, sub
// and configuration changes nothing (Replayed). A source with forks that
// is deleted answers ErrStreamDeleted (410) until its last fork is
// deleted; then it is gone, and its name is free again.
//
// Errors, none of which changes anything stored: ErrInvalidStream,
// ErrStreamExists (stream exists otherwise, or is a soft-deleted source;
// or source is soft-deleted), ErrNotFound (no such source),
// ErrInvalidArgument (offset past the source's NextOffset, sub past the
// record's end, a bad configuration), those of AppendWith for recs.
func (s *Store) ForkStream(ctx context.Context, stream, source string, offset, sub uint64, cfg *StreamConfig, recs ...Record) (AppendResult, error) {
	if err := ctx.Err(); err != nil {
		return AppendResult{}, err
	}
	if err := ValidateStreamName(stream); err != nil {
		return AppendResult{}, err
	}
	if err := ValidateStreamName(source); err != nil {
		return AppendResult{}, err
	}
	if stream == source {
		return AppendResult{}, fmt.Errorf("%w: a stream cannot fork itself", ErrInvalidArgument)
	}
	c := control{Op: opFork, Flags: ctlFork, Source: stringBytes(source), ForkOffset: offset, ForkSub: sub}
	if sub > 0 {
		page, err := s.Read(ctx, source, offset, 1)
		if err != nil {
			return AppendResult{}, err
		}
		if len(page) == 0 || sub > uint64(len(page[0].Value)) {
			return AppendResult{}, fmt.Errorf("%w: sub-offset %d past the end of %q's record %d", ErrInvalidArgument, sub, source, offset)
		}
		recs = append([]Record{{Key: page[0].Key, Value: page[0].Value[:sub], Headers: page[0].Headers}}, recs...)
	}
	if cfg != nil {
		if err := validateConfig(cfg); err != nil {
			return AppendResult{}, err
		}
		sc := configOf(cfg)
		c.Flags |= ctlConfig
		c.ContentType, c.TTL, c.ExpiresAt = stringBytes(sc.ContentType), sc.TTL, sc.ExpiresAt
		if cfg.Closed {
			c.Flags |= ctlClose
		}
	}
	if len(recs) > 0 {
		if err := s.validateAppend(stream, &AppendOptions{}, recs); err != nil {
			return AppendResult{}, err
		}
	}
	return s.command(ctx, stream, &c, nil, recs)
}

// command journals one group with control bytes and waits for its
// decision.
func (s *Store) command(ctx context.Context, stream string, c *control, opts *AppendOptions, recs []Record) (AppendResult, error) {
	f, err := s.enqueue(stream, opts, c, recs)
	if err != nil {
		return AppendResult{}, err
	}
	res, err := f.Wait(ctx)
	f.Release()
	return res, err
}

// producerState is one producer's place in one stream.
type producerState struct {
	Epoch uint64
	Seq   uint64 // the last accepted seq in Epoch
	// The last accepted append, answered again for a repeat of Seq.
	FirstOffset uint64
	Count       uint32
	FirstSeq    uint64
}

// Outcomes of lifecycle groups, beside accepted, rejected and duplicate.
const (
	rejectClosed    = 1 // the stream is closed
	rejectExists    = 2 // created with another configuration
	rejectMissing   = 3 // must exist, does not
	rejectFenced    = 4 // producer epoch below the current one
	rejectSeqGap    = 5 // producer seq not the next one
	rejectDeleted   = 6 // soft-deleted: forks still read it
	rejectRange     = 7 // a fork offset past the source's end
	rejectEpochSeq  = 8 // a producer's newer epoch must start at seq 0
	rejectStreamSeq = 9 // a writer seq label not above the last one
)

// decideControl decides a group with control bytes. st is the stream's
// state (nil: it does not exist).
func (a *applier) decideControl(h *groupHeader, recs recordSource) (decision, error) {
	c, err := decodeControl(h.Control)
	if err != nil {
		return decision{}, fmt.Errorf("group at seq %d: %w", h.FirstSeq, err)
	}
	st, err := a.liveStream(h)
	if err != nil {
		return decision{}, err
	}
	if st != nil && st.meta.SoftDeleted {
		switch {
		case c.Flags&ctlIfExpired != 0:
			return decision{Outcome: outcomeCommand}, nil
		case c.Op == opCreate || c.Op == opFork:
			// The name is taken until the last fork lets it go.
			return decision{Outcome: outcomeRejected, Reject: rejectExists}, nil
		}
		return decision{Outcome: outcomeRejected, Reject: rejectDeleted}, nil
	}
	switch c.Op {
	case opFork:
		return a.decideFork(h, &c, st, recs)
	case opDelete, opTouch:
		if h.Records != 0 {
			return decision{}, fmt.Errorf("%w: command group at seq %d has records", errCorruptIndex, h.FirstSeq)
		}
		if c.Flags&ctlIfExpired != 0 {
			return decision{Outcome: outcomeCommand}, nil // liveStream deleted it if it had expired
		}
		if st == nil || !st.exists() {
			return decision{Outcome: outcomeRejected, Reject: rejectMissing}, nil
		}
		if c.Op == opTouch {
			if h.Time > st.meta.Access {
				st.meta.Access = h.Time
				a.markDirty(st)
			}
			return decision{Outcome: outcomeCommand}, nil
		}
		return decision{Outcome: outcomeCommand}, a.deleteStream(st)
	case opCreate:
		if c.Flags&ctlConfig == 0 {
			return decision{}, fmt.Errorf("%w: create group at seq %d without a configuration", errCorruptIndex, h.FirstSeq)
		}
		cfg := c.config()
		if st != nil && st.exists() {
			if st.meta.Config.normalized() != cfg || st.meta.Closed != (c.Flags&ctlClose != 0) {
				return decision{Outcome: outcomeRejected, Reject: rejectExists}, nil
			}
			return decision{Outcome: outcomeDuplicate, Current: st.lastOffset()}, nil
		}
		st = a.newStream(h.Stream)
		st.meta.Explicit = true
		st.meta.Config = cfg
		st.meta.Access = h.Time
		a.markDirty(st)
		if h.Records == 0 {
			st.meta.Closed = c.Flags&ctlClose != 0
			return decision{Outcome: outcomeCommand}, nil
		}
		d, err := a.decideAppend(h, recs)
		if err == nil && d.Outcome == outcomeAccepted && c.Flags&ctlClose != 0 {
			st.meta.Closed = true
		}
		return d, err
	}
	// opAppend: records with options; without records, a close.
	if c.Flags&ctlMustExist != 0 && (st == nil || !st.exists()) {
		return decision{Outcome: outcomeRejected, Reject: rejectMissing}, nil
	}
	var pk string
	var ps producerState
	if c.Flags&ctlProducer != 0 {
		a.idemScratch = append(append(append(a.idemScratch[:0], h.Stream...), nameTerminator), c.ProducerID...)
		pk = string(a.idemScratch)
		cur, known := a.producers[pk]
		switch {
		case known && c.Epoch < cur.Epoch:
			return decision{Outcome: outcomeRejected, Reject: rejectFenced, Epoch: cur.Epoch}, nil
		case known && c.Epoch == cur.Epoch && c.Seq <= cur.Seq:
			return decision{Outcome: outcomeDuplicate, FirstOffset: cur.FirstOffset, Count: int(cur.Count), FirstSeq: cur.FirstSeq, Seq: cur.Seq}, nil
		case known && c.Epoch == cur.Epoch && c.Seq != cur.Seq+1:
			return decision{Outcome: outcomeRejected, Reject: rejectSeqGap, Epoch: cur.Epoch, ExpectedSeq: cur.Seq + 1, Seq: c.Seq}, nil
		case known && c.Epoch > cur.Epoch && c.Seq != 0:
			return decision{Outcome: outcomeRejected, Reject: rejectEpochSeq, Epoch: c.Epoch, Seq: c.Seq}, nil
		case !known && c.Seq != 0:
			return decision{Outcome: outcomeRejected, Reject: rejectSeqGap, Epoch: c.Epoch, ExpectedSeq: 0, Seq: c.Seq}, nil
		}
		ps = producerState{Epoch: c.Epoch, Seq: c.Seq}
	}
	if c.Flags&ctlStreamSeq != 0 && st != nil && st.exists() && st.meta.StreamSeq != "" && string(c.StreamSeq) <= st.meta.StreamSeq {
		return decision{Outcome: outcomeRejected, Reject: rejectStreamSeq}, nil
	}
	var d decision
	if h.Records == 0 {
		if c.Flags&ctlClose == 0 {
			return decision{}, fmt.Errorf("%w: append group at seq %d without records", errCorruptIndex, h.FirstSeq)
		}
		if st == nil || !st.exists() {
			return decision{Outcome: outcomeRejected, Reject: rejectMissing}, nil
		}
		if st.meta.Config.TTL > 0 && h.Time > st.meta.Access {
			st.meta.Access = h.Time // a close renews a TTL, as an append does
			a.markDirty(st)
		}
		if h.HasExpected && h.ExpectedLast != st.lastOffset() {
			return decision{Outcome: outcomeRejected, Current: st.lastOffset(), Expected: h.ExpectedLast}, nil
		}
		d = decision{Outcome: outcomeCommand, Current: st.lastOffset()}
		if !st.meta.Closed {
			st.meta.Closed = true
			a.markDirty(st)
		}
	} else {
		if d, err = a.decideAppend(h, recs); err != nil || d.Outcome != outcomeAccepted {
			return d, err
		}
		st = a.streams[string(h.Stream)]
		if c.Flags&ctlClose != 0 {
			st.meta.Closed = true
		}
		if c.Flags&ctlStreamSeq != 0 {
			st.meta.StreamSeq = string(c.StreamSeq)
		}
		ps.FirstOffset, ps.Count, ps.FirstSeq = d.FirstOffset, uint32(d.Count), d.FirstSeq
	}
	if pk != "" {
		d.Seq = c.Seq
		a.producers[pk] = ps
		if err := a.x.setProducer(h.Stream, c.ProducerID, ps); err != nil {
			return decision{}, err
		}
	}
	return d, nil
}

// liveStream returns the state of the group's stream, nil if it does not
// exist. A stream that has expired at the group's journaled time is
// deleted first: expiry is decided from the journal alone, like every
// other decision.
func (a *applier) liveStream(h *groupHeader) (*streamState, error) {
	st := a.streams[string(h.Stream)]
	if st == nil || !st.meta.expired(h.Time, 0) {
		return st, nil
	}
	return nil, a.deleteStream(st)
}

// expired reports whether a stream with this metadata has expired at t
// (unix ns); touched is a later access known only in memory (0: none).
func (m *streamMeta) expired(t, touched int64) bool {
	if m.Config.ExpiresAt != 0 && t >= m.Config.ExpiresAt {
		return true
	}
	if m.Config.TTL <= 0 {
		return false
	}
	last := max(m.Access, touched)
	return t-last >= m.Config.TTL
}

// decideFork creates the group's stream as a fork of c.Source at
// c.ForkOffset: it reads the source's offsets below the fork offset and
// its own from there on. Without a configuration it takes the source's.
func (a *applier) decideFork(h *groupHeader, c *control, st *streamState, recs recordSource) (decision, error) {
	if c.Flags&ctlFork == 0 {
		return decision{}, fmt.Errorf("%w: fork group at seq %d without a source", errCorruptIndex, h.FirstSeq)
	}
	src := a.streams[string(c.Source)]
	if st != nil && st.exists() {
		// The same fork again is no change; anything else is a conflict.
		same := st.meta.Source == string(c.Source) && st.meta.ForkOffset == c.ForkOffset && st.meta.ForkSub == c.ForkSub
		if same && c.Flags&ctlConfig != 0 {
			same = st.meta.Config.normalized() == c.config()
		} else if same && src != nil {
			same = st.meta.Config.normalized() == src.meta.Config.normalized()
		}
		if same {
			return decision{Outcome: outcomeDuplicate, Current: st.lastOffset()}, nil
		}
		return decision{Outcome: outcomeRejected, Reject: rejectExists}, nil
	}
	switch {
	case src == nil || !src.exists() || src.meta.expired(h.Time, 0):
		return decision{Outcome: outcomeRejected, Reject: rejectMissing}, nil
	case src.meta.SoftDeleted:
		return decision{Outcome: outcomeRejected, Reject: rejectExists}, nil
	case c.ForkOffset > src.meta.NextOffset:
		return decision{Outcome: outcomeRejected, Reject: rejectRange}, nil
	}
	st = a.newStream(h.Stream)
	st.meta.Explicit = true
	st.meta.Config = src.meta.Config.normalized()
	if c.Flags&ctlConfig != 0 {
		st.meta.Config = c.config()
	}
	st.meta.Access = h.Time
	st.meta.Source = string(c.Source)
	st.meta.ForkOffset = c.ForkOffset
	st.meta.ForkSub = c.ForkSub
	st.meta.NextOffset = c.ForkOffset
	src.meta.Forks++
	a.markDirty(src)
	a.markDirty(st)
	if h.Records == 0 {
		st.meta.Closed = c.Flags&ctlClose != 0
		return decision{Outcome: outcomeCommand}, nil
	}
	d, err := a.decideAppend(h, recs)
	if err == nil && d.Outcome == outcomeAccepted && c.Flags&ctlClose != 0 {
		st.meta.Closed = true
	}
	return d, err
}

// newStream adds an empty stream to the state.
func (a *applier) newStream(name []byte) *streamState {
	st := &streamState{name: string(name), key: append([]byte(nil), name...)}
	st.meta.MaxTime = math.MinInt64
	st.meta.LastTime = math.MinInt64
	a.stateMu.Lock()
	a.streams[st.name] = st
	a.stateMu.Unlock()
	return st
}

func (a *applier) markDirty(st *streamState) {
	if !st.dirty {
		st.dirty = true
		a.dirty = append(a.dirty, st)
	}
}

// deleteStream removes st and every index key of it. The removal from the
// stream map is immediate: the delete is journaled, so a reader that sees
// it early sees a decided outcome.
func (a *applier) deleteStream(st *streamState) error {
	if st.meta.Forks > 0 {
		// Forks still read its records: keep them, refuse everything else.
		st.meta.SoftDeleted = true
		a.markDirty(st)
		return nil
	}
	for _, tag := range []byte{tagRun, tagTime, tagIdem, tagCursor, tagProducer} {
		if err := a.x.deletePrefix(streamPrefix(nil, tag, st.key)); err != nil {
			return err
		}
	}
	if err := a.x.deleteStream(st.key); err != nil {
		return err
	}
	prefix := string(st.key) + string(rune(nameTerminator))
	for k := range a.idem {
		if len(k) > len(prefix) && k[:len(prefix)] == prefix {
			delete(a.idem, k)
		}
	}
	for k := range a.producers {
		if len(k) > len(prefix) && k[:len(prefix)] == prefix {
			delete(a.producers, k)
		}
	}
	st.deleted = true
	a.stateMu.Lock()
	delete(a.streams, st.name)
	a.stateMu.Unlock()
	if st.meta.Source == "" {
		return nil
	}
	// The source loses a fork; a soft-deleted source whose last fork
	// this was goes for good (and so on up the chain).
	src := a.streams[st.meta.Source]
	if src == nil || src.meta.Forks == 0 {
		return fmt.Errorf("%w: fork %q of %q without a fork count", errCorruptIndex, st.name, st.meta.Source)
	}
	src.meta.Forks--
	a.markDirty(src)
	if src.meta.SoftDeleted && src.meta.Forks == 0 {
		return a.deleteStream(src)
	}
	return nil
}

// lifecycleError turns a lifecycle rejection into the error the caller
// sees.
func lifecycleError(stream string, d *decision) error {
	switch d.Reject {
	case rejectClosed:
		return fmt.Errorf("%w: stream %q", ErrStreamClosed, stream)
	case rejectExists:
		return fmt.Errorf("%w: stream %q", ErrStreamExists, stream)
	case rejectMissing:
		return fmt.Errorf("%w: stream %q", ErrNotFound, stream)
	case rejectDeleted:
		return fmt.Errorf("%w: stream %q", ErrStreamDeleted, stream)
	case rejectStreamSeq:
		return fmt.Errorf("%w: stream %q", ErrStreamSeq, stream)
	case rejectEpochSeq:
		return fmt.Errorf("%w: stream %q: producer epoch %d must start at seq 0, not %d", ErrInvalidArgument, stream, d.Epoch, d.Seq)
	case rejectRange:
		return fmt.Errorf("%w: stream %q: fork offset past the source's end", ErrInvalidArgument, stream)
	case rejectFenced:
		return &ProducerError{Stream: stream, Epoch: d.Epoch, fenced: true}
	case rejectSeqGap:
		return &ProducerError{Stream: stream, Epoch: d.Epoch, ExpectedSeq: d.ExpectedSeq, Seq: d.Seq}
	}
	return errors.New("storage: unknown rejection")
}

// touch slides the TTL of stream for a read. The slide is immediate in
// memory; it is journaled (a touch command, fire and forget) once the
// journaled access time lags the read by more than an eighth of the TTL,
// at most once per eighth. So a restart (or a new cluster leader) loses at
// most an eighth of the TTL of slide, and reads add at most 8 small
// journal groups per TTL per stream.
func (s *Store) touch(stream string) {
	s.stateMu.RLock()
	st := s.app.streams[stream]
	var ttl, access int64
	if st != nil {
		ttl, access = st.pub.Config.TTL, st.pub.Access
	}
	s.stateMu.RUnlock()
	if st == nil || ttl <= 0 {
		return
	}
	now := s.now()
	for {
		old := st.touched.Load()
		if now <= old || st.touched.CompareAndSwap(old, now) {
			break
		}
	}
	step := max(ttl/8, 1)
	if now-access <= step || now-st.touchSent.Load() <= step {
		return
	}
	st.touchSent.Store(now)
	c := control{Op: opTouch}
	s.fireCommand(stream, &c)
}

// fireCommand journals a command group without waiting for its outcome
// (touches and the reaper's deletes: a lost one changes no acknowledged
// state).
func (s *Store) fireCommand(stream string, c *control) {
	f, err := s.enqueue(stream, nil, c, nil)
	if err != nil {
		s.log.Debug("storage: lifecycle command not journaled", "stream", stream, "err", err)
		return
	}
	f.Release() // the completer recycles it
}

// reapExpired journals a delete for every stream that has expired by the
// wall clock. Reads already answer ErrNotFound for such a stream; the
// delete removes its index keys, and the business logic decides it from
// the journaled time like any other (ctlIfExpired: a stream that a later
// append revived is left alone).
func (s *Store) reapExpired() {
	if s.closed.Load() || s.Err() != nil {
		return
	}
	now := s.now()
	var victims []string
	s.stateMu.RLock()
	for name, st := range s.app.streams {
		if (st.pub.Config.TTL > 0 || st.pub.Config.ExpiresAt != 0) && st.pub.expired(now, st.touched.Load()) {
			victims = append(victims, name)
		}
	}
	s.stateMu.RUnlock()
	for _, name := range victims {
		c := control{Op: opDelete, Flags: ctlIfExpired}
		s.fireCommand(name, &c)
	}
}

// forkLink is one stream of a fork chain as readers see it: the fork's
// offsets [From, To) are this stream's records.
type forkLink struct {
	name     string
	from, to uint64
	first    uint64 // the stream's own first retained offset
}

// forkChain returns how stream's offsets map onto the streams it was
// forked from, root first, stream itself last (one link for a stream that
// is not a fork). REQUIRES: beginRead held.
func (s *Store) forkChain(stream string) []forkLink {
	s.stateMu.RLock()
	defer s.stateMu.RUnlock()
	st := s.app.streams[stream]
	if st == nil || st.pub.Source == "" {
		return nil
	}
	var chain []forkLink
	to := uint64(math.MaxUint64)
	for st != nil {
		link := forkLink{name: st.name, to: to, first: st.pub.FirstOffset}
		if st.pub.Source != "" {
			link.from = st.pub.ForkOffset
			to = min(to, st.pub.ForkOffset)
		}
		chain = append(chain, link)
		if st.pub.Source == "" {
			break
		}
		st = s.app.streams[st.pub.Source]
	}
	slices.Reverse(chain)
	// A link whose range is empty (a fork below its source's fork
	// offset) reads nothing.
	out := chain[:0]
	for _, l := range chain {
		if l.from < l.to {
			out = append(out, l)
		}
	}
	return out
}

// ownerOf returns the link holding offset off.
func ownerOf(chain []forkLink, off uint64) forkLink {
	for _, l := range chain {
		if off >= l.from && off < l.to {
			return l
		}
	}
	return chain[len(chain)-1]
}

// chainFirst is the first offset a fork can still read: retention
// removes the oldest records of the streams it reads through.
func chainFirst(chain []forkLink) uint64 {
	for _, l := range chain {
		if f := max(l.from, l.first); f < l.to {
			return f
		}
	}
	return chain[len(chain)-1].from
}

// missing is the error for a stream that readers do not see: deleted
// while forks read it (ErrStreamDeleted, 410), or not there.
func (s *Store) missing(stream string) error {
	s.stateMu.RLock()
	st := s.app.streams[stream]
	soft := st != nil && st.pub.SoftDeleted
	s.stateMu.RUnlock()
	if soft {
		return fmt.Errorf("%w: stream %q", ErrStreamDeleted, stream)
	}
	return fmt.Errorf("%w: stream %q", ErrNotFound, stream)
}
