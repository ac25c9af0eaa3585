package migrate

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vmstorbench/vmstorbench/vm/linkemu"
)

// The copy methods' own transfer, vmstorbench's "scp" and "rsync": a sender next to the
// source image streams it over TCP (through the disk link, which counts the bytes) to a
// receiver next to the destination image. For the deltas the receiver sends a checksum of
// each of its blocks back across the link and the sender sends only the blocks whose
// checksum differs from its own, as rsync's generator and sender do; disk images do not
// shift, so the blocks are compared at the same offsets and rsync's rolling checksum,
// which finds moved data, has nothing to find.
//
// Messages, client (sender) to server (receiver):
//
//	'W' offset:u64 length:u32 data    write
//	'S' blocksize:u32                 send the checksums of every block (SHA-256, 32 bytes each, in order)
//	'F'                               make everything durable and answer 'K', or 'E' length:u32 message
const (
	opWrite = 'W'
	opSums  = 'S'
	opFlush = 'F'
	repOK   = 'K'
	repErr  = 'E'
)

// copyChunk is the size of one write message of the bulk copy.
const copyChunk = 1 << 20

// senderReaders is how many reads of the source the sender keeps in flight.
const senderReaders = 4

// copyIdleTimeout ends a transfer whose link moved nothing for this long: a link that died
// without a reset ends the run within seconds rather than hanging it.
const copyIdleTimeout = 10 * time.Second

// blockServer is the receiver: it writes what arrives into the destination image.
type blockServer struct {
	ln   net.Listener
	img  imageData
	size int64
	wg   sync.WaitGroup

	mu   sync.Mutex
	errs []error
}

// startBlockServer starts the receiver; with a TLS config every connection is TLS (the
// disk stream encrypted as --security asks).
func startBlockServer(img imageData, size int64, tlsCfg *tls.Config) (*blockServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("copy receiver: listen: %w", err)
	}
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	bs := &blockServer{ln: ln, img: img, size: size}
	bs.wg.Add(1)
	go func() {
		defer bs.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			bs.wg.Add(1)
			go func() {
				defer bs.wg.Done()
				defer c.Close()
				if err := bs.serve(c); err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
					bs.mu.Lock()
					bs.errs = append(bs.errs, err)
					bs.mu.Unlock()
				}
			}()
		}
	}()
	return bs, nil
}

func (bs *blockServer) Addr() string { return bs.ln.Addr().String() }

// Close stops listening and waits for the connections to end (the client closes them; a
// link that was stopped closes them too).
func (bs *blockServer) Close() error {
	err := bs.ln.Close()
	bs.wg.Wait()
	bs.mu.Lock()
	defer bs.mu.Unlock()
	return errors.Join(append(bs.errs, err)...)
}

// receiverBuffers is how many write messages the receiver holds at once, and
// receiverWriters how many of them it writes to the image at the same time: reading the
// next ones from the link overlaps writing the earlier ones, and several O_DIRECT writes
// in flight keep the device busy, as QEMU's NBD server does with its parallel requests.
// The messages of one connection never overlap (whole-image chunks, or distinct delta
// blocks), so their order on disk does not matter; the checksums and the flush wait for all.
const (
	receiverBuffers = 8
	receiverWriters = 4
)

func (bs *blockServer) serve(c net.Conn) error {
	r := bufio.NewReaderSize(c, 256<<10)
	w := bufio.NewWriterSize(c, 64<<10)
	fail := func(err error) error {
		msg := []byte(err.Error())
		_ = w.WriteByte(repErr)
		_ = binary.Write(w, binary.BigEndian, uint32(len(msg)))
		_, _ = w.Write(msg)
		_ = w.Flush()
		return err
	}
	type block struct {
		buf []byte
		off int64
	}
	free := make(chan []byte, receiverBuffers)
	for range receiverBuffers {
		free <- alignedBuf(copyChunk)
	}
	queue := make(chan block, receiverBuffers)
	var (
		pending sync.WaitGroup // writes queued and not yet done
		writers sync.WaitGroup
		errMu   sync.Mutex
		werr    error // the first failed write, answered at the next wait
	)
	for range receiverWriters {
		writers.Add(1)
		go func() {
			defer writers.Done()
			for b := range queue {
				if _, err := bs.img.WriteAt(b.buf, b.off); err != nil {
					errMu.Lock()
					if werr == nil {
						werr = fmt.Errorf("copy receiver: write at %d: %w", b.off, err)
					}
					errMu.Unlock()
				}
				free <- b.buf[:cap(b.buf)]
				pending.Done()
			}
		}()
	}
	// Whatever ends the connection, nothing writes the image after serve returns.
	defer func() { close(queue); writers.Wait() }()
	drain := func() error {
		pending.Wait()
		errMu.Lock()
		defer errMu.Unlock()
		err := werr
		werr = nil
		return err
	}
	buf := alignedBuf(copyChunk) // checksums
	for {
		_ = c.SetReadDeadline(time.Now().Add(copyIdleTimeout))
		op, err := r.ReadByte()
		if err != nil {
			return err
		}
		switch op {
		case opWrite:
			var h struct {
				Off uint64
				N   uint32
			}
			if err := binary.Read(r, binary.BigEndian, &h); err != nil {
				return err
			}
			if h.N > copyChunk || int64(h.Off)+int64(h.N) > bs.size {
				return fail(fmt.Errorf("copy receiver: write of %d bytes at %d outside the %d-byte image", h.N, h.Off, bs.size))
			}
			wb := <-free
			if _, err := io.ReadFull(r, wb[:h.N]); err != nil {
				free <- wb
				return err
			}
			pending.Add(1)
			queue <- block{wb[:h.N], int64(h.Off)}
		case opSums:
			var blk uint32
			if err := binary.Read(r, binary.BigEndian, &blk); err != nil {
				return err
			}
			if blk == 0 || blk > copyChunk || blk%directAlign != 0 {
				return fail(fmt.Errorf("copy receiver: block size %d", blk))
			}
			if err := drain(); err != nil {
				return fail(err)
			}
			for off := int64(0); off < bs.size; off += int64(blk) {
				n := int(min(int64(blk), bs.size-off))
				if err := readFull(bs.img, buf[:n], off); err != nil {
					return fail(fmt.Errorf("copy receiver: read at %d: %w", off, err))
				}
				sum := sha256.Sum256(buf[:n])
				_ = c.SetWriteDeadline(time.Now().Add(copyIdleTimeout))
				if _, err := w.Write(sum[:]); err != nil {
					return err
				}
			}
			if err := w.Flush(); err != nil {
				return err
			}
		case opFlush:
			if err := drain(); err != nil {
				return fail(err)
			}
			if err := bs.img.Sync(); err != nil {
				return fail(fmt.Errorf("copy receiver: sync: %w", err))
			}
			if err := w.WriteByte(repOK); err != nil {
				return err
			}
			if err := w.Flush(); err != nil {
				return err
			}
		default:
			return fail(fmt.Errorf("copy receiver: unknown message %q", op))
		}
	}
}

// blockClient is the sender.
type blockClient struct {
	c    net.Conn
	r    *bufio.Reader
	w    *bufio.Writer
	stop func() bool
}

// dialBlockClient connects to the receiver at addr (through the disk link), over TLS when
// tlsCfg is set; ctx ending closes the connection, which ends whatever transfer is under way.
func dialBlockClient(ctx context.Context, addr string, tlsCfg *tls.Config) (*blockClient, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("copy sender: connect to the receiver: %w", err)
	}
	if tlsCfg != nil {
		tc := tls.Client(c, tlsCfg)
		hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("copy sender: TLS with the receiver: %w", err)
		}
		c = tc
	}
	bc := &blockClient{c: c, r: bufio.NewReaderSize(c, 64<<10), w: bufio.NewWriterSize(c, 256<<10)}
	bc.stop = context.AfterFunc(ctx, func() { c.Close() })
	return bc, nil
}

func (bc *blockClient) Close() error {
	bc.stop()
	return bc.c.Close()
}

// write sends one block.
func (bc *blockClient) write(p []byte, off int64) error {
	_ = bc.c.SetWriteDeadline(time.Now().Add(copyIdleTimeout))
	var h [13]byte
	h[0] = opWrite
	binary.BigEndian.PutUint64(h[1:], uint64(off))
	binary.BigEndian.PutUint32(h[9:], uint32(len(p)))
	if _, err := bc.w.Write(h[:]); err != nil {
		return fmt.Errorf("copy sender: %w", err)
	}
	if _, err := bc.w.Write(p); err != nil {
		return fmt.Errorf("copy sender: %w", err)
	}
	return nil
}

// flush asks the receiver to make everything durable and waits for its answer.
func (bc *blockClient) flush() error {
	if err := bc.w.WriteByte(opFlush); err != nil {
		return fmt.Errorf("copy sender: %w", err)
	}
	if err := bc.w.Flush(); err != nil {
		return fmt.Errorf("copy sender: %w", err)
	}
	_ = bc.c.SetReadDeadline(time.Now().Add(time.Minute))
	return bc.reply()
}

func (bc *blockClient) reply() error {
	op, err := bc.r.ReadByte()
	if err != nil {
		return fmt.Errorf("copy sender: waiting for the receiver: %w", err)
	}
	switch op {
	case repOK:
		return nil
	case repErr:
		var n uint32
		if err := binary.Read(bc.r, binary.BigEndian, &n); err != nil || n > 1<<16 {
			return errors.New("copy sender: the receiver failed (no reason received)")
		}
		msg := make([]byte, n)
		_, _ = io.ReadFull(bc.r, msg)
		return fmt.Errorf("copy sender: the receiver failed: %s", msg)
	}
	return fmt.Errorf("copy sender: unexpected reply %q", op)
}

// sendAll streams the whole image (size bytes of src) and waits until the receiver has
// made it durable. progress is called with the bytes sent so far.
func (bc *blockClient) sendAll(src imageData, size int64, progress func(int64)) error {
	type chunk struct {
		buf []byte
		off int64
		err error
	}
	// Read ahead in goroutines, so that reading the source and sending overlap, with
	// several O_DIRECT reads in flight; the chunks go out in the order their reads end
	// (each carries its offset).
	chunks := make(chan chunk, senderReaders)
	free := make(chan []byte, 2*senderReaders)
	for range 2 * senderReaders {
		free <- alignedBuf(copyChunk)
	}
	done := make(chan struct{})
	defer close(done)
	var next atomic.Int64
	var readers sync.WaitGroup
	for range senderReaders {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				var buf []byte
				select {
				case buf = <-free:
				case <-done:
					return
				}
				off := next.Add(copyChunk) - copyChunk
				if off >= size {
					return
				}
				n := int(min(copyChunk, size-off))
				err := readFull(src, buf[:n], off)
				select {
				case chunks <- chunk{buf[:n], off, err}:
				case <-done:
					return
				}
				if err != nil {
					return
				}
			}
		}()
	}
	go func() { readers.Wait(); close(chunks) }()
	var sent int64
	for ch := range chunks {
		if ch.err != nil {
			return fmt.Errorf("copy sender: read the source at %d: %w", ch.off, ch.err)
		}
		if err := bc.write(ch.buf, ch.off); err != nil {
			return err
		}
		sent += int64(len(ch.buf))
		free <- ch.buf[:cap(ch.buf)]
		if progress != nil {
			progress(sent)
		}
	}
	return bc.flush()
}

// deltaBlockSize is rsync's block size for an image of size bytes (the square root of the
// length, at most 128 KiB), rounded up to a power of two of at least 4 KiB so that every
// block can be read with O_DIRECT.
func deltaBlockSize(size int64) int {
	b := directAlign
	root := int(math.Sqrt(float64(size)))
	for b < root && b < 128<<10 {
		b *= 2
	}
	return b
}

// sendDeltas asks the receiver for its blocks' checksums, compares each with the source's
// block at the same offset and sends the blocks that differ; then waits until the receiver
// has made them durable. It returns the blocks and bytes sent.
func (bc *blockClient) sendDeltas(src imageData, size int64, blk int) (blocks, bytesSent int64, err error) {
	var h [5]byte
	h[0] = opSums
	binary.BigEndian.PutUint32(h[1:], uint32(blk))
	if _, err := bc.w.Write(h[:]); err != nil {
		return 0, 0, fmt.Errorf("copy sender: %w", err)
	}
	if err := bc.w.Flush(); err != nil {
		return 0, 0, fmt.Errorf("copy sender: %w", err)
	}
	// The receiver computes its checksums while this side reads and hashes the source: the
	// two images are read at the same time, as rsync's generator and sender do.
	buf := alignedBuf(blk)
	var theirs [sha256.Size]byte
	for off := int64(0); off < size; off += int64(blk) {
		n := int(min(int64(blk), size-off))
		if err := readFull(src, buf[:n], off); err != nil {
			return blocks, bytesSent, fmt.Errorf("copy sender: read the source at %d: %w", off, err)
		}
		ours := sha256.Sum256(buf[:n])
		_ = bc.c.SetReadDeadline(time.Now().Add(copyIdleTimeout))
		if _, err := io.ReadFull(bc.r, theirs[:]); err != nil {
			if b, perr := bc.r.Peek(1); perr == nil && b[0] == repErr {
				return blocks, bytesSent, bc.reply()
			}
			return blocks, bytesSent, fmt.Errorf("copy sender: checksums from the receiver: %w", err)
		}
		if !bytes.Equal(ours[:], theirs[:]) {
			if err := bc.write(buf[:n], off); err != nil {
				return blocks, bytesSent, err
			}
			blocks++
			bytesSent += int64(n)
		}
	}
	return blocks, bytesSent, bc.flush()
}

// CopyImage streams the image src into dst the way --storage copy moves a stopped VM's
// disk: this file's sender and receiver, O_DIRECT reads and writes of local images, through
// link (an unshaped relay when nil, as in a run without --link). It returns the time from
// connecting to the receiver's answer that everything is durable. dst must be src's size.
// scripts/mirrorcompare measures the copy's throughput with it.
func CopyImage(ctx context.Context, src, dst *Disk, link *linkemu.Link) (time.Duration, error) {
	size, err := src.imageLen()
	if err != nil {
		return 0, err
	}
	if n, err := dst.imageLen(); err != nil || n != size {
		return 0, fmt.Errorf("copy: the destination has %d bytes, the source %d (%v)", n, size, err)
	}
	in, err := src.openData(false)
	if err != nil {
		return 0, fmt.Errorf("copy: the source image: %w", err)
	}
	defer in.Close()
	out, err := dst.openData(true)
	if err != nil {
		return 0, fmt.Errorf("copy: the destination image: %w", err)
	}
	defer out.Close()
	srv, err := startBlockServer(out, size, nil)
	if err != nil {
		return 0, err
	}
	shape := linkemu.Link{Name: "relay"}
	if link != nil {
		shape = *link
	}
	p, err := linkemu.Start(shape, srv.Addr())
	if err != nil {
		srv.Close()
		return 0, fmt.Errorf("copy: link: %w", err)
	}
	start := time.Now()
	bc, err := dialBlockClient(ctx, p.Addr(), nil)
	if err == nil {
		err = bc.sendAll(in, size, nil)
		bc.Close()
	}
	d := time.Since(start)
	p.Stop()
	return d, errors.Join(err, srv.Close())
}
