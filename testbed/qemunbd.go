package testbed

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

const (
	// QemuNBDExport is the export name of the qemu-nbd testbed.
	QemuNBDExport = "vm"
	// QemuNBDSize is the size of the qemu-nbd testbed's image (a sparse raw file).
	QemuNBDSize = 256 << 20
)

// QemuNBD runs QEMU's qemu-nbd (package qemu-utils) in the foreground, exporting one sparse
// 256 MiB raw image as "vm" on 127.0.0.1: persistent (-t, it does not exit when the last
// client leaves), up to 16 clients at once (numjobs opens one connection per job), host page
// cache on (--cache=writeback, as the testbed's other servers use the page cache; FLUSH and
// FUA reach the image with fdatasync).
type QemuNBD struct {
	// ReadOnly exports the image read-only (-r).
	ReadOnly bool

	mu   sync.Mutex
	proc *Process
	port int
}

// NewQemuNBD returns a qemu-nbd server, not yet started.
func NewQemuNBD() *QemuNBD { return &QemuNBD{} }

// Name implements Server.
func (q *QemuNBD) Name() string { return "qemu-nbd" }

// Port is the export's TCP port (0 before Start).
func (q *QemuNBD) Port() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.port
}

// PIDs implements Server.
func (q *QemuNBD) PIDs() []int {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.proc == nil || q.proc.Exited() {
		return nil
	}
	return []int{q.proc.PID()}
}

// Start implements Server.
func (q *QemuNBD) Start(ctx context.Context, dir string) ([]Endpoint, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.proc != nil && !q.proc.Exited() {
		return nil, errors.New("qemu-nbd: already started")
	}
	bin, err := LookPath("qemu-nbd", "qemu-utils")
	if err != nil {
		return nil, err
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return nil, fmt.Errorf("qemu-nbd: %w", err)
	}
	img := filepath.Join(dir, "vm.img")
	if err := sparseFile(img, QemuNBDSize); err != nil {
		return nil, fmt.Errorf("qemu-nbd: %w", err)
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := FreePort()
		if err != nil {
			return nil, fmt.Errorf("qemu-nbd: free port: %w", err)
		}
		args := []string{bin, "-b", "127.0.0.1", "-p", strconv.Itoa(port), "-x", QemuNBDExport, "-f", "raw",
			"-t", "--shared=16", "--cache=writeback", "--aio=threads"}
		if q.ReadOnly {
			args = append(args, "-r")
		}
		p, err := StartProcess(dir, "qemu-nbd", nil, append(args, img)...)
		if err != nil {
			return nil, fmt.Errorf("qemu-nbd: %w", err)
		}
		q.proc, q.port = p, port
		if lastErr = p.WaitPort(ctx, Addr(port)); lastErr == nil {
			return []Endpoint{qemuNBDEndpoint(port)}, nil
		}
		_ = p.Stop(2 * time.Second)
		if ctx.Err() != nil {
			break
		}
	}
	q.proc = nil
	return nil, fmt.Errorf("qemu-nbd: %w", lastErr)
}

func qemuNBDEndpoint(port int) Endpoint {
	return Endpoint{Name: "nbd-qemu", URL: fmt.Sprintf("nbd://%s/%s", Addr(port), QemuNBDExport), Security: "none"}
}

// Stop implements Server: SIGTERM, SIGKILL after 2 s, by PID.
func (q *QemuNBD) Stop() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.proc == nil {
		return nil
	}
	if err := q.proc.Stop(2 * time.Second); err != nil {
		return fmt.Errorf("qemu-nbd: stop: %w", err)
	}
	return nil
}
