package storage

import (
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2"
)

// BenchmarkIndexBatch is the evidence for decision 0004: the cost of the
// business logic's Pebble batch per ring batch with Pebble's own WAL on
// (committed NoSync: the journal, not Pebble, provides durability) and off
// (this store's choice). One op is one ring batch of groups=N appends, each
// writing a run key and a time key, plus the chunk and applied-position
// keys, as the business logic does. On disk, in b.TempDir().
func BenchmarkIndexBatch(b *testing.B) {
	for _, groups := range []int{1, 64} {
		for _, wal := range []string{"off", "on"} {
			b.Run(fmt.Sprintf("wal=%s/groups=%d", wal, groups), func(b *testing.B) {
				db, err := pebble.Open(b.TempDir(), &pebble.Options{
					FormatMajorVersion: pebble.FormatNewest,
					DisableWAL:         wal == "off",
					Logger:             pebbleLogger{log: DefaultOptions().Logger},
				})
				if err != nil {
					b.Fatal(err)
				}
				defer db.Close()
				x := &index{db: db, batch: db.NewBatch()}
				stream := []byte("orders")
				chunk := make([]byte, 0, 4*groups+16)
				b.ReportAllocs()
				b.ResetTimer()
				offset := uint64(0)
				for i := range b.N {
					chunk = appendChunkHeader(chunk[:0], uint64(i+1), 0, 0, groups)
					for g := range groups {
						offset += 100
						if err := x.setRun(stream, offset-1, run{Entry: uint64(i + 1), Ordinal: uint32(g), Count: 100, FirstSeq: offset - 100}); err != nil {
							b.Fatal(err)
						}
						if err := x.setTime(stream, int64(offset), offset-100); err != nil {
							b.Fatal(err)
						}
						chunk = appendChunkGroup(chunk, chunkGroup{Records: 100, Accepted: true, Offset: offset - 100})
					}
					if err := x.setChunk(offset, chunk); err != nil {
						b.Fatal(err)
					}
					if err := x.setApplied(position{Entry: uint64(i + 2), Seq: offset}); err != nil {
						b.Fatal(err)
					}
					if err := x.commit(); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
