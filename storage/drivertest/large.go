package drivertest

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stratus-registry/stratus/storage"
)

const (
	// appendSize is what a registry client PATCHes at most in one go.
	appendSize = 8 << 20
	// maxHeapGrowth bounds the heap while a large object streams through:
	// well above any sane part buffer, far below the object.
	maxHeapGrowth = 256 << 20
	// genBlock is odd-sized so that no part or read size is a multiple of
	// it: a part written at the wrong offset changes the content.
	genBlock = 1<<20 + 7
)

// generator produces size bytes of a repeating random block without
// holding the object in memory; the byte at offset p is block[p%len].
type generator struct {
	block []byte
	off   int64
	size  int64
}

func newGenerator(block []byte, size int64) *generator {
	return &generator{block: block, size: size}
}

func (g *generator) Read(p []byte) (int, error) {
	if g.off >= g.size {
		return 0, io.EOF
	}
	if rem := g.size - g.off; int64(len(p)) > rem {
		p = p[:rem]
	}
	n := 0
	for n < len(p) {
		n += copy(p[n:], g.block[(g.off+int64(n))%int64(len(g.block)):])
	}
	g.off += int64(n)
	return n, nil
}

// at returns the n bytes at offset off.
func (g *generator) at(off int64, n int) []byte {
	b := make([]byte, n)
	_, _ = io.ReadFull(&generator{block: g.block, off: off, size: off + int64(n)}, b)
	return b
}

// heapWatch samples the heap in the background and reports its peak
// growth over the level when it started.
type heapWatch struct {
	base, peak uint64
	stop       chan struct{}
	wg         sync.WaitGroup
}

func (s *suite) watchHeap() *heapWatch {
	if s.cfg.SkipBoundedMemory {
		// Sampling stops the world; skip it when nothing is checked.
		return nil
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	w := &heapWatch{base: ms.HeapInuse, peak: ms.HeapInuse, stop: make(chan struct{})}
	w.wg.Go(func() {
		tick := time.NewTicker(25 * time.Millisecond)
		defer tick.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			w.peak = max(w.peak, ms.HeapInuse)
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
		}
	})
	return w
}

// done stops sampling and returns the peak growth in bytes.
func (w *heapWatch) done() uint64 {
	close(w.stop)
	w.wg.Wait()
	return w.peak - w.base
}

func (s *suite) checkHeap(t *testing.T, what string, w *heapWatch) {
	t.Helper()
	if w == nil {
		return
	}
	growth := w.done()
	t.Logf("%s: peak heap growth %d MiB", what, growth>>20)
	if growth > maxHeapGrowth {
		t.Errorf("%s: heap grew by %d MiB; want under %d MiB (is the object buffered?)", what, growth>>20, maxHeapGrowth>>20)
	}
}

func (s *suite) testLarge(t *testing.T, e *env) {
	size := s.cfg.LargeSize
	block := make([]byte, genBlock)
	_, _ = rand.Read(block)
	h := sha256.New()
	if _, err := io.Copy(h, newGenerator(block, size)); err != nil {
		t.Fatal(err)
	}
	want := h.Sum(nil)

	// verify streams the object back through sha256 and spot-checks a
	// range near the end, then deletes it so the next case has the disk.
	verify := func(t *testing.T, key string) {
		e := &env{t: t, d: e.d, prefix: e.prefix, ctx: e.ctx}
		info, err := e.d.Stat(e.ctx, key)
		if err != nil || info.Size != size {
			t.Fatalf("Stat = %+v, %v; want size %d", info, err, size)
		}
		w := s.watchHeap()
		rc, err := e.d.Reader(e.ctx, key, 0, -1)
		if err != nil {
			t.Fatalf("Reader: %v", err)
		}
		h := sha256.New()
		n, err := io.CopyBuffer(h, rc, make([]byte, 1<<20))
		rc.Close()
		s.checkHeap(t, "read", w)
		if err != nil || n != size {
			t.Fatalf("read %d bytes, %v; want %d", n, err, size)
		}
		if got := h.Sum(nil); !bytes.Equal(got, want) {
			t.Fatalf("sha256 of what was read back = %x; want %x", got, want)
		}
		off := size - 3*appendSize/2
		if off < 0 {
			off = size / 2
		}
		got, err := e.tryRead(key, off, 4096)
		if wantPart := newGenerator(block, size).at(off, int(min(4096, size-off))); err != nil || !bytes.Equal(got, wantPart) {
			t.Fatalf("Reader(%d, 4096) = %s, %v; want %s", off, describe(got), err, describe(wantPart))
		}
		if err := e.d.Delete(e.ctx, key); err != nil {
			t.Fatalf("Delete: %v", err)
		}
	}

	t.Run("multipart in 8 MiB appends", func(t *testing.T) {
		e := &env{t: t, d: e.d, prefix: e.prefix, ctx: e.ctx}
		key := e.key("multipart")
		gen := newGenerator(block, size)
		w := s.watchHeap()
		u := e.newUpload(key)
		for u.m.Size() < size {
			// Halfway through, continue in a fresh instance.
			if u.m.Size() == (size/appendSize/2)*appendSize {
				u = e.resume(s.newDriver(t), u.handle())
			}
			part := min(appendSize, size-u.m.Size())
			n, err := u.m.Append(e.ctx, io.LimitReader(gen, part))
			if err != nil || n != part {
				t.Fatalf("Append at %d = %d, %v; want %d", u.m.Size(), n, err, part)
			}
		}
		info := u.commit()
		s.checkHeap(t, "multipart write", w)
		if info.Size != size {
			t.Fatalf("Commit = %+v; want size %d", info, size)
		}
		verify(t, key)
	})

	t.Run("Put from a stream", func(t *testing.T) {
		e := &env{t: t, d: e.d, prefix: e.prefix, ctx: e.ctx}
		key := e.key("put")
		w := s.watchHeap()
		info, err := e.d.Put(e.ctx, key, newGenerator(block, size), storage.PutOptions{Size: -1})
		s.checkHeap(t, "Put", w)
		if err != nil || info.Size != size {
			t.Fatalf("Put = %+v, %v; want size %d", info, err, size)
		}
		verify(t, key)
	})
}
