package disruptor

import (
	"errors"
	"fmt"
	"reflect"
)

// HandlerGroup is a set of handlers in a Disruptor's graph, returned by the
// DSL so that more handlers can be made to depend on it. Like the DSL, it is
// for use before Start, from one goroutine.
type HandlerGroup[T any] struct {
	d       *Disruptor[T]
	entries []*handlerEntry[T]
	err     error
}

// HandleEventsWith adds handlers that consume published events directly
// (they depend on no other handler). Each gets its own processor and
// goroutine; they run in parallel.
func (d *Disruptor[T]) HandleEventsWith(hs ...EventHandler[T]) *HandlerGroup[T] {
	return d.addHandlers(nil, hs)
}

// After returns the group of already registered handlers hs, for example
// d.After(a, b).HandleEventsWith(c) makes c wait for both a and b.
func (d *Disruptor[T]) After(hs ...EventHandler[T]) *HandlerGroup[T] {
	d.mu.Lock()
	defer d.mu.Unlock()
	g := &HandlerGroup[T]{d: d}
	if d.mu.state != disruptorConfiguring {
		g.err = ErrStarted
		return g
	}
	if len(hs) == 0 {
		g.err = fmt.Errorf("%w: After()", ErrNoHandlers)
	}
	for _, h := range hs {
		if e := d.findLocked(h); e != nil {
			g.entries = append(g.entries, e)
		} else {
			g.err = errors.Join(g.err, fmt.Errorf("%w: After(%T)", ErrUnknownHandler, h))
		}
	}
	d.recordLocked(g.err)
	return g
}

// Then adds handlers that process each event only after every handler of g
// has. The handlers of g stop gating producers; the new ones do.
func (g *HandlerGroup[T]) Then(hs ...EventHandler[T]) *HandlerGroup[T] {
	return g.d.addHandlers(g, hs)
}

// HandleEventsWith is Then.
func (g *HandlerGroup[T]) HandleEventsWith(hs ...EventHandler[T]) *HandlerGroup[T] {
	return g.Then(hs...)
}

// Err is the misuse recorded while building this group (nil when fine).
// Start returns it too.
func (g *HandlerGroup[T]) Err() error { return g.err }

// addHandlers registers hs behind upstream (nil: behind the publisher).
func (d *Disruptor[T]) addHandlers(upstream *HandlerGroup[T], hs []EventHandler[T]) *HandlerGroup[T] {
	d.mu.Lock()
	defer d.mu.Unlock()
	g := &HandlerGroup[T]{d: d}
	switch {
	case d.mu.state != disruptorConfiguring:
		// Not recorded for Start: it has run. The caller sees g.Err().
		g.err = ErrStarted
		return g
	case upstream != nil && upstream.err != nil:
		g.err = upstream.err // already recorded
		return g
	case len(hs) == 0:
		g.err = ErrNoHandlers
		d.recordLocked(g.err)
		return g
	}
	for i, h := range hs {
		switch {
		case h == nil:
			g.err = errors.Join(g.err, fmt.Errorf("%w: event handler #%d", ErrNilHandler, i))
		case d.findLocked(h) != nil || indexOfHandler(hs[:i], h) >= 0:
			g.err = errors.Join(g.err, fmt.Errorf("%w: %T", ErrHandlerReused, h))
		}
	}
	if g.err != nil {
		d.recordLocked(g.err)
		return g
	}

	var dependents []*Sequence
	if upstream != nil {
		for _, e := range upstream.entries {
			dependents = append(dependents, e.processor.sequence)
			if e.leaf {
				e.leaf = false
				d.ring.seq.removeGating(e.processor.sequence)
			}
		}
	}
	for _, h := range hs {
		p := NewBatchEventProcessor(d.ring, d.ring.NewBarrier(dependents...), h)
		e := &handlerEntry[T]{handler: h, processor: p, leaf: true}
		d.mu.entries = append(d.mu.entries, e)
		d.ring.seq.addGating(p.sequence)
		g.entries = append(g.entries, e)
	}
	if d.mu.placeholder != nil {
		d.ring.seq.removeGating(d.mu.placeholder)
		d.mu.placeholder = nil
	}
	return g
}

// SetExceptionHandler sets the exception handler of one registered
// handler, overriding the default. ErrStarted after Start,
// ErrUnknownHandler for an unregistered handler, ErrNilHandler for nil.
func (d *Disruptor[T]) SetExceptionHandler(h EventHandler[T], eh ExceptionHandler[T]) error {
	if eh == nil {
		return fmt.Errorf("%w: exception handler", ErrNilHandler)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.mu.state != disruptorConfiguring {
		return ErrStarted
	}
	e := d.findLocked(h)
	if e == nil {
		return fmt.Errorf("%w: %T", ErrUnknownHandler, h)
	}
	e.exceptionHandler = eh
	return nil
}

// SetDefaultExceptionHandler sets the exception handler of every handler
// without its own. Without it the default is fatal (see
// FatalExceptionHandler). ErrStarted after Start, ErrNilHandler for nil.
func (d *Disruptor[T]) SetDefaultExceptionHandler(eh ExceptionHandler[T]) error {
	if eh == nil {
		return fmt.Errorf("%w: exception handler", ErrNilHandler)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.mu.state != disruptorConfiguring {
		return ErrStarted
	}
	d.mu.defaultEH = eh
	return nil
}

// recordLocked keeps DSL misuse for Start. REQUIRES: d.mu held.
func (d *Disruptor[T]) recordLocked(err error) {
	if err != nil {
		d.mu.dslErr = errors.Join(d.mu.dslErr, err)
	}
}

// findLocked returns h's entry or nil. REQUIRES: d.mu held.
func (d *Disruptor[T]) findLocked(h EventHandler[T]) *handlerEntry[T] {
	for _, e := range d.mu.entries {
		if sameHandler(e.handler, h) {
			return e
		}
	}
	return nil
}

func indexOfHandler[T any](hs []EventHandler[T], h EventHandler[T]) int {
	for i, x := range hs {
		if sameHandler(x, h) {
			return i
		}
	}
	return -1
}

// sameHandler reports whether a and b are the same handler. Handlers whose
// dynamic values are not comparable (funcs, structs holding slices) are
// never the same: their reuse cannot be detected.
func sameHandler[T any](a, b EventHandler[T]) bool {
	if a == nil || b == nil {
		return false
	}
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	if va.Type() != vb.Type() || !va.Comparable() || !vb.Comparable() {
		return false
	}
	return a == b
}
