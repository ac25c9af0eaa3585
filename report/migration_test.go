package report

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vmstorbench/vmstorbench/results"
	"github.com/vmstorbench/vmstorbench/workloads"
)

// migDoc is a hand-built result document of a run inside a migrating VM: storage method,
// link, mode and the figures that vary; the rest is fixed.
type migDoc struct {
	target, mode, security, link, storage string
	downtimeMS, stallMS, disruptionMS     float64
	migrationMS                           float64
	ramB, diskB                           int64
	cpuS                                  float64
	mismatches, pages, blocks             int64
	outcome                               string
}

func (d migDoc) run(i int) *results.Run {
	if d.mode == "" {
		d.mode = "precopy"
	}
	if d.security == "" {
		d.security = "none"
	}
	if d.outcome == "" {
		d.outcome = "completed"
	}
	r := &results.Run{
		ID: fmt.Sprintf("mig%05d", i), Start: time.Date(2026, 12, 6, 10, 0, i, 0, time.UTC), Complete: true,
		Labels:   map[string]string{results.TargetLabel: d.target},
		Target:   results.Target{URL: "file:///var/tmp", Backend: "file"},
		Workload: workloads.Workload{Name: "oltp", RW: "randrw", RWMixRead: 70, IODepth: 16, NumJobs: 1, BS: [2]workloads.BlockSize{workloads.Fixed(8192), workloads.Fixed(8192)}},
		Read:     &results.DirStats{IOs: 1000, IOPS: 900, BWBps: 7.4e6, Lat: lat(1_000_000, 900_000, 5_000_000, 9_000_000, 20_000_000)},
	}
	m := &results.Migration{Mode: d.mode, Security: d.security, Outcome: d.outcome, Storage: d.storage,
		QEMUDowntimeMS: d.downtimeMS, PauseMS: d.downtimeMS + 20, LongestStallMS: d.stallMS, TotalTimeMS: d.migrationMS * 0.8,
		SetupTimeMS: 12, MigrationTimeMS: d.migrationMS, DisruptionMS: d.disruptionMS, TransferredB: d.ramB,
		Traffic: []results.LinkTraffic{{Link: "ram", UpB: d.ramB}},
		Cost:    &results.MigrationCost{TotalCPUS: d.cpuS, WattsPerCore: 3.5, EnergyEstimateJ: d.cpuS * 3.5},
		Integrity: &results.MigrationIntegrity{Where: "destination",
			ReadBack: &results.Verify{Algorithm: "crc32c", Checked: 4096, Mismatches: d.mismatches}}}
	if d.link != "" {
		m.Link = &results.MigrationLink{Preset: d.link}
	}
	if d.storage != "" && d.storage != "shared" {
		m.Traffic = append(m.Traffic, results.LinkTraffic{Link: "disk", UpB: d.diskB})
		m.DiskTransferredB = d.diskB
		m.ImageCheck = &results.ImageCheck{When: "switchover", BlockSize: 4096, Blocks: 65536, DifferingBlocks: d.blocks}
	}
	if d.pages >= 0 && d.mode != "postcopy" {
		m.Memory = &results.MemoryCheck{PageSize: 4096, Pages: 65536, DifferingPages: d.pages}
	}
	r.Migration = m
	return r
}

// veeRuns are the wide-area suite's matrix, three repeats each: copy, two-phase, mirror
// and pull over LAN and WAN, with the paper's shape (copy's disruption is the copy, pull's
// the shortest and its migration the longest; WAN ten times LAN).
func veeRuns() []*results.Run {
	type fig struct{ mig, disr, disk float64 }
	shape := map[string]fig{
		"copy": {4000, 3900, 268e6}, "two-phase": {5000, 600, 272e6}, "mirror": {3000, 300, 90e6}, "pull": {9000, 150, 268e6},
	}
	var runs []*results.Run
	i := 0
	for rep := 0; rep < 3; rep++ {
		for _, link := range []string{"lan", "wan"} {
			scale := map[string]float64{"lan": 1, "wan": 10}[link]
			for _, method := range []string{"copy", "two-phase", "mirror", "pull"} {
				f := shape[method]
				jitter := 1 + 0.01*float64(rep) // medians are the middle repeat
				d := migDoc{target: "local", link: link, storage: method, downtimeMS: 30 * jitter, stallMS: f.disr * scale * jitter * 1.1,
					disruptionMS: f.disr * scale * jitter, migrationMS: f.mig * scale * jitter, ramB: 66e6, diskB: int64(f.disk),
					cpuS: 2 * jitter, pages: 0}
				i++
				runs = append(runs, d.run(i))
			}
		}
	}
	return runs
}

// TestMigrationTable renders the "Migrations" table in every format from hand-built
// documents: a row per target × mode × security × link × storage method, figures with
// per-column units, the integrity column's four kinds.
func TestMigrationTable(t *testing.T) {
	docs := []migDoc{
		{target: "nfs", security: "tls", link: "lan", storage: "shared", downtimeMS: 25, stallMS: 140, disruptionMS: 60, migrationMS: 2100, ramB: 66e6, cpuS: 1.2},
		{target: "nfs", security: "tls", link: "lan", storage: "shared", downtimeMS: 35, stallMS: 160, disruptionMS: 70, migrationMS: 2300, ramB: 67e6, cpuS: 1.4},
		{target: "nfs", security: "tls", link: "lan", storage: "shared", downtimeMS: 30, stallMS: 150, disruptionMS: 65, migrationMS: 2200, ramB: 66.5e6, cpuS: 1.3, mismatches: 3},
		{target: "smb", mode: "stopcopy", link: "wan", storage: "shared", downtimeMS: 4, stallMS: 5300, disruptionMS: 5250, migrationMS: 5000, ramB: 64e6, cpuS: 0.9, pages: 7},
		{target: "smb", link: "wan", storage: "copy", downtimeMS: 40, stallMS: 28600, disruptionMS: 28550, migrationMS: 28600, ramB: 67e6, diskB: 268e6, cpuS: 3.2, blocks: 2, pages: -1},
		{target: "smb", mode: "postcopy", storage: "mirror", downtimeMS: 50, outcome: "cancelled", ramB: 10e6, diskB: 20e6, cpuS: 0.5},
	}
	var runs []*results.Run
	for i, d := range docs {
		runs = append(runs, d.run(i))
	}
	// A host run beside them has no row in the migration table.
	runs = append(runs, sampleRuns()[0])

	for _, tc := range []struct {
		format string
		want   []string
	}{
		{"table", []string{"Migrations\n", "QEMU downtime (ms)", "Longest stall (ms)", "Disk link (MB)", "CPU (s)", "Energy (J)",
			"│ nfs    │ precopy  │ tls      │ lan  │ shared  │    3 │", "30.0 ±17%", "2200 ±5%", "3 mismatches",
			"│ smb    │ stopcopy │ none     │ wan  │ shared  │    1 │", "7 differing pages",
			"│ smb    │ precopy  │ none     │ wan  │ copy    │    1 │", "28600", "268", "2 differing blocks",
			"│ smb    │ postcopy │ none     │ -    │ mirror  │    1 │", "Medians over the complete runs, ± half the min–max range."}},
		{"md", []string{"Migrations**", "| nfs    | precopy  | tls      | lan  | shared  |    3 |", " 2200 ±5% |", "3 mismatches", "7 differing pages", "2 differing blocks"}},
	} {
		t.Run(tc.format, func(t *testing.T) {
			var buf bytes.Buffer
			if err := Render(&buf, runs, tc.format); err != nil {
				t.Fatal(err)
			}
			out := buf.String()
			i := strings.Index(out, "Migrations")
			if i < 0 {
				t.Fatalf("no migration table:\n%s", out)
			}
			out = out[i:]
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("%s output lacks %q:\n%s", tc.format, w, out)
				}
			}
			if strings.Contains(out, "VEE") {
				t.Errorf("a VEE layout without several storage methods in one group:\n%s", out)
			}
			// The cancelled migration has no downtime or stall; its bytes still show.
			for _, l := range strings.Split(out, "\n") {
				if strings.Contains(l, "postcopy") && (strings.Count(l, " - ") < 5 || !strings.Contains(l, "20.0")) {
					t.Errorf("cancelled row: %q", l)
				}
			}
			// One row per scenario: the repeats of nfs are one row.
			if n := strings.Count(out, "nfs"); n != 1 {
				t.Errorf("nfs named %d times", n)
			}
		})
	}

	t.Run("csv", func(t *testing.T) {
		var buf bytes.Buffer
		if err := Render(&buf, runs, "csv"); err != nil {
			t.Fatal(err)
		}
		recs, err := csv.NewReader(&buf).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		col := map[string]int{}
		for i, h := range recs[0] {
			col[h] = i
		}
		if len(recs) != len(runs)+1 || !slices.Equal(recs[0][:len(csvHeader)], csvHeader) {
			t.Fatalf("records: %q", recs)
		}
		for _, c := range []struct {
			row         int
			column, val string
		}{
			{1, "storage", "shared"}, {1, "migration_security", "tls"}, {1, "link", "lan"}, {1, "downtime_ns", "25000000"},
			{1, "stall_ns", "140000000"}, {1, "migration_time_ns", "2100000000"}, {1, "ram_bytes", "66000000"}, {1, "disk_bytes", ""},
			{1, "cpu_s", "1.2"}, {1, "joules", "4.2"}, {1, "read_back_mismatches", "0"}, {1, "differing_pages", "0"}, {1, "differing_blocks", ""},
			{3, "read_back_mismatches", "3"},
			{5, "storage", "copy"}, {5, "disk_bytes", "268000000"}, {5, "wire_bytes", "335000000"}, {5, "differing_blocks", "2"}, {5, "differing_pages", ""},
			{6, "migration_outcome", "cancelled"}, {6, "downtime_ns", ""}, {6, "link", ""},
			{7, "run_id", "aaaa1111"}, {7, "storage", ""}, {7, "downtime_ns", ""},
		} {
			if got := recs[c.row][col[c.column]]; got != c.val {
				t.Errorf("row %d %s = %q, want %q", c.row, c.column, got, c.val)
			}
		}
	})

	t.Run("narrow terminal", func(t *testing.T) {
		migTable := func(width int) string {
			var buf bytes.Buffer
			if err := RenderTable(&buf, runs, "table", TableOptions{Width: width}); err != nil {
				t.Fatal(err)
			}
			out := buf.String()
			i := strings.Index(out, "\nMigrations\n")
			if i < 0 {
				t.Fatalf("no migration table:\n%s", out)
			}
			return out[i:]
		}
		// The width of the box-drawn lines (the note under the table is one long line).
		tableWidth := func(s string) int {
			w := 0
			for _, l := range strings.Split(s, "\n") {
				if strings.ContainsAny(l, "│┌└├") {
					w = max(w, maxLineWidth(l))
				}
			}
			return w
		}
		full := tableWidth(migTable(0))
		if full < 200 {
			t.Fatalf("the full table is %d wide", full)
		}
		for _, tc := range []struct {
			width   int
			dropped string
		}{
			{full, ""}, {full - 1, "Energy (J))"}, {full - 25, "Energy (J), Setup (ms))"}, {100, "Energy (J), Setup (ms), Total (ms), Pause (ms))"},
		} {
			mig := migTable(tc.width)
			i := strings.Index(mig, "(left out to fit the terminal: ")
			switch {
			case tc.dropped == "" && i >= 0, tc.dropped != "" && !strings.Contains(mig, "(left out to fit the terminal: "+tc.dropped):
				t.Errorf("width %d: want %q left out:\n%s", tc.width, tc.dropped, mig)
			case tc.width > 150 && tableWidth(mig) > tc.width:
				t.Errorf("width %d: table %d wide", tc.width, tableWidth(mig))
			}
			if !strings.Contains(mig, "QEMU downtime") || !strings.Contains(mig, "Integrity") {
				t.Errorf("width %d: essential columns left out:\n%s", tc.width, mig)
			}
		}
	})

	t.Run("host runs only", func(t *testing.T) {
		for _, f := range Formats {
			var buf bytes.Buffer
			if err := Render(&buf, sampleRuns(), f); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(buf.String(), "Migrations") || strings.Contains(buf.String(), "downtime") {
				t.Errorf("%s: migration output without migration runs:\n%s", f, buf.String())
			}
		}
	})
}

// TestVEELayout renders the wide-area matrix in the paper's layout in every format: rows
// LAN/WAN × migration/disruption time, then bytes on the wire and energy, a column per
// method in the paper's order with its names, medians.
func TestVEELayout(t *testing.T) {
	runs := veeRuns()
	// Shuffle the order the methods ran in: the columns keep the paper's order.
	slices.Reverse(runs)
	grids := veeGrids(results.Group(runs), targetName)
	if len(grids) != 1 {
		t.Fatalf("%d VEE layouts, want 1", len(grids))
	}
	g := grids[0]
	wantHeader := []string{"", `copy ("scp")`, `two-phase ("rsync")`, `mirror ("live")`, "pull"}
	if !slices.Equal(g.Header, wantHeader) {
		t.Errorf("header %q, want %q", g.Header, wantHeader)
	}
	want := [][]string{
		{"LAN migration time (s)", "4.04", "5.05", "3.03", "9.09"},
		{"LAN disruption time (s)", "3.94", "0.61", "0.30", "0.15"},
		{"WAN migration time (s)", "40.4", "50.5", "30.3", "90.9"},
		{"WAN disruption time (s)", "39.4", "6.06", "3.03", "1.51"},
		{"LAN bytes on the wire (MB)", "334", "338", "156", "334"},
		{"WAN bytes on the wire (MB)", "334", "338", "156", "334"},
		{"LAN energy (J)", "7.07", "7.07", "7.07", "7.07"},
		{"WAN energy (J)", "7.07", "7.07", "7.07", "7.07"},
	}
	if got := g.texts(); !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("VEE rows:\n%q\nwant\n%q", got, want)
	}
	if c := g.Rows[0][1]; c.Title != "median of 3 runs; min 4.00, max 4.08" {
		t.Errorf("hover of a cell: %q", c.Title)
	}

	for _, f := range Formats {
		var buf bytes.Buffer
		if err := Render(&buf, runs, f); err != nil {
			t.Fatal(err)
		}
		out := buf.String()
		if f == "csv" {
			continue
		}
		for _, w := range []string{"LAN disruption time (s)", "WAN migration time (s)", "two-phase (\"rsync\")", "39.4"} {
			if !strings.Contains(out, w) {
				t.Errorf("%s lacks %q:\n%s", f, w, out)
			}
		}
		if !strings.Contains(out, "VEE '07 layout (Bradford et al., Table 2): local, oltp, precopy, security none") {
			t.Errorf("%s: no VEE title:\n%s", f, out)
		}
	}
	// CSV: one table, the runs' records only (no layout block appended), every record as
	// wide as the header, and the figures the layout shows there as raw numbers.
	var buf bytes.Buffer
	if err := Render(&buf, runs, "csv"); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "\n\n") || strings.Contains(buf.String(), "VEE") {
		t.Errorf("CSV is not one table:\n%s", buf.String())
	}
	recs, err := csv.NewReader(&buf).ReadAll() // fails on a record of another width
	if err != nil || len(recs) != len(runs)+1 {
		t.Fatalf("CSV: %d records, %v", len(recs), err)
	}
	col := slices.Index(recs[0], "disruption_ns")
	if col < 0 || recs[1][col] == "" {
		t.Errorf("CSV header %q: no disruption_ns figures", recs[0])
	}

	// One method is no comparison: no layout.
	var mirrorOnly []*results.Run
	for _, r := range runs {
		if r.Migration.Storage == "mirror" {
			mirrorOnly = append(mirrorOnly, r)
		}
	}
	if g := veeGrids(results.Group(mirrorOnly), targetName); len(g) != 0 {
		t.Errorf("VEE layout of one method: %q", g[0].texts())
	}
	// A method missing over one link shows "-" there.
	var noWANPull []*results.Run
	for _, r := range runs {
		if r.Migration.Storage != "pull" || r.Migration.Link.Preset != "wan" {
			noWANPull = append(noWANPull, r)
		}
	}
	g = veeGrids(results.Group(noWANPull), targetName)[0]
	if got := g.texts()[2]; got[4] != "-" || got[1] != "40.4" {
		t.Errorf("WAN row without pull: %q", got)
	}
}

// TestMigrationTableReplication shows the storage link's and a replicated disk's bytes
// beside the RAM link's, and leaves both columns out of tables that have neither.
func TestMigrationTableReplication(t *testing.T) {
	shared := migDoc{target: "iscsi", link: "wan", storage: "shared", downtimeMS: 30, stallMS: 900, migrationMS: 6000, ramB: 68e6, cpuS: 1}.run(1)
	shared.Migration.Traffic = append(shared.Migration.Traffic, results.LinkTraffic{Link: "storage", UpB: 40e6, DownB: 12e6})
	drbd := migDoc{target: "drbd-c", link: "wan", storage: "shared", downtimeMS: 60, stallMS: 700, migrationMS: 6200, ramB: 68e6, cpuS: 1}.run(2)
	drbd.Migration.Replication = &results.MigrationReplication{Kind: "drbd", Protocol: "C", BeforeB: 1e6, DuringB: 3.5e6, AfterB: 2e6}
	table := func(runs ...*results.Run) string {
		var buf bytes.Buffer
		if err := RenderTable(&buf, runs, "table", TableOptions{}); err != nil {
			t.Fatal(err)
		}
		return buf.String()
	}
	out := table(shared, drbd)
	for _, w := range []string{"Storage link (MB)", "Replication (MB)", "52.0", "3.50"} {
		if !strings.Contains(out, w) {
			t.Errorf("lacks %q:\n%s", w, out)
		}
	}
	plain := migDoc{target: "nfs", link: "lan", storage: "shared", downtimeMS: 30, ramB: 66e6, cpuS: 1}.run(3)
	if out := table(plain); strings.Contains(out, "Storage link") || strings.Contains(out, "Replication") {
		t.Errorf("columns without figures:\n%s", out)
	}
}
