package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The append-session tables over a captured run (testdata/sessions.txt:
// three rounds of BenchmarkSessionAppend and BenchmarkRecordBatchCodec,
// 2026-12-05 21:39 UTC).
func TestCompareSessions(t *testing.T) {
	rep := dsReport(t, "sessions.txt")

	c := comparisonByID(t, rep.Comparisons, "session-noop")
	row := c.Rows[0]
	require.Equal(t, "batch=1/size=100B", row.Key)
	v, _, _, ok := c.goalFigure(row)
	require.True(t, ok)
	assert.InDelta(t, 44276.0/76290, v, 1e-3)
	assert.Equal(t, "meets the goal", c.goalVerdict(row))

	c = comparisonByID(t, rep.Comparisons, "session-post")
	require.Len(t, c.Rows, 1)
	v, _, _, ok = c.goalFigure(c.Rows[0])
	require.True(t, ok)
	assert.InDelta(t, 44276.0/13937, v, 1e-3)
	assert.Equal(t, "MISSES the goal", c.goalVerdict(c.Rows[0]), "about 3.2x, not 5x")

	for _, id := range []string{"session-batch100", "record-codec"} {
		c := comparisonByID(t, rep.Comparisons, id)
		require.Len(t, c.Rows, 1, id)
		for i, cell := range c.Rows[0].Cells {
			assert.Equal(t, CellOK, cell.Status, "%s %s", id, c.Group.Series[i].Label)
		}
	}
}
