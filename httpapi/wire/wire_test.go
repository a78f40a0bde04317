package wire_test

import (
	"errors"
	"testing"
	"time"

	"github.com/badbatch/badbatch/httpapi/wire"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func sampleBatch() wire.Batch {
	expected := int64(-1)
	return wire.Batch{
		IdempotencyKey:     "k-1",
		ExpectedLastOffset: &expected,
		Records: []wire.Record{
			{Key: []byte("user-1"), Value: []byte(`{"a":1}`), JSON: true,
				Headers:   map[string]string{"trace": "abc", "empty": ""},
				Timestamp: time.Date(2026, 12, 5, 21, 0, 0, 123456789, time.UTC)},
			{Value: []byte{0, 1, 2, 0xff}},
			{},
			{Key: []byte{0xff, 0}, Timestamp: time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC).Add(-time.Nanosecond)},
		},
	}
}

func TestBinaryBatchRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    wire.Batch
	}{
		{"options and records", sampleBatch()},
		{"no options", wire.Batch{Records: []wire.Record{{Value: []byte("x")}}}},
		{"no records", wire.Batch{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := wire.AppendBatch(nil, &tc.b)
			require.True(t, wire.IsBatch(data))
			got, err := wire.DecodeBatch(data, nil)
			require.NoError(t, err)
			assert.Equal(t, tc.b.IdempotencyKey, got.IdempotencyKey)
			assert.Equal(t, tc.b.ExpectedLastOffset, got.ExpectedLastOffset)
			require.Len(t, got.Records, len(tc.b.Records))
			for i := range got.Records {
				assertRecord(t, &tc.b.Records[i], &got.Records[i])
			}
		})
	}
}

func assertRecord(t *testing.T, want, got *wire.Record) {
	t.Helper()
	assert.Equal(t, string(want.Key), string(got.Key))
	assert.Equal(t, string(want.Value), string(got.Value))
	assert.Equal(t, want.JSON, got.JSON)
	if len(want.Headers) == 0 {
		assert.Empty(t, got.Headers)
	} else {
		assert.Equal(t, want.Headers, got.Headers)
	}
	assert.True(t, want.Timestamp.Equal(got.Timestamp), "timestamp %v, want %v", got.Timestamp, want.Timestamp)
}

func TestBinaryPageRoundTrip(t *testing.T) {
	b := sampleBatch()
	data := wire.AppendPageHeader(nil, 42, len(b.Records))
	for i := range b.Records {
		if b.Records[i].Timestamp.IsZero() {
			b.Records[i].Timestamp = time.Unix(1, 0)
		}
		data = wire.AppendStoredRecord(data, &b.Records[i], uint64(38+i), uint64(1000+i))
	}
	p, err := wire.DecodePage(data)
	require.NoError(t, err)
	assert.Equal(t, uint64(42), p.NextOffset)
	require.Len(t, p.Records, len(b.Records))
	for i := range p.Records {
		assert.Equal(t, uint64(38+i), p.Records[i].Offset)
		assert.Equal(t, uint64(1000+i), p.Records[i].Seq)
		assertRecord(t, &b.Records[i], &p.Records[i].Record)
	}
}

func TestBinaryMalformed(t *testing.T) {
	good := wire.AppendBatch(nil, &wire.Batch{Records: []wire.Record{{Key: []byte("k"), Value: []byte("v"), Headers: map[string]string{"h": "1"}}}})
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"bad magic", []byte("BBX1\x00\x00")},
		{"page magic", wire.AppendPageHeader(nil, 0, 0)},
		{"unknown batch flag", []byte("BBR1\x04\x00")},
		{"truncated", good[:len(good)-1]},
		{"trailing byte", append(append([]byte(nil), good...), 0)},
		{"count too large", []byte("BBR1\x00\x05\x00\x00\x00\x00\x00")},
		{"non-minimal varint", []byte("BBR1\x00\x80\x00")},
		{"empty idempotency key", []byte("BBR1\x01\x00\x00")},
		{"expected below -1", []byte("BBR1\x02\x03\x00")},
		{"unknown record flag", []byte("BBR1\x00\x01\x04\x04\x00\x00\x00")},
		{"record body longer than its fields", []byte("BBR1\x00\x01\x05\x00\x00\x00\x00\x00")},
		{"empty header name", []byte("BBR1\x00\x01\x07\x00\x00\x01\x00\x01x\x00")},
		{"duplicate header", []byte("BBR1\x00\x01\x0b\x00\x00\x02\x01h\x00\x01h\x00\x00")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := wire.DecodeBatch(tc.data, nil)
			require.Error(t, err)
			assert.True(t, errors.Is(err, wire.ErrMalformed), "%v", err)
		})
	}
}

// FuzzDecodeBatch: the decoder never panics, and whatever it accepts
// encodes back to the same number of bytes and decodes to the same batch
// (one value, one encoding, modulo header order).
func FuzzDecodeBatch(f *testing.F) {
	b := sampleBatch()
	f.Add(wire.AppendBatch(nil, &b))
	f.Add([]byte("BBR1\x00\x00"))
	f.Add([]byte("BBR1\x03\x01k\x01\x01\x05\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := wire.DecodeBatch(data, nil)
		if err != nil {
			if !errors.Is(err, wire.ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		again := wire.AppendBatch(nil, &got)
		if len(again) != len(data) {
			t.Fatalf("re-encoded to %d bytes, decoded from %d", len(again), len(data))
		}
		back, err := wire.DecodeBatch(again, nil)
		if err != nil {
			t.Fatalf("re-encoded batch does not decode: %v", err)
		}
		if back.IdempotencyKey != got.IdempotencyKey || len(back.Records) != len(got.Records) {
			t.Fatalf("round trip changed the batch")
		}
		for i := range back.Records {
			x, y := &got.Records[i], &back.Records[i]
			if string(x.Key) != string(y.Key) || string(x.Value) != string(y.Value) || x.JSON != y.JSON ||
				!x.Timestamp.Equal(y.Timestamp) || len(x.Headers) != len(y.Headers) {
				t.Fatalf("record %d changed in the round trip", i)
			}
			for k, v := range x.Headers {
				if y.Headers[k] != v {
					t.Fatalf("record %d header %q changed", i, k)
				}
			}
		}
	})
}

// FuzzDecodePage: the page decoder never panics and wraps ErrMalformed.
func FuzzDecodePage(f *testing.F) {
	f.Add(wire.AppendStoredRecord(wire.AppendPageHeader(nil, 1, 1), &wire.Record{Value: []byte("v"), Timestamp: time.Unix(5, 0)}, 0, 7))
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := wire.DecodePage(data); err != nil && !errors.Is(err, wire.ErrMalformed) {
			t.Fatalf("error %v does not wrap ErrMalformed", err)
		}
	})
}
