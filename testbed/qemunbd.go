package testbed

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vmstorbench/vmstorbench/internal/x509creds"
)

const (
	// QemuNBDExport is the export name of the qemu-nbd testbed.
	QemuNBDExport = "vm"
	// QemuNBDSize is the size of the qemu-nbd testbed's image (a sparse raw file).
	QemuNBDSize = 256 << 20
)

// QemuNBD runs QEMU's qemu-nbd (package qemu-utils) in the foreground, twice, each exporting
// a sparse 256 MiB raw image as "vm" on 127.0.0.1: endpoint nbd-qemu in plain TCP, and
// nbd-qemu-tls, which requires TLS (x509 credentials generated for it, a throw-away CA whose
// certificate the endpoint's URL names in tls_ca=). Both are persistent (-t: they do not exit
// when the last client leaves), take up to 16 clients at once (numjobs opens one connection
// per job), and use the host page cache (--cache=writeback, as the testbed's other servers
// do; FLUSH and FUA reach the image with fdatasync).
type QemuNBD struct {
	// ReadOnly exports the images read-only (-r).
	ReadOnly bool
	// NoTLS starts the plain export only.
	NoTLS bool

	mu    sync.Mutex
	procs []*Process
	port  int
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
	var pids []int
	for _, p := range q.procs {
		if !p.Exited() {
			pids = append(pids, p.PID())
		}
	}
	return pids
}

// Start implements Server.
func (q *QemuNBD) Start(ctx context.Context, dir string) ([]Endpoint, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.procs) > 0 {
		return nil, errors.New("qemu-nbd: already started")
	}
	bin, err := LookPath("qemu-nbd", "qemu-utils")
	if err != nil {
		return nil, err
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return nil, fmt.Errorf("qemu-nbd: %w", err)
	}
	port, err := q.startOne(ctx, dir, bin, "qemu-nbd", "vm.img")
	if err != nil {
		return nil, err
	}
	q.port = port
	eps := []Endpoint{qemuNBDEndpoint(port, "")}
	if q.NoTLS {
		return eps, nil
	}
	creds, err := x509creds.Write(filepath.Join(dir, "tls-server"), filepath.Join(dir, "tls-client"), "vmstorbench testbed qemu-nbd", 30*24*time.Hour)
	if err != nil {
		q.stopLocked()
		return nil, fmt.Errorf("qemu-nbd: %w", err)
	}
	tlsArgs := []string{"--object", "tls-creds-x509,id=tls0,endpoint=server,verify-peer=off,dir=" + strings.ReplaceAll(creds.ServerDir, ",", ",,"), "--tls-creds", "tls0"}
	tport, err := q.startOne(ctx, dir, bin, "qemu-nbd-tls", "vm-tls.img", tlsArgs...)
	if err != nil {
		q.stopLocked()
		return nil, err
	}
	return append(eps, qemuNBDEndpoint(tport, filepath.Join(creds.ClientDir, "ca-cert.pem"))), nil
}

// startOne starts one qemu-nbd exporting a new image dir/img on a free port.
func (q *QemuNBD) startOne(ctx context.Context, dir, bin, name, img string, extra ...string) (int, error) {
	img = filepath.Join(dir, img)
	if err := sparseFile(img, QemuNBDSize); err != nil {
		return 0, fmt.Errorf("%s: %w", name, err)
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := FreePort()
		if err != nil {
			return 0, fmt.Errorf("%s: free port: %w", name, err)
		}
		args := append([]string{bin, "-b", "127.0.0.1", "-p", strconv.Itoa(port), "-x", QemuNBDExport, "-f", "raw",
			"-t", "--shared=16", "--cache=writeback", "--aio=threads"}, extra...)
		if q.ReadOnly {
			args = append(args, "-r")
		}
		p, err := StartProcess(dir, name, nil, append(args, img)...)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", name, err)
		}
		if lastErr = p.WaitPort(ctx, Addr(port)); lastErr == nil {
			q.procs = append(q.procs, p)
			return port, nil
		}
		_ = p.Stop(2 * time.Second)
		if ctx.Err() != nil {
			break
		}
	}
	return 0, fmt.Errorf("%s: %w", name, lastErr)
}

// qemuNBDEndpoint is the plain export's endpoint, or with ca set the TLS export's.
func qemuNBDEndpoint(port int, ca string) Endpoint {
	u := fmt.Sprintf("nbd://%s/%s", Addr(port), QemuNBDExport)
	if ca == "" {
		return Endpoint{Name: "nbd-qemu", URL: u, Security: "none"}
	}
	return Endpoint{Name: "nbd-qemu-tls", URL: u + "?tls=on&tls_ca=" + url.QueryEscape(ca), Security: "tls"}
}

// Stop implements Server: SIGTERM, SIGKILL after 2 s, by PID.
func (q *QemuNBD) Stop() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.stopLocked()
}

func (q *QemuNBD) stopLocked() error {
	var errs []error
	for _, p := range q.procs {
		if err := p.Stop(2 * time.Second); err != nil {
			errs = append(errs, fmt.Errorf("%s: stop: %w", p.Name, err))
		}
	}
	q.procs = nil
	return errors.Join(errs...)
}
