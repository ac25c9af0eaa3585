package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/vmstorbench/vmstorbench/runner"
	"github.com/vmstorbench/vmstorbench/testbed"
	"github.com/vmstorbench/vmstorbench/vm/drbdnode"
	"github.com/vmstorbench/vmstorbench/vm/linkemu"
)

func newTestbedCmd() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "testbed",
		Short: "Start, inspect and stop real storage servers on loopback (Samba, NFS-Ganesha, embedded NFS, tgt, gotgt, qemu-nbd)",
		Long: `The testbed runs real servers on 127.0.0.1, each in its own directory under the state
directory, so that the protocols can be measured without a NAS. 'up' starts them in a
background process and prints the target URLs; 'run --target testbed:NAME' (or --testbed for
all) uses them; 'down' stops everything it started, by PID, and removes the state directory.`,
	}
	cmd.PersistentFlags().StringVar(&dir, "state", testbed.DefaultDir(), "testbed state directory")

	var only, with []string
	var drbdLink string
	up := &cobra.Command{
		Use:   "up",
		Short: "Start the servers in the background and print their target URLs",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := testbedOptional(drbdLink); err != nil {
				return err
			}
			return testbedUp(cmd.OutOrStdout(), dir, only, with, drbdLink)
		},
	}
	up.Flags().StringSliceVar(&only, "only", nil, "start only these servers (gonfs, samba, ganesha, tgt, gotgt, qemu-nbd, drbd, libvirt)")
	up.Flags().StringSliceVar(&with, "with", nil, "also start these optional servers (drbd: a two-node DRBD pair of TCG guests; libvirt: two libvirt session daemons to migrate between)")
	up.Flags().StringVar(&drbdLink, "drbd-link", "", "the DRBD pair's replication link: lan, wan or latency=…,jitter=…,bandwidth=…,loss=… (default: no added delay)")

	serve := &cobra.Command{
		Use:    "serve",
		Short:  "Run the testbed servers in the foreground until interrupted",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return testbedServe(cmd, dir, only, with, drbdLink)
		},
	}
	serve.Flags().StringSliceVar(&only, "only", nil, "start only these servers")
	serve.Flags().StringSliceVar(&with, "with", nil, "also start these optional servers")
	serve.Flags().StringVar(&drbdLink, "drbd-link", "", "the DRBD pair's replication link")

	down := &cobra.Command{
		Use:   "down",
		Short: "Stop the testbed's servers and remove its state directory",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return testbedDown(cmd.OutOrStdout(), dir)
		},
	}
	status := &cobra.Command{
		Use:   "status",
		Short: "Show whether the testbed runs and its target URLs",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := testbed.LoadState(dir)
			if err != nil {
				return err
			}
			if !alive(st.PID) {
				return fmt.Errorf("testbed: process %d is gone; run 'vmstorbench testbed down' to clean up", st.PID)
			}
			printEndpoints(cmd.OutOrStdout(), dir, st)
			return nil
		},
	}
	cmd.AddCommand(up, serve, down, status)
	return cmd
}

// testbedOptional are the servers that start only when asked for (--with, --only).
func testbedOptional(drbdLink string) ([]func() testbed.Server, error) {
	link := linkemu.Link{Name: "none"}
	if drbdLink != "" {
		var err error
		if link, err = linkemu.Parse(drbdLink); err != nil {
			return nil, fmt.Errorf("--drbd-link: %w", err)
		}
	}
	return []func() testbed.Server{func() testbed.Server {
		s := drbdnode.NewServer(link)
		// The serve process's output is its log file (serve.log in the state directory).
		s.Log = func(m string) { fmt.Fprintln(os.Stderr, m) }
		return s
	}, func() testbed.Server {
		// Post-copy on: the pair's sockets are root's only (no TCP listeners), so the
		// capability it needs gives no one anything new (see LibvirtPair.Postcopy).
		p := testbed.NewLibvirtPair()
		p.Postcopy = true
		return p
	}}, nil
}

func testbedServe(cmd *cobra.Command, dir string, only, with []string, drbdLink string) error {
	optional, err := testbedOptional(drbdLink)
	if err != nil {
		return err
	}
	servers, err := testbed.SelectWith(only, with, optional)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	bed, err := testbed.Up(ctx, dir, servers)
	if err != nil {
		return err
	}
	if err := bed.Save(); err != nil {
		bed.Down()
		return err
	}
	<-ctx.Done()
	os.Remove(filepath.Join(dir, testbed.StateFile))
	return bed.Down()
}

func testbedUp(out io.Writer, dir string, only, with []string, drbdLink string) error {
	if st, err := testbed.LoadState(dir); err == nil && alive(st.PID) {
		printEndpoints(out, dir, st)
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("testbed: state directory: %w", err)
	}
	os.Remove(filepath.Join(dir, testbed.StateFile))
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	args := []string{"testbed", "serve", "--state", dir}
	if len(only) > 0 {
		args = append(args, "--only", strings.Join(only, ","))
	}
	if len(with) > 0 {
		args = append(args, "--with", strings.Join(with, ","))
	}
	if drbdLink != "" {
		args = append(args, "--drbd-link", drbdLink)
	}
	logPath := filepath.Join(dir, "serve.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("testbed: %w", err)
	}
	defer logf.Close()
	c := exec.Command(exe, args...)
	c.Stdout, c.Stderr = logf, logf
	c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := c.Start(); err != nil {
		return fmt.Errorf("testbed: start: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- c.Wait() }()
	deadline := time.After(120 * time.Second)
	for {
		if st, err := testbed.LoadState(dir); err == nil {
			printEndpoints(out, dir, st)
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("testbed failed to start: %s", strings.TrimSpace(testbed.TailLog(logPath, 600)))
		case <-deadline:
			syscall.Kill(c.Process.Pid, syscall.SIGTERM)
			return fmt.Errorf("testbed: servers not up after 120s; log: %s", logPath)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func testbedDown(out io.Writer, dir string) error {
	st, err := testbed.LoadState(dir)
	if err != nil {
		if _, serr := os.Stat(dir); serr == nil {
			// A state directory without a state file: a crashed serve; remove the leftovers.
			return os.RemoveAll(dir)
		}
		return err
	}
	if alive(st.PID) {
		syscall.Kill(st.PID, syscall.SIGTERM)
		if !waitGone(st.PID, 30*time.Second) {
			syscall.Kill(st.PID, syscall.SIGKILL)
		}
	}
	// Whatever survived its supervisor is stopped by the PIDs it recorded.
	for _, s := range st.Servers {
		for _, pid := range s.PIDs {
			if alive(pid) {
				syscall.Kill(pid, syscall.SIGKILL)
				waitGone(pid, 5*time.Second)
			}
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("testbed: remove %s: %w", dir, err)
	}
	fmt.Fprintln(out, "testbed stopped")
	return nil
}

func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func waitGone(pid int, d time.Duration) bool {
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if !alive(pid) {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return !alive(pid)
}

func printEndpoints(out io.Writer, dir string, st *testbed.State) {
	fmt.Fprintf(out, "testbed running (pid %d, state %s)\n", st.PID, dir)
	for _, e := range st.Endpoints {
		fmt.Fprintf(out, "  %-16s %-10s %s\n", e.Name, e.Security, e.URL)
	}
	fmt.Fprintln(out, "use: vmstorbench run --testbed ... (all) or --target testbed:NAME; credentials are read from the state file")
}

// resolveTestbedTargets replaces testbed:NAME targets (and adds all endpoints for --testbed)
// with URLs, and puts the endpoints' credentials into this process's environment, where the
// backends read them; variables the user set are left alone.
func resolveTestbedTargets(targets []string, all bool, dir string) ([]runner.Target, error) {
	refs, env, err := runner.ResolveTestbed(targets, all, dir)
	if err != nil {
		return nil, err
	}
	runner.ExportEnv(env)
	return refs, nil
}
