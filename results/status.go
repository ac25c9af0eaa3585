package results

import (
	"fmt"
	"strconv"
	"strings"
)

// Status is a run's outcome. Only StatusOK counts as a good run: its figures enter medians
// and comparisons, and it passes CI.
type Status string

const (
	// StatusOK: the run completed and its verify (if any) found no mismatch.
	StatusOK Status = "ok"
	// StatusIncomplete: the run ended early (target error, stall, interruption); Error says
	// why.
	StatusIncomplete Status = "incomplete"
	// StatusVerifyFailed: verify found blocks that did not hold what was written. It wins
	// over StatusIncomplete: corrupted data matters more than a short run.
	StatusVerifyFailed Status = "verify_failed"
)

// Outcome judges the run from what it recorded (Complete, Verify), so that documents
// written before Status existed, or edited by hand, are judged the same way. It is the one
// definition every consumer (CLI exit status, tables, HTML, suites, compare) uses.
func (r *Run) Outcome() Status {
	switch {
	case r.Verify != nil && r.Verify.Mismatches > 0:
		return StatusVerifyFailed
	case !r.Complete:
		return StatusIncomplete
	}
	return StatusOK
}

// OK reports whether the run is a good run: complete and without verify mismatches.
func (r *Run) OK() bool { return r.Outcome() == StatusOK }

// Problem says in one line why the run is not OK ("" when it is): the verify summary
// (see Verify.Problem) or the error it ended with.
func (r *Run) Problem() string {
	switch r.Outcome() {
	case StatusVerifyFailed:
		return r.Verify.Problem()
	case StatusIncomplete:
		if e := strings.Join(strings.Fields(r.Error), " "); e != "" {
			return e
		}
		return "incomplete, no error recorded"
	}
	return ""
}

// Problem is "verify: 2048 of 2048 blocks mismatched (first at offsets 0, 4096, …)", or ""
// when no block mismatched.
func (v *Verify) Problem() string {
	if v == nil || v.Mismatches == 0 {
		return ""
	}
	s := fmt.Sprintf("verify: %d of %d blocks mismatched", v.Mismatches, max(v.Checked, v.Mismatches))
	if len(v.First) > 0 {
		const shown = 3
		offs := make([]string, 0, shown+1)
		for i, m := range v.First {
			if i == shown {
				break
			}
			offs = append(offs, strconv.FormatInt(m.Offset, 10))
		}
		if v.Mismatches > int64(len(offs)) {
			offs = append(offs, "…")
		}
		word := "offsets"
		if len(offs) == 1 {
			word = "offset"
		}
		s += " (first at " + word + " " + strings.Join(offs, ", ") + ")"
	}
	return s
}
