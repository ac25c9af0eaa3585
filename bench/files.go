package bench

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/vmstorbench/vmstorbench/backends"
	"github.com/vmstorbench/vmstorbench/workloads"
)

// fio's nrfiles, filesize and filename_format: a job with several files opens one Target per
// file and works on their concatenation (multiTarget), so the offset generator is unchanged.
//
// Note on the difference from fio: fio's default file_service_type=roundrobin switches file
// after every I/O and generates offsets within each file; here offsets are generated over the
// concatenated files, so a sequential job reads the files one after the other and a random
// job spreads its I/Os over all files in proportion to their sizes. Random workloads behave
// alike; sequential ones differ in order (fio file_service_type=sequential is the closer
// match).

// maxFiles bounds numjobs × nrfiles: each file is one open Target (a connection for the
// network backends).
const maxFiles = 4096

// filePlan is what the engine opens for one run: per job, the files and their sizes.
type filePlan struct {
	multi bool // several files per job or filesize=: wrap them in a multiTarget
	sizes []int64
	names [][]string // [job][file] FileName for directory targets; nil: backend default
}

// total is the bytes all jobs' files take.
func (fp *filePlan) total(jobs int) int64 {
	var sum int64
	for _, s := range fp.sizes {
		sum += s
	}
	return sum * int64(jobs)
}

// planFiles sizes and names the files of w (after Defaults). Without nrfiles, filesize and
// filename_format each job has one file of offset+size bytes, named by the backend.
func planFiles(w workloads.Workload) (*filePlan, error) {
	nr := max(w.NrFiles, 1)
	fp := &filePlan{multi: nr > 1 || w.FileSize.Min > 0}
	if !fp.multi {
		fp.sizes = []int64{w.Offset + w.Size}
	} else {
		if w.NrFiles < 0 || nr*w.NumJobs > maxFiles {
			return nil, fmt.Errorf("nrfiles=%d × numjobs=%d: at most %d files in all", w.NrFiles, w.NumJobs, maxFiles)
		}
		if w.Offset != 0 {
			return nil, fmt.Errorf("offset=%d with nrfiles/filesize: per-file offsets are not supported", w.Offset)
		}
		align := minBS(w)
		fp.sizes = make([]int64, nr)
		for f := range fp.sizes {
			var s int64
			switch fs := w.FileSize; {
			case fs.Min <= 0:
				s = w.Size / int64(nr)
			case fs.Max > fs.Min:
				// A range: a size per file index, the same in every job (so all jobs have
				// the same region), fixed by randseed.
				s = fs.Min + int64(splitmix(w.RandSeed^uint64(f+1)*0x9e3779b97f4a7c15)%uint64(fs.Max-fs.Min+1))
			default:
				s = fs.Min
			}
			s = s / align * align
			if s < w.BS[workloads.Read].Max || s < w.BS[workloads.Write].Max || s <= 0 {
				return nil, fmt.Errorf("file %d of %d would be %d bytes: smaller than one block (size=%d, filesize=%s)", f, nr, s, w.Size, w.FileSize)
			}
			fp.sizes[f] = s
		}
	}
	if w.FilenameFormat != "" {
		seen := map[string]string{}
		fp.names = make([][]string, w.NumJobs)
		for j := range fp.names {
			fp.names[j] = make([]string, nr)
			for f := range nr {
				name, err := expandFilename(w.FilenameFormat, w.Name, j, f)
				if err != nil {
					return nil, err
				}
				at := fmt.Sprintf("job %d file %d", j, f)
				if prev, dup := seen[name]; dup {
					return nil, fmt.Errorf("filename_format=%q gives %s and %s the same file %q", w.FilenameFormat, prev, at, name)
				}
				seen[name] = at
				fp.names[j][f] = name
			}
		}
	}
	return fp, nil
}

// expandFilename is fio's filename_format: $jobname, $jobnum, $filenum. The result must be a
// plain file name (it is created inside the target directory).
func expandFilename(format, jobName string, job, file int) (string, error) {
	name := strings.NewReplacer("$jobname", jobName, "$jobnum", strconv.Itoa(job), "$filenum", strconv.Itoa(file)).Replace(format)
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\\\x00") {
		return "", fmt.Errorf("filename_format=%q gives %q: not a plain file name", format, name)
	}
	return name, nil
}

func minBS(w workloads.Workload) int64 {
	b := w.BS[workloads.Read].Min
	if w.BS[workloads.Write].Min < b {
		b = w.BS[workloads.Write].Min
	}
	return max(b, 1)
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// multiTarget is a job's files end to end: offsets map to files, and an I/O that crosses a
// file boundary is split there. Each file counts with its planned size, or less if it is
// smaller (a read-only job on shorter existing files; the engine then reports the size).
type multiTarget struct {
	parts []backends.Target
	start []int64 // start[i] is the offset of parts[i]; start[len(parts)] the total
}

func newMultiTarget(parts []backends.Target, planned []int64) *multiTarget {
	m := &multiTarget{parts: parts, start: make([]int64, len(parts)+1)}
	for i, p := range parts {
		m.start[i+1] = m.start[i] + min(p.Size(), planned[i])
	}
	return m
}

// find returns the part holding off (the last part for off at or past the end).
func (m *multiTarget) find(off int64) int {
	lo, hi := 0, len(m.parts)-1
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if m.start[mid] <= off {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo
}

func (m *multiTarget) each(b []byte, off int64, op func(t backends.Target, b []byte, off int64) (int, error)) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("negative offset %d", off)
	}
	done := 0
	for done < len(b) {
		at := off + int64(done)
		i := m.find(at)
		n := len(b) - done
		if i < len(m.parts)-1 {
			n = int(min(int64(n), m.start[i+1]-at))
		}
		k, err := op(m.parts[i], b[done:done+n], at-m.start[i])
		done += k
		if err != nil {
			return done, err
		}
		if k < n {
			return done, io.ErrShortWrite
		}
	}
	return done, nil
}

func (m *multiTarget) ReadAt(b []byte, off int64) (int, error) {
	return m.each(b, off, func(t backends.Target, b []byte, off int64) (int, error) {
		n, err := t.ReadAt(b, off)
		if err == nil && n < len(b) {
			err = io.EOF
		}
		return n, err
	})
}

func (m *multiTarget) WriteAt(b []byte, off int64) (int, error) {
	return m.each(b, off, func(t backends.Target, b []byte, off int64) (int, error) { return t.WriteAt(b, off) })
}

// Sync syncs every file.
func (m *multiTarget) Sync() error {
	var errs []error
	for _, p := range m.parts {
		errs = append(errs, p.Sync())
	}
	return errors.Join(errs...)
}

func (m *multiTarget) Size() int64 { return m.start[len(m.parts)] }

// Close closes every file.
func (m *multiTarget) Close() error {
	var errs []error
	for _, p := range m.parts {
		errs = append(errs, p.Close())
	}
	return errors.Join(errs...)
}

// Describe is the first file's description and the number of files.
func (m *multiTarget) Describe() map[string]string {
	d := map[string]string{}
	for k, v := range describe(m.parts[0]) {
		d[k] = v
	}
	d["files"] = strconv.Itoa(len(m.parts))
	return d
}

// DropCache drops every file's cache; the outcome is the first file's.
func (m *multiTarget) DropCache() (string, error) {
	var out string
	for i, p := range m.parts {
		s, err := dropCache(p)
		if err != nil {
			return "", err
		}
		if i == 0 {
			out = s
		}
	}
	return out, nil
}

// dropCache drops t's cache if the backend can; the string says what was done.
func dropCache(t backends.Target) (string, error) {
	if d, ok := t.(backends.CacheDropper); ok {
		return d.DropCache()
	}
	return "not dropped (the backend cannot)", nil
}
