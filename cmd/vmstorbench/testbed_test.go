package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vmstorbench/vmstorbench/results"
	"github.com/vmstorbench/vmstorbench/testbed"
)

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// binary builds the command once per test process.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "vmstorbench-bin")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "vmstorbench")
		out, err := exec.Command("go", "build", "-o", builtBin, ".").CombinedOutput()
		if err != nil {
			buildErr = &exec.ExitError{Stderr: out}
		}
	})
	if buildErr != nil {
		t.Fatalf("build: %v", buildErr)
	}
	return builtBin
}

func needSamba(t *testing.T) {
	t.Helper()
	if _, err := testbed.LookPath("smbd", "samba"); err != nil || os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI needs smbd and root: %v", err)
		}
		t.Skipf("needs smbd and root: %v", err)
	}
}

// TestIntegrationTestbedLifecycle drives the real binary: testbed up, status, a run against
// every endpoint, a server killed in the middle of a run, and down.
func TestIntegrationTestbedLifecycle(t *testing.T) {
	needSamba(t)
	bin := binary(t)
	state := filepath.Join(t.TempDir(), "tb")
	res := t.TempDir()
	run := func(args ...string) (string, string, error) {
		cmd := exec.Command(bin, args...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		return out.String(), errb.String(), err
	}
	out, stderr, err := run("testbed", "up", "--state", state, "--only", "gonfs,samba")
	t.Cleanup(func() { run("testbed", "down", "--state", state) })
	if err != nil {
		t.Fatalf("up: %v\n%s%s", err, out, stderr)
	}
	for _, name := range []string{"nfs-gonfs", "smb", "smb-signed", "smb-signed-cmac", "smb-encrypted"} {
		if !strings.Contains(out, name) {
			t.Errorf("up: endpoint %s not listed:\n%s", name, out)
		}
	}
	if strings.Contains(out, "VMSTORBENCH_SMB_PASSWORD=") {
		t.Errorf("up prints the password:\n%s", out)
	}
	st, err := testbed.LoadState(state)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(state, testbed.StateFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode: %v %v", fi.Mode(), err)
	}
	if out, _, err := run("testbed", "status", "--state", state); err != nil || !strings.Contains(out, "smb-signed") {
		t.Errorf("status: %v\n%s", err, out)
	}

	// Every endpoint, verify on: the one table names them all, and nothing leaks the password.
	out, stderr, err = run("run", "--testbed", "--testbed-state", state, "--rw", "randrw", "--bs", "64k",
		"--size", "4m", "--verify", "crc32c", "--results", res, "--quiet", "--output-format", "md")
	if err != nil {
		t.Fatalf("run --testbed: %v\n%s%s", err, out, stderr)
	}
	for _, name := range []string{"nfs-gonfs", "smb", "smb-signed", "smb-signed-cmac", "smb-encrypted"} {
		if !strings.Contains(out, "| "+name+" ") {
			t.Errorf("table has no row for %s:\n%s", name, out)
		}
	}
	var pw string
	if e, ok := st.Endpoint("smb"); ok {
		pw = e.Env["VMSTORBENCH_SMB_PASSWORD"]
	}
	saved, _ := filepath.Glob(filepath.Join(res, "*.json"))
	for _, f := range saved {
		data, _ := os.ReadFile(f)
		if pw != "" && bytes.Contains(data, []byte(pw)) {
			t.Errorf("%s contains the SMB password", f)
		}
	}
	runs, err := results.LoadAll(res)
	if err != nil || len(runs) != 5 {
		t.Fatalf("%d results, %v", len(runs), err)
	}
	for _, r := range runs {
		if !r.Complete || r.Verify == nil || r.Verify.Mismatches != 0 || r.Verify.Checked == 0 {
			t.Errorf("%s: complete=%v verify=%+v", r.Labels["target"], r.Complete, r.Verify)
		}
		// Every document has the process's CPU time, and a signed SMB run says which
		// algorithm signed it, next to the security level.
		if r.CPU.UserNS+r.CPU.SysNS <= 0 {
			t.Errorf("%s: no CPU time: %+v", results.TargetName(r), r.CPU)
		}
		want := map[string]string{"smb-signed": "AES-128-GMAC", "smb-signed-cmac": "AES-128-CMAC"}[results.TargetName(r)]
		if got := r.Target.Info["signing"]; got != want {
			t.Errorf("%s: signing %q, want %q (info %v)", results.TargetName(r), got, want, r.Target.Info)
		}
	}

	// Kill smbd in the middle of a long run: the run must end within seconds, non-zero, with
	// its partial result saved and marked incomplete.
	killRes := t.TempDir()
	cmd := exec.Command(bin, "run", "--target", "testbed:smb", "--testbed-state", state, "--rw", "randread",
		"--size", "8m", "--runtime", "60s", "--time-based", "--results", killRes, "--quiet")
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	for _, s := range st.Servers {
		if s.Name == "samba" {
			for _, pid := range s.PIDs {
				syscall.Kill(-pid, syscall.SIGKILL) // smbd forks a child per client
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	killed := time.Now()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("run succeeded although its server died")
		}
		if d := time.Since(killed); d > 15*time.Second {
			t.Errorf("run ended %s after the server died", d)
		}
	case <-time.After(40 * time.Second):
		cmd.Process.Kill()
		t.Fatal("run did not end after its server died")
	}
	if lines := strings.Split(strings.TrimSpace(errb.String()), "\n"); len(lines) > 3 {
		t.Errorf("stderr too long:\n%s", errb.String())
	}
	partial, err := results.LoadAll(killRes)
	if err != nil || len(partial) != 1 || partial[0].Complete || partial[0].Error == "" || partial[0].Read == nil || partial[0].Read.IOs == 0 {
		t.Fatalf("partial result: %v %+v", err, partial)
	}
	t.Logf("partial result after %s: %d I/Os, error %q", time.Duration(partial[0].RuntimeNS), partial[0].Read.IOs, partial[0].Error)

	if out, _, err := run("testbed", "down", "--state", state); err != nil || !strings.Contains(out, "stopped") {
		t.Fatalf("down: %v %s", err, out)
	}
	if alive(st.PID) {
		t.Errorf("testbed process %d still alive after down", st.PID)
	}
	for _, s := range st.Servers {
		for _, pid := range s.PIDs {
			if alive(pid) && !zombie(pid) {
				t.Errorf("%s pid %d still alive after down", s.Name, pid)
			}
		}
	}
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Errorf("state directory left behind: %v", err)
	}
}

func zombie(pid int) bool {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return true
	}
	f := strings.Fields(string(data))
	return len(f) > 2 && f[2] == "Z"
}

func TestMain(m *testing.M) {
	code := m.Run()
	if builtBin != "" {
		os.RemoveAll(filepath.Dir(builtBin))
	}
	os.Exit(code)
}
