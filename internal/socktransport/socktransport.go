// Package socktransport moves the bytes of a request/response protocol client (the iSCSI
// initiator, the NBD client) over a TCP or Unix socket with plain blocking system calls.
//
// A connection is taken out of Go's network poller and used as a blocking socket. The reason
// is latency and CPU: with the poller, every response wakes a parked goroutine through
// epoll, and the scheduler wakes further threads to look for work; on a small machine shared
// with the server that cost more CPU per request than the whole protocol (measured with the
// iSCSI initiator: ~55 µs CPU per 4 KiB read at queue depth 1 through the poller, ~11 µs with
// blocking reads by the waiting goroutine, libiscsi ~17 µs). A blocked read is ended by
// Shutdown(2), which is how a watchdog stops a connection.
package socktransport

import (
	"io"
	"net"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Transport moves bytes for a connection after its handshake. Reads are done by one
// goroutine at a time, writes by one goroutine at a time; Shutdown may be called at any time.
type Transport interface {
	io.Reader
	// WriteBuffers writes all of bufs or fails. Before it blocks (the socket's send buffer is
	// full) it calls blocked, so that someone reads meanwhile.
	WriteBuffers(bufs [][]byte, blocked func()) error
	// TryWrite writes what it can of bufs without blocking and returns the rest.
	TryWrite(bufs [][]byte) ([][]byte, error)
	// Shutdown makes blocked and later reads and writes fail; it may be called at any time.
	Shutdown()
	// Close releases the transport once no read or write can be in progress.
	Close() error
}

// New returns a blocking-socket transport for TCP and Unix sockets (any net.Conn exposing
// its descriptor; c is closed, the transport holds a duplicate), else NewConn(c).
func New(c net.Conn) Transport {
	if sc, ok := c.(syscall.Conn); ok {
		if t, err := newFDTransport(sc); err == nil {
			_ = c.Close() // the duplicate keeps the socket open
			return t
		}
	}
	return NewConn(c)
}

// NewConn returns a transport that uses c as it is, through the poller (TLS connections,
// tests' pipes).
func NewConn(c net.Conn) Transport { return &connTransport{c: c} }

type fdTransport struct {
	fd        int
	iov       []unix.Iovec // used by the one writer at a time
	closeOnce sync.Once
}

func newFDTransport(sc syscall.Conn) (*fdTransport, error) {
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, err
	}
	fd := -1
	var derr error
	if err := rc.Control(func(s uintptr) { fd, derr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return nil, err
	}
	if derr != nil {
		return nil, derr
	}
	// O_NONBLOCK belongs to the open file, shared with the poller's descriptor, which the
	// caller closes right after.
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return &fdTransport{fd: fd, iov: make([]unix.Iovec, 0, 64)}, nil
}

func (t *fdTransport) Read(p []byte) (int, error) {
	for {
		n, err := unix.Read(t.fd, p)
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return 0, &net.OpError{Op: "read", Net: "tcp", Err: err}
		case n == 0 && len(p) > 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

// ReadFull fills p, asking the kernel to wait for all of it (MSG_WAITALL): a large data
// segment arrives with one system call and one wake-up instead of one per TCP burst.
func (t *fdTransport) ReadFull(p []byte) error {
	for len(p) > 0 {
		// recvfrom without an address (unix.Recvfrom would allocate one per call).
		n, _, errno := unix.Syscall6(unix.SYS_RECVFROM, uintptr(t.fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), unix.MSG_WAITALL, 0, 0)
		switch {
		case errno == unix.EINTR:
			continue
		case errno != 0:
			return &net.OpError{Op: "read", Net: "tcp", Err: errno}
		case n == 0:
			return io.ErrUnexpectedEOF
		}
		p = p[n:]
	}
	return nil
}

// maxIOV is the most iovecs one sendmsg takes (IOV_MAX on Linux).
const maxIOV = 1024

func (t *fdTransport) WriteBuffers(bufs [][]byte, blocked func()) error {
	rest, err := t.send(bufs, unix.MSG_NOSIGNAL|unix.MSG_DONTWAIT)
	if err != nil || len(rest) == 0 {
		return err
	}
	// The send buffer is full: make sure the socket is read while we block, then wait.
	blocked()
	_, err = t.send(rest, unix.MSG_NOSIGNAL)
	return err
}

func (t *fdTransport) TryWrite(bufs [][]byte) ([][]byte, error) {
	return t.send(bufs, unix.MSG_NOSIGNAL|unix.MSG_DONTWAIT)
}

// send writes bufs with sendmsg (MSG_NOSIGNAL: a peer that reset the connection gives EPIPE,
// not SIGPIPE) until all is written, or the socket would block (with MSG_DONTWAIT: the rest
// is returned), or an error.
func (t *fdTransport) send(bufs [][]byte, flags uintptr) ([][]byte, error) {
	for {
		for len(bufs) > 0 && len(bufs[0]) == 0 {
			bufs = bufs[1:]
		}
		if len(bufs) == 0 {
			return nil, nil
		}
		iov := t.iov[:0]
		for _, b := range bufs {
			if len(b) == 0 {
				continue
			}
			v := unix.Iovec{Base: &b[0]}
			v.SetLen(len(b))
			iov = append(iov, v)
			if len(iov) == maxIOV {
				break
			}
		}
		t.iov = iov
		var msg unix.Msghdr
		msg.Iov = &iov[0]
		msg.SetIovlen(len(iov))
		n, _, errno := unix.Syscall(unix.SYS_SENDMSG, uintptr(t.fd), uintptr(unsafe.Pointer(&msg)), flags)
		clear(iov) // drop references to callers' buffers
		switch {
		case errno == unix.EINTR:
			continue
		case errno == unix.EAGAIN && flags&unix.MSG_DONTWAIT != 0:
			return bufs, nil
		case errno != 0:
			return nil, &net.OpError{Op: "write", Net: "tcp", Err: errno}
		}
		// Partial write (a signal, or a full send buffer): skip what went out.
		for left := int(n); left > 0; {
			if len(bufs[0]) <= left {
				left -= len(bufs[0])
				bufs = bufs[1:]
			} else {
				bufs[0] = bufs[0][left:]
				left = 0
			}
		}
	}
}

func (t *fdTransport) Shutdown() { _ = unix.Shutdown(t.fd, unix.SHUT_RDWR) }

func (t *fdTransport) Close() error {
	var err error
	t.closeOnce.Do(func() { err = unix.Close(t.fd) })
	return err
}

// connTransport uses a net.Conn that has no descriptor (a net.Pipe in tests).
type connTransport struct {
	c      net.Conn
	bufs   net.Buffers
	close1 sync.Once
}

func (t *connTransport) Read(p []byte) (int, error) { return t.c.Read(p) }

func (t *connTransport) WriteBuffers(bufs [][]byte, blocked func()) error {
	blocked() // a net.Conn cannot tell in advance: assume any write may block
	t.bufs = bufs
	_, err := t.bufs.WriteTo(t.c)
	return err
}

// TryWrite cannot know whether a net.Conn write would block: it writes nothing.
func (t *connTransport) TryWrite(bufs [][]byte) ([][]byte, error) { return bufs, nil }

func (t *connTransport) Shutdown() { _ = t.c.Close() }

func (t *connTransport) Close() error {
	var err error
	t.close1.Do(func() { err = t.c.Close() })
	return err
}
