// Package qemu is the hv driver over QEMU processes vmstorbench starts itself (vm/qemu):
// each guest is one qemu-system-x86_64 driven over QMP, the destination of a migration is
// started with "-incoming defer" and told where to listen with migrate-incoming.
//
// Beyond hv's interfaces its guests offer the QMP handle (QEMUGuest), which the block-job
// storage methods of vm/migrate (mirror, pull, copy, two-phase) use directly.
package qemu

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/vmstorbench/vmstorbench/vm/hv"
	"github.com/vmstorbench/vmstorbench/vm/qemu"
)

// Name is the driver's name in results.
const Name = "qemu"

// TLSObjectID is the id of the tls-creds-x509 object on both sides: the migration uses
// it, and so does the disk stream's NBD connection (vm/migrate's mirror).
const TLSObjectID = "vsbtls0"

// TLSClientObjectID is the id of the destination's client credentials (the source's
// files): the destination's own NBD client connects with them, to the source's disk
// exported for vm/migrate's pull, whose overlay names this id in its backing file. QEMU's
// NBD client refuses server credentials, so the destination needs both objects.
const TLSClientObjectID = "vsbtls1"

// Driver starts guests as QEMU processes.
type Driver struct {
	binary   string
	version  string
	firmware string
}

// New returns the driver for the QEMU binary ("" finds qemu-system-x86_64). firmware is the
// -bios image guests boot with ("" for QEMU's default).
func New(binary, firmware string) (*Driver, error) {
	if binary == "" {
		var err error
		if binary, err = qemu.Binary(); err != nil {
			return nil, err
		}
	}
	return &Driver{binary: binary, version: qemu.Version(binary), firmware: firmware}, nil
}

// Name implements hv.Driver.
func (d *Driver) Name() string { return Name }

// Version implements hv.Driver: QEMU's version ("7.2.19").
func (d *Driver) Version() string { return d.version }

// Binary is the QEMU binary the driver starts.
func (d *Driver) Binary() string { return d.binary }

// Supports implements hv.Driver: QEMU offers every optional capability.
func (d *Driver) Supports(hv.Capability) bool { return true }

// config renders spec as vm/qemu's configuration.
func (d *Driver) config(spec hv.Spec) (qemu.Config, error) {
	drive, err := Drive(spec.Disk)
	if err != nil {
		return qemu.Config{}, err
	}
	return qemu.Config{
		Name: spec.Name, Dir: spec.Dir, Binary: d.binary, Accel: spec.Accel, Firmware: d.firmware,
		MemoryMiB: spec.MemoryMiB, CPUs: spec.CPUs,
		Kernel: spec.Kernel, Initrd: spec.Initrd, Append: spec.Cmdline,
		Drive: drive, AgentPortName: spec.AgentPort,
	}, nil
}

func (d *Driver) start(ctx context.Context, spec hv.Spec, cfg qemu.Config) (*Guest, error) {
	var events func(qemu.Event)
	if on := spec.OnEvent; on != nil {
		events = func(ev qemu.Event) { on(hv.Event{Name: ev.Name, Data: ev.Data, Received: ev.Received}) }
	}
	vm, err := qemu.Start(ctx, cfg, events)
	if err != nil {
		return nil, err
	}
	return &Guest{vm: vm}, nil
}

// Boot implements hv.Driver.
func (d *Driver) Boot(ctx context.Context, spec hv.Spec) (hv.Guest, error) {
	cfg, err := d.config(spec)
	if err != nil {
		return nil, err
	}
	g, err := d.start(ctx, spec, cfg)
	if err != nil {
		return nil, err
	}
	return g, nil
}

// Migrate implements hv.Driver: it starts the destination QEMU waiting for the incoming
// migration (paused with -S when p.Paused), sets the capabilities and parameters on both
// sides and starts the destination's listener on p.Listen. With TLS the destination gets
// the server credentials on its command line and the source, which runs already, the client
// credentials with object-add.
func (d *Driver) Migrate(ctx context.Context, src hv.Guest, dst hv.Spec, p hv.Params) (hv.Migration, hv.Guest, error) {
	sg, ok := src.(*Guest)
	if !ok {
		return nil, nil, fmt.Errorf("qemu driver: the source guest is a %T, not a QEMU guest", src)
	}
	cfg, err := d.config(dst)
	if err != nil {
		return nil, nil, err
	}
	cfg.Incoming = "defer"
	cfg.Paused = p.Paused
	tls := p.Security != "" && p.Security != hv.SecurityNone
	if tls {
		if p.TLS == nil {
			return nil, nil, errors.New("qemu driver: TLS migration without credentials")
		}
		server, client := TLSObjects(p.TLS, p.Security == hv.SecurityTLSVerify)
		if err := sg.vm.QMP.Execute(ctx, "object-add", client, nil); err != nil {
			return nil, nil, fmt.Errorf("migrate: TLS credentials on the source: %w", err)
		}
		cfg.Objects = append(cfg.Objects, server, TLSClientObject(TLSClientObjectID, p.TLS))
	}
	dg, err := d.start(ctx, dst, cfg)
	if err != nil {
		return nil, nil, err
	}
	// The caller stops the destination it got back, also when the setup below fails.
	if err := setup(ctx, sg.vm.QMP, dg.vm.QMP, p, tls); err != nil {
		return nil, dg, err
	}
	return &Migration{src: sg.vm.QMP}, dg, nil
}

// setup sets capabilities and parameters on both sides and starts the destination's
// listener.
func setup(ctx context.Context, src, dst *qemu.QMP, p hv.Params, tls bool) error {
	caps := []map[string]any{{"capability": "events", "state": true}}
	if p.Mode == hv.ModePostcopy {
		caps = append(caps, map[string]any{"capability": "postcopy-ram", "state": true})
	}
	srcParams := map[string]any{}
	dstParams := map[string]any{}
	if p.MaxBandwidth > 0 {
		srcParams["max-bandwidth"] = p.MaxBandwidth
	}
	if p.DowntimeLimit > 0 {
		srcParams["downtime-limit"] = p.DowntimeLimit.Milliseconds()
	}
	if tls {
		srcParams["tls-creds"] = TLSObjectID
		srcParams["tls-hostname"] = "127.0.0.1"
		dstParams["tls-creds"] = TLSObjectID
	}
	for _, sd := range []struct {
		q      *qemu.QMP
		params map[string]any
	}{{src, srcParams}, {dst, dstParams}} {
		if err := sd.q.Execute(ctx, "migrate-set-capabilities", map[string]any{"capabilities": caps}, nil); err != nil {
			return err
		}
		if len(sd.params) > 0 {
			if err := sd.q.Execute(ctx, "migrate-set-parameters", sd.params, nil); err != nil {
				return err
			}
		}
	}
	if p.PauseBeforeSwitchover {
		// The disk's last writes move with the VM stopped and before the destination takes
		// over: QEMU waits in "pre-switchover" until migrate-continue (as libvirt does it).
		caps := []map[string]any{{"capability": "pause-before-switchover", "state": true}}
		if err := src.Execute(ctx, "migrate-set-capabilities", map[string]any{"capabilities": caps}, nil); err != nil {
			return fmt.Errorf("migrate: pause-before-switchover: %w", err)
		}
	}
	return dst.Execute(ctx, "migrate-incoming", map[string]any{"uri": "tcp:" + p.Listen}, nil)
}

// TLSObjects are the tls-creds-x509 objects of the destination (server: -object syntax)
// and the source (client: object-add arguments) for the migration stream.
func TLSObjects(f *hv.TLSFiles, verifyPeer bool) (server string, client map[string]any) {
	vp := "off"
	if verifyPeer {
		vp = "on"
	}
	server = fmt.Sprintf("tls-creds-x509,id=%s,dir=%s,endpoint=server,verify-peer=%s", TLSObjectID, escapeComma(f.ServerDir), vp)
	// The client always checks the server's certificate against the CA.
	client = map[string]any{"qom-type": "tls-creds-x509", "id": TLSObjectID, "dir": f.ClientDir, "endpoint": "client", "verify-peer": true}
	return server, client
}

// TLSClientObject is the -object of client credentials from f's client directory under
// id. QEMU's client always checks the server's certificate against the CA.
func TLSClientObject(id string, f *hv.TLSFiles) string {
	return fmt.Sprintf("tls-creds-x509,id=%s,dir=%s,endpoint=client", id, escapeComma(f.ClientDir))
}

// Migration is a migration between two QEMUs, driven on the source.
type Migration struct {
	src *qemu.QMP
}

// Start implements hv.Migration.
func (m *Migration) Start(ctx context.Context, connectTo string) error {
	return m.src.Execute(ctx, "migrate", map[string]any{"uri": "tcp:" + connectTo}, nil)
}

// migrateInfo is query-migrate's reply.
type migrateInfo struct {
	Status           string `json:"status"`
	TotalTime        int64  `json:"total-time"`
	Downtime         int64  `json:"downtime"`
	ExpectedDowntime int64  `json:"expected-downtime"`
	SetupTime        int64  `json:"setup-time"`
	ErrorDesc        string `json:"error-desc"`
	RAM              *struct {
		Transferred      int64   `json:"transferred"`
		Remaining        int64   `json:"remaining"`
		Total            int64   `json:"total"`
		DirtySyncCount   int64   `json:"dirty-sync-count"`
		DirtyPagesRate   int64   `json:"dirty-pages-rate"`
		Mbps             float64 `json:"mbps"`
		PostcopyRequests int64   `json:"postcopy-requests"`
	} `json:"ram"`
}

// Poll implements hv.Migration with query-migrate.
func (m *Migration) Poll(ctx context.Context) (hv.Progress, error) {
	var info migrateInfo
	if err := m.src.Execute(ctx, "query-migrate", nil, &info); err != nil {
		return hv.Progress{}, err
	}
	p := hv.Progress{
		Status: hv.Status(info.Status), Error: info.ErrorDesc,
		TotalTime: time.Duration(info.TotalTime) * time.Millisecond, Downtime: time.Duration(info.Downtime) * time.Millisecond,
		ExpectedDowntime: time.Duration(info.ExpectedDowntime) * time.Millisecond, SetupTime: time.Duration(info.SetupTime) * time.Millisecond,
	}
	if r := info.RAM; r != nil {
		p.HaveRAM = true
		p.Transferred, p.Remaining, p.Total = r.Transferred, r.Remaining, r.Total
		p.Iterations, p.DirtyPagesRate, p.Mbps, p.PostcopyRequests = r.DirtySyncCount, r.DirtyPagesRate, r.Mbps, r.PostcopyRequests
	}
	return p, nil
}

// StartPostcopy implements hv.Migration.
func (m *Migration) StartPostcopy(ctx context.Context) error {
	return m.src.Execute(ctx, "migrate-start-postcopy", nil, nil)
}

// Cancel implements hv.Migration.
func (m *Migration) Cancel(ctx context.Context) error {
	return m.src.Execute(ctx, "migrate_cancel", nil, nil)
}

// ContinueSwitchover implements hv.Switchover.
func (m *Migration) ContinueSwitchover(ctx context.Context) error {
	return m.src.Execute(ctx, "migrate-continue", map[string]any{"state": "pre-switchover"}, nil)
}

// Guest is one QEMU process.
type Guest struct {
	vm *qemu.VM
}

// QEMUGuest is a guest of this driver: the block-job storage methods talk QMP to it.
type QEMUGuest interface {
	hv.Guest
	VM() *qemu.VM
}

// VM is the QEMU process with its QMP connection.
func (g *Guest) VM() *qemu.VM { return g.vm }

// Name implements hv.Guest.
func (g *Guest) Name() string { return g.vm.Config.Name }

// AgentSocket implements hv.Guest.
func (g *Guest) AgentSocket() string { return g.vm.Config.AgentSocket() }

// RAMBytes implements hv.Guest.
func (g *Guest) RAMBytes() int64 { return g.vm.Config.RAMBytes() }

// State implements hv.Guest with query-status.
func (g *Guest) State(ctx context.Context) (hv.State, error) {
	st, err := g.vm.Status(ctx)
	return hv.State(st), err
}

// Pause implements hv.Guest.
func (g *Guest) Pause(ctx context.Context) error { return g.vm.QMP.Execute(ctx, "stop", nil, nil) }

// Continue implements hv.Guest.
func (g *Guest) Continue(ctx context.Context) error { return g.vm.QMP.Execute(ctx, "cont", nil, nil) }

// Stop implements hv.Guest.
func (g *Guest) Stop() error { return g.vm.Stop() }

// Kill implements hv.Guest.
func (g *Guest) Kill(grace time.Duration) error { return g.vm.Kill(grace) }

// Exited implements hv.Guest.
func (g *Guest) Exited() bool { return g.vm.Exited() }

// Done implements hv.Guest.
func (g *Guest) Done() <-chan struct{} { return g.vm.Done() }

// ExitReason implements hv.Guest.
func (g *Guest) ExitReason() string { return g.vm.ExitReason() }

// Log implements hv.Guest.
func (g *Guest) Log() string { return g.vm.Log() }

// ConsoleTail implements hv.Guest.
func (g *Guest) ConsoleTail(n int64) string { return g.vm.ConsoleTail(n) }

// PID implements hv.Processes.
func (g *Guest) PID() int { return g.vm.PID() }

// BlockStats implements hv.Guest with query-blockstats (all of the guest's block devices).
func (g *Guest) BlockStats(ctx context.Context) (hv.BlockStats, error) {
	var stats []struct {
		Stats struct {
			Rd int64 `json:"rd_operations"`
			Wr int64 `json:"wr_operations"`
			Fl int64 `json:"flush_operations"`
		} `json:"stats"`
	}
	if err := g.vm.QMP.Execute(ctx, "query-blockstats", nil, &stats); err != nil {
		return hv.BlockStats{}, err
	}
	var b hv.BlockStats
	for _, st := range stats {
		b.ReadOps += st.Stats.Rd
		b.WriteOps += st.Stats.Wr
		b.FlushOps += st.Stats.Fl
	}
	return b, nil
}

// DumpMemory implements hv.MemoryDumper with pmemsave (guest-physical RAM from address 0).
func (g *Guest) DumpMemory(ctx context.Context, path string, size int64) error {
	return g.vm.QMP.Execute(ctx, "pmemsave", map[string]any{"val": 0, "size": size, "filename": path}, nil)
}

// escapeComma escapes commas for QEMU's option syntax (a literal comma is written twice).
func escapeComma(s string) string { return strings.ReplaceAll(s, ",", ",,") }
