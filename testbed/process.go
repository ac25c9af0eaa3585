package testbed

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// Process is a server process started by the testbed: its output goes to a log file in the
// server's directory, and it is stopped by PID (SIGTERM, then SIGKILL after a grace period).
type Process struct {
	Name    string
	Cmd     *exec.Cmd
	LogPath string
	done    chan struct{}
	waitErr error
}

// StartProcess starts argv[0] with its output in dir/<name>.log. The process gets its own
// process group so that Stop also reaches children it forks.
func StartProcess(dir, name string, env []string, argv ...string) (*Process, error) {
	return StartProcessAs(dir, name, env, nil, nil, argv...)
}

// StartProcessAs is StartProcess with the process running as cred's user (nil: as this
// process) and ambientCaps (capability numbers, e.g. unix.CAP_SYS_PTRACE) kept through the
// change of user as ambient capabilities, so its children inherit them too; the log file
// is opened by this process, so dir need not be writable by that user.
func StartProcessAs(dir, name string, env []string, cred *syscall.Credential, ambientCaps []uintptr, argv ...string) (*Process, error) {
	logPath := filepath.Join(dir, name+".log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%s: log file: %w", name, err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = dir
	if cred != nil {
		// dir may be private to this process's user.
		cmd.Dir = "/"
	}
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Credential: cred, AmbientCaps: ambientCaps}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("%s: start %s: %w", name, argv[0], err)
	}
	p := &Process{Name: name, Cmd: cmd, LogPath: logPath, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

// PID is the process ID.
func (p *Process) PID() int { return p.Cmd.Process.Pid }

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Done is closed when the process has ended: callers select on it to notice a crash at once
// instead of polling Exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// ExitErr is how the process ended ("signal: killed", "exit status 1"), nil for a clean exit
// or while it runs.
func (p *Process) ExitErr() error {
	if !p.Exited() {
		return nil
	}
	return p.waitErr
}

// WaitPort waits until addr accepts TCP connections, the process exits (an error quoting the
// tail of its log), or ctx ends.
func (p *Process) WaitPort(ctx context.Context, addr string) error {
	return p.waitListening(ctx, "tcp", addr)
}

// WaitUnix is WaitPort for a unix socket.
func (p *Process) WaitUnix(ctx context.Context, path string) error {
	return p.waitListening(ctx, "unix", path)
}

func (p *Process) waitListening(ctx context.Context, network, addr string) error {
	for {
		c, err := net.DialTimeout(network, addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited before listening on %s: %v; log: %s", p.Name, addr, p.waitErr, TailLog(p.LogPath, 400))
		case <-ctx.Done():
			return fmt.Errorf("%s: not listening on %s: %w; log: %s", p.Name, addr, ctx.Err(), TailLog(p.LogPath, 400))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Stop sends SIGTERM to the process group, waits up to grace, then SIGKILLs it.
func (p *Process) Stop(grace time.Duration) error {
	if p == nil || p.Exited() {
		return nil
	}
	pgid := -p.PID()
	_ = syscall.Kill(pgid, syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
	}
	if err := syscall.Kill(pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("%s: kill %d: %w", p.Name, p.PID(), err)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(5 * time.Second):
		return fmt.Errorf("%s: pid %d did not exit after SIGKILL", p.Name, p.PID())
	}
}

// TailLog returns the last n bytes of a log file, for error messages.
func TailLog(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return "(no log)"
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "(no log)"
	}
	off := st.Size() - n
	if off < 0 {
		off = 0
	}
	buf := make([]byte, st.Size()-off)
	_, _ = f.ReadAt(buf, off)
	return string(buf)
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Addr is 127.0.0.1:port.
func Addr(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }
