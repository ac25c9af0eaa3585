// Package nbd registers the nbd:// and nbd+unix:// backends: one export of an NBD server
// (qemu-nbd, nbdkit, nbd-server, vmstorbench's own vm/nbdexport, a DRBD node's export),
// reached through a pure-Go client.
//
// The client speaks fixed newstyle negotiation, selects the export with NBD_OPT_GO (asking
// for its block sizes, and honouring them), falls back to NBD_OPT_EXPORT_NAME on servers
// without NBD_OPT_GO, and optionally upgrades to TLS with NBD_OPT_STARTTLS. It uses simple
// replies only (structured replies are never negotiated). Requests of many callers are in
// flight at once on one connection, matched to their replies by handle; every request has a
// deadline (timeout=), and a server that dies or hangs fails every request in flight within
// it. The Target is a backends.Queuer: one goroutine can keep many I/Os in flight through a
// Queue and reap them, reading their replies itself (see async.go), as fio's asynchronous
// engines do.
//
// Durability: Sync sends NBD_CMD_FLUSH (when the export offers it). direct=1 maps to
// NBD_CMD_FLAG_FUA on every write: the client keeps no cache, so what O_DIRECT means here is
// write-through on the server — each write is durable when it is answered. An export that
// offers FLUSH but not FUA gets a FLUSH after each write instead.
//
// An export is a block device: Size is the export's size, and it is written only with
// OpenParams.AllowDestructive (--allow-destructive), as iscsi:// LUNs and block devices.
package nbd

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/vmstorbench/vmstorbench/backends"
	"github.com/vmstorbench/vmstorbench/internal/nbdproto"
)

// DefaultPort is the NBD well-known port.
const DefaultPort = 10809

func init() {
	common := []backends.Option{
		{Name: "timeout", Help: "limit for the negotiation and for each request; a request that takes longer closes the connection and fails the run", Default: backends.DefaultIOTimeout.String()},
		{Name: "tls", Help: "on: upgrade with NBD_OPT_STARTTLS and verify the server's certificate (fail if the server refuses)", Default: "off"},
		{Name: "tls_ca", Help: "PEM file of the CA that signed the server's certificate (with tls=on)", Default: "the system's roots"},
		{Name: "tls_cert", Help: "PEM client certificate, for servers that verify clients (with tls_key=)", Default: ""},
		{Name: "tls_key", Help: "PEM private key of tls_cert=", Default: ""},
		{Name: "tls_hostname", Help: "name (or IP) the server's certificate must be valid for", Default: "the URL's host"},
	}
	backends.Register(backends.Backend{
		Scheme:      "nbd",
		Description: "NBD export through a userspace client (pure Go, fixed newstyle, many requests in flight); TLS optional",
		URLForms: []string{
			"nbd://host[:port]/exportname",
			"nbd://127.0.0.1:10809/vm?timeout=5s",
			"nbd://host/vm?tls=on&tls_ca=/etc/pki/qemu/ca-cert.pem",
		},
		Options: common,
		Open:    open,
	})
	backends.Register(backends.Backend{
		Scheme:      "nbd+unix",
		Description: "NBD export over a Unix socket (as nbd://)",
		URLForms:    []string{"nbd+unix:///exportname?socket=/run/qemu-nbd.sock"},
		Options: append([]backends.Option{
			{Name: "socket", Help: "path of the server's Unix socket (required)", Default: ""},
		}, common...),
		Open: open,
	})
}

// config is a parsed nbd:// or nbd+unix:// URL.
type config struct {
	network, addr string
	export        string
	timeout       time.Duration
	tls           *tls.Config
}

func parseURL(u *url.URL) (config, error) {
	var c config
	q := backends.NewQuery(u)
	switch u.Scheme {
	case "nbd+unix":
		if u.Host != "" {
			return c, errors.New("nbd+unix:// takes no host: use nbd+unix:///exportname?socket=/path")
		}
		c.network, c.addr = "unix", q.String("socket", "")
		if c.addr == "" {
			return c, errors.New("nbd+unix:// needs socket=/path/of/the/server.sock")
		}
	default:
		if u.Hostname() == "" {
			return c, errors.New("no host (use nbd://host[:port]/exportname)")
		}
		if p := u.Port(); p != "" {
			if n, err := strconv.Atoi(p); err != nil || n <= 0 || n > 65535 {
				return c, fmt.Errorf("port %q: must be a number from 1 to 65535", p)
			}
		}
		c.network, c.addr = "tcp", backends.HostPort(u, DefaultPort)
	}
	if u.User != nil {
		return c, errors.New("NBD has no user names: remove user@ from the URL")
	}
	c.export = strings.TrimPrefix(u.Path, "/")
	if len(c.export) > 4096 {
		return c, errors.New("the export name is longer than the 4096 bytes NBD allows")
	}
	timeout, err := q.Duration("timeout", backends.DefaultIOTimeout)
	if err != nil {
		return c, err
	}
	if timeout <= 0 {
		return c, errors.New("timeout must be positive")
	}
	c.timeout = timeout
	useTLS, err := q.Bool("tls", false)
	if err != nil {
		return c, err
	}
	ca, cert, key, host := q.String("tls_ca", ""), q.String("tls_cert", ""), q.String("tls_key", ""), q.String("tls_hostname", "")
	if !useTLS {
		if ca != "" || cert != "" || key != "" || host != "" {
			return c, errors.New("tls_ca=, tls_cert=, tls_key= and tls_hostname= need tls=on")
		}
		return c, nil
	}
	if host == "" {
		host = u.Hostname()
	}
	if host == "" {
		return c, errors.New("tls=on over a Unix socket needs tls_hostname= (the name the server's certificate is for)")
	}
	c.tls = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return c, fmt.Errorf("tls_ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return c, fmt.Errorf("tls_ca: no PEM certificate in %s", ca)
		}
		c.tls.RootCAs = pool
	}
	if (cert == "") != (key == "") {
		return c, errors.New("tls_cert= and tls_key= go together")
	}
	if cert != "" {
		kp, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return c, fmt.Errorf("tls_cert/tls_key: %w", err)
		}
		c.tls.Certificates = []tls.Certificate{kp}
	}
	return c, nil
}

func dial(ctx context.Context, c config) (net.Conn, error) {
	if c.network == "tcp" {
		return backends.Dial(ctx, c.addr)
	}
	ctx, cancel := context.WithTimeout(ctx, min(c.timeout, backends.DefaultDialTimeout))
	defer cancel()
	var d net.Dialer
	return d.DialContext(ctx, "unix", c.addr)
}

func open(ctx context.Context, u *url.URL, p backends.OpenParams) (backends.Target, error) {
	c, err := parseURL(u)
	if err != nil {
		return nil, err
	}
	if p.Write && !p.AllowDestructive {
		return nil, fmt.Errorf("refusing to write to NBD export %q: writing overwrites whatever the export holds; pass --allow-destructive to allow it", c.export)
	}
	nc, err := dial(ctx, c)
	if err != nil {
		return nil, openError{fmt.Errorf("connect: %w", err)}
	}
	tc, info, err := handshake(ctx, nc, handshakeConfig{export: c.export, tls: c.tls}, c.timeout)
	if err != nil {
		nc.Close()
		return nil, openError{err}
	}
	t, err := newTarget(tc, c, info, p)
	if err != nil {
		tc.Close()
		return nil, err
	}
	t.c = newConn(tc, c.timeout)
	return t, nil
}

// openError drops the "nbd: " prefix of the client's errors: the registry's wrapping already
// starts with the scheme.
type openError struct{ err error }

func (e openError) Error() string { return strings.TrimPrefix(e.err.Error(), "nbd: ") }
func (e openError) Unwrap() error { return e.err }

// Target is one open export. Its methods are safe for concurrent use: each call is one or
// more requests in flight on the shared connection.
type Target struct {
	c        *conn
	export   string
	size     int64
	minBlock int64
	maxIO    int64
	writable bool
	fua      bool // direct: FUA on every write
	flushAll bool // direct without FUA: FLUSH after every write
	canFlush bool
	desc     map[string]string
}

func newTarget(nc net.Conn, c config, info nbdproto.ExportInfo, p backends.OpenParams) (*Target, error) {
	if info.Size > 1<<62 {
		return nil, fmt.Errorf("export %q: the server states a size of %d bytes", c.export, info.Size)
	}
	t := &Target{export: c.export, size: int64(info.Size), writable: p.Write, minBlock: 1, maxIO: nbdproto.DefaultMaxPayload}
	readOnly := info.Flags&nbdproto.TFlagReadOnly != 0
	if p.Write && readOnly {
		return nil, fmt.Errorf("export %q is read-only (the server set NBD_FLAG_READ_ONLY): a writing workload cannot run on it", c.export)
	}
	// p.Size is not checked: without size= the engine asks for its default (1 GiB) and then
	// fits the region to Size; with size= it refuses a region beyond Size itself.
	if info.MinBlock > 0 {
		t.minBlock = int64(info.MinBlock)
		if info.MaxPayload != 0xffffffff {
			t.maxIO = int64(info.MaxPayload)
		}
	}
	t.maxIO = max(t.maxIO-t.maxIO%t.minBlock, t.minBlock)
	t.canFlush = info.Flags&nbdproto.TFlagSendFlush != 0
	canFUA := info.Flags&nbdproto.TFlagSendFUA != 0
	writeMode := "write-back (Sync sends FLUSH)"
	if !t.canFlush {
		writeMode = "as the server does it (no FLUSH offered)"
	}
	if p.Direct && p.Write {
		switch {
		case canFUA:
			t.fua, writeMode = true, "write-through (FUA on every write)"
		case t.canFlush:
			t.flushAll, writeMode = true, "write-through (FLUSH after every write: the export offers no FUA)"
		}
	}
	var flags []string
	for _, f := range []struct {
		bit  uint16
		name string
	}{{nbdproto.TFlagReadOnly, "read-only"}, {nbdproto.TFlagSendFlush, "flush"}, {nbdproto.TFlagSendFUA, "fua"},
		{nbdproto.TFlagSendTrim, "trim"}, {nbdproto.TFlagRotational, "rotational"}, {nbdproto.TFlagCanMultiConn, "multi-conn"}} {
		if info.Flags&f.bit != 0 {
			flags = append(flags, f.name)
		}
	}
	security, tlsDesc := "none", "no"
	if tc, ok := nc.(*tls.Conn); ok {
		st := tc.ConnectionState()
		security, tlsDesc = "tls", tls.VersionName(st.Version)+" "+tls.CipherSuiteName(st.CipherSuite)
	}
	t.desc = map[string]string{
		"access":     "userspace",
		"security":   security,
		"tls":        tlsDesc,
		"export":     c.export,
		"size":       strconv.FormatInt(t.size, 10),
		"flags":      strings.Join(flags, ","),
		"block_size": fmt.Sprintf("min=%d,preferred=%d,max=%d", t.minBlock, info.PreferredBlock, t.maxIO),
	}
	if p.Write {
		t.desc["write_mode"] = writeMode
	}
	return t, nil
}

// Size implements backends.Target: the export's size.
func (t *Target) Size() int64 { return t.size }

// Describe implements backends.Describer.
func (t *Target) Describe() map[string]string {
	m := make(map[string]string, len(t.desc))
	for k, v := range t.desc {
		m[k] = v
	}
	return m
}

func (t *Target) check(op string, off int64, n int) error {
	if off < 0 {
		return fmt.Errorf("nbd: %s at negative offset %d", op, off)
	}
	if t.minBlock > 1 && (off%t.minBlock != 0 || int64(n)%t.minBlock != 0) {
		return fmt.Errorf("nbd: %s of %d bytes at offset %d: offsets and lengths must be multiples of the export's %d-byte minimum block size", op, n, off, t.minBlock)
	}
	return nil
}

// ReadAt implements io.ReaderAt. Reading past the end of the export returns io.EOF.
func (t *Target) ReadAt(p []byte, off int64) (int, error) {
	if err := t.check("read", off, len(p)); err != nil {
		return 0, err
	}
	return t.device().ReadAt(p, off, func(b []byte, o int64) error {
		if err := t.c.do(nbdproto.CmdRead, 0, uint64(o), uint32(len(b)), b, nil); err != nil {
			return fmt.Errorf("nbd: read %d bytes at %d: %w", len(b), o, err)
		}
		return nil
	})
}

// WriteAt implements io.WriterAt.
func (t *Target) WriteAt(p []byte, off int64) (int, error) {
	if !t.writable {
		return 0, errors.New("nbd: the export was opened for reading only")
	}
	if err := t.check("write", off, len(p)); err != nil {
		return 0, err
	}
	var flags uint16
	if t.fua {
		flags = nbdproto.CmdFlagFUA
	}
	n, err := t.device().WriteAt(p, off, func(b []byte, o int64) error {
		if err := t.c.do(nbdproto.CmdWrite, flags, uint64(o), uint32(len(b)), nil, b); err != nil {
			return fmt.Errorf("nbd: write %d bytes at %d: %w", len(b), o, err)
		}
		return nil
	})
	if err != nil {
		return n, err
	}
	if t.flushAll && n > 0 {
		if err := t.flush(); err != nil {
			return 0, err
		}
	}
	return n, nil
}

func (t *Target) device() backends.BlockDevice {
	return backends.BlockDevice{Scheme: "nbd", What: "the export", Size: t.size, MaxIO: t.maxIO}
}

// Sync implements backends.Target with NBD_CMD_FLUSH; an export that offers no FLUSH has
// nothing to flush (the protocol's reading), and Sync returns nil.
func (t *Target) Sync() error {
	if !t.canFlush {
		return nil
	}
	return t.flush()
}

func (t *Target) flush() error {
	if err := t.c.do(nbdproto.CmdFlush, 0, 0, 0, nil, nil); err != nil {
		return fmt.Errorf("nbd: flush: %w", err)
	}
	return nil
}

// Close disconnects (NBD_CMD_DISC) and closes the connection.
func (t *Target) Close() error { return t.c.close() }
