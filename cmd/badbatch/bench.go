package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/spf13/cobra"
)

// benchModule is the module path a checkout's go.mod must declare for
// `badbatch bench` to run its benchmark suite.
const benchModule = "module github.com/badbatch/badbatch\n"

func newBenchCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "bench [--quick|--full] [bbbench flags]",
		Short: "Run the benchmark suite and write docs/benchmarks.md (from a source checkout)",
		Long: `Run BadBatch's benchmark suite against its peers and the machine's physical
limits, and write docs/benchmarks.md, its plots and the raw JSON. This is
"go run ./bench/cmd/bbbench" with the same flags (--quick, about 5 minutes on 2 cores, is
the default; --full is the profile to publish; --help lists the rest): the
suite builds the benchmark binaries with the go command, so it runs from a
BadBatch source checkout (this directory or a parent) with Go installed.`,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			wd, err := os.Getwd()
			if err != nil {
				return err
			}
			root, err := findCheckout(wd)
			if err != nil {
				return err
			}
			goBin, err := exec.LookPath("go")
			if err != nil {
				return errors.New("badbatch bench needs the go command on PATH (it builds the benchmark binaries)")
			}
			c := exec.CommandContext(cmd.Context(), goBin, append([]string{"run", "./bench/cmd/bbbench"}, args...)...)
			c.Dir = root
			c.Stdin, c.Stdout, c.Stderr = cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr()
			if err := c.Run(); err != nil {
				var exit *exec.ExitError
				if errors.As(err, &exit) {
					return exitError{code: exit.ExitCode(), err: fmt.Errorf("bbbench: %w", err)}
				}
				return err
			}
			return nil
		},
	}
}

// findCheckout returns the nearest directory at or above dir that is a
// BadBatch source checkout (its go.mod declares the module and
// bench/cmd/bbbench exists).
func findCheckout(dir string) (string, error) {
	for d := dir; ; d = filepath.Dir(d) {
		mod, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err == nil && bytes.HasPrefix(mod, []byte(benchModule)) {
			if st, err := os.Stat(filepath.Join(d, "bench", "cmd", "bbbench")); err == nil && st.IsDir() {
				return d, nil
			}
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("badbatch bench runs from a BadBatch source checkout (a directory whose go.mod is %q, with bench/cmd/bbbench); %s is not in one: clone the repository and run it there",
				bytes.TrimSpace([]byte(benchModule)), dir)
		}
	}
}
