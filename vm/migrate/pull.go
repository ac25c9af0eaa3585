package migrate

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/vmstorbench/vmstorbench/results"
	"github.com/vmstorbench/vmstorbench/testbed"
	"github.com/vmstorbench/vmstorbench/vm/hv"
	hvqemu "github.com/vmstorbench/vmstorbench/vm/hv/qemu"
	"github.com/vmstorbench/vmstorbench/vm/nbdexport"
)

// The pull method is post-copy for the disk, the way xNBD does it: a server next to the
// source image exports it read-only over NBD (here vmstorbench's own export, the role
// xNBD's server plays), the destination QEMU runs from the switchover on a qcow2 overlay
// whose backing file is that export, reading through it what it has not got yet
// (copy-on-read keeps what it read), and block-stream pulls the rest in the background.
// When the stream ends the overlay holds the whole disk, QEMU drops the backing file, and
// the source is no longer needed: the export is closed then, so that anything still
// reading from it would fail the run's read-back.
//
// With --security tls or tls-verify-peer the export requires TLS (NBD_OPT_STARTTLS) with
// the RAM stream's server certificate, and client certificates with tls-verify-peer; the
// destination QEMU connects with its client credentials object
// (hvqemu.TLSClientObjectID), which the overlay's backing file names.

const (
	pullJobID      = "vsb-pull"
	pullExportName = "disk0"
)

// preparePull exports the source image for the destination (behind the disk link) and
// makes the destination image a copy-on-read overlay backed by it.
func (s *scenario) preparePull(ctx context.Context, dst *Disk) error {
	if dst.path == "" {
		return fmt.Errorf("--storage pull needs a local destination image (--to a directory or an image path): the overlay is a qcow2 file, and %s is reached through %s", dst.URL, dst.Access)
	}
	src := s.cfg.Disk
	t := src.target
	if t == nil {
		// Read through the page cache: nothing reads the image before the switchover, when
		// the source QEMU has stopped writing it, so no cached page can be stale.
		f, err := os.Open(src.path)
		if err != nil {
			return fmt.Errorf("migrate: the source image: %w", err)
		}
		s.cleanup(f.Close)
		t = fileTarget{f, s.imageLen}
	}
	var srvTLS *tls.Config
	if s.cfg.Security != SecurityNone {
		var err error
		if srvTLS, _, err = diskStreamTLS(s.dir, s.cfg.Security == SecurityTLSVerify); err != nil {
			return err
		}
	}
	exp, err := nbdexport.Serve(t, pullExportName, true, nbdexport.WithTLS(srvTLS))
	if err != nil {
		return fmt.Errorf("migrate: NBD export of the source image: %w", err)
	}
	// Closed when the pull ends, or when the run does.
	s.closePullExport = sync.OnceValue(exp.Close)
	s.cleanup(s.closePullExport)
	via, err := s.startLink(linkDisk, s.diskLinkShape(), exp.Addr())
	if err != nil {
		return err
	}
	backing, err := pullBacking(via, srvTLS != nil)
	if err != nil {
		return err
	}
	if err := createOverlay(ctx, dst.path, backing, s.imageLen); err != nil {
		return err
	}
	s.dstDrive = hv.Disk{File: dst.path, Format: "qcow2", Direct: true, CopyOnRead: true}
	return nil
}

// pullBacking is the overlay's backing file: the source's export at addr (the disk link's
// end), read as raw. With TLS it takes QEMU's json: form, since an nbd:// URL has no room
// for credentials: the destination QEMU's client credentials object, and the name the
// export's certificate is issued for.
func pullBacking(addr string, useTLS bool) (string, error) {
	if !useTLS {
		return "nbd://" + addr + "/" + pullExportName, nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("migrate: the source's export at %q: %w", addr, err)
	}
	b, err := json.Marshal(map[string]any{"driver": "raw", "file": map[string]any{
		"driver": "nbd", "export": pullExportName,
		"server":    map[string]any{"type": "inet", "host": host, "port": port},
		"tls-creds": hvqemu.TLSClientObjectID, "tls-hostname": tlsServerName,
	}})
	if err != nil {
		return "", err
	}
	return "json:" + string(b), nil
}

// createOverlay makes the qcow2 image at path, of size bytes, backed by backing (raw).
func createOverlay(ctx context.Context, path, backing string, size int64) error {
	bin, err := testbed.LookPath("qemu-img", "qemu-utils")
	if err != nil {
		return err
	}
	// -u: the backing file is not opened now (the destination QEMU opens it at start).
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(cctx, bin, "create", "-q", "-f", "qcow2", "-F", "raw", "-b", backing, "-u",
		path, fmt.Sprint(size)).CombinedOutput()
	if err != nil {
		return fmt.Errorf("migrate: the destination overlay: qemu-img create: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// fileTarget serves a local image read-only to the NBD export.
type fileTarget struct {
	f    *os.File
	size int64
}

func (t fileTarget) ReadAt(p []byte, off int64) (int, error) { return t.f.ReadAt(p, off) }
func (t fileTarget) WriteAt([]byte, int64) (int, error) {
	return 0, errors.New("the source image is exported read-only")
}
func (t fileTarget) Sync() error  { return nil }
func (t fileTarget) Size() int64  { return t.size }
func (t fileTarget) Close() error { return nil } // the scenario closes the file

// pullDisk streams the rest of the disk into the destination's overlay, the guest running
// there, and waits until the destination no longer needs the source.
func (s *scenario) pullDisk(ctx context.Context, mig *results.Migration) error {
	q := s.dst.vm.QMP
	start := time.Now()
	_, d0 := s.diskTraffic()
	if err := q.Execute(ctx, "block-stream", map[string]any{"job-id": pullJobID, "device": "disk0"}, nil); err != nil {
		return fmt.Errorf("migrate: block-stream on the destination: %w", s.dst.check(err))
	}
	tick := time.NewTicker(queryMigrateEvery)
	defer tick.Stop()
	for {
		select {
		case ev := <-s.jobEvents:
			if ev.Device != pullJobID || (ev.name != "BLOCK_JOB_COMPLETED" && ev.name != "BLOCK_JOB_CANCELLED") {
				if ev.name == "BLOCK_JOB_ERROR" && !s.jobErrorNoted {
					s.jobErrorNoted = true
					s.note(fmt.Sprintf("disk pull: I/O error on %s (action %s)", ev.Op, ev.Action))
				}
				continue
			}
			if ev.Error != "" || ev.name == "BLOCK_JOB_CANCELLED" {
				return fmt.Errorf("migrate: the disk pull failed (%d of %d bytes): %s; the guest runs on the destination on an incomplete disk", ev.Offset, ev.Len, orUnknown(ev.Error))
			}
			_, d1 := s.diskTraffic()
			s.span(mig, "disk-pull", start, time.Now(), d1-d0)
			// The destination no longer reads from the source: close the export, so that
			// anything that still did would show as an error in the read-back.
			if err := s.closePullExport(); err != nil {
				s.note("closing the source's export: " + err.Error())
			}
			s.cfg.Logf("disk pull: %d MiB in %s", (d1-d0)>>20, time.Since(start).Round(time.Millisecond))
			mig.ImageCheck = &results.ImageCheck{When: "not compared", Error: "pull: the guest writes to the destination from the switchover on, so its image is never the source's at one moment; the workload's verify pass and the read-back check the data, and the source's export is closed once the pull ends"}
			return nil
		case <-tick.C:
			var jobs []blockJob
			qctx, cancel := context.WithTimeout(ctx, queryMigrateTimeout)
			err := q.Execute(qctx, "query-block-jobs", nil, &jobs)
			cancel()
			if err != nil {
				return fmt.Errorf("migrate: disk pull: %w", s.dst.check(err))
			}
			for _, j := range jobs {
				if j.Device == pullJobID && j.Len > 0 {
					s.progress("migrating", 100*float64(j.Offset)/float64(j.Len), "disk pull")
				}
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
