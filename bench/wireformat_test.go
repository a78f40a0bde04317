package bench_test

// The binary record format (httpapi/wire, application/vnd.badbatch.records)
// against protobuf for the same batch, as decision 0019 records. The
// protobuf side is the wire encoding of the schema below written with
// protowire (no generated code, no reflection): the least work any
// protobuf-go encoder does for these messages, so the comparison favours
// protobuf.
//
//	message Batch {
//	  string idempotency_key = 1;
//	  optional sint64 expected_last_offset = 2;
//	  repeated Record records = 3;
//	}
//	message Record {
//	  bytes key = 1;
//	  bytes value = 2;
//	  bool json = 3;
//	  map<string, string> headers = 4;   // repeated entry {1: key, 2: value}
//	  optional int64 timestamp_unix_nano = 5;
//	}

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/badbatch/badbatch/httpapi/wire"
	"google.golang.org/protobuf/encoding/protowire"
)

func codecBatch(n int) wire.Batch {
	expected := int64(41)
	b := wire.Batch{IdempotencyKey: "0123456789abcdef0123456789abcdef", ExpectedLastOffset: &expected}
	ts := time.Date(2026, 12, 5, 21, 0, 0, 0, time.UTC)
	for i := range n {
		b.Records = append(b.Records, wire.Record{
			Key:       fmt.Appendf(nil, "key-%03d", i),
			Value:     fmt.Appendf(nil, "%0*d", httpValueLen, i),
			Headers:   map[string]string{"trace": "abc123", "source": "bench"},
			Timestamp: ts.Add(time.Duration(i)),
		})
	}
	return b
}

func pbRecordSize(r *wire.Record) int {
	n := protowire.SizeTag(1) + protowire.SizeBytes(len(r.Key))
	n += protowire.SizeTag(2) + protowire.SizeBytes(len(r.Value))
	if r.JSON {
		n += protowire.SizeTag(3) + 1
	}
	for k, v := range r.Headers {
		e := protowire.SizeTag(1) + protowire.SizeBytes(len(k)) + protowire.SizeTag(2) + protowire.SizeBytes(len(v))
		n += protowire.SizeTag(4) + protowire.SizeBytes(e)
	}
	if !r.Timestamp.IsZero() {
		n += protowire.SizeTag(5) + protowire.SizeVarint(uint64(r.Timestamp.UnixNano()))
	}
	return n
}

func pbAppendBatch(dst []byte, b *wire.Batch) []byte {
	if b.IdempotencyKey != "" {
		dst = protowire.AppendTag(dst, 1, protowire.BytesType)
		dst = protowire.AppendString(dst, b.IdempotencyKey)
	}
	if b.ExpectedLastOffset != nil {
		dst = protowire.AppendTag(dst, 2, protowire.VarintType)
		dst = protowire.AppendVarint(dst, protowire.EncodeZigZag(*b.ExpectedLastOffset))
	}
	for i := range b.Records {
		r := &b.Records[i]
		dst = protowire.AppendTag(dst, 3, protowire.BytesType)
		dst = protowire.AppendVarint(dst, uint64(pbRecordSize(r)))
		dst = protowire.AppendTag(dst, 1, protowire.BytesType)
		dst = protowire.AppendBytes(dst, r.Key)
		dst = protowire.AppendTag(dst, 2, protowire.BytesType)
		dst = protowire.AppendBytes(dst, r.Value)
		if r.JSON {
			dst = protowire.AppendTag(dst, 3, protowire.VarintType)
			dst = protowire.AppendVarint(dst, 1)
		}
		for k, v := range r.Headers {
			e := protowire.SizeTag(1) + protowire.SizeBytes(len(k)) + protowire.SizeTag(2) + protowire.SizeBytes(len(v))
			dst = protowire.AppendTag(dst, 4, protowire.BytesType)
			dst = protowire.AppendVarint(dst, uint64(e))
			dst = protowire.AppendTag(dst, 1, protowire.BytesType)
			dst = protowire.AppendString(dst, k)
			dst = protowire.AppendTag(dst, 2, protowire.BytesType)
			dst = protowire.AppendString(dst, v)
		}
		if !r.Timestamp.IsZero() {
			dst = protowire.AppendTag(dst, 5, protowire.VarintType)
			dst = protowire.AppendVarint(dst, uint64(r.Timestamp.UnixNano()))
		}
	}
	return dst
}

var errPB = errors.New("bench: bad protobuf")

func pbDecodeBatch(data []byte, dst []wire.Record) (wire.Batch, error) {
	var b wire.Batch
	recs := dst[:0]
	for len(data) > 0 {
		num, typ, n := protowire.ConsumeTag(data)
		if n < 0 {
			return b, errPB
		}
		data = data[n:]
		switch {
		case num == 1 && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(data)
			if n < 0 {
				return b, errPB
			}
			b.IdempotencyKey, data = string(v), data[n:]
		case num == 2 && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(data)
			if n < 0 {
				return b, errPB
			}
			x := protowire.DecodeZigZag(v)
			b.ExpectedLastOffset, data = &x, data[n:]
		case num == 3 && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(data)
			if n < 0 {
				return b, errPB
			}
			r, err := pbDecodeRecord(v)
			if err != nil {
				return b, err
			}
			recs, data = append(recs, r), data[n:]
		default:
			n := protowire.ConsumeFieldValue(num, typ, data)
			if n < 0 {
				return b, errPB
			}
			data = data[n:]
		}
	}
	b.Records = recs
	return b, nil
}

func pbDecodeRecord(data []byte) (wire.Record, error) {
	var r wire.Record
	for len(data) > 0 {
		num, typ, n := protowire.ConsumeTag(data)
		if n < 0 {
			return r, errPB
		}
		data = data[n:]
		switch {
		case (num == 1 || num == 2 || num == 4) && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(data)
			if n < 0 {
				return r, errPB
			}
			data = data[n:]
			switch num {
			case 1:
				r.Key = v
			case 2:
				r.Value = v
			case 4:
				k, val, err := pbDecodeEntry(v)
				if err != nil {
					return r, err
				}
				if r.Headers == nil {
					r.Headers = make(map[string]string, 2)
				}
				r.Headers[k] = val
			}
		case (num == 3 || num == 5) && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(data)
			if n < 0 {
				return r, errPB
			}
			data = data[n:]
			if num == 3 {
				r.JSON = v != 0
			} else {
				r.Timestamp = time.Unix(0, int64(v)).UTC()
			}
		default:
			n := protowire.ConsumeFieldValue(num, typ, data)
			if n < 0 {
				return r, errPB
			}
			data = data[n:]
		}
	}
	return r, nil
}

func pbDecodeEntry(data []byte) (k, v string, err error) {
	for len(data) > 0 {
		num, typ, n := protowire.ConsumeTag(data)
		if n < 0 || typ != protowire.BytesType {
			return k, v, errPB
		}
		data = data[n:]
		b, n := protowire.ConsumeBytes(data)
		if n < 0 {
			return k, v, errPB
		}
		data = data[n:]
		switch num {
		case 1:
			k = string(b)
		case 2:
			v = string(b)
		}
	}
	return k, v, nil
}

// BenchmarkRecordBatchCodec: one op encodes a batch of 100 records (8-byte
// key, 100-byte value, two headers, a timestamp) into a reused buffer and
// decodes it into reused records, in the binary format and in protobuf.
// bytes/batch is the encoded size.
func BenchmarkRecordBatchCodec(b *testing.B) {
	const n = 100
	batch := codecBatch(n)
	for _, format := range []string{"binary", "protobuf"} {
		b.Run(fmt.Sprintf("format=%s/records=%d", format, n), func(b *testing.B) {
			var buf []byte
			recs := make([]wire.Record, 0, n)
			encode, decode := wire.AppendBatch, wire.DecodeBatch
			if format == "protobuf" {
				encode, decode = pbAppendBatch, pbDecodeBatch
			}
			buf = encode(buf[:0], &batch)
			got, err := decode(buf, recs)
			if err != nil || len(got.Records) != n || string(got.Records[n-1].Value) != string(batch.Records[n-1].Value) ||
				got.Records[7].Headers["trace"] != "abc123" || !got.Records[9].Timestamp.Equal(batch.Records[9].Timestamp) {
				b.Fatalf("round trip: %v", err)
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(buf)))
			b.ResetTimer()
			for b.Loop() {
				buf = encode(buf[:0], &batch)
				if _, err := decode(buf, recs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(buf)), "bytes/batch")
		})
	}
}
