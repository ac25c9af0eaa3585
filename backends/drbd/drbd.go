// Package drbd registers the drbd:// backend: I/O on a DRBD device, as the file backend does
// on a block device (O_DIRECT with direct=1, writing only with --allow-destructive), plus the
// replication state (role, connection, disks, protocol, out-of-sync bytes, resync progress,
// replication traffic), sampled through the run into the result. The state comes from the
// local kernel (DRBD 8.4's /proc/drbd, DRBD 9's drbdsetup status --json) or, for the
// testbed's DRBD nodes, from the node's agent; the I/O then goes through the node's NBD
// export of its /dev/drbd0.
package drbd

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vmstorbench/vmstorbench/backends"
	"github.com/vmstorbench/vmstorbench/backends/drbd/drbdstate"
	"github.com/vmstorbench/vmstorbench/results"
)

func init() {
	backends.Register(backends.Backend{
		Scheme:      "drbd",
		Description: "DRBD device (8.4 or 9.x) with its replication state sampled into the result",
		URLForms:    []string{"drbd:///dev/drbd0", "drbd:///dev/drbd0?resource=r0&protocol=B", "drbd://?resource=r0"},
		Options: []backends.Option{
			{Name: "resource", Help: "DRBD resource name (needed for DRBD 9 state and for protocol=)"},
			{Name: "allow_degraded", Help: "1: measure a device that is not Primary/UpToDate (the result is labelled degraded)", Default: "0"},
			{Name: "protocol", Help: "A, B or C: switch the resource to this protocol online (drbdsetup net-options) before the run"},
			{Name: "nbd", Help: "host:port of an NBD export of the device (testbed nodes): I/O goes there instead of the local device"},
			{Name: "agent", Help: "host:port of a testbed DRBD node agent to read the state from instead of the local kernel"},
			{Name: "peer_nbd", Help: "host:port of the peer node's NBD export (testbed pairs): the destination's disk when migrate runs on the pair; not used for I/O"},
			{Name: "peer_agent", Help: "host:port of the peer node's agent (testbed pairs), for migrate's dual-primary switch; not used for I/O"},
			{Name: "relay", Help: "host:port of the testbed pair's replication-link control, where migrate sets the replication link for its run; not used for I/O"},
			{Name: "proc", Help: "file to read DRBD 8.4's state from", Default: procPath},
			{Name: "timeout", Help: "deadline of each state read and protocol switch", Default: "5s"},
		},
		Open: open,
	})
}

// drbdMajor is the block device major DRBD registers.
const drbdMajor = 147

// Target is an open DRBD device: the I/O target plus its state source.
type Target struct {
	backends.Target
	src       source
	resource  string
	device    string
	access    string
	degraded  string
	protocol  string
	timeout   time.Duration
	openState drbdstate.State
}

func open(ctx context.Context, u *url.URL, p backends.OpenParams) (backends.Target, error) {
	q := u.Query()
	if u.Host != "" && u.Host != "localhost" {
		return nil, fmt.Errorf("drbd URLs name a local device (drbd:///dev/drbd0); a remote node is reached with nbd= and agent=, not host %q", u.Host)
	}
	resource := q.Get("resource")
	device := filepath.Clean(u.Path)
	if u.Path == "" {
		device = ""
	}
	proto := strings.ToUpper(q.Get("protocol"))
	if proto != "" && proto != "A" && proto != "B" && proto != "C" {
		return nil, fmt.Errorf("protocol=%q: want A, B or C", q.Get("protocol"))
	}
	allow := false
	if v := q.Get("allow_degraded"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("allow_degraded=%q: want 0 or 1", v)
		}
		allow = b
	}
	timeout := 5 * time.Second
	if v := q.Get("timeout"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("timeout=%q: want a duration such as 5s", v)
		}
		timeout = d
	}
	nbdAddr, agentAddr := q.Get("nbd"), q.Get("agent")
	if (nbdAddr == "") != (agentAddr == "") {
		return nil, fmt.Errorf("nbd= and agent= go together: the I/O and the state must come from the same node")
	}

	var src source
	if agentAddr != "" {
		src = agentSource{addr: agentAddr}
		if device == "" {
			device = "/dev/drbd0"
		}
	} else {
		minor := -1
		if device == "" && resource == "" {
			return nil, fmt.Errorf("no device or resource (drbd:///dev/drbd0 or drbd://?resource=r0)")
		}
		if device != "" {
			var st unix.Stat_t
			if err := unix.Stat(device, &st); err != nil {
				return nil, fmt.Errorf("%s: %w", device, err)
			}
			if st.Mode&unix.S_IFMT != unix.S_IFBLK || unix.Major(st.Rdev) != drbdMajor {
				return nil, fmt.Errorf("%s is not a DRBD device (block major %d)", device, drbdMajor)
			}
			minor = int(unix.Minor(st.Rdev))
		}
		proc := q.Get("proc")
		if proc == "" {
			proc = procPath
		}
		ls, err := newLocalSource(ctx, proc, resource, minor)
		if err != nil {
			return nil, err
		}
		if device == "" {
			device = fmt.Sprintf("/dev/drbd%d", ls.minor)
		}
		src = ls
	}

	sctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	st, err := src.State(sctx)
	if err != nil {
		return nil, fmt.Errorf("replication state: %w", err)
	}
	if proto != "" && st.Protocol != proto {
		// DRBD passes the change to a connected peer only: a disconnected peer would keep
		// the old protocol and refuse to reconnect.
		if !st.Connected() {
			return nil, fmt.Errorf("not switching %s to protocol %s while it is %s: the peer would keep protocol %s and refuse to reconnect", device, proto, orUnknown(st.Connection), orDash(st.Protocol))
		}
		if err := src.SetProtocol(sctx, proto); err != nil {
			return nil, fmt.Errorf("switch to protocol %s: %w", proto, err)
		}
		if st, err = src.State(sctx); err != nil {
			return nil, fmt.Errorf("replication state: %w", err)
		}
	}
	if proto != "" && st.Protocol != "" && st.Protocol != proto {
		return nil, fmt.Errorf("switched to protocol %s but DRBD reports %s", proto, st.Protocol)
	}
	name := device
	if resource != "" {
		name = fmt.Sprintf("%s (%s)", device, resource)
	}
	var degraded string
	if err := st.Healthy(); err != nil {
		if !allow {
			return nil, fmt.Errorf("refusing to measure %s: %v (allow_degraded=1 measures it anyway, labelled degraded)", name, err)
		}
	}
	if allow {
		degraded = st.Degraded()
	}

	var inner backends.Target
	access := "kernel"
	if agentAddr != "" {
		// A node agent speaks only for a testbed node, whose DRBD device is the testbed's
		// scratch disk: writing it destroys nothing of the user's.
		p.AllowDestructive = true
	}
	if nbdAddr != "" {
		inner, err = backends.Open(ctx, "nbd://"+nbdAddr+"/drbd0", p)
		access = "nbd " + nbdAddr
	} else {
		inner, err = backends.Open(ctx, "file://"+device, p)
	}
	if err != nil {
		return nil, err
	}
	if resource == "" {
		resource = st.Resource
	}
	return &Target{Target: inner, src: src, resource: resource, device: device, access: access,
		degraded: degraded, protocol: st.Protocol, timeout: timeout, openState: st}, nil
}

// Describe reports how the device was reached, with the protocol as its security/mode.
func (t *Target) Describe() map[string]string {
	d := map[string]string{}
	if in, ok := t.Target.(backends.Describer); ok {
		for k, v := range in.Describe() {
			d[k] = v
		}
	}
	d["access"] = t.access
	d["device"] = t.device
	d["security"] = "protocol " + orDash(t.protocol)
	d["drbd_protocol"] = t.protocol
	d["drbd_role"] = t.openState.Role + "/" + t.openState.PeerRole
	d["drbd_disk"] = t.openState.Disk + "/" + t.openState.PeerDisk
	d["drbd_connection"] = t.openState.Connection
	if t.openState.Version != "" {
		d["drbd_version"] = t.openState.Version
	}
	if t.resource != "" {
		d["drbd_resource"] = t.resource
	}
	if t.degraded != "" {
		d["degraded"] = t.degraded
	}
	return d
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "?"
	}
	return s
}

// ReplicationInfo implements bench.ReplicationSampler.
func (t *Target) ReplicationInfo() results.Replication {
	return results.Replication{Kind: "drbd", Resource: t.resource, Source: t.src.Name(), Protocol: t.protocol, Degraded: t.degraded}
}

// SampleReplication implements bench.ReplicationSampler.
func (t *Target) SampleReplication(ctx context.Context) (results.ReplicationState, error) {
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	st, err := t.src.State(ctx)
	if err != nil {
		return results.ReplicationState{}, err
	}
	return ToResult(st), nil
}

// ToResult converts a parsed state into the result document's form.
func ToResult(st drbdstate.State) results.ReplicationState {
	return results.ReplicationState{Role: st.Role, PeerRole: st.PeerRole, Connection: st.Connection,
		Replication: st.Replication, Disk: st.Disk, PeerDisk: st.PeerDisk, Protocol: st.Protocol,
		OutOfSyncBytes: st.OutOfSyncBytes, SyncPercent: st.SyncPercent, SentBytes: st.SentBytes, ReceivedBytes: st.ReceivedBytes}
}
