package testbed

import (
	"context"
	"errors"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestSambaConfig(t *testing.T) {
	conf := sambaConfig("/state", 4450, "root", "")
	for _, want := range []string{
		"smb ports = 4450",
		"interfaces = 127.0.0.1",
		"bind interfaces only = yes",
		"disable netbios = yes",
		"server signing = auto",
		"passdb backend = tdbsam:/state/private/passdb.tdb",
		"private dir = /state/private",
		"lock directory = /state/lock",
		"state directory = /state/state",
		"cache directory = /state/cache",
		"pid directory = /state/pid",
		"ncalrpc dir = /state/ncalrpc",
		"[bench]\n\tpath = /state/share\n",
		"[bench-enc]\n\tpath = /state/share-enc\n",
		"smb encrypt = required",
	} {
		if !strings.Contains(conf, want) {
			t.Errorf("smb.conf lacks %q:\n%s", want, conf)
		}
	}
	// Encryption must be required on the encrypted share only.
	if i, j := strings.Index(conf, "[bench-enc]"), strings.Index(conf, "smb encrypt"); j < i {
		t.Errorf("smb encrypt appears before the encrypted share:\n%s", conf)
	}
}

func TestSambaConfigSigning(t *testing.T) {
	if conf := sambaConfig("/state", 4450, "root", ""); strings.Contains(conf, "signing algorithms") {
		t.Errorf("default smb.conf restricts signing algorithms:\n%s", conf)
	}
	conf := sambaConfig("/state", 4450, "root", SigningCMAC)
	i, j := strings.Index(conf, "\tserver smb3 signing algorithms = AES-128-CMAC\n"), strings.Index(conf, "[bench]")
	if i < 0 || j < i {
		t.Errorf("smb.conf lacks the global signing algorithms line:\n%s", conf)
	}
	for alg, want := range map[string]string{SigningGMAC: "gmac", SigningCMAC: "cmac", SigningHMACSHA256: "hmac-sha256"} {
		if got, err := signingSuffix(alg); err != nil || got != want {
			t.Errorf("signingSuffix(%s) = %q, %v", alg, got, err)
		}
	}
	s := &Samba{ForcedSigning: []string{"AES-256-GMAC"}}
	if _, err := s.Start(context.Background(), t.TempDir()); err == nil || !strings.Contains(err.Error(), "AES-256-GMAC") {
		t.Errorf("unknown signing algorithm: %v", err)
	}
	ep := signingEndpoint(4451, "cmac", "pw")
	if ep.Name != "smb-signed-cmac" || ep.Security != "signed" || !strings.HasSuffix(ep.URL, ":4451/bench/"+SambaFile+"?sign=required") {
		t.Errorf("signingEndpoint: %+v", ep)
	}
}

func TestSambaEndpoints(t *testing.T) {
	eps := sambaEndpoints(4450, "s3cret")
	want := map[string]string{"smb": "none", "smb-signed": "signed", "smb-encrypted": "encrypted"}
	if len(eps) != len(want) {
		t.Fatalf("got %d endpoints, want %d", len(eps), len(want))
	}
	for _, ep := range eps {
		if want[ep.Name] != ep.Security {
			t.Errorf("%s: security %q, want %q", ep.Name, ep.Security, want[ep.Name])
		}
		if strings.Contains(ep.URL, "s3cret") {
			t.Errorf("%s: URL %q holds the password", ep.Name, ep.URL)
		}
		if ep.Env[SambaPasswordEnv] != "s3cret" {
			t.Errorf("%s: password not in Env[%s]", ep.Name, SambaPasswordEnv)
		}
		u, err := url.Parse(ep.URL)
		if err != nil || u.Scheme != "smb" || u.User.Username() != SambaUser || u.Host != "127.0.0.1:4450" {
			t.Errorf("%s: bad URL %q (%v)", ep.Name, ep.URL, err)
		}
	}
}

func TestRandomPassword(t *testing.T) {
	a, err := randomPassword()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := randomPassword()
	if a == b || len(a) < 24 {
		t.Fatalf("weak passwords %q %q", a, b)
	}
}

// needSamba skips when smbd is missing outside CI; in CI a missing server is a failure.
func needSamba(t *testing.T) {
	t.Helper()
	if _, err := LookPath("smbd", "samba"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("the Samba testbed needs root")
		}
		t.Skip("the Samba testbed needs root")
	}
}

func TestIntegrationSambaStartStop(t *testing.T) {
	needSamba(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	s := NewSamba()
	dir := t.TempDir()
	eps, err := s.Start(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	// The main smbd and the one that offers AES-128-CMAC only.
	if len(eps) != 4 || eps[3].Name != "smb-signed-cmac" || len(s.PIDs()) != 2 {
		t.Fatalf("endpoints %v, PIDs %v", eps, s.PIDs())
	}
	if _, err := s.Start(ctx, dir); err == nil {
		t.Fatal("second Start succeeded")
	}
	password := eps[0].Env[SambaPasswordEnv]

	// The password is in no file but passdb, and never in the log.
	for _, d := range []string{dir, filepath.Join(dir, "signing-cmac")} {
		conf, _ := os.ReadFile(filepath.Join(d, "smb.conf"))
		log, _ := os.ReadFile(filepath.Join(d, "smbd.log"))
		if strings.Contains(string(conf)+string(log), password) {
			t.Fatal("password written to smb.conf or the log")
		}
	}

	// smbclient, when installed, proves the account and both shares work.
	if smbclient, err := exec.LookPath("smbclient"); err == nil {
		auth := filepath.Join(dir, "auth")
		if err := os.WriteFile(auth, []byte("username = "+SambaUser+"\npassword = "+password+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		for _, share := range []string{SambaShare, SambaEncryptedShare} {
			out, err := exec.CommandContext(ctx, smbclient, "//127.0.0.1/"+share, "-p", strconv.Itoa(s.Port()), "-A", auth,
				"--option=client min protocol=SMB3", "-c", "mkdir probe; ls").CombinedOutput()
			if err != nil || !strings.Contains(string(out), "probe") {
				t.Fatalf("smbclient on %s: %v: %s", share, err, out)
			}
		}
		// The CMAC-only smbd takes the same password; smbclient, which offers GMAC first,
		// signs with CMAC there (its debug output names the algorithm it signs with).
		u, _ := url.Parse(eps[3].URL)
		out, err := exec.CommandContext(ctx, smbclient, "//127.0.0.1/"+SambaShare, "-p", u.Port(), "-A", auth,
			"--option=client min protocol=SMB3", "--client-protection=sign", "-d", "5", "-c", "ls").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "sign_algo_id=1") || strings.Contains(string(out), "sign_algo_id=2") {
			t.Fatalf("smbclient on the CMAC-only smbd: %v: %s", err, out)
		}
	}

	pids := s.PIDs()
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Fatalf("smbd %d still running after Stop (%v)", pid, err)
		}
	}
	for _, ep := range eps {
		u, _ := url.Parse(ep.URL)
		if c, err := net.DialTimeout("tcp", u.Host, time.Second); err == nil {
			c.Close()
			t.Fatalf("%s still open after Stop", u.Host)
		}
	}
	if len(s.PIDs()) != 0 {
		t.Fatalf("PIDs after Stop: %v", s.PIDs())
	}
}
