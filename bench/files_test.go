package bench

import (
	"bytes"
	"context"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/vmstorbench/vmstorbench/backends"
	"github.com/vmstorbench/vmstorbench/backends/mem"
	"github.com/vmstorbench/vmstorbench/workloads"
)

func TestMultiTargetSplitsAtFileBoundaries(t *testing.T) {
	var parts []backends.Target
	sizes := []int64{4096, 8192, 4096}
	for _, s := range sizes {
		m, err := mem.New(s)
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, m)
	}
	mt := newMultiTarget(parts, sizes)
	if mt.Size() != 16384 {
		t.Fatalf("Size %d", mt.Size())
	}
	data := bytes.Repeat([]byte("0123456789abcdef"), 16384/16)
	// One write across all three files, then reads that cross boundaries.
	if n, err := mt.WriteAt(data[100:16000], 100); err != nil || n != 15900 {
		t.Fatalf("WriteAt: %d, %v", n, err)
	}
	got := make([]byte, 8000)
	if n, err := mt.ReadAt(got, 3000); err != nil || n != 8000 || !bytes.Equal(got, data[3000:11000]) {
		t.Fatalf("ReadAt across files: %d, %v", n, err)
	}
	// File 1 holds bytes 4096..12287 of the whole at its offsets 0..8191.
	one := make([]byte, 16)
	if _, err := parts[1].ReadAt(one, 0); err != nil || !bytes.Equal(one, data[4096:4112]) {
		t.Errorf("file 1 offset 0 holds %q, want %q", one, data[4096:4112])
	}
	if _, err := mt.ReadAt(make([]byte, 10), 16380); err == nil {
		t.Error("read past the end did not fail")
	}
	if i := mt.find(12288); i != 2 {
		t.Errorf("find(12288) = %d", i)
	}
}

// fileRegistry records the OpenParams of every Open.
func fileRegistry(t *testing.T) (*backends.Registry, func() []backends.OpenParams) {
	t.Helper()
	var mu sync.Mutex
	var got []backends.OpenParams
	r := &backends.Registry{}
	r.Register(backends.Backend{Scheme: "test", Open: func(_ context.Context, _ *url.URL, p backends.OpenParams) (backends.Target, error) {
		mu.Lock()
		got = append(got, p)
		mu.Unlock()
		return memTarget(p.Size), nil
	}})
	return r, func() []backends.OpenParams {
		mu.Lock()
		defer mu.Unlock()
		return append([]backends.OpenParams(nil), got...)
	}
}

func TestNrFilesOpensAndNamesFiles(t *testing.T) {
	reg, params := fileRegistry(t)
	w := workloads.Workload{Name: "db", RW: "randread", Size: 3 << 20, NumJobs: 2, NrFiles: 3, FilenameFormat: "$jobname.$jobnum.$filenum"}
	res, err := Run(context.Background(), Config{Target: "test://", Registry: reg, Workload: w})
	if err != nil {
		t.Fatal(err)
	}
	ps := params()
	if len(ps) != 6 {
		t.Fatalf("%d opens, want 6", len(ps))
	}
	names := map[string]bool{}
	for _, p := range ps {
		names[p.FileName] = true
		if p.Size != 1<<20 || p.NrFiles != 3 {
			t.Errorf("file %s: size %d nrfiles %d", p.FileName, p.Size, p.NrFiles)
		}
	}
	for _, n := range []string{"db.0.0", "db.0.2", "db.1.1"} {
		if !names[n] {
			t.Errorf("no file %s among %v", n, names)
		}
	}
	// The first open is told what the rest of the run needs; the others are not.
	if ps[0].SpaceNeeded != 5<<20 || ps[0].SpaceFiles != 5 {
		t.Errorf("first open: SpaceNeeded %d, SpaceFiles %d", ps[0].SpaceNeeded, ps[0].SpaceFiles)
	}
	for _, p := range ps[1:] {
		if p.SpaceNeeded != 0 {
			t.Errorf("later open with SpaceNeeded %d", p.SpaceNeeded)
		}
	}
	if res.Workload.Size != 3<<20 || res.Read.IOs != 2*768 {
		t.Errorf("region %d, IOs %d: want 3 MiB per job and 768 4k reads per job", res.Workload.Size, res.Read.IOs)
	}
	if res.Target.Info["files"] != "3" || res.Target.Info["cache"] != "not dropped (the backend cannot)" {
		t.Errorf("info %v", res.Target.Info)
	}
}

func TestFileSizeRange(t *testing.T) {
	w := workloads.Workload{RW: "randread", NrFiles: 8, FileSize: workloads.BlockSize{Min: 1 << 20, Max: 4 << 20}}.Defaults()
	fp, err := planFiles(w)
	if err != nil {
		t.Fatal(err)
	}
	distinct := map[int64]bool{}
	for _, s := range fp.sizes {
		if s < 1<<20 || s > 4<<20 || s%4096 != 0 {
			t.Errorf("file size %d outside 1-4 MiB or unaligned", s)
		}
		distinct[s] = true
	}
	if len(distinct) < 2 {
		t.Errorf("a range gave every file the same size: %v", fp.sizes)
	}
	again, _ := planFiles(w)
	for i := range fp.sizes {
		if again.sizes[i] != fp.sizes[i] {
			t.Fatal("file sizes differ between two plans of one workload")
		}
	}
	// filesize= with size=: the files make the region, size= is what is transferred.
	reg, _ := fileRegistry(t)
	w = workloads.Workload{RW: "read", Size: 1 << 20, NrFiles: 2, FileSize: workloads.Fixed(2 << 20)}
	res, err := Run(context.Background(), Config{Target: "test://", Registry: reg, Workload: w})
	if err != nil {
		t.Fatal(err)
	}
	if res.Workload.Size != 4<<20 || res.Read.Bytes != 1<<20 {
		t.Errorf("region %d, read %d: want 4 MiB of files and 1 MiB read", res.Workload.Size, res.Read.Bytes)
	}
}

func TestFilenameFormatErrors(t *testing.T) {
	for _, c := range []struct {
		w    workloads.Workload
		want string
	}{
		{workloads.Workload{NumJobs: 2, FilenameFormat: "f.$filenum"}, "the same file"},
		{workloads.Workload{FilenameFormat: "../x"}, "not a plain file name"},
		{workloads.Workload{NrFiles: 2, Offset: 4096}, "offset"},
	} {
		_, err := planFiles(c.w.Defaults())
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want %q", c.w, err, c.want)
		}
	}
}

// dropTarget is a mem target that can drop its cache.
type dropTarget struct {
	*testTarget
	dropped *int
	mu      *sync.Mutex
}

func (d dropTarget) DropCache() (string, error) {
	d.mu.Lock()
	*d.dropped++
	d.mu.Unlock()
	return "dropped (test)", nil
}

func TestInvalidate(t *testing.T) {
	var dropped int
	var mu sync.Mutex
	r := &backends.Registry{}
	r.Register(backends.Backend{Scheme: "test", Open: func(_ context.Context, _ *url.URL, p backends.OpenParams) (backends.Target, error) {
		return dropTarget{memTarget(p.Size), &dropped, &mu}, nil
	}})
	w := workloads.Workload{RW: "read", Size: 1 << 20, NumJobs: 2, NrFiles: 2}
	res, err := Run(context.Background(), Config{Target: "test://", Registry: r, Workload: w})
	if err != nil {
		t.Fatal(err)
	}
	if dropped != 4 || res.Target.Info["cache"] != "dropped (test)" {
		t.Errorf("dropped %d files, info %q: want 4 and the backend's outcome", dropped, res.Target.Info["cache"])
	}
	w.NoInvalidate = true
	dropped = 0
	res, err = Run(context.Background(), Config{Target: "test://", Registry: r, Workload: w})
	if err != nil {
		t.Fatal(err)
	}
	if dropped != 0 || res.Target.Info["cache"] != "kept (invalidate=0)" {
		t.Errorf("invalidate=0: dropped %d, info %q", dropped, res.Target.Info["cache"])
	}
}
