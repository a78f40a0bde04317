package main

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// formatValue prints a figure with three significant digits and a k/M/G
// suffix: 5836 -> "5.84k", 0.0723 -> "0.0723", 1234567 -> "1.23M".
func formatValue(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "-"
	}
	abs := math.Abs(v)
	switch {
	case abs >= 1e9:
		return trimNumber(v/1e9) + "G"
	case abs >= 1e6:
		return trimNumber(v/1e6) + "M"
	case abs >= 1e4:
		return trimNumber(v/1e3) + "k"
	default:
		return trimNumber(v)
	}
}

// trimNumber prints three significant digits (all the integer digits of
// numbers from 1000 to 9999) without a trailing ".0".
func trimNumber(v float64) string {
	abs := math.Abs(v)
	var s string
	switch {
	case abs == 0:
		return "0"
	case abs >= 1000:
		s = strconv.FormatFloat(v, 'f', 0, 64)
	case abs >= 100:
		s = strconv.FormatFloat(v, 'f', 0, 64)
	case abs >= 10:
		s = strconv.FormatFloat(v, 'f', 1, 64)
	case abs >= 1:
		s = strconv.FormatFloat(v, 'f', 2, 64)
	default:
		s = strconv.FormatFloat(v, 'g', 3, 64)
	}
	if strings.Contains(s, ".") && !strings.ContainsAny(s, "e") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// formatFigure prints a figure in its unit's terms: a time per op or a
// latency as a duration, anything else as formatValue does.
func formatFigure(unit string, v float64) string {
	if unit == "ns/op" {
		return formatDuration(v)
	}
	if _, scale, ok := timeUnit(unit); ok {
		return formatDuration(v * scale)
	}
	return formatValue(v)
}

// timeUnit reads a unit that is a time: "p99-ns" is the p99 in
// nanoseconds, "p99-ms" in milliseconds. It returns what is measured
// ("p99"), the factor to nanoseconds, and whether the unit is one.
func timeUnit(unit string) (what string, scale float64, ok bool) {
	switch {
	case strings.HasSuffix(unit, "-ns"):
		return strings.TrimSuffix(unit, "-ns"), 1, true
	case strings.HasSuffix(unit, "-ms"):
		return strings.TrimSuffix(unit, "-ms"), 1e6, true
	}
	return "", 0, false
}

// formatDuration prints nanoseconds as a readable duration: 148479 -> "148µs".
func formatDuration(ns float64) string {
	switch {
	case math.IsNaN(ns):
		return "-"
	case ns >= 1e9:
		return trimNumber(ns/1e9) + "s"
	case ns >= 1e6:
		return trimNumber(ns/1e6) + "ms"
	case ns >= 1e3:
		return trimNumber(ns/1e3) + "µs"
	default:
		return trimNumber(ns) + "ns"
	}
}

// formatRange prints a Stat's range and spread, (max-min)/median:
// "5.61k-6.02k (6.8%)", with times in a unit of time: "1.2ms-1.5ms (22%)".
func formatRange(unit string, s Stat) string {
	if s.Runs <= 1 {
		return "one run"
	}
	lo, hi := formatFigure(unit, s.Min), formatFigure(unit, s.Max)
	spread := s.Spread()
	sp := "-"
	if !math.IsNaN(spread) {
		sp = fmt.Sprintf("%.1f%%", spread*100)
	}
	return fmt.Sprintf("%s-%s (%s)", lo, hi, sp)
}

// formatRatio prints an advantage: "2.31x"; "-" when there is none.
func formatRatio(r float64) string {
	if math.IsNaN(r) || math.IsInf(r, 0) {
		return "-"
	}
	if r >= 100 {
		return fmt.Sprintf("%.0fx", r)
	}
	if r >= 10 {
		return fmt.Sprintf("%.1fx", r)
	}
	return fmt.Sprintf("%.2fx", r)
}

// Ratio is a float64 that is null in JSON when it is NaN (encoding/json
// rejects NaN).
// A Ratio is a plain value.
type Ratio float64

// MarshalJSON writes null for NaN and infinities.
func (r Ratio) MarshalJSON() ([]byte, error) {
	f := float64(r)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return []byte("null"), nil
	}
	return json.Marshal(f)
}

// UnmarshalJSON reads null as NaN.
func (r *Ratio) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*r = Ratio(math.NaN())
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	*r = Ratio(f)
	return nil
}
