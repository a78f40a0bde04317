package disruptor

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// recorder is an EventHandler that logs every callback. It is used by one
// processor goroutine; read it after Run returned.
type recorder struct {
	log        []string
	seqs       []int64
	batchSizes []int64
	ends       []int64 // sequences flagged endOfBatch
	failAt     int64   // OnEvent returns errFail for this sequence (-1: never)
}

var errFail = errors.New("handler failure")

func newRecorder() *recorder { return &recorder{failAt: -1} }

func (r *recorder) OnEvent(ev *int64, seq int64, endOfBatch bool) error {
	r.seqs = append(r.seqs, seq)
	if endOfBatch {
		r.ends = append(r.ends, seq)
	}
	if seq == r.failAt {
		return fmt.Errorf("event %d: %w", seq, errFail)
	}
	return nil
}

func (r *recorder) OnBatchStart(n int64) {
	r.batchSizes = append(r.batchSizes, n)
	r.log = append(r.log, fmt.Sprintf("batch(%d)", n))
}
func (r *recorder) OnStart()    { r.log = append(r.log, "start") }
func (r *recorder) OnShutdown() { r.log = append(r.log, "shutdown") }

// publishAll publishes n events with values equal to their sequences.
func publishAll(t *testing.T, r *RingBuffer[int64], n int64) {
	t.Helper()
	for i := int64(0); i < n; i++ {
		hi, err := r.Next(1)
		require.NoError(t, err)
		*r.Get(hi) = hi
		require.NoError(t, r.Publish(hi, hi))
	}
}

// runProcessor runs p on a goroutine until its sequence reaches last, then
// halts it and returns Run's result.
func runProcessor[T any](t *testing.T, p *BatchEventProcessor[T], last int64) error {
	t.Helper()
	errc := make(chan error, 1)
	go func() { errc <- p.Run() }()
	waitUntil(t, func() bool {
		started := p.state.Load() != stateIdle
		return started && (p.Sequence().Load() >= last || len(errc) > 0)
	})
	p.Halt()
	select {
	case err := <-errc:
		return err
	case <-time.After(hangDeadline):
		t.Fatal("processor did not stop after Halt")
		return nil
	}
}

// TestProcessorBatches publishes everything before Run, so the batches are
// deterministic: one batch of 10, or batches capped by the maximum.
func TestProcessorBatches(t *testing.T) {
	tests := []struct {
		maxBatch  int
		wantSizes []int64
		wantEnds  []int64
	}{
		{0, []int64{10}, []int64{9}},
		{3, []int64{3, 3, 3, 1}, []int64{2, 5, 8, 9}},
		{1, []int64{1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, []int64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}},
		{10, []int64{10}, []int64{9}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("max=%d", tt.maxBatch), func(t *testing.T) {
			r, err := NewRingBuffer[int64](16, nil, SingleProducer)
			require.NoError(t, err)
			publishAll(t, r, 10)
			h := newRecorder()
			p := NewBatchEventProcessor(r, r.NewBarrier(), EventHandler[int64](h))
			require.NoError(t, p.SetMaxBatchSize(tt.maxBatch))
			require.NoError(t, runProcessor(t, p, 9))
			assert.Equal(t, []int64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, h.seqs)
			assert.Equal(t, tt.wantSizes, h.batchSizes)
			assert.Equal(t, tt.wantEnds, h.ends)
			assert.Equal(t, "start", h.log[0])
			assert.Equal(t, "shutdown", h.log[len(h.log)-1])
			assert.Equal(t, int64(9), p.Sequence().Load())
		})
	}
}

func TestProcessorRunOnce(t *testing.T) {
	r, err := NewRingBuffer[int64](8, nil, SingleProducer)
	require.NoError(t, err)

	t.Run("halt before run", func(t *testing.T) {
		h := newRecorder()
		p := NewBatchEventProcessor(r, r.NewBarrier(), EventHandler[int64](h))
		p.Halt()
		assert.NoError(t, p.Run(), "returns at once")
		assert.Empty(t, h.log, "neither OnStart nor OnShutdown")
		assert.ErrorIs(t, p.Run(), ErrAlreadyStarted)
	})
	t.Run("run twice", func(t *testing.T) {
		p := NewBatchEventProcessor(r, r.NewBarrier(), EventHandler[int64](newRecorder()))
		require.NoError(t, runProcessor(t, p, InitialSequenceValue))
		assert.ErrorIs(t, p.Run(), ErrAlreadyStarted)
		assert.ErrorIs(t, p.SetMaxBatchSize(2), ErrAlreadyStarted)
		assert.ErrorIs(t, p.SetExceptionHandler(NewLoggingExceptionHandler[int64](nil)), ErrAlreadyStarted)
	})
	t.Run("bad settings", func(t *testing.T) {
		p := NewBatchEventProcessor(r, r.NewBarrier(), EventHandler[int64](newRecorder()))
		assert.ErrorIs(t, p.SetMaxBatchSize(-1), ErrInvalidOptions)
		assert.ErrorIs(t, p.SetExceptionHandler(nil), ErrNilHandler)
	})
}

// TestProcessorFatalByDefault: a standalone processor's default policy stops
// it at the failing event, which is not counted as processed, and Run
// returns the cause.
func TestProcessorFatalByDefault(t *testing.T) {
	r, err := NewRingBuffer[int64](16, nil, SingleProducer)
	require.NoError(t, err)
	publishAll(t, r, 10)
	h := newRecorder()
	h.failAt = 4
	p := NewBatchEventProcessor(r, r.NewBarrier(), EventHandler[int64](h))
	err = runProcessor(t, p, 9)
	require.ErrorIs(t, err, errFail)
	assert.Contains(t, err.Error(), "sequence 4")
	assert.Equal(t, []int64{0, 1, 2, 3, 4}, h.seqs, "nothing after the failure")
	assert.Equal(t, int64(3), p.Sequence().Load(), "the failed event is not released")
}

func TestProcessorExceptionHandlers(t *testing.T) {
	type call struct {
		seq int64
		err error
	}
	tests := []struct {
		name      string
		handler   func(calls *[]call, p **BatchEventProcessor[int64]) ExceptionHandler[int64]
		wantSeqs  []int64
		wantSeq   int64
		wantCalls []int64
	}{
		{
			name: "log and continue",
			handler: func(calls *[]call, _ **BatchEventProcessor[int64]) ExceptionHandler[int64] {
				return NewLoggingExceptionHandler[int64](nil)
			},
			wantSeqs: []int64{0, 1, 2, 3, 4, 5},
			wantSeq:  5,
		},
		{
			name: "custom, continue",
			handler: func(calls *[]call, _ **BatchEventProcessor[int64]) ExceptionHandler[int64] {
				return ExceptionHandlerFuncs[int64]{Event: func(err error, seq int64, ev *int64) {
					*calls = append(*calls, call{seq, err})
				}}
			},
			wantSeqs:  []int64{0, 1, 2, 3, 4, 5},
			wantSeq:   5,
			wantCalls: []int64{2},
		},
		{
			name: "custom, halt",
			handler: func(calls *[]call, p **BatchEventProcessor[int64]) ExceptionHandler[int64] {
				return ExceptionHandlerFuncs[int64]{Event: func(err error, seq int64, ev *int64) {
					*calls = append(*calls, call{seq, err})
					(*p).Halt()
				}}
			},
			wantSeqs:  []int64{0, 1, 2},
			wantSeq:   1,
			wantCalls: []int64{2},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewRingBuffer[int64](8, nil, SingleProducer)
			require.NoError(t, err)
			publishAll(t, r, 6)
			h := newRecorder()
			h.failAt = 2
			var calls []call
			p := NewBatchEventProcessor(r, r.NewBarrier(), EventHandler[int64](h))
			require.NoError(t, p.SetExceptionHandler(tt.handler(&calls, &p)))
			require.NoError(t, runProcessor(t, p, 5))
			assert.Equal(t, tt.wantSeqs, h.seqs)
			assert.Equal(t, tt.wantSeq, p.Sequence().Load())
			var gotCalls []int64
			for _, c := range calls {
				gotCalls = append(gotCalls, c.seq)
				assert.ErrorIs(t, c.err, errFail, "the handler's own error is passed through")
			}
			assert.Equal(t, tt.wantCalls, gotCalls)
		})
	}
}

// failingLifecycle has the error-returning OnStart/OnShutdown forms.
type failingLifecycle struct{ startErr, shutdownErr error }

func (f *failingLifecycle) OnEvent(*int64, int64, bool) error { return nil }
func (f *failingLifecycle) OnStart() error                    { return f.startErr }
func (f *failingLifecycle) OnShutdown() error                 { return f.shutdownErr }

func TestProcessorLifecycleErrors(t *testing.T) {
	r, err := NewRingBuffer[int64](8, nil, SingleProducer)
	require.NoError(t, err)
	startErr, shutdownErr := errors.New("start"), errors.New("shutdown")
	var mu sync.Mutex
	var got []error
	record := func(err error) { mu.Lock(); got = append(got, err); mu.Unlock() }
	p := NewBatchEventProcessor(r, r.NewBarrier(), EventHandler[int64](&failingLifecycle{startErr, shutdownErr}))
	require.NoError(t, p.SetExceptionHandler(ExceptionHandlerFuncs[int64]{Start: record, Shutdown: record}))
	require.NoError(t, runProcessor(t, p, InitialSequenceValue))
	assert.Equal(t, []error{startErr, shutdownErr}, got)

	t.Run("fatal on start stops the processor", func(t *testing.T) {
		p := NewBatchEventProcessor(r, r.NewBarrier(), EventHandler[int64](&failingLifecycle{startErr: startErr}))
		errc := make(chan error, 1)
		go func() { errc <- p.Run() }()
		select {
		case err := <-errc:
			assert.ErrorIs(t, err, startErr)
		case <-time.After(hangDeadline):
			p.Halt()
			t.Fatal("a fatal OnStart error did not stop the processor")
		}
	})
}

// timeoutRecorder counts OnTimeout calls.
type timeoutRecorder struct {
	mu       sync.Mutex
	timeouts []int64
}

func (h *timeoutRecorder) OnEvent(*int64, int64, bool) error { return nil }
func (h *timeoutRecorder) OnTimeout(seq int64) {
	h.mu.Lock()
	h.timeouts = append(h.timeouts, seq)
	h.mu.Unlock()
}

func TestProcessorTimeoutHandler(t *testing.T) {
	r, err := newRingBuffer[int64](8, nil, SingleProducer, NewTimeoutBlockingWaitStrategy(time.Millisecond))
	require.NoError(t, err)
	publishAll(t, r, 3)
	h := &timeoutRecorder{}
	p := NewBatchEventProcessor(r, r.NewBarrier(), EventHandler[int64](h))
	errc := make(chan error, 1)
	go func() { errc <- p.Run() }()
	waitUntil(t, func() bool { h.mu.Lock(); defer h.mu.Unlock(); return len(h.timeouts) >= 2 })
	p.Halt()
	require.NoError(t, <-errc)
	h.mu.Lock()
	defer h.mu.Unlock()
	assert.Equal(t, int64(2), h.timeouts[0], "OnTimeout gets the last processed sequence")
}

// earlyStrategy returns from WaitFor before seq is available, as a sloppy
// custom strategy might; the processor must just wait again.
type earlyStrategy struct{ calls atomic.Int64 }

func (s *earlyStrategy) WaitFor(seq int64, b *SequenceBarrier) (int64, error) {
	if s.calls.Add(1)%2 == 1 {
		return seq - 1, nil
	}
	return NewYieldingWaitStrategy().WaitFor(seq, b)
}

func (s *earlyStrategy) SignalAllWhenBlocking() {}

func TestProcessorToleratesEarlyWakeups(t *testing.T) {
	ws := &earlyStrategy{}
	r, err := newRingBuffer[int64](8, nil, SingleProducer, ws)
	require.NoError(t, err)
	h := newRecorder()
	p := NewBatchEventProcessor(r, r.NewBarrier(), EventHandler[int64](h))
	errc := make(chan error, 1)
	go func() { errc <- p.Run() }()
	for i := 0; i < 5; i++ {
		waitUntil(t, func() bool { return ws.calls.Load() > int64(2*i) })
		publishAll(t, r, 1)
	}
	waitUntil(t, func() bool { return p.Sequence().Load() == 4 })
	p.Halt()
	require.NoError(t, <-errc)
	assert.Equal(t, []int64{0, 1, 2, 3, 4}, h.seqs)
	for _, n := range h.batchSizes {
		assert.Positive(t, n)
	}
}
