package httpapi_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any goroutine outlives the tests: every
// server, tail and store goroutine must be owned and joined.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
