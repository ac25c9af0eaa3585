package testbed

import (
	"context"
	"slices"
	"testing"
)

type fakeServer struct{ name string }

func (f fakeServer) Name() string                                      { return f.name }
func (f fakeServer) Start(context.Context, string) ([]Endpoint, error) { return nil, nil }
func (f fakeServer) Stop() error                                       { return nil }
func (f fakeServer) PIDs() []int                                       { return nil }

func names(ss []Server) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.Name())
	}
	return out
}

func TestSelectWithOptional(t *testing.T) {
	opt := []func() Server{func() Server { return fakeServer{"drbd"} }}
	all, err := SelectWith(nil, nil, opt)
	if err != nil || slices.Contains(names(all), "drbd") {
		t.Errorf("default set: %v %v (the optional server must not start by default)", names(all), err)
	}
	with, err := SelectWith(nil, []string{"drbd"}, opt)
	if err != nil || len(with) != len(all)+1 || !slices.Contains(names(with), "drbd") {
		t.Errorf("--with drbd: %v %v", names(with), err)
	}
	only, err := SelectWith([]string{"drbd"}, nil, opt)
	if err != nil || !slices.Equal(names(only), []string{"drbd"}) {
		t.Errorf("--only drbd: %v %v", names(only), err)
	}
	both, err := SelectWith([]string{"samba"}, []string{"drbd"}, opt)
	if err != nil || !slices.Equal(names(both), []string{"samba", "drbd"}) {
		t.Errorf("--only samba --with drbd: %v %v", names(both), err)
	}
	if _, err := SelectWith(nil, []string{"samba"}, opt); err == nil {
		t.Error("--with samba: no error")
	}
}
