package bbsample

import (
	"fmt"
	"testing"
	"time"
)

var sink []byte

func BenchmarkCopy(b *testing.B) {
	for _, size := range []int{64, 4096} {
		b.Run(fmt.Sprintf("size=%dB", size), func(b *testing.B) {
			src := make([]byte, size)
			b.ReportAllocs()
			b.SetBytes(int64(size))
			start := time.Now()
			for range b.N {
				sink = append([]byte(nil), src...)
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
		})
	}
}

func BenchmarkLogs(b *testing.B) {
	b.Log("a benchmark that logs")
	for range b.N {
		sink = make([]byte, 8)
	}
	b.ReportMetric(123456, "p99-ns")
}

func BenchmarkFails(b *testing.B) {
	b.Run("impl=broken", func(b *testing.B) { b.Fatal("disk on fire") })
}

func BenchmarkSkips(b *testing.B) {
	b.Skip("needs a colleague's package")
}
