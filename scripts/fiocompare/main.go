// Command fiocompare prints, for pairs of fio-format JSON documents (fio's own and
// vmstorbench's --output-format fio-json), IOPS, MB/s, p50 and p99 of both and their ratio.
// Each side may list several documents (repeated rounds, comma-separated): the round with the
// most IOPS of each side is compared, since interference only ever makes a run slower.
//
//	fiocompare LABEL REF.json[,REF2.json...] OURS.json[,OURS2.json...] [LABEL ...]
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

type dir struct {
	IOPS    float64 `json:"iops"`
	BWBytes float64 `json:"bw_bytes"`
	TotalIO int64   `json:"total_ios"`
	Clat    struct {
		Percentile map[string]float64 `json:"percentile"`
	} `json:"clat_ns"`
}

type doc struct {
	Jobs []struct {
		Read  dir `json:"read"`
		Write dir `json:"write"`
	} `json:"jobs"`
}

// best returns the summary of the document with the most IOPS among comma-separated paths.
func best(paths string) (iops, mbps, p50, p99 float64, err error) {
	for _, p := range strings.Split(paths, ",") {
		i, m, a, b, err := summary(p)
		if err != nil {
			return 0, 0, 0, 0, err
		}
		if i > iops {
			iops, mbps, p50, p99 = i, m, a, b
		}
	}
	return iops, mbps, p50, p99, nil
}

// summary adds up the jobs' directions; percentiles come from the first job.
func summary(path string) (iops, mbps, p50, p99 float64, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return
	}
	var d doc
	if err = json.Unmarshal(data, &d); err != nil {
		return 0, 0, 0, 0, fmt.Errorf("%s: %w", path, err)
	}
	if len(d.Jobs) == 0 {
		return 0, 0, 0, 0, fmt.Errorf("%s: no jobs", path)
	}
	for _, j := range d.Jobs {
		for _, x := range []dir{j.Read, j.Write} {
			iops += x.IOPS
			mbps += x.BWBytes / 1e6
		}
	}
	x := d.Jobs[0].Read
	if x.TotalIO == 0 {
		x = d.Jobs[0].Write
	}
	return iops, mbps, x.Clat.Percentile["50.000000"], x.Clat.Percentile["99.000000"], nil
}

func main() {
	args := os.Args[1:]
	if len(args) == 0 || len(args)%3 != 0 {
		fmt.Fprintln(os.Stderr, "usage: fiocompare LABEL REF.json OURS.json ...")
		os.Exit(2)
	}
	fmt.Printf("%-26s %12s %12s %7s   %10s %10s %7s   %9s %9s %9s %9s\n",
		"job", "ref IOPS", "ours IOPS", "ratio", "ref MB/s", "ours MB/s", "ratio", "ref p50", "ours p50", "ref p99", "ours p99")
	for i := 0; i < len(args); i += 3 {
		ri, rb, r50, r99, err := best(args[i+1])
		if err != nil {
			fmt.Fprintln(os.Stderr, "fiocompare:", err)
			os.Exit(1)
		}
		oi, ob, o50, o99, err := best(args[i+2])
		if err != nil {
			fmt.Fprintln(os.Stderr, "fiocompare:", err)
			os.Exit(1)
		}
		fmt.Printf("%-26s %12.0f %12.0f %6.2fx   %10.1f %10.1f %6.2fx   %7.0fns %7.0fns %7.0fns %7.0fns\n",
			args[i], ri, oi, ratio(oi, ri), rb, ob, ratio(ob, rb), r50, o50, r99, o99)
	}
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}
