// Package drbdstate reads what DRBD reports about a resource: /proc/drbd (DRBD 8.4),
// `drbdsetup show` (8.4 and 9.x, for the protocol and addresses), `drbdsetup status --json`
// and `drbdsetup events2` (9.x). The input comes from a kernel or a program on another
// machine, so every parser takes bytes it must not trust: nothing here panics, allocates in
// proportion to a number it read, or loops without consuming input.
package drbdstate

import (
	"fmt"
	"strings"
)

// State is one resource's replication state as seen from the local node. Byte counters are
// cumulative since the resource was configured (DRBD reports KiB; they are converted). With
// several peers (DRBD 9) the peer fields describe the first connection.
type State struct {
	// Version is the kernel module's version ("8.4.11", "9.2.8") when the source gives it.
	Version  string `json:"version,omitempty"`
	Resource string `json:"resource,omitempty"`
	Minor    int    `json:"minor"`
	// Role and PeerRole: Primary, Secondary, Unknown.
	Role     string `json:"role,omitempty"`
	PeerRole string `json:"peer_role,omitempty"`
	// Connection is the connection state (Connected, StandAlone, Connecting, WFConnection…);
	// Replication is the replication state (Established, SyncSource, SyncTarget…; in DRBD
	// 8.4 both come from the single "cs:" field, so a resyncing 8.4 pair shows Connection
	// "Connected" and Replication "SyncSource").
	Connection  string `json:"connection,omitempty"`
	Replication string `json:"replication,omitempty"`
	// Disk and PeerDisk: UpToDate, Inconsistent, Outdated, DUnknown, Diskless…
	Disk     string `json:"disk,omitempty"`
	PeerDisk string `json:"peer_disk,omitempty"`
	// Protocol is A, B or C (empty when the source does not say).
	Protocol string `json:"protocol,omitempty"`
	// OutOfSyncBytes is what the peer is missing (or this node, as a sync target).
	OutOfSyncBytes int64 `json:"out_of_sync_bytes"`
	// SyncPercent is the resync progress (0–100), -1 when no resync is running.
	SyncPercent float64 `json:"sync_percent"`
	// SentBytes and ReceivedBytes are the replication traffic over the DRBD link (8.4 ns/nr,
	// 9.x peer-device sent/received).
	SentBytes     int64 `json:"sent_bytes"`
	ReceivedBytes int64 `json:"received_bytes"`
	// WrittenBytes and ReadBytes are the local disk's traffic (8.4 dw/dr, 9.x written/read).
	WrittenBytes int64 `json:"written_bytes"`
	ReadBytes    int64 `json:"read_bytes"`
	// SizeBytes is the device size when the source gives it (9.x).
	SizeBytes int64 `json:"size_bytes,omitempty"`
}

// New returns an empty State: no resync, minor unknown.
func New() State { return State{Minor: -1, SyncPercent: -1} }

// Connected reports whether the replication link is up (DRBD 8.4 names resync states in its
// connection field; they are connected too).
func (s State) Connected() bool {
	switch s.Connection {
	case "Connected":
		return true
	}
	switch s.Replication {
	case "Established", "SyncSource", "SyncTarget", "PausedSyncS", "PausedSyncT", "VerifyS", "VerifyT",
		"WFBitMapS", "WFBitMapT", "WFSyncUUID", "StartingSyncS", "StartingSyncT", "Ahead", "Behind":
		return true
	}
	return false
}

// Resyncing reports whether a resync is running or waiting.
func (s State) Resyncing() bool {
	switch s.Replication {
	case "SyncSource", "SyncTarget", "PausedSyncS", "PausedSyncT", "StartingSyncS", "StartingSyncT", "WFBitMapS", "WFBitMapT", "WFSyncUUID":
		return true
	}
	return s.SyncPercent >= 0
}

// Healthy returns nil when the local node can be measured as a normal replicated device:
// Primary with an UpToDate disk. Otherwise it says which condition fails.
func (s State) Healthy() error {
	var why []string
	if s.Role != "Primary" {
		why = append(why, fmt.Sprintf("role is %s, not Primary", orUnknown(s.Role)))
	}
	if s.Disk != "UpToDate" {
		why = append(why, fmt.Sprintf("disk is %s, not UpToDate", orUnknown(s.Disk)))
	}
	if len(why) == 0 {
		return nil
	}
	return fmt.Errorf("%s", strings.Join(why, ", "))
}

// Degraded describes, in a few words, what makes a Primary/UpToDate pair less than fully
// replicated (peer gone, peer disk not UpToDate, resync): "" when nothing does.
func (s State) Degraded() string {
	var why []string
	if e := s.Healthy(); e != nil {
		why = append(why, e.Error())
	}
	if !s.Connected() {
		why = append(why, "not connected ("+orUnknown(s.Connection)+")")
	} else if s.PeerDisk != "UpToDate" {
		why = append(why, "peer disk "+orUnknown(s.PeerDisk))
	}
	if s.Resyncing() {
		why = append(why, "resync running")
	}
	return strings.Join(why, ", ")
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// maxInput bounds what any parser reads: real outputs are a few KiB per resource.
const maxInput = 1 << 20

func clip(b []byte) []byte {
	if len(b) > maxInput {
		return b[:maxInput]
	}
	return b
}

// kib converts a KiB counter to bytes, saturating instead of overflowing.
func kib(n int64) int64 {
	if n < 0 {
		return 0
	}
	if n > (1<<63-1)/1024 {
		return 1<<63 - 1
	}
	return n * 1024
}
