package drbdnode

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"

	"github.com/vmstorbench/vmstorbench/backends/drbd/drbdstate"
	"github.com/vmstorbench/vmstorbench/results"
	"github.com/vmstorbench/vmstorbench/vm/linkemu"
)

// Replica is the testbed pair as a migrating VM's replicated disk (vm/migrate.Replica), in
// the published dual-primary scenario: node A is Primary and holds the source QEMU's disk;
// for the migration allow-two-primaries goes on and node B is promoted (its export then
// serves the destination QEMU's disk); after the switchover node A is demoted and
// two-primaries goes off, B staying Primary; a migration that does not complete demotes B
// instead.
type Replica struct {
	// Agent and NBD are node A's and node B's agent and export addresses.
	Agent, NBD [2]string
	// Protocol, if set, is switched to (online, on a connected pair) before the migration.
	Protocol string
	// RelayControl is the pair's replication-link control ("" none); Link, if set, shapes
	// the replication link for the run (restored by Restore).
	RelayControl string
	Link         *linkemu.Link

	mu       sync.Mutex
	prevLink *linkemu.Link
}

// ReplicaFromURL reads a testbed pair's endpoint URL (drbd:///dev/drbd0?nbd=…&agent=…&
// peer_nbd=…&peer_agent=…&relay=…&protocol=…); ok is false for any other URL (a local
// DRBD device, another backend).
func ReplicaFromURL(target string) (r *Replica, ok bool, err error) {
	u, err := url.Parse(target)
	if err != nil || u.Scheme != "drbd" {
		return nil, false, nil
	}
	q := u.Query()
	if q.Get("peer_agent") == "" && q.Get("peer_nbd") == "" {
		return nil, false, nil
	}
	r = &Replica{Agent: [2]string{q.Get("agent"), q.Get("peer_agent")}, NBD: [2]string{q.Get("nbd"), q.Get("peer_nbd")},
		Protocol: strings.ToUpper(q.Get("protocol")), RelayControl: q.Get("relay")}
	for _, a := range append(r.Agent[:], r.NBD[:]...) {
		if a == "" {
			return nil, true, errors.New("drbd: a migration on a pair needs both nodes' agent and export (agent=, nbd=, peer_agent=, peer_nbd=)")
		}
	}
	return r, true, nil
}

// ExportURL is node i's export as QEMU's NBD driver opens it.
func (r *Replica) ExportURL(i int) string { return "nbd://" + r.NBD[i] + "/drbd0" }

var nodeNames = [2]string{"a", "b"}

// call sends req to node i's agent.
func (r *Replica) call(ctx context.Context, i int, req drbdstate.Request) (*drbdstate.Response, error) {
	resp, err := drbdstate.Call(ctx, r.Agent[i], req)
	if err != nil {
		return resp, fmt.Errorf("node %s: %w", nodeNames[i], err)
	}
	return resp, nil
}

// steps runs the role requests in order, each on its node, and returns both nodes' states
// after the last (from the last answer of each node, else a state read).
func (r *Replica) steps(ctx context.Context, steps ...struct {
	node int
	req  drbdstate.Request
}) ([]results.ReplicaNodeState, error) {
	var last [2]*drbdstate.Response
	for _, s := range steps {
		resp, err := r.call(ctx, s.node, s.req)
		if err != nil {
			st, _ := r.Counters(ctx)
			return st, err
		}
		last[s.node] = resp
	}
	out := make([]results.ReplicaNodeState, 2)
	for i := range out {
		if last[i] != nil && last[i].State != nil {
			two := last[i].TwoPrimaries
			out[i] = nodeState(i, *last[i].State)
			out[i].TwoPrimaries = &two
			continue
		}
		resp, err := r.call(ctx, i, drbdstate.Request{Op: "state"})
		out[i] = stateOf(i, resp, err)
	}
	return out, nil
}

type step = struct {
	node int
	req  drbdstate.Request
}

func twoPrimaries(node int, on bool) step {
	return step{node, drbdstate.Request{Op: "two-primaries", TwoPrimaries: on}}
}

func role(node int, op string) step { return step{node, drbdstate.Request{Op: op}} }

func protocol(node int, p string) step {
	return step{node, drbdstate.Request{Op: "protocol", Protocol: p}}
}

// BeforeMigrate sets the run's replication link and protocol, then goes dual-primary:
// allow-two-primaries on both nodes (a net option DRBD compares on connect), B promoted
// and its export started.
func (r *Replica) BeforeMigrate(ctx context.Context) ([]results.ReplicaNodeState, error) {
	if r.Link != nil {
		if r.RelayControl == "" {
			return nil, errors.New("drbd: this pair's replication link cannot be reshaped (no relay= control): start the testbed with --drbd-link instead")
		}
		prev, err := SetReplicationLink(ctx, r.RelayControl, r.Link)
		if err != nil {
			return nil, err
		}
		r.mu.Lock()
		if r.prevLink == nil {
			r.prevLink = &prev
		}
		r.mu.Unlock()
	}
	// DRBD 8.4 refuses allow-two-primaries with protocol A or B ("Failure: (139) Protocol C
	// required"): the pair runs C while both nodes are Primary.
	return r.steps(ctx, protocol(0, "C"), twoPrimaries(0, true), twoPrimaries(1, true), role(1, "primary"))
}

// AfterSwitchover demotes A (its export closed first: the source QEMU is gone), turns
// two-primaries off and goes back to the run's protocol; B stays Primary.
func (r *Replica) AfterSwitchover(ctx context.Context) ([]results.ReplicaNodeState, error) {
	return r.steps(ctx, append([]step{role(0, "secondary"), twoPrimaries(1, false), twoPrimaries(0, false)}, r.backToProtocol(1)...)...)
}

// Abort demotes B (its export closed: the destination QEMU is gone), turns two-primaries
// off and goes back to the run's protocol: A alone is Primary, as before the migration.
func (r *Replica) Abort(ctx context.Context) ([]results.ReplicaNodeState, error) {
	return r.steps(ctx, append([]step{role(1, "secondary"), twoPrimaries(0, false), twoPrimaries(1, false)}, r.backToProtocol(0)...)...)
}

// backToProtocol switches the pair (through node i) from dual-primary's C back to the run's
// protocol.
func (r *Replica) backToProtocol(i int) []step {
	if r.Protocol == "" || r.Protocol == "C" {
		return nil
	}
	return []step{protocol(i, r.Protocol)}
}

// Counters reads both nodes' states (a node that does not answer is an error in its state).
func (r *Replica) Counters(ctx context.Context) ([]results.ReplicaNodeState, error) {
	out := make([]results.ReplicaNodeState, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range out {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := r.call(ctx, i, drbdstate.Request{Op: "state"})
			out[i], errs[i] = stateOf(i, resp, err), err
		}()
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// Describe is the result's replication section as the run starts.
func (r *Replica) Describe() results.MigrationReplication {
	rep := results.MigrationReplication{Kind: "drbd", Protocol: r.Protocol, Source: "a", Destination: "b", BeforeB: -1, DuringB: -1, AfterB: -1}
	if r.Protocol != "" && r.Protocol != "C" {
		rep.Note = "DRBD allows two primaries with protocol C only: the pair ran protocol C from node b's promotion (right before the migration) to the switchover, protocol " + r.Protocol + " before and after"
	}
	if l := r.Link; l != nil {
		rep.Link = &results.MigrationLink{Preset: l.Name, LatencyNS: int64(l.Latency), JitterNS: int64(l.Jitter), BandwidthBps: l.Bandwidth}
	}
	return rep
}

// Restore hands the testbed pair back as its endpoints expect it, after a run: node A
// Primary with its export, B Secondary, two-primaries off, the replication link as before.
// It is the testbed's housekeeping, not part of what a run measures.
func (r *Replica) Restore(ctx context.Context) error {
	var errs []error
	a, errA := r.call(ctx, 0, drbdstate.Request{Op: "state"})
	b, errB := r.call(ctx, 1, drbdstate.Request{Op: "state"})
	switch {
	case errA != nil || errB != nil:
		errs = append(errs, errA, errB)
	case a.State.Role == "Primary" && b.State.Role == "Secondary":
		// As found (a migration that did not start, or was aborted).
	default:
		var steps []step
		if b.State.Role == "Primary" {
			steps = append(steps, role(1, "secondary"))
		}
		if a.State.Role != "Primary" {
			steps = append(steps, role(0, "primary"))
		}
		if _, err := r.steps(ctx, steps...); err != nil {
			errs = append(errs, err)
		}
	}
	if errA == nil && errB == nil {
		if _, err := r.steps(ctx, twoPrimaries(0, false), twoPrimaries(1, false)); err != nil {
			errs = append(errs, err)
		}
	}
	r.mu.Lock()
	prev := r.prevLink
	r.prevLink = nil
	r.mu.Unlock()
	if prev != nil {
		if _, err := SetReplicationLink(ctx, r.RelayControl, prev); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("drbd pair not handed back with node a Primary: %w", err)
	}
	return nil
}

func nodeState(i int, st drbdstate.State) results.ReplicaNodeState {
	return results.ReplicaNodeState{Node: nodeNames[i], Role: st.Role, PeerRole: st.PeerRole, Connection: st.Connection,
		Disk: st.Disk, PeerDisk: st.PeerDisk, SentB: st.SentBytes, ReceivedB: st.ReceivedBytes}
}

func stateOf(i int, resp *drbdstate.Response, err error) results.ReplicaNodeState {
	if err != nil || resp == nil || resp.State == nil {
		if err == nil {
			err = errors.New("no state in the answer")
		}
		return results.ReplicaNodeState{Node: nodeNames[i], Error: err.Error()}
	}
	return nodeState(i, *resp.State)
}
