package qemu

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeQMP is a QMP server speaking just enough of the protocol: greeting, capabilities, and
// a handler per command. Replies may be delayed and come out of order.
func fakeQMP(t *testing.T, handle func(cmd string, args json.RawMessage, reply func(v any), send func(string))) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "qmp.sock")
	ln, err := net.Listen("unix", path)
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
		w := make(chan string, 16)
		go func() {
			for line := range w {
				c.Write([]byte(line + "\n"))
			}
		}()
		w <- `{"QMP": {"version": {"qemu": {"major": 7}}, "capabilities": []}}`
		sc := bufio.NewScanner(c)
		for sc.Scan() {
			var req struct {
				Execute   string          `json:"execute"`
				Arguments json.RawMessage `json:"arguments"`
				ID        string          `json:"id"`
			}
			if json.Unmarshal(sc.Bytes(), &req) != nil {
				continue
			}
			id := req.ID
			reply := func(v any) {
				b, _ := json.Marshal(map[string]any{"return": v, "id": id})
				if e, ok := v.(error); ok {
					b, _ = json.Marshal(map[string]any{"error": map[string]string{"class": "GenericError", "desc": e.Error()}, "id": id})
				}
				w <- string(b)
			}
			if req.Execute == "qmp_capabilities" {
				reply(map[string]any{})
				continue
			}
			handle(req.Execute, req.Arguments, reply, func(s string) { w <- s })
		}
	}()
	return path
}

func TestQMP(t *testing.T) {
	slowDone := make(chan struct{})
	path := fakeQMP(t, func(cmd string, args json.RawMessage, reply func(any), send func(string)) {
		switch cmd {
		case "query-status":
			send(`{"event": "STOP", "data": {}, "timestamp": {"seconds": 1, "microseconds": 2}}`)
			reply(map[string]any{"status": "running", "running": true})
		case "slow":
			go func() { time.Sleep(100 * time.Millisecond); reply(map[string]any{"n": 1}); close(slowDone) }()
		case "echo":
			var a map[string]any
			json.Unmarshal(args, &a)
			reply(a)
		case "never":
		default:
			reply(errors.New("The command " + cmd + " has not been found"))
		}
	})
	events := make(chan Event, 4)
	ctx := context.Background()
	q, err := DialQMP(ctx, "test", path, func(e Event) { events <- e })
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()

	// A slow command does not hold up a fast one issued after it.
	slow := make(chan error, 1)
	go func() {
		var out struct{ N int }
		slow <- q.Execute(ctx, "slow", nil, &out)
	}()
	time.Sleep(10 * time.Millisecond)
	var st struct{ Status string }
	if err := q.Execute(ctx, "query-status", nil, &st); err != nil || st.Status != "running" {
		t.Fatalf("query-status: %+v %v", st, err)
	}
	select {
	case <-slowDone:
		t.Fatal("the slow reply came first: commands are not independent")
	default:
	}
	if err := <-slow; err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-events:
		if e.Name != "STOP" || e.Received.IsZero() {
			t.Fatalf("event %+v", e)
		}
	case <-time.After(time.Second):
		t.Fatal("no event")
	}
	var echo map[string]any
	if err := q.Execute(ctx, "echo", map[string]any{"uri": "tcp:127.0.0.1:1"}, &echo); err != nil || echo["uri"] != "tcp:127.0.0.1:1" {
		t.Fatalf("echo %v %v", echo, err)
	}
	err = q.Execute(ctx, "bogus", nil, nil)
	var qe *Error
	if !errors.As(err, &qe) || qe.Class != "GenericError" || !strings.Contains(err.Error(), "bogus") {
		t.Fatalf("error reply: %v", err)
	}
	tctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := q.Execute(tctx, "never", nil, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("unanswered command: %v", err)
	}
}

func TestQMPConnectionLost(t *testing.T) {
	path := fakeQMP(t, func(cmd string, _ json.RawMessage, reply func(any), _ func(string)) {})
	q, err := DialQMP(context.Background(), "test", path, nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- q.Execute(context.Background(), "never", nil, nil) }()
	time.Sleep(20 * time.Millisecond)
	q.conn.Close() // as if QEMU died
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("no error after the connection closed")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("command hangs after the connection closed")
	}
	if err := q.Execute(context.Background(), "query-status", nil, nil); err == nil {
		t.Fatal("command on a closed connection succeeded")
	}
}

func TestDialQMPNoServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := DialQMP(ctx, "test", filepath.Join(t.TempDir(), "none"), nil); err == nil {
		t.Fatal("dial of a missing socket succeeded")
	}
}

func TestArgs(t *testing.T) {
	c := Config{Name: "source", Dir: "/tmp/x", Accel: "tcg", MemoryMiB: 128, Kernel: "/k", Initrd: "/i", Append: "quiet",
		Drive:         &Drive{File: "/img,with,commas", Direct: true, Options: []string{"file.user=u"}, Objects: []string{"secret,id=s"}},
		AgentPortName: "p", Incoming: "defer", Paused: true, Objects: []string{"tls-creds-x509,id=t"}}
	args, err := c.Args()
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(args, " ")
	for _, want := range []string{
		"-accel tcg", "-m 131064K", "-kernel /k", "-initrd /i", "-append quiet",
		"-drive if=none,id=disk0,format=raw,file=/img,,with,,commas,cache=none,file.user=u",
		"-object secret,id=s", "-object tls-creds-x509,id=t",
		"name=p", "-incoming defer", "-S", "-qmp unix:/tmp/x/source.qmp,server=on,wait=off",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("args lack %q:\n%s", want, got)
		}
	}
	for _, tc := range []struct {
		accel string
		mib   int
		want  int64
	}{
		{"tcg", 128, 128<<20 - 8<<10}, // not a multiple of 256 KiB: see tcgRAMShortfall
		{"", 0, 256<<20 - 8<<10},
		{"kvm", 128, 128 << 20},
	} {
		c := Config{Accel: tc.accel, MemoryMiB: tc.mib}
		if got := c.RAMBytes(); got != tc.want || (tc.accel != "kvm" && got%(256<<10) == 0) {
			t.Errorf("RAMBytes(%q, %d MiB) = %d, want %d", tc.accel, tc.mib, got, tc.want)
		}
	}
	long := Config{Name: "source", Dir: "/" + strings.Repeat("d", 120)}
	if _, err := long.Args(); err == nil {
		t.Error("a socket path over 107 bytes was accepted")
	}
}
