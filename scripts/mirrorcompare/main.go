// Command mirrorcompare measures how fast the two ways `vmstorbench migrate` moves a disk
// between hypervisors go, against `qemu-img convert -O raw` into the same kind of
// destination: QEMU's mirror (--storage mirror) into the NBD export the migration uses, and
// vmstorbench's own sender and receiver (--storage copy) into the same destination image.
// The same source image (random data, so that none can skip zeroes), a fresh empty
// destination image each time (for mirror and convert served by a qemu-nbd of its own, as
// the migration's mirror writes into), the same kind of relay or emulated link in between.
// The three alternate over the rounds; each destination is compared with the source
// afterwards. It prints MB/s of each round, the best of each and the ratios mirror /
// convert and copy / convert.
//
//	mirrorcompare [-size 256m] [-rounds 3] [-link lan]
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	_ "github.com/vmstorbench/vmstorbench/backends/file" // --storage copy opens the images as file:// disks
	"github.com/vmstorbench/vmstorbench/testbed"
	"github.com/vmstorbench/vmstorbench/vm/linkemu"
	"github.com/vmstorbench/vmstorbench/vm/migrate"
	"github.com/vmstorbench/vmstorbench/vm/qemu"
	"github.com/vmstorbench/vmstorbench/workloads/units"
)

func main() {
	sizeFlag := flag.String("size", "256m", "image size")
	rounds := flag.Int("rounds", 3, "rounds (each runs all three)")
	linkSpec := flag.String("link", "", "emulated link between source and destination (lan, wan, a spec); default unshaped")
	flag.Int64Var(&granularity, "granularity", migrate.MirrorGranularity, "the mirror's dirty-bitmap granularity in bytes (QEMU's default is 65536)")
	flag.Parse()
	size, err := units.ParseSize(*sizeFlag)
	if err != nil {
		fail(err)
	}
	var link *linkemu.Link
	if *linkSpec != "" {
		l, err := linkemu.Parse(*linkSpec)
		if err != nil {
			fail(err)
		}
		link = &l
	}
	dir, err := os.MkdirTemp("/var/tmp", "vsb-mc-")
	if err != nil {
		fail(err)
	}
	err = compare(dir, size, *rounds, link)
	os.RemoveAll(dir) // also when a round failed
	if err != nil {
		fail(err)
	}
}

// compare runs the rounds in dir and prints the figures.
func compare(dir string, size int64, rounds int, link *linkemu.Link) error {
	src := filepath.Join(dir, "src.img")
	if err := randomImage(src, size); err != nil {
		return err
	}
	var best [3]float64
	names := [3]string{"mirror", "copy", "qemu-img convert"}
	for r := 1; r <= rounds; r++ {
		for i, f := range []func(string, string, *linkemu.Link, int64) (time.Duration, error){mirror, copyImage, convert} {
			d, err := f(dir, src, link, size)
			if err != nil {
				return fmt.Errorf("%s: %w", names[i], err)
			}
			mbps := float64(size) / d.Seconds() / 1e6
			best[i] = max(best[i], mbps)
			fmt.Printf("round %d  %-17s %8.0f ms  %7.1f MB/s\n", r, names[i], float64(d)/1e6, mbps)
		}
	}
	shape := "unshaped relay"
	if link != nil {
		shape = link.String()
	}
	fmt.Printf("%d MiB over %s, best of %d: mirror %.1f MB/s, copy %.1f MB/s, qemu-img convert %.1f MB/s; ratio mirror/convert %.2f, copy/convert %.2f\n",
		size>>20, shape, rounds, best[0], best[1], best[2], best[0]/best[2], best[1]/best[2])
	return nil
}

// granularity is the mirror's, as -granularity says (set once, before any round).
var granularity int64

func fail(err error) {
	fmt.Fprintln(os.Stderr, "mirrorcompare:", err)
	os.Exit(1)
}

func randomImage(path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.CopyN(f, rand.Reader, size)
	return err
}

// emptyImage makes a fresh sparse destination image of size in dir.
func emptyImage(dir string, size int64) (string, error) {
	img := filepath.Join(dir, "dst.img")
	os.Remove(img)
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		return "", err
	}
	return img, os.Truncate(img, size)
}

// destination serves a new empty image of size over NBD as the migration's mirror does
// (migrate.StartMirrorExport: a qemu-nbd of its own, cache=none) and returns the export's
// URL (through the link) and a stop function.
func destination(dir string, link *linkemu.Link, size int64) (string, func(), error) {
	img, err := emptyImage(dir, size)
	if err != nil {
		return "", nil, err
	}
	port, err := testbed.FreePort()
	if err != nil {
		return "", nil, err
	}
	exp, err := migrate.StartMirrorExport(context.Background(), dir, port, img, "raw", true, "")
	var proxy *linkemu.Proxy
	stop := func() {
		if proxy != nil {
			proxy.Stop()
		}
		if exp != nil {
			exp.Stop(5 * time.Second)
		}
	}
	if err != nil {
		stop()
		return "", nil, err
	}
	shape := linkemu.Link{Name: "relay"}
	if link != nil {
		shape = *link
	}
	// Both go through the same kind of relay, as in the migration.
	if proxy, err = linkemu.Start(shape, testbed.Addr(port)); err != nil {
		stop()
		return "", nil, err
	}
	return "nbd://" + proxy.Addr() + "/disk0", stop, nil
}

// same checks the destination against the source.
func same(dir, src string) error {
	a, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	b, err := os.ReadFile(filepath.Join(dir, "dst.img"))
	if err != nil {
		return err
	}
	if !bytes.Equal(a, b) {
		return fmt.Errorf("the destination image differs from the source")
	}
	return nil
}

// copyImage moves the image as --storage copy does (migrate.CopyImage: O_DIRECT reads,
// vmstorbench's sender, the link, its receiver, O_DIRECT writes) into a fresh destination
// image like the others'.
func copyImage(dir, src string, link *linkemu.Link, size int64) (time.Duration, error) {
	img, err := emptyImage(dir, size)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	from, err := migrate.OpenDisk(ctx, "file://"+src, migrate.DiskOptions{Size: size, AllowDestructive: true})
	if err != nil {
		return 0, err
	}
	defer from.Close()
	to, err := migrate.OpenDisk(ctx, "file://"+img, migrate.DiskOptions{Size: size, AllowDestructive: true})
	if err != nil {
		return 0, err
	}
	defer to.Close()
	d, err := migrate.CopyImage(ctx, from, to, link)
	if err != nil {
		return 0, err
	}
	return d, same(dir, src)
}

func convert(dir, src string, link *linkemu.Link, size int64) (time.Duration, error) {
	url, stop, err := destination(dir, link, size)
	if err != nil {
		return 0, err
	}
	defer stop()
	start := time.Now()
	// -n: the export exists; -t/-T none: O_DIRECT on the source, as QEMU's cache=none.
	out, err := exec.Command("qemu-img", "convert", "-n", "-f", "raw", "-O", "raw", "-T", "none", src, url).CombinedOutput()
	d := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("%v: %s", err, out)
	}
	stop()
	return d, same(dir, src)
}

func mirror(dir, src string, link *linkemu.Link, size int64) (time.Duration, error) {
	url, stop, err := destination(dir, link, size)
	if err != nil {
		return 0, err
	}
	defer stop()
	ctx := context.Background()
	vm, err := qemu.Start(ctx, qemu.Config{Name: "src", Dir: dir, Accel: "tcg", MemoryMiB: 32, Paused: true,
		Drive: &qemu.Drive{File: src, Format: "raw", Direct: true}}, nil)
	if err != nil {
		return 0, err
	}
	defer vm.Stop()
	start := time.Now()
	args := map[string]any{"job-id": "m", "device": "disk0", "target": url, "format": "raw", "mode": "existing", "sync": "full", "granularity": granularity}
	if err := vm.QMP.Execute(ctx, "drive-mirror", args, nil); err != nil {
		return 0, err
	}
	// READY: the bulk copy is done, which is what the migration waits for.
	var d time.Duration
	for {
		var jobs []struct {
			Ready bool `json:"ready"`
		}
		if err := vm.QMP.Execute(ctx, "query-block-jobs", nil, &jobs); err != nil {
			return 0, err
		}
		if len(jobs) == 0 {
			return 0, fmt.Errorf("the mirror ended before it was ready")
		}
		if jobs[0].Ready {
			d = time.Since(start)
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := vm.QMP.Execute(ctx, "block-job-cancel", map[string]any{"device": "m"}, nil); err != nil {
		return 0, err
	}
	for {
		var jobs []struct{}
		if err := vm.QMP.Execute(ctx, "query-block-jobs", nil, &jobs); err != nil {
			return 0, err
		}
		if len(jobs) == 0 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	vm.Stop()
	stop()
	return d, same(dir, src)
}
