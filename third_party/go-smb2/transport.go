package smb2

import (
	"errors"
	"io"
	"net"
)

const (
	maxDirectTCPSize = 0xffffff // 16777215
	// maxNetBTSize     = 0x1ffff  // 131071
)

type transport interface {
	Write(p []byte) (n int, err error)
	// WriteParts writes one message made of head and data (vmstorbench's patched copy).
	WriteParts(head, data []byte) (n int, err error)
	ReadSize() (size int, err error)
	Read(p []byte) (n int, err error)
	Close() error
}

type directTCP struct {
	sb   [4]byte
	rb   [4]byte
	conn net.Conn
	vec  [][]byte // WriteParts' vector, kept to save an allocation per write
}

func direct(tcpConn net.Conn) transport {
	return &directTCP{conn: tcpConn}
}

func (t *directTCP) Write(p []byte) (n int, err error) {
	if len(p) > maxDirectTCPSize {
		return 0, errors.New("max transport size exceeds")
	}

	bs := t.sb[:]

	be.PutUint32(bs, uint32(len(p)))

	_, err = t.conn.Write(bs)
	if err != nil {
		return 0, err
	}

	n, err = t.conn.Write(p)
	if err != nil {
		return 0, err
	}

	return n + 4, nil
}

// BuffersWriter is implemented by a net.Conn that writes several buffers with one system
// call (writev), as *net.TCPConn does for net.Buffers; a wrapper around a TCP connection
// implements it to keep WriteParts at one system call. Added in vmstorbench's patched copy.
type BuffersWriter interface {
	WriteBuffers(bufs *net.Buffers) (int64, error)
}

// WriteParts writes the transport length, head and data, with one writev when the
// connection allows it.
func (t *directTCP) WriteParts(head, data []byte) (n int, err error) {
	size := len(head) + len(data)
	if size > maxDirectTCPSize {
		return 0, errors.New("max transport size exceeds")
	}
	be.PutUint32(t.sb[:], uint32(size))
	t.vec = append(t.vec[:0], t.sb[:], head, data)
	bufs := net.Buffers(t.vec)
	var m int64
	if bw, ok := t.conn.(BuffersWriter); ok {
		m, err = bw.WriteBuffers(&bufs)
	} else {
		m, err = bufs.WriteTo(t.conn)
	}
	clear(t.vec) // drop the references to the caller's buffers
	if err != nil {
		return 0, err
	}
	return int(m), nil
}

func (t *directTCP) ReadSize() (size int, err error) {
	bs := t.rb[:]

	_, err = io.ReadFull(t.conn, bs)
	if err != nil {
		return 0, err
	}

	if bs[0] != 0 {
		return 0, errors.New("invalid transport format")
	}

	return int(be.Uint32(bs)), nil
}

func (t *directTCP) Read(p []byte) (n int, err error) {
	n, err = io.ReadFull(t.conn, p)
	if err != nil {
		return 0, err
	}

	return n, err
}

func (t *directTCP) Close() error {
	return t.conn.Close()
}
