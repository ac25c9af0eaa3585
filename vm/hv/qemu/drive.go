package qemu

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os/exec"
	"strings"
	"time"

	"github.com/vmstorbench/vmstorbench/backends"
	"github.com/vmstorbench/vmstorbench/testbed"
	"github.com/vmstorbench/vmstorbench/vm/hv"
	"github.com/vmstorbench/vmstorbench/vm/qemu"
)

// iscsiSecretID is the id of the secret object holding an iSCSI disk's CHAP password.
const iscsiSecretID = "vsbiscsi0"

// Drive renders a driver-neutral disk as QEMU's -drive (nil for nil). A disk with
// credentials (iSCSI CHAP) is given field by field, as the URL form has no room for the
// secret, which QEMU reads from its file through a secret object, never its command line.
func Drive(d *hv.Disk) (*qemu.Drive, error) {
	if d == nil {
		return nil, nil
	}
	dr := &qemu.Drive{File: d.File, Format: d.Format, Direct: d.Direct}
	if dr.Format == "" {
		dr.Format = "raw"
	}
	if d.CopyOnRead {
		dr.Options = append(dr.Options, "copy-on-read=on")
	}
	if a := d.Auth; a != nil {
		u, err := url.Parse(d.File)
		if err != nil || u.Scheme != "iscsi" {
			return nil, fmt.Errorf("qemu driver: disk credentials are for iSCSI URLs, not %q", backends.RedactString(d.File))
		}
		target, lun, ok := strings.Cut(strings.Trim(u.Path, "/"), "/")
		if !ok || strings.Contains(lun, "/") {
			return nil, fmt.Errorf("qemu driver: iSCSI URL %s: want iscsi://host[:port]/target-iqn/lun", backends.RedactString(d.File))
		}
		portal := u.Host
		if u.Port() == "" {
			portal = net.JoinHostPort(u.Hostname(), "3260")
		}
		dr.File = ""
		dr.Objects = []string{"secret,id=" + iscsiSecretID + ",file=" + escapeComma(a.SecretFile)}
		dr.Options = append([]string{
			"file.driver=iscsi", "file.transport=tcp", "file.portal=" + portal,
			"file.target=" + escapeComma(target), "file.lun=" + lun,
			"file.user=" + escapeComma(a.User), "file.password-secret=" + iscsiSecretID,
		}, dr.Options...)
	}
	return dr, nil
}

// ImageSize asks qemu-img for the virtual size of the disk, opened with QEMU's own driver
// as a guest would: it checks that QEMU's native access (libnfs, libiscsi) works before any
// guest boots. The disk is read as raw.
func ImageSize(ctx context.Context, disk hv.Disk) (int64, error) {
	bin, err := testbed.LookPath("qemu-img", "qemu-utils")
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	disk.Format, disk.Direct, disk.CopyOnRead = "raw", false, false
	d, err := Drive(&disk)
	if err != nil {
		return 0, err
	}
	args := []string{"info", "--output=json"}
	for _, o := range d.Objects {
		args = append(args, "--object", o)
	}
	if len(d.Options) > 0 {
		spec := "driver=raw"
		if d.File != "" {
			spec += ",file.filename=" + escapeComma(d.File)
		}
		args = append(args, "--image-opts", spec+","+strings.Join(d.Options, ","))
	} else {
		args = append(args, "-f", "raw", d.File)
	}
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("qemu-img info: %v: %s", err, strings.TrimSpace(string(out)))
	}
	var info struct {
		VirtualSize int64 `json:"virtual-size"`
	}
	if err := json.Unmarshal(out, &info); err != nil {
		return 0, fmt.Errorf("qemu-img info: %w", err)
	}
	return info.VirtualSize, nil
}
