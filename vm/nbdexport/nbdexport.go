// Package nbdexport serves any backends.Target over NBD on 127.0.0.1, so that QEMU (whose
// nbd:// client is built in) can use storage it has no driver for, SMB above all, through
// vmstorbench's own backend. The NBD protocol is go-nbd's server; this package adapts the
// Target, listens, and tracks connections so Close leaves nothing behind.
//
// Limits of go-nbd v0.3.2 that apply: one request at a time per connection (QEMU's requests
// are served in order), no FLUSH/TRIM/WRITE_ZEROES (QEMU is not offered them, so guest
// flushes stop at the export: every write already went to the backend when it is
// acknowledged, but is made durable only by the backend's own policy and at disconnect).
package nbdexport

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"sync"

	"github.com/pojntfx/go-nbd/pkg/server"

	"github.com/vmstorbench/vmstorbench/backends"
)

// Export is a running NBD export of one Target.
type Export struct {
	name   string
	target backends.Target
	ln     net.Listener

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	errs  []error
	wg    sync.WaitGroup
}

// Serve exports target under name on a free port of 127.0.0.1. readOnly refuses writes.
func Serve(target backends.Target, name string, readOnly bool) (*Export, error) {
	if name == "" {
		return nil, errors.New("nbd export: empty export name")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("nbd export: listen: %w", err)
	}
	e := &Export{name: name, target: target, ln: ln, conns: map[net.Conn]struct{}{}}
	exports := []*server.Export{{Name: name, Description: "vmstorbench", Backend: adapter{target}}}
	opts := &server.Options{
		ReadOnly:           readOnly,
		MinimumBlockSize:   512,
		PreferredBlockSize: 4096,
		MaximumBlockSize:   32 << 20,
		MaximumRequestSize: 32 << 20,
		SupportsMultiConn:  true,
	}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return // closed
			}
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetNoDelay(true)
			}
			e.mu.Lock()
			e.conns[c] = struct{}{}
			e.mu.Unlock()
			e.wg.Add(1)
			go func() {
				defer e.wg.Done()
				// Handle fills defaults into the options it is given: each connection gets its
				// own copy.
				o := *opts
				err := server.Handle(c, exports, &o)
				c.Close()
				e.mu.Lock()
				delete(e.conns, c)
				// A client hanging up is the normal end of a connection.
				if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !errors.Is(err, io.ErrUnexpectedEOF) {
					e.errs = append(e.errs, err)
				}
				e.mu.Unlock()
			}()
		}
	}()
	return e, nil
}

// Addr is the export's host:port.
func (e *Export) Addr() string { return e.ln.Addr().String() }

// URL is the export as QEMU's nbd driver takes it: nbd://127.0.0.1:port/name.
func (e *Export) URL() string {
	return (&url.URL{Scheme: "nbd", Host: e.Addr(), Path: "/" + e.name}).String()
}

// Err returns the errors connections ended with (other than clients hanging up).
func (e *Export) Err() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return errors.Join(e.errs...)
}

// Close stops listening, closes every connection and waits for them to end. The Target is
// the caller's to close.
func (e *Export) Close() error {
	err := e.ln.Close()
	e.mu.Lock()
	for c := range e.conns {
		c.Close()
	}
	e.mu.Unlock()
	e.wg.Wait()
	return err
}

// adapter is a backends.Target as go-nbd's backend. go-nbd writes a read's reply header
// before calling ReadAt and then sends what ReadAt returned, so ReadAt must fill the buffer
// completely or fail (which drops the connection: QEMU sees an I/O error).
type adapter struct{ t backends.Target }

func (a adapter) ReadAt(p []byte, off int64) (int, error) {
	n, err := a.t.ReadAt(p, off)
	if n == len(p) {
		return n, nil // io.EOF with a full buffer is a complete read
	}
	if err == nil {
		err = io.ErrUnexpectedEOF
	}
	return n, fmt.Errorf("nbd export: read %d bytes at %d: %w", len(p), off, err)
}

func (a adapter) WriteAt(p []byte, off int64) (int, error) { return a.t.WriteAt(p, off) }

func (a adapter) Size() (int64, error) { return a.t.Size(), nil }

func (a adapter) Sync() error { return a.t.Sync() }
