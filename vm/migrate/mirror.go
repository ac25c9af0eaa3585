package migrate

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/vmstorbench/vmstorbench/results"
	"github.com/vmstorbench/vmstorbench/testbed"
	hvqemu "github.com/vmstorbench/vmstorbench/vm/hv/qemu"
	"github.com/vmstorbench/vmstorbench/vm/qemu"
)

// The mirror method follows QEMU's iotest 194 and libvirt's --copy-storage-all: the
// destination's empty disk is exported over NBD (setupDiskTransfer: by a qemu-nbd of its own
// for a local image, else by the destination QEMU), the source mirrors its disk into that
// export (drive-mirror, sync=full: a bulk copy, then every new write
// as the dirty bitmap sees it) until the job is READY, then RAM migrates. As libvirt does,
// the migration pauses before switchover (pause-before-switchover): with the VM stopped
// and its disk still active, the job is ended gracefully (block-job-cancel on a READY
// mirror copies what is still dirty and ends without pivoting), and only then does the
// migration continue. Ending the job after "completed", as 194 does with an idle guest,
// would let the destination run before the last writes reached it.

const mirrorJobID = "vsb-mirror"

// MirrorGranularity is the mirror's dirty-bitmap granularity: the unit it re-sends when the
// guest writes; QEMU's default for a raw image, set explicitly so the comparison script uses
// the same. 4 KiB (the guest's block size) was tried: it shrank the backlog at the stop on a
// loaded machine (20 MB → 1.5 MB final sync), but on a quiet one, with the guest writing
// ~3,600 random 4 KiB blocks a second, the mirror never reached READY (still 0.2% dirty
// after 30 s: the count of dirty blocks never touched zero), while 64 KiB chunks were ready
// in 1 s. Do not retry it: the backlog at the stop is small with 64 KiB since the mirror
// writes into a qemu-nbd of its own (startMirrorExport).
const MirrorGranularity = 65536

// blockJob is one entry of query-block-jobs.
type blockJob struct {
	Device string `json:"device"`
	Type   string `json:"type"`
	Len    int64  `json:"len"`
	Offset int64  `json:"offset"`
	Ready  bool   `json:"ready"`
	Status string `json:"status"`
	Error  string `json:"error"`
}

// jobEvent is a BLOCK_JOB_* event's data.
type jobEvent struct {
	name   string
	Device string `json:"device"`
	Len    int64  `json:"len"`
	Offset int64  `json:"offset"`
	Error  string `json:"error"`
	Action string `json:"action"`
	Op     string `json:"operation"`
}

// onJobEvent hands the source's block job events to the mirror's waits.
func (s *scenario) onJobEvent(ev qemu.Event) {
	var je jobEvent
	_ = json.Unmarshal(ev.Data, &je)
	je.name = ev.Name
	select {
	case s.jobEvents <- je:
	default:
	}
}

func (s *scenario) queryJob(ctx context.Context) (*blockJob, error) {
	qctx, cancel := context.WithTimeout(ctx, queryMigrateTimeout)
	defer cancel()
	var jobs []blockJob
	if err := s.src.vm.QMP.Execute(qctx, "query-block-jobs", nil, &jobs); err != nil {
		return nil, s.src.check(err)
	}
	for i := range jobs {
		if jobs[i].Device == mirrorJobID {
			return &jobs[i], nil
		}
	}
	return nil, nil
}

// mirrorUntilReady starts the mirror and waits until its bulk copy is done (READY). It
// returns false when the deadline passed first: the job is cancelled and the guest stays.
func (s *scenario) mirrorUntilReady(ctx context.Context, mig *results.Migration, deadline time.Time) (bool, error) {
	start, b0 := time.Now(), s.diskBytes()
	args := map[string]any{
		"job-id": mirrorJobID, "device": "disk0", "sync": "full", "copy-mode": s.cfg.MirrorCopyMode, "granularity": MirrorGranularity,
		// A write the target refuses fails the job at once (the default is the same; said
		// here because the run's error handling relies on it).
		"on-target-error": "report",
	}
	cmd := "drive-mirror"
	if strings.HasPrefix(s.mirrorTarget, "nbd://") {
		// The destination QEMU's export: opened as an NBD node of its own, which can carry
		// the run's TLS credentials (drive-mirror's target filename cannot), then mirrored
		// into with blockdev-mirror.
		if err := s.addMirrorNode(ctx); err != nil {
			return false, err
		}
		cmd, args["target"] = "blockdev-mirror", mirrorNodeName
	} else {
		args["target"], args["format"], args["mode"] = s.mirrorTarget, "raw", "existing"
	}
	if err := s.src.vm.QMP.Execute(ctx, cmd, args, nil); err != nil {
		s.delMirrorNode()
		return false, fmt.Errorf("migrate: %s: %w", cmd, s.src.check(err))
	}
	s.mirrorStarted = true
	mig.MirrorCopyMode = s.cfg.MirrorCopyMode
	tick := time.NewTicker(queryMigrateEvery)
	defer tick.Stop()
	var last blockJob
	for {
		select {
		case ev := <-s.jobEvents:
			switch ev.name {
			case "BLOCK_JOB_READY":
				s.span(mig, "disk-bulk-copy", start, time.Now(), s.diskBytes()-b0)
				s.cfg.Logf("mirror ready: %d MiB sent in %s", (s.diskBytes()-b0)>>20, time.Since(start).Round(time.Millisecond))
				return true, nil
			case "BLOCK_JOB_COMPLETED", "BLOCK_JOB_CANCELLED":
				s.mirrorDone = true
				return false, fmt.Errorf("migrate: the mirror ended before it was ready (%d of %d bytes copied): %s", ev.Offset, ev.Len, orUnknown(ev.Error))
			case "BLOCK_JOB_ERROR":
				// One per failed request: the first says it.
				if !s.jobErrorNoted {
					s.jobErrorNoted = true
					s.note(fmt.Sprintf("mirror: I/O error on %s (action %s)", ev.Op, ev.Action))
				}
			}
		case <-tick.C:
			j, err := s.queryJob(ctx)
			if err != nil {
				return false, fmt.Errorf("migrate: mirror: %w", err)
			}
			if j == nil {
				// Gone without an event yet: the event says why; wait for it briefly.
				why := "no reason reported"
				select {
				case ev := <-s.jobEvents:
					if ev.name == "BLOCK_JOB_READY" {
						s.span(mig, "disk-bulk-copy", start, time.Now(), s.diskBytes()-b0)
						return true, nil
					}
					why = orUnknown(ev.Error)
				case <-time.After(2 * time.Second):
				}
				s.mirrorDone = true
				return false, fmt.Errorf("migrate: the mirror job ended before it was ready (%d of %d bytes copied): %s", last.Offset, last.Len, why)
			}
			last = *j
			if j.Ready {
				s.span(mig, "disk-bulk-copy", start, time.Now(), s.diskBytes()-b0)
				return true, nil
			}
			pct := -1.0
			if j.Len > 0 {
				pct = 100 * float64(j.Offset) / float64(j.Len)
			}
			s.progress("migrating", pct, "disk mirror")
			if time.Now().After(deadline) {
				s.note(fmt.Sprintf("the mirror was not ready after the %s deadline (%d of %d bytes): cancelled, the guest keeps running on the source", s.cfg.Deadline, j.Offset, j.Len))
				mig.Outcome = OutcomeCancelled
				return false, nil
			}
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
}

// mirrorNodeName is the source's block node for the destination's NBD export.
const mirrorNodeName = "vsb-mirror-target"

// addMirrorNode opens the destination's export (s.mirrorTarget, nbd://HOST:PORT/NAME, the
// disk link's end) on the source as a block node, over TLS with the source's
// tls-creds-x509 object (endpoint=client) when --security asks for it: the disk stream is
// then encrypted with the RAM stream's credentials.
func (s *scenario) addMirrorNode(ctx context.Context) error {
	u, err := url.Parse(s.mirrorTarget)
	if err != nil {
		return fmt.Errorf("migrate: the mirror's target %q: %w", s.mirrorTarget, err)
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		return fmt.Errorf("migrate: the mirror's target %q: %w", s.mirrorTarget, err)
	}
	node := map[string]any{
		"driver": "nbd", "node-name": mirrorNodeName, "export": strings.TrimPrefix(u.Path, "/"),
		"server": map[string]any{"type": "inet", "host": host, "port": port},
	}
	if s.cfg.Security != SecurityNone {
		node["tls-creds"] = hvqemu.TLSObjectID
	}
	if err := s.src.vm.QMP.Execute(ctx, "blockdev-add", node, nil); err != nil {
		return fmt.Errorf("migrate: connecting the source to the destination's NBD export: %w", s.src.check(err))
	}
	return nil
}

// delMirrorNode closes the source's connection to the destination's export after a mirror
// that did not lead to a switchover (best effort): the source keeps running then. After a
// switchover the node is left to the source QEMU's exit: deleting it there would add a QMP
// round trip to the downtime.
func (s *scenario) delMirrorNode() {
	if !strings.HasPrefix(s.mirrorTarget, "nbd://") {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.src.vm.QMP.Execute(ctx, "blockdev-del", map[string]any{"node-name": mirrorNodeName}, nil)
}

// afterMirrorCancelled waits briefly for a cancelled mirror to end, then closes the
// source's connection to the destination's export (the source keeps running).
func (s *scenario) afterMirrorCancelled(ctx context.Context) {
	if !strings.HasPrefix(s.mirrorTarget, "nbd://") {
		return
	}
	wait := time.NewTimer(2 * time.Second)
	defer wait.Stop()
	for {
		select {
		case ev := <-s.jobEvents:
			if ev.Device == mirrorJobID && (ev.name == "BLOCK_JOB_COMPLETED" || ev.name == "BLOCK_JOB_CANCELLED") {
				s.mirrorDone = true
				s.delMirrorNode()
				return
			}
		case <-wait.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

// completeMirror ends the READY mirror with the VM stopped: block-job-cancel on a READY
// mirror copies what is still dirty and ends without pivoting the source to the target.
func (s *scenario) completeMirror(ctx context.Context, mig *results.Migration) error {
	start, b0 := time.Now(), s.diskBytes()
	j, err := s.queryJob(ctx)
	if err != nil {
		return fmt.Errorf("migrate: mirror: %w", err)
	}
	if j == nil {
		return fmt.Errorf("migrate: the mirror job is gone at switchover: %s", s.lastJobError())
	}
	if err := s.src.vm.QMP.Execute(ctx, "block-job-cancel", map[string]any{"device": mirrorJobID}, nil); err != nil {
		return fmt.Errorf("migrate: ending the mirror: %w", s.src.check(err))
	}
	timeout := time.NewTimer(time.Minute)
	defer timeout.Stop()
	for {
		select {
		case ev := <-s.jobEvents:
			if ev.name != "BLOCK_JOB_COMPLETED" && ev.name != "BLOCK_JOB_CANCELLED" {
				continue
			}
			s.mirrorDone = true
			if ev.Error != "" {
				return fmt.Errorf("migrate: the mirror failed at switchover: %s", ev.Error)
			}
			if ev.Offset != ev.Len {
				return fmt.Errorf("migrate: the mirror ended at switchover with %d of %d bytes in sync", ev.Offset, ev.Len)
			}
			s.span(mig, "disk-final-sync", start, time.Now(), s.diskBytes()-b0)
			return nil
		case <-timeout.C:
			return fmt.Errorf("migrate: the mirror did not end within a minute of the switchover")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// lastJobError is what the last job event said, for an error message.
func (s *scenario) lastJobError() string {
	for {
		select {
		case ev := <-s.jobEvents:
			if ev.Error != "" {
				return ev.name + ": " + ev.Error
			}
		default:
			return "no reason reported"
		}
	}
}

// mirrorExportName is the destination image's export name, in either server.
const mirrorExportName = "disk0"

// mirrorExportable says whether the destination image is a local file (or block device)
// that the destination QEMU opens as such: startMirrorExport can serve it.
func (s *scenario) mirrorExportable() bool {
	return s.dst0 != nil && s.dst0.path != "" && s.dstDrive.File == s.dst0.path
}

// startMirrorExport serves the destination image to the mirror from a qemu-nbd of its own
// (on port, TLS with the run's server credentials when --security asks for it) instead of
// the destination QEMU's NBD server. The destination QEMU runs its export in its main loop,
// the same loop that loads the incoming RAM stream, and QMP traces showed it served no NBD
// request while it loaded a section of RAM (the requests were decoded within 0.1 ms of each
// section's end, after waits of 160–580 ms): the guest writes in flight at the stop (the
// stop drains them) and the mirror's chunks waited for the RAM, up to 2 s of QEMU downtime
// with --mirror-copy-mode write-blocking. The destination QEMU has the image open but
// inactive until the migration completes (as with shared storage), so it neither caches
// nor locks it; the export must end before it activates the image (stopMirrorExport).
func (s *scenario) startMirrorExport(ctx context.Context, port int) error {
	d := s.dstDrive
	var tlsObject string
	if s.cfg.Security != SecurityNone {
		tlsObject, _ = hvqemu.TLSObjects(s.tls, s.cfg.Security == SecurityTLSVerify)
	}
	p, err := StartMirrorExport(ctx, s.dir, port, d.File, d.Format, d.Direct, tlsObject)
	if p != nil {
		s.mirrorExport = p
		s.cleanup(func() error {
			s.mirrorExportStopping.Store(true)
			return p.Stop(2 * time.Second)
		})
	}
	if err == nil {
		go s.watchMirrorExport(p)
	}
	return err
}

// watchMirrorExport records the mirror's qemu-nbd exiting before vmstorbench stopped it as a
// primary fault of its own: the mirror job only reports I/O errors on its target, which
// would otherwise be the run's last word. It stops the destination's side: the guest keeps
// running on the source.
func (s *scenario) watchMirrorExport(p *testbed.Process) {
	<-p.Done()
	if s.mirrorExportStopping.Load() {
		return
	}
	s.addFault(fault{at: time.Now(), component: compDiskExport, side: "destination",
		subject: fmt.Sprintf("qemu-nbd (pid %d)", p.PID()), what: "exited", reason: errString(p.ExitErr()),
		detail: withoutProbeNoise(testbed.TailLog(p.LogPath, 600))})
}

// withoutProbeNoise drops the line qemu-nbd logs for the readiness probe's connection (it
// connects and hangs up without negotiating), which is not evidence of anything.
func withoutProbeNoise(log string) string {
	var keep []string
	for _, l := range strings.Split(log, "\n") {
		if !strings.Contains(l, "option negotiation failed") {
			keep = append(keep, l)
		}
	}
	return strings.TrimSpace(strings.Join(keep, "\n"))
}

func errString(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// StartMirrorExport starts the qemu-nbd the mirror writes into (export mirrorExportName of
// image file on 127.0.0.1:port, cache=none when direct, TLS with the credentials object
// tlsObject (id hvqemu.TLSObjectID) when not empty) and waits until it listens. It is
// exported for scripts/mirrorcompare, which measures the mirror into the same server. The
// process is returned (to be stopped by the caller) even when it did not come up.
func StartMirrorExport(ctx context.Context, dir string, port int, file, format string, direct bool, tlsObject string) (*testbed.Process, error) {
	bin, err := testbed.LookPath("qemu-nbd", "qemu-utils")
	if err != nil {
		return nil, err
	}
	cache := "writeback"
	if direct {
		cache = "none"
	}
	args := []string{bin, "--bind", "127.0.0.1", "--port", fmt.Sprint(port), "--export-name", mirrorExportName,
		// --persistent: the readiness probe's connection must not end it.
		"--format", orRaw(format), "--persistent", "--cache", cache, "--aio", "threads"}
	if tlsObject != "" {
		args = append(args, "--object", tlsObject, "--tls-creds", hvqemu.TLSObjectID)
	}
	p, err := testbed.StartProcess(dir, "mirror-export", nil, append(args, file)...)
	if err != nil {
		return nil, fmt.Errorf("migrate: the destination image's NBD export: %w", err)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := p.WaitPort(wctx, testbed.Addr(port)); err != nil {
		return p, fmt.Errorf("migrate: the destination image's NBD export: %w", err)
	}
	return p, nil
}

// exportOnDestination has the destination QEMU export its disk on port (destinations it
// opens through its own drivers, which qemu-nbd is not given).
func (s *scenario) exportOnDestination(ctx context.Context, port int) error {
	q := s.dst.vm.QMP
	addr := map[string]any{"type": "inet", "data": map[string]any{"host": "127.0.0.1", "port": fmt.Sprint(port)}}
	args := map[string]any{"addr": addr}
	if s.cfg.Security != SecurityNone {
		// The destination's tls-creds-x509 object (endpoint=server, verify-peer as
		// --security says): the server then accepts TLS clients only.
		args["tls-creds"] = hvqemu.TLSObjectID
	}
	if err := q.Execute(ctx, "nbd-server-start", args, nil); err != nil {
		return fmt.Errorf("migrate: NBD server on the destination: %w", s.dst.check(err))
	}
	// The export makes the destination's image writable before the incoming migration
	// activates it (QEMU activates an exported node), which the mirror needs.
	if err := q.Execute(ctx, "nbd-server-add", map[string]any{"device": "disk0", "writable": true}, nil); err != nil {
		return fmt.Errorf("migrate: NBD export of the destination's disk: %w", s.dst.check(err))
	}
	return nil
}

// stopMirrorExport ends the qemu-nbd export once the mirror has ended, before the migration
// continues: the destination QEMU takes the image's write lock when it activates it, which
// fails while qemu-nbd holds it. qemu-nbd flushes and exits on SIGTERM (5 ms, measured).
func (s *scenario) stopMirrorExport() error {
	if s.mirrorExport == nil {
		return nil
	}
	start := time.Now()
	s.mirrorExportStopping.Store(true)
	if err := s.mirrorExport.Stop(5 * time.Second); err != nil {
		return fmt.Errorf("migrate: stopping the destination image's NBD export: %w", err)
	}
	// Its work is the destination's side of the disk stream, which the destination QEMU's
	// CPU figure held when it served the export itself: count it with the helpers.
	s.cpu.addExited(results.CostHelpers, s.mirrorExport.Cmd.ProcessState)
	s.cfg.Logf("switchover: the destination image's NBD export stopped in %s", time.Since(start).Round(time.Microsecond))
	return nil
}

func orRaw(format string) string {
	if format == "" {
		return "raw"
	}
	return format
}

// stopDiskExport ends the destination's NBD server once the migration completed.
func (s *scenario) stopDiskExport(ctx context.Context) {
	if s.cfg.Storage != StorageMirror || s.dst == nil || s.dst.vm == nil || s.mirrorExport != nil {
		return
	}
	if err := s.dst.vm.QMP.Execute(ctx, "nbd-server-stop", nil, nil); err != nil {
		s.note("stopping the destination's NBD server: " + err.Error())
	}
}

func orUnknown(s string) string {
	if s == "" {
		return "no reason reported"
	}
	return s
}
