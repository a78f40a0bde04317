package disruptor

import "errors"

// Sentinel errors. Every error returned by this package either is one of
// these or wraps one of them with %w, so callers check with errors.Is.
var (
	// ErrNotPowerOfTwo is returned for a ring size that is not a positive
	// power of two.
	ErrNotPowerOfTwo = errors.New("disruptor: ring size must be a power of two")

	// ErrClaimTooLarge is returned by Next and TryNext for n < 1 or n larger
	// than the ring: such a claim could never be satisfied.
	ErrClaimTooLarge = errors.New("disruptor: claim must be between 1 and the ring size")

	// ErrInsufficientCapacity is returned by TryNext when the ring has fewer
	// than n free slots.
	ErrInsufficientCapacity = errors.New("disruptor: insufficient capacity")

	// ErrPublishUnclaimed is returned by Publish for a range that was never
	// claimed: reversed, negative, longer than the ring or beyond the claim
	// cursor (and, for a single producer, at or below the published cursor).
	ErrPublishUnclaimed = errors.New("disruptor: publish of a sequence that was never claimed")

	// ErrAlreadyStarted is returned by a second Start (or Run).
	ErrAlreadyStarted = errors.New("disruptor: already started")

	// ErrStarted is recorded when the handler graph or the exception
	// handlers are changed after Start.
	ErrStarted = errors.New("disruptor: cannot change handlers after start")

	// ErrHandlerReused is recorded when one handler is registered twice.
	ErrHandlerReused = errors.New("disruptor: event handler registered more than once")

	// ErrUnknownHandler is recorded when After or SetExceptionHandler names a
	// handler that was never registered.
	ErrUnknownHandler = errors.New("disruptor: event handler not registered")

	// ErrNilHandler is recorded for a nil event or exception handler.
	ErrNilHandler = errors.New("disruptor: nil handler")

	// ErrNoHandlers is returned by Start for a disruptor without handlers
	// and recorded for a DSL call that names none.
	ErrNoHandlers = errors.New("disruptor: no event handlers")

	// ErrInvalidOptions wraps an option value that cannot be used.
	ErrInvalidOptions = errors.New("disruptor: invalid options")

	// ErrHalted is returned when a producer's claim, a producer's wait for
	// capacity or a barrier's wait is ended by Halt, Shutdown or a fatal
	// handler error, and by Publish after a halt.
	ErrHalted = errors.New("disruptor: halted")

	// ErrTimeout is returned by a barrier wait that gave up after the
	// timeout of a TimeoutBlocking wait strategy.
	ErrTimeout = errors.New("disruptor: wait timed out")
)
