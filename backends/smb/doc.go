// Package smb is the smb:// backend: a file on an SMB2/3 share, reached through a userspace
// client, so that no kernel CIFS module is needed and every request is visible to the tool.
//
// URL: smb://user@host[:port]/share/path/file?dialect=&sign=&domain=&password_file=&timeout=
// The password comes from $VMSTORBENCH_SMB_PASSWORD or the file named by password_file=;
// it never appears in URLs, errors, logs or results. Job 0 uses the file the URL names, job
// n > 0 "<file>.<n>". A URL naming a directory of the share gets the tool's own bench files
// inside it, vmstorbench.job<N>.dat (reused if left by keep, removed on Close unless Keep);
// several files per job (fio nrfiles) are named as in package backends (DirFile, NamedFile).
// Before a file is created or extended, the share's free space (FileFsFullSizeInformation,
// units available to the caller) must hold what the run needs (backends.CheckSpace).
//
// Bench files follow the file backend's rules: a file that does not exist is created (and
// laid out with data when the workload reads) and removed on Close unless Keep; an existing
// file is written only with AllowDestructive, and a reading job opens it read-only.
//
// Each Target is one TCP connection with one session, one tree connect and one open file.
// Concurrent ReadAt/WriteAt calls are pipelined on that connection (requests are matched to
// responses by MessageId), so iodepth N keeps N requests in flight; the client keeps 2048
// credits granted (128 MiB of requests). Calls larger than the negotiated maximum (at most
// 1 MiB) are split and the pieces sent together. Sync is SMB2 FLUSH (fdatasync=N runs as
// Sync too: SMB has no data-only flush). fio's sync= (OpenParams.SyncWrites, sync or dsync)
// opens the file with FILE_WRITE_THROUGH, so the server completes each WRITE only once it
// is on stable storage (Samba honours it when "strict sync" is on, the default of current releases). There is no
// client-side cache, so every I/O reaches the server whether or not Direct is asked for.
//
// Security: sign=required makes the client sign every request and verify every response;
// otherwise requests are signed only when the server requires it (and TREE_CONNECT, which
// SMB 3.1.1 always signs). Encryption (AES-128-GCM or -CCM) is used when the share or server
// requires it. Describe reports the dialect and the protection actually applied, observed on
// the wire while the file was opened: "none", "signed" or "encrypted".
//
// Every call is bounded: set-up by the caller's context and timeout=, each later request by
// timeout= (default 30 s), Close by 5 s. A request without an answer in time closes the
// connection, which fails all requests in flight; a server that dies resets the connection
// and fails them at once.
//
// Client library: github.com/cloudsoda/go-smb2, a maintained fork of
// github.com/hirochachacha/go-smb2, pinned at v0.0.0-20260803221621-0b399b9d036c. Upstream
// v1.1.0 rejects the unsigned STATUS_PENDING interim responses that Samba sends (as
// MS-SMB2 3.3.4.1.1 says servers must) when signing is required, failing writes with
// "signing required"; the fork skips verification of interim responses (its PR #48,
// MS-SMB2 3.2.5.1.3). It also signs only when signing is required (upstream signs every
// request, so "none" was never unsigned), pools receive buffers and fixes credit accounting
// on failed requests. It is built from a patched copy, third_party/go-smb2 (go.mod
// replace; see its README.md): the fork computes the AES-CMAC of SMB 3.x signing and the
// CBC-MAC of AES-CCM one byte at a time, which made "signed" measure the client (~3.5 ms
// per 1 MiB message); the copy does it a block at a time (~1.2 ms, near the AES latency).
//
// wire.go sits between the library and the socket: it learns what was negotiated (the
// library does not export it), sends each request's length and body with one writev
// instead of two segments, and reads through a buffer.
package smb
