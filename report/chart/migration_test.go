package chart

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/vmstorbench/vmstorbench/results"
)

// TestMigrationBars: a panel per target, a pair of bars (QEMU downtime, longest stall) per
// scenario with whiskers over repeats; nothing to draw without migrations.
func TestMigrationBars(t *testing.T) {
	var runs []*results.Run
	for i, c := range []struct {
		target, mode, storage string
		downtime, stall       float64
	}{
		{"nfs-ganesha", "precopy", "", 40, 120}, {"nfs-ganesha", "precopy", "", 50, 150}, {"nfs-ganesha", "precopy", "", 45, 130},
		{"nfs-ganesha", "stopcopy", "", 4, 850},
		{"smb", "precopy", "", 60, 200},
		{"smb", "precopy", "mirror", 250, 700},
	} {
		r := migrationRun(t, c.mode)
		r.ID += string(rune('a' + i))
		r.Labels = map[string]string{results.TargetLabel: c.target}
		m := *r.Migration
		m.Storage, m.QEMUDowntimeMS, m.LongestStallMS = c.storage, c.downtime, c.stall
		r.Migration = &m
		runs = append(runs, r)
	}
	cancelled := migrationRun(t, "postcopy")
	cancelled.Labels = map[string]string{results.TargetLabel: "smb"}
	cm := *cancelled.Migration
	cm.Outcome = "cancelled"
	cancelled.Migration = &cm
	runs = append(runs, cancelled)

	_, panels, err := migrationPanels(results.Group(runs))
	if err != nil {
		t.Fatal(err)
	}
	if len(panels) != 2 || panels[0].target != "nfs-ganesha" || panels[1].target != "smb" {
		t.Fatalf("panels: %+v", panels)
	}
	// nfs-ganesha: two scenarios; smb: three, one cancelled (no figures).
	var labels []string
	for _, p := range panels {
		for _, r := range p.rows {
			labels = append(labels, fmt.Sprintf("%s %s %v", p.target, r.label, r.oks))
		}
	}
	want := []string{"nfs-ganesha precopy tls lan [true true]", "nfs-ganesha stopcopy tls lan [true true]",
		"smb precopy tls lan [true true]", "smb precopy tls lan mirror [true true]", "smb postcopy tls lan [false false]"}
	if !slices.Equal(labels, want) {
		t.Errorf("rows %q, want %q", labels, want)
	}
	if s := panels[0].rows[0].sums; s[0].Median != 45e6 || s[0].Min != 40e6 || s[0].Max != 50e6 || s[1].Median != 130e6 || s[0].N != 3 {
		t.Errorf("first row %+v, want downtime median 45 ms (40–50) and stall 130 ms", s)
	}
	c, err := MigrationBars(results.Group(runs))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.panels()) != 2 {
		t.Errorf("%d panels", len(c.panels()))
	}
	var svg bytes.Buffer
	if err := c.Render(&svg, "svg"); err != nil {
		t.Fatal(err)
	}
	out := svg.String()
	for _, want := range []string{"precopy tls lan", "stopcopy tls lan", "precopy tls lan mirror", "QEMU downtime", "longest workload stall",
		"edian of 1–3 runs, whiskers min–max", "no completed migration", "850", "45"} {
		if !strings.Contains(out, want) && !strings.Contains(c.Title, want) {
			t.Errorf("chart lacks %q", want)
		}
	}
	if c.Name != "migration-downtime-stall" || !strings.Contains(c.Title, "Migration downtime") {
		t.Errorf("chart %q %q", c.Name, c.Title)
	}

	// Without migrations there is nothing to draw.
	plain := loadFixture(t, "mem-randrw.json")
	if _, err := MigrationBars(results.Group([]*results.Run{plain})); !errors.Is(err, ErrNoData) {
		t.Errorf("host runs: %v, want ErrNoData", err)
	}
	if _, err := MigrationBars(results.Group([]*results.Run{cancelled})); !errors.Is(err, ErrNoData) {
		t.Errorf("cancelled only: %v, want ErrNoData", err)
	}
}
