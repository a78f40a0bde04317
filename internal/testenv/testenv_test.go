package testenv

import "testing"

func TestCrashCycles(t *testing.T) {
	def, short := 50, 5
	want := def
	if testing.Short() {
		want = short
	}
	t.Setenv("BADBATCH_CRASH_CYCLES", "")
	if got := CrashCycles(t, def, short); got != want {
		t.Fatalf("unset: got %d, want %d", got, want)
	}
	t.Setenv("BADBATCH_CRASH_CYCLES", "3")
	if got := CrashCycles(t, def, short); got != 3 {
		t.Fatalf("env 3: got %d, want 3", got)
	}
	t.Setenv("BADBATCH_CRASH_CYCLES", "500")
	want = 500
	if testing.Short() {
		want = short
	}
	if got := CrashCycles(t, def, short); got != want {
		t.Fatalf("env 500: got %d, want %d", got, want)
	}
}
