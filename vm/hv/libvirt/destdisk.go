package libvirt

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// destImage is the image a non-shared-disk migration copies the guest's disk into, on
// the destination's host.
type destImage struct {
	// Path is the image's path on the destination's host.
	Path string
	// remove deletes what was made for it (a scratch directory or a new image); nil when
	// nothing was made here or the image is kept.
	remove func() error
}

// prepareDestImage decides and, on a daemon of this machine, makes the destination's image
// for the source image src: want is the path the user gave ("" for a new image in a
// scratch directory; a directory for a new image in it; an image, which is overwritten
// only with allowDestructive). The image is sparse, of the source's size, and readable
// and writable by every user, as the destination daemon's QEMU may run as another user.
// The source's own file is refused: with both daemons on one machine it would be the
// image both QEMUs write. A remote destination's path is passed on as it is: libvirt makes
// it there when a storage pool holds its directory, else it must exist.
func prepareDestImage(src, want string, local, allowDestructive, keep bool) (*destImage, error) {
	if !local {
		if want == "" {
			return nil, errors.New("libvirt: the destination daemon is on another host: give the destination image's path there (--to file:///PATH; libvirt creates it when a storage pool holds its directory, else it must exist, of the source's size)")
		}
		return &destImage{Path: want}, nil
	}
	sst, err := os.Stat(src)
	if err != nil {
		return nil, fmt.Errorf("libvirt: the source image: %w", err)
	}
	out := &destImage{}
	if want == "" {
		dir, err := os.MkdirTemp("", "vsb-lvdst-")
		if err != nil {
			return nil, fmt.Errorf("libvirt: scratch directory for the destination image: %w", err)
		}
		if !keep {
			out.remove = func() error { return os.RemoveAll(dir) }
		}
		if err := os.Chmod(dir, 0o755); err != nil {
			out.close()
			return nil, err
		}
		want = dir
	}
	st, err := os.Stat(want)
	switch {
	case err == nil && st.IsDir():
		f, err := os.CreateTemp(want, "vmstorbench-dst-*.img")
		if err != nil {
			out.close()
			return nil, fmt.Errorf("libvirt: create the destination image in %s: %w", want, err)
		}
		out.Path = f.Name()
		if out.remove == nil && !keep {
			out.remove = func() error { return os.Remove(f.Name()) }
		}
		err = f.Truncate(sst.Size())
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Chmod(out.Path, 0o666)
		}
		if err != nil {
			out.close()
			return nil, fmt.Errorf("libvirt: size the destination image %s: %w", out.Path, err)
		}
	case err == nil && st.Mode().IsRegular():
		switch {
		case os.SameFile(st, sst):
			return nil, fmt.Errorf("--to %s is the source image itself: both QEMUs would write one file (nothing was copied)", want)
		case st.Size() != sst.Size():
			return nil, fmt.Errorf("--to %s: the destination image has %d bytes, the source %d: give a directory (a new image is made) or an image of the same size", want, st.Size(), sst.Size())
		case !allowDestructive:
			return nil, fmt.Errorf("--to %s exists and the migration overwrites it: pass --allow-destructive, or give a directory to create the image in", want)
		}
		out.Path = want
	case err == nil:
		return nil, fmt.Errorf("--to %s: not a directory or a regular file", want)
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("--to %s: no such file or directory (give a directory, where a new image is made, or an image of the source's size)", want)
	default:
		return nil, fmt.Errorf("--to %s: %w", want, err)
	}
	if !openableByAll(out.Path) {
		out.close()
		return nil, fmt.Errorf("libvirt: the destination image %s is not readable and writable by every user (with every directory above it searchable), and the destination daemon's QEMU may run as another user", out.Path)
	}
	if abs, err := filepath.Abs(out.Path); err == nil {
		out.Path = abs
	}
	return out, nil
}

// close removes what prepareDestImage made (nothing when kept or given).
func (d *destImage) close() error {
	if d == nil || d.remove == nil {
		return nil
	}
	err := d.remove()
	d.remove = nil
	return err
}
