package node

import (
	"context"
	"errors"
	"fmt"

	"github.com/vmstorbench/vmstorbench/backends/drbd/drbdstate"
)

// changeRole runs a role request: "two-primaries" sets allow-two-primaries on this node,
// "primary" promotes it and exports its device, "secondary" closes the export and demotes it.
// It returns the state after, with the allow-two-primaries setting read back from show.
func (n *Node) changeRole(ctx context.Context, req drbdstate.Request) (drbdstate.State, bool, error) {
	minor := fmt.Sprint(Minor)
	switch req.Op {
	case "two-primaries":
		// A net option: DRBD compares it when the nodes connect, so both nodes are set.
		val := map[bool]string{true: "yes", false: "no"}[req.TwoPrimaries]
		if _, err := n.run(ctx, "", "drbdsetup-84", "net-options", n.localAddr(), n.peerAddr(), "--allow-two-primaries="+val); err != nil {
			return drbdstate.State{}, false, err
		}
	case "primary":
		if _, err := n.run(ctx, "", "drbdsetup-84", "primary", minor); err != nil {
			return drbdstate.State{}, false, err
		}
		n.mu.Lock()
		serving := n.export != nil
		n.mu.Unlock()
		if !serving {
			if err := n.serveNBD(); err != nil {
				return drbdstate.State{}, false, fmt.Errorf("promoted, but the NBD export did not start: %w", err)
			}
		}
	case "secondary":
		// DRBD refuses to demote a device held open: the export goes first (its clients,
		// a QEMU that no longer runs the guest, are cut).
		if err := n.stopNBD(); err != nil {
			return drbdstate.State{}, false, err
		}
		if _, err := n.run(ctx, "", "drbdsetup-84", "secondary", minor); err != nil {
			return drbdstate.State{}, false, err
		}
	}
	st, err := State()
	if err != nil {
		return st, false, err
	}
	out, err := n.run(ctx, "", "drbdsetup-84", "show", Resource)
	if err != nil {
		return st, false, err
	}
	cfgs, err := drbdstate.ParseShow(out)
	if err != nil || len(cfgs) != 1 {
		return st, false, fmt.Errorf("drbdsetup-84 show %s: %d resources, %v", Resource, len(cfgs), err)
	}
	return st, cfgs[0].TwoPrimaries, nil
}

// stopNBD closes the export and the device it held open.
func (n *Node) stopNBD() error {
	n.mu.Lock()
	exp, t := n.export, n.exported
	n.export, n.exported = nil, nil
	n.mu.Unlock()
	if exp == nil {
		return nil
	}
	return errors.Join(exp.Close(), t.Close())
}
