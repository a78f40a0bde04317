package httpapi

import (
	"strings"

	"github.com/badbatch/badbatch/httpapi/wire"
	"github.com/badbatch/badbatch/storage"
)

// mediaRecords is the binary record format (package wire): an append body
// (Content-Type) and a read answer (Accept).
const mediaRecords = wire.MediaType

// binaryOptions are the batch options a binary body carries in place of
// the Idempotency-Key and Expected-Last-Offset headers.
type binaryOptions struct {
	idempotencyKey string
	expected       int64
	hasExpected    bool
}

// parseBinaryBody decodes a binary append batch into records that alias
// body, and puts its options in sc.binary. Malformed input is a 400,
// a record over maxRecord a 413, as for JSON bodies.
func (sc *parseScratch) parseBinaryBody(body []byte, maxRecord int) ([]storage.Record, *apiError) {
	b, err := wire.DecodeBatch(body, sc.wire[:0])
	sc.wire = b.Records[:0]
	if err != nil {
		return nil, badRequest("bad %s body: %s", mediaRecords, strings.TrimPrefix(err.Error(), "wire: malformed records: "))
	}
	if len(b.Records) == 0 {
		return nil, badRequest("empty batch: no records")
	}
	sc.binary = binaryOptions{idempotencyKey: b.IdempotencyKey}
	if b.ExpectedLastOffset != nil {
		sc.binary.expected, sc.binary.hasExpected = *b.ExpectedLastOffset, true
	}
	recs := sc.recs[:0]
	for i := range b.Records {
		w := &b.Records[i]
		rec := storage.Record{Key: w.Key, Value: w.Value, JSON: w.JSON, Headers: w.Headers, Timestamp: w.Timestamp}
		if aerr := checkRecordSize(&rec, maxRecord, i); aerr != nil {
			return nil, aerr
		}
		recs = append(recs, rec)
	}
	sc.recs = recs
	return recs, nil
}

// mergeBinaryOptions applies a binary body's batch options to opts. Giving
// one option both in a header and in the body is a 400, whatever the
// values: one request, one place for each.
func (sc *parseScratch) mergeBinaryOptions(opts *storage.AppendOptions, expected *int64) *apiError {
	if k := sc.binary.idempotencyKey; k != "" {
		if opts.IdempotencyKey != "" {
			return badRequest("idempotency key given both in the Idempotency-Key header and in the %s body", mediaRecords)
		}
		opts.IdempotencyKey = k
	}
	if sc.binary.hasExpected {
		if opts.ExpectedLastOffset != nil {
			return badRequest("expected last offset given both in the Expected-Last-Offset header and in the %s body", mediaRecords)
		}
		*expected = sc.binary.expected
		opts.ExpectedLastOffset = expected
	}
	return nil
}

// encodeBinaryPage is a read page in the binary format.
func encodeBinaryPage(recs []storage.StoredRecord, next uint64) []byte {
	n := 16
	for i := range recs {
		n += 32 + storage.RecordSize(&recs[i].Record)
	}
	buf := wire.AppendPageHeader(make([]byte, 0, n), next, len(recs))
	for i := range recs {
		r := &recs[i]
		w := wire.Record{Key: r.Key, Value: r.Value, JSON: r.JSON, Headers: r.Headers, Timestamp: r.Timestamp}
		buf = wire.AppendStoredRecord(buf, &w, r.Offset, r.Seq)
	}
	return buf
}
