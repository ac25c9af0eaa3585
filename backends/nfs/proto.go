package nfs

import (
	"errors"
	"fmt"
	"os"
	"time"

	nfsc "github.com/willscott/go-nfs-client/nfs"
	"github.com/willscott/go-nfs-client/nfs/rpc"
)

// The procedures the backend uses, encoded per RFC 1813 (NFSv3 and MOUNTv3) and RFC 1833
// (portmapper v2). Program, procedure and status numbers come from go-nfs-client.

const (
	nfsProg   = nfsc.Nfs3Prog
	nfsVers   = nfsc.Nfs3Vers
	mountProg = nfsc.MountProg
	mountVers = nfsc.MountVers
)

type rpcAuth = rpc.Auth

var authNone = rpc.AuthNull

// authSysCred is an AUTH_SYS credential for uid/gid, with gid as the only supplementary
// group (go-nfs-client's NewAuthUnix would add group 0, i.e. claim membership of root's
// group).
func authSysCred(uid, gid uint32) rpc.Auth {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "vmstorbench"
	}
	if len(host) > 255 {
		host = host[:255]
	}
	return rpc.AuthUnix{
		Stamp:       uint32(time.Now().Unix()),
		Machinename: host,
		Uid:         uid,
		Gid:         gid,
		GidLen:      1,
		Gids:        gid,
	}.Auth()
}

const (
	maxFH       = 64 // NFS3_FHSIZE
	maxPath     = 1024
	stableUnst  = 0 // UNSTABLE
	stableFile  = 2 // FILE_SYNC
	createGuard = 1 // GUARDED: fail if the name exists
	authSys     = 1 // AUTH_SYS flavor
)

// statusError is a non-OK nfsstat3 or mountstat3. It unwraps to go-nfs-client's error for
// the status, so errors.Is(err, os.ErrNotExist) works.
type statusError struct {
	status uint32
	mount  bool
}

func (e *statusError) Error() string {
	if e.mount {
		if s, ok := mountStatusNames[e.status]; ok {
			return s
		}
		return fmt.Sprintf("MOUNT status %d", e.status)
	}
	if s, ok := nfsStatusNames[e.status]; ok {
		return s
	}
	return fmt.Sprintf("NFS status %d", e.status)
}

func (e *statusError) Unwrap() error {
	if e.mount {
		switch e.status {
		case nfsc.MNT3ErrNoEnt:
			return os.ErrNotExist
		case nfsc.MNT3ErrPerm, nfsc.MNT3ErrAcces:
			return os.ErrPermission
		}
		return nil
	}
	return nfsc.NFS3Error(e.status)
}

var mountStatusNames = map[uint32]string{
	nfsc.MNT3ErrPerm:        "MNT3ERR_PERM (not allowed to mount)",
	nfsc.MNT3ErrNoEnt:       "MNT3ERR_NOENT (no such export)",
	nfsc.MNT3ErrIO:          "MNT3ERR_IO",
	nfsc.MNT3ErrAcces:       "MNT3ERR_ACCES (access denied to this client)",
	nfsc.MNT3ErrNotDir:      "MNT3ERR_NOTDIR (not a directory)",
	nfsc.MNT3ErrInval:       "MNT3ERR_INVAL",
	nfsc.MNT3ErrNameTooLong: "MNT3ERR_NAMETOOLONG",
	nfsc.MNT3ErrNotSupp:     "MNT3ERR_NOTSUPP",
	nfsc.MNT3ErrServerFault: "MNT3ERR_SERVERFAULT",
}

var nfsStatusNames = map[uint32]string{
	nfsc.NFS3ErrPerm: "NFS3ERR_PERM", nfsc.NFS3ErrNoEnt: "NFS3ERR_NOENT", nfsc.NFS3ErrIO: "NFS3ERR_IO",
	nfsc.NFS3ErrNXIO: "NFS3ERR_NXIO", nfsc.NFS3ErrAcces: "NFS3ERR_ACCES", nfsc.NFS3ErrExist: "NFS3ERR_EXIST",
	nfsc.NFS3ErrXDev: "NFS3ERR_XDEV", nfsc.NFS3ErrNoDev: "NFS3ERR_NODEV", nfsc.NFS3ErrNotDir: "NFS3ERR_NOTDIR",
	nfsc.NFS3ErrIsDir: "NFS3ERR_ISDIR", nfsc.NFS3ErrInval: "NFS3ERR_INVAL", nfsc.NFS3ErrFBig: "NFS3ERR_FBIG",
	nfsc.NFS3ErrNoSpc: "NFS3ERR_NOSPC", nfsc.NFS3ErrROFS: "NFS3ERR_ROFS", nfsc.NFS3ErrMLink: "NFS3ERR_MLINK",
	nfsc.NFS3ErrNameTooLong: "NFS3ERR_NAMETOOLONG", nfsc.NFS3ErrNotEmpty: "NFS3ERR_NOTEMPTY",
	nfsc.NFS3ErrDQuot: "NFS3ERR_DQUOT", nfsc.NFS3ErrStale: "NFS3ERR_STALE", nfsc.NFS3ErrRemote: "NFS3ERR_REMOTE",
	nfsc.NFS3ErrBadHandle: "NFS3ERR_BADHANDLE", nfsc.NFS3ErrNotSync: "NFS3ERR_NOT_SYNC",
	nfsc.NFS3ErrBadCookie: "NFS3ERR_BAD_COOKIE", nfsc.NFS3ErrNotSupp: "NFS3ERR_NOTSUPP",
	nfsc.NFS3ErrTooSmall: "NFS3ERR_TOOSMALL", nfsc.NFS3ErrServerFault: "NFS3ERR_SERVERFAULT",
	nfsc.NFS3ErrBadType: "NFS3ERR_BADTYPE",
}

// nfsStatus reads an nfsstat3 and turns a failure into an error.
func nfsStatus(d *decoder) error {
	st := d.u32()
	if d.err != nil {
		return d.err
	}
	if st != nfsc.NFS3Ok {
		return &statusError{status: st}
	}
	return nil
}

// --- portmapper ---

// getPort asks a portmapper for the TCP port of prog/vers; 0 means not registered.
func getPort(c *rpcConn, prog, vers uint32, deadline time.Time) (int, error) {
	var port uint32
	err := c.call(rpc.PmapProg, rpc.PmapVers, rpc.PmapProcGetPort, "PMAPPROC_GETPORT", deadline,
		func(b *xdrBuf) { b.u32(prog); b.u32(vers); b.u32(rpc.IPProtoTCP); b.u32(0) }, nil,
		func(d *decoder) error { port = d.u32(); return d.err })
	return int(port), err
}

// --- MOUNT v3 ---

// mount asks for the root file handle of an export and checks that AUTH_SYS is accepted.
func mount(c *rpcConn, dirpath string, deadline time.Time) ([]byte, error) {
	var fh []byte
	err := c.call(nfsc.MountProg, nfsc.MountVers, nfsc.MountProc3MNT, "MOUNTPROC3_MNT "+dirpath, deadline,
		func(b *xdrBuf) { b.str(dirpath) }, nil,
		func(d *decoder) error {
			if st := d.u32(); d.err == nil && st != nfsc.MNT3Ok {
				return &statusError{status: st, mount: true}
			}
			fh = d.opaque(maxFH)
			n := d.u32()
			if d.err != nil {
				return d.err
			}
			if n > 64 {
				return fmt.Errorf("malformed reply: %d auth flavors", n)
			}
			sys := n == 0 // no list: the server does not say, try AUTH_SYS
			flavors := make([]uint32, n)
			for i := range flavors {
				flavors[i] = d.u32()
				if flavors[i] == authSys {
					sys = true
				}
			}
			if d.err != nil {
				return d.err
			}
			if !sys {
				return fmt.Errorf("export accepts only security flavors %v; this backend speaks auth_sys (1)", flavors)
			}
			return nil
		})
	return fh, err
}

// exports lists the server's exports (MOUNTPROC3_EXPORT), for error messages.
func exports(c *rpcConn, deadline time.Time) ([]string, error) {
	var list []string
	err := c.call(nfsc.MountProg, nfsc.MountVers, nfsc.MountProc3Export, "MOUNTPROC3_EXPORT", deadline, nil, nil,
		func(d *decoder) error {
			for d.bool() && d.err == nil && len(list) < 1000 {
				list = append(list, d.str(maxPath))
				for d.bool() && d.err == nil { // groups
					d.str(maxPath)
				}
			}
			return d.err
		})
	return list, err
}

// --- NFS v3 ---

// readFattr reads a fattr3 into go-nfs-client's Fattr.
func readFattr(d *decoder) nfsc.Fattr {
	var a nfsc.Fattr
	a.Type, a.FileMode, a.Nlink, a.UID, a.GID = d.u32(), d.u32(), d.u32(), d.u32(), d.u32()
	a.Filesize, a.Used = d.u64(), d.u64()
	a.SpecData[0], a.SpecData[1] = d.u32(), d.u32()
	a.FSID, a.Fileid = d.u64(), d.u64()
	for _, t := range []*nfsc.NFS3Time{&a.Atime, &a.Mtime, &a.Ctime} {
		t.Seconds, t.Nseconds = d.u32(), d.u32()
	}
	return a
}

// skipPostOpAttr skips a post_op_attr.
func skipPostOpAttr(d *decoder) {
	if d.bool() {
		d.skip(84) // fattr3
	}
}

// skipWcc skips wcc_data.
func skipWcc(d *decoder) {
	if d.bool() {
		d.skip(24) // wcc_attr: size, mtime, ctime
	}
	skipPostOpAttr(d)
}

func (c *rpcConn) nfs(proc uint32, name string, deadline time.Time, args func(b *xdrBuf), payload []byte, decode func(d *decoder) error) error {
	return c.call(nfsc.Nfs3Prog, nfsc.Nfs3Vers, proc, name, deadline, args, payload, decode)
}

func getattr(c *rpcConn, fh []byte, deadline time.Time) (nfsc.Fattr, error) {
	var a nfsc.Fattr
	err := c.nfs(nfsc.NFSProc3GetAttr, "GETATTR", deadline, func(b *xdrBuf) { b.opaque(fh) }, nil,
		func(d *decoder) error {
			if err := nfsStatus(d); err != nil {
				return err
			}
			a = readFattr(d)
			return d.err
		})
	return a, err
}

// lookup finds name in dir and returns its handle and attributes.
func lookup(c *rpcConn, dir []byte, name string, deadline time.Time) ([]byte, *nfsc.Fattr, error) {
	var fh []byte
	var attr *nfsc.Fattr
	err := c.nfs(nfsc.NFSProc3Lookup, "LOOKUP "+name, deadline,
		func(b *xdrBuf) { b.opaque(dir); b.str(name) }, nil,
		func(d *decoder) error {
			if err := nfsStatus(d); err != nil {
				return err
			}
			fh = d.opaque(maxFH)
			if d.bool() {
				a := readFattr(d)
				attr = &a
			}
			return d.err
		})
	return fh, attr, err
}

// create makes a new regular file (GUARDED: NFS3ERR_EXIST if name exists) and returns its
// handle, looking it up when the server does not return one.
func create(c *rpcConn, dir []byte, name string, mode uint32, deadline time.Time) ([]byte, error) {
	var fh []byte
	err := c.nfs(nfsc.NFSProc3Create, "CREATE "+name, deadline,
		func(b *xdrBuf) {
			b.opaque(dir)
			b.str(name)
			b.u32(createGuard)
			b.bool(true) // mode
			b.u32(mode)
			b.bool(false) // uid
			b.bool(false) // gid
			b.bool(false) // size
			b.u32(0)      // atime: don't change
			b.u32(0)      // mtime: don't change
		}, nil,
		func(d *decoder) error {
			if err := nfsStatus(d); err != nil {
				return err
			}
			if d.bool() {
				fh = d.opaque(maxFH)
			}
			return d.err
		})
	if err != nil || len(fh) > 0 {
		return fh, err
	}
	fh, _, err = lookup(c, dir, name, deadline)
	return fh, err
}

// truncate sets a file's size.
func truncate(c *rpcConn, fh []byte, size uint64, deadline time.Time) error {
	return c.nfs(nfsc.NFSProc3SetAttr, "SETATTR size", deadline,
		func(b *xdrBuf) {
			b.opaque(fh)
			b.bool(false) // mode
			b.bool(false) // uid
			b.bool(false) // gid
			b.bool(true)  // size
			b.u64(size)
			b.u32(0)      // atime
			b.u32(0)      // mtime
			b.bool(false) // no guard
		}, nil, nfsStatus)
}

func remove(c *rpcConn, dir []byte, name string, deadline time.Time) error {
	return c.nfs(nfsc.NFSProc3Remove, "REMOVE "+name, deadline,
		func(b *xdrBuf) { b.opaque(dir); b.str(name) }, nil, nfsStatus)
}

// fsInfo is what the backend needs from FSINFO.
type fsInfo struct {
	rtmax, rtpref, wtmax, wtpref uint32
}

func fsinfo(c *rpcConn, root []byte, deadline time.Time) (fsInfo, error) {
	var fi fsInfo
	err := c.nfs(nfsc.NFSProc3FSInfo, "FSINFO", deadline, func(b *xdrBuf) { b.opaque(root) }, nil,
		func(d *decoder) error {
			if err := nfsStatus(d); err != nil {
				return err
			}
			skipPostOpAttr(d)
			fi.rtmax, fi.rtpref = d.u32(), d.u32()
			d.u32() // rtmult
			fi.wtmax, fi.wtpref = d.u32(), d.u32()
			return d.err
		})
	return fi, err
}

// nfsProc3FSStat is FSSTAT (RFC 1813 3.3.18); go-nfs-client has no constant for it.
const nfsProc3FSStat = 18

// fsStat is what the backend needs from FSSTAT: total and available bytes.
type fsStat struct {
	tbytes, fbytes, abytes uint64
}

// fsstat asks the server for the size and free space of the filesystem holding fh.
func fsstat(c *rpcConn, fh []byte, deadline time.Time) (fsStat, error) {
	var fs fsStat
	err := c.nfs(nfsProc3FSStat, "FSSTAT", deadline, func(b *xdrBuf) { b.opaque(fh) }, nil,
		func(d *decoder) error {
			if err := nfsStatus(d); err != nil {
				return err
			}
			skipPostOpAttr(d)
			fs.tbytes, fs.fbytes, fs.abytes = d.u64(), d.u64(), d.u64()
			return d.err
		})
	return fs, err
}

// read reads up to len(dst) bytes at off straight into dst.
func read(c *rpcConn, fh []byte, off uint64, dst []byte) (n int, eof bool, err error) {
	err = c.nfs(nfsc.NFSProc3Read, "READ", time.Time{},
		func(b *xdrBuf) { readArgs(b, fh, off, len(dst)) }, nil,
		func(d *decoder) (err error) { n, eof, err = readResults(d, dst); return err })
	return n, eof, err
}

// readArgs encodes READ3args for count bytes at off.
func readArgs(b *xdrBuf, fh []byte, off uint64, count int) {
	b.opaque(fh)
	b.u64(off)
	b.u32(uint32(count))
}

// readResults decodes READ3res: the data goes straight into dst; n is how much, and eof
// whether the file ends there.
func readResults(d *decoder, dst []byte) (n int, eof bool, err error) {
	if err := nfsStatus(d); err != nil {
		return 0, false, err
	}
	skipPostOpAttr(d)
	count := d.u32()
	eof = d.bool()
	size := d.u32()
	if d.err != nil {
		return 0, eof, d.err
	}
	if size > uint32(len(dst)) || count != size {
		return 0, eof, fmt.Errorf("malformed reply: %d bytes (count %d) for a read of %d", size, count, len(dst))
	}
	d.into(dst[:size])
	if d.err != nil { // a reply cut short did not fill dst: report nothing read
		return 0, eof, d.err
	}
	return int(size), eof, nil
}

// write writes data at off with the given stability and returns how much the server took,
// how it committed it and its write verifier.
func write(c *rpcConn, fh []byte, off uint64, data []byte, stable uint32) (n int, committed uint32, verf [8]byte, err error) {
	err = c.nfs(nfsc.NFSProc3Write, "WRITE", time.Time{},
		func(b *xdrBuf) { writeArgs(b, fh, off, len(data), stable) }, data,
		func(d *decoder) (err error) { n, committed, verf, err = writeResults(d, len(data)); return err })
	return n, committed, verf, err
}

// writeArgs encodes WRITE3args for count bytes at off, up to the data, which follows as the
// call's payload.
func writeArgs(b *xdrBuf, fh []byte, off uint64, count int, stable uint32) {
	b.opaque(fh)
	b.u64(off)
	b.u32(uint32(count))
	b.u32(stable)
	b.u32(uint32(count)) // opaque length
}

// writeResults decodes WRITE3res for a write of count bytes.
func writeResults(d *decoder, count int) (n int, committed uint32, verf [8]byte, err error) {
	if err := nfsStatus(d); err != nil {
		return 0, 0, verf, err
	}
	skipWcc(d)
	took := d.u32()
	committed = d.u32()
	d.into(verf[:])
	if d.err != nil {
		// The count of a reply cut short is not to be trusted: as n it could exceed count
		// (io.WriterAt's callers slice by it).
		return 0, committed, verf, d.err
	}
	if took > uint32(count) {
		return 0, committed, verf, fmt.Errorf("malformed reply: server wrote %d bytes of %d", took, count)
	}
	return int(took), committed, verf, nil
}

// commit flushes unstable writes of the whole file and returns the write verifier.
func commit(c *rpcConn, fh []byte) (verf [8]byte, err error) {
	err = c.nfs(nfsc.NFSProc3Commit, "COMMIT", time.Time{},
		func(b *xdrBuf) { b.opaque(fh); b.u64(0); b.u32(0) }, nil,
		func(d *decoder) error {
			if err := nfsStatus(d); err != nil {
				return err
			}
			skipWcc(d)
			d.into(verf[:])
			return d.err
		})
	return verf, err
}

// isNotExist reports whether err is a NOENT from LOOKUP or MNT.
func isNotExist(err error) bool { return errors.Is(err, os.ErrNotExist) }
