package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Machine describes where the benchmarks ran. Fields that could not be
// read say "unknown".
// A Machine is a plain value; DescribeMachine returns a fresh one.
type Machine struct {
	CPU        string   `json:"cpu"`
	Cores      int      `json:"cores"` // logical CPUs the process may use
	GOMAXPROCS int      `json:"gomaxprocs"`
	MemoryMiB  int64    `json:"memory_mib,omitempty"`
	OS         string   `json:"os"`
	Kernel     string   `json:"kernel"`
	BenchDir   string   `json:"bench_dir"`   // where the benchmarks write ($TMPDIR)
	FileSystem string   `json:"file_system"` // its file system type
	MountInfo  string   `json:"mount"`       // its mount point, device and options
	GoVersion  string   `json:"go_version"`  // of the toolchain that built the benchmarks
	LoadBefore string   `json:"load_before"` // /proc/loadavg when the run started
	LoadAfter  string   `json:"load_after"`  // and when it ended
	Virtual    string   `json:"virtualized"` // the hypervisor flag, when the CPU reports one
	GitCommit  string   `json:"git_commit"`  // HEAD of the repository
	GitDirty   bool     `json:"git_dirty"`   // uncommitted changes (besides the report's outputs) were present
	Hostname   string   `json:"-"`           // not published
	Started    string   `json:"started"`     // RFC 3339, UTC
	Finished   string   `json:"finished"`    // RFC 3339, UTC
	WallTime   string   `json:"wall_time"`   // of the whole run
	Notes      []string `json:"notes,omitempty"`
}

const unknown = "unknown"

// DescribeMachine reads what it can about the machine, benchDir and the Go
// toolchain. It never fails: a field it cannot read says "unknown".
func DescribeMachine(ctx context.Context, root, benchDir string) Machine {
	m := Machine{
		CPU:        cpuModel(),
		Cores:      runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		MemoryMiB:  memTotalMiB(),
		OS:         runtime.GOOS + "/" + runtime.GOARCH,
		Kernel:     readTrim("/proc/sys/kernel/osrelease"),
		BenchDir:   benchDir,
		GoVersion:  commandOutput(ctx, root, "go", "env", "GOVERSION"),
		LoadBefore: readTrim("/proc/loadavg"),
		Started:    time.Now().UTC().Format(time.RFC3339),
	}
	m.FileSystem, m.MountInfo = fileSystemOf(benchDir)
	if cpuFlag("hypervisor") {
		m.Virtual = "yes (the CPU reports the hypervisor flag)"
	} else {
		m.Virtual = "no hypervisor flag"
	}
	m.GitCommit = commandOutput(ctx, root, "git", "rev-parse", "HEAD")
	// The report's own outputs do not make the tree dirty: they are what the
	// run rewrites.
	status := commandOutput(ctx, root, "git", "status", "--porcelain", "--untracked-files=no", "--",
		".", ":!docs/benchmarks.md", ":!docs/bench-results.json", ":!docs/img")
	m.GitDirty = status != "" && status != unknown
	if m.FileSystem == "tmpfs" || m.FileSystem == "ramfs" {
		m.Notes = append(m.Notes, "The bench directory is in memory ("+m.FileSystem+"): fsync costs nothing there and the disk figures are not a disk's. Rerun with --tmpdir on a real disk.")
	}
	return m
}

func readTrim(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return unknown
	}
	return strings.TrimSpace(string(b))
}

func commandOutput(ctx context.Context, dir, name string, args ...string) string {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return unknown
	}
	return strings.TrimSpace(string(out))
}

// cpuinfoField returns the first value of a /proc/cpuinfo field.
func cpuinfoField(field string) string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == field {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func cpuModel() string {
	if s := cpuinfoField("model name"); s != "" {
		return s
	}
	return unknown
}

func cpuFlag(flag string) bool {
	for _, f := range strings.Fields(cpuinfoField("flags")) {
		if f == flag {
			return true
		}
	}
	return false
}

func memTotalMiB() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kib, err := strconv.ParseInt(fields[1], 10, 64)
			if err == nil {
				return kib / 1024
			}
		}
	}
	return 0
}

// fileSystemOf finds the mount that holds dir in /proc/self/mounts (the
// longest mount point that is a prefix of its real path) and returns its
// type and a description of the mount.
func fileSystemOf(dir string) (string, string) {
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		real = dir
	}
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return unknown, unknown
	}
	return mountFor(string(b), real)
}

// mountFor picks, from the text of /proc/self/mounts, the mount holding path.
func mountFor(mounts, path string) (string, string) {
	bestLen := -1
	fsType, desc := unknown, unknown
	for _, line := range strings.Split(mounts, "\n") {
		f := strings.Fields(line)
		if len(f) < 4 {
			continue
		}
		point := unescapeMount(f[1])
		if !within(path, point) || len(point) < bestLen {
			continue
		}
		bestLen = len(point)
		fsType = f[2]
		desc = fmt.Sprintf("%s on %s (%s)", f[0], point, f[3])
	}
	return fsType, desc
}

func within(path, point string) bool {
	if point == "/" {
		return strings.HasPrefix(path, "/")
	}
	return path == point || strings.HasPrefix(path, point+"/")
}

// unescapeMount undoes the octal escapes (\040 for a space) of the mounts file.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var out strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				out.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		out.WriteByte(s[i])
	}
	return out.String()
}
