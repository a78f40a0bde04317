package faultfs

import (
	"errors"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

func TestJournalFault(t *testing.T) {
	f, err := ParseJournalFault("2+1")
	if err != nil {
		t.Fatal(err)
	}
	w := errorfs.Op{Kind: errorfs.OpFileWrite, Path: "/d/journal/0001.seg"}
	other := errorfs.Op{Kind: errorfs.OpFileWrite, Path: "/d/index/000001.log"}
	read := errorfs.Op{Kind: errorfs.OpFileRead, Path: "/d/journal/0001.seg"}
	if f.MaybeError(w) != nil {
		t.Fatal("failed before Arm")
	}
	f.Arm()
	var got []bool
	for range 5 {
		if f.MaybeError(other) != nil || f.MaybeError(read) != nil {
			t.Fatal("failed an operation it does not count")
		}
		got = append(got, errors.Is(f.MaybeError(w), errorfs.ErrInjected))
	}
	want := []bool{false, true, true, false, false}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("operation %d: failed %v, want %v (all: %v)", i+1, got[i], want[i], got)
		}
	}
	if f.Hits() != 2 {
		t.Fatalf("hits %d, want 2", f.Hits())
	}
	for _, bad := range []string{"", "0", "x", "1+", "1+-1", "-3"} {
		if _, err := ParseJournalFault(bad); err == nil {
			t.Errorf("ParseJournalFault(%q) accepted", bad)
		}
	}
}
