// Package gcs is the storage driver for Google Cloud Storage, built on
// cloud.google.com/go/storage (JSON API for metadata and writes, XML API
// for reads).
//
// Keys map to <root_directory>/<key> in the bucket. The driver keeps the
// temporary objects of resumable writes under <root_directory>/_stratus/,
// which List hides and which storage keys may not use. A bucket lifecycle
// rule that deletes <root_directory>/_stratus/uploads/ objects after a few
// days reclaims what crashed processes leave behind; the registry's GC
// aborts the writes it knows about (AbortStale).
package gcs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	gcs "cloud.google.com/go/storage"
	"github.com/googleapis/gax-go/v2"
	"golang.org/x/sync/errgroup"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
	htransport "google.golang.org/api/transport/http"

	"github.com/stratus-registry/stratus/storage"
)

const (
	// maxListKeys is the JSON API's page size limit.
	maxListKeys = 1000
	// deleteConcurrency: the Go client has no batch delete, so DeleteBatch
	// runs this many single deletes at once.
	deleteConcurrency = 16
)

// Driver is the GCS storage driver. It is safe for concurrent use.
type Driver struct {
	cfg       Config
	client    *gcs.Client
	bucket    *gcs.BucketHandle
	transport *http.Transport
	logger    *slog.Logger
	root      string // "" or "<root_directory>/"
	// signer is the service-account key of credentials_file, when there
	// is one; otherwise signing goes through IAM signBlob.
	signer   *serviceAccountKey
	insecure bool // the endpoint is plain http (emulators)

	// bufs recycles chunk_size buffers between writes, so that 1 MiB
	// PATCHes do not allocate a chunk apiece.
	bufs sync.Pool
}

var (
	_ storage.Driver          = (*Driver)(nil)
	_ storage.URLSigner       = (*Driver)(nil)
	_ storage.MultipartReaper = (*Driver)(nil)
)

// serviceAccountKey is the part of a key file that signing needs.
type serviceAccountKey struct {
	Email      string `json:"client_email"`
	PrivateKey string `json:"private_key"`
}

// New builds a driver from cfg (defaults applied, then validated). It does
// not contact the store, so a registry can start while GCS is unreachable;
// the first operation reports that.
func New(ctx context.Context, cfg Config, logger *slog.Logger) (*Driver, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	d := &Driver{cfg: cfg, logger: logger}
	if root := strings.Trim(cfg.RootDirectory, "/"); root != "" {
		d.root = root + "/"
	}
	chunk := int(cfg.ChunkSize)
	d.bufs.New = func() any {
		b := make([]byte, chunk)
		return &b
	}

	// request_timeout bounds connecting and waiting for headers, never a
	// whole body, which may stream for as long as it needs.
	dialer := &net.Dialer{Timeout: cfg.RequestTimeout, KeepAlive: 30 * time.Second}
	d.transport = &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64, // one host, many concurrent requests
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   cfg.RequestTimeout,
		ResponseHeaderTimeout: cfg.RequestTimeout,
	}
	var opts []option.ClientOption
	emulator := os.Getenv("STORAGE_EMULATOR_HOST") != ""
	if cfg.Endpoint != "" && !emulator {
		opts = append(opts, option.WithEndpoint(strings.TrimRight(cfg.Endpoint, "/")+"/storage/v1/"))
		d.insecure = strings.HasPrefix(cfg.Endpoint, "http://")
	}
	if emulator {
		d.insecure = !strings.HasPrefix(os.Getenv("STORAGE_EMULATOR_HOST"), "https://")
	}
	authOpts := []option.ClientOption{option.WithScopes(gcs.ScopeReadWrite)}
	switch {
	case cfg.Anonymous || emulator:
		authOpts = []option.ClientOption{option.WithoutAuthentication()}
	case cfg.CredentialsFile != "":
		key, err := readKeyFile(cfg.CredentialsFile)
		if err != nil {
			return nil, err
		}
		d.signer = key
		authOpts = append(authOpts, option.WithAuthCredentialsFile(option.ServiceAccount, cfg.CredentialsFile))
	}
	// The client's own transport would ignore our timeouts; wrap ours with
	// the credentials instead.
	rt, err := htransport.NewTransport(ctx, d.transport, authOpts...)
	if err != nil {
		return nil, fmt.Errorf("storage.gcs: credentials: %w", err)
	}
	opts = append(opts, option.WithHTTPClient(&http.Client{Transport: rt}))
	client, err := gcs.NewClient(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("storage.gcs: creating the client: %w", err)
	}
	// Idempotent calls (reads, metadata, writes with preconditions) are
	// retried; others only where a call site makes them idempotent.
	client.SetRetry(
		gcs.WithMaxAttempts(cfg.maxAttempts()),
		gcs.WithBackoff(gax.Backoff{Initial: 100 * time.Millisecond, Max: 5 * time.Second, Multiplier: 2}),
		gcs.WithPolicy(gcs.RetryIdempotent),
	)
	d.client = client
	d.bucket = client.Bucket(cfg.Bucket)
	return d, nil
}

// readKeyFile loads the signing identity from a service-account key file.
func readKeyFile(path string) (*serviceAccountKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("storage.gcs.credentials_file: %w", err)
	}
	var key serviceAccountKey
	if err := json.Unmarshal(b, &key); err != nil {
		return nil, fmt.Errorf("storage.gcs.credentials_file: %s is not a JSON key file: %w", path, err)
	}
	if key.Email == "" || key.PrivateKey == "" {
		return nil, fmt.Errorf("storage.gcs.credentials_file: %s has no client_email or private_key (not a service-account key)", path)
	}
	return &key, nil
}

// Name implements storage.Driver.
func (d *Driver) Name() string { return driverName }

// Close releases the client and idle connections.
func (d *Driver) Close() error {
	err := d.client.Close()
	d.transport.CloseIdleConnections()
	return err
}

func (d *Driver) getBuf() *[]byte  { return d.bufs.Get().(*[]byte) }
func (d *Driver) putBuf(b *[]byte) { d.bufs.Put(b) }

// objectKey maps a storage key to the bucket.
func (d *Driver) objectKey(key string) string { return d.root + key }

// object is the handle of a storage key.
func (d *Driver) object(key string) *gcs.ObjectHandle { return d.bucket.Object(d.objectKey(key)) }

// checkKey rejects invalid keys and the driver's own namespace.
func (d *Driver) checkKey(op, key string) error { return storage.CheckDriverKey(driverName, op, key) }

func infoOf(key string, a *gcs.ObjectAttrs) storage.Info {
	return storage.Info{Key: key, Size: a.Size, ModTime: a.Updated, ETag: a.Etag}
}

// Stat implements storage.Driver.
func (d *Driver) Stat(ctx context.Context, key string) (storage.Info, error) {
	if err := d.checkKey("stat", key); err != nil {
		return storage.Info{}, err
	}
	a, err := d.object(key).Attrs(ctx)
	if err != nil {
		return storage.Info{}, opError("stat", key, err)
	}
	return infoOf(key, a), nil
}

// Reader implements storage.Driver.
func (d *Driver) Reader(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	if err := d.checkKey("read", key); err != nil {
		return nil, err
	}
	return storage.OpenRange(ctx, storage.RangeRead{
		Driver: driverName, Key: key,
		Stat: func(ctx context.Context) (storage.Info, error) { return d.Stat(ctx, key) },
		Open: func(ctx context.Context, offset, length int64) (io.ReadCloser, error) {
			// GCS answers 416 for a range that starts at the end too,
			// which OpenRange resolves.
			r, err := d.object(key).NewRangeReader(ctx, offset, max(length, -1))
			if err != nil {
				return nil, opError("read", key, err)
			}
			if offset > r.Attrs.Size && r.Attrs.Size >= 0 {
				// Some servers answer an unsatisfiable range with the
				// whole object.
				r.Close()
				return nil, storage.RangeError(driverName, key, offset, r.Attrs.Size)
			}
			return storage.ClassifyBody(r, func(err error) error { return opError("read", key, err) }), nil
		},
	}, offset, length)
}

// List implements storage.Driver. One call reads one page of the bucket
// listing (a few more objects when it must skip internal ones); the next
// page starts from the last key returned.
func (d *Driver) List(ctx context.Context, prefix, startAfter string, limit int) (storage.ListPage, error) {
	if !storage.PossiblePrefix(prefix) {
		return storage.ListPage{}, nil
	}
	limit = storage.PageLimit(limit, maxListKeys, maxListKeys)
	q := &gcs.Query{Prefix: d.objectKey(prefix), Projection: gcs.ProjectionNoACL}
	if startAfter != "" {
		// StartOffset is inclusive: the key itself is skipped below.
		q.StartOffset = d.objectKey(startAfter)
	}
	if err := q.SetAttrSelection([]string{"Name", "Size", "Updated", "Etag"}); err != nil {
		return storage.ListPage{}, opError("list", prefix, err)
	}
	it := d.bucket.Objects(ctx, q)
	// One more than asked: startAfter itself may come first.
	it.PageInfo().MaxSize = min(limit+1, maxListKeys)
	var page storage.ListPage
	for len(page.Objects) < limit {
		a, err := it.Next()
		if err == iterator.Done {
			return page, nil
		}
		if err != nil {
			return storage.ListPage{}, opError("list", prefix, err)
		}
		key := strings.TrimPrefix(a.Name, d.root)
		if strings.HasPrefix(key, storage.InternalDir) || (startAfter != "" && key <= startAfter) {
			continue
		}
		page.Objects = append(page.Objects, infoOf(key, a))
	}
	// Full: more may follow if this page has unread objects or a next one.
	page.More = it.PageInfo().Remaining() > 0 || it.PageInfo().Token != ""
	return page, nil
}

// Delete implements storage.Driver.
func (d *Driver) Delete(ctx context.Context, key string) error {
	if err := d.checkKey("delete", key); err != nil {
		return err
	}
	return d.deleteObject(ctx, "delete", key, d.objectKey(key))
}

// deleteObject removes one bucket object; a missing one is fine, which
// makes the delete idempotent, so it is retried like one.
func (d *Driver) deleteObject(ctx context.Context, op, key, objectKey string) error {
	err := d.bucket.Object(objectKey).Retryer(gcs.WithPolicy(gcs.RetryAlways)).Delete(ctx)
	if err = opError(op, key, err); errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	return err
}

// DeleteBatch implements storage.Driver. The Go client has no batch
// request, so the deletes run deleteConcurrency at a time.
func (d *Driver) DeleteBatch(ctx context.Context, keys []string) error {
	objectKeys, err := storage.StoreKeys(driverName, "delete", keys, d.objectKey)
	if err != nil {
		return err
	}
	return d.deleteObjects(ctx, objectKeys)
}

// deleteObjects removes bucket keys concurrently and reports each failure.
func (d *Driver) deleteObjects(ctx context.Context, objectKeys []string) error {
	var (
		mu   sync.Mutex
		errs []error
		g    errgroup.Group
	)
	g.SetLimit(deleteConcurrency)
	seen := make(map[string]bool, len(objectKeys))
	for _, k := range objectKeys {
		if seen[k] {
			continue
		}
		seen[k] = true
		g.Go(func() error {
			if err := d.deleteObject(ctx, "delete", strings.TrimPrefix(k, d.root), k); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
			return nil
		})
	}
	g.Wait()
	return errors.Join(errs...)
}

// SignedURL implements storage.URLSigner with a V4 signature. It returns
// ErrUnsupported unless redirect is enabled, so that the registry streams
// instead. ttl <= 0 means redirect_expiry, which also caps longer ones
// (at most 7 days, the V4 limit, by Validate). With credentials_file the key
// signs locally; otherwise the client signs through IAM signBlob as the
// default service account (workload identity).
func (d *Driver) SignedURL(ctx context.Context, key string, ttl time.Duration) (string, error) {
	if err := d.checkKey("sign", key); err != nil {
		return "", err
	}
	if !d.cfg.Redirect {
		return "", &storage.OpError{Op: "sign", Driver: driverName, Key: key, Err: fmt.Errorf("%w: storage.gcs.redirect is off", storage.ErrUnsupported)}
	}
	if ttl <= 0 || ttl > d.cfg.RedirectExpiry {
		// The operator's redirect_expiry bounds what callers ask for.
		ttl = d.cfg.RedirectExpiry
	}
	opts := &gcs.SignedURLOptions{
		Scheme: gcs.SigningSchemeV4,
		Method: http.MethodGet,
		// The client writes Expires minus its own clock in whole seconds,
		// rounding down; the half second keeps X-Goog-Expires at ttl.
		Expires:  time.Now().Add(ttl + 500*time.Millisecond),
		Insecure: d.insecure,
	}
	if d.signer != nil {
		opts.GoogleAccessID = d.signer.Email
		opts.PrivateKey = []byte(d.signer.PrivateKey)
	}
	u, err := d.bucket.SignedURL(d.objectKey(key), opts)
	if err != nil {
		return "", opError("sign", key, err)
	}
	return u, nil
}
