package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// progress is a one-line progress bar redrawn in place on a terminal. It is
// used by one goroutine; it draws at most every refresh interval.
type progress struct {
	w       io.Writer
	on      bool
	total   int64 // bytes, -1 unknown
	bytes   int64
	recs    int
	start   time.Time
	last    time.Time
	refresh time.Duration
	now     func() time.Time
}

// newProgress returns a bar drawing on w when mode is "always", or when it
// is "auto" and w is a terminal.
func newProgress(w io.Writer, total int64, mode string) *progress {
	on := mode == "always" || (mode == "auto" && isTerminal(w))
	p := &progress{w: w, on: on, total: total, refresh: 100 * time.Millisecond, now: time.Now}
	p.start = p.now()
	return p
}

// isTerminal reports whether w is a character device (a terminal), by the
// file mode: no dependency beyond os.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func (p *progress) add(n int64) { p.bytes += n }

// records reports the records acknowledged so far and redraws.
func (p *progress) records(n int) {
	p.recs = n
	if now := p.now(); now.Sub(p.last) >= p.refresh {
		p.last = now
		p.draw(now)
	}
}

func (p *progress) done() {
	if !p.on {
		return
	}
	p.draw(p.now())
	fmt.Fprintln(p.w)
}

const barWidth = 30

func (p *progress) draw(now time.Time) {
	if !p.on {
		return
	}
	fmt.Fprint(p.w, "\r"+p.line(now))
}

// line renders the bar: [#####.....]  42%  12345 records  3.1 MB/s
func (p *progress) line(now time.Time) string {
	el := now.Sub(p.start).Seconds()
	rate := ""
	if el > 0 {
		rate = fmt.Sprintf("  %.1f MB/s", float64(p.bytes)/el/1e6)
	}
	if p.total <= 0 {
		return fmt.Sprintf("%d records  %s read%s", p.recs, humanBytes(p.bytes), rate)
	}
	frac := min(float64(p.bytes)/float64(p.total), 1)
	filled := int(frac * barWidth)
	return fmt.Sprintf("[%s%s] %3.0f%%  %d records%s", strings.Repeat("#", filled),
		strings.Repeat(".", barWidth-filled), frac*100, p.recs, rate)
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
