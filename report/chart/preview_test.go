package chart

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/vmstorbench/vmstorbench/results"
)

// Look at the charts, not only at the assertions: this writes the demo's set as PNG and SVG
// into a directory:
//
//	go test ./report/chart -run TestPreview -preview /tmp/charts
var preview = flag.String("preview", "", "write the demo's charts as PNG and SVG into this directory")

func TestPreview(t *testing.T) {
	if *preview == "" {
		t.Skip("no -preview directory")
	}
	runs := realisticDemo(t, 2)
	runs = append(runs, migrationRun(t, "precopy"), migrationRun(t, "postcopy"))
	charts, err := All(runs)
	if err != nil {
		t.Fatal(err)
	}
	one, err := Timeline(singlePoint(t))
	if err != nil {
		t.Fatal(err)
	}
	one.Name = "timeline-single-interval"
	m, err := results.MetricByName("iops")
	if err != nil {
		t.Fatal(err)
	}
	multi, err := Bars(results.Group(runs), "read", m)
	if err != nil {
		t.Fatal(err)
	}
	multi.Name = "bars-several-workloads"
	charts = append(charts, one, multi)
	if err := os.MkdirAll(*preview, 0o755); err != nil {
		t.Fatal(err)
	}
	// The documents too, for `vmstorbench report DIR/runs --html`.
	for _, r := range runs {
		doc := *r
		doc.ID = results.NewID() // file names hold 8 characters of it
		if _, err := results.Save(filepath.Join(*preview, "runs"), &doc); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range charts {
		for _, f := range []string{"png", "svg"} {
			if err := writeFile(filepath.Join(*preview, c.Name+"."+f), c, f); err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("%s: %s", c.Name, c.Title)
	}
}
