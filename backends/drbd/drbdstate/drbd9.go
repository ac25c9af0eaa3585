package drbdstate

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// statusJSON is the part of `drbdsetup status --json` (DRBD 9) that State uses. Counters
// are KiB.
type statusJSON struct {
	Name    string `json:"name"`
	Role    string `json:"role"`
	Devices []struct {
		Volume    int     `json:"volume"`
		Minor     int     `json:"minor"`
		DiskState string  `json:"disk-state"`
		Size      float64 `json:"size"`
		Read      float64 `json:"read"`
		Written   float64 `json:"written"`
	} `json:"devices"`
	Connections []struct {
		Name            string `json:"name"`
		ConnectionState string `json:"connection-state"`
		PeerRole        string `json:"peer-role"`
		PeerDevices     []struct {
			Volume           int      `json:"volume"`
			ReplicationState string   `json:"replication-state"`
			PeerDiskState    string   `json:"peer-disk-state"`
			Received         float64  `json:"received"`
			Sent             float64  `json:"sent"`
			OutOfSync        float64  `json:"out-of-sync"`
			HasSyncDetails   bool     `json:"has-sync-details"`
			PercentInSync    *float64 `json:"percent-in-sync"`
			Done             *float64 `json:"done"`
		} `json:"peer_devices"`
	} `json:"connections"`
}

// ParseStatusJSON parses `drbdsetup status --json` (DRBD 9.x) and returns one State per
// resource and volume.
func ParseStatusJSON(b []byte) ([]State, error) {
	var res []statusJSON
	if err := json.Unmarshal(clip(b), &res); err != nil {
		return nil, fmt.Errorf("drbdsetup status --json: %w", err)
	}
	var out []State
	for _, r := range res {
		for _, d := range r.Devices {
			st := New()
			st.Resource, st.Role, st.Minor = r.Name, r.Role, d.Minor
			st.Disk = d.DiskState
			st.SizeBytes, st.ReadBytes, st.WrittenBytes = kibF(d.Size), kibF(d.Read), kibF(d.Written)
			st.Connection = "StandAlone"
			st.Replication = "Off"
			if len(r.Connections) > 0 {
				c := r.Connections[0]
				st.Connection, st.PeerRole = c.ConnectionState, c.PeerRole
				for _, pd := range c.PeerDevices {
					if pd.Volume != d.Volume {
						continue
					}
					st.Replication, st.PeerDisk = pd.ReplicationState, pd.PeerDiskState
					st.SentBytes, st.ReceivedBytes = kibF(pd.Sent), kibF(pd.Received)
					st.OutOfSyncBytes = kibF(pd.OutOfSync)
					if pd.Done != nil && validPercent(*pd.Done) {
						st.SyncPercent = *pd.Done
					} else if pd.HasSyncDetails && pd.PercentInSync != nil && validPercent(*pd.PercentInSync) {
						st.SyncPercent = *pd.PercentInSync
					}
					break
				}
			}
			out = append(out, st)
		}
	}
	return out, nil
}

func validPercent(p float64) bool { return p >= 0 && p <= 100 }

// kibF converts a KiB figure from JSON to bytes; negative, fractional-garbage and huge values
// saturate rather than wrap.
func kibF(v float64) int64 {
	if !(v > 0) { // also NaN
		return 0
	}
	if v >= math.MaxInt64/1024 {
		return math.MaxInt64
	}
	return int64(v * 1024)
}

// Event is one line of `drbdsetup events2`: "exists|create|change|destroy|call|response",
// the object ("resource", "connection", "device", "peer-device", "path", "helper"), and its
// key:value fields. The line "exists -" that ends the initial state dump has Object "-".
type Event struct {
	Action string
	Object string
	Fields map[string]string
}

// ParseEvents2Line parses one events2 line (with or without --timestamps, whose leading
// timestamp is skipped).
func ParseEvents2Line(line string) (Event, error) {
	f := strings.Fields(line)
	if len(f) > 0 && len(f[0]) >= 10 && f[0][0] >= '0' && f[0][0] <= '9' {
		f = f[1:] // --timestamps: 2026-12-06T10:11:12.123456+00:00
	}
	if len(f) < 2 {
		return Event{}, fmt.Errorf("events2: short line %q", trunc(line))
	}
	switch f[0] {
	case "exists", "create", "change", "destroy", "call", "response", "rename":
	default:
		return Event{}, fmt.Errorf("events2: unknown action %q", trunc(f[0]))
	}
	ev := Event{Action: f[0], Object: f[1], Fields: make(map[string]string, len(f)-2)}
	for _, w := range f[2:] {
		if k, v, ok := strings.Cut(w, ":"); ok {
			ev.Fields[k] = v
		}
	}
	return ev, nil
}

func trunc(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}

// Tracker folds events2 lines into the State of one resource (and volume 0's minor unless
// Volume says otherwise): feed it `drbdsetup events2 --now --statistics` for a snapshot, or
// the live stream for changes.
type Tracker struct {
	Resource string
	Volume   string // "" means "0"
	st       State
	peer     string // the peer-node-id the peer fields follow (the first seen)
}

// NewTracker follows resource's volume 0.
func NewTracker(resource string) *Tracker {
	return &Tracker{Resource: resource, st: New()}
}

// State returns the state so far.
func (t *Tracker) State() State {
	s := t.st
	if s.Resource == "" {
		s.Resource = t.Resource
	}
	return s
}

// Apply folds one event into the state. Events of other resources and volumes are ignored.
func (t *Tracker) Apply(ev Event) {
	if ev.Fields["name"] != t.Resource {
		return
	}
	vol := t.Volume
	if vol == "" {
		vol = "0"
	}
	if v, ok := ev.Fields["volume"]; ok && v != vol {
		return
	}
	if p, ok := ev.Fields["peer-node-id"]; ok {
		if t.peer == "" {
			t.peer = p
		} else if p != t.peer {
			return
		}
	}
	f := ev.Fields
	set := func(dst *string, key string) {
		if v, ok := f[key]; ok {
			*dst = v
		}
	}
	setN := func(dst *int64, key string) {
		if v, ok := f[key]; ok {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				*dst = kib(n)
			}
		}
	}
	s := &t.st
	switch ev.Object {
	case "resource":
		if ev.Action == "destroy" {
			t.st = New()
			return
		}
		set(&s.Role, "role")
	case "connection":
		if ev.Action == "destroy" {
			s.Connection, s.Replication, s.PeerRole, s.PeerDisk = "StandAlone", "Off", "Unknown", "DUnknown"
			return
		}
		set(&s.Connection, "connection")
		set(&s.PeerRole, "role")
	case "device":
		if v, ok := f["minor"]; ok {
			if n, err := strconv.Atoi(v); err == nil && n >= 0 {
				s.Minor = n
			}
		}
		set(&s.Disk, "disk")
		setN(&s.SizeBytes, "size")
		setN(&s.ReadBytes, "read")
		setN(&s.WrittenBytes, "written")
	case "peer-device":
		set(&s.Replication, "replication")
		set(&s.PeerDisk, "peer-disk")
		setN(&s.SentBytes, "sent")
		setN(&s.ReceivedBytes, "received")
		setN(&s.OutOfSyncBytes, "out-of-sync")
		if v, ok := f["done"]; ok {
			if p, err := strconv.ParseFloat(v, 64); err == nil && validPercent(p) {
				s.SyncPercent = p
			}
		} else if _, ok := f["replication"]; ok && !s.Resyncing() {
			s.SyncPercent = -1
		}
	}
}

// ParseEvents2 folds a whole events2 dump (`drbdsetup events2 --now --statistics`) into the
// State of resource. Unparsable lines are an error naming the line.
func ParseEvents2(b []byte, resource string) (State, error) {
	t := NewTracker(resource)
	sc := bufio.NewScanner(bytes.NewReader(clip(b)))
	sc.Buffer(make([]byte, 0, 4096), 64*1024)
	n, seen := 0, false
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		ev, err := ParseEvents2Line(line)
		if err != nil {
			return t.State(), fmt.Errorf("line %d: %w", n, err)
		}
		if ev.Fields["name"] == resource {
			seen = true
		}
		t.Apply(ev)
	}
	if err := sc.Err(); err != nil {
		return t.State(), fmt.Errorf("events2: %w", err)
	}
	if !seen {
		return t.State(), fmt.Errorf("events2: no resource %q", resource)
	}
	return t.State(), nil
}
