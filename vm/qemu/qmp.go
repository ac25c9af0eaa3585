package qemu

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// QMP is a small QEMU Machine Protocol client over a unix socket: commands are matched to
// replies by id, so several goroutines may issue commands at once, and every command is
// bounded by its context (DefaultCommandTimeout when the context has no deadline). Events
// are timestamped on arrival and handed to the Events callback.
type QMP struct {
	conn net.Conn
	// name prefixes errors ("qmp source: ...").
	name string

	mu      sync.Mutex
	nextID  int
	pending map[string]chan reply
	closed  error

	wmu    sync.Mutex
	events func(Event)
	done   chan struct{}
}

// DefaultCommandTimeout bounds one QMP command when the caller gave no deadline.
const DefaultCommandTimeout = 30 * time.Second

// Event is one asynchronous QMP event, with the host time it arrived.
type Event struct {
	Name     string          `json:"event"`
	Data     json.RawMessage `json:"data,omitempty"`
	Received time.Time       `json:"-"`
}

// Error is an error QEMU returned for a command.
type Error struct {
	Command string
	Class   string `json:"class"`
	Desc    string `json:"desc"`
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s (%s)", e.Command, e.Desc, e.Class) }

type reply struct {
	ret json.RawMessage
	err *Error
}

// DialQMP connects to a QMP unix socket, reads the greeting and negotiates capabilities.
// events, if not nil, is called from the reader goroutine for every event: it must not block.
func DialQMP(ctx context.Context, name, path string, events func(Event)) (*QMP, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var d net.Dialer
	var conn net.Conn
	var err error
	// QEMU creates the socket shortly after it starts: retry until it exists.
	for {
		conn, err = d.DialContext(ctx, "unix", path)
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("qmp %s: connect %s: %w", name, path, err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	q := &QMP{conn: conn, name: name, pending: map[string]chan reply{}, events: events, done: make(chan struct{})}
	greeting := make(chan error, 1)
	go q.read(greeting)
	select {
	case err := <-greeting:
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("qmp %s: greeting: %w", name, err)
		}
	case <-ctx.Done():
		conn.Close()
		return nil, fmt.Errorf("qmp %s: no greeting: %w", name, ctx.Err())
	}
	if err := q.Execute(ctx, "qmp_capabilities", nil, nil); err != nil {
		conn.Close()
		return nil, err
	}
	return q, nil
}

// read is the reader goroutine: it delivers replies to waiting commands and events to the
// callback until the connection ends.
func (q *QMP) read(greeting chan<- error) {
	defer close(q.done)
	sc := bufio.NewScanner(q.conn)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	first := true
	for sc.Scan() {
		line := sc.Bytes()
		var msg struct {
			QMP    json.RawMessage `json:"QMP"`
			Event  string          `json:"event"`
			Data   json.RawMessage `json:"data"`
			ID     string          `json:"id"`
			Return json.RawMessage `json:"return"`
			Error  *Error          `json:"error"`
		}
		if err := json.Unmarshal(line, &msg); err != nil {
			continue // QEMU only sends JSON objects; skip anything else
		}
		if first {
			first = false
			if msg.QMP == nil {
				greeting <- fmt.Errorf("unexpected first message %q", truncate(string(line), 200))
			} else {
				greeting <- nil
			}
			continue
		}
		switch {
		case msg.Event != "":
			if q.events != nil {
				q.events(Event{Name: msg.Event, Data: msg.Data, Received: time.Now()})
			}
		case msg.ID != "":
			q.mu.Lock()
			ch := q.pending[msg.ID]
			delete(q.pending, msg.ID)
			q.mu.Unlock()
			if ch != nil {
				ch <- reply{ret: msg.Return, err: msg.Error}
			}
		}
	}
	err := sc.Err()
	if err == nil {
		err = errors.New("connection closed by QEMU")
	}
	if first {
		greeting <- err
	}
	q.mu.Lock()
	q.closed = err
	for id, ch := range q.pending {
		close(ch)
		delete(q.pending, id)
	}
	q.mu.Unlock()
}

// Execute runs one command. args is marshalled as the command's arguments (nil for none);
// out, if not nil, receives the unmarshalled "return" value.
func (q *QMP) Execute(ctx context.Context, command string, args any, out any) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultCommandTimeout)
		defer cancel()
	}
	q.mu.Lock()
	if q.closed != nil {
		err := q.closed
		q.mu.Unlock()
		return fmt.Errorf("qmp %s: %s: %w", q.name, command, err)
	}
	q.nextID++
	id := fmt.Sprintf("c%d", q.nextID)
	ch := make(chan reply, 1)
	q.pending[id] = ch
	q.mu.Unlock()

	req := map[string]any{"execute": command, "id": id}
	if args != nil {
		req["arguments"] = args
	}
	b, err := json.Marshal(req)
	if err != nil {
		q.forget(id)
		return fmt.Errorf("qmp %s: %s: %w", q.name, command, err)
	}
	q.wmu.Lock()
	if dl, ok := ctx.Deadline(); ok {
		_ = q.conn.SetWriteDeadline(dl)
	}
	_, err = q.conn.Write(append(b, '\n'))
	q.wmu.Unlock()
	if err != nil {
		q.forget(id)
		return fmt.Errorf("qmp %s: %s: %w", q.name, command, err)
	}
	select {
	case r, ok := <-ch:
		if !ok {
			return fmt.Errorf("qmp %s: %s: connection closed before the reply", q.name, command)
		}
		if r.err != nil {
			r.err.Command = command
			return fmt.Errorf("qmp %s: %w", q.name, r.err)
		}
		if out != nil && len(r.ret) > 0 {
			if err := json.Unmarshal(r.ret, out); err != nil {
				return fmt.Errorf("qmp %s: %s: decode reply: %w", q.name, command, err)
			}
		}
		return nil
	case <-ctx.Done():
		q.forget(id)
		return fmt.Errorf("qmp %s: %s: %w", q.name, command, ctx.Err())
	}
}

func (q *QMP) forget(id string) {
	q.mu.Lock()
	delete(q.pending, id)
	q.mu.Unlock()
}

// HMP runs a human monitor command through QMP and returns its output.
func (q *QMP) HMP(ctx context.Context, cmdline string) (string, error) {
	var out string
	err := q.Execute(ctx, "human-monitor-command", map[string]any{"command-line": cmdline}, &out)
	return out, err
}

// Close closes the connection and waits for the reader to end.
func (q *QMP) Close() error {
	err := q.conn.Close()
	<-q.done
	return err
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
