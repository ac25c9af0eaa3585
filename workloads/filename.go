package workloads

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
)

// remoteEngines are fio I/O engines whose filename= is not a local path (a host, a pool,
// an object, a URL): without a --target there is no local file to run on.
// (libiscsi, nbd and nfs are not among them: their jobs run on the backend that speaks the
// same protocol, see engineTargets.)
var remoteEngines = map[string]bool{
	"rbd": true, "rados": true, "http": true, "dfs": true, "gfapi": true,
	"gfapi_async": true, "libhdfs": true, "net": true, "netsplice": true, "rdma": true,
	"librpma_apm_client": true, "librpma_apm_server": true, "librpma_gpspm_client": true, "librpma_gpspm_server": true,
}

// pmemEngines take "malloc" as filename= (memory, not a file).
var pmemEngines = map[string]bool{"dev-dax": true, "libpmem": true, "pmemblk": true}

var (
	urlForm  = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*://`)
	hostPort = regexp.MustCompile(`^[^/]*:[0-9]+(/|$)`)
)

// CheckLocalFilename reports why a job file's filename= (as parsed, '\:' unescaped) is not
// a local file or device path for the job's ioengine= ("" when not given): a URL, a
// host:port or protocol:path form, or a name fio's engine resolves itself (rbd, nbd, http,
// net, ...). vmstorbench then cannot run the job on a local file; a --target says where.
func CheckLocalFilename(name, ioengine string) error {
	switch {
	case name == "":
		return nil
	case remoteEngines[ioengine]:
		return fmt.Errorf("filename=%q names what fio's ioengine=%s connects to, not a local file: give --target", name, ioengine)
	case pmemEngines[ioengine] && name == "malloc":
		return fmt.Errorf("filename=malloc is memory for fio's ioengine=%s, not a file: give --target (e.g. mem://)", ioengine)
	case urlForm.MatchString(name):
		return fmt.Errorf("filename=%q is a URL, not a local path: give it as --target (see 'vmstorbench backends')", name)
	case hostPort.MatchString(name):
		return fmt.Errorf("filename=%q is a host:port, not a local path: give --target", name)
	case !filepath.IsAbs(name) && strings.Contains(strings.SplitN(name, "/", 2)[0], ":"):
		return fmt.Errorf("filename=%q looks like protocol:path, not a local path: give --target, or write a local file so named as ./%s", name, name)
	}
	return nil
}

// FileTarget is the target a job of a job file runs on when no --target is given, and a
// note saying where it comes from ("" for a local path). A job of fio's libiscsi, nbd or
// nfs engine runs on the vmstorbench backend that speaks the same protocol: the URL the
// engine connects to (filename=, uri=, nfs_url=) becomes an iscsi://, nbd://, nbd+unix://
// or nfs:// target (engineTargets). Otherwise it is a file:// URL of its filename= (inside
// its directory= when both are given) or of its directory=; "" when it names neither. A
// filename= that is not a local path is an error (CheckLocalFilename).
func (j Job) FileTarget() (target, note string, err error) {
	if e, ok := engineTargets[j.Options["ioengine"]]; ok {
		return e.target(j)
	}
	w := j.Workload
	if err := CheckLocalFilename(w.Filename, j.Options["ioengine"]); err != nil {
		return "", "", err
	}
	p := w.Filename
	switch {
	case p == "" && w.Directory == "":
		return "", "", nil
	case p == "":
		p = w.Directory
	case w.Directory != "" && !filepath.IsAbs(p):
		p = filepath.Join(w.Directory, p)
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", "", err
	}
	return "file://" + abs, "", nil
}

// TargetNote is the note for a job whose filename= or directory= a --target replaces, ""
// when it has neither.
func (j Job) TargetNote() string {
	for _, opt := range []string{"uri", "nfs_url"} {
		if v, ok := j.Options[opt]; ok {
			if f := j.Workload.Filename; f != "" {
				v += " filename=" + f
			}
			return fmt.Sprintf("ioengine=%s %s=%s replaced by the target", j.Options["ioengine"], opt, v)
		}
	}
	switch w := j.Workload; {
	case w.Filename != "":
		return fmt.Sprintf("filename=%s replaced by the target", w.Filename)
	case w.Directory != "":
		return fmt.Sprintf("directory=%s replaced by the target", w.Directory)
	}
	return ""
}

// noIOEngines are fio I/O engines that do no data I/O on a file or device, and what they do
// instead: a job using one has no meaning on a vmstorbench target.
var noIOEngines = map[string]string{
	"cpuio":      "burns CPU",
	"exec":       "runs a program",
	"filecreate": "creates files",
	"filestat":   "stats files",
	"filedelete": "deletes files",
	"dircreate":  "creates directories",
	"dirstat":    "stats directories",
	"dirdelete":  "deletes directories",
	"ftruncate":  "truncates files",
	"falloc":     "allocates file space",
	"e4defrag":   "defragments files",
	"net":        "does network I/O",
	"netsplice":  "does network I/O",
	"rdma":       "does RDMA network I/O",
}
