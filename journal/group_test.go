package journal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testGroupCase is one group with its records, for table tests.
type testGroupCase struct {
	name  string
	group Group
	recs  []Record
}

func groupCases() []testGroupCase {
	big := bytes.Repeat([]byte{0xab}, 70000) // multi-byte varint lengths
	return []testGroupCase{
		{name: "empty", group: Group{Stream: []byte("s")}},
		{name: "one record", group: Group{Stream: []byte("orders"), Timestamp: 1_700_000_000_000_000_000},
			recs: []Record{{Timestamp: 1_700_000_000_000_000_000, Value: []byte("v")}}},
		{name: "expected offset and idempotency key", group: Group{
			Stream: []byte("a.b-c_d"), Flags: GroupHasExpectedOffset, ExpectedLastOffset: -1,
			IdempotencyKey: []byte("idem-1"), Timestamp: 42},
			recs: []Record{{Timestamp: 41, Flags: FlagJSON, Key: []byte("k"), Value: []byte(`{"a":1}`)}}},
		{name: "headers and negative delta", group: Group{Stream: []byte("h"), Timestamp: 1000},
			recs: []Record{
				{Timestamp: 10, Headers: []Header{{Name: []byte("n1"), Value: []byte("v1")}, {Name: []byte(""), Value: []byte("")}, {Name: []byte("n3"), Value: big[:300]}}, Value: nil},
				{Timestamp: 5000, Key: big[:200], Value: big},
			}},
		{name: "control", group: Group{Stream: []byte("c"), Flags: GroupHasControl | GroupHasExpectedOffset,
			ExpectedLastOffset: 7, Control: big[:200], IdempotencyKey: []byte("k"), Timestamp: 5},
			recs: []Record{{Timestamp: 5, Value: []byte("v")}}},
		{name: "control without records", group: Group{Stream: []byte("c"), Flags: GroupHasControl, Control: []byte{1}}},
		{name: "many records", group: Group{Stream: []byte("m"), Flags: GroupHasExpectedOffset, ExpectedLastOffset: 1 << 40},
			recs: func() []Record {
				r := make([]Record, 300)
				for i := range r {
					r[i] = Record{Timestamp: int64(i), Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprint("value-", i))}
				}
				return r
			}()},
	}
}

func TestAppendGroupRoundTrip(t *testing.T) {
	for _, tc := range groupCases() {
		t.Run(tc.name, func(t *testing.T) {
			enc := AppendGroup([]byte("prefix"), &tc.group, tc.recs)
			require.Equal(t, len("prefix")+GroupSize(&tc.group, tc.recs), len(enc), "GroupSize is exact")
			enc = enc[len("prefix"):]

			var r GroupReader
			r.Reset(enc, 100)
			require.True(t, r.Next(), "err: %v", r.Err())
			g := r.Group()
			assert.Equal(t, tc.group.Stream, g.Stream)
			assert.Equal(t, tc.group.Flags, g.Flags)
			if tc.group.Flags&GroupHasExpectedOffset != 0 {
				assert.Equal(t, tc.group.ExpectedLastOffset, g.ExpectedLastOffset)
			}
			assert.Equal(t, len(tc.group.IdempotencyKey), len(g.IdempotencyKey))
			assert.True(t, bytes.Equal(tc.group.IdempotencyKey, g.IdempotencyKey))
			if tc.group.Flags&GroupHasControl != 0 {
				assert.True(t, bytes.Equal(tc.group.Control, g.Control))
			} else {
				assert.Nil(t, g.Control, "no control without the flag")
			}
			assert.Equal(t, tc.group.Timestamp, g.Timestamp)
			assert.Equal(t, len(tc.recs), g.Records)
			assert.Equal(t, uint64(100), g.FirstSeq)
			assert.Equal(t, 0, g.Ordinal)
			assert.Equal(t, len(enc), g.Size)
			for i, want := range tc.recs {
				require.True(t, r.NextRecord(), "record %d: %v", i, r.Err())
				rec := r.Record()
				assert.Equal(t, uint64(100+i), rec.Seq)
				assert.Equal(t, i, rec.Ordinal)
				assert.Equal(t, want.Timestamp, rec.Timestamp)
				assert.Equal(t, want.Flags, rec.Flags)
				assert.True(t, bytes.Equal(want.Key, rec.Key))
				assert.True(t, bytes.Equal(want.Value, rec.Value))
				require.Equal(t, len(want.Headers), rec.NumHeaders())
				for h := range want.Headers {
					n, v := rec.Header(h)
					assert.True(t, bytes.Equal(want.Headers[h].Name, n), "header %d name", h)
					assert.True(t, bytes.Equal(want.Headers[h].Value, v), "header %d value", h)
				}
				if len(want.Headers) > 1 { // random access backwards
					n, _ := rec.Header(0)
					assert.True(t, bytes.Equal(want.Headers[0].Name, n))
				}
				n, v := rec.Header(len(want.Headers))
				assert.Nil(t, n)
				assert.Nil(t, v)
			}
			assert.False(t, r.NextRecord())
			assert.False(t, r.Next())
			assert.NoError(t, r.Err())
		})
	}
}

// payloadOf concatenates the encodings of all group cases.
func payloadOf(cases []testGroupCase) ([]byte, []int) {
	var p []byte
	var offs []int
	for i := range cases {
		offs = append(offs, len(p))
		p = AppendGroup(p, &cases[i].group, cases[i].recs)
	}
	return p, offs
}

func TestGroupReaderSkipsAndSeeks(t *testing.T) {
	cases := groupCases()
	payload, offs := payloadOf(cases)
	seqs := make([]uint64, len(cases))
	seq := uint64(7)
	for i := range cases {
		seqs[i] = seq
		seq += uint64(len(cases[i].recs))
	}

	t.Run("Next skips unread records", func(t *testing.T) {
		var r GroupReader
		r.Reset(payload, 7)
		for i := range cases {
			require.True(t, r.Next(), "group %d: %v", i, r.Err())
			g := r.Group()
			assert.Equal(t, i, g.Ordinal)
			assert.Equal(t, offs[i], g.Offset)
			assert.Equal(t, seqs[i], g.FirstSeq)
			if len(cases[i].recs) > 1 {
				require.True(t, r.NextRecord()) // read one, skip the rest
			}
		}
		assert.False(t, r.Next())
		assert.NoError(t, r.Err())
	})
	for k := range cases {
		t.Run(fmt.Sprintf("SeekGroup/%d", k), func(t *testing.T) {
			var r GroupReader
			r.Reset(payload, 7)
			require.True(t, r.Next())
			require.True(t, r.SeekGroup(k), "%v", r.Err())
			assert.Equal(t, k, r.Group().Ordinal)
			assert.Equal(t, seqs[k], r.Group().FirstSeq)
			assert.Equal(t, cases[k].group.Stream, r.Group().Stream)
		})
		t.Run(fmt.Sprintf("ResetAt/%d", k), func(t *testing.T) {
			var r GroupReader
			r.ResetAt(payload, offs[k], k, seqs[k])
			require.True(t, r.Next())
			assert.Equal(t, k, r.Group().Ordinal)
			assert.Equal(t, seqs[k], r.Group().FirstSeq)
			assert.Equal(t, cases[k].group.Stream, r.Group().Stream)
			n := 0
			for r.Next() {
				n++
			}
			assert.Equal(t, len(cases)-1-k, n)
			assert.NoError(t, r.Err())
		})
	}
	t.Run("SeekGroup past the end", func(t *testing.T) {
		var r GroupReader
		r.Reset(payload, 7)
		assert.False(t, r.SeekGroup(len(cases)))
		assert.NoError(t, r.Err())
	})
	t.Run("SeekGroup before a ResetAt start", func(t *testing.T) {
		var r GroupReader
		r.ResetAt(payload, offs[2], 2, seqs[2])
		assert.False(t, r.SeekGroup(1))
		assert.ErrorIs(t, r.Err(), ErrCorrupt)
	})
}

func TestGroupReaderRejectsMalformed(t *testing.T) {
	tc := groupCases()[3]
	good := AppendGroup(nil, &tc.group, tc.recs)
	mutate := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	tests := []struct {
		name    string
		payload []byte
	}{
		{"truncated header", good[:10]},
		{"size larger than payload", mutate(func(b []byte) []byte { binary.LittleEndian.PutUint32(b, uint32(len(b)+1)); return b })},
		{"size smaller than header", mutate(func(b []byte) []byte { binary.LittleEndian.PutUint32(b, 3); return b })},
		{"too many records", mutate(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[4:], uint32(len(b)+1)); return b })},
		{"record count one too high", mutate(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[4:], uint32(len(tc.recs)+1)); return b })},
		{"record count one too low", mutate(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[4:], uint32(len(tc.recs)-1)); return b })},
		{"unknown group flag", mutate(func(b []byte) []byte { b[groupOffFlags] |= 0x80; return b })},
		{"unknown group flag bit 2", mutate(func(b []byte) []byte { b[groupOffFlags] |= 0x04; return b })},
		{"stream length past the end", mutate(func(b []byte) []byte { b[groupFixedSize] = 0x7f; return b })},
		{"group cut inside a record", mutate(func(b []byte) []byte {
			b = b[:len(b)-5]
			binary.LittleEndian.PutUint32(b, uint32(len(b)))
			return b
		})},
		{"trailing garbage after the group", append(bytes.Clone(good), 1, 2, 3)},
		{"control length past the end", func() []byte {
			b := AppendGroup(nil, &Group{Stream: []byte("c"), Flags: GroupHasControl, Control: []byte{9}}, nil)
			b[len(b)-2] = 0x7f
			return b
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r GroupReader
			r.Reset(tt.payload, 0)
			for r.Next() {
				for r.NextRecord() {
				}
			}
			require.Error(t, r.Err())
			assert.True(t, errors.Is(r.Err(), ErrCorrupt), "%v", r.Err())
			assert.False(t, r.Next(), "an error is final")
		})
	}
}

func TestGroupZeroAllocs(t *testing.T) {
	tc := groupCases()[3]
	buf := make([]byte, 0, GroupSize(&tc.group, tc.recs))
	payload, _ := payloadOf(groupCases())
	var r GroupReader
	tests := []struct {
		name string
		fn   func()
	}{
		{"AppendGroup", func() { buf = AppendGroup(buf[:0], &tc.group, tc.recs) }},
		{"GroupSize", func() { _ = GroupSize(&tc.group, tc.recs) }},
		{"GroupReader", func() {
			r.Reset(payload, 0)
			for r.Next() {
				for r.NextRecord() {
					rec := r.Record()
					for h := range rec.NumHeaders() {
						_, _ = rec.Header(h)
					}
				}
			}
		}},
		{"GroupReader.SeekGroup", func() { r.Reset(payload, 0); r.SeekGroup(4) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Zero(t, testing.AllocsPerRun(100, tt.fn))
		})
	}
	require.NoError(t, r.Err())
}

func TestUvarintLenMatchesPutUvarint(t *testing.T) {
	var buf [binary.MaxVarintLen64]byte
	for _, v := range []uint64{0, 1, 127, 128, 16383, 16384, 1<<21 - 1, 1 << 21, 1<<63 - 1, 1<<64 - 1} {
		assert.Equal(t, binary.PutUvarint(buf[:], v), uvarintLen(v), "v=%d", v)
	}
	for _, v := range []int64{0, 1, -1, 1 << 62, -1 << 63, 1<<63 - 1} {
		assert.Equal(t, v, unzigzag(zigzag(v)))
	}
}
