package main

import (
	"math"
	"slices"
	"strings"
)

// Group is one comparison: BadBatch's benchmark beside its peers' and the
// machine's limit, all in one unit, matched row by row.
// A Group is read-only once built (Groups returns fresh ones): safe to share between goroutines.
type Group struct {
	ID       string // names the plot file: docs/img/<ID>.svg
	Title    string
	Question string // what the comparison answers, in one sentence
	Unit     string // the unit compared, e.g. "records/s"
	// Series lists the contenders; the one with Base set is BadBatch's and
	// every other contender's advantage is computed against it.
	Series []Series
	// Rows are the rows every series is expected to have (the remaining path
	// elements, e.g. "producers=4/size=100B"); a series without one shows it
	// as not run. Rows the results have beyond these are shown as well,
	// unless OnlyRows is set.
	Rows []string
	// OnlyRows keeps the comparison to Rows: a contender's results at other
	// matrix points are left to the full table (the single node's
	// producers=1..16 beside a cluster measured at 4 only).
	OnlyRows bool
	// Nodes, when set, is the number of nodes of each cluster compared, all
	// of them on this one machine: the report says beside the figure, the
	// table and the headline that they share its cores and its disk.
	Nodes int
	Limit *Limit
	// Goal, when set, is the target BadBatch's figure is held to: the
	// report says, beside the table and in the headline, whether the
	// median meets it.
	Goal *Goal
	// Notes are stated under the table: how to read it and what is not
	// comparable.
	Notes []string
	// Why explains, in "Where BadBatch loses", what is known of the reasons
	// when a contender beats BadBatch in this comparison.
	Why string
}

// Series is one contender of a group.
// A Series is a plain value, read-only once built.
type Series struct {
	Label   string
	Package string // the package directory relative to the repository root
	// Match is the function name followed by the path elements that select
	// this contender, e.g. "BenchmarkNATSPublish/sync=always". The elements
	// may appear anywhere in the name; the other elements form the row.
	Match string
	Base  bool
	// Variant marks another configuration of BadBatch itself: it is shown
	// beside the base but is not a peer, so it gets no advantage ratio.
	Variant bool
	// Reference marks a yardstick that is not a contender (the physical
	// limit measured at the same matrix point): no advantage ratio.
	Reference bool
	// OtherProcess marks a contender measured in another test binary than
	// the base (bench/peers) and not paired with a BadBatch figure from its
	// own process: it is shown but given no advantage ratio, because the
	// same code has been measured 1.5-2x apart in the two binaries.
	OtherProcess bool
	// NotDurable marks a contender that acknowledges before its data is
	// synced. It is shown, labelled, and never given an advantage ratio.
	NotDurable bool
	// BaseRatio marks a Variant that the base is measured against: its
	// cell gets the base's median over its own (Cell.BaseOver), such as a
	// cluster's records/s over a single node's. It is still BadBatch, not a
	// peer: no advantage, never a loss.
	BaseRatio bool
	// Config states the contender's configuration, in the report.
	Config string
	// Unit, when set, is the metric this contender's figure is read from,
	// shown in the group's unit: several contenders measured inside one
	// benchmark report one metric each (MB/s-journal, MB/s-file, ...).
	Unit string
	// Rows, when set, are the only rows this contender has in the matrix
	// (the others show a dash, not "not run"); by default it has the
	// group's Rows.
	Rows []string
	// PairedWith, when set, is the Label of another series of the group:
	// BadBatch measured by the same benchmark as this contender, in the
	// same process (a peer module's benchmark that interleaves the two).
	// This contender's advantage is taken against that series, row by row,
	// instead of against the group's base, which ran in another process;
	// neither of the two is divided by a per-row Limit, which also ran in
	// another process.
	PairedWith string
}

// Limit is the physical limit a group's figures are divided by: either one
// benchmark for every row (Name), or, per row, the benchmark that Match
// selects at the same matrix point (for example a plain file's write at the
// same batch and size).
// A Limit is a plain value, read-only once built.
type Limit struct {
	Package string
	Name    string // the limit benchmark's full name
	Match   string // or: like Series.Match, paired row by row
	Unit    string // its unit, e.g. "fsyncs/s"
	// Per names the ratio column, e.g. "records per fsync" for records/s
	// divided by fsyncs/s.
	Per string
	// Percent shows the ratio as a percentage (for a share of a bandwidth).
	Percent bool
}

// Goal is a target for the base's figure, in the group's unit: Bound must
// be met and Aim is what the design aims for (for a cost, at most; for a
// rate, at least). With Over, the target is instead for BadBatch's
// advantage over one contender: how many times better the base's figure is
// than that contender's at the same matrix point (at least Bound).
// A Goal is a plain value, read-only once built.
type Goal struct {
	Text  string // as the report says it, e.g. "p99 under 2 s, aim 1 s"
	Bound float64
	Aim   float64 // equal to Bound when there is no aim beyond the goal
	// Over, when set, is the Label of the series whose figure the base's
	// advantage is held to Bound and Aim.
	Over string
}

// verdict says how a median compares with the goal: "meets the aim",
// "meets the goal, not the aim", or "MISSES the goal" ("meets the goal"
// when the aim is the goal).
func (g *Goal) verdict(unit string, st Stat) string {
	return g.judge(HigherIsBetter(unit), st.Median)
}

// judge is verdict for a figure v where higher (or, !higher, lower) is
// better.
func (g *Goal) judge(higher bool, v float64) string {
	within := func(v, target float64) bool {
		if higher {
			return v >= target
		}
		return v <= target
	}
	switch {
	case math.IsNaN(v):
		return "not measured"
	case g.Aim == g.Bound && within(v, g.Bound):
		return "meets the goal"
	case within(v, g.Aim):
		return "meets the aim"
	case within(v, g.Bound):
		return "meets the goal, not the aim"
	default:
		return "MISSES the goal"
	}
}

// goalFigure is what a row holds to the group's goal: the base's median
// and worst round, or with Goal.Over the base's advantage over that
// contender, median over median and worst round over best round. ok is
// false, with why, when the row cannot say.
func (c Comparison) goalFigure(row Row) (median, worstRound float64, why string, ok bool) {
	g := c.Group
	base := slices.IndexFunc(g.Series, func(s Series) bool { return s.Base })
	if base < 0 || row.Cells[base].Status != CellOK {
		return 0, 0, "", false
	}
	b := row.Cells[base].Stat
	if g.Goal.Over == "" {
		return b.Median, worst(g.Unit, b), "", true
	}
	over := slices.IndexFunc(g.Series, func(s Series) bool { return s.Label == g.Goal.Over })
	if over < 0 {
		return 0, 0, g.Goal.Over + ": no such contender", false
	}
	if o := row.Cells[over]; o.Status != CellOK {
		status := o.Status
		if o.Message != "" {
			status += ": " + o.Message
		}
		return 0, 0, g.Goal.Over + ": " + status, false
	}
	o := row.Cells[over].Stat
	return Advantage(g.Unit, b.Median, o.Median), Advantage(g.Unit, worst(g.Unit, b), best(g.Unit, o)), "", true
}

// goalVerdict is a row's verdict against the group's goal.
func (c Comparison) goalVerdict(row Row) string {
	v, _, _, ok := c.goalFigure(row)
	if !ok {
		return "not measured"
	}
	if c.Group.Goal.Over != "" {
		return c.Group.Goal.judge(true, v)
	}
	return c.Group.Goal.verdict(c.Group.Unit, Stat{Median: v})
}

// PackageStatus is what the runner learnt about one package.
// A PackageStatus is a plain value.
type PackageStatus struct {
	Dir        string `json:"dir"` // relative to the repository root
	Present    bool   `json:"present"`
	Built      bool   `json:"built"`
	BuildError string `json:"build_error,omitempty"`
}

// nan is the Ratio of a pair that cannot be compared.
var nan = Ratio(math.NaN())

// Cell states.
const (
	CellOK         = "ok"
	CellNoSuchBenc = "not run (no such benchmark)"
	CellNoPackage  = "not run (package not present)"
	CellNoBuild    = "not run (package did not build)"
	CellFailed     = "failed"
	CellSkipped    = "not run" // the benchmark said why (Output.Skips)
	CellNotInSet   = "-"       // the contender has no such matrix point by design
)

// Cell is one contender's figure in one row.
// A Cell is a plain value.
type Cell struct {
	Status  string `json:"status"`
	Message string `json:"message,omitempty"` // the failure's message
	Name    string `json:"name,omitempty"`    // the benchmark it came from
	Stat    Stat   `json:"stat"`
	P99     *Stat  `json:"p99_ns,omitempty"` // the p99-ns metric, when the benchmark reports it
	Adv     Ratio  `json:"advantage"`        // BadBatch's advantage over this contender; NaN when not comparable
	ToLimit Ratio  `json:"to_limit"`         // the figure divided by the limit; NaN without one
	// BaseOver is the base's median over this cell's, for a series with
	// BaseRatio when both ran; nil otherwise.
	BaseOver *float64 `json:"base_over,omitempty"`
}

// Row is one row of a comparison: the same matrix point for every series.
// A Row is not modified after Compare returns it; share it read-only.
type Row struct {
	Key   string `json:"key"`
	Cells []Cell `json:"cells"` // one per series, in the group's order
}

// Comparison is a group filled in with the run's results.
// A Comparison is not modified after Compare returns it; share it read-only.
type Comparison struct {
	Group *Group `json:"-"`
	ID    string `json:"id"`
	Rows  []Row  `json:"rows"`
	// LimitStat is the limit's figure; LimitStatus says why it is missing.
	LimitStat   *Stat  `json:"limit,omitempty"`
	LimitStatus string `json:"limit_status,omitempty"`
	// Beside is said beside the comparison's figure, table and headline
	// (Report.Analyze sets it from the group and the machine); "" for none.
	Beside string `json:"beside,omitempty"`
}

// nameElements splits a benchmark name into its function and path elements.
func nameElements(name string) (string, []string) {
	parts := strings.Split(name, "/")
	return parts[0], parts[1:]
}

// matchSeries reports whether the benchmark name belongs to the series and,
// if it does, returns its row key: the path elements that Match did not fix,
// in their order.
func matchSeries(s Series, pkg, name string) (string, bool) {
	if pkg != s.Package {
		return "", false
	}
	wantFunc, fixed := nameElements(s.Match)
	fn, elems := nameElements(name)
	if fn != wantFunc {
		return "", false
	}
	rest := slices.Clone(elems)
	for _, f := range fixed {
		i := slices.Index(rest, f)
		if i < 0 {
			return "", false
		}
		rest = slices.Delete(rest, i, i+1)
	}
	return strings.Join(rest, "/"), true
}

// Results is everything one run produced, indexed for the comparisons.
// Results is only read by Compare: safe for concurrent reads, not for
// concurrent writes.
type Results struct {
	Summaries []Summary
	Failures  []Failure
	Skips     []Failure
	Packages  map[string]PackageStatus
}

// find returns the summary of a benchmark.
func (r *Results) find(pkg, name string) (Summary, bool) {
	for _, s := range r.Summaries {
		if s.Package == pkg && s.Name == name {
			return s, true
		}
	}
	return Summary{}, false
}

// missing explains why the benchmark fn/elems... of pkg has no result. A
// failure, or a skip that said why, covers it when it is the benchmark
// itself or one of its ancestors (the same function, with a subset of its
// elements).
func (r *Results) missing(pkg, fn string, elems []string) Cell {
	ps, ok := r.Packages[pkg]
	switch {
	case !ok || !ps.Present:
		return Cell{Status: CellNoPackage}
	case !ps.Built:
		return Cell{Status: CellNoBuild, Message: buildErrorLine(ps.BuildError)}
	}
	covers := func(f Failure) bool {
		ffn, felems := nameElements(f.Name)
		if f.Package != pkg || ffn != fn {
			return false
		}
		for _, e := range felems {
			if !slices.Contains(elems, e) {
				return false
			}
		}
		return true
	}
	for _, f := range r.Failures {
		if covers(f) {
			return Cell{Status: CellFailed, Name: f.Name, Message: firstLine(f.Message)}
		}
	}
	for _, f := range r.Skips {
		if covers(f) {
			return Cell{Status: CellSkipped, Name: f.Name, Message: firstLine(f.Message)}
		}
	}
	return Cell{Status: CellNoSuchBenc}
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// Compare fills a group in. Rows come in the group's order, then in the
// order the results first show them.
func Compare(g *Group, r *Results) Comparison {
	c := Comparison{Group: g, ID: g.ID}
	// cells[series][row]
	cells := make([]map[string]Cell, len(g.Series))
	rowOrder := slices.Clone(g.Rows)
	for i, s := range g.Series {
		cells[i] = map[string]Cell{}
		for _, sum := range r.Summaries {
			row, ok := matchSeries(s, sum.Package, sum.Name)
			if !ok || g.OnlyRows && !slices.Contains(g.Rows, row) {
				continue
			}
			unit := g.Unit
			if s.Unit != "" {
				unit = s.Unit
			}
			st, ok := sum.Metrics[unit]
			if !ok {
				continue
			}
			cell := Cell{Status: CellOK, Name: sum.Name, Stat: st, Adv: nan, ToLimit: nan}
			if p99, ok := sum.Metrics["p99-ns"]; ok {
				cell.P99 = &p99
			}
			cells[i][row] = cell
			if !slices.Contains(rowOrder, row) {
				rowOrder = append(rowOrder, row)
			}
		}
	}
	perRow := map[string]Stat{}
	if g.Limit != nil && g.Limit.Match != "" {
		lim := Series{Package: g.Limit.Package, Match: g.Limit.Match}
		for _, sum := range r.Summaries {
			if row, ok := matchSeries(lim, sum.Package, sum.Name); ok {
				if st, ok := sum.Metrics[g.Limit.Unit]; ok {
					perRow[row] = st
				}
			}
		}
		if len(perRow) == 0 {
			fn, elems := nameElements(g.Limit.Match)
			c.LimitStatus = r.missing(g.Limit.Package, fn, elems).Status
		}
	} else if g.Limit != nil {
		if sum, ok := r.find(g.Limit.Package, g.Limit.Name); ok {
			if st, ok := sum.Metrics[g.Limit.Unit]; ok {
				c.LimitStat = &st
			}
		}
		if c.LimitStat == nil {
			fn, elems := nameElements(g.Limit.Name)
			c.LimitStatus = r.missing(g.Limit.Package, fn, elems).Status
		}
	}
	if len(rowOrder) == 0 {
		// Nothing ran and no rows are expected: one row says why.
		rowOrder = []string{""}
	}
	for _, key := range rowOrder {
		row := Row{Key: key, Cells: make([]Cell, len(g.Series))}
		for i, s := range g.Series {
			cell, ok := cells[i][key]
			if !ok && s.Rows != nil && !slices.Contains(s.Rows, key) {
				cell, ok = Cell{Status: CellNotInSet, Adv: nan, ToLimit: nan}, true
			}
			if !ok {
				fn, elems := nameElements(s.Match)
				if key != "" {
					elems = append(elems, strings.Split(key, "/")...)
				}
				cell = r.missing(s.Package, fn, elems)
				cell.Adv, cell.ToLimit = nan, nan
			}
			row.Cells[i] = cell
		}
		for i, s := range g.Series {
			cell := &row.Cells[i]
			if cell.Status != CellOK {
				continue
			}
			limit := c.LimitStat
			if st, ok := perRow[key]; ok {
				limit = &st
			}
			// A pair measured in its own process, or a contender from
			// another process, is not divided by a limit measured at the
			// same point in another one.
			if limit != nil && !g.paired(i) && !s.OtherProcess && HigherIsBetter(g.Unit) && HigherIsBetter(g.Limit.Unit) && limit.Median > 0 {
				cell.ToLimit = Ratio(cell.Stat.Median / limit.Median)
			}
			base := g.baseOf(i)
			if s.BaseRatio && base >= 0 && i != base {
				if b := row.Cells[base]; b.Status == CellOK && b.Stat.Median > 0 && cell.Stat.Median > 0 {
					v := b.Stat.Median / cell.Stat.Median
					cell.BaseOver = &v
				}
			}
			if base < 0 || i == base || s.Variant || s.Reference || s.OtherProcess || s.NotDurable || g.Series[base].NotDurable {
				continue
			}
			if b := row.Cells[base]; b.Status == CellOK {
				cell.Adv = Ratio(Advantage(g.Unit, b.Stat.Median, cell.Stat.Median))
			}
		}
		c.Rows = append(c.Rows, row)
	}
	return c
}

// baseOf is the index of the series contender i's advantage is taken
// against: its PairedWith series when it names one, else the group's base;
// -1 when there is none.
func (g *Group) baseOf(i int) int {
	if p := g.Series[i].PairedWith; p != "" {
		return slices.IndexFunc(g.Series, func(s Series) bool { return s.Label == p })
	}
	return slices.IndexFunc(g.Series, func(s Series) bool { return s.Base })
}

// paired reports whether series i is one of a pair measured together in
// its own benchmark: it has a PairedWith, or another series names it.
func (g *Group) paired(i int) bool {
	return g.Series[i].PairedWith != "" ||
		slices.ContainsFunc(g.Series, func(s Series) bool { return s.PairedWith == g.Series[i].Label })
}

// Loss is a row where a durable contender beats BadBatch.
// A Loss is a plain value.
type Loss struct {
	Group *Group
	Row   string
	Peer  string
	By    float64 // how many times better the peer's median is
	// Overlap is set when the ranges of the rounds overlap: BadBatch's best
	// round was as good as the peer's worst, so the run does not settle
	// the order.
	Overlap bool
}

// Losses lists every row of every comparison where BadBatch's advantage
// over a comparable contender is below 1.
func Losses(cs []Comparison) []Loss {
	var out []Loss
	for _, c := range cs {
		for _, row := range c.Rows {
			for i, cell := range row.Cells {
				// Adv is NaN for the base, variants, references and
				// contenders that are not durable.
				adv := float64(cell.Adv)
				if cell.Status != CellOK || math.IsNaN(adv) || adv >= 1 {
					continue
				}
				b := row.Cells[c.Group.baseOf(i)].Stat
				overlap := b.Min <= cell.Stat.Max && cell.Stat.Min <= b.Max
				out = append(out, Loss{Group: c.Group, Row: row.Key, Peer: c.Group.Series[i].Label, By: 1 / adv, Overlap: overlap})
			}
		}
	}
	return out
}
