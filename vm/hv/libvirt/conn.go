// Package libvirt drives hypervisors through libvirt's RPC protocol in pure Go
// (github.com/digitalocean/go-libvirt, no cgo, no virsh): it connects to a daemon by URI,
// boots a transient domain from vmstorbench's guest image or measures an existing domain,
// migrates a domain between two daemons the way virDomainMigrate3 does (Begin, Prepare,
// Perform, Finish, Confirm, driven from here; or peer-to-peer, driven by the source daemon),
// and reads libvirt's job statistics while it runs and after.
//
// Every RPC has a deadline: a call that outlives it closes the connection (go-libvirt's
// calls cannot be cancelled otherwise), so it fails and every later call on that Conn fails
// at once rather than hanging.
package libvirt

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket/dialers"
	"libvirt.org/go/libvirtxml"

	"github.com/vmstorbench/vmstorbench/backends"
)

// DefaultCallTimeout bounds one RPC when the caller's context has no earlier deadline.
const DefaultCallTimeout = 30 * time.Second

// Conn is a connection to one libvirt daemon.
type Conn struct {
	// URI is the connection URI as given, for this process only; Redacted is what results
	// and messages show.
	uri      string
	Redacted string
	// CallTimeout bounds each RPC (DefaultCallTimeout when 0).
	CallTimeout time.Duration

	local bool // reached over a unix socket: the daemon runs on this machine
	l     *golibvirt.Libvirt

	mu     sync.Mutex
	netc   net.Conn
	broken error // set when a call's deadline closed the connection
}

// Redact is a libvirt URI as results and messages show it: without a password, with secret
// query options masked.
func Redact(uri string) string { return backends.RedactString(uri) }

// Connect opens a connection to the daemon at uri: qemu+unix:///session?socket=PATH,
// qemu:///system (the local system socket), qemu+tcp://HOST[:PORT]/system, or
// qemu+tls://HOST[:PORT]/system (pkipath=, no_verify=1). The dial and the handshake are
// bounded by ctx and CallTimeout.
func Connect(ctx context.Context, uri string) (*Conn, error) {
	c := &Conn{uri: uri, Redacted: Redact(uri)}
	u, err := url.Parse(uri)
	if err != nil || u.Scheme == "" {
		return nil, fmt.Errorf("libvirt URI %s: not a URI (want e.g. qemu+unix:///session?socket=PATH or qemu+tcp://HOST/system)", c.Redacted)
	}
	dial, local, err := dialerFor(u)
	if err != nil {
		return nil, fmt.Errorf("libvirt %s: %w", c.Redacted, err)
	}
	c.local = local
	dctx, cancel := c.deadline(ctx, 0)
	defer cancel()
	c.l = golibvirt.NewWithDialer(dialerFunc(func() (net.Conn, error) {
		nc, err := dial(dctx)
		if err != nil {
			return nil, err
		}
		c.mu.Lock()
		c.netc = nc
		c.mu.Unlock()
		return nc, nil
	}))
	err = c.call(ctx, 0, "connect", func() error { return c.l.ConnectToURI(golibvirt.RemoteURI(u)) })
	if err != nil {
		c.closeNet()
		if refusedClientCert(u, err) {
			pki := u.Query().Get("pkipath")
			if pki == "" {
				pki = "~/.pki/libvirt or /etc/pki/libvirt"
			}
			return nil, fmt.Errorf("libvirt %s: the daemon closed the connection after the TLS handshake: it did not accept this client's certificate (%s/clientcert.pem must be signed by the CA of the daemon's ca_file, and its name be on the daemon's tls_allowed_dn_list if it has one)", c.Redacted, pki)
		}
		return nil, err
	}
	return c, nil
}

// refusedClientCert reports whether err, from the first RPC over a TLS connection, is the
// daemon refusing the client's certificate: libvirtd checks it once the handshake is done
// (TLS 1.3: after the client already considers it done) and then closes the connection
// without a word, so the client reads EOF or a reset; a TLS alert says it outright.
func refusedClientCert(u *url.URL, err error) bool {
	if !strings.HasSuffix(u.Scheme, "+tls") && (strings.Contains(u.Scheme, "+") || u.Host == "") {
		return false
	}
	var alert tls.AlertError
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.As(err, &alert) ||
		strings.Contains(err.Error(), "connection to the daemon lost")
}

type dialerFunc func() (net.Conn, error)

func (f dialerFunc) Dial() (net.Conn, error) { return f() }

// dialerFor returns how to reach the daemon of u and whether it is on this machine.
func dialerFor(u *url.URL) (func(context.Context) (net.Conn, error), bool, error) {
	transport := ""
	if _, t, ok := strings.Cut(u.Scheme, "+"); ok {
		transport = t
	} else if u.Host == "" {
		transport = "unix"
	} else {
		transport = "tls"
	}
	q := u.Query()
	var d net.Dialer
	switch transport {
	case "unix":
		sock := q.Get("socket")
		if sock == "" {
			sock = "/var/run/libvirt/libvirt-sock"
			if strings.HasPrefix(u.Path, "/session") {
				return nil, false, errors.New("a session URI needs socket=PATH (the session daemon's socket, $XDG_RUNTIME_DIR/libvirt/libvirt-sock of its user)")
			}
		}
		return func(ctx context.Context) (net.Conn, error) { return d.DialContext(ctx, "unix", sock) }, true, nil
	case "tcp":
		port := u.Port()
		if port == "" {
			port = "16509"
		}
		addr := net.JoinHostPort(u.Hostname(), port)
		return func(ctx context.Context) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }, false, nil
	case "tls":
		port := u.Port()
		if port == "" {
			port = "16514"
		}
		opts := []dialers.TLSOption{dialers.UseTLSPort(port)}
		if p := q.Get("pkipath"); p != "" {
			opts = append(opts, dialers.UsePKIPath(p))
		}
		if nv := q.Get("no_verify"); nv != "" && nv != "0" {
			opts = append(opts, dialers.WithInsecureNoVerify())
		}
		td := dialers.NewTLS(u.Hostname(), opts...)
		return func(ctx context.Context) (net.Conn, error) {
			// dialers.TLS has its own dial timeout; the context bounds the wait for it.
			type res struct {
				c   net.Conn
				err error
			}
			ch := make(chan res, 1)
			go func() { c, err := td.Dial(); ch <- res{c, err} }()
			select {
			case r := <-ch:
				return r.c, r.err
			case <-ctx.Done():
				go func() {
					if r := <-ch; r.c != nil {
						r.c.Close()
					}
				}()
				return nil, ctx.Err()
			}
		}, false, nil
	case "ssh", "libssh", "libssh2":
		return nil, false, fmt.Errorf("transport %s is not supported: use qemu+tcp or qemu+tls (or an SSH tunnel to a unix socket)", transport)
	}
	return nil, false, fmt.Errorf("unknown libvirt transport %q (want unix, tcp or tls)", transport)
}

// Local reports whether the daemon runs on this machine (reached over a unix socket).
func (c *Conn) Local() bool { return c.local }

// deadline derives the context of one call: ctx bounded by timeout (CallTimeout when 0).
func (c *Conn) deadline(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	if timeout <= 0 {
		timeout = c.CallTimeout
	}
	if timeout <= 0 {
		timeout = DefaultCallTimeout
	}
	return context.WithTimeout(ctx, timeout)
}

// call runs f, one or more RPCs, within ctx and timeout. When the deadline passes first,
// the connection is closed so that f returns, and the Conn is broken from then on.
func (c *Conn) call(ctx context.Context, timeout time.Duration, what string, f func() error) error {
	c.mu.Lock()
	broken := c.broken
	c.mu.Unlock()
	if broken != nil {
		return fmt.Errorf("libvirt %s: %s: %w", c.Redacted, what, broken)
	}
	cctx, cancel := c.deadline(ctx, timeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("libvirt %s: %s: %w", c.Redacted, what, cleanError(err))
		}
		return nil
	case <-cctx.Done():
		why := fmt.Errorf("no answer to %s in time (%w); connection closed", what, cctx.Err())
		c.mu.Lock()
		if c.broken == nil {
			c.broken = why
		}
		c.mu.Unlock()
		c.closeNet()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
		}
		return fmt.Errorf("libvirt %s: %w", c.Redacted, why)
	}
}

func (c *Conn) closeNet() {
	c.mu.Lock()
	nc := c.netc
	c.mu.Unlock()
	if nc != nil {
		nc.Close()
	}
}

// cleanError turns go-libvirt's errors into one line.
func cleanError(err error) error {
	var le golibvirt.Error
	if errors.As(err, &le) {
		msg := strings.Join(strings.Fields(le.Message), " ")
		if strings.Contains(msg, "Postcopy is not supported") {
			msg += " (QEMU needs userfaultfd for post-copy: a QEMU running unprivileged, as under a session daemon, gets it with CAP_SYS_PTRACE, e.g. the daemon started with it as an ambient capability (the testbed pair's Postcopy), or with sysctl vm.unprivileged_userfaultfd=1)"
		}
		return &Error{Code: le.Code, Message: msg}
	}
	if errors.Is(err, golibvirt.ErrInterrupted) {
		return errors.New("connection to the daemon lost during the call")
	}
	return err
}

// Error is an error libvirt reported, with its code (virErrorNumber).
type Error struct {
	Code    uint32
	Message string
}

func (e *Error) Error() string { return e.Message }

// IsCode reports whether err is a libvirt error with code.
func IsCode(err error, code golibvirt.ErrorNumber) bool {
	var le *Error
	return errors.As(err, &le) && le.Code == uint32(code)
}

// Close ends the connection (bounded by CallTimeout).
func (c *Conn) Close() error {
	if c == nil || c.l == nil {
		return nil
	}
	err := c.call(context.Background(), 5*time.Second, "disconnect", c.l.Disconnect)
	c.closeNet()
	return err
}

// Host describes the daemon's host.
type Host struct {
	// URI is the redacted connection URI.
	URI      string `json:"uri"`
	Hostname string `json:"hostname,omitempty"`
	// UUID is the host UUID libvirt compares to refuse a migration to the same host.
	UUID string `json:"uuid,omitempty"`
	// Driver is the hypervisor driver ("QEMU").
	Driver string `json:"driver,omitempty"`
	// LibvirtVersion and HypervisorVersion are "major.minor.release".
	LibvirtVersion    string `json:"libvirt_version,omitempty"`
	HypervisorVersion string `json:"hypervisor_version,omitempty"`
}

// Host reads the daemon's versions, driver, hostname and host UUID.
func (c *Conn) Host(ctx context.Context) (Host, error) {
	h := Host{URI: c.Redacted}
	var lib, hv uint64
	var caps string
	err := c.call(ctx, 0, "host information", func() error {
		var err error
		if lib, err = c.l.ConnectGetLibVersion(); err != nil {
			return err
		}
		if hv, err = c.l.ConnectGetVersion(); err != nil {
			return err
		}
		if h.Driver, err = c.l.ConnectGetType(); err != nil {
			return err
		}
		if h.Hostname, err = c.l.ConnectGetHostname(); err != nil {
			return err
		}
		caps, err = c.l.ConnectGetCapabilities()
		return err
	})
	if err != nil {
		return h, err
	}
	h.LibvirtVersion, h.HypervisorVersion = versionString(lib), versionString(hv)
	var cx libvirtxml.Caps
	if err := cx.Unmarshal(caps); err != nil {
		return h, fmt.Errorf("libvirt %s: capabilities: %w", c.Redacted, err)
	}
	h.UUID = cx.Host.UUID
	return h, nil
}

// CanKVM reports whether the daemon offers domains of type kvm for x86_64 guests (its
// QEMU can open /dev/kvm).
func (c *Conn) CanKVM(ctx context.Context) (bool, error) {
	var caps string
	err := c.call(ctx, 0, "capabilities", func() error {
		var err error
		caps, err = c.l.ConnectGetCapabilities()
		return err
	})
	if err != nil {
		return false, err
	}
	var cx libvirtxml.Caps
	if err := cx.Unmarshal(caps); err != nil {
		return false, fmt.Errorf("libvirt %s: capabilities: %w", c.Redacted, err)
	}
	for _, g := range cx.Guests {
		if g.Arch.Name != "x86_64" {
			continue
		}
		for _, d := range g.Arch.Domains {
			if d.Type == "kvm" {
				return true, nil
			}
		}
	}
	return false, nil
}

// versionString renders libvirt's version encoding (major*1,000,000 + minor*1,000 + release).
func versionString(v uint64) string {
	return strconv.FormatUint(v/1000000, 10) + "." + strconv.FormatUint(v/1000%1000, 10) + "." + strconv.FormatUint(v%1000, 10)
}
