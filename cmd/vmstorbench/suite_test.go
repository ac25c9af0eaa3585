package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vmstorbench/vmstorbench/backends"
	"github.com/vmstorbench/vmstorbench/results"
	"github.com/vmstorbench/vmstorbench/suite"
	"github.com/vmstorbench/vmstorbench/suiterun"
	"github.com/vmstorbench/vmstorbench/testbed"
	"github.com/vmstorbench/vmstorbench/vm/hv/libvirt"
	hvqemu "github.com/vmstorbench/vmstorbench/vm/hv/qemu"
	"github.com/vmstorbench/vmstorbench/vm/migrate"
)

// examplesDir is the repository's examples/suites, from this package's directory.
const examplesDir = "../../examples/suites"

func TestSuiteExamples(t *testing.T) {
	s, err := suite.Load(filepath.Join(examplesDir, "nfs-vs-smb.yaml"), backends.Default)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tg := range s.Targets {
		names = append(names, tg.URL)
	}
	for _, want := range []string{"testbed:nfs-ganesha", "testbed:smb", "testbed:smb-signed", "testbed:smb-encrypted", "testbed:iscsi-tgt"} {
		if !slices.Contains(names, want) {
			t.Errorf("nfs-vs-smb: no target %s (has %v)", want, names)
		}
	}
	if iscsi := s.Targets[len(s.Targets)-1]; !iscsi.Optional {
		t.Errorf("nfs-vs-smb: the iSCSI target should be optional")
	}

	n, err := suite.Load(filepath.Join(examplesDir, "nightly-nas.yaml"), backends.Default)
	if err != nil {
		t.Fatal(err)
	}
	if n.Repeats != 5 || n.Baseline == "" || len(n.Thresholds) == 0 {
		t.Errorf("nightly-nas: repeats %d baseline %q thresholds %q", n.Repeats, n.Baseline, n.ThresholdsText)
	}
	secrets := 0
	for _, tg := range n.Targets {
		if tg.SecretEnv != "" || tg.SecretFile != "" {
			secrets++
		}
		if _, isTestbed := tg.TestbedName(); isTestbed {
			t.Errorf("nightly-nas: %s is a testbed target; the nightly suite measures a real NAS", tg.Name)
		}
	}
	if secrets < 2 {
		t.Errorf("nightly-nas: want targets with secrets from the environment and from a file, got %d", secrets)
	}

	// wide-area: every method that moves the disk, over LAN and WAN, one image size and
	// workload, each scenario accepted by migrate itself.
	wa, err := suite.Load(filepath.Join(examplesDir, "wide-area.yaml"), backends.Default)
	if err != nil {
		t.Fatal(err)
	}
	var cells []string
	for _, sc := range wa.Scenarios {
		cells = append(cells, sc.Link+" "+sc.Storage)
		if sc.DiskSize != wa.Scenarios[0].DiskSize {
			t.Errorf("wide-area: %s has a %d-byte disk, the first %d", sc.Name(), sc.DiskSize, wa.Scenarios[0].DiskSize)
		}
		cfg := migrate.Config{Mode: sc.Mode, Security: sc.Security, Storage: sc.Storage, To: sc.To, MirrorCopyMode: sc.MirrorCopyMode}
		if err := cfg.Validate(); err != nil {
			t.Errorf("wide-area: %s: migrate refuses it: %v", sc.Name(), err)
		}
	}
	for _, link := range []string{"lan", "wan"} {
		for _, method := range []string{"copy", "two-phase", "mirror", "pull"} {
			if !slices.Contains(cells, link+" "+method) {
				t.Errorf("wide-area: no %s over %s (has %q)", method, link, cells)
			}
		}
	}
	if len(wa.Workloads) != 1 {
		t.Errorf("wide-area: %d workloads, want one", len(wa.Workloads))
	}

	// 'suite check' works on both without a testbed or the secrets: what is missing is a
	// warning, an error only with --strict.
	t.Setenv("VMSTORBENCH_SMB_PASSWORD", "")
	for _, f := range []string{"nfs-vs-smb.yaml", "nightly-nas.yaml"} {
		out, stderr, err := runCLI(t, "suite", "check", filepath.Join(examplesDir, f), "--testbed-state", t.TempDir())
		if err != nil {
			t.Fatalf("suite check %s: %v\n%s", f, err, stderr)
		}
		if !strings.Contains(out, "plan: ") || !strings.Contains(out, "[1/") {
			t.Errorf("suite check %s: no plan:\n%s", f, out)
		}
		if !strings.Contains(stderr, "warning:") {
			t.Errorf("suite check %s: want warnings (no testbed, no secrets here), stderr:\n%s", f, stderr)
		}
	}
	_, stderr, err := runCLI(t, "suite", "check", filepath.Join(examplesDir, "nightly-nas.yaml"), "--strict")
	if err == nil || !strings.Contains(stderr, "$VMSTORBENCH_SMB_PASSWORD is not set") {
		t.Errorf("check --strict without the secret: %v\n%s", err, stderr)
	}
}

// TestSuiteValuesMatchMigrate keeps the suite package's copies of migrate's values in step.
func TestSuiteValuesMatchMigrate(t *testing.T) {
	if want := []string{migrate.ModeNone, migrate.ModePrecopy, migrate.ModePostcopy, migrate.ModeStopcopy}; !slices.Equal(suite.MigrationModes, want) {
		t.Errorf("suite.MigrationModes %v, migrate has %v", suite.MigrationModes, want)
	}
	if want := []string{migrate.SecurityNone, migrate.SecurityTLS, migrate.SecurityTLSVerify}; !slices.Equal(suite.Securities, want) {
		t.Errorf("suite.Securities %v, migrate has %v", suite.Securities, want)
	}
	if !slices.Equal(suite.StorageMethods, migrate.StorageMethods) {
		t.Errorf("suite.StorageMethods %v, migrate has %v", suite.StorageMethods, migrate.StorageMethods)
	}
	if results.StorageShared != migrate.StorageShared {
		t.Errorf("results.StorageShared %q, migrate has %q", results.StorageShared, migrate.StorageShared)
	}
	if want := []string{migrate.AccessAuto, migrate.AccessNative, migrate.AccessNBD}; !slices.Equal(suite.Accesses, want) {
		t.Errorf("suite.Accesses %v, migrate has %v", suite.Accesses, want)
	}
	if want := []string{hvqemu.Name, libvirt.DriverName}; !slices.Equal(suite.Hypervisors, want) {
		t.Errorf("suite.Hypervisors %v, migrate --hypervisor takes %v", suite.Hypervisors, want)
	}
}

// writeSuite writes a suite file into dir.
func writeSuite(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const tinySuite = `
name: tiny
repeats: 2
labels: {purpose: test}
targets:
  - name: memory
    url: mem://
  - name: disk
    url: file://%DIR%
workloads:
  - name: rr
    rw: randread
    bs: 4k
    size: 4m
    runtime: 300ms
    time_based: true
`

func TestSuiteRunEndToEnd(t *testing.T) {
	dir, benchDir := t.TempDir(), t.TempDir()
	path := writeSuite(t, dir, "tiny.yaml", strings.ReplaceAll(tinySuite, "%DIR%", benchDir))
	out := filepath.Join(dir, "out")
	stdout, stderr, err := runCLI(t, "suite", "run", path, "--out", out)
	if err != nil {
		t.Fatalf("suite run: %v\n%s", err, stderr)
	}
	// One progress line per run, in plan order.
	for _, want := range []string{"[1/4] memory rr repeat 1/2 → read ", "[2/4] disk rr repeat 1/2 → read ", "[4/4] disk rr repeat 2/2 → read "} {
		if !strings.Contains(stderr, want) || !strings.Contains(stderr, "IOPS") {
			t.Errorf("progress lacks %q:\n%s", want, stderr)
		}
	}
	runs, err := results.LoadAll(out)
	if err != nil || len(runs) != 4 {
		t.Fatalf("out dir: %v, %d runs", err, len(runs))
	}
	targets := map[string]int{}
	for _, r := range runs {
		targets[r.Labels[results.TargetLabel]]++
		if !r.Complete || r.Labels["suite"] != "tiny" || r.Labels["purpose"] != "test" || r.Repeats != 2 || r.Workload.Name != "rr" {
			t.Errorf("run %s: complete %v labels %v repeat %d/%d workload %q", r.ID, r.Complete, r.Labels, r.Repeat, r.Repeats, r.Workload.Name)
		}
	}
	if targets["memory"] != 2 || targets["disk"] != 2 {
		t.Errorf("runs per target: %v", targets)
	}
	table, err := os.ReadFile(filepath.Join(out, suiterun.TableFile))
	if err != nil || !strings.Contains(string(table), "memory") || !strings.Contains(string(table), "disk") || !strings.Contains(stdout, string(table)) {
		t.Errorf("table.txt (%v):\n%s\nstdout:\n%s", err, table, stdout)
	}
	page, err := os.ReadFile(filepath.Join(out, suiterun.HTMLFile))
	if err != nil || !strings.Contains(string(page), "<html") || !strings.Contains(string(page), "vmstorbench suite tiny") {
		t.Errorf("report.html: %v, %.300s", err, page)
	}
	for _, f := range []string{suiterun.CopyFile, suiterun.LogFile} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("out dir lacks %s: %v", f, err)
		}
	}
	if entries, _ := os.ReadDir(benchDir); len(entries) != 0 {
		t.Errorf("bench files left behind: %v", entries)
	}

	// An output directory that already holds results is refused.
	if _, _, err := runCLI(t, "suite", "run", path, "--out", out); err == nil || !strings.Contains(err.Error(), "already holds result documents") {
		t.Errorf("second run into the same --out: %v", err)
	}

	// Against a baseline 100 times faster, the same suite with a threshold regresses: exit 1,
	// and the comparison is saved. The first run's directory serves as the baseline.
	fast := rewrite(t, out, func(_ int, r *results.Run) {
		r.Read.IOPS *= 100
		r.Read.BWBps *= 100
	})
	strict := writeSuite(t, dir, "strict.yaml", strings.ReplaceAll(tinySuite, "%DIR%", benchDir)+"thresholds: iops<-10%\n")
	out2 := filepath.Join(dir, "out2")
	stdout, stderr, err = runCLI(t, "suite", "run", strict, "--out", out2, "--baseline", fast, "--quiet")
	if exitCode(err) != exitRegression || !strings.Contains(err.Error(), "regression") {
		t.Fatalf("against a faster baseline: exit %d, %v\n%s", exitCode(err), err, stderr)
	}
	if !strings.Contains(stdout, "compared with the baseline") {
		t.Errorf("stdout lacks the comparison:\n%s", stdout)
	}
	for _, f := range []string{suiterun.CompareFile, suiterun.CompareMDFile, suiterun.JUnitFile, suiterun.HTMLFile} {
		if _, err := os.Stat(filepath.Join(out2, f)); err != nil {
			t.Errorf("out dir lacks %s: %v", f, err)
		}
	}
	if strings.Contains(stderr, "[1/4]") {
		t.Errorf("--quiet printed progress:\n%s", stderr)
	}
	if log, _ := os.ReadFile(filepath.Join(out2, suiterun.LogFile)); !strings.Contains(string(log), "[4/4] disk rr repeat 2/2") {
		t.Errorf("suite.log lacks the progress lines:\n%s", log)
	}
}

func TestSuiteRunSecrets(t *testing.T) {
	dir := t.TempDir()
	const secret = "hunter2-not-in-any-output"
	text := `
name: secrets
targets:
  - name: memory
    url: mem://
  - name: nas
    url: smb://bench@127.0.0.1:1/share/vm.img
    secret_env: VSB_TEST_SUITE_PW
  - name: lun
    url: iscsi://127.0.0.1:1/iqn.2004-04.com.example:t/0?chap_user=u
    secret_env: VSB_TEST_SUITE_CHAP
    optional: true
workloads:
  - {name: r, rw: read, size: 1m, bs: 64k}
`
	path := writeSuite(t, dir, "s.yaml", text)

	// A missing secret stops the suite before anything runs; an optional target is left out.
	t.Setenv("VSB_TEST_SUITE_PW", "")
	out := filepath.Join(dir, "out")
	_, _, err := runCLI(t, "suite", "run", path, "--out", out, "--quiet")
	if err == nil || !strings.Contains(err.Error(), `s.yaml:6: target "nas": $VSB_TEST_SUITE_PW is not set`) || strings.Contains(err.Error(), "lun") {
		t.Fatalf("missing secret: %v", err)
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("the out dir was created although nothing could run")
	}

	// With the secret, the SMB target runs (and fails: nothing listens on port 1), and the
	// secret appears nowhere in what the suite wrote or printed.
	t.Setenv("VSB_TEST_SUITE_PW", secret)
	stdout, stderr, err := runCLI(t, "suite", "run", path, "--out", out)
	if exitCode(err) != 1 || !strings.Contains(err.Error(), "1 of 2 runs failed") {
		t.Fatalf("want one failed run: %v\n%s", err, stderr)
	}
	if !strings.Contains(stderr, `target "lun" is left out (optional): $VSB_TEST_SUITE_CHAP is not set`) || !strings.Contains(stderr, "[2/2] nas r → error: ") {
		t.Errorf("stderr:\n%s", stderr)
	}
	for _, s := range []string{stdout, stderr, err.Error()} {
		if strings.Contains(s, secret) {
			t.Errorf("output shows the secret:\n%s", s)
		}
	}
	entries, _ := os.ReadDir(out)
	for _, e := range entries {
		data, _ := os.ReadFile(filepath.Join(out, e.Name()))
		if strings.Contains(string(data), secret) {
			t.Errorf("%s holds the secret", e.Name())
		}
	}
	// The failed SMB run left no document (it failed before any I/O); the secret reached the
	// backend through a file, which the suite removed.
	if runs, err := results.LoadAll(out); err != nil || len(runs) != 1 || runs[0].Labels[results.TargetLabel] != "memory" {
		t.Errorf("results: %v, %d runs", err, len(runs))
	}
	if !strings.Contains(stderr, "password_file=") {
		t.Errorf("the SMB error does not show the secret file option:\n%s", stderr)
	}
}

func TestSuiteErrorsNameFileAndLine(t *testing.T) {
	dir := t.TempDir()
	path := writeSuite(t, dir, "bad.yaml", "targets: [mem://]\nworkloads:\n  - name: w\n    rw: randread\n    iodeth: 16\n")
	for _, sub := range []string{"check", "run"} {
		_, _, err := runCLI(t, "suite", sub, path, "--out", filepath.Join(dir, "out"))
		if sub == "check" {
			_, _, err = runCLI(t, "suite", sub, path)
		}
		want := path + `:5: unknown key "iodeth" in workload (did you mean "iodepth"?)`
		if err == nil || err.Error() != want {
			t.Errorf("suite %s: %v, want %s", sub, err, want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "out")); err == nil {
		t.Errorf("suite run made its out dir for an invalid suite")
	}
}

// TestSuiteTestbed runs a suite on a real testbed server (the embedded Go NFS server, in
// this process): testbed: true adds its endpoint, a target listing the same endpoint runs
// once, and an optional endpoint the testbed does not have is left out.
func TestSuiteTestbed(t *testing.T) {
	servers, err := testbed.Select([]string{"gonfs"})
	if err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(t.TempDir(), "tb")
	bed, err := testbed.Up(t.Context(), state, servers)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bed.Down() })
	if err := bed.Save(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := writeSuite(t, dir, "tb.yaml", `
name: tb
testbed: true
targets:
  - mem://
  - testbed:nfs-gonfs
  - url: testbed:smb-encrypted
    optional: true
workloads:
  - {name: w, rw: randwrite, bs: 4k, size: 1m, iodepth: 4}
`)
	out, stderr, err := runCLI(t, "suite", "check", path, "--testbed-state", state)
	if err != nil || !strings.Contains(out, "nfs://") || !strings.Contains(out, "2 targets") || !strings.Contains(stderr, `"smb-encrypted" is left out (optional)`) {
		t.Errorf("check: %v\n%s\n%s", err, out, stderr)
	}
	res := filepath.Join(dir, "out")
	_, stderr, err = runCLI(t, "suite", "run", path, "--testbed-state", state, "--out", res)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, stderr)
	}
	if !strings.Contains(stderr, "[1/2] mem:// w → write ") || !strings.Contains(stderr, "[2/2] nfs-gonfs w → write ") {
		t.Errorf("progress:\n%s", stderr)
	}
	runs, err := results.LoadAll(res)
	if err != nil || len(runs) != 2 || runs[0].Target.Backend == runs[1].Target.Backend {
		t.Fatalf("results: %v, %d runs", err, len(runs))
	}

	// Without the testbed, a suite that needs it does not start.
	_, _, err = runCLI(t, "suite", "run", path, "--testbed-state", t.TempDir(), "--out", filepath.Join(dir, "out2"))
	if err == nil || !strings.Contains(err.Error(), "no testbed running") {
		t.Errorf("run without the testbed: %v", err)
	}
}

func TestSuiteBaselineChecks(t *testing.T) {
	dir := t.TempDir()
	path := writeSuite(t, dir, "b.yaml", "targets: [mem://]\nworkloads: ['rw=read bs=64k size=1m']\nbaseline: base\n")
	// A missing baseline stops the suite before it runs anything.
	_, _, err := runCLI(t, "suite", "run", path, "--out", filepath.Join(dir, "out"))
	if err == nil || !strings.Contains(err.Error(), "b.yaml:3: baseline: ") {
		t.Errorf("missing baseline: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "out")); err == nil {
		t.Errorf("out dir made although the suite could not run")
	}
	// An empty one too: it would compare with nothing.
	os.Mkdir(filepath.Join(dir, "base"), 0o755)
	if _, _, err := runCLI(t, "suite", "run", path, "--out", filepath.Join(dir, "out")); err == nil || !strings.Contains(err.Error(), "no *.json files") {
		t.Errorf("empty baseline: %v", err)
	}
	// --no-baseline makes the first baseline.
	if _, stderr, err := runCLI(t, "suite", "run", path, "--out", filepath.Join(dir, "base2"), "--no-baseline", "-q"); err != nil {
		t.Fatalf("--no-baseline: %v\n%s", err, stderr)
	}
	// Compared with the baseline (no thresholds: single runs of a tiny workload are noise).
	stdout, stderr, err := runCLI(t, "suite", "run", path, "--out", filepath.Join(dir, "out"), "--baseline", filepath.Join(dir, "base2"), "-q")
	if err != nil || !strings.Contains(stdout, "compared with the baseline") {
		t.Errorf("against a baseline: %v\n%s%s", err, stdout, stderr)
	}
}

// TestGuestKernelDownloadIsDefault: every command that builds the guest fetches a missing
// kernel without a flag (make demo on a fresh machine once failed for want of --download).
func TestGuestKernelDownloadIsDefault(t *testing.T) {
	root := newRootCmd()
	for _, path := range [][]string{{"vm", "image"}, {"migrate"}, {"suite", "run"}} {
		cmd, _, err := root.Find(path)
		if err != nil {
			t.Fatalf("%v: %v", path, err)
		}
		f := cmd.Flags().Lookup("download")
		if f == nil || f.DefValue != "true" {
			t.Errorf("%v: --download flag %+v, want default true", path, f)
		}
	}
}

func TestSuiteCheckRefusesPastedSecret(t *testing.T) {
	const secret = "hunter2-pasted"
	path := writeSuite(t, t.TempDir(), "s.yaml", "targets:\n  - url: smb://bench@nas.lab/vms/x.img\n    secret_env: "+secret+"\nworkloads: [oltp]\n")
	stdout, stderr, err := runCLI(t, "suite", "check", path)
	if err == nil || !strings.Contains(err.Error(), "secret_env is not an environment variable name") {
		t.Fatalf("suite check: %v", err)
	}
	if strings.Contains(stdout+stderr+err.Error(), secret) {
		t.Errorf("the secret was echoed:\n%s\n%s\n%v", stdout, stderr, err)
	}
}
