package backends

import (
	"encoding/binary"
	"errors"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"unsafe"
)

// Rules every backend that creates bench files follows, kept here once:
//   - a URL naming a directory gets one file per job, DirJobFile(prefix, job) (DirFile);
//   - a URL naming a file is job 0's; job N > 0 uses JobFile(file, N), so jobs never share a
//     file they would both have to create (block devices and LUNs are shared instead);
//   - with several files per job (fio nrfiles), OpenParams.File numbers them: DirFile and
//     NamedFile name them, and a name from filename_format (OpenParams.FileName) is not
//     assumed to be the tool's own;
//   - before a file is created or extended, its new bytes and OpenParams.SpaceNeeded must fit
//     the free space (CheckSpace);
//   - a file created for a reading workload is laid out with data first (Layout), as fio does,
//     reporting to OpenParams.LayoutProgress.

// JobFile is the file job uses when the URL names file.
func JobFile(file string, job int) string {
	if job <= 0 {
		return file
	}
	return file + "." + strconv.Itoa(job)
}

// DirJobFile is job's bench file name inside a directory.
func DirJobFile(prefix string, job int) string {
	return prefix + ".job" + strconv.Itoa(job) + ".dat"
}

// DirFile is the bench file name inside a directory for p: p.FileName when the engine gives
// one (fio filename_format), else DirJobFile for a job's only file, and
// <prefix>.job<N>.<F>.dat for file F of a job with several (fio nrfiles).
func DirFile(prefix string, p OpenParams) string {
	switch {
	case p.FileName != "":
		return p.FileName
	case p.NrFiles <= 1 && p.File == 0:
		return DirJobFile(prefix, p.Job)
	}
	return prefix + ".job" + strconv.Itoa(p.Job) + "." + strconv.Itoa(p.File) + ".dat"
}

// NamedFile is the file for p when the URL names file: JobFile(file, job), and for file F > 0
// of a job with several files, that name with ".f<F>" appended (p.FileName applies to
// directories only, as fio's filename_format does not apply when filename= is given).
func NamedFile(file string, p OpenParams) string {
	name := JobFile(file, p.Job)
	if p.File > 0 {
		name += ".f" + strconv.Itoa(p.File)
	}
	return name
}

// WriterAtFunc adapts a function to io.WriterAt.
type WriterAtFunc func(p []byte, off int64) (int, error)

// WriteAt calls f.
func (f WriterAtFunc) WriteAt(p []byte, off int64) (int, error) { return f(p, off) }

// Layout writes a non-compressible pattern over [from, to) of w in chunk-byte writes, up to
// inFlight at once. The buffer is 4 KiB aligned, so it also serves O_DIRECT files. progress,
// if not nil, is called with the bytes written and to - from: once before the first write
// and after each write, from one goroutine at a time.
func Layout(w io.WriterAt, from, to int64, chunk, inFlight int, progress func(done, total int64)) error {
	if from >= to {
		return nil
	}
	buf := alignedPattern(chunk)
	var next atomic.Int64
	next.Store(from)
	var progMu sync.Mutex
	var done int64
	report := func(n int64) {
		if progress == nil {
			return
		}
		progMu.Lock()
		done += n
		progress(done, to-from)
		progMu.Unlock()
	}
	report(0)
	errs := make([]error, max(inFlight, 1))
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() {
			for {
				off := next.Add(int64(chunk)) - int64(chunk)
				if off >= to {
					return
				}
				n, err := w.WriteAt(buf[:min(int64(chunk), to-off)], off)
				if err != nil {
					errs[i] = err
					next.Store(to) // stop the others
					return
				}
				report(int64(n))
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func alignedPattern(n int) []byte {
	const align = 4096
	raw := make([]byte, n+align)
	off := int(align - uintptr(unsafe.Pointer(unsafe.SliceData(raw)))%align)
	if off == align {
		off = 0
	}
	buf := raw[off : off+n : off+n]
	x := uint64(0x9e3779b97f4a7c15)
	for i := 0; i+8 <= len(buf); i += 8 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		binary.LittleEndian.PutUint64(buf[i:], x)
	}
	return buf
}
