package azure_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"strings"
	"testing"

	"github.com/stratus-registry/stratus/storage"
	"github.com/stratus-registry/stratus/storage/azure"
	"github.com/stratus-registry/stratus/storage/azure/azuretest"
)

// TestWriterFollowsPlan drives the real writer against Azurite with small
// blocks and appends of varied sizes, and checks after every Append that
// the handle's blocks and tail segments are what the arithmetic says, so
// the 500 GiB figures of TestBlockSizeReaches500GiB hold for the code that
// runs. At the block limit, Append fails cleanly and the last good handle
// still commits.
func TestWriterFollowsPlan(t *testing.T) {
	srv := azuretest.Start(t)
	ctx := t.Context()
	cfg := srv.Config("plan-" + strings.ToLower(rand.Text()))
	const blockSize, maxBlocks = 64 << 10, 6
	d, err := azure.NewWithLimits(ctx, cfg, testLogger(t), blockSize, maxBlocks)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	m, err := d.NewMultipart(ctx, "obj")
	if err != nil {
		t.Fatal(err)
	}
	var want []byte
	var plan azure.PlanState
	sizes := []int{1000, 3000, 200, 70 << 10, 100}
	for i := 0; ; i++ {
		n := sizes[i%len(sizes)]
		if i > 20 && i < 60 {
			n = 100 // many small appends: segments merge
		}
		if !d.PlanAppend(&plan, int64(n)) {
			h, _ := m.Handle()
			_, err := m.Append(ctx, bytes.NewReader(make([]byte, n)))
			if err == nil || storage.Retryable(err) || !strings.Contains(err.Error(), "blocks") {
				t.Fatalf("Append past %d blocks: %v; want a permanent block-limit error", maxBlocks, err)
			}
			t.Logf("Append %d at the limit: %v", i, err)
			if m, err = d.ResumeMultipart(ctx, h); err != nil {
				t.Fatal(err)
			}
			break
		}
		b := make([]byte, n)
		rand.Read(b)
		if _, err := m.Append(ctx, bytes.NewReader(b)); err != nil {
			t.Fatalf("Append %d (%d bytes): %v", i, n, err)
		}
		want = append(want, b...)
		h, _ := m.Handle()
		if diff := plan.Matches(h); diff != "" {
			t.Fatalf("after Append %d: %s", i, diff)
		}
		if m.Size() != int64(len(want)) {
			t.Fatalf("Size %d; want %d", m.Size(), len(want))
		}
	}
	info, err := m.Commit(ctx)
	if err != nil || info.Size != int64(len(want)) {
		t.Fatalf("Commit = %+v, %v; want size %d", info, err, len(want))
	}
	got, err := storage.ReadAll(ctx, d, "obj", 1<<20)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read back %d bytes, %v; want the %d appended", len(got), err, len(want))
	}
	committed, uncommitted, err := d.BlockSizes(ctx, "obj")
	if err != nil {
		t.Fatal(err)
	}
	if len(committed) > maxBlocks || len(uncommitted) != 0 {
		t.Errorf("%d committed, %d uncommitted blocks; want at most %d, 0", len(committed), len(uncommitted), maxBlocks)
	}
	for i, n := range committed[:len(committed)-1] {
		if n != blockSize {
			t.Errorf("block %d is %d bytes; every block but the last must be %d", i, n, blockSize)
		}
	}
	t.Logf("%d bytes in %d blocks at the %d-block limit", len(want), len(committed), maxBlocks)
	if err := d.Delete(context.Background(), "obj"); err != nil {
		t.Fatal(err)
	}
}
