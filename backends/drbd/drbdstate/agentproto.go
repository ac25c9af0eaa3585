package drbdstate

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/vmstorbench/vmstorbench/internal/jsonline"
)

// The node agent protocol: the agent in a testbed DRBD node answers one JSON request per
// line with one JSON response per line over TCP. It is how the host reads the state of a
// node's DRBD and switches its protocol: the node's DRBD is in a guest kernel the host cannot
// read /proc of.

// Request is one request to a node agent.
type Request struct {
	// Op is "state", "protocol" (switch to Protocol with net-options), "capture" (the raw
	// outputs of /proc/drbd, drbdsetup-84 show and events2, for tests), "write", "read",
	// "two-primaries" (TwoPrimaries), "primary" (promote, then export the device over NBD),
	// "secondary" (close the NBD export, then demote).
	Op       string `json:"op"`
	Protocol string `json:"protocol,omitempty"`
	// Offset, Length and Data are for "write" (Data to the DRBD device at Offset) and "read"
	// (Length bytes of the backing disk at Offset: what replication put there, readable on a
	// Secondary whose DRBD device cannot be opened). Both are 4 KiB-aligned (O_DIRECT).
	Offset int64  `json:"offset,omitempty"`
	Length int    `json:"length,omitempty"`
	Data   []byte `json:"data,omitempty"`
	// Device ("drbd" or "raw": a second disk with no DRBD on it, the reference) and
	// RuntimeMS are for "bench": 4 KiB random O_DIRECT writes at queue depth 1 in the node.
	// Count and Length are for "probe": Count request/replies of Length bytes over the
	// replication link to the peer's echo port (the link's own latency, without DRBD).
	Device    string `json:"device,omitempty"`
	RuntimeMS int    `json:"runtime_ms,omitempty"`
	Count     int    `json:"count,omitempty"`
	// URL is for "run": a short vmstorbench run in the node on a drbd:// URL, which tests the
	// drbd backend's own state reading (/proc/drbd, drbdsetup-84) against a real DRBD.
	URL string `json:"url,omitempty"`
	// TwoPrimaries is for "two-primaries": net-options --allow-two-primaries=yes|no on this
	// node (dual-primary while a VM live-migrates between the nodes).
	TwoPrimaries bool `json:"two_primaries,omitempty"`
}

// Response is a node agent's answer.
type Response struct {
	State *State `json:"state,omitempty"`
	// TwoPrimaries is the node's allow-two-primaries setting ("primary", "secondary",
	// "two-primaries" report it, read from drbdsetup show).
	TwoPrimaries bool `json:"two_primaries,omitempty"`
	// Raw holds raw outputs by name ("proc", "show") for "capture".
	Raw  map[string]string `json:"raw,omitempty"`
	Data []byte            `json:"data,omitempty"`
	// Figures are a bench's or probe's results: "iops", "p50_ns", "mean_ns", "p99_ns", "n".
	Figures map[string]float64 `json:"figures,omitempty"`
	// Result is the result document of a "run".
	Result json.RawMessage `json:"result,omitempty"`
	// Ready is true once the node is set up (the primary exports its device); SetupError
	// says why its set-up failed.
	Ready      bool   `json:"ready,omitempty"`
	SetupError string `json:"setup_error,omitempty"`
	Error      string `json:"error,omitempty"`
}

// maxResponse bounds a response line: a state is a few hundred bytes, a capture a few KiB.
const maxResponse = 1 << 20

// Call sends req to the node agent at addr and reads its response, within ctx's deadline
// (a default of 5 s applies when ctx has none).
func Call(ctx context.Context, addr string, req Request) (*Response, error) {
	var resp Response
	if err := jsonline.Call(ctx, addr, req, &resp, maxResponse); err != nil {
		return nil, fmt.Errorf("drbd node agent %s: %s: %w", addr, req.Op, err)
	}
	if resp.Error != "" {
		return &resp, fmt.Errorf("drbd node agent %s: %s: %s", addr, req.Op, resp.Error)
	}
	return &resp, nil
}
