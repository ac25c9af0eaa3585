// Package iscsi registers the iscsi:// backend: one LUN of an iSCSI target, reached through
// the pure-Go initiator in package initiator (no kernel initiator, no libiscsi).
//
// The LUN is a block device: Size is its capacity, offsets and lengths must be multiples of
// its block size, and it is written only with OpenParams.AllowDestructive (--allow-destructive),
// the rule the file backend applies to block devices. Sync is SYNCHRONIZE CACHE(16), also
// for fdatasync=N; fio's sync= (OpenParams.SyncWrites, sync or dsync) sets FUA on every
// WRITE(16).
package iscsi

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/vmstorbench/vmstorbench/backends"
	"github.com/vmstorbench/vmstorbench/backends/iscsi/initiator"
)

// SecretEnv is the environment variable holding the CHAP secret (unless secret_file= names
// a file).
const SecretEnv = "VMSTORBENCH_ISCSI_SECRET"

// DefaultPort is the iSCSI well-known port.
const DefaultPort = 3260

// DefaultInitiatorName is the iSCSI name the initiator logs in with.
const DefaultInitiatorName = "iqn.2025-01.org.vmstorbench:initiator"

// maxTransferDefault bounds one READ/WRITE when the target states no limit: larger requests
// are split.
const maxTransferDefault = 16 << 20

func init() {
	backends.Register(backends.Backend{
		Scheme:      "iscsi",
		Description: "iSCSI LUN through a userspace initiator (pure Go, RFC 7143); CHAP and CRC32C digests optional",
		URLForms: []string{
			"iscsi://host[:port]/iqn.2004-04.com.example:target/1",
			"iscsi://host/iqn.2004-04.com.example:target/0?chap_user=bench&header_digest=crc32c",
		},
		Options: []backends.Option{
			{Name: "chap_user", Help: "log in with one-way CHAP (MD5) as this user; the secret comes from secret_file= or $" + SecretEnv, Default: "no authentication"},
			{Name: "secret_file", Help: "file holding the CHAP secret (else $" + SecretEnv + ")", Default: ""},
			{Name: "header_digest", Help: "none or crc32c: CRC32C over every PDU header", Default: "none"},
			{Name: "data_digest", Help: "none or crc32c: CRC32C over every data segment", Default: "none"},
			{Name: "timeout", Help: "limit for one command; a command that takes longer closes the session and fails the run", Default: backends.DefaultIOTimeout.String()},
			{Name: "initiator_name", Help: "our iSCSI initiator name (targets with ACLs need the allowed one)", Default: DefaultInitiatorName},
		},
		Open: open,
	})
}

// config is a parsed iscsi:// URL.
type config struct {
	init initiator.Config
	lun  uint64
}

func parseURL(u *url.URL) (config, error) {
	var c config
	if u.Hostname() == "" {
		return c, errors.New("no host (use iscsi://host[:port]/<target-iqn>/<lun>)")
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	if len(parts) != 2 || parts[0] == "" || parts[1] == "" {
		return c, errors.New("the path must be /<target-iqn>/<lun>, e.g. iscsi://host/iqn.2004-04.com.example:disk/1")
	}
	lun, err := strconv.ParseUint(parts[1], 10, 64)
	if err != nil || lun > 16383 {
		return c, fmt.Errorf("LUN %q: must be a number from 0 to 16383", parts[1])
	}
	c.lun = lun
	q := backends.NewQuery(u)
	hd, err := q.Enum("header_digest", "none", "none", "crc32c")
	if err != nil {
		return c, err
	}
	dd, err := q.Enum("data_digest", "none", "none", "crc32c")
	if err != nil {
		return c, err
	}
	timeout, err := q.Duration("timeout", backends.DefaultIOTimeout)
	if err != nil {
		return c, err
	}
	if timeout <= 0 {
		return c, errors.New("timeout must be positive")
	}
	user := q.String("chap_user", "")
	if u.User != nil && u.User.Username() != "" {
		if user != "" && user != u.User.Username() {
			return c, errors.New("the URL names two CHAP users (user@host and chap_user=)")
		}
		user = u.User.Username()
	}
	c.init = initiator.Config{
		Addr:          backends.HostPort(u, DefaultPort),
		TargetName:    parts[0],
		InitiatorName: q.String("initiator_name", DefaultInitiatorName),
		HeaderDigest:  hd == "crc32c",
		DataDigest:    dd == "crc32c",
		Timeout:       timeout,
		CHAPUser:      user,
		Dial:          backends.Dial,
	}
	if user == "" {
		if q.String("secret_file", "") != "" {
			return c, errors.New("secret_file= needs chap_user=")
		}
		return c, nil
	}
	secret, err := q.Secret("secret_file", SecretEnv)
	if err != nil {
		return c, err
	}
	if secret == "" {
		return c, fmt.Errorf("chap_user=%s needs a CHAP secret: set $%s or secret_file=", user, SecretEnv)
	}
	c.init.CHAPSecret = secret
	return c, nil
}

func open(ctx context.Context, u *url.URL, p backends.OpenParams) (backends.Target, error) {
	c, err := parseURL(u)
	if err != nil {
		return nil, err
	}
	if p.Write && !p.AllowDestructive {
		return nil, fmt.Errorf("refusing to write to LUN %d of %s: writing overwrites whatever the LUN holds; pass --allow-destructive to allow it", c.lun, c.init.TargetName)
	}
	s, err := initiator.Dial(ctx, c.init)
	if err != nil {
		return nil, openError{err}
	}
	t, err := newTarget(s, c, p)
	if err != nil {
		s.Close()
		return nil, openError{err}
	}
	return t, nil
}

// openError drops the "iscsi: " prefix of the initiator's errors: the registry's wrapping
// already starts with the scheme.
type openError struct{ err error }

func (e openError) Error() string { return strings.TrimPrefix(e.err.Error(), "iscsi: ") }
func (e openError) Unwrap() error { return e.err }

// Target is one open LUN. Its methods are safe for concurrent use: each call is one or more
// SCSI commands in flight on the shared session.
type Target struct {
	s         *initiator.Session
	lun       uint64
	target    string
	blockSize int64
	size      int64
	maxIO     int64
	writable  bool
	fua       bool // WRITE(16) with FUA, for fio's sync=
	desc      map[string]string
	closeOnce sync.Once
	closeErr  error
}

func newTarget(s *initiator.Session, c config, p backends.OpenParams) (*Target, error) {
	// fio's sync= (O_SYNC or O_DSYNC): a LUN has no metadata of its own, so both are FUA on
	// every WRITE(16).
	t := &Target{s: s, lun: c.lun, target: c.init.TargetName, writable: p.Write, fua: p.SyncWrites != ""}
	inq, err := s.Inquiry(c.lun)
	if err != nil {
		// Targets answer INQUIRY for a missing LUN with ILLEGAL REQUEST (tgt: LUN not
		// supported; gotgt: invalid field in CDB): check REPORT LUNS before blaming the LUN.
		var se *initiator.SCSIError
		if errors.As(err, &se) && se.HasSense && se.Sense.Key == initiator.SenseIllegalRequest {
			if luns, lerr := s.ReportLUNs(); lerr == nil && !slices.Contains(luns, c.lun) {
				return nil, t.noSuchLUN()
			}
		}
		return nil, err
	}
	if !inq.Present() {
		return nil, t.noSuchLUN()
	}
	if !inq.IsDisk() {
		return nil, fmt.Errorf("LUN %d of %s is a %s, not a disk%s", c.lun, c.init.TargetName, inq.DeviceTypeName(), t.lunList())
	}
	// TEST UNIT READY consumes the unit attention both tgt and gotgt report after login.
	if err := s.TestUnitReady(c.lun); err != nil {
		return nil, err
	}
	capacity, err := s.ReadCapacity(c.lun)
	if err != nil {
		return nil, err
	}
	t.blockSize, t.size = int64(capacity.BlockSize), capacity.Bytes()
	if p.Size > t.size && !p.SizeIsDefault {
		return nil, fmt.Errorf("the job needs %d bytes but LUN %d of %s holds %d bytes (%d blocks of %d): lower size= or offset=", p.Size, c.lun, c.init.TargetName, t.size, capacity.Blocks, capacity.BlockSize)
	}
	t.maxIO = maxTransferDefault
	if bl, err := s.BlockLimits(c.lun); err == nil && bl.MaxTransferBlocks > 0 {
		t.maxIO = min(t.maxIO, int64(bl.MaxTransferBlocks)*t.blockSize)
	}
	t.maxIO -= t.maxIO % t.blockSize
	if t.maxIO <= 0 {
		t.maxIO = t.blockSize
	}
	prm := s.Params()
	security := "none"
	if c.init.CHAPUser != "" {
		security = "chap"
	}
	t.desc = map[string]string{
		"security":   security,
		"access":     "userspace",
		"digest":     digestDesc(prm.HeaderDigest, prm.DataDigest),
		"block_size": strconv.FormatInt(t.blockSize, 10),
		"device":     strings.TrimSpace(inq.Vendor + " " + inq.Product + " " + inq.Revision),
	}
	if t.fua {
		t.desc["sync"] = "fua"
	}
	return t, nil
}

func digestDesc(h, d bool) string {
	name := func(b bool) string {
		if b {
			return "crc32c"
		}
		return "none"
	}
	if !h && !d {
		return "none"
	}
	return "header=" + name(h) + ",data=" + name(d)
}

func (t *Target) noSuchLUN() error {
	return fmt.Errorf("LUN %d does not exist on %s%s", t.lun, t.target, t.lunList())
}

// lunList names the target's LUNs for error messages, best effort.
func (t *Target) lunList() string {
	luns, err := t.s.ReportLUNs()
	if err != nil || len(luns) == 0 {
		return ""
	}
	s := make([]string, len(luns))
	for i, l := range luns {
		s[i] = strconv.FormatUint(l, 10)
	}
	return " (the target has LUNs " + strings.Join(s, ", ") + ")"
}

// Size implements backends.Target: the LUN's capacity.
func (t *Target) Size() int64 { return t.size }

// BlockSize is the LUN's logical block size: offsets and lengths must be multiples of it.
func (t *Target) BlockSize() int64 { return t.blockSize }

// Describe implements backends.Describer.
func (t *Target) Describe() map[string]string {
	m := make(map[string]string, len(t.desc))
	for k, v := range t.desc {
		m[k] = v
	}
	return m
}

func (t *Target) aligned(op string, off int64, n int) error {
	if off < 0 {
		return fmt.Errorf("iscsi: %s at negative offset %d", op, off)
	}
	if off%t.blockSize != 0 || int64(n)%t.blockSize != 0 {
		return fmt.Errorf("iscsi: %s of %d bytes at offset %d: offsets and lengths must be multiples of the LUN's %d-byte block size", op, n, off, t.blockSize)
	}
	return nil
}

// ReadAt implements io.ReaderAt. Reading past the end of the LUN returns io.EOF.
func (t *Target) ReadAt(p []byte, off int64) (int, error) {
	if err := t.aligned("read", off, len(p)); err != nil {
		return 0, err
	}
	return t.device().ReadAt(p, off, func(b []byte, o int64) error {
		return t.s.Read16(t.lun, uint64(o/t.blockSize), uint32(int64(len(b))/t.blockSize), b)
	})
}

// WriteAt implements io.WriterAt.
func (t *Target) WriteAt(p []byte, off int64) (int, error) {
	if !t.writable {
		return 0, errors.New("iscsi: the LUN was opened for reading only")
	}
	if err := t.aligned("write", off, len(p)); err != nil {
		return 0, err
	}
	return t.device().WriteAt(p, off, func(b []byte, o int64) error {
		lba, blocks := uint64(o/t.blockSize), uint32(int64(len(b))/t.blockSize)
		if t.fua {
			return t.s.Write16FUA(t.lun, lba, blocks, b)
		}
		return t.s.Write16(t.lun, lba, blocks, b)
	})
}

func (t *Target) device() backends.BlockDevice {
	return backends.BlockDevice{Scheme: "iscsi", What: "the LUN", Size: t.size, MaxIO: t.maxIO}
}

// DropCache has nothing to drop: the initiator keeps no cache, and the target's cache is out
// of its reach.
func (t *Target) DropCache() (string, error) { return "server cache not droppable", nil }

// Sync implements backends.Target with SYNCHRONIZE CACHE(16).
func (t *Target) Sync() error { return t.s.SynchronizeCache16(t.lun) }

// Close logs out and closes the connection.
func (t *Target) Close() error {
	t.closeOnce.Do(func() { t.closeErr = t.s.Close() })
	return t.closeErr
}
