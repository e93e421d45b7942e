package segstore

import (
	"errors"
	"os"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// A segment's bytes reach its file through a fileWriter: records gather in
// a buffer, and each full buffer is written with O_DIRECT where the file
// system takes it. The page cache is skipped, which is most of what
// writing a capture costs (the kernel's copy into the cache, its page
// allocation and writeback come to several times the copy into the
// buffer), and a capture, rarely read back, does not push the node's
// useful pages out of the cache.
//
// A flush writes the buffer's whole blocks the same way and its unaligned
// tail through the page cache, on a second descriptor; the tail moves to
// the front of the buffer, and the next direct write of its block replaces
// it (the kernel writes the cached page back first and drops it after).
// The file is therefore always exactly the records written: no padding,
// nothing to truncate. Where O_DIRECT is refused (at open or at the first
// write) everything goes through the page cache.
//
// Writes happen on the caller's goroutine: the capture goroutine waits for
// the disk about half a millisecond per MiB, which the kernel's ring takes
// up. A writer goroutine was tried and cost more: every hand-over left a
// runnable goroutine behind the capture goroutine's next blocking poll,
// and the Go scheduler's monitor then took the P back and went on polling
// every 20 µs, a third of the agent's CPU.

// Direct writes need the file offset, the length and the memory address
// aligned; 4 KiB covers the logical block sizes in use.
const blockSize = 4096

// bufSize is the size of the buffer records gather in: the size of most
// writes.
const bufSize = 1 << 20

type fileWriter struct {
	f      *os.File // the tail of a flush; Sync and Truncate
	direct *os.File // the same file opened with O_DIRECT; nil when refused

	buf     []byte // buf[0] is at file offset base
	base    int64  // a multiple of blockSize
	mark    int64  // the end of the last whole record
	flushed int64  // the bytes in the file
	err     error  // the first write error; nothing is written after it
	// directOK is set once a direct write succeeded.
	directOK bool

	// durable is the end of the last whole record in the file, for
	// readers of the segment while it is written.
	durable atomic.Int64
}

// newFileWriter takes over f, opened for writing and holding head (whole
// records: a file header), and opens path again with O_DIRECT when the
// file system allows it.
func newFileWriter(f *os.File, path string, head []byte) *fileWriter {
	w := &fileWriter{f: f, direct: openDirect(path), buf: alignedBuffer(bufSize)}
	// head is written again with the first block.
	w.buf = append(w.buf, head...)
	w.mark, w.flushed = int64(len(head)), int64(len(head))
	w.durable.Store(w.mark)
	return w
}

// Write appends p. It fails, writing nothing, once a write has failed.
func (w *fileWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	n := len(p)
	for len(p) > 0 {
		if len(w.buf) == cap(w.buf) {
			if err := w.writeOut(); err != nil {
				return n - len(p), err
			}
		}
		c := copy(w.buf[len(w.buf):cap(w.buf)], p)
		w.buf = w.buf[:len(w.buf)+c]
		p = p[c:]
	}
	return n, nil
}

// Mark records that a whole record ends where the bytes written so far end.
func (w *fileWriter) Mark() { w.mark = w.Size() }

// Size is the bytes written to w, in the file or in the buffer.
func (w *fileWriter) Size() int64 { return w.base + int64(len(w.buf)) }

// Flush writes what the buffer holds to the file.
func (w *fileWriter) Flush() error {
	if w.err != nil {
		return w.err
	}
	if w.Size() == w.flushed {
		return nil
	}
	aligned := len(w.buf) &^ (blockSize - 1)
	if err := w.write(w.buf[:aligned], w.base); err != nil {
		return w.fail(err)
	}
	if _, err := w.f.WriteAt(w.buf[aligned:], w.base+int64(aligned)); err != nil {
		return w.fail(err)
	}
	w.flushed = w.Size()
	w.durable.Store(w.mark)
	w.buf = w.buf[:copy(w.buf, w.buf[aligned:])]
	w.base += int64(aligned)
	return nil
}

// writeOut writes the full buffer.
func (w *fileWriter) writeOut() error {
	if err := w.write(w.buf, w.base); err != nil {
		return w.fail(err)
	}
	w.base += int64(len(w.buf))
	w.buf = w.buf[:0]
	w.flushed = w.base
	w.durable.Store(w.mark)
	return nil
}

func (w *fileWriter) fail(err error) error {
	w.err = err
	return err
}

// write writes whole blocks at a block-aligned offset.
func (w *fileWriter) write(b []byte, off int64) error {
	if len(b) == 0 {
		return nil
	}
	if w.direct != nil {
		_, err := w.direct.WriteAt(b, off)
		if err == nil {
			w.directOK = true
		}
		if err == nil || !errors.Is(err, syscall.EINVAL) || w.directOK {
			return err
		}
		// The file system took O_DIRECT at open but not at write.
		w.direct.Close()
		w.direct = nil
	}
	_, err := w.f.WriteAt(b, off)
	return err
}

// Close flushes and closes the direct descriptor (the caller closes the
// file); it returns the first write error.
func (w *fileWriter) Close() error {
	err := w.Flush()
	w.Abort()
	return err
}

// Abort closes the direct descriptor, leaving what the buffer holds
// unwritten.
func (w *fileWriter) Abort() {
	if w.direct != nil {
		w.direct.Close()
		w.direct = nil
	}
	w.buf = nil
}

// Err is the first write error, or nil.
func (w *fileWriter) Err() error { return w.err }

// alignedBuffer returns an empty slice of capacity n whose first byte is
// at a blockSize-aligned address.
func alignedBuffer(n int) []byte {
	b := make([]byte, n+blockSize)
	skip := 0
	if r := int(uintptr(unsafe.Pointer(&b[0])) & (blockSize - 1)); r != 0 {
		skip = blockSize - r
	}
	return b[skip : skip : skip+n]
}
