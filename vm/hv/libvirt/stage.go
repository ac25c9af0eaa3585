package libvirt

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// stageDir holds a guest image where a local daemon's user can read it: the image cache is
// usually under the invoking user's home (/root/.cache), which a session daemon running as
// another user, or the system daemon's QEMU user, cannot enter.
type stageDir struct {
	dir   string
	files []string
}

// stage links (or, across file systems, copies) files into a new directory readable by all,
// with a console/ subdirectory any user may create files in (sticky, like /tmp): each
// daemon's QEMU writes its guest's console there as its own user.
func stage(files ...string) (_ *stageDir, err error) {
	dir, err := os.MkdirTemp("", "vsb-lvimg-")
	if err != nil {
		return nil, err
	}
	st := &stageDir{dir: dir}
	defer func() {
		if err != nil {
			st.remove()
		}
	}()
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	if err := os.Mkdir(filepath.Join(dir, "console"), 0o755); err != nil {
		return nil, err
	}
	if err := os.Chmod(filepath.Join(dir, "console"), 0o1777); err != nil {
		return nil, err
	}
	for _, f := range files {
		if f == "" {
			st.files = append(st.files, "")
			continue
		}
		dst := filepath.Join(dir, filepath.Base(f))
		if err := linkOrCopy(f, dst); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		st.files = append(st.files, dst)
	}
	return st, nil
}

func linkOrCopy(src, dst string) error {
	if st, err := os.Stat(src); err == nil && st.Mode().Perm()&0o004 != 0 {
		// A hard link shares the source's mode, which lets others read it: no copy needed.
		if os.Link(src, dst) == nil {
			return nil
		}
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func (s *stageDir) consolePath(name string) string { return filepath.Join(s.dir, "console", name) }

func (s *stageDir) remove() {
	if s != nil {
		os.RemoveAll(s.dir)
	}
}
