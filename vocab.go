package badbatch

import (
	"net/http"
	"time"
)

// AppendOptions are the conditions of one append (a plain value).
type AppendOptions struct {
	// ExpectedLastOffset, when not nil, makes the append conditional: it is
	// refused with offset_mismatch unless the stream's last offset is
	// *ExpectedLastOffset when the append is applied (-1: the stream must
	// be empty, or never written). Nil: no condition.
	ExpectedLastOffset *int64
	// IdempotencyKey, when not empty, makes a repeat of the same key on the
	// same stream within the server's (or store's) dedupe window append
	// nothing and answer the first append's result with Replayed set.
	// Empty: no key from the caller. At most MaxIdempotencyKeyLength bytes.
	IdempotencyKey string
	// Producer, when not nil, makes the append part of an idempotent
	// producer's sequence (Kafka's producer id and epoch): the store
	// accepts Seq only as the successor of the producer's last accepted
	// seq in the same Epoch (or 0 in a newer epoch), acknowledges a repeat
	// of an accepted seq without storing it (Replayed), refuses an older
	// epoch with producer_fenced and a gap with producer_seq_gap. Nil: no
	// producer.
	Producer *Producer
	// Close closes the stream once this append's records are stored: later
	// appends are refused with stream_closed, and tails end after the last
	// record. False: the stream stays open.
	Close bool
	// StreamSeq, when not empty, is the writer's sequence label for this
	// append (the Durable Streams protocol's Stream-Seq): it must sort
	// after the stream's last accepted label, byte by byte, or the append
	// is refused with stream_seq. Empty: none. At most 256 bytes.
	StreamSeq string
	// MustExist refuses the append with not_found unless the stream exists
	// (was created, or appended to, and not deleted). False: an append to a
	// new stream creates it with the default configuration.
	MustExist bool
}

// Producer identifies one idempotent producer's append: see
// AppendOptions.Producer. A plain value.
type Producer struct {
	// ID names the producer, 1 to MaxProducerIDLength bytes.
	ID string
	// Epoch is the producer's incarnation: a producer that restarts takes
	// a higher epoch and starts again at Seq 0, and the older incarnation
	// is fenced.
	Epoch uint64
	// Seq numbers the producer's appends within its epoch, from 0.
	Seq uint64
}

// MaxProducerIDLength bounds Producer.ID, in bytes.
const MaxProducerIDLength = 256

// StreamConfig is a stream's configuration, fixed when the stream is
// created (a plain value). Creating an existing stream again with an equal
// configuration succeeds and changes nothing; with another one it is
// refused with stream_exists.
type StreamConfig struct {
	// ContentType is the MIME type of the stream's records, as the Durable
	// Streams protocol serves them. Empty: "application/octet-stream".
	ContentType string
	// TTL, when positive, deletes the stream once it has gone TTL without
	// a read or an append (a sliding lifetime). Zero: none.
	TTL time.Duration
	// ExpiresAt, when not zero, deletes the stream at that instant. At most
	// one of TTL and ExpiresAt is set.
	ExpiresAt time.Time
	// Closed creates the stream closed (with its initial records, if any).
	Closed bool
}

// DefaultContentType is the content type of a stream created without one.
const DefaultContentType = "application/octet-stream"

// ExpectLastOffset returns a pointer to n, for AppendOptions:
//
//	opts := badbatch.AppendOptions{ExpectedLastOffset: badbatch.ExpectLastOffset(-1)}
func ExpectLastOffset(n int64) *int64 { return &n }

// MaxIdempotencyKeyLength bounds AppendOptions.IdempotencyKey, in bytes.
const MaxIdempotencyKeyLength = 256

// AppendResult describes a committed append: its offsets are final. It is
// the one append result of the store, the server's 201 answer and the
// client.
type AppendResult struct {
	Stream      string `json:"stream"`
	FirstOffset uint64 `json:"first_offset"`
	LastOffset  uint64 `json:"last_offset"`
	Count       int    `json:"count"`
	FirstSeq    uint64 `json:"first_seq"`
	LastSeq     uint64 `json:"last_seq"`
	// Durability names what the acknowledgement means under the store's
	// sync policy: DurabilityFsynced, DurabilityWritten or DurabilityNoSync.
	Durability string `json:"durability"`
	// Replayed is true when an idempotency key matched an earlier append:
	// the result is that append's, and nothing new was stored.
	Replayed bool `json:"replayed"`
	// ProducerSeq, for an append with a Producer, is the producer's
	// highest accepted seq: the append's own, or for a repeat (Replayed)
	// the highest one accepted before. The HTTP API answers it in the
	// Producer-Seq header.
	ProducerSeq uint64 `json:"-"`
}

// Durability values of AppendResult.Durability.
const (
	DurabilityFsynced = "fsynced"
	DurabilityWritten = "written, not yet fsynced"
	DurabilityNoSync  = "written, never fsynced (test only)"
)

// StreamInfo describes one stream.
type StreamInfo struct {
	Stream string `json:"stream"`
	// FirstOffset is the first offset still retained.
	FirstOffset uint64 `json:"first_offset"`
	// NextOffset is the offset the next append will get (the count of
	// records ever appended).
	NextOffset uint64 `json:"next_offset"`
	// Records is the number of retained records (NextOffset - FirstOffset).
	Records uint64 `json:"records"`
	// Bytes is the total size of the keys and values ever appended.
	Bytes uint64 `json:"bytes"`
	// LastTimestamp is the timestamp of the last record appended; the zero
	// time when there is none.
	LastTimestamp time.Time `json:"last_timestamp,omitzero"`
	// ContentType is the stream's configured content type
	// (DefaultContentType unless it was created with another).
	ContentType string `json:"content_type"`
	// Closed says the stream takes no more appends.
	Closed bool `json:"closed,omitempty"`
	// TTLSeconds and ExpiresAt are the stream's configured lifetime (zero:
	// none); a TTL below a second shows as 0 here.
	TTLSeconds int64     `json:"ttl_seconds,omitempty"`
	ExpiresAt  time.Time `json:"expires_at,omitzero"`
	// ForkedFrom names the stream this one was forked from ("" for a
	// stream that is not a fork); its offsets below ForkOffset are that
	// stream's records.
	ForkedFrom string `json:"forked_from,omitempty"`
	ForkOffset uint64 `json:"fork_offset,omitempty"`
}

// CodeOfStatus is the error code for an HTTP status when the answer does
// not carry one: echo's own errors (routing, body limits) on the server, a
// proxy's answer on the client.
func CodeOfStatus(status int) string {
	switch status {
	case http.StatusBadRequest:
		return CodeBadRequest
	case http.StatusUnauthorized:
		return CodeUnauthorized
	case http.StatusForbidden:
		return CodeForbidden
	case http.StatusNotFound:
		return CodeNotFound
	case http.StatusMethodNotAllowed:
		return CodeMethodNotAllowed
	case http.StatusConflict:
		return CodeOffsetMismatch
	case http.StatusGone:
		return CodeGone
	case http.StatusRequestEntityTooLarge:
		return CodeTooLarge
	case http.StatusUnsupportedMediaType:
		return CodeUnsupportedType
	case http.StatusTooManyRequests:
		return CodeRateLimited
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return CodeUnavailable
	}
	return CodeInternal
}
