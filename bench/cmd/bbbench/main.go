// Command bbbench runs BadBatch's benchmark comparison in one run on one
// machine and writes docs/benchmarks.md, its plots (docs/img/) and the raw
// results (docs/bench-results.json).
//
//	go run ./bench/cmd/bbbench --quick   # about 5 minutes on 2 cores
//	go run ./bench/cmd/bbbench --full    # the profile to publish
//
// It builds the test binary of each benchmark package once (the main
// module's ./bench and ./disruptor, and the separate module bench/peers),
// then runs all of them once per round, for several rounds, parsing the
// standard benchmark output as it arrives. Medians and ranges across the
// rounds go into the report, each BadBatch figure beside its peers' and the
// physical limit measured in the same run (see groups.go). A benchmark that
// does not exist, or whose package does not build, is reported as not run.
//
// --from-json renders the markdown and plots again from a results file
// without running anything.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// profile is a named choice of -benchtime and rounds.
type profile struct {
	name      string
	benchtime string
	rounds    int
	timeout   time.Duration // of one test binary run
	// env is added to the benchmarks' environment: the full profile turns
	// on the large scaling points (a 4 GiB log, 10M-record first-record).
	env []string
}

// bigEnv turns on the scaling benchmarks' largest points (bench/scaling_test.go,
// bench/replay_test.go).
var bigEnv = []string{"BADBATCH_BENCH_BIG=1", "BADBATCH_BENCH_REPLAY_10M=1"}

var (
	// quick takes about five minutes on a 2-core machine (5m16s measured),
	// plus about 30 s per round for BenchmarkClusterFailover's 20 kills
	// (29-32 s measured alone).
	profileQuick = profile{name: "quick", benchtime: "200ms", rounds: 3, timeout: 8 * time.Minute}
	// full is what a published docs/benchmarks.md should come from, on an
	// idle machine: it takes hours on 2 cores (the first 58 of a round's
	// 214 results took 10 minutes on the development machine).
	profileFull = profile{name: "full", benchtime: "1s", rounds: 10, timeout: 45 * time.Minute, env: bigEnv}
)

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bbbench:", err)
		os.Exit(1)
	}
}

func run(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("bbbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	quick := fs.Bool("quick", false, "the quick profile: -benchtime 200ms, 3 rounds (the default)")
	full := fs.Bool("full", false, "the full profile: -benchtime 1s, 10 rounds")
	rounds := fs.Int("rounds", 0, "override the profile's number of rounds")
	benchtime := fs.String("benchtime", "", "override the profile's -benchtime (a duration or Nx)")
	filter := fs.String("bench", "", "run only the benchmarks matching this -bench expression, in every package")
	outDir := fs.String("out", "docs", "where benchmarks.md, img/ and bench-results.json go (relative to the repository root)")
	tmpDir := fs.String("tmpdir", os.TempDir(), "the directory the benchmarks write into (its file system is what the disk figures measure)")
	fromJSON := fs.String("from-json", "", "render the report from this results file instead of running")
	logPath := fs.String("log", "", "write the benchmarks' raw output here (default: a file in the temporary directory)")
	dryRun := fs.Bool("dry-run", false, "print what would run and exit")
	big := fs.Bool("big", false, "include the largest scaling points (a 4 GiB log, 10M records; on by default with --full)")
	plotFormat := fs.String("plot-format", "svg", "the plots' format: svg or png")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *quick && *full {
		return errors.New("--quick and --full exclude each other")
	}
	if *plotFormat != "svg" && *plotFormat != "png" {
		return fmt.Errorf("--plot-format %q: want svg or png", *plotFormat)
	}
	prof := profileQuick
	if *full {
		prof = profileFull
	}
	if *rounds > 0 {
		prof.rounds = *rounds
	}
	if *benchtime != "" {
		prof.benchtime = *benchtime
	}
	if *big {
		prof.env = bigEnv
	}

	root, err := repoRoot()
	if err != nil {
		return err
	}
	out := *outDir
	if !filepath.IsAbs(out) {
		out = filepath.Join(root, out)
	}
	groups := Groups()

	if *fromJSON != "" {
		rep, err := ReadReport(*fromJSON)
		if err != nil {
			return err
		}
		rep.Analyze(groups)
		return render(rep, out, *plotFormat, stderr)
	}

	suites := defaultSuites()
	command := "go run ./bench/cmd/bbbench"
	if shown := commandArgs(args); len(shown) > 0 {
		command += " " + strings.Join(shown, " ")
	}
	if *dryRun {
		fmt.Fprintf(stderr, "profile %s: -benchtime %s, %d rounds; bench dir %s; environment %v\n", prof.name, prof.benchtime, prof.rounds, *tmpDir, prof.env)
		for _, s := range suites {
			fmt.Fprintf(stderr, "  %s\n", s.GoTestCommand(prof.benchtime, prof.rounds))
		}
		return nil
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	work, err := os.MkdirTemp("", "bbbench-bin-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	if err := os.MkdirAll(*tmpDir, 0o755); err != nil {
		return err
	}
	benchDir, err := os.MkdirTemp(*tmpDir, "bbbench-run-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(benchDir)
	if *logPath == "" {
		*logPath = filepath.Join(os.TempDir(), "bbbench.log")
	}
	logFile, err := os.Create(*logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()

	started := time.Now()
	rep := &Report{
		Schema:    reportSchema,
		Command:   command,
		Profile:   prof.name,
		Benchtime: prof.benchtime,
		Rounds:    prof.rounds,
		Env:       prof.env,
		Filter:    *filter,
		Suites:    suites,
		Machine:   DescribeMachine(ctx, root, benchDir),
	}
	progress := NewProgress(stderr, IsTerminal(os.Stderr), prof.rounds)
	stopTicking := progress.Tick(time.Second)
	defer stopTicking()
	progress.Note(fmt.Sprintf("profile %s (-benchtime %s, %d rounds); benchmarks write to %s (%s); raw output in %s",
		prof.name, prof.benchtime, prof.rounds, *tmpDir, rep.Machine.FileSystem, *logPath))
	runner := &Runner{
		Root:      root,
		WorkDir:   work,
		BenchDir:  benchDir,
		Benchtime: prof.benchtime,
		Filter:    *filter,
		Timeout:   prof.timeout,
		Env:       prof.env,
		Log:       logFile,
		Progress:  progress,
	}
	rep.Packages = runner.Build(ctx, suites)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if prev, err := ReadReport(filepath.Join(out, "bench-results.json")); err == nil && prev.Filter == *filter {
		if n := countRound(prev.Samples, 1); n > 0 {
			progress.SetTotal(n * prof.rounds)
		}
	}
	for round := 1; round <= prof.rounds; round++ {
		o, err := runner.Round(ctx, suites, round)
		rep.Samples = append(rep.Samples, o.Samples...)
		rep.Failures = append(rep.Failures, o.Failures...)
		rep.Skips = append(rep.Skips, o.Skips...)
		rep.Timings = append(rep.Timings, o.Timings...)
		if err != nil {
			progress.Finish()
			return fmt.Errorf("round %d: %w (nothing written)", round, err)
		}
		if round == 1 {
			progress.SetTotal(len(o.Samples) * prof.rounds)
		}
	}
	progress.Finish()

	rep.Machine.LoadAfter = readTrim("/proc/loadavg")
	rep.Machine.Finished = time.Now().UTC().Format(time.RFC3339)
	rep.Machine.WallTime = time.Since(started).Round(time.Second).String()
	var dirs []string
	for _, s := range suites {
		dirs = append(dirs, s.Dir)
	}
	rep.Docs = BenchmarkDocs(root, dirs)
	rep.Analyze(groups)
	return render(rep, out, *plotFormat, stderr)
}

// countRound counts the samples of one round.
func countRound(samples []Sample, round int) int {
	n := 0
	for _, s := range samples {
		if s.Round == round {
			n++
		}
	}
	return n
}

// render writes the plots (in format, "svg" or "png"), the JSON and the
// markdown into out.
func render(rep *Report, out, format string, stderr io.Writer) error {
	imgDir := filepath.Join(out, "img")
	if err := os.MkdirAll(imgDir, 0o755); err != nil {
		return err
	}
	plots := map[string]string{}
	for _, c := range rep.Comparisons {
		name := c.ID + "." + format
		ok, err := PlotComparison(c, filepath.Join(imgDir, name))
		if err != nil {
			return err
		}
		if ok {
			plots[c.ID] = "img/" + name
		}
	}
	jsonPath := filepath.Join(out, "bench-results.json")
	if err := rep.WriteJSON(jsonPath); err != nil {
		return err
	}
	mdPath := filepath.Join(out, "benchmarks.md")
	f, err := os.Create(mdPath)
	if err != nil {
		return err
	}
	if err := rep.WriteMarkdown(f, plots); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "bbbench: wrote %s, %s and %d plots in %s\n", mdPath, jsonPath, len(plots), imgDir)
	return nil
}

// repoRoot walks up from the working directory to the main module's go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(b), "module github.com/badbatch/badbatch\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run bbbench inside the badbatch repository (no go.mod of github.com/badbatch/badbatch above the working directory)")
		}
		dir = parent
	}
}

// commandArgs returns the arguments worth recording in the report's
// command line: all but --log (where the raw output went, which changes
// no result and names a local path).
func commandArgs(args []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--log" || a == "-log":
			i++ // and its value
		case strings.HasPrefix(a, "--log=") || strings.HasPrefix(a, "-log="):
		default:
			out = append(out, a)
		}
	}
	return out
}
