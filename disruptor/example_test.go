package disruptor_test

import (
	"context"
	"fmt"

	"github.com/badbatch/badbatch/disruptor"
)

// record is the ring's slot type: producers overwrite it in place.
type record struct {
	payload  []byte
	position int64 // set by the journal handler
}

// journal "writes" each batch; endOfBatch is where a real journal fsyncs.
type journal struct{ batches, written int }

func (j *journal) OnEvent(ev *record, seq int64, endOfBatch bool) error {
	ev.position = seq
	j.written += len(ev.payload)
	if endOfBatch {
		j.batches++
	}
	return nil
}

// replicate runs in parallel with journal.
type replicate struct{ forwarded int }

func (r *replicate) OnEvent(ev *record, _ int64, _ bool) error {
	r.forwarded++
	return nil
}

// business runs only after both journal and replicate have handled an event.
type business struct{ applied []string }

func (b *business) OnEvent(ev *record, seq int64, _ bool) error {
	b.applied = append(b.applied, fmt.Sprintf("%d:%s@%d", seq, ev.payload, ev.position))
	return nil
}

func Example() {
	opts := disruptor.DefaultOptions()
	opts.RingSize = 8
	d, err := disruptor.New(func() record { return record{payload: make([]byte, 0, 64)} }, opts)
	if err != nil {
		panic(err)
	}
	j, r, b := &journal{}, &replicate{}, &business{}
	d.HandleEventsWith(j, r).Then(b)
	if err := d.Start(); err != nil {
		panic(err)
	}

	for _, msg := range []string{"a", "bb", "ccc"} {
		hi, err := d.Next(1) // claim one slot (waits while the ring is full)
		if err != nil {
			panic(err)
		}
		ev := d.Get(hi)                             // the slot, written in place
		ev.payload = append(ev.payload[:0], msg...) // reuses the slot's buffer
		if err := d.Publish(hi, hi); err != nil {
			panic(err)
		}
	}

	// Shutdown drains everything published, then stops the goroutines.
	if err := d.Shutdown(context.Background()); err != nil {
		panic(err)
	}
	fmt.Println(b.applied)
	fmt.Println("journaled bytes:", j.written, "replicated:", r.forwarded)
	_, err = d.Next(1)
	fmt.Println(err)
	// Output:
	// [0:a@0 1:bb@1 2:ccc@2]
	// journaled bytes: 6 replicated: 3
	// disruptor: halted
}
