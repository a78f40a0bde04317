package journal

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestWriteEntryAllocs: WriteEntry does not allocate in steady state (the
// frame buffer, the offsets and the term runs are reused or amortized),
// nor do Term (on the active segment) and Info.
func TestWriteEntryAllocs(t *testing.T) {
	o := testOptions(vfs.Default, 64<<20)
	o.SyncPolicy = SyncNone
	j := mustOpen(t, t.TempDir(), o)
	defer j.Close()
	payload := bytes.Join(entryGroups(3, 1000), nil)
	conf := []byte("a conf change")
	for i := range 100 { // warm up the buffers and the offset slice
		_, err := j.WriteEntry(j.LastIndex()+1, 1+uint64(i)/50, KindGroups, payload)
		require.NoError(t, err)
	}
	for _, tt := range []struct {
		name    string
		kind    EntryKind
		payload []byte
	}{
		{"groups", KindGroups, payload},
		{"empty", KindGroups, nil},
		{"conf-change", KindConfChange, conf},
	} {
		t.Run(tt.name, func(t *testing.T) {
			allocs := testing.AllocsPerRun(200, func() {
				if _, err := j.WriteEntry(j.LastIndex()+1, 2, tt.kind, tt.payload); err != nil {
					t.Fatal(err)
				}
			})
			assert.Zero(t, allocs, "WriteEntry allocates in steady state")
		})
	}
	last := j.LastIndex()
	allocs := testing.AllocsPerRun(200, func() {
		if term, err := j.Term(last - 7); err != nil || term != 2 {
			t.Fatal(term, err)
		}
	})
	assert.Zero(t, allocs, "Term allocates")
	allocs = testing.AllocsPerRun(200, func() {
		if _, err := j.Info(last - 7); err != nil {
			t.Fatal(err)
		}
	})
	assert.Zero(t, allocs, "Info allocates")
}

// BenchmarkWriteEntry measures one WriteEntry against Write of the same
// groups, the obvious alternative, in the same run:
//
//	BenchmarkWriteEntry/api={WriteEntry,Write}/kind=groups/size={100B,4KiB,64KiB}
//	BenchmarkWriteEntry/api=WriteEntry/kind={empty,conf-change}
//
// WriteEntry validates the concatenated payload by walking its group size
// fields, Write the groups it is handed; both copy the payload into one
// reused frame buffer, checksum it and make one pwrite (SyncNone: the
// write, not the fsync). Every 32 MiB of frames the journal is truncated
// back to empty with the timer stopped, so that each variant writes into
// the same few dozen MiB of page cache: without that, the gigabytes that
// earlier variants left dirty were written back during later ones, which
// then looked up to twice as slow whatever their API. The fsync path is
// BenchmarkJournalAppend's (./bench).
func BenchmarkWriteEntry(b *testing.B) {
	type variant struct {
		name    string
		kind    EntryKind
		payload []byte
		groups  [][]byte // for api=Write
	}
	var variants []variant
	for _, size := range []int{100, 4 << 10, 64 << 10} {
		groups := make([][]byte, 8)
		for k := range groups {
			groups[k] = AppendGroup(nil, &Group{Stream: []byte("s")}, []Record{{Value: make([]byte, size/len(groups))}})
		}
		name := fmt.Sprintf("kind=groups/size=%dB", size)
		if size >= 1<<10 {
			name = fmt.Sprintf("kind=groups/size=%dKiB", size>>10)
		}
		variants = append(variants, variant{name, KindGroups, bytes.Join(groups, nil), groups})
	}
	variants = append(variants,
		variant{"kind=empty", KindGroups, nil, nil},
		variant{"kind=conf-change", KindConfChange, make([]byte, 60), nil})
	for _, api := range []string{"WriteEntry", "Write"} {
		for _, v := range variants {
			if api == "Write" && v.groups == nil {
				continue
			}
			b.Run("api="+api+"/"+v.name, func(b *testing.B) {
				o := testOptions(vfs.Default, 64<<20)
				o.SyncPolicy = SyncNone
				j := mustOpen(b, b.TempDir(), o)
				rewind := max(1, (32<<20)/(frameHeaderSize+len(v.payload)))
				b.SetBytes(int64(len(v.payload)))
				b.ReportAllocs()
				b.ResetTimer()
				for i := range b.N {
					if i%rewind == rewind-1 {
						b.StopTimer()
						require.NoError(b, j.TruncateBack(0))
						b.StartTimer()
					}
					var err error
					if api == "Write" {
						_, err = j.Write(v.groups)
					} else {
						_, err = j.WriteEntry(j.LastIndex()+1, 1, v.kind, v.payload)
					}
					if err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				require.NoError(b, j.Close())
			})
		}
	}
}
