// Package s3 is the storage driver for Amazon S3 and S3-compatible servers
// (MinIO, Ceph RGW, ...), built on aws-sdk-go-v2.
//
// Keys map to <root_directory>/<key> in the bucket. The driver keeps its
// own bookkeeping objects (multipart tails, probes) under
// <root_directory>/_stratus/, which List hides and which storage keys may
// not use. A bucket lifecycle rule that aborts incomplete multipart
// uploads and expires <root_directory>/_stratus/uploads/ after a few days
// reclaims what crashed processes leave behind; the registry's GC aborts
// the uploads it knows about.
package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/logging"

	"github.com/stratus-registry/stratus/storage"
)

// smallBufSize is the buffer of appends small enough to stay in the tail;
// below MinPartSize, so a small append is never a part by itself. One
// byte over 1 MiB, so that the 1 MiB chunks clients commonly send are seen
// to end in it.
const smallBufSize = 1<<20 + 1

// maxListKeys is S3's page size limit.
const maxListKeys = 1000

// Driver is the S3 storage driver. It is safe for concurrent use.
type Driver struct {
	cfg       Config
	client    *s3.Client
	presign   *s3.PresignClient
	transport *http.Transport
	logger    *slog.Logger
	root      string // "" or "<root_directory>/"

	// bufs recycles part buffers (cfg.PartSize bytes each) between
	// uploads, so that 1 MiB PATCHes do not allocate 8 MiB apiece.
	bufs sync.Pool
	// smallBufs serve appends that fit in smallBufSize.
	smallBufs sync.Pool
	// budget is reserved from before a buffer of either pool is taken.
	budget storage.BufferBudget

	// cond records whether the server honours If-None-Match on writes,
	// learnt by a probe on the first create-only Put.
	condMu sync.Mutex
	cond   condSupport
}

type condSupport int

const (
	condUnknown condSupport = iota
	condSupported
	condIgnored
)

var (
	_ storage.Driver    = (*Driver)(nil)
	_ storage.URLSigner = (*Driver)(nil)
	_ storage.Budgeted  = (*Driver)(nil)
)

// New builds a driver from cfg (defaults applied, then validated). It does
// not contact the store, so a registry can start while S3 is unreachable;
// the first operation reports that.
func New(ctx context.Context, cfg Config, logger *slog.Logger) (*Driver, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}

	awsCfg, transport, err := loadAWSConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.ForcePathStyle
		// Checksums only where S3 demands them (DeleteObjects): parts
		// then carry none, so the handle needs only ETags, and servers
		// that predate flexible checksums keep working. The registry
		// verifies digests itself.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		o.Logger = sdkLogger{logger}
	})

	d := &Driver{
		cfg:       cfg,
		client:    client,
		presign:   s3.NewPresignClient(client),
		transport: transport,
		logger:    logger,
		budget:    storage.NoBudget{},
	}
	if root := strings.Trim(cfg.RootDirectory, "/"); root != "" {
		d.root = root + "/"
	}
	partSize := int(cfg.PartSize)
	d.bufs.New = func() any {
		b := make([]byte, partSize)
		return &b
	}
	d.smallBufs.New = func() any {
		b := make([]byte, smallBufSize)
		return &b
	}
	return d, nil
}

// loadAWSConfig resolves credentials and region the SDK's way (static keys,
// a profile, or the default chain) on an HTTP client whose timeouts bound
// connecting and waiting for headers only. It returns the transport too, so
// that Close can release its connections.
func loadAWSConfig(ctx context.Context, cfg Config) (aws.Config, *http.Transport, error) {
	// request_timeout bounds connecting and waiting for headers, never a
	// whole body, which may stream for as long as it needs.
	httpClient := awshttp.NewBuildableClient().
		WithDialerOptions(func(dl *net.Dialer) { dl.Timeout = cfg.RequestTimeout }).
		WithTransportOptions(func(tr *http.Transport) {
			tr.TLSHandshakeTimeout = cfg.RequestTimeout
			tr.ResponseHeaderTimeout = cfg.RequestTimeout
			tr.MaxIdleConnsPerHost = 64 // one host, many concurrent requests
		})
	opts := []func(*awsconfig.LoadOptions) error{
		awsconfig.WithHTTPClient(httpClient),
		awsconfig.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = cfg.maxAttempts()
				o.Retryables = append(o.Retryables, retry.RetryableErrorCode{Codes: map[string]struct{}{
					"SlowDown":                   {},
					"InternalError":              {},
					"ConditionalRequestConflict": {},
				}})
			})
		}),
	}
	if cfg.Region != "" {
		opts = append(opts, awsconfig.WithRegion(cfg.Region))
	}
	if cfg.Profile != "" {
		opts = append(opts, awsconfig.WithSharedConfigProfile(cfg.Profile))
	}
	if cfg.AccessKey != "" {
		opts = append(opts, awsconfig.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(cfg.AccessKey, cfg.SecretKey, cfg.SessionToken)))
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, nil, fmt.Errorf("storage.s3: loading AWS configuration: %w", err)
	}
	if awsCfg.Region == "" {
		awsCfg.Region = "us-east-1"
	}
	// Take the transport as configuration left it (a custom CA bundle is
	// applied to it) into a client we own, so that Close can release its
	// connections.
	transport := httpClient.GetTransport()
	if bc, ok := awsCfg.HTTPClient.(*awshttp.BuildableClient); ok {
		transport = bc.GetTransport()
	}
	awsCfg.HTTPClient = &http.Client{Transport: transport}
	return awsCfg, transport, nil
}

// Name implements storage.Driver.
func (d *Driver) Name() string { return driverName }

// Close releases idle connections.
func (d *Driver) Close() error {
	d.transport.CloseIdleConnections()
	return nil
}

// objectKey maps a storage key to the bucket.
func (d *Driver) objectKey(key string) string { return d.root + key }

// checkKey rejects invalid keys and the driver's own namespace.
func (d *Driver) checkKey(op, key string) error { return storage.CheckDriverKey(driverName, op, key) }

func (d *Driver) getBuf() *[]byte  { return d.bufs.Get().(*[]byte) }
func (d *Driver) putBuf(b *[]byte) { d.bufs.Put(b) }

// SetBufferBudget implements storage.Budgeted.
func (d *Driver) SetBufferBudget(b storage.BufferBudget) { d.budget = b }

// reserve takes a buffer from pool (of size bytes each) once the budget
// grants size; done returns both.
func (d *Driver) reserve(ctx context.Context, pool *sync.Pool, size int) (bp *[]byte, done func(), err error) {
	release, err := d.budget.Acquire(ctx, int64(size))
	if err != nil {
		return nil, nil, err
	}
	bp = pool.Get().(*[]byte)
	return bp, func() { pool.Put(bp); release() }, nil
}

// sse adds the configured server-side encryption to a write.
func (d *Driver) sse() (types.ServerSideEncryption, *string) {
	if d.cfg.SSE == "" {
		return "", nil
	}
	var kms *string
	if d.cfg.KMSKeyID != "" {
		kms = aws.String(d.cfg.KMSKeyID)
	}
	return types.ServerSideEncryption(d.cfg.SSE), kms
}

// Stat implements storage.Driver.
func (d *Driver) Stat(ctx context.Context, key string) (storage.Info, error) {
	if err := d.checkKey("stat", key); err != nil {
		return storage.Info{}, err
	}
	out, err := d.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &d.cfg.Bucket, Key: aws.String(d.objectKey(key))})
	if err != nil {
		return storage.Info{}, opError("stat", key, err)
	}
	return storage.Info{
		Key:     key,
		Size:    aws.ToInt64(out.ContentLength),
		ModTime: aws.ToTime(out.LastModified),
		ETag:    trimETag(out.ETag),
	}, nil
}

func trimETag(etag *string) string { return strings.Trim(aws.ToString(etag), `"`) }

// Reader implements storage.Driver.
func (d *Driver) Reader(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	if err := d.checkKey("read", key); err != nil {
		return nil, err
	}
	return storage.OpenRange(ctx, storage.RangeRead{
		Driver: driverName, Key: key,
		Stat: func(ctx context.Context) (storage.Info, error) { return d.Stat(ctx, key) },
		Open: func(ctx context.Context, offset, length int64) (io.ReadCloser, error) {
			in := &s3.GetObjectInput{Bucket: &d.cfg.Bucket, Key: aws.String(d.objectKey(key))}
			if length > 0 {
				in.Range = aws.String(fmt.Sprintf("bytes=%d-%d", offset, offset+length-1))
			} else if offset > 0 {
				in.Range = aws.String(fmt.Sprintf("bytes=%d-", offset))
			}
			// Without a range an empty object reads fine; with one S3
			// answers 416 when the range starts at the end, which
			// OpenRange resolves.
			out, err := d.client.GetObject(ctx, in)
			if err != nil {
				return nil, opError("read", key, err)
			}
			return storage.ClassifyBody(out.Body, func(err error) error { return opError("read", key, err) }), nil
		},
	}, offset, length)
}

// List implements storage.Driver.
func (d *Driver) List(ctx context.Context, prefix, startAfter string, limit int) (storage.ListPage, error) {
	if !storage.PossiblePrefix(prefix) {
		return storage.ListPage{}, nil
	}
	limit = storage.PageLimit(limit, maxListKeys, maxListKeys)
	in := &s3.ListObjectsV2Input{
		Bucket:  &d.cfg.Bucket,
		Prefix:  aws.String(d.objectKey(prefix)),
		MaxKeys: aws.Int32(int32(limit)),
	}
	if startAfter != "" {
		in.StartAfter = aws.String(d.objectKey(startAfter))
	}
	var page storage.ListPage
	for {
		out, err := d.client.ListObjectsV2(ctx, in)
		if err != nil {
			return storage.ListPage{}, opError("list", prefix, err)
		}
		for _, o := range out.Contents {
			key := strings.TrimPrefix(aws.ToString(o.Key), d.root)
			if strings.HasPrefix(key, storage.InternalDir) {
				continue
			}
			page.Objects = append(page.Objects, storage.Info{
				Key:     key,
				Size:    aws.ToInt64(o.Size),
				ModTime: aws.ToTime(o.LastModified),
				ETag:    trimETag(o.ETag),
			})
		}
		page.More = aws.ToBool(out.IsTruncated)
		// A page of nothing but internal objects has no last key to
		// continue from, so read on; one page is in memory at a time.
		if len(page.Objects) > 0 || !page.More || out.NextContinuationToken == nil {
			return page, nil
		}
		in.ContinuationToken = out.NextContinuationToken
	}
}

// Delete implements storage.Driver.
func (d *Driver) Delete(ctx context.Context, key string) error {
	if err := d.checkKey("delete", key); err != nil {
		return err
	}
	return d.deleteObject(ctx, "delete", key, d.objectKey(key))
}

func (d *Driver) deleteObject(ctx context.Context, op, key, objectKey string) error {
	_, err := d.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &d.cfg.Bucket, Key: aws.String(objectKey)})
	if err = opError(op, key, err); errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	return err
}

// DeleteBatch implements storage.Driver.
func (d *Driver) DeleteBatch(ctx context.Context, keys []string) error {
	objectKeys, err := storage.StoreKeys(driverName, "delete", keys, d.objectKey)
	if err != nil {
		return err
	}
	return d.deleteObjects(ctx, objectKeys)
}

// deleteObjects removes bucket keys, 1,000 per request (S3's limit), and
// reports each key that failed.
func (d *Driver) deleteObjects(ctx context.Context, objectKeys []string) error {
	var errs []error
	for len(objectKeys) > 0 {
		n := min(len(objectKeys), maxListKeys)
		chunk := objectKeys[:n]
		objectKeys = objectKeys[n:]
		ids := make([]types.ObjectIdentifier, len(chunk))
		for i := range chunk {
			ids[i] = types.ObjectIdentifier{Key: aws.String(chunk[i])}
		}
		out, err := d.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{
			Bucket: &d.cfg.Bucket,
			Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)},
		})
		if err != nil {
			return opError("delete", strings.TrimPrefix(chunk[0], d.root), err)
		}
		for _, e := range out.Errors {
			if aws.ToString(e.Code) == "NoSuchKey" {
				continue
			}
			apiErr := &keyError{code: aws.ToString(e.Code), message: aws.ToString(e.Message)}
			errs = append(errs, opError("delete", strings.TrimPrefix(aws.ToString(e.Key), d.root), apiErr))
		}
	}
	return errors.Join(errs...)
}

// keyError is one key's failure inside a DeleteObjects answer; it is a
// smithy.APIError so that classify reads its code like any other.
type keyError struct{ code, message string }

func (e *keyError) Error() string                 { return e.code + ": " + e.message }
func (e *keyError) ErrorCode() string             { return e.code }
func (e *keyError) ErrorMessage() string          { return e.message }
func (e *keyError) ErrorFault() smithy.ErrorFault { return smithy.FaultUnknown }

// SignedURL implements storage.URLSigner. It returns ErrUnsupported unless
// redirect is enabled, so that the registry streams instead. ttl <= 0
// means redirect_expiry.
func (d *Driver) SignedURL(ctx context.Context, key string, ttl time.Duration) (string, error) {
	if err := d.checkKey("sign", key); err != nil {
		return "", err
	}
	if !d.cfg.Redirect {
		return "", &storage.OpError{Op: "sign", Driver: driverName, Key: key, Err: fmt.Errorf("%w: storage.s3.redirect is off", storage.ErrUnsupported)}
	}
	if ttl <= 0 {
		ttl = d.cfg.RedirectExpiry
	}
	ttl = min(ttl, maxPresignExpiry)
	req, err := d.presign.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: &d.cfg.Bucket, Key: aws.String(d.objectKey(key))},
		s3.WithPresignExpires(ttl))
	if err != nil {
		return "", opError("sign", key, err)
	}
	return req.URL, nil
}

// sdkLogger sends the SDK's own log lines (retries, deprecations) to slog.
type sdkLogger struct{ l *slog.Logger }

func (s sdkLogger) Logf(c logging.Classification, format string, v ...any) {
	level := slog.LevelDebug
	if c == logging.Warn {
		level = slog.LevelWarn
	}
	s.l.Log(context.Background(), level, fmt.Sprintf(format, v...), "source", "aws-sdk")
}
