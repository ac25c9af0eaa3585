package node

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/vmstorbench/vmstorbench/backends"
	_ "github.com/vmstorbench/vmstorbench/backends/drbd"
	"github.com/vmstorbench/vmstorbench/backends/drbd/drbdstate"
	_ "github.com/vmstorbench/vmstorbench/backends/file"
	"github.com/vmstorbench/vmstorbench/internal/jsonline"
	"github.com/vmstorbench/vmstorbench/vm/nbdexport"
)

// ExportName is the NBD export's name.
const ExportName = "drbd0"

// serveNBD exports /dev/drbd0, opened O_DIRECT so that the node never serves what its page
// cache holds instead of what DRBD has.
func (n *Node) serveNBD() error {
	t, err := backends.Open(context.Background(), "file://"+Device, backends.OpenParams{Direct: true, Write: true, Read: true, AllowDestructive: true})
	if err != nil {
		return fmt.Errorf("open %s: %w", Device, err)
	}
	ln, err := net.Listen("tcp", fmt.Sprintf(":%d", NBDPort))
	if err != nil {
		t.Close()
		return fmt.Errorf("nbd port: %w", err)
	}
	exp, err := nbdexport.ServeListener(quickAckListener{ln.(*net.TCPListener)}, t, ExportName, false)
	if err != nil {
		t.Close()
		return err
	}
	n.mu.Lock()
	n.export, n.exported = exp, t
	n.mu.Unlock()
	return nil
}

// maxRequest bounds a control request line (a 1 MiB write, base64).
const maxRequest = 2 << 20

func (n *Node) serveControl(ctx context.Context, ln net.Listener) {
	go func() { <-ctx.Done(); ln.Close() }()
	jsonline.Serve(ln, 30*time.Second, maxRequest, func(line []byte) any {
		var req drbdstate.Request
		if err := json.Unmarshal(line, &req); err != nil {
			return drbdstate.Response{Error: "bad request: " + err.Error()}
		}
		return n.handle(ctx, req)
	})
}

func (n *Node) handle(ctx context.Context, req drbdstate.Request) (resp drbdstate.Response) {
	n.mu.Lock()
	setupErr, ready := n.setupErr, n.ready
	n.mu.Unlock()
	resp.Ready = ready
	if setupErr != nil {
		resp.SetupError = setupErr.Error()
	}
	fail := func(err error) drbdstate.Response {
		resp.Error = err.Error()
		return resp
	}
	switch req.Op {
	case "ping":
		if setupErr != nil {
			return fail(fmt.Errorf("DRBD set-up failed: %w", setupErr))
		}
	case "state":
		st, err := State()
		if err != nil {
			if setupErr != nil {
				err = fmt.Errorf("%v (DRBD set-up failed: %v)", err, setupErr)
			}
			return fail(err)
		}
		resp.State = &st
	case "protocol":
		switch req.Protocol {
		case "A", "B", "C":
		default:
			return fail(fmt.Errorf("protocol %q: want A, B or C", req.Protocol))
		}
		// DRBD passes a protocol change to a connected peer; a disconnected one keeps its
		// old protocol and refuses the connection when it comes back (StandAlone).
		if st, err := State(); err != nil {
			return fail(err)
		} else if st.Protocol == req.Protocol {
			resp.State = &st
			return resp
		} else if st.Connection != "Connected" {
			return fail(fmt.Errorf("not switching to protocol %s while %s: the peer would keep protocol %s and refuse to reconnect", req.Protocol, st.Connection, st.Protocol))
		}
		if _, err := n.run(ctx, "", "drbdsetup-84", "net-options", n.localAddr(), n.peerAddr(), "--protocol="+req.Protocol); err != nil {
			return fail(err)
		}
		st, err := State()
		if err != nil {
			return fail(err)
		}
		resp.State = &st
	case "two-primaries", "primary", "secondary":
		st, two, err := n.changeRole(ctx, req)
		if err != nil {
			return fail(err)
		}
		resp.State, resp.TwoPrimaries = &st, two
	case "capture":
		resp.Raw = map[string]string{}
		if b, err := os.ReadFile("/proc/drbd"); err == nil {
			resp.Raw["proc"] = string(b)
		}
		for name, args := range map[string][]string{
			"show":    {"show", Resource},
			"events2": {"events2", "--now", "--statistics", Resource},
		} {
			out, err := n.run(ctx, "", "drbdsetup-84", args...)
			if err != nil {
				resp.Raw[name+".error"] = err.Error()
			}
			resp.Raw[name] = string(out)
		}
	case "write":
		if err := directIO(Device, req.Offset, req.Data, true); err != nil {
			return fail(err)
		}
	case "read":
		if req.Length <= 0 || req.Length > 1<<20 {
			return fail(fmt.Errorf("read: length %d: want 1 B to 1 MiB", req.Length))
		}
		buf := make([]byte, req.Length)
		if err := directIO(Disk, req.Offset, buf, false); err != nil {
			return fail(err)
		}
		resp.Data = buf
	case "bench":
		f, err := benchDevice(ctx, req.Device, req.RuntimeMS)
		if err != nil {
			return fail(err)
		}
		resp.Figures = f
	case "run":
		b, err := runURL(ctx, req.URL, req.RuntimeMS)
		if err != nil {
			return fail(err)
		}
		resp.Result = b
	case "probe":
		f, err := n.probe(ctx, req.Count, req.Length)
		if err != nil {
			return fail(err)
		}
		resp.Figures = f
	default:
		return fail(fmt.Errorf("unknown op %q", req.Op))
	}
	return resp
}

// directIO reads or writes b at off with O_DIRECT through an aligned buffer.
func directIO(path string, off int64, b []byte, write bool) error {
	const align = 4096
	if off%align != 0 || len(b)%align != 0 || len(b) == 0 {
		return fmt.Errorf("%s: offset %d and length %d must be multiples of 4096", path, off, len(b))
	}
	flags := os.O_RDONLY
	if write {
		flags = os.O_RDWR
	}
	f, err := os.OpenFile(path, flags|syscall.O_DIRECT, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	raw := make([]byte, len(b)+align)
	shift := int(align-uintptr(unsafe.Pointer(&raw[0]))%align) % align
	buf := raw[shift : shift+len(b)]
	if write {
		copy(buf, b)
		_, err = f.WriteAt(buf, off)
	} else {
		_, err = f.ReadAt(buf, off)
		copy(b, buf)
	}
	if err != nil {
		return fmt.Errorf("%s at %d: %w", path, off, err)
	}
	return nil
}

// quickAckListener hands out connections that acknowledge every read at once. QEMU's user
// network (slirp) sends a request of more than one segment to the guest a segment at a time
// and waits for each ACK; the guest's delayed ACK (up to 40 ms) then stalled every 4 KiB
// write from the host (measured: protocol A 24 ms, C 54 ms per write through the export,
// against 1 and 4 ms in the node). Linux leaves quick-ACK mode on its own, so it is set
// again after every read.
type quickAckListener struct{ *net.TCPListener }

func (l quickAckListener) Accept() (net.Conn, error) {
	c, err := l.TCPListener.AcceptTCP()
	if err != nil {
		return nil, err
	}
	raw, err := c.SyscallConn()
	if err != nil {
		c.Close()
		return nil, err
	}
	qc := &quickAckConn{TCPConn: c, raw: raw}
	qc.quickAck()
	return qc, nil
}

type quickAckConn struct {
	*net.TCPConn
	raw syscall.RawConn
}

func (c *quickAckConn) quickAck() {
	_ = c.raw.Control(func(fd uintptr) {
		_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, unix.TCP_QUICKACK, 1)
	})
}

func (c *quickAckConn) Read(b []byte) (int, error) {
	n, err := c.TCPConn.Read(b)
	c.quickAck()
	return n, err
}
