package disruptor

import (
	"fmt"
	"log/slog"
)

// ExceptionHandler receives the errors of a processor's handler. It is
// called on the processor's goroutine. To stop everything, it calls
// Disruptor.Abort (or BatchEventProcessor.Halt for a standalone processor);
// the processor then does not count the failed event as processed, so no
// dependent handler ever sees it. If it returns without halting, the event
// counts as processed and the processor continues with the next one.
type ExceptionHandler[T any] interface {
	// HandleEventException gets the error OnEvent returned for ev at seq.
	HandleEventException(err error, seq int64, ev *T)
	// HandleOnStartException gets the error of a handler's
	// OnStart() error (the StartErrorHandler form).
	HandleOnStartException(err error)
	// HandleOnShutdownException gets the error of a handler's
	// OnShutdown() error (the ShutdownErrorHandler form).
	HandleOnShutdownException(err error)
}

// FatalExceptionHandler is the default policy: it logs the error at Error
// level, then calls abort with the error wrapped (%w), which for a
// Disruptor halts every processor, makes producers' Next fail with
// ErrHalted and makes Err return the cause. It is safe for concurrent use.
type FatalExceptionHandler[T any] struct {
	logger *slog.Logger
	abort  func(cause error)
}

// NewFatalExceptionHandler returns a fatal handler that logs to logger (nil
// discards) and then calls abort (nil: only logs). Pass Disruptor.Abort.
func NewFatalExceptionHandler[T any](logger *slog.Logger, abort func(cause error)) *FatalExceptionHandler[T] {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &FatalExceptionHandler[T]{logger: logger, abort: abort}
}

// HandleEventException logs and aborts.
func (h *FatalExceptionHandler[T]) HandleEventException(err error, seq int64, _ *T) {
	h.logger.Error("disruptor: event handler failed, halting", "seq", seq, "err", err)
	h.fail(fmt.Errorf("disruptor: event handler failed at sequence %d: %w", seq, err))
}

// HandleOnStartException logs and aborts.
func (h *FatalExceptionHandler[T]) HandleOnStartException(err error) {
	h.logger.Error("disruptor: OnStart failed, halting", "err", err)
	h.fail(fmt.Errorf("disruptor: OnStart failed: %w", err))
}

// HandleOnShutdownException logs and aborts (records the cause; the
// processor is stopping anyway).
func (h *FatalExceptionHandler[T]) HandleOnShutdownException(err error) {
	h.logger.Error("disruptor: OnShutdown failed", "err", err)
	h.fail(fmt.Errorf("disruptor: OnShutdown failed: %w", err))
}

func (h *FatalExceptionHandler[T]) fail(cause error) {
	if h.abort != nil {
		h.abort(cause)
	}
}

// LoggingExceptionHandler logs each error at Error level and lets the
// processor continue: the failed event counts as processed and dependents
// see it. It is safe for concurrent use.
type LoggingExceptionHandler[T any] struct{ logger *slog.Logger }

// NewLoggingExceptionHandler returns a log-and-continue handler (nil logger
// discards).
func NewLoggingExceptionHandler[T any](logger *slog.Logger) *LoggingExceptionHandler[T] {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &LoggingExceptionHandler[T]{logger: logger}
}

// HandleEventException logs and continues.
func (h *LoggingExceptionHandler[T]) HandleEventException(err error, seq int64, _ *T) {
	h.logger.Error("disruptor: event handler failed, continuing", "seq", seq, "err", err)
}

// HandleOnStartException logs and continues.
func (h *LoggingExceptionHandler[T]) HandleOnStartException(err error) {
	h.logger.Error("disruptor: OnStart failed, continuing", "err", err)
}

// HandleOnShutdownException logs.
func (h *LoggingExceptionHandler[T]) HandleOnShutdownException(err error) {
	h.logger.Error("disruptor: OnShutdown failed", "err", err)
}

// ExceptionHandlerFuncs builds a custom ExceptionHandler from functions; a
// nil function ignores that kind of error. Its safety for concurrent use is
// that of the functions.
type ExceptionHandlerFuncs[T any] struct {
	Event    func(err error, seq int64, ev *T)
	Start    func(err error)
	Shutdown func(err error)
}

// HandleEventException calls f.Event.
func (f ExceptionHandlerFuncs[T]) HandleEventException(err error, seq int64, ev *T) {
	if f.Event != nil {
		f.Event(err, seq, ev)
	}
}

// HandleOnStartException calls f.Start.
func (f ExceptionHandlerFuncs[T]) HandleOnStartException(err error) {
	if f.Start != nil {
		f.Start(err)
	}
}

// HandleOnShutdownException calls f.Shutdown.
func (f ExceptionHandlerFuncs[T]) HandleOnShutdownException(err error) {
	if f.Shutdown != nil {
		f.Shutdown(err)
	}
}

var (
	_ ExceptionHandler[int] = (*FatalExceptionHandler[int])(nil)
	_ ExceptionHandler[int] = (*LoggingExceptionHandler[int])(nil)
	_ ExceptionHandler[int] = ExceptionHandlerFuncs[int]{}
)
