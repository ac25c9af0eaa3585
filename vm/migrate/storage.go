package migrate

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/vmstorbench/vmstorbench/backends"
	"github.com/vmstorbench/vmstorbench/results"
	"github.com/vmstorbench/vmstorbench/testbed"
	"github.com/vmstorbench/vmstorbench/vm/hv"
	hvqemu "github.com/vmstorbench/vmstorbench/vm/hv/qemu"
	"github.com/vmstorbench/vmstorbench/vm/linkemu"
)

// Storage methods: how the disk gets to the destination.
const (
	// StorageShared: both QEMUs open the same image (the disk does not move).
	StorageShared = "shared"
	// StorageCopy: freeze and copy ("scp"): stop the VM, stream the whole image to the
	// destination, migrate RAM, continue there.
	StorageCopy = "copy"
	// StorageTwoPhase ("rsync"): copy the image while the VM runs, then with the VM
	// stopped find the changed blocks by checksums compared across the link and send those.
	StorageTwoPhase = "two-phase"
	// StorageMirror: QEMU mirrors the disk to the destination QEMU's NBD export while the VM
	// runs (drive-mirror, as libvirt's --copy-storage-all and QEMU's iotest 194), then RAM
	// migrates and the mirror completes at switchover. With ModeNone the VM stays and only
	// its disk moves: mirrored straight into the destination image, then pivoted (move.go).
	StorageMirror = "mirror"
	// StoragePull: the destination starts at once on a copy-on-read overlay backed by the
	// source's disk over NBD and pulls the rest with block-stream (pull.go).
	StoragePull = "pull"
)

// StorageMethods lists the methods, for help texts.
var StorageMethods = []string{StorageShared, StorageCopy, StorageTwoPhase, StorageMirror, StoragePull}

// Names of the links in results.Migration.Traffic.
const (
	linkRAM     = "ram"
	linkDisk    = "disk"
	linkStorage = "storage"
)

// checkStorage refuses, before anything starts, a method the mode cannot do.
func (c *Config) checkStorage() error {
	if c.Storage == "" {
		c.Storage = StorageShared
	}
	switch c.Storage {
	case StorageShared:
		if c.To != "" {
			return errors.New("--to names where the disk goes: it needs --storage copy, two-phase or mirror (shared storage does not move the disk)")
		}
		return nil
	case StorageCopy, StorageTwoPhase, StorageMirror, StoragePull:
	default:
		return fmt.Errorf("--storage %q: must be one of shared, copy, two-phase, mirror, pull", c.Storage)
	}
	if c.Mode == ModeNone && c.Storage != StorageMirror {
		return fmt.Errorf("--storage %s moves the disk with the VM: it needs a migration (--mode precopy, postcopy or stopcopy); --mode none moves only the disk, with --storage mirror", c.Storage)
	}
	if c.Storage == StoragePull && c.Mode == ModeStopcopy {
		return errors.New("--storage pull starts the destination at once and fetches the disk afterwards; stop-and-copy keeps the guest stopped for the whole RAM transfer, which defeats it: use --mode precopy or postcopy")
	}
	if c.Storage == StorageCopy && c.Mode == ModePostcopy {
		return errors.New("--storage copy stops the VM for the whole copy, so its RAM moves while it is stopped: post-copy has nothing to gain there; use --mode precopy or stopcopy")
	}
	if c.Disk != nil && c.Storage != StorageMirror {
		if why := c.Disk.readable(); why != "" {
			return fmt.Errorf("--storage %s: %s; use --storage mirror (QEMU copies), or --access nbd", c.Storage, why)
		}
	}
	return nil
}

// countedLink is one link whose bytes the result reports.
type countedLink struct {
	name  string
	shape string
	p     *linkemu.Proxy
}

// startLink puts an emulated link (an unshaped counting relay when l is nil) in front of
// upstream and returns the address to use instead. It is stopped when the run ends.
func (s *scenario) startLink(name string, l *linkemu.Link, upstream string) (string, error) {
	shape := linkemu.Link{Name: "relay"}
	if l != nil {
		shape = *l
	}
	if tap := s.cfg.linkTap; tap != nil {
		var err error
		if upstream, err = tap(name, upstream); err != nil {
			return "", fmt.Errorf("%s link: %w", name, err)
		}
	}
	p, err := linkemu.Start(shape, upstream)
	if err != nil {
		return "", fmt.Errorf("%s link: %w", name, err)
	}
	s.mu.Lock()
	s.links = append(s.links, countedLink{name: name, shape: map[bool]string{true: shape.Name}[l != nil], p: p})
	s.mu.Unlock()
	s.cleanup(func() error { p.Stop(); return nil })
	if shape.Cut > 0 {
		go s.watchCut(name, shape, p)
	}
	return p.Addr(), nil
}

// watchCut records a link that failed as its cut= asked as a fault of the link: primary
// evidence, earlier than what follows from it (the migration failing, the destination QEMU
// exiting on its broken incoming stream, the storage's errors), so the run names the link.
// The fault stops the destination's side: the guest runs on on the source unless it had
// already switched to the destination.
func (s *scenario) watchCut(name string, shape linkemu.Link, p *linkemu.Proxy) {
	select {
	case <-p.Cut():
	case <-p.Stopped():
		return
	}
	side := "destination"
	if name == linkStorage {
		side = "" // both QEMUs reach the storage through it
	}
	s.addFault(fault{at: time.Now(), component: compLink, side: side, subject: name + " link " + shape.Name,
		what: "went down", reason: fmt.Sprintf("cut=%s", shape.Cut)})
}

// traffic reads every counted link.
func (s *scenario) traffic() []results.LinkTraffic {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []results.LinkTraffic
	for _, l := range s.links {
		up, down := l.p.Bytes()
		// Several proxies may serve one link (iSCSI portals): sum them.
		merged := false
		for i := range out {
			if out[i].Link == l.name {
				out[i].UpB += up
				out[i].DownB += down
				merged = true
			}
		}
		if !merged {
			out = append(out, results.LinkTraffic{Link: l.name, Shape: l.shape, UpB: up, DownB: down})
		}
	}
	return out
}

// diskLinkShape is the disk stream's link: DiskLink, else Link's shape, else none (a relay).
func (s *scenario) diskLinkShape() *linkemu.Link {
	if s.cfg.DiskLink != nil {
		return s.cfg.DiskLink
	}
	return s.cfg.Link
}

// diskTraffic is what the disk link has carried so far each way.
func (s *scenario) diskTraffic() (up, down int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.links {
		if l.name == linkDisk {
			return l.p.Bytes()
		}
	}
	return 0, 0
}

// diskBytes is what the disk link has carried so far towards the destination (0 when the
// disk does not move): the stages' byte counts are differences of it.
func (s *scenario) diskBytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.links {
		if l.name == linkDisk {
			up, _ := l.p.Bytes()
			return up
		}
	}
	return 0
}

// cleanup registers f to run when the run ends, after both QEMUs have been stopped, in
// reverse order of registration.
func (s *scenario) cleanup(f func() error) {
	s.mu.Lock()
	s.cleanups = append(s.cleanups, f)
	s.mu.Unlock()
}

func (s *scenario) runCleanups() error {
	s.mu.Lock()
	fs := s.cleanups
	s.cleanups = nil
	s.mu.Unlock()
	var errs []error
	for i := len(fs) - 1; i >= 0; i-- {
		if err := fs[i](); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// prepareStorage opens the destination's image for a method that moves the disk and
// checks it: reachable, not the source, large enough. Nothing is written to it here.
func (s *scenario) prepareStorage(ctx context.Context, mig *results.Migration) error {
	cfg := s.cfg
	mig.Storage = cfg.Storage
	s.dstDrive = s.drive
	if cfg.Storage == StorageShared {
		return nil
	}
	src := cfg.Disk
	srcLen, err := qemuLen(ctx, src)
	if err != nil {
		return fmt.Errorf("migrate: the source image: %w", err)
	}
	to := cfg.To
	if to == "" {
		dir, err := os.MkdirTemp("", "vsb-dst-")
		if err != nil {
			return fmt.Errorf("migrate: scratch directory for the destination image: %w", err)
		}
		if cfg.ToOptions.Keep {
			cfg.Logf("the destination image stays in %s (--keep)", dir)
		} else {
			s.cleanup(func() error { return os.RemoveAll(dir) })
		}
		to = "file://" + dir
	}
	u, err := backends.ParseURL(to)
	if err != nil {
		return fmt.Errorf("--to: %w", err)
	}
	if u.Scheme == "file" {
		if err := checkFileDestination(u, src, srcLen); err != nil {
			return err
		}
	}
	o := cfg.ToOptions
	o.Size = srcLen
	if cfg.Storage == StoragePull && u.Scheme == "file" {
		// The overlay is a qcow2 file the destination QEMU opens itself (--access nbd is
		// for the source here).
		o.Access = AccessAuto
	}
	dst, err := OpenDisk(ctx, to, o)
	if err != nil {
		return fmt.Errorf("--to %s: %w", backends.Redact(u), err)
	}
	s.cleanup(dst.Close)
	if sameImage(src, dst) {
		return fmt.Errorf("--to %s is the source image itself: nothing was copied or overwritten", backends.Redact(u))
	}
	dstLen, err := qemuLen(ctx, dst)
	if err != nil {
		return fmt.Errorf("--to: %w", err)
	}
	switch {
	case dstLen < srcLen:
		return fmt.Errorf("--to %s: the destination image has %d bytes, the source %d: too small (nothing written)", dst.URL, dstLen, srcLen)
	case dstLen > srcLen:
		return fmt.Errorf("--to %s: the destination image has %d bytes, the source %d: the guest's disk would change size; give a directory (a new image is made) or an image of the same size", dst.URL, dstLen, srcLen)
	}
	if cfg.Storage == StorageCopy || cfg.Storage == StorageTwoPhase {
		if why := dst.readable(); why != "" {
			return fmt.Errorf("--storage %s --to %s: %s; use --access nbd", cfg.Storage, dst.URL, why)
		}
	}
	s.dst0 = dst
	s.imageLen = srcLen
	s.dstDrive = dst.Drive
	mig.DestinationDisk, mig.DestinationAccess = redactDrive(dst.Drive.File), dst.Access
	switch {
	case cfg.Mode == ModeNone:
		// No stream between hypervisors: the source QEMU writes the destination image.
	default:
		// The mirror's NBD connection, the pull's NBD export and the copy methods' own
		// stream use the RAM stream's credentials (setupDiskTransfer, mirror.go, pull.go).
		mig.DiskStreamSecurity = cfg.Security
	}
	if cfg.Storage == StoragePull {
		if err := s.preparePull(ctx, dst); err != nil {
			return err
		}
		mig.DestinationAccess = "qcow2 overlay (copy-on-read) on " + dst.Access + ", backed by the source image over NBD until the pull ends"
	}
	if mig.DestinationDisk == "" {
		mig.DestinationDisk = dst.URL
	}
	return nil
}

// qemuLen is the length of the whole image as the QEMU that opens it sees it. A LUN only
// QEMU opens (libiscsi) is known to the Disk only as the region the guest uses, which
// can be shorter than the LUN: ask qemu-img then, else a source mirrored into a larger LUN
// would pass the size check and the guest's disk change size at switchover.
func qemuLen(ctx context.Context, d *Disk) (int64, error) {
	if d.path != "" || d.target != nil {
		return d.imageLen()
	}
	return hvqemu.ImageSize(ctx, d.Drive)
}

// checkFileDestination refuses a local destination that is the source's file or sits on a
// filesystem without room for the image (a sparse image would be created fine and the copy
// fail half-way).
func checkFileDestination(u *url.URL, src *Disk, need int64) error {
	path := filepath.Clean(u.Path)
	st, err := os.Stat(path)
	dir := path
	switch {
	case err == nil && !st.IsDir():
		if src.path != "" {
			if ss, err := os.Stat(src.path); err == nil && os.SameFile(st, ss) {
				return fmt.Errorf("--to %s is the source image itself: nothing was copied or overwritten", path)
			}
		}
		return nil // an existing image: its size is checked once opened
	case err != nil && !errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("--to %s: %w", path, err)
	case err != nil:
		dir = filepath.Dir(path)
	}
	var fs syscall.Statfs_t
	if err := syscall.Statfs(dir, &fs); err != nil {
		return fmt.Errorf("--to %s: %w", dir, err)
	}
	if free := int64(fs.Bavail) * int64(fs.Bsize); free < need {
		return fmt.Errorf("--to %s: %d bytes free, the image needs %d: too small (nothing written)", dir, free, need)
	}
	return nil
}

// setupDiskTransfer starts what carries the disk between the hypervisors, once the
// destination QEMU runs: its NBD export (mirror) or vmstorbench's receiver (copy,
// two-phase), each behind the disk link.
func (s *scenario) setupDiskTransfer(ctx context.Context) error {
	cfg := s.cfg
	link := s.diskLinkShape()
	switch cfg.Storage {
	case StorageMirror:
		port, err := testbed.FreePort()
		if err != nil {
			return err
		}
		if s.mirrorExportable() {
			err = s.startMirrorExport(ctx, port)
		} else {
			err = s.exportOnDestination(ctx, port)
		}
		if err != nil {
			return err
		}
		via, err := s.startLink(linkDisk, link, testbed.Addr(port))
		if err != nil {
			return err
		}
		s.mirrorTarget = "nbd://" + via + "/" + mirrorExportName
	case StorageCopy, StorageTwoPhase:
		img, err := s.dst0.openData(true)
		if err != nil {
			return fmt.Errorf("migrate: the destination image: %w", err)
		}
		var srvTLS *tls.Config
		if cfg.Security != SecurityNone {
			if srvTLS, _, err = diskStreamTLS(s.dir, cfg.Security == SecurityTLSVerify); err != nil {
				img.Close()
				return err
			}
		}
		srv, err := startBlockServer(img, s.imageLen, srvTLS)
		if err != nil {
			img.Close()
			return err
		}
		s.cleanup(func() error { return errors.Join(srv.Close(), img.Close()) })
		via, err := s.startLink(linkDisk, link, srv.Addr())
		if err != nil {
			return err
		}
		s.copyAddr = via
	}
	return nil
}

// dialCopy connects the copy sender to the receiver through the disk link, over TLS with
// the run's credentials when --security asks for it.
func (s *scenario) dialCopy(ctx context.Context) (*blockClient, error) {
	var cliTLS *tls.Config
	if s.cfg.Security != SecurityNone {
		var err error
		if _, cliTLS, err = diskStreamTLS(s.dir, s.cfg.Security == SecurityTLSVerify); err != nil {
			return nil, err
		}
	}
	return dialBlockClient(ctx, s.copyAddr, cliTLS)
}

// span records a stage of the migration on the timeline.
func (s *scenario) span(mig *results.Migration, name string, start, end time.Time, bytes int64) {
	if start.IsZero() || end.Before(start) {
		return
	}
	mig.Phases = append(mig.Phases, results.MigrationSpan{Name: name, StartNS: int64(start.Sub(s.t0)), EndNS: int64(end.Sub(s.t0)), Bytes: bytes})
}

// stopSource stops the guest on the source (copy, two-phase with stop-and-copy).
func (s *scenario) stopSource(ctx context.Context) error {
	if s.srcStopped {
		return nil
	}
	if err := s.src.guest.Pause(ctx); err != nil {
		return fmt.Errorf("migrate: stop the source: %w", s.src.check(err))
	}
	s.srcStopped = true
	return nil
}

// beforeRAM moves the disk before RAM migrates: the whole copy (copy, with the VM stopped),
// the live bulk copy (two-phase, and its deltas at once for stop-and-copy), or the mirror's
// bulk copy until it is ready. It returns false when the migration was cancelled (deadline)
// and the guest stays on the source.
func (s *scenario) beforeRAM(ctx context.Context, mig *results.Migration, deadline time.Time) (bool, error) {
	cfg := s.cfg
	switch cfg.Storage {
	case StorageCopy:
		if err := s.stopSource(ctx); err != nil {
			return false, err
		}
		if ok, err := s.bulkCopy(ctx, mig, deadline); !ok || err != nil {
			return ok, err
		}
		return true, s.checkImages(ctx, mig)
	case StorageTwoPhase:
		if ok, err := s.bulkCopy(ctx, mig, deadline); !ok || err != nil {
			return ok, err
		}
		if cfg.Mode == ModeStopcopy {
			if err := s.stopSource(ctx); err != nil {
				return false, err
			}
			return true, s.atSwitchover(ctx, mig)
		}
		return true, nil
	case StorageMirror:
		return s.mirrorUntilReady(ctx, mig, deadline)
	}
	return true, nil
}

// onMigrationEvent wakes the migration's poll when the source reaches pre-switchover: the
// VM is stopped there, waiting for the disk's last step, and a 50 ms poll would add up to
// 50 ms to QEMU's downtime.
func (s *scenario) onMigrationEvent(ev hv.Event) {
	var st struct {
		Status string `json:"status"`
	}
	if json.Unmarshal(ev.Data, &st) != nil || st.Status != "pre-switchover" {
		return
	}
	select {
	case s.switchover <- struct{}{}:
	default:
	}
}

// atSwitchover runs with the VM stopped, before the destination takes over: the two-phase
// deltas, the mirror's last writes, then the image check.
func (s *scenario) atSwitchover(ctx context.Context, mig *results.Migration) error {
	if s.switchedDisk {
		return nil
	}
	s.switchedDisk = true
	start := time.Now()
	if stop, ok := s.lastEvent("source", "STOP", s.t0); ok {
		// How long the stopped VM waited for this to start: the migration's poll of
		// query-migrate (the time a real move would not spend).
		s.cfg.Logf("switchover: the disk's last step starts %s after the source stopped", start.Sub(stop).Round(time.Millisecond))
	}
	defer func() {
		s.cfg.Logf("switchover: the disk's last step and the image check took %s", time.Since(start).Round(time.Millisecond))
	}()
	switch s.cfg.Storage {
	case StorageTwoPhase:
		if err := s.sendDeltas(ctx, mig); err != nil {
			return err
		}
	case StorageMirror:
		if err := s.completeMirror(ctx, mig); err != nil {
			return err
		}
		if err := s.stopMirrorExport(); err != nil {
			return err
		}
	default:
		return nil
	}
	return s.checkImages(ctx, mig)
}

// bulkCopy streams the whole image to the destination (the VM stopped for copy, running
// for two-phase).
func (s *scenario) bulkCopy(ctx context.Context, mig *results.Migration, deadline time.Time) (bool, error) {
	src, err := s.cfg.Disk.openData(false)
	if err != nil {
		return false, fmt.Errorf("migrate: the source image: %w", err)
	}
	defer src.Close()
	cctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	bc, err := s.dialCopy(cctx)
	if err != nil {
		return false, err
	}
	defer bc.Close()
	start, b0 := time.Now(), s.diskBytes()
	s.progress("migrating", 0, "disk bulk copy")
	err = bc.sendAll(src, s.imageLen, func(n int64) {
		s.progress("migrating", 100*float64(n)/float64(s.imageLen), "disk bulk copy")
	})
	if err != nil {
		if ctx.Err() == nil && cctx.Err() != nil {
			s.note(fmt.Sprintf("the disk copy did not finish before the %s deadline: cancelled, the guest keeps running on the source", s.cfg.Deadline))
			mig.Outcome = OutcomeCancelled
			return false, nil
		}
		return false, fmt.Errorf("migrate: disk copy: %w", err)
	}
	s.span(mig, "disk-bulk-copy", start, time.Now(), s.diskBytes()-b0)
	s.cfg.Logf("disk bulk copy: %d MiB in %s", s.imageLen>>20, time.Since(start).Round(time.Millisecond))
	return true, nil
}

// sendDeltas sends the blocks that changed since the bulk copy (two-phase), the VM stopped.
func (s *scenario) sendDeltas(ctx context.Context, mig *results.Migration) error {
	src, err := s.cfg.Disk.openData(false)
	if err != nil {
		return fmt.Errorf("migrate: the source image: %w", err)
	}
	defer src.Close()
	// A connection of its own: the bulk copy's idled through the RAM pre-copy.
	bc, err := s.dialCopy(ctx)
	if err != nil {
		return err
	}
	defer bc.Close()
	start, b0 := time.Now(), s.diskBytes()
	blk := deltaBlockSize(s.imageLen)
	s.progress("migrating", -1, "disk deltas")
	blocks, n, err := bc.sendDeltas(src, s.imageLen, blk)
	if err != nil {
		return fmt.Errorf("migrate: disk deltas: %w", err)
	}
	s.span(mig, "disk-deltas", start, time.Now(), s.diskBytes()-b0)
	s.cfg.Logf("disk deltas: %d changed blocks of %d KiB (%d KiB) in %s", blocks, blk>>10, n>>10, time.Since(start).Round(time.Millisecond))
	return nil
}

// checkImages compares the destination image with the source's, block by block, with the
// VM stopped and both final: at switchover.
func (s *scenario) checkImages(ctx context.Context, mig *results.Migration) error {
	if s.cfg.NoImageCheck {
		return nil
	}
	start := time.Now()
	ic := &results.ImageCheck{When: "switchover", BlockSize: imageCheckBlock}
	defer func() {
		ic.PauseNS = int64(time.Since(start))
		s.addCheckPause(start, time.Now())
		mig.ImageCheck = ic
	}()
	a, err := s.cfg.Disk.openData(false)
	if err != nil {
		ic.Error = "source image: " + err.Error()
		return nil
	}
	defer a.Close()
	b, err := s.dst0.openData(testCorruptDestination >= 0)
	if err != nil {
		ic.Error = "destination image: " + err.Error()
		return nil
	}
	defer b.Close()
	if off := testCorruptDestination; off >= 0 {
		// Tests only: prove that a wrong block is found.
		junk := alignedBuf(imageCheckBlock)
		for i := range junk {
			junk[i] = 0xA5
		}
		if _, err := b.WriteAt(junk, off); err != nil {
			return fmt.Errorf("corrupting the destination for the test: %w", err)
		}
	}
	s.progress("migrating", -1, "comparing the images")
	got, err := compareImages(a, b, s.imageLen)
	got.When, got.PauseNS = ic.When, ic.PauseNS
	*ic = *got
	if err != nil {
		ic.Error = err.Error()
	}
	if ic.DifferingBlocks > 0 {
		s.note(fmt.Sprintf("image check: %d of %d blocks differ between the source and the destination image, the first at offset %d", ic.DifferingBlocks, ic.Blocks, ic.Differing[0]))
	}
	return nil
}

// testCorruptDestination, when ≥ 0, is the offset of a block the image check overwrites in
// the destination image before comparing (set by tests).
var testCorruptDestination int64 = -1

// abandon is the way back when the migration did not complete: the disk transfer stopped,
// the guest running on the source.
func (s *scenario) abandon(mig *results.Migration) {
	if mig.Outcome == OutcomeCompleted {
		// The destination runs the guest (a pull that failed after the switchover): the
		// source must never run it again.
		mig.GuestOn = "destination"
		return
	}
	if s.src == nil || s.src.guest == nil || s.src.guest.Exited() {
		return
	}
	if s.storageFailed() {
		// Continuing the source is pointless with its disk gone, and a QEMU stuck on the
		// dead server would only make the run wait for QMP timeouts.
		s.note("the migration did not complete and the source was not continued: its storage failed")
		return
	}
	// A QEMU stuck on a dead storage server does not answer: do not wait long for it.
	timeout := 10 * time.Second
	if s.hasPrimaryFault() {
		timeout = 2 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if s.mirrorStarted && !s.mirrorDone {
		_ = s.src.vm.QMP.Execute(ctx, "block-job-cancel", map[string]any{"device": mirrorJobID, "force": true}, nil)
		s.afterMirrorCancelled(ctx)
	}
	if s.migration != nil {
		_ = s.migration.Cancel(ctx)
	}
	if st, err := s.src.guest.State(ctx); err == nil && st != hv.StateRunning {
		// A stop of vmstorbench's (copy) or QEMU's (a failed switchover): continue.
		if err := s.src.guest.Continue(ctx); err != nil {
			s.note("the source could not be continued: " + err.Error())
			return
		}
	}
	if st, err := s.src.guest.State(ctx); err == nil && st == hv.StateRunning {
		mig.GuestOn = "source"
		s.note("the migration did not complete: the VM keeps running on the source")
	}
}
