package broken

import "testing"

// This package must not compile: bbbench's runner test checks that a build
// failure is reported as such. It is gofmt-clean on purpose (a type error,
// not a syntax error), so that tools that parse every .go file do not trip.
var notAnInt int = "forty-two"

func BenchmarkNever(b *testing.B) {
	for range b.N {
		_ = notAnInt
	}
}
