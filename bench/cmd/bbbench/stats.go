package main

import (
	"math"
	"slices"
	"strings"
)

// Stat summarizes one metric of one benchmark across the rounds.
// A Stat is a plain value.
type Stat struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	Runs   int     `json:"runs"`
}

// Spread is (max-min)/median: the relative width of the range of the runs.
// It is 0 for a single run and NaN for a zero median.
func (s Stat) Spread() float64 {
	if s.Median == 0 {
		return math.NaN()
	}
	return (s.Max - s.Min) / math.Abs(s.Median)
}

// Median returns the median of values (the mean of the two middle ones for
// an even count) without reordering the caller's slice. It is NaN for none.
func Median(values []float64) float64 {
	if len(values) == 0 {
		return math.NaN()
	}
	v := slices.Clone(values)
	slices.Sort(v)
	mid := len(v) / 2
	if len(v)%2 == 1 {
		return v[mid]
	}
	return (v[mid-1] + v[mid]) / 2
}

// Summarize returns the Stat of values.
func Summarize(values []float64) Stat {
	if len(values) == 0 {
		return Stat{Median: math.NaN(), Min: math.NaN(), Max: math.NaN()}
	}
	return Stat{
		Median: Median(values),
		Min:    slices.Min(values),
		Max:    slices.Max(values),
		Runs:   len(values),
	}
}

// Summary is every metric of one benchmark, summarized across its runs.
// A Summary is not modified after SummarizeSamples returns it; share it
// read-only.
type Summary struct {
	Package string          `json:"package"`
	Name    string          `json:"name"`
	Runs    int             `json:"runs"`
	Units   []string        `json:"units"` // in the order the result lines gave them
	Metrics map[string]Stat `json:"metrics"`
}

// Key identifies a benchmark across packages.
func (s Summary) Key() string { return s.Package + " " + s.Name }

// SummarizeSamples groups samples by package and name (in order of first
// appearance) and summarizes each unit.
func SummarizeSamples(samples []Sample) []Summary {
	type acc struct {
		summary Summary
		values  map[string][]float64
	}
	var order []string
	byKey := map[string]*acc{}
	for _, s := range samples {
		key := s.Package + " " + s.Name
		a, ok := byKey[key]
		if !ok {
			a = &acc{summary: Summary{Package: s.Package, Name: s.Name}, values: map[string][]float64{}}
			byKey[key] = a
			order = append(order, key)
		}
		a.summary.Runs++
		for _, m := range s.Metrics {
			if _, seen := a.values[m.Unit]; !seen {
				a.summary.Units = append(a.summary.Units, m.Unit)
			}
			a.values[m.Unit] = append(a.values[m.Unit], m.Value)
		}
	}
	out := make([]Summary, 0, len(order))
	for _, key := range order {
		a := byKey[key]
		a.summary.Metrics = make(map[string]Stat, len(a.values))
		for unit, vs := range a.values {
			a.summary.Metrics[unit] = Summarize(vs)
		}
		out = append(out, a.summary)
	}
	return out
}

// HigherIsBetter says how to read a unit: rates (anything per second, also
// when a suffix names whose rate it is, as in MB/s-journal) are better high;
// times, bytes and allocations per op, and latencies are better low.
func HigherIsBetter(unit string) bool {
	return strings.HasSuffix(unit, "/s") || strings.Contains(unit, "/s-")
}

// Advantage is how many times better a is than b in unit: a/b for a rate,
// b/a for a cost. Above 1, a wins. It is NaN when either is missing or zero.
func Advantage(unit string, a, b float64) float64 {
	if a == 0 || b == 0 || math.IsNaN(a) || math.IsNaN(b) {
		return math.NaN()
	}
	if HigherIsBetter(unit) {
		return a / b
	}
	return b / a
}
