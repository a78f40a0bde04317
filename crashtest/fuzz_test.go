package crashtest

import (
	"regexp"
	"strings"
	"testing"

	"github.com/badbatch/badbatch/storage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// streamNameRE is the stream name of the data model (ARCHITECTURE.md),
// anchored. Go's $ matches only at the end of the text.
var streamNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$`)

// FuzzStreamName checks storage.ValidateStreamName against the regular
// expression of the data model: it accepts exactly the names the
// expression matches, and refuses the rest with ErrInvalidStream. Seeds are
// in testdata/fuzz/FuzzStreamName.
func FuzzStreamName(f *testing.F) {
	f.Add("a")
	f.Add(strings.Repeat("z", 200))
	f.Fuzz(func(t *testing.T, name string) {
		err := storage.ValidateStreamName(name)
		if streamNameRE.MatchString(name) {
			require.NoError(t, err, "%q matches the data model's expression", name)
			return
		}
		require.ErrorIs(t, err, storage.ErrInvalidStream, "%q does not match the data model's expression", name)
	})
}

// TestStreamNameEdges pins the edges the fuzz target explores.
func TestStreamNameEdges(t *testing.T) {
	tests := []struct {
		name  string
		valid bool
	}{
		{"a", true}, {"0", true}, {"A-b_c.d", true}, {strings.Repeat("x", 200), true},
		{"", false}, {strings.Repeat("x", 201), false}, {"-a", false}, {".a", false}, {"_a", false},
		{"a b", false}, {"a/b", false}, {"a\x00", false}, {"é", false}, {"a\n", false}, {"a$", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.valid, streamNameRE.MatchString(tt.name), "reference expression")
			assert.Equal(t, tt.valid, storage.ValidateStreamName(tt.name) == nil, "ValidateStreamName")
		})
	}
}
