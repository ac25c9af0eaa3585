package migrate

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"unsafe"

	"github.com/vmstorbench/vmstorbench/backends"
	"github.com/vmstorbench/vmstorbench/results"
)

// imageData is a disk image as vmstorbench itself reads and writes it: the copy methods'
// sender and receiver and the image check.
type imageData interface {
	io.ReaderAt
	io.WriterAt
	Sync() error
	Close() error
}

// directAlign is the alignment O_DIRECT needs of buffers, offsets and lengths here (the
// logical block size of every device here is 512 or 4096).
const directAlign = 4096

// alignedBuf returns n bytes aligned for O_DIRECT.
func alignedBuf(n int) []byte {
	b := make([]byte, n+directAlign)
	off := int(uintptr(unsafe.Pointer(&b[0])) & (directAlign - 1))
	if off != 0 {
		off = directAlign - off
	}
	return b[off : off+n : off+n]
}

// imageLen is the length of the whole image as QEMU sees it (a mirror copies all of it,
// also beyond the region the guest's workload uses).
func (d *Disk) imageLen() (int64, error) {
	switch {
	case d.path != "":
		f, err := os.Open(d.path)
		if err != nil {
			return 0, fmt.Errorf("image %s: %w", d.path, err)
		}
		defer f.Close()
		n, err := f.Seek(0, io.SeekEnd)
		if err != nil {
			return 0, fmt.Errorf("image %s: size: %w", d.path, err)
		}
		return n, nil
	case d.target != nil:
		return d.target.Size(), nil
	}
	return d.Size, nil
}

// readable says why vmstorbench cannot read and write the image itself ("" when it can).
func (d *Disk) readable() string {
	if d.path == "" && d.target == nil {
		return fmt.Sprintf("vmstorbench cannot read the image itself (%s): only QEMU opens it", d.Access)
	}
	return ""
}

// openData opens the image for vmstorbench. A local image is opened O_DIRECT when its
// length allows it: QEMU writes it with O_DIRECT (cache=none), and a read through the page
// cache could return a page cached before QEMU's last write to it.
func (d *Disk) openData(write bool) (imageData, error) {
	if d.target != nil {
		return targetData{d.target}, nil
	}
	if d.path == "" {
		return nil, errors.New(d.readable())
	}
	size, err := d.imageLen()
	if err != nil {
		return nil, err
	}
	flags := os.O_RDONLY
	if write {
		flags = os.O_RDWR
	}
	if size%directAlign == 0 {
		f, err := os.OpenFile(d.path, flags|syscall.O_DIRECT, 0)
		if err == nil {
			return fileData{f}, nil
		}
		if !errors.Is(err, syscall.EINVAL) {
			return nil, fmt.Errorf("image %s: %w", d.path, err)
		}
		// tmpfs and some FUSE filesystems refuse O_DIRECT: use the page cache.
	}
	f, err := os.OpenFile(d.path, flags, 0)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", d.path, err)
	}
	return fileData{f}, nil
}

type fileData struct{ *os.File }

// Sync makes written data durable (fdatasync: the metadata of a preallocated image does not
// change).
func (f fileData) Sync() error { return syscall.Fdatasync(int(f.Fd())) }

// targetData is a backend target the Disk owns: Close leaves it open.
type targetData struct{ backends.Target }

func (targetData) Close() error { return nil }

// sameImage reports whether a and b are the same image (the same file, or the same
// backend URL).
func sameImage(a, b *Disk) bool {
	if a.path != "" && b.path != "" {
		sa, errA := os.Stat(a.path)
		sb, errB := os.Stat(b.path)
		return errA == nil && errB == nil && os.SameFile(sa, sb)
	}
	return a.Drive.File != "" && a.Drive.File == b.Drive.File
}

// maxReportedBlocks bounds the differing block offsets an image check lists (all are
// counted).
const maxReportedBlocks = 4096

// imageCheckBlock is the unit the image check compares and reports: the guest's I/O block.
const imageCheckBlock = 4096

// compareImages compares two images block by block over their first size bytes.
func compareImages(a, b imageData, size int64) (*results.ImageCheck, error) {
	ic := &results.ImageCheck{BlockSize: imageCheckBlock}
	const chunk = 1 << 20
	ba, bb := alignedBuf(chunk), alignedBuf(chunk)
	for off := int64(0); off < size; off += chunk {
		n := int(min(chunk, size-off))
		// Read both at once: the two images are often on different devices.
		errs := make(chan error, 1)
		go func() { errs <- readFull(b, bb[:n], off) }()
		errA := readFull(a, ba[:n], off)
		if errB := <-errs; errA != nil || errB != nil {
			return ic, fmt.Errorf("image check at offset %d: %w", off, errors.Join(errA, errB))
		}
		for i := 0; i < n; i += imageCheckBlock {
			j := min(i+imageCheckBlock, n)
			ic.Blocks++
			if string(ba[i:j]) != string(bb[i:j]) {
				ic.DifferingBlocks++
				if len(ic.Differing) < maxReportedBlocks {
					ic.Differing = append(ic.Differing, off+int64(i))
				}
			}
		}
	}
	return ic, nil
}

// readFull reads len(p) bytes at off: a short read is an error (the images are compared
// over a length both have).
func readFull(r io.ReaderAt, p []byte, off int64) error {
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if errors.Is(err, io.EOF) || err == nil {
		return fmt.Errorf("short read: %d of %d bytes", n, len(p))
	}
	return err
}
