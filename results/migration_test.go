package results

import (
	"strings"
	"testing"
)

// migRun is a complete randread run inside a migrating VM: storage method, link and the
// QEMU downtime in ms; the other figures follow from it.
func migRun(storage, link string, downtimeMS float64) *Run {
	r := testRun("file:///var/tmp", 1000)
	r.Migration = &Migration{Mode: "precopy", Security: "none", Outcome: "completed", Storage: storage,
		Link: &MigrationLink{Preset: link}, QEMUDowntimeMS: downtimeMS, PauseMS: downtimeMS + 10, LongestStallMS: 3 * downtimeMS,
		TotalTimeMS: 2000, SetupTimeMS: 15, MigrationTimeMS: 2500, DisruptionMS: downtimeMS + 5, TransferredB: 60e6,
		Traffic:          []LinkTraffic{{Link: "ram", UpB: 66e6, DownB: 1e5}, {Link: "disk", UpB: 268e6, DownB: 2e5}},
		DiskTransferredB: 268.2e6,
		Cost:             &MigrationCost{TotalCPUS: 1.5, WattsPerCore: 3.5, EnergyEstimateJ: 5.25}}
	return r
}

func migRuns(storage, link string, downtimes ...float64) []*Run {
	var out []*Run
	for _, d := range downtimes {
		out = append(out, migRun(storage, link, d))
	}
	return out
}

func TestMigrationMetrics(t *testing.T) {
	r := migRun("copy", "lan", 40)
	old := migRun("", "", 30) // a result older than the storage fields
	old.Migration.Traffic, old.Migration.MigrationTimeMS, old.Migration.DiskTransferredB, old.Migration.Cost = nil, 0, 0, nil
	cancelled := migRun("mirror", "wan", 50)
	cancelled.Migration.Outcome = "cancelled"
	for _, c := range []struct {
		run  *Run
		name string
		want float64 // base units; -1: no value
	}{
		{r, "downtime", 40e6}, {r, "pause", 50e6}, {r, "stall", 120e6}, {r, "total", 2000e6}, {r, "setup", 15e6},
		{r, "disruption", 45e6}, {r, "migration_time", 2500e6}, {r, "ram_bytes", 66.1e6}, {r, "disk_bytes", 268.2e6},
		{r, "wire_bytes", 334.3e6}, {r, "cpu_s", 1.5}, {r, "joules", 5.25}, {r, "qemu_downtime", 40e6},
		{old, "downtime", 30e6}, {old, "ram_bytes", 60e6}, {old, "disk_bytes", -1}, {old, "disruption", -1},
		{old, "migration_time", -1}, {old, "cpu_s", -1},
		{cancelled, "downtime", -1}, {cancelled, "stall", -1}, {cancelled, "migration_time", -1}, {cancelled, "ram_bytes", 66.1e6},
		{testRun("mem://", 10), "downtime", -1},
	} {
		m, err := MetricByName(c.name)
		if err != nil {
			t.Fatal(err)
		}
		if !m.Migration {
			t.Errorf("%s: not a migration metric", c.name)
		}
		v, ok := m.OfRun(c.run, "read")
		if c.want < 0 {
			if ok {
				t.Errorf("%s of %s: %v, want none", c.name, Scenario(c.run), v)
			}
			continue
		}
		if !ok || v < c.want*0.9999 || v > c.want*1.0001 {
			t.Errorf("%s of %s: %v (%v), want %v", c.name, Scenario(c.run), v, ok, c.want)
		}
	}
	if _, ok := metricOf(t, "iops").OfRun(r, ""); ok {
		t.Error("iops without a direction")
	}
	if v, ok := metricOf(t, "iops").OfRun(r, "read"); !ok || v != 1000 {
		t.Errorf("read iops %v", v)
	}
}

func metricOf(t *testing.T, name string) Metric {
	t.Helper()
	m, err := MetricByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestScenarioStorage(t *testing.T) {
	for _, c := range []struct {
		storage, copyMode, link, want string
	}{
		{"", "", "lan", "precopy none lan"},
		{"shared", "", "", "precopy none"},
		{"copy", "", "wan", "precopy none wan copy"},
		{"mirror", "background", "lan", "precopy none lan mirror"},
		{"mirror", "write-blocking", "wan", "precopy none wan mirror write-blocking"},
	} {
		r := migRun(c.storage, c.link, 10)
		r.Migration.MirrorCopyMode = c.copyMode
		if c.link == "" {
			r.Migration.Link = nil
		}
		if got := Scenario(r); got != c.want {
			t.Errorf("Scenario(%s/%s/%s) = %q, want %q", c.storage, c.copyMode, c.link, got, c.want)
		}
	}
}

func TestParseMigrationThresholds(t *testing.T) {
	for _, c := range []struct{ in, want, err string }{
		{in: "downtime>+20%", want: "downtime>+20%"},
		{in: "migration.stall>+50%", want: "stall>+50%"},
		{in: "joules>+10%,iops<-5%", want: "joules>+10%,iops<-5%"},
		{in: "read.downtime>+20%", err: "downtime is a figure of the migration, not of reads"},
		{in: "migration.iops<-5%", err: "iops is not a figure of the migration"},
		{in: "dowtime>+20%", err: `unknown metric "dowtime"`},
	} {
		got, err := ParseThresholds(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: error %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", c.in, err)
		}
		var s []string
		for _, th := range got {
			s = append(s, th.String())
		}
		if strings.Join(s, ",") != c.want {
			t.Errorf("%s: %v", c.in, s)
		}
	}
}

// TestCompareDowntime: a downtime regression fails --fail-on 'downtime>+20%'; the same
// median change within the noise of the repeats does not; the I/O metrics are compared
// beside it.
func TestCompareDowntime(t *testing.T) {
	for _, c := range []struct {
		name       string
		base, cand []float64
		noise      Noise
		regressed  bool
	}{
		{"3v3 apart: regression", []float64{40, 42, 38}, []float64{60, 62, 58}, Significant, true},
		{"3v3 overlapping: noise", []float64{40, 20, 70}, []float64{60, 30, 80}, WithinNoise, false},
		{"5v5 mann-whitney: regression", []float64{40, 41, 39, 42, 38}, []float64{60, 61, 59, 62, 58}, Significant, true},
		{"5v5 mann-whitney: noise", []float64{40, 20, 70, 30, 55}, []float64{60, 25, 80, 35, 50}, WithinNoise, false},
		{"better", []float64{40, 42, 38}, []float64{20, 21, 19}, Significant, false},
		{"single runs beyond the threshold", []float64{40}, []float64{50}, NoEstimate, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			th, err := ParseThresholds("downtime>+20%")
			if err != nil {
				t.Fatal(err)
			}
			cmp, err := Compare(migRuns("mirror", "lan", c.base...), migRuns("mirror", "lan", c.cand...), CompareOptions{Thresholds: th})
			if err != nil {
				t.Fatal(err)
			}
			ch := findChange(t, cmp, MigrationDir, "downtime")
			if ch.Noise != c.noise || cmp.Regressed() != c.regressed {
				t.Errorf("noise %v (%s), regressed %v; want %v, %v; failures %+v", ch.Noise, ch.Verdict(), cmp.Regressed(), c.noise, c.regressed, cmp.Failures())
			}
			if len(cmp.Unused) > 0 {
				t.Errorf("unused thresholds %v", cmp.Unused)
			}
			if c.regressed && !strings.Contains(cmp.Failures()[0].Check.Reason, "migration downtime changed +") {
				t.Errorf("reason %q", cmp.Failures()[0].Check.Reason)
			}
			findChange(t, cmp, "read", "iops")
			findChange(t, cmp, MigrationDir, "joules")
		})
	}
	// Host runs have no migration figures: a downtime threshold checks nothing there.
	th, _ := ParseThresholds("downtime>+20%")
	cmp, err := Compare(testRuns("mem://", 1000), testRuns("mem://", 900), CompareOptions{Thresholds: th})
	if err != nil {
		t.Fatal(err)
	}
	if len(cmp.Unused) != 1 || cmp.Regressed() {
		t.Errorf("host runs: unused %v, regressed %v", cmp.Unused, cmp.Regressed())
	}
	// Two storage methods are two cases.
	if n := len(Group(append(migRuns("copy", "lan", 1), migRuns("mirror", "lan", 1)...))); n != 2 {
		t.Errorf("copy and mirror grouped into %d cases", n)
	}
}
