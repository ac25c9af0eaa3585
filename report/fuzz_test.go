package report

import (
	"encoding/json"
	"io"
	"testing"
	"time"

	"github.com/vmstorbench/vmstorbench/report/chart"
	"github.com/vmstorbench/vmstorbench/results"
)

// FuzzRender checks what `report` and `compare` do with two result documents from anywhere:
// tables in every format, the HTML page, the charts' data and the comparison must never
// panic on hostile values (NaN, negative counts, huge numbers, missing fields, bad
// histograms). The charts are built but not drawn (drawing is gonum's, and slow), and the
// page gets none. `go test` runs the seeds (the engine's own documents) and
// testdata/fuzz/FuzzRender; `go test -run '^$' -fuzz FuzzRender ./report` searches
// further.
func FuzzRender(f *testing.F) {
	runs, err := makeEngineRuns()
	if err != nil {
		f.Fatal(err)
	}
	docs := make([][]byte, len(runs))
	for i, r := range runs {
		r.Schema = results.SchemaVersion
		if docs[i], err = json.Marshal(r); err != nil {
			f.Fatal(err)
		}
	}
	for i := 0; i+1 < len(docs); i += 2 {
		f.Add(docs[i], docs[i+1])
	}
	f.Add(docs[0], docs[0])
	f.Fuzz(func(t *testing.T, docA, docB []byte) {
		var runs []*results.Run
		for _, d := range [][]byte{docA, docB} {
			if r, err := results.Decode(d); err == nil {
				runs = append(runs, r)
			}
		}
		if len(runs) == 0 {
			return
		}
		for _, format := range Formats {
			for _, width := range []int{0, 60} {
				_ = RenderTable(io.Discard, runs, format, TableOptions{Width: width})
			}
		}
		noCharts := func([]*results.Run) ([]*chart.Chart, error) { return nil, nil }
		_ = writeHTML(io.Discard, runs, HTMLOptions{Title: "fuzz", Generated: time.Unix(0, 0)}, noCharts)
		_, _ = chart.All(runs)
		if len(runs) < 2 {
			return
		}
		th, err := results.ParseThresholds("iops<-10%,p99>+20%")
		if err != nil {
			t.Fatal(err)
		}
		c, err := results.Compare(runs[:1], runs[1:], results.CompareOptions{Thresholds: th, MatchTargets: true})
		if err != nil {
			return
		}
		for _, format := range ComparisonFormats {
			_ = RenderComparison(io.Discard, c, format)
		}
	})
}
