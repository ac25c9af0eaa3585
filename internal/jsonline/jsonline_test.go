package jsonline

import (
	"bufio"
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

// serve answers each connection's first line with reply (nothing when reply is "").
func serve(t *testing.T, reply string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if !bufio.NewScanner(c).Scan() {
					return
				}
				if reply == "hang" {
					time.Sleep(2 * time.Second)
					return
				}
				c.Write([]byte(reply))
			}()
		}
	}()
	return ln.Addr().String()
}

func TestCall(t *testing.T) {
	type resp struct {
		N int `json:"n"`
	}
	for _, c := range []struct {
		name, reply, err string
		want             int
	}{
		{"ok", `{"n": 7}` + "\n", "", 7},
		{"closed", "", "connection closed without a response", 0},
		{"garbage", "{\n", "bad response", 0},
		{"too long", `{"n": 1, "pad": "` + strings.Repeat("x", 200) + `"}` + "\n", "too long", 0},
		{"deadline", "hang", "timeout", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			var r resp
			err := Call(ctx, serve(t, c.reply), map[string]string{"op": "x"}, &r, 128)
			if c.err == "" {
				if err != nil || r.N != c.want {
					t.Fatalf("got %+v, %v; want n=%d", r, err, c.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Fatalf("error %v, want one containing %q", err, c.err)
			}
		})
	}
}

// TestServe: Call against Serve, several lines on one connection's worth of requests, and a
// line over the bound ends the connection without an answer.
func TestServe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go Serve(ln, 5*time.Second, 64, func(line []byte) any {
		return map[string]int{"len": len(line)}
	})
	var r struct {
		Len int `json:"len"`
	}
	if err := Call(context.Background(), ln.Addr().String(), map[string]string{"a": "b"}, &r, 64); err != nil || r.Len != len(`{"a":"b"}`) {
		t.Fatalf("got %+v, %v", r, err)
	}
	err = Call(context.Background(), ln.Addr().String(), map[string]string{"a": strings.Repeat("x", 100)}, &r, 64)
	// The server closes with the request unread: the client sees a close or a reset.
	if err == nil || !(strings.Contains(err.Error(), "closed without a response") || strings.Contains(err.Error(), "reset")) {
		t.Fatalf("a line over the bound: %v", err)
	}
}
