package backends

import (
	"fmt"
	"io"
)

// BlockDevice is what a network block target (an iSCSI LUN, an NBD export) shares with every
// other: a fixed size that reads are clipped at and writes must stay within, and a largest
// request its protocol carries, into which longer I/O is split. The backend supplies one
// request per piece; its alignment rules stay its own.
type BlockDevice struct {
	// Scheme and What name the device in errors: "iscsi", "the LUN".
	Scheme, What string
	Size         int64
	MaxIO        int64
}

// ReadAt reads p at off with read, one request of at most MaxIO bytes at a time. A read
// past the end is clipped there and returns io.EOF, as io.ReaderAt wants.
func (d BlockDevice) ReadAt(p []byte, off int64, read func(p []byte, off int64) error) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if off >= d.Size {
		return 0, io.EOF
	}
	var eof error
	if end := off + int64(len(p)); end > d.Size {
		p, eof = p[:d.Size-off], io.EOF
	}
	n, err := d.split(p, off, read)
	if err != nil {
		return n, err
	}
	return n, eof
}

// WriteAt writes p at off with write, one request of at most MaxIO bytes at a time; a write
// that would go past the end is refused whole.
func (d BlockDevice) WriteAt(p []byte, off int64, write func(p []byte, off int64) error) (int, error) {
	if off+int64(len(p)) > d.Size {
		return 0, fmt.Errorf("%s: write of %d bytes at offset %d goes beyond the end of %s (%d bytes)", d.Scheme, len(p), off, d.What, d.Size)
	}
	return d.split(p, off, write)
}

func (d BlockDevice) split(p []byte, off int64, do func(p []byte, off int64) error) (int, error) {
	step := int(d.MaxIO)
	if step <= 0 {
		step = len(p)
	}
	for done := 0; done < len(p); {
		k := min(len(p)-done, step)
		if err := do(p[done:done+k], off+int64(done)); err != nil {
			return done, err
		}
		done += k
	}
	return len(p), nil
}
