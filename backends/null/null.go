// Package null registers the null:// backend: it completes every I/O at once without touching
// the buffer, so a run against it measures the engine alone (as fio's null ioengine does).
package null

import (
	"context"
	"math"
	"net/url"

	"github.com/vmstorbench/vmstorbench/backends"
)

func init() {
	backends.Register(backends.Backend{
		Scheme:       "null",
		Description:  "discards writes and returns reads untouched: measures the engine itself",
		URLForms:     []string{"null://", "null://?size=1g"},
		DiscardsData: true,
		Options:      []backends.Option{{Name: "size", Help: "device size (fio units)", Default: "the workload's offset+size"}},
		Open:         open,
	})
}

type target struct{ size int64 }

func open(_ context.Context, u *url.URL, p backends.OpenParams) (backends.Target, error) {
	size, err := backends.NewQuery(u).Size("size", p.Size)
	if err != nil {
		return nil, err
	}
	if size <= 0 {
		size = math.MaxInt64 / 2
	}
	return &target{size: size}, nil
}

func (t *target) ReadAt(b []byte, _ int64) (int, error)  { return len(b), nil }
func (t *target) WriteAt(b []byte, _ int64) (int, error) { return len(b), nil }
func (t *target) Sync() error                            { return nil }
func (t *target) Size() int64                            { return t.size }
func (t *target) Close() error                           { return nil }
func (t *target) Describe() map[string]string            { return map[string]string{"access": "none"} }
