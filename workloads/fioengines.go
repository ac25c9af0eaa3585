package workloads

import (
	"fmt"
	"maps"
	"net"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
)

// engineTarget turns a job of one of fio's network engines into the target of the
// vmstorbench backend that speaks the same protocol.
type engineTarget struct {
	option string // the option holding the URL the engine connects to
	target func(Job) (target, note string, err error)
}

// engineTargets are fio's engines whose jobs run unchanged on a vmstorbench backend.
var engineTargets = map[string]engineTarget{
	"libiscsi": {"filename", iscsiTarget},
	"nbd":      {"uri", nbdTarget},
	"nfs":      {"nfs_url", nfsTarget},
}

// engineURLOptions are the options that exist only for one engine, with that engine: fio
// refuses them with any other.
var engineURLOptions = []struct{ option, engine string }{{"uri", "nbd"}, {"nfs_url", "nfs"}}

// checkEngineOptions refuses, whatever the target, what fio would refuse (an engine's option
// with another engine) and any password in the URL an engine connects to: the job's
// options end up in results and notes.
func checkEngineOptions(options map[string]string, filename string) error {
	engine := options["ioengine"]
	for _, o := range engineURLOptions {
		if _, given := options[o.option]; given && engine != o.engine {
			if engine == "" {
				engine = "psync (fio's default)"
			}
			return fmt.Errorf("%s= is an option of fio's ioengine=%s, and this job's ioengine is %s", o.option, o.engine, engine)
		}
	}
	switch engine {
	case "libiscsi":
		if user, ok := libiscsiPassword(filename); ok {
			return chapPasswordError(user)
		}
	case "nbd", "nfs":
		opt := engineTargets[engine].option
		if u, err := url.Parse(options[opt]); err == nil && u.User != nil {
			if _, has := u.User.Password(); has {
				return fmt.Errorf("%s= of ioengine=%s holds a password: refused (passwords never go into job files, results or logs)", opt, engine)
			}
		}
	}
	return nil
}

// libiscsiPassword reports whether a libiscsi URL, iscsi://[user[%password]@]host..., has a
// password (after '%', or after ':' which libiscsi also takes), and for which user.
func libiscsiPassword(raw string) (user string, ok bool) {
	rest, found := strings.CutPrefix(raw, "iscsi://")
	if !found {
		return "", false
	}
	rest, _, _ = strings.Cut(rest, "?")
	userinfo, _, found := strings.Cut(rest, "@")
	if !found {
		return "", false
	}
	if i := strings.IndexAny(userinfo, "%:"); i >= 0 {
		return userinfo[:i], true
	}
	return "", false
}

// chapPasswordError is the refusal of a CHAP password in a libiscsi URL. It names the user,
// never the password, and says how the iscsi backend takes the secret.
func chapPasswordError(user string) error {
	return fmt.Errorf("filename= of ioengine=libiscsi holds a CHAP password for user %q: refused (passwords never go into job files, results or logs); "+
		"write iscsi://%s@HOST/IQN/LUN and put the secret in $VMSTORBENCH_ISCSI_SECRET, or give --target iscsi://%s@HOST/IQN/LUN?secret_file=PATH", user, user, user)
}

// iscsiTarget is a libiscsi job's target: its filename=, a libiscsi URL
// (iscsi://[user@]host[:port]/target-iqn/lun[?header_digest=none|crc32c], fio escaping ':'
// as '\:'), as the iscsi backend's URL. A user name is the CHAP user, as libiscsi's; the
// secret comes from the backend's $VMSTORBENCH_ISCSI_SECRET (libiscsi's
// LIBISCSI_CHAP_PASSWORD is not read).
func iscsiTarget(j Job) (string, string, error) {
	w := j.Workload
	raw := w.Filename
	const form = "iscsi://[user@]host[:port]/target-iqn/lun"
	switch {
	case raw == "":
		return "", "", fmt.Errorf("ioengine=libiscsi needs filename=%s (':' written as '\\:'), or give --target", form)
	case w.Directory != "":
		return "", "", fmt.Errorf("directory=%s with ioengine=libiscsi: fio would open %s/%s, which is no libiscsi URL", w.Directory, w.Directory, raw)
	case strings.HasPrefix(raw, "iser://"):
		return "", "", fmt.Errorf("filename=%s: iSER (RDMA) is not supported: vmstorbench's iscsi backend speaks iSCSI over TCP", raw)
	}
	rest, ok := strings.CutPrefix(raw, "iscsi://")
	if !ok {
		return "", "", fmt.Errorf("filename=%s: ioengine=libiscsi takes a libiscsi URL, %s", raw, form)
	}
	if user, ok := libiscsiPassword(raw); ok {
		return "", "", chapPasswordError(user)
	}
	rest, rawQuery, _ := strings.Cut(rest, "?")
	u := &url.URL{Scheme: "iscsi"}
	if userinfo, hostPath, found := strings.Cut(rest, "@"); found {
		if userinfo == "" {
			return "", "", fmt.Errorf("filename=%s: empty user name before '@'", raw)
		}
		u.User, rest = url.User(userinfo), hostPath
	}
	portal, p, _ := strings.Cut(rest, "/")
	iqn, lun, hasLUN := strings.Cut(p, "/")
	switch {
	case portal == "":
		return "", "", fmt.Errorf("filename=%s: no host (%s)", raw, form)
	case iqn == "":
		return "", "", fmt.Errorf("filename=%s: no target IQN (%s)", raw, form)
	case !hasLUN || lun == "":
		return "", "", fmt.Errorf("filename=%s: no LUN (%s)", raw, form)
	}
	if _, err := strconv.ParseUint(lun, 10, 64); err != nil {
		return "", "", fmt.Errorf("filename=%s: LUN %q is not a number (%s)", raw, lun, form)
	}
	// libiscsi decodes %XX in the target name ("iqn.x%3A1" is "iqn.x:1").
	iqn, err := url.PathUnescape(iqn)
	if err != nil {
		return "", "", fmt.Errorf("filename=%s: target name: %v", raw, err)
	}
	u.Host, u.Path = portal, "/"+iqn+"/"+lun
	q := url.Values{}
	for _, kv := range splitQuery(rawQuery) {
		switch key, value, _ := strings.Cut(kv, "="); key {
		case "header_digest":
			if value != "none" && value != "crc32c" {
				return "", "", fmt.Errorf("filename=%s: header_digest=%s: libiscsi takes none or crc32c", raw, value)
			}
			q.Set("header_digest", value)
		case "target_user", "target_password":
			return "", "", fmt.Errorf("filename= of ioengine=libiscsi: %s: mutual (target) CHAP is not supported by vmstorbench's iscsi backend", key)
		case "iser":
			return "", "", fmt.Errorf("filename=%s: iser: iSER (RDMA) is not supported: vmstorbench's iscsi backend speaks iSCSI over TCP", raw)
		default:
			return "", "", fmt.Errorf("filename=%s: URL option %q: not one vmstorbench's iscsi backend takes from a libiscsi URL (header_digest)", raw, key)
		}
	}
	u.RawQuery = q.Encode()
	return checkedTarget(u, fmt.Sprintf("ioengine=libiscsi filename=%s", raw))
}

// nbdTarget is an nbd job's target: its uri=, a libnbd URI (nbd://host[:port]/export or
// nbd+unix:///export?socket=PATH), as the nbd backend's URL. fio's nbd engine uses no file
// name: a filename= or directory= is only noted.
func nbdTarget(j Job) (string, string, error) {
	raw, ok := j.Options["uri"]
	const forms = "nbd://host[:port]/export or nbd+unix:///export?socket=PATH"
	if !ok || raw == "" {
		return "", "", fmt.Errorf("ioengine=nbd needs uri=%s, or give --target", forms)
	}
	in, err := url.Parse(raw)
	if err != nil {
		return "", "", fmt.Errorf("uri=%s: %v", raw, err)
	}
	switch in.Scheme {
	case "nbd", "nbd+unix":
	case "nbds", "nbds+unix":
		return "", "", fmt.Errorf("uri=%s: %s:// (TLS from libnbd's certificate directory) is not mapped: give --target %s://...?tls=on&tls_ca=CA.pem (the nbd backend's TLS options)", raw, in.Scheme, strings.Replace(in.Scheme, "nbds", "nbd", 1))
	case "nbd+vsock", "nbds+vsock":
		return "", "", fmt.Errorf("uri=%s: AF_VSOCK is not supported by vmstorbench's nbd backend (TCP or a Unix socket)", raw)
	default:
		return "", "", fmt.Errorf("uri=%s: not an NBD URI (%s)", raw, forms)
	}
	switch {
	case in.Opaque != "":
		return "", "", fmt.Errorf("uri=%s: not an NBD URI (%s)", raw, forms)
	case in.User != nil:
		return "", "", fmt.Errorf("uri= of ioengine=nbd: a user name (%s@) is libnbd's TLS-PSK user: TLS-PSK is not supported by vmstorbench's nbd backend", in.User.Username())
	case in.Fragment != "":
		return "", "", fmt.Errorf("uri=%s: a #fragment has no meaning in an NBD URI", raw)
	case in.Scheme == "nbd" && in.Hostname() == "":
		return "", "", fmt.Errorf("uri=%s: no host (%s)", raw, forms)
	case in.Scheme == "nbd+unix" && in.Host != "":
		return "", "", fmt.Errorf("uri=%s: nbd+unix:// takes no host: nbd+unix:///export?socket=PATH", raw)
	}
	out := &url.URL{Scheme: in.Scheme, Host: in.Host, Path: in.Path}
	q, err := url.ParseQuery(in.RawQuery)
	if err != nil {
		return "", "", fmt.Errorf("uri=%s: %v", raw, err)
	}
	for _, key := range slices.Sorted(maps.Keys(q)) {
		switch {
		case len(q[key]) > 1:
			return "", "", fmt.Errorf("uri=%s: URL option %q given twice", raw, key)
		case key == "socket" && in.Scheme == "nbd+unix":
		case key == "socket":
			return "", "", fmt.Errorf("uri=%s: socket= goes with nbd+unix:///export?socket=PATH", raw)
		default:
			return "", "", fmt.Errorf("uri=%s: URL option %q: not one vmstorbench's nbd backend takes from a libnbd URI (socket)", raw, key)
		}
	}
	if in.Scheme == "nbd+unix" {
		if q.Get("socket") == "" {
			return "", "", fmt.Errorf("uri=%s: nbd+unix needs socket=PATH", raw)
		}
		out.RawQuery = strings.ReplaceAll(url.Values{"socket": {q.Get("socket")}}.Encode(), "%2F", "/")
		if out.Path == "" {
			out.Path = "/" // keeps the empty authority: nbd+unix:///?socket=...
		}
	}
	note := "ioengine=nbd uri=" + raw
	for _, ignored := range []struct{ opt, v string }{{"filename", j.Workload.Filename}, {"directory", j.Workload.Directory}} {
		if ignored.v != "" {
			note += fmt.Sprintf(" (%s=%s unused, as by fio's nbd engine)", ignored.opt, ignored.v)
		}
	}
	return checkedTarget(out, note)
}

// nfsTarget is an nfs job's target: the file fio's nfs engine opens, its filename= (or,
// without one, the directory vmstorbench makes its files in) inside directory= inside the
// export that nfs_url= (a libnfs URL, nfs://server[:port]/export[?options]) mounts, as the
// nfs backend's URL with export= set to that export.
func nfsTarget(j Job) (string, string, error) {
	w := j.Workload
	raw, ok := j.Options["nfs_url"]
	const form = "nfs://server[:port]/export[?nfsport=N&mountport=N&uid=N&gid=N]"
	if !ok || raw == "" {
		return "", "", fmt.Errorf("ioengine=nfs needs nfs_url=%s, or give --target", form)
	}
	rest, ok := strings.CutPrefix(raw, "nfs://")
	if !ok {
		return "", "", fmt.Errorf("nfs_url=%s: not a libnfs URL (%s)", raw, form)
	}
	rest, rawQuery, _ := strings.Cut(rest, "?")
	server, export, ok := strings.Cut(rest, "/")
	switch {
	case strings.Contains(server, "@"):
		return "", "", fmt.Errorf("nfs_url=%s: a user name is not supported: vmstorbench's nfs backend uses AUTH_SYS (uid=, gid=)", raw)
	case server == "":
		return "", "", fmt.Errorf("nfs_url=%s: no server (%s)", raw, form)
	case !ok:
		return "", "", fmt.Errorf("nfs_url=%s: no export path (%s)", raw, form)
	}
	export, err := url.PathUnescape(export)
	if err != nil {
		return "", "", fmt.Errorf("nfs_url=%s: path: %v", raw, err)
	}
	export = path.Clean("/" + export)
	u := &url.URL{Scheme: "nfs", Host: server}
	q := url.Values{"export": {export}}
	for _, kv := range splitQuery(rawQuery) {
		key, value, _ := strings.Cut(kv, "=")
		switch key {
		case "nfsport", "mountport", "uid", "gid":
			if _, err := strconv.ParseUint(value, 10, 32); err != nil {
				return "", "", fmt.Errorf("nfs_url=%s: %s=%q is not a number", raw, key, value)
			}
		}
		switch key {
		case "nfsport":
			if strings.Contains(strings.TrimPrefix(server, "["), ":") && !strings.HasSuffix(server, "]") {
				return "", "", fmt.Errorf("nfs_url=%s: two NFS ports (server:port and nfsport=)", raw)
			}
			u.Host = net.JoinHostPort(strings.Trim(server, "[]"), value)
		case "mountport", "uid", "gid":
			q.Set(key, value)
		case "version":
			if value != "3" {
				return "", "", fmt.Errorf("nfs_url=%s: version=%s: vmstorbench's nfs backend speaks NFSv3 only", raw, value)
			}
		default:
			return "", "", fmt.Errorf("nfs_url=%s: URL option %q: not one vmstorbench's nfs backend takes from a libnfs URL (nfsport, mountport, uid, gid, version=3)", raw, key)
		}
	}
	// fio's file is directory= then filename= (fio prepends directory= even to an absolute
	// filename=), opened by libnfs relative to the mounted export.
	u.Path = path.Join(export, w.Directory, w.Filename)
	note := "ioengine=nfs nfs_url=" + raw
	if w.Filename != "" {
		note += " filename=" + w.Filename
	}
	if w.Directory != "" {
		note += " directory=" + w.Directory
	}
	// fio's nfs engine opens its file without O_SYNC, whatever sync= says, so libnfs sends
	// UNSTABLE WRITEs, COMMITted only when fio closes the file, after the timed run: the
	// backend's stable=unstable writes the same way (and COMMITs for fsync=, which fio's
	// engine cannot do). A job that asks for sync= gets
	// the FILE_SYNC writes it asks for.
	if w.SyncIO == "" {
		q.Set("stable", "unstable")
	}
	u.RawQuery = strings.ReplaceAll(q.Encode(), "%2F", "/")
	target, note, err := checkedTarget(u, note)
	if err == nil && w.SyncIO != "" {
		note += fmt.Sprintf(" (sync=%s: FILE_SYNC writes, where fio's nfs engine ignores sync= and writes UNSTABLE)", w.SyncIO)
	}
	return target, note, err
}

// checkedTarget is u as a target string, checked to parse back with a host or a path, with
// the note saying which job options it comes from.
func checkedTarget(u *url.URL, from string) (string, string, error) {
	s := u.String()
	back, err := url.Parse(s)
	if err != nil {
		return "", "", fmt.Errorf("%s: %v", from, err)
	}
	if p := back.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return "", "", fmt.Errorf("%s: port %q: must be a number from 1 to 65535", from, p)
		}
	}
	return s, from + " runs on " + s, nil
}

// splitQuery splits a query as libiscsi and libnfs do: '&' between options, no decoding.
func splitQuery(q string) []string {
	var out []string
	for _, kv := range strings.Split(q, "&") {
		if kv != "" {
			out = append(out, kv)
		}
	}
	return out
}

// redactPassword hides the password of a URL's user part in an option value that is echoed
// in an error: "iscsi://bench%secret@host/..." (libiscsi's form) or "nbd://u:secret@host".
func redactPassword(v string) string {
	scheme, rest, ok := strings.Cut(v, "://")
	if !ok {
		return v
	}
	userinfo, hostPath, ok := strings.Cut(rest, "@")
	if !ok || strings.Contains(userinfo, "/") {
		return v
	}
	if i := strings.IndexAny(userinfo, "%:"); i >= 0 {
		return scheme + "://" + userinfo[:i+1] + "REDACTED@" + hostPath
	}
	return v
}
