package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// Progress shows how far the run is: a bar redrawn in place on a terminal,
// one plain line per result otherwise (CI logs, pipes). It is safe for
// concurrent use.
type Progress struct {
	mu      sync.Mutex
	w       io.Writer
	tty     bool
	now     func() time.Time
	start   time.Time // of the whole run (builds included)
	rounds0 time.Time // when round 1 started: the ETA counts from there
	total   int       // expected results in the whole run; 0 while unknown
	done    int
	round   int
	rounds  int
	last    string // the latest result, shown after the bar
}

// NewProgress writes to w; tty selects the redrawn bar.
func NewProgress(w io.Writer, tty bool, rounds int) *Progress {
	return &Progress{w: w, tty: tty, now: time.Now, start: time.Now(), rounds: rounds}
}

// IsTerminal reports whether f is a character device (a terminal), without
// a dependency: pipes and files are not.
func IsTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// SetTotal sets the number of results the whole run is expected to give.
func (p *Progress) SetTotal(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.total = n
	p.drawLocked()
}

// StartRound marks the start of round r (1-based).
func (p *Progress) StartRound(r int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.round = r
	if p.rounds0.IsZero() {
		p.rounds0 = p.now()
	}
	if !p.tty {
		fmt.Fprintf(p.w, "bbbench: round %d/%d\n", r, p.rounds)
		return
	}
	p.drawLocked()
}

// Sample records one finished benchmark.
func (p *Progress) Sample(s Sample) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done++
	p.last = fmt.Sprintf("%s %s: %s", s.Package, s.Name, headline(s))
	if !p.tty {
		fmt.Fprintf(p.w, "bbbench: %s round %d/%d %s\n", p.countLocked(), p.round, p.rounds, p.last)
		return
	}
	p.drawLocked()
}

// Note prints a message above the bar (or as its own line).
func (p *Progress) Note(msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty {
		fmt.Fprint(p.w, "\r\x1b[K")
	}
	fmt.Fprintf(p.w, "bbbench: %s\n", msg)
	if p.tty {
		p.drawLocked()
	}
}

// Tick redraws the bar every interval (on a terminal only, so that the
// elapsed time moves while a long benchmark runs) until the returned stop
// function is called; stop waits for the ticking goroutine to end.
func (p *Progress) Tick(interval time.Duration) (stop func()) {
	if !p.tty {
		return func() {}
	}
	done := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				p.mu.Lock()
				p.drawLocked()
				p.mu.Unlock()
			}
		}
	}()
	return func() {
		close(done)
		<-exited
	}
}

// Finish ends the bar's line.
func (p *Progress) Finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty {
		fmt.Fprint(p.w, "\r\x1b[K")
	}
	fmt.Fprintf(p.w, "bbbench: %d results in %s\n", p.done, p.now().Sub(p.start).Round(time.Second))
}

// countLocked is "12/150" or "12" while the total is unknown.
// REQUIRES: mu held.
func (p *Progress) countLocked() string {
	if p.total > 0 {
		return fmt.Sprintf("[%d/%d]", p.done, p.total)
	}
	return fmt.Sprintf("[%d]", p.done)
}

// Bar renders the progress line (without the carriage return).
// REQUIRES: mu held.
func (p *Progress) barLocked(width int) string {
	elapsed := p.now().Sub(p.start).Round(time.Second)
	var b strings.Builder
	if p.total > 0 {
		frac := min(float64(p.done)/float64(p.total), 1)
		filled := int(frac * float64(width))
		b.WriteString("[" + strings.Repeat("#", filled) + strings.Repeat(".", width-filled) + "]")
		fmt.Fprintf(&b, " %3.0f%% %d/%d", frac*100, p.done, p.total)
		if p.done > 0 && p.done < p.total && !p.rounds0.IsZero() {
			eta := time.Duration(float64(p.now().Sub(p.rounds0)) / float64(p.done) * float64(p.total-p.done))
			fmt.Fprintf(&b, " eta %s", eta.Round(time.Second))
		}
	} else {
		fmt.Fprintf(&b, "%d results", p.done)
	}
	if p.round == 0 {
		fmt.Fprintf(&b, " building %s", elapsed)
	} else {
		fmt.Fprintf(&b, " round %d/%d %s", p.round, p.rounds, elapsed)
	}
	return b.String()
}

// drawLocked redraws the bar on a terminal.
// REQUIRES: mu held.
func (p *Progress) drawLocked() {
	if !p.tty {
		return
	}
	line := p.barLocked(30)
	if p.last != "" {
		line += "  " + p.last
	}
	if len(line) > 160 {
		line = line[:157] + "..."
	}
	fmt.Fprint(p.w, "\r\x1b[K"+line)
}

// headline is the figure a progress line shows for a sample: records/s,
// else its first other custom rate, else MB/s, else its time per op.
func headline(s Sample) string {
	if v, ok := s.Value("records/s"); ok {
		return formatValue(v) + " records/s"
	}
	for _, m := range s.Metrics {
		if strings.HasSuffix(m.Unit, "/s") && m.Unit != "MB/s" {
			return formatValue(m.Value) + " " + m.Unit
		}
	}
	if v, ok := s.Value("MB/s"); ok {
		return formatValue(v) + " MB/s"
	}
	if v, ok := s.Value("ns/op"); ok {
		return formatValue(v) + " ns/op"
	}
	return ""
}
