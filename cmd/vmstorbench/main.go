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
	"github.com/vmstorbench/vmstorbench/testbed"
)

// defaultResultsDir is where run, migrate and suite run save result documents unless told
// otherwise: a name of its own, so that run from the repository root the documents never
// land among the source files (the results package's folder is "results").
const defaultResultsDir = "vmstorbench-results"

// Exit statuses of run, suite run and migrate (compare has its own, see compare.go).
const (
	// exitFailed: a run failed or ended early (target error, stall), or bad input.
	exitFailed = 1
	// exitVerify: verify found blocks that did not read back as written (data corruption);
	// it wins over exitFailed.
	exitVerify = 3
	// exitInterrupted: Ctrl-C or SIGTERM.
	exitInterrupted = 130
)

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
