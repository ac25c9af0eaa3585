package qemu

import (
	"reflect"
	"strings"
	"testing"

	"github.com/vmstorbench/vmstorbench/vm/hv"
	"github.com/vmstorbench/vmstorbench/vm/qemu"
)

func TestDrive(t *testing.T) {
	for _, tc := range []struct {
		name    string
		disk    *hv.Disk
		want    *qemu.Drive
		wantErr string
	}{
		{"none", nil, nil, ""},
		{"file", &hv.Disk{File: "/tmp/a.img", Direct: true}, &qemu.Drive{File: "/tmp/a.img", Format: "raw", Direct: true}, ""},
		{"nbd", &hv.Disk{File: "nbd://127.0.0.1:1234/vmdisk", Format: "raw", Direct: true}, &qemu.Drive{File: "nbd://127.0.0.1:1234/vmdisk", Format: "raw", Direct: true}, ""},
		{"pull overlay", &hv.Disk{File: "/d/x.qcow2", Format: "qcow2", Direct: true, CopyOnRead: true},
			&qemu.Drive{File: "/d/x.qcow2", Format: "qcow2", Direct: true, Options: []string{"copy-on-read=on"}}, ""},
		{"iscsi chap", &hv.Disk{File: "iscsi://10.0.0.1/iqn.2026-01.org.x:t,1/0", Direct: true, Auth: &hv.DiskAuth{User: "bench", SecretFile: "/run/s,ec"}},
			&qemu.Drive{Format: "raw", Direct: true,
				Options: []string{"file.driver=iscsi", "file.transport=tcp", "file.portal=10.0.0.1:3260",
					"file.target=iqn.2026-01.org.x:t,,1", "file.lun=0", "file.user=bench", "file.password-secret=vsbiscsi0"},
				Objects: []string{"secret,id=vsbiscsi0,file=/run/s,,ec"}}, ""},
		{"iscsi chap port", &hv.Disk{File: "iscsi://10.0.0.1:3261/iqn.t/1", Auth: &hv.DiskAuth{User: "u", SecretFile: "/s"}},
			&qemu.Drive{Format: "raw",
				Options: []string{"file.driver=iscsi", "file.transport=tcp", "file.portal=10.0.0.1:3261",
					"file.target=iqn.t", "file.lun=1", "file.user=u", "file.password-secret=vsbiscsi0"},
				Objects: []string{"secret,id=vsbiscsi0,file=/s"}}, ""},
		{"credentials not for nfs", &hv.Disk{File: "nfs://h/e/x.img", Auth: &hv.DiskAuth{User: "u", SecretFile: "/s"}}, nil, "credentials are for iSCSI"},
		{"iscsi without lun", &hv.Disk{File: "iscsi://h/iqn.t", Auth: &hv.DiskAuth{User: "u", SecretFile: "/s"}}, nil, "want iscsi://host[:port]/target-iqn/lun"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Drive(tc.disk)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Drive = %v, want error %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Drive =\n%+v, want\n%+v", got, tc.want)
			}
		})
	}
}

func TestTLSObjects(t *testing.T) {
	f := &hv.TLSFiles{ServerDir: "/w/tls,server", ClientDir: "/w/tls-client"}
	for _, verify := range []bool{true, false} {
		server, client := TLSObjects(f, verify)
		wantVP := map[bool]string{true: "on", false: "off"}[verify]
		if want := "tls-creds-x509,id=vsbtls0,dir=/w/tls,,server,endpoint=server,verify-peer=" + wantVP; server != want {
			t.Errorf("server object %q, want %q", server, want)
		}
		// The client always checks the server's certificate.
		want := map[string]any{"qom-type": "tls-creds-x509", "id": "vsbtls0", "dir": "/w/tls-client", "endpoint": "client", "verify-peer": true}
		if !reflect.DeepEqual(client, want) {
			t.Errorf("client object %v, want %v", client, want)
		}
	}
	// The destination's client credentials (its NBD client, for the pull's backing file).
	f.ClientDir = "/w/tls,client"
	if got, want := TLSClientObject(TLSClientObjectID, f), "tls-creds-x509,id=vsbtls1,dir=/w/tls,,client,endpoint=client"; got != want {
		t.Errorf("destination's client object %q, want %q", got, want)
	}
}
