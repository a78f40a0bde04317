package main

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// Sample is one result line of `go test -bench`: one benchmark run once.
// A Sample is a plain value, safe to copy; do not modify its Metrics
// slice while another goroutine reads it.
type Sample struct {
	Package string `json:"package"` // the package's directory relative to the repository, e.g. "bench/peers"
	Name    string `json:"name"`    // the full name without the -GOMAXPROCS suffix
	Procs   int    `json:"procs"`   // GOMAXPROCS from the suffix; 1 when there is none
	Round   int    `json:"round"`   // 1-based round of the run that produced it
	N       int64  `json:"n"`       // iterations
	// Metrics holds the values in the order the line gave them.
	Metrics []Metric `json:"metrics"`
}

// Metric is one "value unit" pair of a result line.
// A Metric is a plain value.
type Metric struct {
	Unit  string  `json:"unit"`
	Value float64 `json:"value"`
}

// Value returns the value of unit and whether the sample has it.
func (s Sample) Value(unit string) (float64, bool) {
	for _, m := range s.Metrics {
		if m.Unit == unit {
			return m.Value, true
		}
	}
	return 0, false
}

// Failure is a benchmark that reported "--- FAIL" or, in Output.Skips, one
// that reported "--- SKIP" (Message is then why it did not run).
// A Failure is a plain value.
type Failure struct {
	Package string `json:"package"`
	Name    string `json:"name"`
	Round   int    `json:"round"`
	Message string `json:"message"` // the indented lines that followed, trimmed
}

// Output is what one run of a test binary printed, parsed.
// An Output belongs to the caller that received it; it is not synchronized.
type Output struct {
	Header   map[string]string // goos, goarch, pkg, cpu
	Samples  []Sample
	Failures []Failure
	// Skips are the benchmarks that said why they did not run: go test
	// prints nothing for a skipped benchmark without -v, so a benchmark
	// that must be seen as not run prints "--- SKIP: name" and its reason,
	// indented, itself (bench's notRun).
	Skips   []Failure
	Timings []Timing // filled by Runner.Round, one per package run
}

// Parser reads the standard benchmark output format line by line: the
// header, result lines, "--- FAIL" and "--- SKIP" blocks with their
// indented messages, and everything else (logs, "--- BENCH" blocks,
// PASS/FAIL) ignored. A Parser is not safe for concurrent use.
type Parser struct {
	pkg   string
	round int
	out   Output

	failing *Failure // the failure or skip whose message lines are being read
	skip    bool     // failing is a skip
}

// NewParser returns a parser that labels what it parses with pkg and round.
func NewParser(pkg string, round int) *Parser {
	return &Parser{pkg: pkg, round: round, out: Output{Header: map[string]string{}}}
}

var (
	// A result line: name, iterations, then value/unit pairs. (With -v the
	// name is also printed alone before the run; that line has no figures.)
	resultLine = regexp.MustCompile(`^(Benchmark\S*)\s+(\d+)\s+(.+)$`)
	failLine   = regexp.MustCompile(`^\s*--- FAIL: (Benchmark\S*)`)
	skipLine   = regexp.MustCompile(`^\s*--- SKIP: (Benchmark\S*)`)
	headerLine = regexp.MustCompile(`^(goos|goarch|pkg|cpu): (.*)$`)
	procsTail  = regexp.MustCompile(`-(\d+)$`)
)

// Line consumes one line of output and returns the sample it completed, if
// any.
func (p *Parser) Line(line string) (Sample, bool) {
	line = strings.TrimRight(line, "\r\n")
	if p.failing != nil {
		if strings.HasPrefix(line, "    ") && !failLine.MatchString(line) && !skipLine.MatchString(line) {
			msg := strings.TrimSpace(line)
			if p.failing.Message != "" {
				p.failing.Message += "\n"
			}
			p.failing.Message += msg
			return Sample{}, false
		}
		p.endFailure()
	}
	if m := headerLine.FindStringSubmatch(line); m != nil {
		p.out.Header[m[1]] = strings.TrimSpace(m[2])
		return Sample{}, false
	}
	if m := failLine.FindStringSubmatch(line); m != nil {
		name, _ := splitProcs(m[1])
		p.failing, p.skip = &Failure{Package: p.pkg, Name: name, Round: p.round}, false
		return Sample{}, false
	}
	if m := skipLine.FindStringSubmatch(line); m != nil {
		name, _ := splitProcs(m[1])
		p.failing, p.skip = &Failure{Package: p.pkg, Name: name, Round: p.round}, true
		return Sample{}, false
	}
	if m := resultLine.FindStringSubmatch(line); m != nil {
		if s, err := p.sample(m[1], m[2], m[3]); err == nil {
			return s, true
		}
	}
	return Sample{}, false
}

// endFailure files the failure being read. A parent benchmark fails because
// its sub-benchmark did; only the most specific failure carries a message,
// so a parent with an empty message whose child already failed is dropped.
//
// A skip is filed once: with -v, go test's own "--- SKIP" line (its message
// printed before it) follows the one the benchmark printed.
func (p *Parser) endFailure() {
	f := *p.failing
	p.failing = nil
	if p.skip {
		for _, g := range p.out.Skips {
			if g.Round == f.Round && g.Name == f.Name {
				return
			}
		}
		p.out.Skips = append(p.out.Skips, f)
		return
	}
	if f.Message == "" {
		for _, g := range p.out.Failures {
			if g.Round == f.Round && strings.HasPrefix(g.Name, f.Name+"/") {
				return
			}
		}
	}
	p.out.Failures = append(p.out.Failures, f)
}

// sample builds a Sample from a result line's parts and records it.
func (p *Parser) sample(fullName, iterations, figures string) (Sample, error) {
	n, err := strconv.ParseInt(iterations, 10, 64)
	if err != nil {
		return Sample{}, err
	}
	fields := strings.Fields(figures)
	if len(fields) == 0 || len(fields)%2 != 0 {
		return Sample{}, fmt.Errorf("bbbench: %d fields after the iterations", len(fields))
	}
	name, procs := splitProcs(fullName)
	s := Sample{Package: p.pkg, Name: name, Procs: procs, Round: p.round, N: n}
	for i := 0; i < len(fields); i += 2 {
		v, err := strconv.ParseFloat(fields[i], 64)
		if err != nil {
			return Sample{}, fmt.Errorf("bbbench: value %q: %w", fields[i], err)
		}
		s.Metrics = append(s.Metrics, Metric{Unit: fields[i+1], Value: v})
	}
	p.out.Samples = append(p.out.Samples, s)
	return s, nil
}

// splitProcs separates the -GOMAXPROCS suffix that the testing package adds
// to the last element of a name when GOMAXPROCS is not 1.
func splitProcs(fullName string) (string, int) {
	m := procsTail.FindStringSubmatchIndex(fullName)
	if m == nil {
		return fullName, 1
	}
	procs, err := strconv.Atoi(fullName[m[2]:m[3]])
	if err != nil || procs < 1 {
		return fullName, 1
	}
	return fullName[:m[0]], procs
}

// Finish files any failure still being read and returns everything parsed.
func (p *Parser) Finish() Output {
	if p.failing != nil {
		p.endFailure()
	}
	return p.out
}

// ParseOutput parses a whole captured output.
func ParseOutput(r io.Reader, pkg string, round int) (Output, error) {
	p := NewParser(pkg, round)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		p.Line(sc.Text())
	}
	return p.Finish(), sc.Err()
}
