package migrate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"

	"github.com/vmstorbench/vmstorbench/backends"
	"github.com/vmstorbench/vmstorbench/vm/hv"
	"github.com/vmstorbench/vmstorbench/vm/nbdexport"
)

// Access values: how QEMU reaches the VM's disk.
const (
	AccessAuto   = "auto"   // native where QEMU has a driver, else the NBD export
	AccessNative = "native" // QEMU's own driver only
	AccessNBD    = "nbd"    // always through vmstorbench's NBD export of the backend
)

// DiskOptions say how to set up the VM's disk on the target.
type DiskOptions struct {
	// Size is the disk size for images the tool creates.
	Size int64
	// Access is AccessAuto, AccessNative or AccessNBD.
	Access string
	// AllowDestructive permits using an existing image or device the tool did not create.
	AllowDestructive bool
	// Keep leaves images the tool created in place.
	Keep bool
	// Registry opens backends for the NBD export (nil: backends.Default).
	Registry *backends.Registry
	// Dir holds files the drive needs while the run lasts (the iSCSI CHAP secret for QEMU);
	// empty means a temporary directory removed by Close.
	Dir string
}

// Disk is the VM's disk as both QEMU processes open it.
type Disk struct {
	// Drive is the disk as the hypervisor driver opens it (driver-neutral: each driver
	// renders it).
	Drive hv.Disk
	// Access says how QEMU reaches it (recorded in the result).
	Access string
	// URL is the target URL, redacted; Scheme its backend.
	URL    string
	Scheme string
	// Size is the disk's size in bytes.
	Size  int64
	close []func() error
	// path is the local image (file access) and target the backend an NBD export or the
	// NFS check opened: how vmstorbench itself reads and writes the image (copy methods,
	// the image check). Neither is set for iSCSI through QEMU's own driver.
	path   string
	target backends.Target
	// export is the NBD export serving the disk (nbd access), whose backend errors name the
	// storage as the cause of a failed run.
	export *nbdexport.Export
	// server is the storage server's host:port ("" for local files): a run probes it to
	// tell a server that is gone (connection refused) from one that is slow.
	server string
}

// serverAddr is the TCP address of the server behind a network target, with the scheme's
// usual port when the URL gives none.
func serverAddr(u *url.URL) string {
	if u.Host == "" || u.Scheme == "file" {
		return ""
	}
	if u.Port() != "" {
		return u.Host
	}
	port := map[string]string{"nfs": "2049", "iscsi": "3260", "smb": "445", "nbd": "10809"}[u.Scheme]
	if port == "" {
		return ""
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// Close releases the disk: stops an NBD export, closes the backend, removes an image the
// tool created (unless Keep).
func (d *Disk) Close() error {
	var errs []error
	for i := len(d.close) - 1; i >= 0; i-- {
		if err := d.close[i](); err != nil {
			errs = append(errs, err)
		}
	}
	d.close = nil
	return errors.Join(errs...)
}

// OpenDisk sets up the VM's disk on target. file:// images are opened by QEMU itself (a
// directory gets a new sparse image of Size that is removed afterwards); other backends are
// served to QEMU through an NBD export inside this process.
func OpenDisk(ctx context.Context, target string, o DiskOptions) (*Disk, error) {
	u, err := backends.ParseURL(target)
	if err != nil {
		return nil, err
	}
	reg := o.Registry
	if reg == nil {
		reg = backends.Default
	}
	if _, err := reg.Lookup(u); err != nil {
		return nil, err
	}
	if o.Size <= 0 {
		return nil, errors.New("disk: size must be positive")
	}
	access := o.Access
	if access == "" {
		access = AccessAuto
	}
	switch access {
	case AccessAuto, AccessNative, AccessNBD:
	default:
		return nil, fmt.Errorf("--access %q: must be auto, native or nbd", access)
	}
	d := &Disk{URL: backends.Redact(u), Scheme: u.Scheme, server: serverAddr(u)}
	open := func() error { return d.openNBD(ctx, reg, target, o) }
	if access != AccessNBD {
		switch u.Scheme {
		case "file":
			open = func() error { return d.openFile(u, o) }
		case "nfs":
			open = func() error { return d.openNFS(ctx, reg, target, u, o) }
		case "iscsi":
			open = func() error { return d.openISCSI(ctx, u, o) }
		default:
			if access == AccessNative {
				return nil, fmt.Errorf("disk: QEMU has no native driver used for %s:// here; use --access nbd (or auto)", u.Scheme)
			}
		}
	}
	if err := open(); err != nil {
		// Undo what was set up before the failure (a created image, an export, a secret).
		if cerr := d.Close(); cerr != nil {
			err = errors.Join(err, cerr)
		}
		return nil, err
	}
	return d, nil
}

// openFile lets QEMU open a local image (or device) with its file driver.
func (d *Disk) openFile(u *url.URL, o DiskOptions) error {
	if u.Host != "" && u.Host != "localhost" {
		return fmt.Errorf("file URLs name a local path (file:///path), not host %q", u.Host)
	}
	path := filepath.Clean(u.Path)
	st, err := os.Stat(path)
	switch {
	case err == nil && st.IsDir():
		f, err := os.CreateTemp(path, "vmstorbench-vm-*.img")
		if err != nil {
			return fmt.Errorf("disk: create image in %s: %w", path, err)
		}
		name := f.Name()
		err = f.Truncate(o.Size)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(name)
			return fmt.Errorf("disk: size image %s: %w", name, err)
		}
		if !o.Keep {
			d.close = append(d.close, func() error { return os.Remove(name) })
		}
		d.Drive = hv.Disk{File: name, Format: "raw", Direct: true}
		d.Size = o.Size
		d.path = name
	case err == nil && (st.Mode().IsRegular() || st.Mode()&fs.ModeDevice != 0):
		if !o.AllowDestructive {
			return fmt.Errorf("disk: %s exists and the guest will overwrite it: pass --allow-destructive, or give a directory to create a scratch image in", path)
		}
		d.Drive = hv.Disk{File: path, Format: "raw", Direct: true}
		d.path = path
		size := st.Size()
		if st.Mode()&fs.ModeDevice != 0 {
			f, err := os.Open(path)
			if err != nil {
				return fmt.Errorf("disk: %w", err)
			}
			size, err = f.Seek(0, io.SeekEnd)
			f.Close()
			if err != nil {
				return fmt.Errorf("disk: size of %s: %w", path, err)
			}
		}
		// The guest works on the first Size bytes of a larger image.
		d.Size = min(size, o.Size)
	case err != nil && errors.Is(err, fs.ErrNotExist):
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil {
			return fmt.Errorf("disk: create image %s: %w", path, err)
		}
		err = f.Truncate(o.Size)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(path)
			return fmt.Errorf("disk: size image %s: %w", path, err)
		}
		if !o.Keep {
			d.close = append(d.close, func() error { return os.Remove(path) })
		}
		d.Drive = hv.Disk{File: path, Format: "raw", Direct: true}
		d.Size = o.Size
		d.path = path
	case err != nil:
		return fmt.Errorf("disk: %w", err)
	default:
		return fmt.Errorf("disk: %s is neither a directory, a regular file nor a block device", path)
	}
	d.Access = "file"
	return nil
}

// openNBD opens the target with its backend and exports it over NBD for QEMU.
func (d *Disk) openNBD(ctx context.Context, reg *backends.Registry, target string, o DiskOptions) error {
	t, err := reg.Open(ctx, target, backends.OpenParams{
		Size: o.Size, Write: true, Read: true, Direct: true,
		AllowDestructive: o.AllowDestructive, Keep: o.Keep,
	})
	if err != nil {
		return err
	}
	exp, err := nbdexport.Serve(t, "vmdisk", false)
	if err != nil {
		t.Close()
		return err
	}
	d.close = append(d.close, t.Close, exp.Close)
	d.Drive = hv.Disk{File: exp.URL(), Format: "raw", Direct: true}
	d.Size = t.Size()
	d.target = t
	d.export = exp
	d.Access = "nbd-export (" + d.Scheme + ")"
	return nil
}

// throughLink returns the drive with its TCP connection to the storage sent through an
// emulated link: the NBD export's or the iSCSI portal's address is replaced by a local proxy
// started with start(upstream) (which returns the proxy's address).
func (d *Disk) throughLink(start func(upstream string) (string, error)) (hv.Disk, error) {
	drive := d.Drive
	u, err := url.Parse(drive.File)
	if err == nil && (u.Scheme == "nbd" || u.Scheme == "iscsi") && u.Host != "" {
		hp := u.Host
		if u.Port() == "" {
			hp = net.JoinHostPort(u.Hostname(), map[string]string{"nbd": "10809", "iscsi": "3260"}[u.Scheme])
		}
		addr, err := start(hp)
		if err != nil {
			return drive, err
		}
		u.Host = addr
		drive.File = u.String()
		return drive, nil
	}
	return drive, fmt.Errorf("a storage link needs a disk QEMU reaches over one TCP connection (the NBD export or iSCSI), not %s", d.Access)
}
