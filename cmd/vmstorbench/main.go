// Command vmstorbench benchmarks the shared storage that holds virtual-machine images.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	_ "github.com/vmstorbench/vmstorbench/backends/all"
	"github.com/vmstorbench/vmstorbench/internal/version"
	"github.com/vmstorbench/vmstorbench/results"
	"github.com/vmstorbench/vmstorbench/runner"
	"github.com/vmstorbench/vmstorbench/testbed"
)

// defaultResultsDir is where run, migrate and suite run save result documents unless told
// otherwise: a name of its own, so that run from the repository root the documents never
// land among the source files (the results package's folder is "results").
const defaultResultsDir = "vmstorbench-results"

// Exit statuses: one contract for run, migrate and suite run (compare uses 0, 1 and 2 with
// the same meanings). exitStatusHelp prints it in each command's --help; the README's "Exit
// status" section repeats it. With several runs the worst class wins, in the order
// interrupted > verify > bad input > failed > migration failed > success (worseExit).
const (
	// exitOK: every run completed (and every migration completed); verify found nothing.
	exitOK = 0
	// exitFailed: a run ended early or failed (target error, stall, a QEMU or the storage
	// server failing mid-run), so its result document says complete: false; or compare /
	// a suite's baseline found a regression.
	exitFailed = 1
	// exitUsage: bad input, refused before anything ran: flags, arguments, option values,
	// a suite file, result files compare cannot read or compare.
	exitUsage = 2
	// exitVerify: verify found blocks that did not read back as written (data corruption);
	// it wins over every other failure.
	exitVerify = 3
	// exitMigration: migrate only: the migration failed or was cancelled (--deadline) while
	// the workload went on intact on the source to the end (the run is complete, the result
	// says outcome failed/cancelled and why in migration.failure).
	exitMigration = 4
	// exitInterrupted: Ctrl-C or SIGTERM; the finished and partial results are saved.
	exitInterrupted = 130
)

// exitStatusHelp is the contract as the commands' --help shows it.
const exitStatusHelp = `
Exit status (run, migrate, suite run; the worst run decides):
  0    success: every run complete, every migration completed, verify clean
  1    a run failed or ended early (its result says complete: false, error names the
       component that failed: storage, source/destination QEMU, guest); suite: also a
       regression against the baseline
  2    bad input, refused before anything ran (flags, option values, suite file, baseline
       that cannot be compared)
  3    verify mismatches: data did not read back as written (wins over the others)
  4    migrate: the migration failed or was cancelled while the workload went on intact on
       the source (result: outcome failed/cancelled, migration.failure says why)
  130  interrupted (Ctrl-C, SIGTERM); partial results saved`

// exitRank orders the classes for worseExit.
var exitRank = map[int]int{exitOK: 0, exitMigration: 1, exitFailed: 2, exitUsage: 3, exitVerify: 4, exitInterrupted: 5}

// worseExit returns the more serious of two exit statuses.
func worseExit(a, b int) int {
	if exitRank[b] > exitRank[a] {
		return b
	}
	return a
}

// runExit classifies one run for the exit status: its result document (with its migration
// section for migration runs; nil when it produced none) and the error it ended with.
func runExit(r *results.Run, err error) int {
	return classExit[runner.Classify(r, err)]
}

// classExit is the exit status of each class of run.
var classExit = map[runner.Class]int{runner.OK: exitOK, runner.MigrationFailed: exitMigration, runner.Failed: exitFailed, runner.VerifyFailed: exitVerify}

// usage marks err as bad input (exitUsage).
func usage(err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: exitUsage, err: err}
}

// exitError carries an exit status through cobra without printing anything more.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "vmstorbench",
		Short:         "Benchmark shared storage for virtual-machine images (NFS, SMB, iSCSI, files, devices)",
		Version:       version.String(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newRunCmd(), newReportCmd(), newBackendsCmd(), newProfilesCmd(), newTestbedCmd(),
		newVMCmd(), newMigrateCmd(), newAgentCmd(), newNodeCmd(), newCompareCmd(), newSuiteCmd())
	// A flag cobra cannot parse is bad input, for every command.
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usage(err) })
	for _, c := range root.Commands() {
		switch c.Name() {
		case "run", "migrate":
			c.Long += "\n" + exitStatusHelp
		case "suite":
			for _, sc := range c.Commands() {
				if sc.Name() == "run" {
					sc.Long += "\n" + exitStatusHelp
				}
			}
		}
	}
	return root
}

func main() {
	// The testbed's gotgt target runs in a child process: this same binary, re-executed.
	testbed.RunChildIfRequested()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCmd().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "vmstorbench:", err)
		var ee *exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		os.Exit(1)
	}
}
