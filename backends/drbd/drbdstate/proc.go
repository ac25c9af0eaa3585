package drbdstate

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// ParseProc parses /proc/drbd as DRBD 8.4 writes it and returns one State per configured
// minor, in the order listed. Unconfigured minors are left out. DRBD 9 keeps only the version
// line there: it gives no minors (use ParseStatusJSON or ParseEvents2).
//
//	version: 8.4.11 (api:1/proto:86-101)
//	 0: cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate C r-----
//	    ns:0 nr:0 dw:0 dr:1040 al:0 bm:0 lo:0 pe:0 ua:0 ap:0 ep:1 wo:f oos:0
//		[==>.................] sync'ed: 15.2% (54328/63992)K
func ParseProc(b []byte) (version string, states []State, err error) {
	sc := bufio.NewScanner(bytes.NewReader(clip(b)))
	sc.Buffer(make([]byte, 0, 4096), 64*1024)
	var cur *State
	for sc.Scan() {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(trimmed, "version:"):
			f := strings.Fields(strings.TrimPrefix(trimmed, "version:"))
			if len(f) > 0 {
				version = f[0]
			}
			continue
		case trimmed == "" || strings.HasPrefix(trimmed, "srcversion:") || strings.HasPrefix(trimmed, "GIT-hash:"):
			continue
		}
		if minor, rest, ok := minorLine(trimmed); ok {
			if len(states) >= 1<<16 {
				return version, states, fmt.Errorf("/proc/drbd: more than %d minors", 1<<16)
			}
			st, configured := parseProcMinor(minor, rest)
			st.Version = version
			if !configured {
				cur = nil
				continue
			}
			states = append(states, st)
			cur = &states[len(states)-1]
			continue
		}
		if cur == nil {
			continue
		}
		switch {
		case strings.HasPrefix(trimmed, "ns:") || strings.Contains(trimmed, " oos:"):
			parseProcCounters(cur, trimmed)
		case strings.Contains(trimmed, "sync'ed:") || strings.Contains(trimmed, "verified:"):
			if p, ok := percentAfter(trimmed); ok {
				cur.SyncPercent = p
			}
		}
	}
	if err := sc.Err(); err != nil {
		return version, states, fmt.Errorf("/proc/drbd: %w", err)
	}
	if version == "" && len(states) == 0 {
		return "", nil, fmt.Errorf("/proc/drbd: no version line and no minors: not DRBD output")
	}
	return version, states, nil
}

// minorLine splits " 0: cs:..." into 0 and "cs:...".
func minorLine(s string) (int, string, bool) {
	i := strings.IndexByte(s, ':')
	if i <= 0 || i > 7 {
		return 0, "", false
	}
	n, err := strconv.Atoi(s[:i])
	if err != nil || n < 0 {
		return 0, "", false
	}
	return n, strings.TrimSpace(s[i+1:]), true
}

func parseProcMinor(minor int, rest string) (State, bool) {
	st := New()
	st.Minor = minor
	f := strings.Fields(rest)
	for i, w := range f {
		k, v, ok := strings.Cut(w, ":")
		if !ok {
			// The protocol letter stands alone after ds:.
			if i > 0 && (w == "A" || w == "B" || w == "C") {
				st.Protocol = w
			}
			continue
		}
		switch k {
		case "cs":
			if v == "Unconfigured" {
				return st, false
			}
			setCS84(&st, v)
		case "ro", "st": // "st:" is what DRBD 8.3 called the roles
			st.Role, st.PeerRole = pair(v)
		case "ds":
			st.Disk, st.PeerDisk = pair(v)
		}
	}
	return st, true
}

// setCS84 maps DRBD 8.4's single connection state onto Connection and Replication as DRBD
// 9 splits them, so that callers need not know which version they read.
func setCS84(st *State, cs string) {
	switch cs {
	case "StandAlone", "Disconnecting", "Unconnected", "Timeout", "BrokenPipe", "NetworkFailure",
		"ProtocolError", "TearDown", "WFConnection", "WFReportParams":
		st.Connection = cs
		st.Replication = "Off"
	case "Connected":
		st.Connection = "Connected"
		st.Replication = "Established"
	default: // StartingSyncS, WFBitMapS, SyncSource, Ahead, VerifyS, …: connected, replicating in some way
		st.Connection = "Connected"
		st.Replication = cs
	}
}

func pair(v string) (string, string) {
	a, b, _ := strings.Cut(v, "/")
	return a, b
}

func parseProcCounters(st *State, s string) {
	for _, w := range strings.Fields(s) {
		k, v, ok := strings.Cut(w, ":")
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			continue
		}
		switch k {
		case "ns":
			st.SentBytes = kib(n)
		case "nr":
			st.ReceivedBytes = kib(n)
		case "dw":
			st.WrittenBytes = kib(n)
		case "dr":
			st.ReadBytes = kib(n)
		case "oos":
			st.OutOfSyncBytes = kib(n)
		}
	}
}

// percentAfter finds "NN.N%" in a progress line.
func percentAfter(s string) (float64, bool) {
	for _, w := range strings.Fields(s) {
		if v, ok := strings.CutSuffix(w, "%"); ok {
			p, err := strconv.ParseFloat(v, 64)
			if err == nil && p >= 0 && p <= 100 {
				return p, true
			}
		}
	}
	return 0, false
}
