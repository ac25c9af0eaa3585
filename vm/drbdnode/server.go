package drbdnode

import (
	"context"
	"fmt"
	"strings"

	"github.com/vmstorbench/vmstorbench/testbed"
	"github.com/vmstorbench/vmstorbench/vm/guest"
	"github.com/vmstorbench/vmstorbench/vm/linkemu"
)

// Server runs the pair as a testbed server ("drbd"): endpoints drbd-c, drbd-b and drbd-a,
// the same pair measured with protocol C, B and A (switched online before each run).
type Server struct {
	// Link shapes the replication link (through the UDP relay, always in the middle).
	Link     linkemu.Link
	CacheDir string
	Log      func(string)
	pair     *Pair
}

// NewServer returns the testbed's DRBD server with link on the replication link.
func NewServer(link linkemu.Link) *Server { return &Server{Link: link} }

// Name is the server's name in `testbed up --with drbd`.
func (s *Server) Name() string { return "drbd" }

// Start builds (or finds) the node image, boots the pair and returns its endpoints.
func (s *Server) Start(ctx context.Context, dir string) ([]testbed.Endpoint, error) {
	cache := s.CacheDir
	if cache == "" {
		cache = guest.DefaultCacheDir()
	}
	img, err := BuildImage(ctx, ImageOptions{CacheDir: cache, Log: s.Log})
	if err != nil {
		return nil, err
	}
	link := s.Link
	p, err := Start(ctx, Config{Dir: dir, Image: img, Link: &link})
	if err != nil {
		return nil, err
	}
	s.pair = p
	if s.Log != nil {
		s.Log(fmt.Sprintf("drbd: pair ready in %.1f s, replication link %s", p.Ready.Seconds(), link))
	}
	return Endpoints(p), nil
}

// Endpoints are the pair's targets: node A's /dev/drbd0 through its NBD export, its state
// from its agent, one endpoint per protocol. Node B's export and agent (peer_nbd=,
// peer_agent=) and the replication link's control (relay=) are there for migrate, which
// runs the destination's disk on node B.
func Endpoints(p *Pair) []testbed.Endpoint {
	var eps []testbed.Endpoint
	for _, proto := range []string{"C", "B", "A"} {
		// Written out rather than url.Values.Encode, which would escape the colons.
		q := fmt.Sprintf("nbd=%s&agent=%s&protocol=%s&peer_nbd=%s&peer_agent=%s", p.Nodes[0].NBD, p.Nodes[0].Control, proto, p.Nodes[1].NBD, p.Nodes[1].Control)
		if p.RelayControl != "" {
			q += "&relay=" + p.RelayControl
		}
		eps = append(eps, testbed.Endpoint{
			Name:     "drbd-" + strings.ToLower(proto),
			URL:      "drbd:///dev/drbd0?" + q,
			Security: "protocol " + proto,
		})
	}
	return eps
}

// Stop stops the pair.
func (s *Server) Stop() error {
	if s.pair == nil {
		return nil
	}
	err := s.pair.Stop()
	s.pair = nil
	return err
}

// PIDs are the nodes' QEMU processes.
func (s *Server) PIDs() []int {
	if s.pair == nil {
		return nil
	}
	return s.pair.PIDs()
}
