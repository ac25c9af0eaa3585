package iscsi

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmstorbench/vmstorbench/backends"
)

func TestParseURL(t *testing.T) {
	secretFile := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secretFile, []byte("from-file-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(SecretEnv, "from-env-secret")
	for _, tc := range []struct {
		url     string
		check   func(t *testing.T, c config)
		wantErr string
	}{
		{url: "iscsi://h/iqn.2004-04.com.example:disk/1", check: func(t *testing.T, c config) {
			if c.init.Addr != "h:3260" || c.init.TargetName != "iqn.2004-04.com.example:disk" || c.lun != 1 {
				t.Errorf("%+v", c)
			}
			if c.init.CHAPUser != "" || c.init.CHAPSecret != "" || c.init.HeaderDigest || c.init.DataDigest {
				t.Errorf("%+v", c.init)
			}
			if c.init.Timeout != backends.DefaultIOTimeout || c.init.InitiatorName != DefaultInitiatorName || c.init.Dial == nil {
				t.Errorf("%+v", c.init)
			}
		}},
		{url: "iscsi://127.0.0.1:3261/iqn.x:y/300?header_digest=crc32c&data_digest=crc32c&timeout=5s&initiator_name=iqn.z:me", check: func(t *testing.T, c config) {
			if c.init.Addr != "127.0.0.1:3261" || c.lun != 300 || !c.init.HeaderDigest || !c.init.DataDigest || c.init.Timeout != 5*time.Second || c.init.InitiatorName != "iqn.z:me" {
				t.Errorf("%+v", c)
			}
		}},
		{url: "iscsi://h/iqn.x:y/0?chap_user=bench", check: func(t *testing.T, c config) {
			if c.init.CHAPUser != "bench" || c.init.CHAPSecret != "from-env-secret" {
				t.Errorf("%+v", c.init)
			}
		}},
		{url: "iscsi://bench@h/iqn.x:y/0?secret_file=" + secretFile, check: func(t *testing.T, c config) {
			if c.init.CHAPUser != "bench" || c.init.CHAPSecret != "from-file-secret" {
				t.Errorf("%+v", c.init)
			}
		}},
		{url: "iscsi:///iqn.x:y/0", wantErr: "no host"},
		{url: "iscsi://h/iqn.x:y", wantErr: "/<target-iqn>/<lun>"},
		{url: "iscsi://h/iqn.x:y/1/2", wantErr: "/<target-iqn>/<lun>"},
		{url: "iscsi://h/iqn.x:y/lun1", wantErr: "must be a number"},
		{url: "iscsi://h/iqn.x:y/16384", wantErr: "0 to 16383"},
		{url: "iscsi://h/iqn.x:y/0?header_digest=md5", wantErr: "none, crc32c"},
		{url: "iscsi://h/iqn.x:y/0?timeout=0s", wantErr: "positive"},
		{url: "iscsi://h/iqn.x:y/0?secret_file=" + secretFile, wantErr: "needs chap_user"},
		{url: "iscsi://a@h/iqn.x:y/0?chap_user=b", wantErr: "two CHAP users"},
		{url: "iscsi://h/iqn.x:y/0?chap_user=u&secret_file=/nonexistent", wantErr: "secret_file"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			u, err := backends.ParseURL(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			c, err := parseURL(u)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
	t.Run("no secret", func(t *testing.T) {
		t.Setenv(SecretEnv, "")
		u, _ := backends.ParseURL("iscsi://h/iqn.x:y/0?chap_user=bench")
		if _, err := parseURL(u); err == nil || !strings.Contains(err.Error(), SecretEnv) {
			t.Fatalf("error %v, want one naming %s", err, SecretEnv)
		}
	})
}

func TestRegistered(t *testing.T) {
	u, _ := backends.ParseURL("iscsi://h/iqn.x:y/0?nosuch=1")
	if _, err := backends.Default.Lookup(u); err == nil || !strings.Contains(err.Error(), "unknown option") {
		t.Fatalf("unknown option accepted: %v", err)
	}
}

func TestDescribeAndAlignment(t *testing.T) {
	if d := digestDesc(false, false); d != "none" {
		t.Error(d)
	}
	if d := digestDesc(true, false); d != "header=crc32c,data=none" {
		t.Error(d)
	}
	tg := &Target{blockSize: 4096, size: 1 << 20, desc: map[string]string{"security": "none"}}
	tg.Describe()["security"] = "changed"
	if tg.desc["security"] != "none" {
		t.Error("Describe returns the Target's own map")
	}
	for _, tc := range []struct {
		off  int64
		n    int
		want string
	}{
		{0, 4096, ""},
		{4096, 8192, ""},
		{512, 4096, "4096-byte block size"},
		{0, 512, "4096-byte block size"},
		{-4096, 4096, "negative"},
	} {
		err := tg.aligned("read", tc.off, tc.n)
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("aligned(%d, %d) = %v, want %q", tc.off, tc.n, err, tc.want)
		}
	}
	// Past the end: EOF without touching the (absent) session.
	if n, err := tg.ReadAt(make([]byte, 4096), 1<<20); n != 0 || err != io.EOF {
		t.Errorf("ReadAt at the end: %d, %v", n, err)
	}
	if _, err := tg.WriteAt(make([]byte, 4096), 0); err == nil || !strings.Contains(err.Error(), "reading only") {
		t.Errorf("WriteAt on a read-only target: %v", err)
	}
}

func TestOpenErrorPrefix(t *testing.T) {
	inner := errors.New("iscsi: login refused")
	err := openError{inner}
	if err.Error() != "login refused" || !errors.Is(err, inner) {
		t.Errorf("%q", err)
	}
}
