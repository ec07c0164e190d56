package azure_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"

	"github.com/stratus-registry/stratus/storage"
	"github.com/stratus-registry/stratus/storage/azure"
	"github.com/stratus-registry/stratus/storage/azure/azuretest"
	"github.com/stratus-registry/stratus/storage/drivertest"
)

// TestAbortStale: writes idle since the cutoff are aborted (no resume,
// their uncommitted blocks and bookkeeping blobs gone), a dry run only
// counts them, and a write active after the cutoff is left alone.
func TestAbortStale(t *testing.T) {
	srv := azuretest.Start(t)
	ctx := t.Context()
	cfg := srv.Config("reap-" + strings.ToLower(rand.Text()))
	d, err := azure.NewWithLimits(ctx, cfg, testLogger(t), 256<<10, azure.MaxCommittedBlocks)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	start := func(key string, n int) []byte {
		m, err := d.NewMultipart(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			if _, err := m.Append(ctx, bytes.NewReader(randData(n))); err != nil {
				t.Fatal(err)
			}
		}
		h, err := m.Handle()
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	blocks := start("data/blocks", 600<<10) // two blocks and a segment
	empty := start("data/empty", 0)
	// Azure keeps modification times in whole seconds.
	time.Sleep(1100 * time.Millisecond)
	cutoff := time.Now()
	time.Sleep(1100 * time.Millisecond)
	active := start("data/active", 1000)

	n, err := d.AbortStale(ctx, cutoff, true)
	if err != nil || n != 2 {
		t.Fatalf("dry run: %d, %v; want 2", n, err)
	}
	if _, err := d.ResumeMultipart(ctx, blocks); err != nil {
		t.Fatalf("a dry run aborted a write: %v", err)
	}
	n, err = d.AbortStale(ctx, cutoff, false)
	if err != nil || n != 2 {
		t.Fatalf("AbortStale: %d, %v; want 2", n, err)
	}
	for name, h := range map[string][]byte{"with blocks": blocks, "empty": empty} {
		if _, err := d.ResumeMultipart(ctx, h); !errors.Is(err, storage.ErrHandleExpired) {
			t.Errorf("resume of the reaped %s write: %v; want ErrHandleExpired", name, err)
		}
	}
	if c, u, err := d.BlockSizes(ctx, "data/blocks"); !bloberror.HasCode(err, bloberror.BlobNotFound) && (err != nil || len(c)+len(u) != 0) {
		t.Errorf("blocks of a reaped write: %d committed, %d uncommitted, %v; want none", len(c), len(u), err)
	}
	m, err := d.ResumeMultipart(ctx, active)
	if err != nil {
		t.Fatalf("the active write was reaped: %v", err)
	}
	if _, err := m.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := d.AbortStale(ctx, time.Now().Add(time.Hour), false); err != nil || n != 0 {
		t.Errorf("AbortStale after everything finished: %d, %v; want 0", n, err)
	}
	page, err := d.List(ctx, "data/", "", 0)
	if err != nil || len(page.Objects) != 1 || page.Objects[0].Key != "data/active" {
		t.Fatalf("List after reaping = %+v, %v; want only data/active", page.Objects, err)
	}
	if err := d.Delete(ctx, "data/active"); err != nil {
		t.Fatal(err)
	}
}

// TestDriverSASToken runs the suite with a container SAS as the only
// credential: no shared key, so deletes may have to leave the batch API.
func TestDriverSASToken(t *testing.T) {
	srv := azuretest.Start(t)
	cred, err := blob.NewSharedKeyCredential(azuretest.AccountName, azuretest.AccountKey)
	if err != nil {
		t.Fatal(err)
	}
	perms := sas.ContainerPermissions{Read: true, Add: true, Create: true, Write: true, Delete: true, List: true}
	qp, err := sas.BlobSignatureValues{
		Protocol: sas.ProtocolHTTPSandHTTP, ExpiryTime: time.Now().Add(time.Hour),
		Permissions: perms.String(), ContainerName: srv.Container,
	}.SignWithSharedKey(cred)
	if err != nil {
		t.Fatal(err)
	}
	cfg := srv.Config("sas-" + strings.ToLower(rand.Text()))
	cfg.AccountKey = ""
	cfg.SASToken = qp.Encode()
	drivertest.RunWith(t, func(t *testing.T) storage.Driver { return newTestDriver(t, cfg) },
		drivertest.Config{LargeSize: 16 << 20})
	d := newTestDriver(t, cfg)
	if _, err := d.Put(context.Background(), "x", bytes.NewReader(nil), storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := d.DeleteBatch(context.Background(), []string{"x", "y"}); err != nil {
		t.Fatalf("DeleteBatch with a SAS: %v", err)
	}
}
