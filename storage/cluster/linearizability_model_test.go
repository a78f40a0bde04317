package cluster

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"
	"testing"

	"github.com/anishathalye/porcupine"
	"github.com/stretchr/testify/assert"
)

// This file is the sequential specification of one stream that the
// linearizability tests check histories against (porcupine, v1.3.1), and
// the tests of that specification on hand-built histories.
//
// The state is the sequence of values appended to the stream. It is kept
// as its length, a hash chained over the values in order, and the last
// value (for the visualization), so that comparing two states, or a state
// with what a read returned, costs the same at any length. Every value
// appended in a history is unique, and a 64-bit chained hash tells two
// sequences of a few hundred values apart.

// linOp is what an operation does.
type linOp uint8

const (
	// linAppend appends one record whose value is Value, optionally only if
	// the stream's last offset is Expected (storage's expected-offset
	// condition).
	linAppend linOp = iota
	// linRead reads the whole stream after a linearizable barrier
	// (Node.ReadIndex, then Store.Read).
	linRead
)

// linInput is an operation's input.
type linInput struct {
	Op          linOp
	Value       string
	HasExpected bool
	// Expected is the last offset the append requires (-1: empty).
	Expected int64
}

// linOutcome is how an operation ended.
type linOutcome uint8

const (
	// linOK: the append stored its record at Offset; the read returned a
	// sequence of Len values whose chained hash is Hash.
	linOK linOutcome = iota
	// linMismatch: the append was refused by its expected-offset
	// condition, the stream's last offset being Current.
	linMismatch
	// linFailed: the append stored nothing, and never will
	// (storage.ErrNotLeader, storage.ErrNotCommitted).
	linFailed
	// linUnknown: the append's outcome is unknown (its context ended, or
	// its node closed under it). It may or may not have taken effect, at
	// any time after its call: such an operation is recorded with its
	// return at infinity (math.MaxInt64), so that porcupine may linearize
	// it anywhere after its call, after every other operation included
	// (which is "it never took effect" for every other operation).
	linUnknown
)

// linOutput is an operation's output.
type linOutput struct {
	Outcome linOutcome
	Offset  uint64 // append, linOK: the record's offset
	Current int64  // append, linMismatch: the stream's last offset
	Len     int    // read: values returned
	Hash    uint64 // read: chained hash of the values returned
	Last    string // read: the last value returned (for descriptions)
	// values are what the read returned. The model compares Len and Hash;
	// pruneUnobserved looks for appended values in them.
	values []string
}

// linState is the stream: Len values, chained into Hash, the last being
// Last. It is comparable, so porcupine compares states with ==.
type linState struct {
	Len  int
	Hash uint64
	Last string
}

// chainHash extends the hash of a sequence by one value.
func chainHash(h uint64, value string) uint64 {
	f := fnv.New64a()
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], h)
	_, _ = f.Write(b[:])
	_, _ = f.Write([]byte(value))
	return f.Sum64()
}

func (s linState) push(value string) linState {
	return linState{Len: s.Len + 1, Hash: chainHash(s.Hash, value), Last: value}
}

// readOutput is the output of a read that returned values.
func readOutput(values []string) linOutput {
	var s linState
	for _, v := range values {
		s = s.push(v)
	}
	return linOutput{Outcome: linOK, Len: s.Len, Hash: s.Hash, Last: s.Last, values: values}
}

// linStep is the specification: may an operation with this input and
// output take effect on state, and what is the state after it?
func linStep(state, input, output any) (bool, any) {
	s, in, out := state.(linState), input.(linInput), output.(linOutput)
	if in.Op == linRead {
		return out.Len == s.Len && out.Hash == s.Hash, s
	}
	last := int64(s.Len) - 1
	applies := !in.HasExpected || in.Expected == last
	switch out.Outcome {
	case linOK:
		return applies && out.Offset == uint64(s.Len), s.push(in.Value)
	case linMismatch:
		return !applies && out.Current == last, s
	case linFailed:
		return true, s
	case linUnknown:
		// Taking effect here, as the condition decides; not taking effect
		// at all is the linearization at infinity.
		if applies {
			return true, s.push(in.Value)
		}
		return true, s
	}
	return false, s
}

// streamModel is the porcupine model of one stream.
var streamModel = porcupine.Model{
	Init: func() any { return linState{} },
	Step: linStep,
	Hash: func(state any) uint64 {
		s := state.(linState)
		return s.Hash ^ uint64(s.Len)
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(linInput), output.(linOutput)
		if in.Op == linRead {
			if out.Len == 0 {
				return "read() -> []"
			}
			return fmt.Sprintf("read() -> %d values, last %s", out.Len, out.Last)
		}
		call := fmt.Sprintf("append(%s)", in.Value)
		if in.HasExpected {
			call = fmt.Sprintf("append(%s, expected %d)", in.Value, in.Expected)
		}
		switch out.Outcome {
		case linOK:
			return fmt.Sprintf("%s -> offset %d", call, out.Offset)
		case linMismatch:
			return fmt.Sprintf("%s -> mismatch, last %d", call, out.Current)
		case linFailed:
			return call + " -> failed (stored nothing)"
		default:
			return call + " -> unknown"
		}
	},
	DescribeState: func(state any) string {
		s := state.(linState)
		if s.Len == 0 {
			return "[]"
		}
		return fmt.Sprintf("%d values, last %s", s.Len, s.Last)
	},
}

// forever is the return time of an operation whose outcome is unknown.
const forever = math.MaxInt64

// TestStreamModel checks the specification against hand-built histories,
// legal and illegal: the negative control that the checker rejects what it
// must (a stale read, a lost or doubled append, a refused append that
// shows up, a read of a value before its append began).
func TestStreamModel(t *testing.T) {
	ap := func(v string) linInput { return linInput{Op: linAppend, Value: v} }
	apIf := func(v string, expected int64) linInput {
		return linInput{Op: linAppend, Value: v, HasExpected: true, Expected: expected}
	}
	rd := linInput{Op: linRead}
	ok := func(off uint64) linOutput { return linOutput{Outcome: linOK, Offset: off} }
	mismatch := func(cur int64) linOutput { return linOutput{Outcome: linMismatch, Current: cur} }
	failed := linOutput{Outcome: linFailed}
	unknown := linOutput{Outcome: linUnknown}
	got := func(vs ...string) linOutput { return readOutput(vs) }
	op := func(client int, call, ret int64, in linInput, out linOutput) porcupine.Operation {
		return porcupine.Operation{ClientId: client, Call: call, Return: ret, Input: in, Output: out}
	}
	cases := []struct {
		name  string
		legal bool
		ops   []porcupine.Operation
	}{
		{"append then read", true, []porcupine.Operation{
			op(0, 0, 10, ap("a"), ok(0)), op(0, 20, 30, rd, got("a")),
		}},
		{"read concurrent with an append sees it", true, []porcupine.Operation{
			op(0, 0, 10, ap("a"), ok(0)), op(1, 5, 15, rd, got("a")),
		}},
		{"read concurrent with an append misses it", true, []porcupine.Operation{
			op(0, 0, 10, ap("a"), ok(0)), op(1, 5, 15, rd, got()),
		}},
		{"stale read after an acknowledged append", false, []porcupine.Operation{
			op(0, 0, 10, ap("a"), ok(0)), op(1, 20, 30, rd, got()),
		}},
		{"reads go back in time", false, []porcupine.Operation{
			op(0, 0, 100, ap("a"), ok(0)), op(1, 10, 20, rd, got("a")), op(2, 30, 40, rd, got()),
		}},
		{"concurrent appends in either order", true, []porcupine.Operation{
			op(0, 0, 10, ap("a"), ok(1)), op(1, 0, 10, ap("b"), ok(0)), op(2, 20, 30, rd, got("b", "a")),
		}},
		{"read order disagrees with the offsets", false, []porcupine.Operation{
			op(0, 0, 10, ap("a"), ok(1)), op(1, 0, 10, ap("b"), ok(0)), op(2, 20, 30, rd, got("a", "b")),
		}},
		{"two appends at one offset", false, []porcupine.Operation{
			op(0, 0, 10, ap("a"), ok(0)), op(1, 0, 10, ap("b"), ok(0)),
		}},
		{"acknowledged append lost", false, []porcupine.Operation{
			op(0, 0, 10, ap("a"), ok(0)), op(0, 20, 30, ap("b"), ok(1)), op(1, 40, 50, rd, got("b")),
		}},
		{"expected offset met", true, []porcupine.Operation{
			op(0, 0, 10, ap("a"), ok(0)), op(0, 20, 30, apIf("b", 0), ok(1)),
		}},
		{"expected offset refused with the true last offset", true, []porcupine.Operation{
			op(0, 0, 10, ap("a"), ok(0)), op(0, 20, 30, apIf("b", -1), mismatch(0)), op(0, 40, 50, rd, got("a")),
		}},
		{"expected offset refused although it matched", false, []porcupine.Operation{
			op(0, 0, 10, ap("a"), ok(0)), op(0, 20, 30, apIf("b", 0), mismatch(0)),
		}},
		{"expected offset met although it did not match", false, []porcupine.Operation{
			op(0, 0, 10, ap("a"), ok(0)), op(0, 20, 30, apIf("b", -1), ok(1)),
		}},
		{"failed append stays invisible", true, []porcupine.Operation{
			op(0, 0, 10, ap("a"), failed), op(1, 20, 30, rd, got()),
		}},
		{"failed append shows up", false, []porcupine.Operation{
			op(0, 0, 10, ap("a"), failed), op(1, 20, 30, rd, got("a")),
		}},
		{"unknown append that took effect", true, []porcupine.Operation{
			op(0, 0, forever, ap("a"), unknown), op(1, 20, 30, rd, got("a")),
		}},
		{"unknown append that never took effect", true, []porcupine.Operation{
			op(0, 0, forever, ap("a"), unknown), op(1, 20, 30, rd, got()), op(1, 40, 50, ap("b"), ok(0)),
		}},
		{"unknown append that took effect late", true, []porcupine.Operation{
			op(0, 0, forever, ap("a"), unknown), op(1, 20, 30, rd, got()), op(1, 40, 50, rd, got("a")),
		}},
		{"unknown append seen before it was called", false, []porcupine.Operation{
			op(1, 0, 10, rd, got("a")), op(0, 20, forever, ap("a"), unknown),
		}},
		{"unknown append seen, then gone", false, []porcupine.Operation{
			op(0, 0, forever, ap("a"), unknown), op(1, 20, 30, rd, got("a")), op(1, 40, 50, rd, got()),
		}},
		{"unknown conditional append cannot apply when refused", false, []porcupine.Operation{
			op(0, 0, 10, ap("a"), ok(0)), op(1, 20, forever, apIf("b", -1), unknown), op(2, 30, 40, rd, got("a", "b")),
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.legal, porcupine.CheckOperations(streamModel, tc.ops))
		})
	}
}
