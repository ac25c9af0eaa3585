package results

import (
	"bytes"
	"strings"
	"testing"
)

func TestRunOutcome(t *testing.T) {
	mism := func(n int64, offs ...int64) *Verify {
		v := &Verify{Algorithm: "crc32c", Checked: 2048, Mismatches: n}
		for _, o := range offs {
			v.First = append(v.First, Mismatch{Offset: o, Reason: "no verify header"})
		}
		return v
	}
	tests := []struct {
		name    string
		run     Run
		want    Status
		problem string
	}{
		{"complete", Run{Complete: true}, StatusOK, ""},
		{"complete, verify clean", Run{Complete: true, Verify: mism(0)}, StatusOK, ""},
		{"incomplete", Run{Error: "no I/O completed for 1m0s: target stalled"}, StatusIncomplete, "no I/O completed for 1m0s: target stalled"},
		{"incomplete without error", Run{}, StatusIncomplete, "incomplete, no error recorded"},
		{"verify failed", Run{Complete: true, Verify: mism(2048, 0, 4096, 8192, 12288)}, StatusVerifyFailed,
			"verify: 2048 of 2048 blocks mismatched (first at offsets 0, 4096, 8192, …)"},
		{"verify failed, one block", Run{Complete: true, Verify: &Verify{Checked: 10, Mismatches: 1, First: []Mismatch{{Offset: 512}}}},
			StatusVerifyFailed, "verify: 1 of 10 blocks mismatched (first at offset 512)"},
		{"verify failed and incomplete: verify wins", Run{Error: "x", Verify: mism(3, 0)}, StatusVerifyFailed,
			"verify: 3 of 2048 blocks mismatched (first at offsets 0, …)"},
		// A stored status never overrides what the document records.
		{"stored ok is not trusted", Run{Complete: true, Status: StatusOK, Verify: mism(1)}, StatusVerifyFailed, "verify: 1 of 2048 blocks mismatched"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.run.Outcome(); got != tc.want {
				t.Errorf("Outcome() = %q, want %q", got, tc.want)
			}
			if got := tc.run.OK(); got != (tc.want == StatusOK) {
				t.Errorf("OK() = %v", got)
			}
			if got := tc.run.Problem(); got != tc.problem {
				t.Errorf("Problem() = %q, want %q", got, tc.problem)
			}
		})
	}
}

func TestSaveWritesStatus(t *testing.T) {
	r := testRun("mem://", 100)
	r.Verify = &Verify{Algorithm: "crc32c", Checked: 4, Mismatches: 4}
	path, err := Save(t.TempDir(), r)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if back.Status != StatusVerifyFailed || back.OK() {
		t.Errorf("saved status %q, OK=%v", back.Status, back.OK())
	}
}

func TestCompareRejectsCandidateWithVerifyMismatches(t *testing.T) {
	for _, thresholds := range []string{"", "iops<-10%"} {
		t.Run("thresholds="+thresholds, func(t *testing.T) {
			base := testRuns("mem://", 1000, 1010)
			// The candidate is much faster, but one of its runs read back garbage.
			cand := testRuns("mem://", 5000, 5010, 5020)
			cand[1].Verify = &Verify{Algorithm: "crc32c", Checked: 2048, Mismatches: 2048, First: []Mismatch{{Offset: 0}, {Offset: 4096}}}
			th, err := ParseThresholds(thresholds)
			if err != nil {
				t.Fatal(err)
			}
			cmp, err := Compare(base, cand, CompareOptions{Thresholds: th})
			if err != nil {
				t.Fatal(err)
			}
			if !cmp.Regressed() {
				t.Fatal("a candidate with verify mismatches passed")
			}
			f := cmp.Failures()
			if len(f) != 1 || f[0].Change != nil || !strings.Contains(f[0].Check.Reason, "verify: 2048 of 2048 blocks mismatched (first at offsets 0, 4096, …)") ||
				!strings.Contains(f[0].Check.Reason, cand[1].ID) {
				t.Fatalf("failures %+v", f)
			}
			if len(cmp.Excluded) != 1 || cmp.Excluded[0].Status != StatusVerifyFailed {
				t.Errorf("excluded %+v", cmp.Excluded)
			}
			if ch := findChange(t, cmp, "read", "iops"); ch.Cand.N != 2 {
				t.Errorf("the run with mismatches counted in the figures: n=%d", ch.Cand.N)
			}
			var junit bytes.Buffer
			if err := WriteJUnit(&junit, cmp); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(junit.String(), `type="verify-failed"`) {
				t.Errorf("JUnit has no verify failure:\n%s", junit.String())
			}
		})
	}
	// Mismatches on the base side leave those runs out but do not fail the candidate.
	base := testRuns("mem://", 1000, 1010)
	base[0].Verify = &Verify{Checked: 1, Mismatches: 1}
	cmp, err := Compare(base, testRuns("mem://", 1000, 1010), CompareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if cmp.Regressed() || len(cmp.Excluded) != 1 || cmp.Excluded[0].Side != "base" {
		t.Errorf("base mismatches: regressed=%v excluded=%+v", cmp.Regressed(), cmp.Excluded)
	}
}
