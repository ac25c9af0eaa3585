package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/vmstorbench/vmstorbench/results"
)

// One test per class of the exit contract (main.go), on the function every command uses.
func TestRunExitClasses(t *testing.T) {
	ok := &results.Run{Complete: true}
	incomplete := &results.Run{Complete: false, Error: "storage: nfs://…: server refuses connections at 3.9 s"}
	corrupt := &results.Run{Complete: true, Verify: &results.Verify{Checked: 8, Mismatches: 2}}
	migrated := &results.Migration{Mode: "precopy", Outcome: "completed"}
	failedMig := &results.Migration{Mode: "precopy", Outcome: "failed", Failure: "destination QEMU exited at 3.2 s (signal: killed)"}
	cancelled := &results.Migration{Mode: "precopy", Outcome: "cancelled"}
	baseline := &results.Migration{Mode: "none", Outcome: "none"}
	for _, c := range []struct {
		name string
		run  *results.Run
		mig  *results.Migration
		err  error
		want int
	}{
		{"plain run ok", ok, nil, nil, exitOK},
		{"migration completed", ok, migrated, nil, exitOK},
		{"baseline without migration", ok, baseline, nil, exitOK},
		{"run incomplete without an error returned", incomplete, failedMig, nil, exitFailed},
		{"run error", incomplete, nil, errors.New("boom"), exitFailed},
		{"no result at all", nil, nil, errors.New("boom"), exitFailed},
		{"migration failed, workload intact", ok, failedMig, nil, exitMigration},
		{"migration cancelled at the deadline", ok, cancelled, nil, exitMigration},
		{"verify wins over everything", corrupt, failedMig, errors.New("boom"), exitVerify},
	} {
		run := c.run
		if run != nil && c.mig != nil {
			withMig := *run
			withMig.Migration = c.mig
			run = &withMig
		}
		if got := runExit(run, c.err); got != c.want {
			t.Errorf("%s: exit %d, want %d", c.name, got, c.want)
		}
	}
	order := []int{exitOK, exitMigration, exitFailed, exitUsage, exitVerify, exitInterrupted}
	for i := range order {
		for j := range order {
			want := order[max(i, j)]
			if got := worseExit(order[i], order[j]); got != want {
				t.Errorf("worseExit(%d, %d) = %d, want %d", order[i], order[j], got, want)
			}
		}
	}
}

// A flag cobra cannot parse is bad input for every command; every command that runs
// something shows the contract in its --help.
func TestExitContractInHelpAndFlags(t *testing.T) {
	for _, args := range [][]string{{"run", "--no-such-flag"}, {"migrate", "--no-such-flag"}, {"suite", "run", "--no-such-flag"}, {"migrate", "--deadline", "soon"}} {
		if _, _, err := runCLI(t, args...); exitCode(err) != exitUsage {
			t.Errorf("%v: exit %d (%v), want %d", args, exitCode(err), err, exitUsage)
		}
	}
	for _, args := range [][]string{{"run", "--help"}, {"migrate", "--help"}, {"suite", "run", "--help"}} {
		out, _, err := runCLI(t, args...)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		for _, want := range []string{"Exit status", "4    migrate: the migration failed", "130  interrupted"} {
			if !strings.Contains(out, want) {
				t.Errorf("%v: help lacks %q", args, want)
			}
		}
	}
}
