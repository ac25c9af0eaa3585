package suite

import (
	"context"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vmstorbench/vmstorbench/backends"
)

// testRegistry has backends shaped like the real ones (options only: nothing is opened).
func testRegistry() *backends.Registry {
	reg := &backends.Registry{}
	open := func(context.Context, *url.URL, backends.OpenParams) (backends.Target, error) {
		return nil, errors.New("not in this test")
	}
	reg.Register(backends.Backend{Scheme: "mem", Options: []backends.Option{{Name: "size"}}, Open: open})
	reg.Register(backends.Backend{Scheme: "file", Options: []backends.Option{{Name: "name"}}, Open: open})
	reg.Register(backends.Backend{Scheme: "nfs", Options: []backends.Option{{Name: "uid"}, {Name: "mountport"}}, Open: open})
	reg.Register(backends.Backend{Scheme: "smb", Options: []backends.Option{{Name: "sign"}, {Name: "dialect"}, {Name: "password_file"}}, Open: open})
	reg.Register(backends.Backend{Scheme: "iscsi", Options: []backends.Option{{Name: "chap_user"}, {Name: "secret_file"}}, Open: open})
	return reg
}

// parse parses text as the file dir/suite.yaml.
func parse(t *testing.T, dir, text string) (*Suite, error) {
	t.Helper()
	return Parse(filepath.Join(dir, "suite.yaml"), []byte(text), testRegistry())
}

func TestParseErrors(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bad.fio"), []byte("[job]\nrw=randread\niodeth=4\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, text string
		want       []string // substrings of the error, in order of lines
		never      string   // must not appear (a secret)
	}{
		{"unknown workload key", `
targets: [mem://]
workloads:
  - name: small
    rw: randread
    iodeth: 16
`, []string{`suite.yaml:6: unknown key "iodeth" in workload (did you mean "iodepth"?)`}, ""},
		{"typo of a newer fio option", "targets: [mem://]\nworkloads:\n  - name: w\n    bsplit: 4k/50:64k/50\n",
			[]string{`suite.yaml:4: unknown key "bsplit" in workload (did you mean "bssplit"?)`}, ""},
		{"a fio option vmstorbench refuses says why", "targets: [mem://]\nworkloads:\n  - name: w\n    zonemode: zbd\n",
			[]string{`suite.yaml:4: workload: unsupported fio option "zonemode": zoned block devices`}, ""},
		{"unknown suite key", "targets: [mem://]\nworkloads: [oltp]\nrepeat: 3\n",
			[]string{`suite.yaml:3: unknown key "repeat" in suite (did you mean "repeats"?)`}, ""},
		{"unknown target key far from any", "targets:\n  - url: mem://\n    colour: blue\nworkloads: [oltp]\n",
			[]string{`suite.yaml:3: unknown key "colour" in target (known: name, url,`}, ""},
		{"bad YAML", "targets: [mem://]\nworkloads:\n  - oltp\n - seq-read\n",
			[]string{"suite.yaml:3: invalid YAML: did not find expected key"}, ""},
		{"unclosed flow", "targets: [mem://\nworkloads: [oltp]\n", []string{"suite.yaml:", "invalid YAML"}, ""},
		{"empty file", "", []string{"suite.yaml: empty suite file"}, ""},
		{"two documents", "targets: [mem://]\nworkloads: [oltp]\n---\nname: x\n", []string{"suite.yaml:3: a second YAML document"}, ""},
		{"duplicate key", "targets: [mem://]\nworkloads: [oltp]\nrepeats: 2\nrepeats: 3\n",
			[]string{`suite.yaml:4: duplicate key "repeats" in suite (first on line 3)`}, ""},
		{"inline password", `
targets:
  - name: nas
    url: smb://bench:hunter2@nas.lab/vms/x.img
workloads: [oltp]
`, []string{`suite.yaml:3: target smb://bench@nas.lab/vms/x.img: the URL carries a password`, "secret_env:"}, "hunter2"},
		{"inline password, short form", "targets: ['iscsi://u:s3cret@h/iqn.x:t/0']\nworkloads: [oltp]\n",
			[]string{"suite.yaml:1: target iscsi://u@h/iqn.x:t/0: the URL carries a password"}, "s3cret"},
		{"unknown backend", "targets: ['ftp://h/x']\nworkloads: [oltp]\n", []string{`suite.yaml:1: target "ftp://h/x": unknown backend "ftp"`}, ""},
		{"unknown URL option", "targets:\n  - smb://u@h/s/f?sgn=required\nworkloads: [oltp]\n",
			[]string{`suite.yaml:2: target "smb://u@h/s/f?sgn=required": smb: unknown option "sgn"`}, ""},
		{"secret for a backend without one", "targets:\n  - url: nfs://h/e/f\n    secret_env: X\nworkloads: [oltp]\n",
			[]string{`suite.yaml:2: target "nfs://h/e/f": the nfs backend takes no password or secret`}, ""},
		{"secret twice", "targets:\n  - url: smb://u@h/s/f\n    secret_env: X\n    secret_file: f\nworkloads: [oltp]\n",
			[]string{"suite.yaml:2: target smb://u@h/s/f: give secret_env or secret_file, not both"}, ""},
		{"secret in URL option and secret_file", "targets:\n  - url: smb://u@h/s/f?password_file=/p\n    secret_file: f\nworkloads: [oltp]\n",
			[]string{"already has password_file="}, ""},
		{"secret value instead of name", "targets:\n  - url: smb://u@h/s/f\n    secret_env: $PASS\nworkloads: [oltp]\n",
			[]string{"suite.yaml:2: target smb://u@h/s/f: secret_env is not an environment variable name"}, "$PASS"},
		{"pasted secret in secret_env", "targets:\n  - url: smb://u@h/s/f\n    secret_env: hunter2\nworkloads: [oltp]\n",
			[]string{"secret_env is not an environment variable name", "remove it from the file and change the secret"}, "hunter2"},
		{"pasted secret with symbols", "targets:\n  - name: nas\n    url: smb://u@h/s/f\n    secret_env: 'Tr0ub4dor&3'\nworkloads: [oltp]\n",
			[]string{`suite.yaml:2: target "nas": secret_env is not an environment variable name`}, "Tr0ub4dor"},
		{"testbed target with secret", "targets:\n  - url: testbed:smb\n    secret_env: X\nworkloads: [oltp]\n",
			[]string{"suite.yaml:2: target testbed:smb: testbed endpoints bring their own credentials"}, ""},
		{"duplicate target", "targets:\n  - testbed:smb\n  - name: smb\n    url: mem://\nworkloads: [oltp]\n",
			[]string{`suite.yaml:3: target "smb" is listed twice (first on line 2)`}, ""},
		{"no targets", "workloads: [oltp]\n", []string{"no targets"}, ""},
		{"no workloads", "targets: [mem://]\n", []string{"no workloads"}, ""},
		{"unknown profile", "targets: [mem://]\nworkloads:\n  - olpt\n", []string{`suite.yaml:3: workload: unknown profile "olpt"`}, ""},
		{"bad fio value on its line", "targets: [mem://]\nworkloads:\n  - name: w\n    rw: randread\n    iodepth: lots\n",
			[]string{`suite.yaml:5: workload "w": iodepth="lots"`}, ""},
		{"fio options that clash", "targets: [mem://]\nworkloads:\n  - name: w\n    bs: 64k\n    size: 32k\n    rw: read\n",
			[]string{`suite.yaml:3: workload "w": bs (read)=64KiB is larger than size=32KiB`}, ""},
		{"fio string unknown option", "targets: [mem://]\nworkloads:\n  - name: w\n    fio: rw=read iodeth=4\n",
			[]string{`suite.yaml:4: workload "w": unsupported fio option "iodeth"`}, ""},
		{"fio map unknown option", "targets: [mem://]\nworkloads:\n  - name: w\n    fio:\n      rw: read\n      iodeth: 4\n",
			[]string{`suite.yaml:6: unknown key "iodeth" in workload`}, ""},
		{"filename in a workload", "targets: [mem://]\nworkloads:\n  - {rw: read, filename: /tmp/x}\n", []string{"suite.yaml:3: workload: filename:"}, ""},
		{"job file with an unknown option", "targets: [mem://]\nworkloads:\n  - job_file: bad.fio\n",
			[]string{"suite.yaml:3: workload: job_file: ", "bad.fio:3: unsupported fio option \"iodeth\""}, ""},
		{"job file missing", "targets: [mem://]\nworkloads:\n  - job_file: none.fio\n", []string{"suite.yaml:3: workload: job_file: open "}, ""},
		{"profile and job file", "targets: [mem://]\nworkloads:\n  - {profile: oltp, job_file: bad.fio}\n", []string{"give profile or job_file, not both"}, ""},
		{"same workload twice", "targets: [mem://]\nworkloads:\n  - {name: a, rw: randread, bs: 4k}\n  - {name: b, rw: randread, bs: 4k}\n",
			[]string{`suite.yaml:4: workload "b" measures the same as "a" (line 3)`}, ""},
		{"workload name twice", "targets: [mem://]\nworkloads:\n  - oltp\n  - {name: oltp, rw: read}\n",
			[]string{`suite.yaml:4: workload name "oltp" is used twice (first on line 3)`}, ""},
		{"bad submission", "targets: [mem://]\nworkloads: [oltp]\nsubmission: async\n", []string{`suite.yaml:3: submission "async": must be auto, queue or goroutines`}, ""},
		{"bad threshold", "targets: [mem://]\nworkloads: [oltp]\nthresholds: iops<-10\n", []string{`suite.yaml:3: thresholds: threshold "iops<-10": the limit "-10" needs a % sign`}, ""},
		{"bad repeats", "targets: [mem://]\nworkloads: [oltp]\nrepeats: 0\n", []string{"suite.yaml:3: repeats: \"0\": want a whole number from 1 to 1000"}, ""},
		{"bad mode", "targets: [mem://]\nworkloads: [oltp]\nscenarios: [precopyy]\n", []string{`suite.yaml:3: scenario: "precopyy": must be one of host, none, precopy, postcopy, stopcopy`}, ""},
		{"bad security", "targets: [mem://]\nworkloads: [oltp]\nscenarios:\n  - mode: precopy\n    security: ssl\n",
			[]string{`suite.yaml:5: security: "ssl": must be one of none, tls, tls-verify-peer`}, ""},
		{"bad link", "targets: [mem://]\nworkloads: [oltp]\nscenarios:\n  - {mode: precopy, link: moon}\n", []string{`suite.yaml:4: link: link "moon": unknown preset "moon"`}, ""},
		{"host with VM keys", "targets: [mem://]\nworkloads: [oltp]\nscenarios:\n  - mode: host\n    security: tls\n",
			[]string{"suite.yaml:5: scenario: security applies to runs in a VM"}, ""},
		{"same scenario twice", "targets: [mem://]\nworkloads: [oltp]\nscenarios:\n  - {mode: precopy, link: wan}\n  - {mode: precopy, link: wan, max_bandwidth: 10m}\n",
			[]string{`suite.yaml:5: scenario "precopy none wan" is the same case as the one on line 4`}, ""},
		{"postcopy options without postcopy", "targets: [mem://]\nworkloads: [oltp]\nscenarios:\n  - {mode: precopy, postcopy_after: 1s}\n",
			[]string{"postcopy_after and postcopy_iterations need mode: postcopy"}, ""},
		{"several problems at once", "targets:\n  - url: mem://\n    nmae: x\nworkloads:\n  - olpt\nrepeats: many\n",
			[]string{`suite.yaml:3: unknown key "nmae" in target (did you mean "name"?)`, "suite.yaml:6: repeats:"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parse(t, dir, tc.text)
			if err == nil {
				t.Fatal("no error")
			}
			msg := strings.ReplaceAll(err.Error(), dir+string(filepath.Separator), "")
			at := 0
			for _, w := range tc.want {
				i := strings.Index(msg[at:], w)
				if i < 0 {
					t.Fatalf("error\n%s\ndoes not contain (in order) %q", msg, w)
				}
				at += i + len(w)
			}
			if tc.never != "" && strings.Contains(msg, tc.never) {
				t.Errorf("error shows the secret: %s", msg)
			}
			var es Errors
			if !errors.As(err, &es) || len(es) == 0 {
				t.Errorf("error is %T, want Errors", err)
			}

		})
	}
}

// TestParseOneErrorForOneMistake: a mistake is reported once, not again through what
// follows from it.
func TestParseOneErrorForOneMistake(t *testing.T) {
	for text, want := range map[string]string{
		"- a\n- b\n": "suite.yaml:1: suite: want a mapping (key: value lines), got a list",
		"targets:\n  - name: a\n    ulr: mem://\nworkloads: [oltp]\n": `suite.yaml:3: unknown key "ulr" in target (did you mean "url"?)`,
		"targets: [mem://]\nworkloads:\n  - {name: w, rw: randred}\n": `suite.yaml:3: workload "w": rw="randred": must be one of`,
	} {
		_, err := Parse("suite.yaml", []byte(text), testRegistry())
		var es Errors
		if !errors.As(err, &es) || len(es) != 1 || !strings.HasPrefix(es[0].Error(), want) {
			t.Errorf("%q: %v, want one error %q", text, err, want)
		}
	}
}

func TestParseFull(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "jobs"), 0o755)
	job := "[global]\nbs=4k\nsize=16m\n[seq]\nrw=read\n[rand]\nrw=randwrite\niodepth=8\nfilename=/tmp/x\n"
	if err := os.WriteFile(filepath.Join(dir, "jobs", "two.fio"), []byte(job), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := parse(t, dir, `
name: lab
description: a test
repeats: 3
interval: 100ms
submission: goroutines
labels: {site: lab1}
allow_destructive: true
thresholds: [iops<-10%, "write.p99>+20%"]
baseline: base
targets:
  - testbed:smb-signed
  - name: nas
    url: smb://bench@nas.lab/vms/x.img?sign=required
    secret_env: NAS_PASS
  - url: iscsi://nas.lab/iqn.2004-04.com.example:t/0?chap_user=bench
    secret_file: chap.secret
    optional: true
    allow_destructive: false
  - mem://
workloads:
  - rand-read-4k
  - {profile: oltp, runtime: 2s, time_based: true}
  - name: small
    fio: rw=randrw bs=8k
    iodepth: 4
    direct: false
  - job_file: jobs/two.fio
    fio: {runtime: 1s}
scenarios:
  - host
  - {mode: postcopy, security: tls-verify-peer, link: wan, max_bandwidth: 100m, disk_size: 64m, postcopy_after: 2s, outside: true}
`)
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "lab" || s.Repeats != 3 || s.Interval != 100*time.Millisecond || s.Labels["site"] != "lab1" || s.Description != "a test" || s.Submission != "goroutines" {
		t.Errorf("suite fields: %+v", s)
	}
	if s.Baseline != filepath.Join(dir, "base") || len(s.Thresholds) != 2 || s.ThresholdsText != "iops<-10%,write.p99>+20%" {
		t.Errorf("baseline %q thresholds %q", s.Baseline, s.ThresholdsText)
	}
	var names []string
	for _, tg := range s.Targets {
		names = append(names, tg.Name)
	}
	if got := strings.Join(names, " "); got != "smb-signed nas iscsi://nas.lab/iqn.2004-04.com.example:t/0?chap_user=bench mem://" {
		t.Errorf("target names: %s", got)
	}
	nas, iscsi := s.Targets[1], s.Targets[2]
	if nas.SecretEnv != "NAS_PASS" || nas.SecretOption != "password_file" || !nas.AllowDestructive {
		t.Errorf("nas: %+v", nas)
	}
	if iscsi.SecretFile != filepath.Join(dir, "chap.secret") || iscsi.SecretOption != "secret_file" || !iscsi.Optional || iscsi.AllowDestructive {
		t.Errorf("iscsi: %+v", iscsi)
	}
	var jobs []string
	for _, w := range s.Workloads {
		for _, j := range w.Jobs {
			jobs = append(jobs, j.Name)
		}
	}
	if got := strings.Join(jobs, " "); got != "rand-read-4k oltp small seq rand" {
		t.Errorf("jobs: %s", got)
	}
	oltp := s.Workloads[1].Jobs[0]
	if oltp.Profile != "oltp" || oltp.Workload.Runtime != 2*time.Second || !oltp.SizeGiven || oltp.Workload.RWMixRead != 70 {
		t.Errorf("oltp: %+v", oltp)
	}
	small := s.Workloads[2].Jobs[0]
	if small.Workload.RW != "randrw" || small.Workload.IODepth != 4 || small.Workload.BS[0].Min != 8192 || small.SizeGiven || small.Workload.Name != "small" {
		t.Errorf("small: %+v", small.Workload)
	}
	rand := s.Workloads[3].Jobs[1]
	if rand.Workload.IODepth != 8 || rand.Workload.Runtime != time.Second || !rand.SizeGiven || rand.Workload.Filename != "" {
		t.Errorf("rand: %+v", rand.Workload)
	}
	if !strings.Contains(strings.Join(rand.Notes, "\n"), "filename= is not used") {
		t.Errorf("rand notes: %q", rand.Notes)
	}
	if len(s.Scenarios) != 2 || !s.Scenarios[0].Host() || !s.Migrates() {
		t.Fatalf("scenarios: %+v", s.Scenarios)
	}
	pc := s.Scenarios[1]
	if pc.Name() != "postcopy tls-verify-peer wan" || pc.MaxBandwidth != 100<<20 || pc.DiskSize != 64<<20 || pc.PostcopyAfter != 2*time.Second ||
		pc.MemoryMiB != DefaultMemoryMiB || pc.Accel != "auto" || !pc.Verify || !pc.Outside || pc.LinkSpec == nil || pc.LinkSpec.Latency != 20*time.Millisecond {
		t.Errorf("postcopy scenario: %+v", pc)
	}
}

func TestDefaults(t *testing.T) {
	dir := t.TempDir()
	s, err := Parse(filepath.Join(dir, "my nightly.yaml"), []byte("targets: [mem://]\nworkloads: ['rw=randread bs=4k']\n"), testRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "my_nightly" || s.Repeats != 1 || s.Interval != time.Second || s.Migrates() || len(s.Scenarios) != 1 || s.Scenarios[0].Name() != "host" {
		t.Errorf("defaults: name %q repeats %d interval %s scenarios %+v", s.Name, s.Repeats, s.Interval, s.Scenarios)
	}
	if j := s.Workloads[0].Jobs[0]; j.Name != "randread" || j.SizeGiven {
		t.Errorf("fio-string workload: %+v", j)
	}
}

func TestPlan(t *testing.T) {
	s, err := parse(t, t.TempDir(), `
repeats: 2
testbed: true
targets: [mem://, 'file:///tmp']
workloads: [oltp, seq-read]
scenarios: [host, precopy]
`)
	if err != nil {
		t.Fatal(err)
	}
	eps := s.DeclaredEndpoints()
	if len(eps) != 3 || eps[0].Name != "testbed:*" || eps[1].Name != "mem://" {
		t.Fatalf("declared endpoints: %+v", eps)
	}
	runs := s.Plan(eps[1:])
	if len(runs) != 2*2*2*2 {
		t.Fatalf("%d runs, want 16", len(runs))
	}
	// Targets innermost, then workloads, scenarios, repeats outermost.
	want := []string{
		"[1/16] mem:// oltp repeat 1/2",
		"[2/16] file:///tmp oltp repeat 1/2",
		"[3/16] mem:// seq-read repeat 1/2",
		"[5/16] mem:// oltp [precopy none] repeat 1/2",
		"[9/16] mem:// oltp repeat 2/2",
		"[16/16] file:///tmp seq-read [precopy none] repeat 2/2",
	}
	got := map[string]bool{}
	for _, r := range runs {
		got[r.String()] = true
	}
	for _, w := range want {
		if !got[w] {
			t.Errorf("plan lacks %q", w)
		}
	}
	if r := runs[8]; r.Repeat != 1 || r.Repeats != 2 || r.N != 9 || r.Of != 16 {
		t.Errorf("run 9: %+v", r)
	}
}

func TestSecrets(t *testing.T) {
	dir := t.TempDir()
	s, err := parse(t, dir, `
targets:
  - name: nas
    url: smb://bench@nas.lab/vms/x.img?sign=required
    secret_env: NAS_PASS
  - name: lun
    url: iscsi://nas.lab/iqn.2004-04.com.example:t/0?chap_user=bench
    secret_file: chap
  - mem://
workloads: [oltp]
baseline: nowhere
`)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	var msgs []string
	for _, p := range s.Problems(lookup) {
		msgs = append(msgs, strings.ReplaceAll(p.String(), dir+string(filepath.Separator), ""))
	}
	got := strings.Join(msgs, "\n")
	for _, w := range []string{`suite.yaml:3: target "nas": $NAS_PASS is not set`, `suite.yaml:6: target "lun": secret_file: open `, "suite.yaml:11: baseline: "} {
		if !strings.Contains(got, w) {
			t.Errorf("problems\n%s\nlack %q", got, w)
		}
	}
	if _, err := s.Targets[0].ResolveURL(t.TempDir(), lookup); err == nil {
		t.Error("ResolveURL without the variable: no error")
	}

	env["NAS_PASS"] = "hunter2"
	os.WriteFile(filepath.Join(dir, "chap"), []byte("chapsecret\n"), 0o600)
	os.Mkdir(filepath.Join(dir, "nowhere"), 0o755)
	if p := s.Problems(lookup); len(p) != 0 {
		t.Errorf("problems with everything in place: %v", p)
	}
	secretDir := t.TempDir()
	u, err := s.Targets[0].ResolveURL(secretDir, lookup)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(u, "hunter2") || !strings.Contains(u, "password_file="+url.QueryEscape(filepath.Join(secretDir, "nas.secret"))) || !strings.Contains(u, "sign=required") {
		t.Errorf("resolved URL %s", u)
	}
	data, err := os.ReadFile(filepath.Join(secretDir, "nas.secret"))
	if err != nil || string(data) != "hunter2" {
		t.Errorf("secret file: %q, %v", data, err)
	}
	if fi, _ := os.Stat(filepath.Join(secretDir, "nas.secret")); fi == nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("secret file mode: %v", fi)
	}
	u, err = s.Targets[1].ResolveURL(secretDir, lookup)
	if err != nil || !strings.Contains(u, "secret_file="+url.QueryEscape(filepath.Join(dir, "chap"))) {
		t.Errorf("secret_file URL %s, %v", u, err)
	}
	if u, _ := s.Targets[2].ResolveURL(secretDir, lookup); u != "mem://" {
		t.Errorf("plain target URL changed: %s", u)
	}
}

func TestAliasesAndFlags(t *testing.T) {
	s, err := parse(t, t.TempDir(), `
common: &common {runtime: 1s, time_based: true}
targets: [mem://]
workloads:
  - name: a
    rw: randread
    time_based:
    runtime: 1s
`)
	if err == nil || !strings.Contains(err.Error(), `unknown key "common" in suite`) {
		t.Fatalf("extra top-level key: %v", err)
	}
	s, err = parse(t, t.TempDir(), "targets: [mem://]\nworkloads:\n  - name: a\n    rw: randread\n    time_based:\n    runtime: 1s\n")
	if err != nil {
		t.Fatal(err)
	}
	if w := s.Workloads[0].Jobs[0].Workload; !w.TimeBased || w.Runtime != time.Second {
		t.Errorf("bare flag: %+v", w)
	}
}

func TestOutsideURL(t *testing.T) {
	for _, tc := range []struct{ target, want, wantErr string }{
		{target: "nfs://127.0.0.1:2049/export/vm.img?mountport=20048", want: "nfs://127.0.0.1:2049/export/vmstorbench-outside.img?mountport=20048"},
		{target: "smb://bench@nas:4450/vms/dir/vm.img?sign=required", want: "smb://bench@nas:4450/vms/dir/vmstorbench-outside.img?sign=required"},
		{target: "file:///var/tmp/", want: "file:///var/tmp/"},
		{target: "file:///var/tmp/vm.img", want: "file:///var/tmp/vmstorbench-outside.img"},
		{target: "iscsi://h/iqn.2004-04.com.example:t/1", wantErr: "iscsi targets have no file beside"},
	} {
		got, err := OutsideURL(tc.target)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: err = %v, want %q", tc.target, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: got %q, %v; want %q", tc.target, got, err, tc.want)
		}
	}
}

// TestScenarioStorage: the storage method of a migration scenario and its options, valid
// and refused with the file and line of the key.
func TestScenarioStorage(t *testing.T) {
	const head = "targets: [mem://]\nworkloads: [oltp]\nscenarios:\n"
	valid := []struct {
		name, scenarios string
		want            []string // Scenario.Name of each
		check           func(t *testing.T, sc []*Scenario)
	}{
		{"default shared", "  - {mode: precopy, link: lan}\n", []string{"precopy none lan"}, func(t *testing.T, sc []*Scenario) {
			if sc[0].Storage != "shared" || sc[0].MirrorCopyMode != "" || sc[0].NoImageCheck {
				t.Errorf("%+v", sc[0])
			}
		}},
		{"every method", "  - {mode: precopy, link: lan, storage: copy}\n  - {mode: precopy, link: lan, storage: two-phase}\n" +
			"  - {mode: precopy, link: lan, storage: mirror}\n  - {mode: precopy, link: lan, storage: pull}\n  - {mode: precopy, link: lan, storage: shared}\n",
			[]string{"precopy none lan copy", "precopy none lan two-phase", "precopy none lan mirror", "precopy none lan pull", "precopy none lan"}, nil},
		{"mirror options", "  - mode: stopcopy\n    storage: mirror\n    mirror_copy_mode: write-blocking\n    to: file:///srv/b\n    disk_link: wan\n    check_image: false\n",
			[]string{"stopcopy none mirror write-blocking"}, func(t *testing.T, sc []*Scenario) {
				s := sc[0]
				if s.To != "file:///srv/b" || s.DiskLinkSpec == nil || s.DiskLinkSpec.Name != "wan" || !s.NoImageCheck || s.MirrorCopyMode != "write-blocking" {
					t.Errorf("%+v", s)
				}
			}},
		{"background mirror and write-blocking mirror are two cases", "  - {mode: precopy, storage: mirror}\n  - {mode: precopy, storage: mirror, mirror_copy_mode: write-blocking}\n",
			[]string{"precopy none mirror", "precopy none mirror write-blocking"}, nil},
		{"disk move without migration", "  - {mode: none, storage: mirror, to: /srv/b}\n", []string{"none none mirror"}, nil},
	}
	for _, tc := range valid {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse("suite.yaml", []byte(head+tc.scenarios), testRegistry())
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, sc := range s.Scenarios {
				names = append(names, sc.Name())
			}
			if !slices.Equal(names, tc.want) {
				t.Errorf("scenarios %q, want %q", names, tc.want)
			}
			if tc.check != nil {
				tc.check(t, s.Scenarios)
			}
		})
	}
	invalid := []struct{ name, scenarios, want string }{
		{"typo in the key", "  - mode: precopy\n    storgae: copy\n", `suite.yaml:5: unknown key "storgae" in scenario (did you mean "storage"?)`},
		{"typo in the copy mode key", "  - mode: precopy\n    storage: mirror\n    mirror_copy_mdoe: write-blocking\n", `suite.yaml:6: unknown key "mirror_copy_mdoe" in scenario (did you mean "mirror_copy_mode"?)`},
		{"bad method", "  - mode: precopy\n    storage: rsync\n", `suite.yaml:5: storage: "rsync": must be one of shared, copy, two-phase, mirror, pull`},
		{"bad copy mode", "  - mode: precopy\n    storage: mirror\n    mirror_copy_mode: fast\n", `suite.yaml:6: mirror_copy_mode: "fast": must be one of background, write-blocking`},
		{"list as method", "  - mode: precopy\n    storage: [copy, mirror]\n", `suite.yaml:5: storage: want a single value, got a list`},
		{"to without moving the disk", "  - mode: precopy\n    to: /srv/b\n", `suite.yaml:5: scenario: to: names where the disk goes: it needs storage: copy`},
		{"copy mode without mirror", "  - mode: precopy\n    storage: copy\n    mirror_copy_mode: background\n", `suite.yaml:6: scenario: mirror_copy_mode applies to storage: mirror`},
		{"disk link without moving the disk", "  - {mode: precopy, disk_link: wan}\n", `suite.yaml:4: scenario: disk_link shapes the disk stream`},
		{"bad disk link", "  - {mode: precopy, storage: copy, disk_link: moon}\n", `suite.yaml:4: disk_link: link "moon": unknown preset "moon"`},
		{"pull with stop-and-copy", "  - mode: stopcopy\n    storage: pull\n", `suite.yaml:5: scenario: storage: pull starts the destination at once`},
		{"copy with post-copy", "  - mode: postcopy\n    storage: copy\n", `suite.yaml:5: scenario: storage: copy stops the VM for the whole copy`},
		{"copy without migration", "  - mode: none\n    storage: copy\n", `suite.yaml:5: scenario: storage: copy moves the disk with the VM`},
		{"host with storage", "  - mode: host\n    storage: copy\n", `suite.yaml:5: scenario: storage applies to runs in a VM`},
		{"same method twice", "  - {mode: precopy, storage: copy}\n  - {mode: precopy, storage: copy, to: /srv/b}\n", `suite.yaml:5: scenario "precopy none copy" is the same case as the one on line 4`},
	}
	for _, tc := range invalid {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("suite.yaml", []byte(head+tc.scenarios), testRegistry())
			var es Errors
			if !errors.As(err, &es) || len(es) != 1 || !strings.HasPrefix(es[0].Error(), tc.want) {
				t.Errorf("error %v, want one starting %q", err, tc.want)
			}
		})
	}
}

// TestScenarioHypervisor: hypervisor: libvirt with its daemons' URIs, and the combinations
// refused at the line that makes them impossible.
func TestScenarioHypervisor(t *testing.T) {
	const head = "targets: [mem://]\nworkloads: [oltp]\nscenarios:\n"
	s, err := Parse("suite.yaml", []byte(head+"  - mode: precopy\n  - mode: precopy\n    security: tls\n    hypervisor: libvirt\n    source_uri: testbed:libvirt-1\n    dest_uri: qemu+tcp://hv2/system\n    domain: web1\n"), testRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if q, l := s.Scenarios[0], s.Scenarios[1]; q.Libvirt() || !l.Libvirt() || l.SourceURI != "testbed:libvirt-1" || l.DestURI != "qemu+tcp://hv2/system" || l.Domain != "web1" {
		t.Errorf("scenarios %+v %+v", q, l)
	}
	if n := s.Scenarios[1].Name(); n != "precopy tls libvirt" {
		t.Errorf("name %q", n)
	}
	for _, tc := range []struct{ name, scenarios, want string }{
		{"bad hypervisor", "  - {mode: precopy, hypervisor: xen}\n", `suite.yaml:4: hypervisor: "xen": must be one of qemu, libvirt`},
		{"libvirt without URIs", "  - mode: precopy\n    hypervisor: libvirt\n    source_uri: qemu:///system\n", `suite.yaml:5: scenario: hypervisor: libvirt needs source_uri and dest_uri`},
		{"URIs without libvirt", "  - {mode: precopy, source_uri: 'qemu:///system'}\n", `suite.yaml:4: scenario: source_uri, dest_uri and domain name libvirt daemons`},
		{"libvirt with the memory check", "  - {mode: precopy, hypervisor: libvirt, source_uri: a, dest_uri: b, check_memory: true}\n", `suite.yaml:4: scenario: check_memory reads guest RAM over QMP`},
		{"host with hypervisor", "  - {mode: host, hypervisor: libvirt}\n", `suite.yaml:4: scenario: hypervisor applies to runs in a VM`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("suite.yaml", []byte(head+tc.scenarios), testRegistry())
			var es Errors
			if !errors.As(err, &es) || len(es) != 1 || !strings.HasPrefix(es[0].Error(), tc.want) {
				t.Errorf("error %v, want one starting %q", err, tc.want)
			}
		})
	}
}

// TestScenarioLibvirtStorage: under hypervisor: libvirt, storage: mirror (libvirt's own
// disk copy) with a file target and to: file:///PATH; the other methods and what mirror
// cannot do there refused at the key's line, as migrate refuses the flags
// (lvsupport's rules, spelled as keys).
func TestScenarioLibvirtStorage(t *testing.T) {
	const lv = "  - mode: precopy\n    hypervisor: libvirt\n    source_uri: testbed:libvirt-1\n    dest_uri: testbed:libvirt-2\n"
	s, err := Parse("suite.yaml", []byte("targets: ['file:///var/tmp', testbed:nfs-ganesha]\nworkloads: [oltp]\nscenarios:\n"+
		lv+"    storage: mirror\n    to: file:///srv/b\n    access: native\n"+lv+"    storage: shared\n"), testRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if m := s.Scenarios[0]; m.Storage != "mirror" || m.To != "file:///srv/b" || m.MirrorCopyMode != "background" || m.Name() != "precopy none mirror libvirt" {
		t.Errorf("mirror scenario %+v, named %q", m, m.Name())
	}
	if n := s.Scenarios[1].Name(); n != "precopy none libvirt" {
		t.Errorf("shared scenario named %q", n)
	}
	const file = "targets: ['file:///var/tmp']\nworkloads: [oltp]\nscenarios:\n"
	for _, tc := range []struct{ name, text, want string }{
		{"copy", file + lv + "    storage: copy\n", `suite.yaml:8: scenario: storage: copy: libvirt has no equivalent (it copies a disk only while the guest runs, as storage: mirror)`},
		{"two-phase", file + lv + "    storage: two-phase\n", `suite.yaml:8: scenario: storage: two-phase: libvirt has no equivalent`},
		{"pull", file + lv + "    storage: pull\n", `suite.yaml:8: scenario: storage: pull: libvirt has no equivalent`},
		{"mirror of a domain", file + lv + "    domain: web1\n    storage: mirror\n", `suite.yaml:5: scenario: storage: mirror with domain: copying an existing domain's disks`},
		{"mirror of a network target", "targets: ['file:///var/tmp', 'nfs://h/x']\nworkloads: [oltp]\nscenarios:\n" + lv + "    storage: mirror\n",
			`suite.yaml:5: scenario: storage: mirror under libvirt copies a local image file, not nfs://h/x: give target file://DIR`},
		{"mirror over nbd", file + lv + "    storage: mirror\n    access: nbd\n", `suite.yaml:5: scenario: storage: mirror under libvirt copies a local image file, which access: nbd serves over NBD`},
		{"mirror to a backend", file + lv + "    storage: mirror\n    to: /srv/b\n", `suite.yaml:9: scenario: to: /srv/b: under libvirt the disk is copied into a file on the destination's host`},
		{"mirror without migration", file + strings.Replace(lv, "precopy", "none", 1) + "    storage: mirror\n", `suite.yaml:5: scenario: storage: mirror with mode: none moves only the disk`},
		{"mirror over a link", file + lv + "    storage: mirror\n    link: lan\n", `suite.yaml:5: scenario: storage: mirror under libvirt: the disk goes straight`},
		{"mirror over a disk link", file + lv + "    storage: mirror\n    disk_link: wan\n", `suite.yaml:5: scenario: storage: mirror under libvirt: the disk goes straight`},
		{"mirror write-blocking", file + lv + "    storage: mirror\n    mirror_copy_mode: write-blocking\n", `suite.yaml:9: scenario: mirror_copy_mode: write-blocking is not mapped to libvirt`},
		{"mirror with the memory check", file + lv + "    storage: mirror\n    check_memory: true\n", `suite.yaml:5: scenario: check_memory reads guest RAM over QMP`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("suite.yaml", []byte(tc.text), testRegistry())
			var es Errors
			if !errors.As(err, &es) || len(es) != 1 || !strings.HasPrefix(es[0].Error(), tc.want) {
				t.Errorf("error %v, want one starting %q", err, tc.want)
			}
		})
	}
}
