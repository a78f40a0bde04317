package disruptor

import (
	"fmt"
	"log/slog"
)

// DefaultRingSize is Options.RingSize when zero.
const DefaultRingSize = 1024

// Options configures a Disruptor (and NewRingBufferWithOptions). Zero fields
// take their defaults; New and NewRingBufferWithOptions copy the struct and
// never modify the caller's. An Options value is plain data: not safe for
// concurrent mutation, safe to reuse once New has returned.
type Options struct {
	// RingSize is the number of slots, a power of two. Default 1024.
	RingSize int
	// Producer is the claim protocol. Default MultiProducer.
	Producer ProducerType
	// WaitStrategy is how consumers wait. Nil means DefaultWaitStrategy().
	WaitStrategy WaitStrategy
	// MaxBatchSize caps the events a processor hands its handler per batch
	// (endOfBatch is forced on the last one). 0 means no cap.
	MaxBatchSize int
	// Logger receives exception reports. Nil discards them.
	Logger *slog.Logger
}

// DefaultOptions returns a fresh Options with every default filled in.
func DefaultOptions() *Options {
	return &Options{
		RingSize:     DefaultRingSize,
		Producer:     MultiProducer,
		WaitStrategy: DefaultWaitStrategy(),
		Logger:       slog.New(slog.DiscardHandler),
	}
}

// resolve returns a validated copy of o with defaults filled in; o may be
// nil and is never modified.
func (o *Options) resolve() (Options, error) {
	var r Options
	if o != nil {
		r = *o
	}
	if r.RingSize == 0 {
		r.RingSize = DefaultRingSize
	}
	if r.WaitStrategy == nil {
		r.WaitStrategy = DefaultWaitStrategy()
	}
	if r.Logger == nil {
		r.Logger = slog.New(slog.DiscardHandler)
	}
	if r.RingSize < 1 || r.RingSize&(r.RingSize-1) != 0 {
		return r, fmt.Errorf("%w: %d", ErrNotPowerOfTwo, r.RingSize)
	}
	if r.Producer != MultiProducer && r.Producer != SingleProducer {
		return r, fmt.Errorf("%w: producer type %v", ErrInvalidOptions, r.Producer)
	}
	if r.MaxBatchSize < 0 {
		return r, fmt.Errorf("%w: MaxBatchSize %d < 0", ErrInvalidOptions, r.MaxBatchSize)
	}
	return r, nil
}
