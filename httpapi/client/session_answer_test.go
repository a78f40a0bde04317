package client

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSessionAnswerParser: the fast path agrees with encoding/json on the
// server's layout and declines everything else.
func TestSessionAnswerParser(t *testing.T) {
	msg := []byte(`{"stream":"s-1","first_offset":3,"last_offset":4,"count":2,"first_seq":10,"last_seq":11,"durability":"fsynced","replayed":true}`)
	var fast, slow AppendResult
	require.True(t, parseSessionResult(msg, &fast))
	require.NoError(t, json.Unmarshal(msg, &slow))
	assert.Equal(t, slow, fast)
	for _, bad := range []string{
		`{"error":{"code":"bad_request","message":"x"},"status":400}`,
		`{"stream":"a\"b","first_offset":3,"last_offset":4,"count":2,"first_seq":10,"last_seq":11,"durability":"fsynced","replayed":true}`,
		`{"stream":"s","first_offset":-3,"last_offset":4,"count":2,"first_seq":10,"last_seq":11,"durability":"fsynced","replayed":true}`,
		`{"stream":"s","first_offset":3,"last_offset":4,"count":2,"first_seq":10,"last_seq":11,"durability":"fsynced","replayed":true} `,
		`{"stream":"s","first_offset":3}`,
	} {
		var r AppendResult
		assert.False(t, parseSessionResult([]byte(bad), &r), bad)
	}
}
