package migrate

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/vmstorbench/vmstorbench/backends"
	"github.com/vmstorbench/vmstorbench/backends/iscsi"
	"github.com/vmstorbench/vmstorbench/vm/hv"
	hvqemu "github.com/vmstorbench/vmstorbench/vm/hv/qemu"
)

// QEMU's own network block drivers reach NFS (libnfs) and iSCSI (libiscsi) images without
// vmstorbench in the data path, the way a hypervisor on shared storage does.

// openNFS creates (or checks) the image with vmstorbench's NFS backend, which also removes
// an image it created when the disk is closed, and gives QEMU the same file as a libnfs URL.
// libnfs finds the server's ports through the portmapper, as NFS clients do.
func (d *Disk) openNFS(ctx context.Context, reg *backends.Registry, target string, u *url.URL, o DiskOptions) error {
	t, err := reg.Open(ctx, target, backends.OpenParams{Size: o.Size, Write: true, AllowDestructive: o.AllowDestructive, Keep: o.Keep})
	if err != nil {
		return err
	}
	d.close = append(d.close, t.Close)
	q := backends.NewQuery(u)
	native := url.URL{Scheme: "nfs", Host: u.Hostname()}
	v := url.Values{}
	for _, k := range []string{"uid", "gid"} {
		if s := q.String(k, ""); s != "" {
			v.Set(k, s)
		}
	}
	native.RawQuery = v.Encode()
	// The URL names the image, or a directory the backend created <name>.job0.dat in.
	candidates := []string{u.Path, path.Join(u.Path, q.String("name", "vmstorbench")+".job0.dat")}
	var lastErr error
	for _, p := range candidates {
		native.Path = p
		size, err := hvqemu.ImageSize(ctx, hv.Disk{File: native.String()})
		if err != nil {
			lastErr = err
			continue
		}
		d.Drive = hv.Disk{File: native.String(), Format: "raw", Direct: true}
		d.Size = min(size, t.Size())
		d.target = t
		d.Access = "nfs (QEMU libnfs)"
		return nil
	}
	return fmt.Errorf("disk: QEMU's nfs driver cannot open the image at %s: %v (try --access nbd)", backends.Redact(u), lastErr)
}

// openISCSI gives QEMU the LUN through its libiscsi driver. With chap_user= the CHAP
// secret goes into a file the hypervisor reads (QEMU: a secret object), never on its
// command line.
func (d *Disk) openISCSI(ctx context.Context, u *url.URL, o DiskOptions) error {
	if !o.AllowDestructive {
		return fmt.Errorf("disk: the guest overwrites LUN %s: pass --allow-destructive", backends.Redact(u))
	}
	q := backends.NewQuery(u)
	native := url.URL{Scheme: "iscsi", Host: u.Host, Path: u.Path}
	drive := hv.Disk{File: native.String(), Format: "raw", Direct: true}
	if user := q.String("chap_user", ""); user != "" {
		secret, err := q.Secret("secret_file", iscsi.SecretEnv)
		if err != nil {
			return err
		}
		if secret == "" {
			return fmt.Errorf("disk: chap_user=%s needs the secret in secret_file= or $%s", user, iscsi.SecretEnv)
		}
		parts := strings.Split(strings.Trim(u.Path, "/"), "/")
		if len(parts) != 2 {
			return fmt.Errorf("disk: iSCSI URL %s: want iscsi://host[:port]/target-iqn/lun", backends.Redact(u))
		}
		dir := o.Dir
		if dir == "" {
			tmp, err := os.MkdirTemp("", "vsb-disk-")
			if err != nil {
				return err
			}
			d.close = append(d.close, func() error { return os.RemoveAll(tmp) })
			dir = tmp
		}
		f := filepath.Join(dir, "iscsi-secret")
		if err := os.WriteFile(f, []byte(secret), 0o600); err != nil {
			return fmt.Errorf("disk: %w", err)
		}
		drive.Auth = &hv.DiskAuth{User: user, SecretFile: f}
	}
	size, err := hvqemu.ImageSize(ctx, drive)
	if err != nil {
		return fmt.Errorf("disk: QEMU's iscsi driver cannot open %s: %v (try --access nbd)", backends.Redact(u), err)
	}
	d.Drive = drive
	d.Size = min(size, o.Size)
	d.Access = "iscsi (QEMU libiscsi)"
	return nil
}
