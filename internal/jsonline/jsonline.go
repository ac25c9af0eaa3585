// Package jsonline is a one-request, one-response exchange of JSON lines over TCP, with a
// deadline on the whole exchange: the protocol of the DRBD node agent and of the testbed's
// replication-link control.
package jsonline

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"
)

// DefaultTimeout bounds an exchange whose context has no deadline.
const DefaultTimeout = 5 * time.Second

// Call dials addr, sends req as one JSON line, reads one line of at most maxLine bytes and
// decodes it into resp, all within ctx's deadline (DefaultTimeout when it has none). Errors
// carry no address: callers name the peer.
func Call(ctx context.Context, addr string, req, resp any, maxLine int) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	dl, _ := ctx.Deadline()
	_ = c.SetDeadline(dl)
	b, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("encode request: %w", err)
	}
	if _, err := c.Write(append(b, '\n')); err != nil {
		return err
	}
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 0, min(4096, maxLine)), maxLine)
	if !sc.Scan() {
		if err := sc.Err(); err != nil {
			return err
		}
		return errors.New("connection closed without a response")
	}
	if err := json.Unmarshal(sc.Bytes(), resp); err != nil {
		return fmt.Errorf("bad response: %w", err)
	}
	return nil
}

// Serve accepts connections on ln until it is closed and answers every line read from one
// with handle's result, marshalled as one JSON line. A connection ends at its deadline (idle
// after it was accepted), at a line longer than maxLine, or when the peer closes it. handle
// gets the raw line: answering a request it cannot decode is its job.
func Serve(ln net.Listener, idle time.Duration, maxLine int, handle func(line []byte) any) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(idle))
			sc := bufio.NewScanner(c)
			sc.Buffer(make([]byte, 0, min(4096, maxLine)), maxLine)
			for sc.Scan() {
				b, err := json.Marshal(handle(sc.Bytes()))
				if err != nil {
					return
				}
				if _, err := c.Write(append(b, '\n')); err != nil {
					return
				}
			}
		}()
	}
}
