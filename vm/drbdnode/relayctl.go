package drbdnode

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"time"

	"github.com/vmstorbench/vmstorbench/internal/jsonline"
	"github.com/vmstorbench/vmstorbench/vm/linkemu"
)

// The relay control lets another vmstorbench process (a migration run, a suite) reshape the
// pair's replication link for its run: the testbed's `serve` process owns the relay, and
// one pair serves runs over LAN and WAN in turn. One JSON request per line on a loopback
// port: {"link": {...}} sets the shape (omitted: only reads it); the reply has the shape in
// force before ("previous") and after ("link").

type relayRequest struct {
	Link *linkemu.Link `json:"link,omitempty"`
}

type relayResponse struct {
	Previous linkemu.Link `json:"previous"`
	Link     linkemu.Link `json:"link"`
	Error    string       `json:"error,omitempty"`
}

// serveRelayControl serves r's control on a free loopback port and returns its address; it
// stops when ln is closed (Pair.Stop).
func serveRelayControl(r *linkemu.UDPRelay) (net.Listener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("replication link control: %w", err)
	}
	go jsonline.Serve(ln, 10*time.Second, 64<<10, func(line []byte) any {
		var req relayRequest
		resp := relayResponse{Previous: r.Link()}
		if err := json.Unmarshal(line, &req); err != nil {
			resp.Error = "bad request: " + err.Error()
		} else if l := req.Link; l != nil {
			if l.Latency < 0 || l.Jitter < 0 || l.Bandwidth < 0 || l.Loss < 0 || l.Loss > 100 {
				resp.Error = fmt.Sprintf("bad link %+v", *l)
			} else {
				r.SetLink(*l)
			}
		}
		resp.Link = r.Link()
		return resp
	})
	return ln, nil
}

// SetReplicationLink sets the replication link of the pair whose relay control is at addr
// (nil l only reads it) and returns the shape that was in force before.
func SetReplicationLink(ctx context.Context, addr string, l *linkemu.Link) (previous linkemu.Link, err error) {
	var resp relayResponse
	if err := jsonline.Call(ctx, addr, relayRequest{Link: l}, &resp, 64<<10); err != nil {
		return previous, fmt.Errorf("replication link control %s: %w", addr, err)
	}
	if resp.Error != "" {
		return resp.Previous, fmt.Errorf("replication link control %s: %s", addr, resp.Error)
	}
	return resp.Previous, nil
}
