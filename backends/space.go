package backends

import (
	"fmt"
	"strconv"
	"strings"
)

// Free-space rules every backend that creates or extends bench files follows, kept here once:
// before it allocates anything, a backend asks its storage how much is free (statfs(2),
// NFS FSSTAT, SMB FileFsFullSizeInformation) and calls CheckSpace with the bytes it would
// newly allocate itself plus OpenParams.SpaceNeeded (what the rest of the run will allocate
// on the same storage). An existing file the backend is allowed to use needs only the bytes
// by which it grows.

// SpaceMargin is what a run must leave free: 5% of the bytes it needs, at least 64 MiB, but
// never more than 5% of the filesystem's size when the backend knows it (so that a small
// filesystem, such as a 64 MiB tmpfs, stays usable). The margin keeps a benchmark from filling
// a disk that other programs write to.
func SpaceMargin(need, fsSize int64) int64 {
	m := max(need/20, 64<<20)
	if fsSize > 0 {
		m = min(m, fsSize/20)
	}
	return m
}

// Space is what a backend learned about the storage it would allocate on.
type Space struct {
	// Free is the bytes available to this user (statfs f_bavail, FSSTAT abytes).
	Free int64
	// Size is the filesystem's total size; 0 if unknown.
	Size int64
	// Where names the storage in the error, e.g. "127.0.0.1:/export" or "/var/tmp".
	Where string
}

// CheckSpace refuses a run that needs more than fits in s with the margin. own is what the
// calling Open would newly allocate (0 when it allocates nothing); p.SpaceNeeded and
// p.SpaceFiles are what the rest of the run will. The error is one line, e.g.
// "need 100.0 GiB for 1 bench file(s), 12.3 GiB free on 127.0.0.1:/export".
func CheckSpace(s Space, own int64, p OpenParams) error {
	need := own + max(p.SpaceNeeded, 0)
	if need <= 0 {
		return nil
	}
	files := max(p.SpaceFiles, 0)
	if own > 0 {
		files++
	}
	margin := SpaceMargin(need, s.Size)
	if need+margin <= s.Free {
		return nil
	}
	return fmt.Errorf("need %s for %d bench file(s), %s free on %s (%s must stay free)",
		HumanBytes(need), max(files, 1), HumanBytes(s.Free), s.Where, HumanBytes(margin))
}

// HumanBytes formats n with one decimal in binary units: "1.0 GiB", "512.0 MiB", "100 B".
func HumanBytes(n int64) string {
	units := []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	if n < 1024 && n > -1024 {
		return strconv.FormatInt(n, 10) + " B"
	}
	v := float64(n) / 1024
	i := 0
	for (v >= 1024 || v <= -1024) && i < len(units)-1 {
		v /= 1024
		i++
	}
	return strings.TrimSpace(strconv.FormatFloat(v, 'f', 1, 64)) + " " + units[i]
}
