// Package disruptor is a generic LMAX Disruptor: a preallocated ring of
// slots that producers claim, fill in place and publish, and that a graph of
// event handlers processes in sequence order, each on its own goroutine, in
// batches, with no allocation and no lock on the event path. It uses only the
// standard library and knows nothing about disks; BadBatch's journal,
// replication and business-logic processors run on it.
//
// # Sequences, barriers and gating
//
// Every event has a sequence number: 0, 1, 2, ... Sequence s lives in slot
// s & (size-1), so a slot is reused once per lap of the ring.
//
//	producers  --claim-->  [ ring: claimed | published ]  --barrier-->  handlers
//	    ^                                                                   |
//	    +----------------- gating: the leaf handlers' sequences -----------+
//
// The protocol:
//
//   - Claim: Next(n) hands out the n sequences after the claim cursor. With
//     MultiProducer the claim is one atomic add, so any number of goroutines
//     claim concurrently; with SingleProducer one goroutine does.
//   - Gating: the slot of sequence s may be written only when every gating
//     sequence is >= s - size, i.e. the event of the previous lap in that
//     slot has been processed by every handler. Only the leaf handlers (the
//     ones no other handler depends on) gate producers: a leaf's sequence is
//     never ahead of its upstream handlers'. Next waits (spin, yield, park)
//     while the ring is full; TryNext returns ErrInsufficientCapacity. Once a
//     MultiProducer claim has had to wait, later producers wait for room
//     before their atomic add, so that no parked producer holds a claim the
//     handlers would have to wait for.
//   - Publish: SingleProducer advances the published cursor with one
//     compare-and-swap (its claims touch no shared memory). MultiProducer
//     writes each slot's lap number (seq >> log2(size)) into a per-slot
//     availability array, so producers publish out of order and consumers
//     see the contiguous published prefix.
//   - Barrier: a handler's SequenceBarrier yields the highest sequence it
//     may process: the published prefix for first-stage handlers, the
//     minimum of the upstream handlers' sequences otherwise. The handler
//     processes everything up to it as one batch, then stores its own
//     sequence, which releases the batch downstream (and, for leaves, to
//     producers). Those sequentially consistent atomic stores and loads are
//     the only synchronisation: a handler's writes to a slot happen before
//     every dependent handler's reads of it.
//
// Invariants: each handler sees every published sequence exactly once, in
// order; a handler never sees a sequence before all of its upstream handlers
// (transitively) have finished it; a producer never overwrites a slot some
// handler has not finished. TestModelRandomTopologies checks all three on
// random graphs and tiny rings under the race detector.
//
// # Cache-line layout
//
// Sequence is 120 bytes: 56 bytes of padding, the atomic int64 value, 56
// bytes of padding. Whatever 8-byte-aligned address it starts at, the 64-byte
// cache line holding the value lies inside the struct, so no other variable
// shares it (no false sharing). The ring's sequencer keeps read-mostly fields
// (size, mask, strategy, gating list) on lines of their own, and the claim
// cursor, the published cursor, the cached gating minimum and the
// producers' wait counter each in their own padded Sequence or line. Slots
// themselves are packed: adjacent small events share lines, as in LMAX.
//
// # Wait strategies and the default
//
// Consumers wait with a WaitStrategy: BusySpin, Yielding, Sleeping,
// Blocking, TimeoutBlocking or PhasedBackoff (spin, then yield, then a
// fallback). Producers wake parked consumers on publish; processors wake the
// parked consumers downstream of them after each batch.
//
// The default is Blocking. On a 2-core machine a spinning consumer starves
// the producer and the other handlers it waits for (more runnable goroutines
// than cores, and Go preempts a spinner only after 10ms); on the shared
// 2-vCPU machine this was tuned on, Blocking was as fast as or faster than
// every spin/yield variant on every benchmarked topology
// (docs/benchmarks-disruptor.md). Blocking never loses a wake-up: a parked
// waiter registers, then re-checks; a publisher stores, then checks for
// registered waiters (Dekker's protocol on sequentially consistent atomics),
// and a publish costs one atomic load while nobody is parked. Producers
// blocked on a full ring wait the same way (spin, yield, park) and leaf
// handlers wake them after each batch: every producer holding a claim, and
// one producer waiting for room at a time, which passes the wake-up on while
// room is left.
//
// # Errors and exception policy
//
// Misuse is an error, never a hang or a corrupted ring: a ring size that is
// not a power of two (ErrNotPowerOfTwo), a claim of less than 1 or more than
// the ring (ErrClaimTooLarge), publishing a range never claimed
// (ErrPublishUnclaimed), starting twice (ErrAlreadyStarted), changing the
// graph after Start (ErrStarted), registering a handler twice
// (ErrHandlerReused). DSL calls record their misuse in the returned group's
// Err and Start returns it.
//
// A handler's error goes to its ExceptionHandler. The default is
// FatalExceptionHandler: it logs at Error level, then aborts the disruptor:
// the failing event is not released (no dependent handler sees it), every
// processor stops, producers' Next fails with ErrHalted, and Err returns the
// cause. This is the safe policy for a journal: a record that failed to be
// written must never be applied. LoggingExceptionHandler logs and continues
// (the event counts as processed); any ExceptionHandler, such as
// ExceptionHandlerFuncs, can be set per handler or as the default.
//
// # Stopping
//
// Shutdown(ctx) seals the ring (new claims fail with ErrHalted; claims made
// before complete), drains until every handler has processed every claimed
// event, then stops and joins every goroutine. Every Publish that returned
// nil is handled, and no event is left handled by some handlers but not by
// others (the journal never holds what the business logic did not apply).
// Conversely, Publish reports ErrHalted only for a range the drain did not
// see every handler finish: a MultiProducer claim made before a Shutdown
// that drains completely is never reported refused, however late its
// Publish runs (the drain waits for it and records how far it got).
// If ctx ends first, Shutdown halts and returns at once; a handler still
// inside OnEvent finishes it, and Halt waits for that. Halt stops every
// processor after its batch in progress (dropping what is published but not
// yet handled), wakes producers blocked on a full ring with ErrHalted, and
// joins the goroutines. Abort is Halt without the join, for use inside
// handlers.
//
// # Concurrency
//
// Disruptor and RingBuffer are safe for concurrent use by producers
// (one at a time with SingleProducer). The DSL is for one goroutine before
// Start. Each BatchEventProcessor runs on one goroutine owned by the
// Disruptor (or by the caller of Run when used standalone).
//
// # Usage
//
//	d, err := disruptor.New(func() Record { return Record{} }, &disruptor.Options{RingSize: 4096})
//	...
//	d.HandleEventsWith(journal, replicate).Then(business)
//	if err := d.Start(); err != nil { ... }
//
//	hi, err := d.Next(1)         // claim (waits while the ring is full)
//	if err != nil { ... }        // ErrHalted once stopped
//	rec := d.Get(hi)             // the slot, written in place
//	rec.Value = append(rec.Value[:0], value...)
//	err = d.Publish(hi, hi)      // visible to journal and replicate
//
//	err = d.Shutdown(ctx)        // drain, then stop
//
// Handlers implement EventHandler[T] (OnEvent(ev *T, seq int64, endOfBatch
// bool) error) and optionally BatchStartHandler, StartHandler or
// StartErrorHandler, ShutdownHandler or ShutdownErrorHandler, and
// TimeoutHandler. A handler that also implements SliceHandler[T]
// (OnEvents(first int64, events []T, endOfBatch bool) error) receives each
// batch as at most two contiguous runs of the ring (two when it wraps)
// instead of one OnEvent call per event.
package disruptor
