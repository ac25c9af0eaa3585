package guest

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
)

// cpioEntry is one file of the initramfs. Exactly one of Data, Source or Dev is used for a
// non-directory.
type cpioEntry struct {
	Name   string // path inside the archive, without a leading slash
	Mode   uint32 // permission bits
	Dir    bool
	Data   []byte // inline content
	Source string // host file to copy
	// CharDev, if set, makes the entry a character device with this major/minor.
	CharDev *[2]uint32
}

// writeCPIO writes entries as a newc ("070701") archive, the format the kernel unpacks into
// its initramfs. Parent directories are added as needed and entries are sorted, so the
// archive is deterministic (all times are 0).
func writeCPIO(w io.Writer, entries []cpioEntry) error {
	all := map[string]cpioEntry{}
	for _, e := range entries {
		name := strings.TrimPrefix(path.Clean("/"+e.Name), "/")
		if name == "" {
			continue
		}
		e.Name = name
		all[name] = e
		for d := path.Dir(name); d != "." && d != "/"; d = path.Dir(d) {
			if _, ok := all[d]; !ok {
				all[d] = cpioEntry{Name: d, Mode: 0o755, Dir: true}
			}
		}
	}
	names := make([]string, 0, len(all))
	for n := range all {
		names = append(names, n)
	}
	sort.Strings(names)
	bw := bufio.NewWriterSize(w, 1<<20)
	ino := uint32(1)
	for _, n := range names {
		e := all[n]
		if err := writeCPIOEntry(bw, e, ino); err != nil {
			return err
		}
		ino++
	}
	if err := writeCPIORaw(bw, "TRAILER!!!", 0, 0, 1, 0, 0, 0); err != nil {
		return err
	}
	return bw.Flush()
}

func writeCPIOEntry(w *bufio.Writer, e cpioEntry, ino uint32) error {
	const (
		sIFDIR = 0o040000
		sIFREG = 0o100000
		sIFCHR = 0o020000
	)
	switch {
	case e.Dir:
		return writeCPIORaw(w, e.Name, ino, sIFDIR|e.Mode, 2, 0, 0, 0)
	case e.CharDev != nil:
		return writeCPIORaw(w, e.Name, ino, sIFCHR|e.Mode, 1, 0, e.CharDev[0], e.CharDev[1])
	}
	var size int64
	var src *os.File
	if e.Source != "" {
		f, err := os.Open(e.Source)
		if err != nil {
			return fmt.Errorf("initramfs: %w", err)
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return fmt.Errorf("initramfs: %w", err)
		}
		size, src = st.Size(), f
	} else {
		size = int64(len(e.Data))
	}
	if size > 0xffffffff {
		return fmt.Errorf("initramfs: %s is larger than 4GiB", e.Name)
	}
	if err := writeCPIORaw(w, e.Name, ino, sIFREG|e.Mode, 1, uint32(size), 0, 0); err != nil {
		return err
	}
	if src != nil {
		n, err := io.Copy(w, src)
		if err != nil {
			return fmt.Errorf("initramfs: copy %s: %w", e.Source, err)
		}
		if n != size {
			return fmt.Errorf("initramfs: %s changed size while being copied", e.Source)
		}
	} else if _, err := w.Write(e.Data); err != nil {
		return err
	}
	return pad4(w, size)
}

func writeCPIORaw(w *bufio.Writer, name string, ino, mode, nlink, size, rmajor, rminor uint32) error {
	namesize := len(name) + 1
	// magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor,
	// rdevminor, namesize, check
	if _, err := fmt.Fprintf(w, "070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		ino, mode, 0, 0, nlink, 0, size, 0, 0, rmajor, rminor, namesize, 0); err != nil {
		return err
	}
	if _, err := w.WriteString(name); err != nil {
		return err
	}
	if err := w.WriteByte(0); err != nil {
		return err
	}
	return pad4(w, int64(110+namesize))
}

func pad4(w *bufio.Writer, n int64) error {
	if r := n % 4; r != 0 {
		_, err := w.Write(make([]byte, 4-r))
		return err
	}
	return nil
}
