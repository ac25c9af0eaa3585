// Package nfs is the nfs:// backend: a file on an NFSv3 server reached over TCP by a
// userspace client, so that no kernel NFS module is needed and every request is visible to
// the tool.
//
// URL: nfs://host[:port]/export/path/file?mountport=&export=&uid=&gid=&stable=&rsize=&wsize=
// &create=&name=&timeout=
//
// Ports: the URL's port is the NFS port and mountport= the MOUNT port; a port not given is
// asked from the portmapper on port 111 (NFS program 100003 v3 and MOUNT 100005 v3, TCP).
// Servers with fixed ports (the testbed's Ganesha, go-nfs) need no portmapper when both
// are given.
//
// Export: the URL path is the export followed by the path inside it. Without export= the
// backend tries MNT with the whole path, then each shorter leading directory, and takes the
// first one the server lets it mount (the longest: NFSv3 servers that allow mounting
// subdirectories of an export give the same file either way). export=/srv/nfs names the
// split explicitly. When nothing mounts, the error lists the server's exports (MOUNT
// EXPORT) and every path tried.
//
// The bench file: a URL naming an existing directory gets one bench file per job inside it,
// <name>.job<N>.dat, which the tool owns (reused if left by keep, removed on Close unless
// Keep). A URL naming a file is job 0's file; job N > 0 uses <file>.<N>. A missing file is
// created (create=never refuses) with mode 0644 and sized to the job (sparse); for a reading
// job it is then filled with data, as fio lays files out, so reads do not hit holes. An
// existing file the tool did not create is written (and extended) only with
// AllowDestructive; a file the tool created is removed on Close unless Keep. With several
// files per job (fio nrfiles) they are <name>.job<N>.<F>.dat, or named by filename_format
// (not assumed to be the tool's own), and <file>.f<F> for a URL naming a file. Before a file
// is created or extended, FSSTAT's available bytes must hold what the run needs
// (backends.CheckSpace).
//
// Security: AUTH_SYS with uid=/gid= (default: this process's ids), the gid as the only
// supplementary group. There are no secrets, so nothing is redacted from nfs:// URLs. Source
// ports are unprivileged: servers that insist on ports below 1024 (Linux knfsd's "secure"
// export default) must export with "insecure".
//
// I/O: each Target is one TCP connection. ReadAt and WriteAt send READ and WRITE with
// explicit offsets; any number of calls are in flight at once, matched to replies by XID,
// so iodepth N keeps N requests on the wire. The socket is used with blocking system calls
// and the waiting callers read the replies themselves (rpcConn); the Target is also a
// backends.Queuer, whose one goroutine submits and reaps (fio's queue/getevents). READ data
// is decoded straight from the socket into the caller's buffer and WRITE data is sent with
// sendmsg from the caller's buffer, without copies. A request
// larger than the server's rtmax/wtmax (FSINFO; at most 16 MiB, or rsize=/wsize=) is split
// and the pieces sent together; short replies are continued. WRITEs are FILE_SYNC by
// default; with stable=unstable they are UNSTABLE and Sync sends COMMIT, which fails if the
// server's write verifier changed since those writes (the server restarted and may have
// lost them). Size is GETATTR's size. There is no client cache: Direct changes nothing.
// fio's sync= (OpenParams.SyncWrites) is what FILE_SYNC WRITEs already give; with
// stable=unstable it is refused. fdatasync=N runs as Sync (COMMIT, a no-op with FILE_SYNC).
//
// Deadlines: set-up calls are bounded by the caller's context and timeout=; every later call
// by timeout= (default 30 s). A call without reply in that time, a server that closes or
// resets the connection, or a malformed reply stream fails every call on the connection at
// once and every later call immediately: there are no retries and no reconnects, so a dead
// server ends a run with an error in seconds.
//
// Library: program, procedure and status numbers, AUTH_SYS credentials and attribute types
// come from github.com/willscott/go-nfs-client (pinned at
// v0.0.0-20251022144359-801f10d98886). Its RPC client is not used: it retries each call up to
// 100 times with a package-global 5 s timeout, reconnects silently in the background, can
// close a reply channel twice (a panic) when a connection breaks with calls in flight, has
// no WriteAt, and its Target starts a cache goroutine that never exits. This
// package has its own small ONC RPC transport (rpc.go) and hand-written XDR for the ten
// procedures it uses (proto.go).
package nfs
