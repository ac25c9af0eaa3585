package nbd

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/vmstorbench/vmstorbench/backends"
	"github.com/vmstorbench/vmstorbench/internal/nbdproto"
)

func TestParseURL(t *testing.T) {
	for _, c := range []struct {
		url             string
		network, addr   string
		export, errPart string
		timeout         time.Duration
		tls             bool
		tlsServerName   string
	}{
		{url: "nbd://127.0.0.1/vm", network: "tcp", addr: "127.0.0.1:10809", export: "vm", timeout: 30 * time.Second},
		{url: "nbd://nas:10900/", network: "tcp", addr: "nas:10900", export: "", timeout: 30 * time.Second},
		{url: "nbd://nas/a%20b?timeout=5s", network: "tcp", addr: "nas:10809", export: "a b", timeout: 5 * time.Second},
		{url: "nbd://[::1]:7/x/y", network: "tcp", addr: "[::1]:7", export: "x/y", timeout: 30 * time.Second},
		{url: "nbd+unix:///vm?socket=/run/n.sock", network: "unix", addr: "/run/n.sock", export: "vm", timeout: 30 * time.Second},
		{url: "nbd://nas/vm?tls=on", network: "tcp", addr: "nas:10809", export: "vm", timeout: 30 * time.Second, tls: true, tlsServerName: "nas"},
		{url: "nbd://10.0.0.1/vm?tls=yes&tls_hostname=nas.lab", network: "tcp", addr: "10.0.0.1:10809", export: "vm", timeout: 30 * time.Second, tls: true, tlsServerName: "nas.lab"},
		{url: "nbd:///vm", errPart: "no host"},
		{url: "nbd://nas:0/vm", errPart: "port"},
		{url: "nbd://bob@nas/vm", errPart: "no user names"},
		{url: "nbd://nas/vm?timeout=0s", errPart: "timeout must be positive"},
		{url: "nbd://nas/vm?timeout=soon", errPart: "timeout"},
		{url: "nbd://nas/vm?tls=maybe", errPart: "not a boolean"},
		{url: "nbd://nas/vm?tls_ca=/x.pem", errPart: "need tls=on"},
		{url: "nbd://nas/vm?tls=on&tls_ca=/nonexistent/ca.pem", errPart: "tls_ca"},
		{url: "nbd://nas/vm?tls=on&tls_cert=/c.pem", errPart: "go together"},
		{url: "nbd+unix:///vm", errPart: "needs socket="},
		{url: "nbd+unix://host/vm?socket=/s", errPart: "takes no host"},
		{url: "nbd+unix:///vm?socket=/s&tls=on", errPart: "tls_hostname"},
		{url: "nbd://nas/" + strings.Repeat("x", 4097), errPart: "4096"},
	} {
		u, err := url.Parse(c.url)
		if err != nil {
			t.Fatalf("%s: %v", c.url, err)
		}
		got, err := parseURL(u)
		if c.errPart != "" {
			if err == nil || !strings.Contains(err.Error(), c.errPart) {
				t.Errorf("%.60s: error %v, want one containing %q", c.url, err, c.errPart)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.url, err)
			continue
		}
		if got.network != c.network || got.addr != c.addr || got.export != c.export || got.timeout != c.timeout || (got.tls != nil) != c.tls {
			t.Errorf("%s: got %+v", c.url, got)
		}
		if c.tls && got.tls.ServerName != c.tlsServerName {
			t.Errorf("%s: TLS server name %q, want %q", c.url, got.tls.ServerName, c.tlsServerName)
		}
	}
}

func TestUnknownOption(t *testing.T) {
	_, err := openURL(t, "nbd://127.0.0.1:1/vm?tiemout=5s", backends.OpenParams{})
	wantErr(t, err, `unknown option "tiemout"`, "timeout")
	_, err = openURL(t, "nbd://127.0.0.1:1/vm?socket=/x", backends.OpenParams{})
	wantErr(t, err, `unknown option "socket"`)
}

// scriptedServer negotiates an export of 1 MiB (flush, FUA) and then answers each request
// with answer(request, conn); it stops when answer returns false.
func scriptedServer(t *testing.T, answer func(rq nbdproto.Request, c net.Conn) bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		var hello [nbdproto.HelloLen]byte
		nbdproto.PutHello(hello[:], nbdproto.FlagFixedNewstyle|nbdproto.FlagNoZeroes)
		c.Write(hello[:])
		var b [4 + nbdproto.OptionHeaderLen]byte
		if _, err := io.ReadFull(c, b[:]); err != nil {
			return
		}
		opt, n, _ := nbdproto.ParseOptionHeader(b[4:])
		if _, err := io.ReadFull(c, make([]byte, n)); err != nil {
			return
		}
		exp := nbdproto.AppendInfoExport(nil, 1<<20, nbdproto.TFlagHasFlags|nbdproto.TFlagSendFlush|nbdproto.TFlagSendFUA)
		c.Write(nbdproto.AppendOptionReply(nbdproto.AppendOptionReply(nil, opt, nbdproto.RepInfo, exp), opt, nbdproto.RepAck, nil))
		for {
			var h [nbdproto.RequestLen]byte
			if _, err := io.ReadFull(c, h[:]); err != nil {
				return
			}
			rq, err := nbdproto.ParseRequest(h[:])
			if err != nil {
				return
			}
			if rq.Type == nbdproto.CmdWrite {
				if _, err := io.ReadFull(c, make([]byte, rq.Length)); err != nil {
					return
				}
			}
			if rq.Type == nbdproto.CmdDisc || !answer(rq, c) {
				return
			}
		}
	}()
	return "nbd://" + ln.Addr().String() + "/vm"
}

func replyTo(c net.Conn, errno uint32, handle uint64, data []byte) {
	var h [nbdproto.ReplyLen]byte
	nbdproto.PutSimpleReply(h[:], errno, handle)
	c.Write(append(h[:], data...))
}

// TestHostileServer checks what the client makes of servers that misbehave after the
// negotiation: each case answers the first read in its way; the error must say what happened.
func TestHostileServer(t *testing.T) {
	for _, c := range []struct {
		name    string
		answer  func(rq nbdproto.Request, c net.Conn) bool
		errPart string
		timeout bool
	}{
		{"unknown handle", func(rq nbdproto.Request, c net.Conn) bool {
			replyTo(c, 0, rq.Handle+7, make([]byte, rq.Length))
			return true
		}, "which no request in flight has", false},
		{"stale generation", func(rq nbdproto.Request, c net.Conn) bool {
			replyTo(c, 0, rq.Handle+1<<32, nil)
			return true
		}, "which no request in flight has", false},
		{"structured reply", func(rq nbdproto.Request, c net.Conn) bool {
			c.Write(append(binary.BigEndian.AppendUint32(nil, nbdproto.MagicStructuredReply), make([]byte, 16)...))
			return true
		}, "structured reply", false},
		{"bad magic", func(rq nbdproto.Request, c net.Conn) bool {
			c.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"))
			return true
		}, "bad reply magic", false},
		{"hangs up", func(rq nbdproto.Request, c net.Conn) bool { return false }, "the server closed the connection", false},
		{"short payload", func(rq nbdproto.Request, c net.Conn) bool {
			replyTo(c, 0, rq.Handle, make([]byte, 100))
			return false
		}, "receive read data", false},
		{"silent", func(rq nbdproto.Request, c net.Conn) bool {
			time.Sleep(3 * time.Second)
			return false
		}, "no reply from the server within 300ms to a read", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			tg := mustOpen(t, scriptedServer(t, c.answer)+"?timeout=300ms", backends.OpenParams{Read: true})
			start := time.Now()
			_, err := tg.ReadAt(make([]byte, 4096), 0)
			wantErr(t, err, "nbd: read 4096 bytes at 0", c.errPart)
			var te *TimeoutError
			if errors.As(err, &te) != c.timeout {
				t.Errorf("timeout error: %v, want %v", errors.As(err, &te), c.timeout)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("the error took %v", d)
			}
			// The connection is gone: later calls fail at once with the same error.
			if _, err2 := tg.ReadAt(make([]byte, 512), 0); err2 == nil || !strings.Contains(err2.Error(), c.errPart) {
				t.Errorf("next call: %v", err2)
			}
		})
	}
}

// TestServerErrorKeepsConnection: an error value in a reply fails that request only.
func TestServerErrorKeepsConnection(t *testing.T) {
	n := 0
	u := scriptedServer(t, func(rq nbdproto.Request, c net.Conn) bool {
		n++
		switch {
		case n == 1:
			replyTo(c, nbdproto.ErrIO, rq.Handle, nil) // a failed read carries no payload
		case rq.Type == nbdproto.CmdRead:
			replyTo(c, 0, rq.Handle, make([]byte, rq.Length))
		default:
			replyTo(c, nbdproto.ErrPerm, rq.Handle, nil)
		}
		return true
	})
	tg := mustOpen(t, u, rw)
	_, err := tg.ReadAt(make([]byte, 4096), 4096)
	wantErr(t, err, "nbd: read 4096 bytes at 4096: server replied EIO")
	var se *ServerError
	if !errors.As(err, &se) || se.Errno != nbdproto.ErrIO {
		t.Errorf("error %v is not ServerError(EIO)", err)
	}
	if _, err := tg.ReadAt(make([]byte, 4096), 0); err != nil {
		t.Fatalf("read after a server error: %v", err)
	}
	_, err = tg.WriteAt(make([]byte, 512), 0)
	wantErr(t, err, "nbd: write 512 bytes at 0: server replied EPERM", "read-only?")
	err = tg.Sync()
	wantErr(t, err, "nbd: flush: server replied EPERM")
}
