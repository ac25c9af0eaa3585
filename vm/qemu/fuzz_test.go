package qemu

import (
	"bytes"
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// The fuzz target plays a hostile QEMU: whatever its monitor sends as greeting, replies and
// events, the client must fail or succeed, never panic or hang. `go test` runs the seeds
// below and testdata/fuzz/FuzzQMP; `go test -run '^$' -fuzz FuzzQMP ./vm/qemu` searches
// further.

// monitorConn is a net.Conn for a QMP server that sends the input's first line (the
// greeting) at once and the rest only once the client has written a command, as QEMU does.
// starved is closed when the client wants more than the first line before writing.
type monitorConn struct {
	net.Conn
	mu       sync.Mutex
	pre      *bytes.Reader
	post     *bytes.Reader
	wrote    chan struct{}
	closed   chan struct{}
	starved  chan struct{}
	once     [3]sync.Once
	commands []string
}

func newMonitorConn(input []byte) *monitorConn {
	pre, post := input, []byte(nil)
	if i := bytes.IndexByte(input, '\n'); i >= 0 {
		pre, post = input[:i+1], input[i+1:]
	}
	return &monitorConn{pre: bytes.NewReader(pre), post: bytes.NewReader(post),
		wrote: make(chan struct{}), closed: make(chan struct{}), starved: make(chan struct{})}
}

func (c *monitorConn) Read(b []byte) (int, error) {
	if c.pre.Len() > 0 {
		return c.pre.Read(b)
	}
	select {
	case <-c.wrote:
	default:
		c.once[2].Do(func() { close(c.starved) })
		select {
		case <-c.wrote:
		case <-c.closed:
			return 0, net.ErrClosed
		}
	}
	select {
	case <-c.closed:
		return 0, net.ErrClosed
	default:
	}
	return c.post.Read(b)
}

func (c *monitorConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	c.commands = append(c.commands, string(b))
	c.mu.Unlock()
	c.once[0].Do(func() { close(c.wrote) })
	return len(b), nil
}

func (c *monitorConn) Close() error {
	c.once[1].Do(func() { close(c.closed) })
	return nil
}

func (c *monitorConn) SetDeadline(time.Time) error      { return nil }
func (c *monitorConn) SetReadDeadline(time.Time) error  { return nil }
func (c *monitorConn) SetWriteDeadline(time.Time) error { return nil }

// qmpSeeds are sessions as QEMU 8/9 sends them: greeting, an event, then replies to the
// command (c1), including an error and a reply to an unknown id.
var qmpSeeds = []string{
	`{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 8}, "package": "Debian 1:8.2.2"}, "capabilities": ["oob"]}}
{"timestamp": {"seconds": 1733480000, "microseconds": 123456}, "event": "MIGRATION", "data": {"status": "active"}}
{"return": {"status": "completed", "setup-time": 3, "downtime": 12, "total-time": 1234, "ram": {"transferred": 123456789, "remaining": 0, "total": 1073741824, "duplicate": 200000, "normal": 30000, "normal-bytes": 122880000, "dirty-sync-count": 3, "mbps": 8000.5, "pages-per-second": 250000, "dirty-pages-rate": 0, "postcopy-requests": 0}}, "id": "c1"}
{"timestamp": {"seconds": 1733480001, "microseconds": 5}, "event": "STOP"}
`,
	`{"QMP": {"version": {"qemu": {"micro": 0, "minor": 0, "major": 9}, "package": ""}, "capabilities": []}}
{"id": "c9", "return": {}}
{"error": {"class": "GenericError", "desc": "There's a migration process in progress"}, "id": "c1"}
`,
	`{"QMP": {"version": {}, "capabilities": []}}
{"return": {"running": true, "singlestep": false, "status": "running"}, "id": "c1"}
{"event": "RESUME", "data": null, "timestamp": {"seconds": 1, "microseconds": 2}}
`,
	"not json\n{\"return\": {}, \"id\": \"c1\"}\n",
}

// FuzzQMP reads the greeting in input and, if there is one, runs a command whose reply
// input may hold, with any events around it.
func FuzzQMP(f *testing.F) {
	for _, s := range qmpSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, input []byte) { runQMP(t, input) })
}

// qmpOutcome is what a session ended with.
type qmpOutcome struct {
	greeting error
	execErr  error
	status   string
	events   []Event
}

func runQMP(t *testing.T, input []byte) qmpOutcome {
	var out qmpOutcome
	began := time.Now()
	conn := newMonitorConn(input)
	var evMu sync.Mutex
	q := &QMP{conn: conn, name: "fuzz", pending: map[string]chan reply{}, done: make(chan struct{}),
		events: func(ev Event) {
			evMu.Lock()
			out.events = append(out.events, ev)
			evMu.Unlock()
		}}
	greeting := make(chan error, 1)
	go q.read(greeting)
	defer func() {
		q.Close()
		if d := time.Since(began); d > 5*time.Second {
			t.Fatalf("session took %s on %d bytes", d, len(input))
		}
		evMu.Lock()
		defer evMu.Unlock()
		for _, ev := range out.events {
			if ev.Name == "" || ev.Received.IsZero() {
				t.Fatalf("event without name or time: %+v", ev)
			}
		}
	}()
	select {
	case out.greeting = <-greeting:
	case <-conn.starved:
		// The reader wants more than the first line. It sends the greeting before it reads
		// on, so a greeting in the first line is there by now.
		select {
		case out.greeting = <-greeting:
		default:
			// No whole line the client takes as a greeting: the client would wait for
			// one until its timeout; the server hangs up instead. (A greeting without its
			// newline is taken at the hang-up, as the scanner hands out a last line.)
			conn.Close()
			out.greeting = <-greeting
			return out
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("no end to the greeting on %d bytes", len(input))
	}
	if out.greeting != nil {
		return out
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var st struct {
		Status string `json:"status"`
		RAM    *struct {
			Transferred int64   `json:"transferred"`
			Mbps        float64 `json:"mbps"`
		} `json:"ram"`
	}
	out.execErr = q.Execute(ctx, "query-migrate", nil, &st)
	out.status = st.Status
	if err := q.Execute(ctx, "query-status", nil, nil); err == nil {
		// The input was all sent after the first command: nothing can answer a second one.
		t.Fatal("a command nothing answered succeeded")
	}
	conn.mu.Lock()
	defer conn.mu.Unlock()
	if len(conn.commands) == 0 || !strings.Contains(conn.commands[0], `"id":"c1"`) {
		t.Fatalf("commands sent: %q", conn.commands)
	}
	return out
}

func TestQMPSeedsAreValid(t *testing.T) {
	for i, want := range []struct {
		status string
		err    string
		events int
	}{
		{"completed", "", 2},
		{"", "There's a migration process in progress", 0},
		{"running", "", 1},
		{"", "", 0},
	} {
		out := runQMP(t, []byte(qmpSeeds[i]))
		if out.greeting != nil {
			if i == 3 {
				continue
			}
			t.Fatalf("seed %d: greeting: %v", i, out.greeting)
		}
		if i == 3 {
			t.Fatalf("seed %d: a first line that is not JSON taken as the greeting", i)
		}
		if out.status != want.status || len(out.events) != want.events ||
			(want.err == "") != (out.execErr == nil) || (out.execErr != nil && !strings.Contains(out.execErr.Error(), want.err)) {
			t.Errorf("seed %d: status %q, %d events, err %v; want %+v", i, out.status, len(out.events), out.execErr, want)
		}
	}
}
