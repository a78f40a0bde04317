package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Suite is one package whose benchmarks the run executes.
// A Suite is a plain value.
type Suite struct {
	// Module is the directory of the package's go.mod, relative to the
	// repository root ("." for the main module).
	Module string `json:"module"`
	// Dir is the package's directory relative to the repository root; it
	// is also how results and groups name the package.
	Dir string `json:"dir"`
	// Bench is the -bench regular expression.
	Bench string `json:"bench"`
}

// The suites of the comparison. The main module's ./bench holds the limits
// and the journal, store and HTTP comparisons; ./disruptor holds the ring
// against channels; bench/peers is its own module (nats-server).
func defaultSuites() []Suite {
	return []Suite{
		{Module: ".", Dir: pkgBench, Bench: "."},
		{Module: ".", Dir: pkgDisruptor, Bench: "^Benchmark(Ring|Channel)$"},
		{Module: pkgPeers, Dir: pkgPeers, Bench: "."},
	}
}

// GoTestCommand is the plain `go test` command that runs the suite's
// benchmarks the way one round of bbbench does, for a reader who wants to
// reproduce one figure by hand.
func (s Suite) GoTestCommand(benchtime string, count int) string {
	rel, _ := filepath.Rel(s.Module, s.Dir)
	pkg := "./" + filepath.ToSlash(rel)
	if rel == "." {
		pkg = "."
	}
	cmd := fmt.Sprintf("go test -run '^$' -bench '%s' -benchtime %s -count %d -benchmem %s", s.Bench, benchtime, count, pkg)
	if s.Module != "." {
		return fmt.Sprintf("(cd %s && %s)", s.Module, cmd)
	}
	return cmd
}

// Timing is how long one package's test binary ran in one round. A Timing
// is a plain value.
type Timing struct {
	Dir     string  `json:"dir"`
	Round   int     `json:"round"`
	Seconds float64 `json:"seconds"`
}

// Runner builds each suite's test binary once and runs it round after
// round. A Runner is used by one goroutine.
type Runner struct {
	Root      string        // the repository root
	WorkDir   string        // where the test binaries go
	BenchDir  string        // $TMPDIR of the benchmarks
	Benchtime string        // -test.benchtime
	Filter    string        // when set, replaces every suite's -bench expression
	Timeout   time.Duration // -test.timeout of one binary run
	Env       []string      // added to the benchmarks' environment
	Log       io.Writer     // the test binaries' stderr and unparsed output, verbatim
	Progress  *Progress

	binaries map[string]string // suite dir -> built binary ("" when the package has no tests)
}

// Build compiles every suite's test binary and returns the status of each
// package. A package that is absent or does not build is reported, not
// fatal: its benchmarks show as not run.
func (r *Runner) Build(ctx context.Context, suites []Suite) map[string]PackageStatus {
	r.binaries = map[string]string{}
	status := map[string]PackageStatus{}
	for _, s := range suites {
		ps := PackageStatus{Dir: s.Dir}
		if !hasGoFiles(filepath.Join(r.Root, s.Dir)) {
			status[s.Dir] = ps
			r.Progress.Note(fmt.Sprintf("build %s: not present", s.Dir))
			continue
		}
		ps.Present = true
		r.Progress.Note(fmt.Sprintf("build %s", s.Dir))
		bin := filepath.Join(r.WorkDir, strings.ReplaceAll(s.Dir, "/", "_")+".test")
		rel, _ := filepath.Rel(s.Module, s.Dir)
		cmd := exec.CommandContext(ctx, "go", "test", "-c", "-o", bin, "./"+filepath.ToSlash(rel))
		cmd.Dir = filepath.Join(r.Root, s.Module)
		out, err := cmd.CombinedOutput()
		switch {
		case err != nil:
			ps.BuildError = strings.TrimSpace(string(out))
			if ps.BuildError == "" {
				ps.BuildError = err.Error()
			}
			fmt.Fprintf(r.Log, "== build %s failed:\n%s\n", s.Dir, ps.BuildError)
			r.Progress.Note(fmt.Sprintf("build %s: FAILED (%s)", s.Dir, buildErrorLine(ps.BuildError)))
		case !fileExists(bin):
			// go test -c writes nothing for a package without test files.
			ps.Built = true
			r.binaries[s.Dir] = ""
		default:
			ps.Built = true
			r.binaries[s.Dir] = bin
		}
		status[s.Dir] = ps
	}
	return status
}

// buildErrorLine is the first line of a build's output that says what is
// wrong (the go command starts with "# package" lines).
func buildErrorLine(out string) string {
	for _, line := range strings.Split(out, "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			return line
		}
	}
	return firstLine(out)
}

func hasGoFiles(dir string) bool {
	matches, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	return len(matches) > 0
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// Round runs every built suite once and returns what they printed, parsed.
// A binary that exits non-zero (a failed benchmark) is not an error: its
// failures are in the output. Only an interruption is.
func (r *Runner) Round(ctx context.Context, suites []Suite, round int) (Output, error) {
	r.Progress.StartRound(round)
	var all Output
	for _, s := range suites {
		bin, ok := r.binaries[s.Dir]
		if !ok || bin == "" {
			continue
		}
		start := time.Now()
		out, err := r.runOne(ctx, s, bin, round)
		all.Timings = append(all.Timings, Timing{Dir: s.Dir, Round: round, Seconds: time.Since(start).Seconds()})
		all.Samples = append(all.Samples, out.Samples...)
		all.Failures = append(all.Failures, out.Failures...)
		all.Skips = append(all.Skips, out.Skips...)
		if all.Header == nil {
			all.Header = out.Header
		}
		if err != nil {
			return all, err
		}
	}
	return all, nil
}

func (r *Runner) runOne(ctx context.Context, s Suite, bin string, round int) (Output, error) {
	bench := s.Bench
	if r.Filter != "" {
		bench = r.Filter
	}
	args := []string{
		"-test.run", "^$",
		"-test.bench", bench,
		"-test.benchtime", r.Benchtime,
		"-test.count", "1",
		"-test.benchmem",
		"-test.timeout", r.Timeout.String(),
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = filepath.Join(r.Root, s.Dir)
	cmd.Env = append(append(os.Environ(), r.Env...), "TMPDIR="+r.BenchDir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return Output{}, err
	}
	fmt.Fprintf(r.Log, "== round %d: %s: %s %s\n", round, s.Dir, filepath.Base(bin), strings.Join(args, " "))
	if err := cmd.Start(); err != nil {
		return Output{}, err
	}
	p := NewParser(s.Dir, round)
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintln(r.Log, line)
		if sample, ok := p.Line(line); ok {
			r.Progress.Sample(sample)
		}
	}
	waitErr := cmd.Wait()
	out := p.Finish()
	if stderr.Len() > 0 {
		fmt.Fprintf(r.Log, "== stderr of %s:\n%s\n", s.Dir, stderr.String())
	}
	if ctx.Err() != nil {
		return out, ctx.Err()
	}
	var exit *exec.ExitError
	if waitErr != nil && !errors.As(waitErr, &exit) {
		return out, waitErr
	}
	if waitErr != nil && len(out.Failures) == 0 {
		// It exited non-zero without a benchmark failing: a panic or a
		// timeout. File it against the whole suite so the report says so.
		msg := crashLine(stderr.String())
		if msg == "" {
			msg = waitErr.Error()
		}
		out.Failures = append(out.Failures, Failure{Package: s.Dir, Name: "(the test binary)", Round: round, Message: msg})
		r.Progress.Note(fmt.Sprintf("round %d: %s exited: %s", round, s.Dir, firstLine(msg)))
	}
	for _, f := range out.Failures {
		r.Progress.Note(fmt.Sprintf("round %d: FAIL %s %s: %s", round, s.Dir, f.Name, firstLine(f.Message)))
	}
	if round == 1 {
		for _, f := range out.Skips {
			r.Progress.Note(fmt.Sprintf("not run: %s %s: %s", s.Dir, f.Name, firstLine(f.Message)))
		}
	}
	return out, nil
}

// crashLine picks what a test binary that died said about why: the first
// panic, fatal error, signal or timeout line of its stderr, else its last
// line.
func crashLine(stderr string) string {
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	for _, line := range lines {
		for _, prefix := range []string{"panic: ", "fatal error: ", "SIGQUIT", "SIGKILL", "SIGABRT", "*** Test killed"} {
			if strings.HasPrefix(line, prefix) {
				return strings.TrimSpace(line)
			}
		}
	}
	return strings.TrimSpace(lines[len(lines)-1])
}
