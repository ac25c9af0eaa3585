package nfs

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/vmstorbench/vmstorbench/backends"
)

// defaultPortmapPort is where the portmapper (rpcbind) listens.
const defaultPortmapPort = 111

func init() {
	backends.Register(backends.Backend{
		Scheme:      "nfs",
		Description: "NFSv3 file over TCP through a userspace client (AUTH_SYS), pipelined by XID",
		URLForms: []string{
			"nfs://host/export/path/vm.img",
			"nfs://host:2049/export/dir?mountport=20048&stable=unstable",
			"nfs://host/srv/nfs/vm.img?export=/srv/nfs&uid=1000&gid=1000",
		},
		Options: []backends.Option{
			{Name: "mountport", Help: "TCP port of the MOUNT service; the NFS port is the URL's port. A port not given is asked from the portmapper on port 111", Default: "from the portmapper"},
			{Name: "export", Help: "the exported directory, a leading part of the URL path; the rest is the file inside it", Default: "the longest leading directory of the path that the server lets us mount"},
			{Name: "uid", Help: "AUTH_SYS user id", Default: "this process's uid"},
			{Name: "gid", Help: "AUTH_SYS group id", Default: "this process's gid"},
			{Name: "stable", Help: "filesync: every WRITE is FILE_SYNC; unstable: WRITEs are UNSTABLE and Sync (fsync=) sends COMMIT, failing if the server's write verifier changed", Default: "filesync"},
			{Name: "rsize", Help: "largest READ to send (like the mount option); larger reads are split and the pieces sent together", Default: "the server's rtmax, at most 16MiB"},
			{Name: "wsize", Help: "largest WRITE to send (like the mount option); larger writes are split and the pieces sent together", Default: "the server's wtmax, at most 16MiB"},
			{Name: "create", Help: "auto: create the bench file if it does not exist; never: fail instead", Default: "auto"},
			{Name: "name", Help: "bench file name prefix when the URL names a directory (files <name>.job<N>.dat)", Default: "vmstorbench"},
			{Name: "timeout", Help: "limit for one request; a request that takes longer closes the connection and fails the run", Default: backends.DefaultIOTimeout.String()},
		},
		Open: open,
	})
}

// config is a parsed nfs:// URL.
type config struct {
	host      string
	nfsPort   int // 0: ask the portmapper
	mountPort int // 0: ask the portmapper
	path      string
	export    string // "": find it
	uid, gid  uint32
	stable    uint32
	rsize     int64 // 0: the server's rtmax
	wsize     int64 // 0: the server's wtmax
	create    bool
	name      string
	timeout   time.Duration
}

func parseConfig(u *url.URL) (config, error) {
	c := config{host: u.Hostname()}
	if c.host == "" {
		return c, errors.New("no host (nfs://host/export/file)")
	}
	if u.User != nil {
		return c, errors.New("NFS with AUTH_SYS has no user name in the URL: use uid= and gid=")
	}
	var err error
	if p := u.Port(); p != "" {
		if c.nfsPort, err = strconv.Atoi(p); err != nil || c.nfsPort <= 0 || c.nfsPort > 65535 {
			return c, fmt.Errorf("bad port %q", p)
		}
	}
	if u.Path == "" || u.Path[0] != '/' {
		return c, errors.New("no path (nfs://host/export/file)")
	}
	for _, seg := range strings.Split(strings.Trim(u.Path, "/"), "/") {
		if seg == "." || seg == ".." {
			return c, fmt.Errorf("path %q: . or .. component", u.Path)
		}
	}
	c.path = path.Clean(u.Path)

	q := backends.NewQuery(u)
	if c.mountPort, err = q.Int("mountport", 0); err != nil {
		return c, err
	}
	if c.mountPort < 0 || c.mountPort > 65535 {
		return c, fmt.Errorf("mountport=%d: not a port", c.mountPort)
	}
	if e := q.String("export", ""); e != "" {
		c.export = path.Clean("/" + e)
		if !within(c.path, c.export) {
			return c, fmt.Errorf("export=%s is not a leading part of the path %s", c.export, c.path)
		}
	}
	uid, err := q.Int("uid", os.Getuid())
	if err != nil {
		return c, err
	}
	gid, err := q.Int("gid", os.Getgid())
	if err != nil {
		return c, err
	}
	if uid < 0 || gid < 0 || uid > 1<<32-1 || gid > 1<<32-1 {
		return c, fmt.Errorf("uid=%d, gid=%d: out of range", uid, gid)
	}
	c.uid, c.gid = uint32(uid), uint32(gid)
	stable, err := q.Enum("stable", "filesync", "filesync", "unstable")
	if err != nil {
		return c, err
	}
	c.stable = stableFile
	if stable == "unstable" {
		c.stable = stableUnst
	}
	for _, o := range []struct {
		name string
		v    *int64
	}{{"rsize", &c.rsize}, {"wsize", &c.wsize}} {
		if *o.v, err = q.Size(o.name, 0); err != nil {
			return c, err
		}
		if *o.v != 0 && (*o.v < 512 || *o.v > maxIO) {
			return c, fmt.Errorf("%s=%d: must be 512 bytes to %d", o.name, *o.v, maxIO)
		}
	}
	create, err := q.Enum("create", "auto", "auto", "never")
	if err != nil {
		return c, err
	}
	c.create = create == "auto"
	c.name = q.String("name", "vmstorbench")
	if c.name != path.Base(c.name) || c.name == "." || c.name == ".." {
		return c, fmt.Errorf("name=%q: must be a plain file name", c.name)
	}
	if c.timeout, err = q.Duration("timeout", backends.DefaultIOTimeout); err != nil {
		return c, err
	}
	if c.timeout <= 0 {
		return c, errors.New("option timeout must be positive")
	}
	return c, nil
}

// within reports whether p is dir or below it.
func within(p, dir string) bool {
	return p == dir || dir == "/" || strings.HasPrefix(p, dir+"/")
}

func open(ctx context.Context, u *url.URL, p backends.OpenParams) (backends.Target, error) {
	c, err := parseConfig(u)
	if err != nil {
		return nil, err
	}
	// fio's sync= (O_SYNC or O_DSYNC): FILE_SYNC WRITEs, the default, commit data and
	// metadata before the reply, which satisfies both; UNSTABLE writes contradict it.
	if p.SyncWrites != "" && p.Write && c.stable == stableUnst {
		return nil, fmt.Errorf("sync=%s makes every write durable, but stable=unstable sends UNSTABLE WRITEs: drop stable=unstable (WRITEs are FILE_SYNC by default)", p.SyncWrites)
	}
	return dial(ctx, c, p)
}

// opener holds what Open needs while it sets a target up.
type opener struct {
	ctx context.Context
	cfg config
}

// deadline bounds one set-up call by the call timeout and the caller's context.
func (o *opener) deadline() time.Time {
	d := time.Now().Add(o.cfg.timeout)
	if cd, ok := o.ctx.Deadline(); ok && cd.Before(d) {
		return cd
	}
	return d
}

// connect dials addr and starts an RPC client on it; the caller's context cancels set-up
// calls in flight by breaking the connection.
func (o *opener) connect(addr string, cred rpcAuth) (*rpcConn, func() bool, error) {
	conn, err := backends.Dial(o.ctx, addr)
	if err != nil {
		return nil, nil, err
	}
	c := newRPCConn(conn, cred, o.cfg.timeout)
	stop := context.AfterFunc(o.ctx, func() { c.fail(o.ctx.Err()) })
	return c, stop, nil
}

func (o *opener) addr(port int) string { return net.JoinHostPort(o.cfg.host, strconv.Itoa(port)) }

// ports fills in the NFS and MOUNT ports the URL does not give, from the portmapper.
func (o *opener) ports() error {
	if o.cfg.nfsPort != 0 && o.cfg.mountPort != 0 {
		return nil
	}
	pm := o.addr(defaultPortmapPort)
	c, stop, err := o.connect(pm, authNone)
	if err != nil {
		return fmt.Errorf("portmapper %s (give the ports in the URL to skip it: nfs://host:port/...?mountport=N): %w", pm, err)
	}
	defer func() { stop(); c.close() }()
	for _, s := range []struct {
		port       *int
		prog, vers uint32
		what       string
	}{
		{&o.cfg.nfsPort, nfsProg, nfsVers, "NFSv3"},
		{&o.cfg.mountPort, mountProg, mountVers, "MOUNTv3"},
	} {
		if *s.port != 0 {
			continue
		}
		port, err := getPort(c, s.prog, s.vers, o.deadline())
		if err != nil {
			return fmt.Errorf("portmapper %s: %w", pm, err)
		}
		if port == 0 {
			return fmt.Errorf("portmapper %s: no %s service over TCP registered", pm, s.what)
		}
		*s.port = port
	}
	return nil
}

// mountExport finds the export that holds the path and returns its root handle and name:
// the export= option if given, else the longest leading directory of the path that the
// server lets us mount (the path itself first, since it may be a directory).
func (o *opener) mountExport(cred rpcAuth) ([]byte, string, error) {
	addr := o.addr(o.cfg.mountPort)
	c, stop, err := o.connect(addr, cred)
	if err != nil {
		return nil, "", fmt.Errorf("MOUNT service %s: %w", addr, err)
	}
	defer func() { stop(); c.close() }()
	candidates := []string{o.cfg.export}
	if o.cfg.export == "" {
		candidates = candidates[:0]
		for p := o.cfg.path; ; p = path.Dir(p) {
			candidates = append(candidates, p)
			if p == "/" {
				break
			}
		}
	}
	var firstErr error // the answer for the whole path says most
	for _, dir := range candidates {
		fh, err := mount(c, dir, o.deadline())
		if err == nil {
			return fh, dir, nil
		}
		var se *statusError
		if !errors.As(err, &se) {
			return nil, "", fmt.Errorf("MOUNT service %s: %w", addr, err)
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	list, lerr := exports(c, o.deadline())
	have := "server exports: " + strings.Join(list, ", ")
	switch {
	case lerr != nil:
		have = "export list unavailable: " + lerr.Error()
	case len(list) == 0:
		have = "server lists no exports"
	}
	if o.cfg.export != "" {
		return nil, "", fmt.Errorf("cannot mount export %s on %s (%s): %w", o.cfg.export, addr, have, firstErr)
	}
	return nil, "", fmt.Errorf("no export on %s holds %s (%s; tried %s; name it with export=): %w",
		addr, o.cfg.path, have, strings.Join(candidates, ", "), firstErr)
}

// dial opens the target: ports, export, NFS connection, bench file.
func dial(ctx context.Context, cfg config, p backends.OpenParams) (backends.Target, error) {
	o := &opener{ctx: ctx, cfg: cfg}
	if err := o.ports(); err != nil {
		return nil, err
	}
	cred := authSysCred(cfg.uid, cfg.gid)
	root, export, err := o.mountExport(cred)
	if err != nil {
		return nil, err
	}
	addr := o.addr(o.cfg.nfsPort)
	c, stop, err := o.connect(addr, cred)
	if err != nil {
		return nil, fmt.Errorf("NFS service %s: %w", addr, err)
	}
	t, err := newTarget(o, c, root, export, p)
	if !stop() && err == nil {
		// The context ended as set-up finished: the connection may be broken already.
		t.Close()
		err = ctx.Err()
	}
	if err != nil {
		c.close()
		if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
			return nil, fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		return nil, err
	}
	return t, nil
}
