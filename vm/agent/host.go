package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"sync"
	"time"
)

// Message is one frame from an agent, decoded and stamped with the host time it arrived.
type Message struct {
	// From names the connection ("source", "destination").
	From string
	Type byte
	// At is when the host read the frame: the clock every measurement is made with.
	At     time.Time
	Hello  *Hello
	Batch  *Batch
	Phase  *Phase
	Result *Result
	Log    string
	// Err is set on the last message of a connection: why it ended.
	Err error
}

// Conn is the host end of one VM's agent port: the unix socket QEMU listens on for the
// virtio-serial port's chardev.
type Conn struct {
	Name string
	c    net.Conn
	wmu  sync.Mutex
	// closing ends a reader blocked on delivering a message nobody reads any more.
	closing   chan struct{}
	closeOnce sync.Once
	done      chan struct{}
}

// Dial connects to the agent socket at path (retrying while QEMU creates it) and forwards
// every frame to out until the connection ends; the last message carries Err.
func Dial(ctx context.Context, name, path string, out chan<- Message) (*Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var d net.Dialer
	for {
		c, err := d.DialContext(ctx, "unix", path)
		if err == nil {
			conn := &Conn{Name: name, c: c, closing: make(chan struct{}), done: make(chan struct{})}
			go conn.read(out)
			return conn, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("agent %s: connect %s: %w", name, path, err)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (c *Conn) read(out chan<- Message) {
	defer close(c.done)
	r := bufio.NewReaderSize(c.c, 256<<10)
	for {
		typ, p, err := ReadFrame(r)
		m := Message{From: c.Name, Type: typ, At: time.Now()}
		if err != nil {
			m.Err = err
			select {
			case out <- m:
			case <-c.closing:
			}
			return
		}
		switch typ {
		case FrameHello:
			m.Hello = new(Hello)
			err = json.Unmarshal(p, m.Hello)
		case FrameCompletions:
			m.Batch, err = DecodeBatch(p)
		case FramePhase:
			m.Phase = new(Phase)
			err = json.Unmarshal(p, m.Phase)
		case FrameResult:
			m.Result = new(Result)
			err = json.Unmarshal(p, m.Result)
		case FrameLog:
			m.Log = string(p)
		default:
			err = fmt.Errorf("unknown frame type %q", typ)
		}
		if err != nil {
			m.Type, m.Log = FrameLog, fmt.Sprintf("agent %s: bad frame: %v", c.Name, err)
		}
		select {
		case out <- m:
		case <-c.closing:
			return
		}
	}
}

func (c *Conn) send(typ byte, v any) error {
	var p []byte
	if v != nil {
		var err error
		if p, err = json.Marshal(v); err != nil {
			return err
		}
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := WriteFrame(c.c, typ, p); err != nil {
		return fmt.Errorf("agent %s: send: %w", c.Name, err)
	}
	return nil
}

// SendTask starts a task in the guest.
func (c *Conn) SendTask(t Task) error { return c.send(FrameTask, t) }

// StopTask ends a running task early and gracefully (see the StopTask frame).
func (c *Conn) StopTask(id int) error { return c.send(FrameStop, StopTask{ID: id}) }

// Quit tells the agent to end (the guest powers off).
func (c *Conn) Quit() error { return c.send(FrameQuit, nil) }

// Close closes the connection; the reader sends its final message and ends.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() { close(c.closing) })
	err := c.c.Close()
	<-c.done
	return err
}
