package instrument_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stratus-registry/stratus/internal/promtest"
	"github.com/stratus-registry/stratus/storage"
	"github.com/stratus-registry/stratus/storage/drivertest"
	"github.com/stratus-registry/stratus/storage/filesystem"
	"github.com/stratus-registry/stratus/storage/inmemory"
	"github.com/stratus-registry/stratus/storage/instrument"
)

func newMetrics(t *testing.T) (*instrument.Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := instrument.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	return m, reg
}

// The wrapper meets the driver contract over each backend it is used with.
func TestDriverSuiteThroughWrapper(t *testing.T) {
	t.Run("inmemory", func(t *testing.T) {
		m, reg := newMetrics(t)
		shared := inmemory.New()
		drivertest.RunWith(t, func(t *testing.T) storage.Driver {
			d := m.Wrap(shared.Clone())
			t.Cleanup(func() { _ = d.Close() })
			return d
		}, drivertest.Config{SkipBoundedMemory: true, LargeSize: 8 << 20})
		if n := bytesOf(t, reg, "stratus_storage_written_bytes_total", "inmemory"); n < 8<<20 {
			t.Errorf("written bytes after the suite = %v; want at least the large object", n)
		}
	})
	t.Run("filesystem", func(t *testing.T) {
		m, reg := newMetrics(t)
		root := t.TempDir()
		drivertest.RunWith(t, func(t *testing.T) storage.Driver {
			fs, err := filesystem.New(filesystem.Config{Root: root})
			if err != nil {
				t.Fatal(err)
			}
			d := m.Wrap(fs)
			t.Cleanup(func() { _ = d.Close() })
			return d
		}, drivertest.Config{LargeSize: 64 << 20})
		if n := bytesOf(t, reg, "stratus_storage_read_bytes_total", "filesystem"); n < 64<<20 {
			t.Errorf("read bytes after the suite = %v; want at least the large object", n)
		}
	})
}

// Test doubles that give the in-memory driver (which is a MultipartReaper)
// each combination of capabilities.
type (
	// plain hides inmemory's AbortStale behind the interface.
	plain struct{ storage.Driver }
	// signerOnly is plain plus SignedURL.
	signerOnly struct{ storage.Driver }
	// signer is the in-memory driver (a reaper) plus SignedURL.
	signer struct{ *inmemory.Driver }
)

func (signerOnly) SignedURL(context.Context, string, time.Duration) (string, error) {
	return "https://signed.example/x", nil
}

func (signer) SignedURL(context.Context, string, time.Duration) (string, error) {
	return "https://signed.example/x", nil
}

func TestWrapperHasExactlyTheCapabilities(t *testing.T) {
	base := inmemory.New()
	tests := []struct {
		name           string
		d              storage.Driver
		signer, reaper bool
	}{
		{"none", plain{base}, false, false},
		{"reaper only", base, false, true},
		{"signer only", signerOnly{base}, true, false},
		{"signer and reaper", signer{base}, true, true},
	}
	m, _ := newMetrics(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, ok := tt.d.(storage.URLSigner); ok != tt.signer {
				t.Fatalf("test setup: wrapped driver signer = %v", ok)
			}
			w := m.Wrap(tt.d)
			if _, ok := w.(storage.URLSigner); ok != tt.signer {
				t.Errorf("wrapper is URLSigner = %v; want %v", ok, tt.signer)
			}
			if _, ok := w.(storage.MultipartReaper); ok != tt.reaper {
				t.Errorf("wrapper is MultipartReaper = %v; want %v", ok, tt.reaper)
			}
			if w.Name() != "inmemory" {
				t.Errorf("Name = %q", w.Name())
			}
		})
	}
}

// TestWhatCountsAsFailure drives real operations, some failing, and checks
// the error and latency series.
func TestWhatCountsAsFailure(t *testing.T) {
	ctx := context.Background()
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	faulty := drivertest.NewFaulty(inmemory.New())
	m, reg := newMetrics(t)
	d := m.Wrap(faulty)
	if _, err := d.Put(ctx, "present", bytes.NewReader([]byte("hello")), storage.PutOptions{Size: 5}); err != nil {
		t.Fatal(err)
	}
	faulty.Fail("put", "broken", drivertest.Before, 1)
	faulty.Fail("delete", "broken", drivertest.Before, 1)

	tests := []struct {
		name      string
		op        string
		call      func() error
		wantErr   bool
		countsErr bool
	}{
		{"stat missing key", instrument.OpStat, func() error { _, err := d.Stat(ctx, "missing"); return err }, true, false},
		{"read missing key", instrument.OpRead, func() error { _, err := d.Reader(ctx, "missing", 0, -1); return err }, true, false},
		{"create-only lost", instrument.OpPut, func() error {
			_, err := d.Put(ctx, "present", bytes.NewReader([]byte("x")), storage.PutOptions{Size: 1, CreateOnly: true})
			return err
		}, true, false},
		{"cancelled list", instrument.OpList, func() error { _, err := d.List(cancelled, "", "", 0); return err }, true, false},
		{"injected put fault", instrument.OpPut, func() error {
			_, err := d.Put(ctx, "broken", bytes.NewReader([]byte("x")), storage.PutOptions{Size: 1})
			return err
		}, true, true},
		{"injected delete fault", instrument.OpDelete, func() error { return d.Delete(ctx, "broken") }, true, true},
		{"invalid key", instrument.OpStat, func() error { _, err := d.Stat(ctx, "../etc"); return err }, true, true},
		{"stat present", instrument.OpStat, func() error { _, err := d.Stat(ctx, "present"); return err }, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errsBefore := errorsOf(t, reg, tt.op)
			countBefore := histCount(t, reg, tt.op)
			err := tt.call()
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v; want error %v", err, tt.wantErr)
			}
			if d := errorsOf(t, reg, tt.op) - errsBefore; d != boolFloat(tt.countsErr) {
				t.Errorf("errors{op=%s} moved by %v; want %v (err %v)", tt.op, d, boolFloat(tt.countsErr), err)
			}
			if d := histCount(t, reg, tt.op) - countBefore; d != 1 {
				t.Errorf("duration{op=%s} count moved by %d; want 1", tt.op, d)
			}
		})
	}
}

func TestReaderIsTimedUntilClose(t *testing.T) {
	ctx := context.Background()
	m, reg := newMetrics(t)
	d := m.Wrap(inmemory.New())
	body := bytes.Repeat([]byte("x"), 1000)
	if _, err := d.Put(ctx, "k", bytes.NewReader(body), storage.PutOptions{Size: int64(len(body))}); err != nil {
		t.Fatal(err)
	}
	rc, err := d.Reader(ctx, "k", 100, -1)
	if err != nil {
		t.Fatal(err)
	}
	if n := histCount(t, reg, instrument.OpRead); n != 0 {
		t.Fatalf("read observed before Close: count %d", n)
	}
	time.Sleep(30 * time.Millisecond)
	if _, err := io.Copy(io.Discard, rc); err != nil {
		t.Fatal(err)
	}
	rc.Close()
	rc.Close() // a second Close is not a second operation
	if n := histCount(t, reg, instrument.OpRead); n != 1 {
		t.Errorf("read count = %d; want 1", n)
	}
	if s := histSum(t, reg, instrument.OpRead); s < 0.03 {
		t.Errorf("read duration %vs; want at least the 30ms the stream stayed open", s)
	}
	if n := bytesOf(t, reg, "stratus_storage_read_bytes_total", "inmemory"); n != 900 {
		t.Errorf("read bytes = %v; want 900", n)
	}
	mp, err := d.NewMultipart(ctx, "mp")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := mp.Append(ctx, bytes.NewReader(body[:100*(i+1)])); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := mp.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if n := bytesOf(t, reg, "stratus_storage_written_bytes_total", "inmemory"); n != 1000+600 {
		t.Errorf("written bytes = %v; want 1600 (put 1000 + appends 600)", n)
	}
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func counter(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	return promtest.Find(t, reg, name, labels).GetCounter().GetValue()
}

func errorsOf(t *testing.T, reg *prometheus.Registry, op string) float64 {
	t.Helper()
	return counter(t, reg, "stratus_storage_errors_total", map[string]string{"op": op})
}

func bytesOf(t *testing.T, reg *prometheus.Registry, name, driver string) float64 {
	t.Helper()
	return counter(t, reg, name, map[string]string{"driver": driver})
}

func histCount(t *testing.T, reg *prometheus.Registry, op string) uint64 {
	t.Helper()
	return promtest.Find(t, reg, "stratus_storage_operation_duration_seconds", map[string]string{"op": op}).GetHistogram().GetSampleCount()
}

func histSum(t *testing.T, reg *prometheus.Registry, op string) float64 {
	t.Helper()
	return promtest.Find(t, reg, "stratus_storage_operation_duration_seconds", map[string]string{"op": op}).GetHistogram().GetSampleSum()
}

func TestOpCounts(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := instrument.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	d := m.Wrap(inmemory.New())
	ctx := context.Background()
	before, err := instrument.OpCounts(reg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Put(ctx, "k", strings.NewReader("v"), storage.PutOptions{Size: 1}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := d.Stat(ctx, "k"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := d.Stat(ctx, "missing"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatal(err)
	}
	after, err := instrument.OpCounts(reg)
	if err != nil {
		t.Fatal(err)
	}
	got := instrument.Diff(before, after)
	want := map[string]uint64{instrument.OpPut: 1, instrument.OpStat: 3}
	if !maps.Equal(got, want) {
		t.Fatalf("counts %v, want %v", got, want)
	}
}
