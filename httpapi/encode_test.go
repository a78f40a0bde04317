package httpapi

import (
	"bytes"
	"encoding/json"
	"math"
	"net/http"
	"net/textproto"
	"testing"

	"github.com/badbatch/badbatch/storage"
	"github.com/labstack/echo/v4"
)

// TestAppendResponseJSON checks the hand-written 201 body against
// encoding/json (what echo's c.JSON writes: HTML escaping on, a newline).
func TestAppendResponseJSON(t *testing.T) {
	cases := []storage.AppendResult{
		{Stream: "bench", FirstOffset: 0, LastOffset: 0, Count: 1, FirstSeq: 1, LastSeq: 1, Durability: storage.DurabilityFsynced},
		{Stream: "a.b_c-9", FirstOffset: 7, LastOffset: 1006, Count: 1000, FirstSeq: 12, LastSeq: 1011, Durability: storage.DurabilityWritten, Replayed: true},
		{Stream: "Z", FirstOffset: math.MaxUint64 - 1, LastOffset: math.MaxUint64, Count: math.MaxInt, FirstSeq: math.MaxUint64, LastSeq: math.MaxUint64, Durability: storage.DurabilityNoSync},
		{},
	}
	for _, a := range cases {
		var want bytes.Buffer
		if err := json.NewEncoder(&want).Encode(a); err != nil {
			t.Fatal(err)
		}
		got, ok := appendResultJSON([]byte("prefix"), &a)
		if !ok {
			t.Fatalf("%+v: not encoded", a)
		}
		if string(got) != "prefix"+want.String() {
			t.Errorf("got %s\nwant %s", got, want.String())
		}
	}
	// Strings encoding/json would escape are left to it.
	for _, s := range []string{`a"b`, `a\b`, "a<b", "a>b", "a&b", "a\nb", "a\x7fb", "é", "\u2028"} {
		if _, ok := appendResultJSON(nil, &storage.AppendResult{Stream: s, Durability: "fsynced"}); ok {
			t.Errorf("stream %q: encoded without escaping", s)
		}
		if _, ok := appendResultJSON(nil, &storage.AppendResult{Stream: "s", Durability: s}); ok {
			t.Errorf("durability %q: encoded without escaping", s)
		}
	}
}

func TestClassifyContentTypeFastPath(t *testing.T) {
	// The exact spellings take a shortcut; it must agree with the parser.
	for _, h := range []string{mediaJSON, mediaNDJSON, "application/json; charset=utf-8", "Application/JSON", " application/json", "application/x-ndjson;charset=UTF-8"} {
		got, gerr := classifyContentType(h)
		if gerr != nil {
			t.Fatalf("%q: %v", h, gerr)
		}
		want := bodyJSON
		if h == mediaNDJSON || h == "application/x-ndjson;charset=UTF-8" {
			want = bodyNDJSON
		}
		if got != want {
			t.Errorf("%q: kind %d, want %d", h, got, want)
		}
	}
}

// headerValue looks keys up without canonicalizing them: they must be
// canonical already.
func TestHeaderKeysCanonical(t *testing.T) {
	for _, k := range []string{headerIdempotencyKey, headerExpectedLastOffset, headerRecordKey, headerStreamNextOffset, headerDurability,
		echo.HeaderContentType, echo.HeaderUpgrade, echo.HeaderAccept, echo.HeaderXRequestID, echo.HeaderCacheControl} {
		if c := textproto.CanonicalMIMEHeaderKey(k); c != k {
			t.Errorf("%q is not canonical (%q)", k, c)
		}
	}
	h := http.Header{}
	h.Set("idempotency-key", "k")
	if got := headerValue(h, headerIdempotencyKey); got != "k" {
		t.Errorf("headerValue = %q", got)
	}
	if got := headerValue(h, headerRecordKey); got != "" {
		t.Errorf("headerValue of a missing key = %q", got)
	}
}
