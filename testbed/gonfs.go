package testbed

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-git/go-billy/v5"
	"github.com/go-git/go-billy/v5/osfs"
	gonfs "github.com/willscott/go-nfs"
	"github.com/willscott/go-nfs/helpers"
)

// GoNFSExport is the only path the embedded NFS server lets clients mount.
const GoNFSExport = "/export"

// GoNFS is an NFSv3 server running inside this process (github.com/willscott/go-nfs) that
// serves the real directory dir/export (not an in-memory filesystem: go-nfs's memfs cannot
// create files in an empty root and lacks attribute changes). MOUNT and NFS share one port
// on 127.0.0.1 and there is no portmapper. It needs no root and no installed package, but
// libnfs clients (QEMU's nfs:// driver, nfs-cp) do not work against it.
type GoNFS struct {
	mu    sync.Mutex
	ln    *trackingListener
	port  int
	root  string
	serve chan error
}

// NewGoNFS returns an embedded NFS server, not yet started.
func NewGoNFS() *GoNFS { return &GoNFS{} }

// Name implements Server.
func (g *GoNFS) Name() string { return "gonfs" }

// PIDs implements Server: the server runs in this process.
func (g *GoNFS) PIDs() []int { return nil }

// Port is the MOUNT and NFS port (0 before Start).
func (g *GoNFS) Port() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.port
}

// ExportDir is the local directory behind the export.
func (g *GoNFS) ExportDir() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.root
}

// Start implements Server.
func (g *GoNFS) Start(ctx context.Context, dir string) ([]Endpoint, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ln != nil {
		return nil, errors.New("gonfs: already started")
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("gonfs: %w", err)
	}
	root, err := filepath.Abs(filepath.Join(dir, "export"))
	if err != nil {
		return nil, fmt.Errorf("gonfs: %w", err)
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("gonfs: %w", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("gonfs: listen: %w", err)
	}
	ln := &trackingListener{Listener: l, conns: map[net.Conn]struct{}{}}
	fs := changeFS{Filesystem: osfs.New(root, osfs.WithBoundOS()), root: root}
	handler := helpers.NewCachingHandler(exportHandler{Handler: helpers.NewNullAuthHandler(fs), root: root}, 4096)
	g.serve = make(chan error, 1)
	go func() { g.serve <- gonfs.Serve(ln, handler) }()
	g.ln, g.root = ln, root
	g.port = l.Addr().(*net.TCPAddr).Port
	return goNFSEndpoints(g.port), nil
}

// Stop implements Server: it closes the listener and every connection, so clients in the
// middle of a call see the connection drop.
func (g *GoNFS) Stop() error {
	g.mu.Lock()
	ln, serve := g.ln, g.serve
	g.ln = nil
	g.mu.Unlock()
	if ln == nil {
		return nil
	}
	err := ln.closeAll()
	select {
	case <-serve:
	case <-time.After(5 * time.Second):
		return errors.New("gonfs: server did not stop")
	}
	if err != nil {
		return fmt.Errorf("gonfs: stop: %w", err)
	}
	return nil
}

func goNFSEndpoints(port int) []Endpoint {
	u := url.URL{
		Scheme:   "nfs",
		Host:     Addr(port),
		Path:     GoNFSExport + "/" + NFSFile,
		RawQuery: "mountport=" + strconv.Itoa(port),
	}
	return []Endpoint{{Name: "nfs-gonfs", URL: u.String(), Security: "auth_sys"}}
}

// exportHandler accepts a MOUNT of GoNFSExport only (go-nfs's NullAuthHandler hands its
// filesystem to any path, which would hide a wrong export in a client) and lists AUTH_SYS
// as the flavor clients should use; go-nfs does not check credentials.
type exportHandler struct {
	gonfs.Handler
	root string
}

// FSStat reports the exported directory's filesystem: go-nfs's default claims 4 EiB free,
// which would hide a client's free-space check.
func (h exportHandler) FSStat(_ context.Context, _ billy.Filesystem, s *gonfs.FSStat) error {
	var st syscall.Statfs_t
	if err := syscall.Statfs(h.root, &st); err != nil {
		return err
	}
	bs := uint64(st.Bsize)
	s.TotalSize, s.FreeSize, s.AvailableSize = st.Blocks*bs, st.Bfree*bs, st.Bavail*bs
	s.TotalFiles, s.FreeFiles, s.AvailableFiles = st.Files, st.Ffree, st.Ffree
	return nil
}

func (h exportHandler) Mount(ctx context.Context, conn net.Conn, req gonfs.MountRequest) (gonfs.MountStatus, billy.Filesystem, []gonfs.AuthFlavor) {
	status, fs, _ := h.Handler.Mount(ctx, conn, req)
	if filepath.Clean("/"+string(req.Dirpath)) != GoNFSExport {
		// go-nfs computes the root handle even for a refused mount (and panics on a nil
		// filesystem), so the filesystem is returned; the handle is not sent.
		return gonfs.MountStatusErrNoEnt, fs, nil
	}
	return status, fs, []gonfs.AuthFlavor{gonfs.AuthFlavorUnix}
}

// changeFS adds billy.Change (chmod, chown, utimes) to the bound OS filesystem, which lacks
// it; go-nfs needs it for CREATE with a mode and for SETATTR.
type changeFS struct {
	billy.Filesystem
	root string
}

// path maps a name inside the filesystem to a local path, refusing names that leave root.
func (fs changeFS) path(name string) (string, error) {
	p := filepath.Join(fs.root, name)
	if p != fs.root && !strings.HasPrefix(p, fs.root+string(filepath.Separator)) {
		return "", &os.PathError{Op: "resolve", Path: name, Err: os.ErrPermission}
	}
	return p, nil
}

func (fs changeFS) Chmod(name string, mode os.FileMode) error {
	p, err := fs.path(name)
	if err != nil {
		return err
	}
	return os.Chmod(p, mode)
}

func (fs changeFS) Lchown(name string, uid, gid int) error {
	p, err := fs.path(name)
	if err != nil {
		return err
	}
	return os.Lchown(p, uid, gid)
}

func (fs changeFS) Chown(name string, uid, gid int) error {
	p, err := fs.path(name)
	if err != nil {
		return err
	}
	return os.Chown(p, uid, gid)
}

func (fs changeFS) Chtimes(name string, atime, mtime time.Time) error {
	p, err := fs.path(name)
	if err != nil {
		return err
	}
	return os.Chtimes(p, atime, mtime)
}

// trackingListener remembers accepted connections so that Stop can close them: go-nfs's
// Serve returns when the listener closes but leaves established connections serving.
type trackingListener struct {
	net.Listener
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		c.Close()
		return nil, net.ErrClosed
	}
	l.conns[c] = struct{}{}
	return &trackedConn{Conn: c, l: l}, nil
}

func (l *trackingListener) closeAll() error {
	l.mu.Lock()
	l.closed = true
	conns := l.conns
	l.conns = map[net.Conn]struct{}{}
	l.mu.Unlock()
	err := l.Listener.Close()
	for c := range conns {
		c.Close()
	}
	return err
}

type trackedConn struct {
	net.Conn
	l    *trackingListener
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c.Conn)
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}
