package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// direct moves the same bytes straight to the backend, without a registry:
// the ceiling a registry on that backend cannot beat.
type direct interface {
	put(ctx context.Context, key string, b *blob) error
	get(ctx context.Context, key string, size int64) error
}

// fsDirect writes and fsyncs files in a temp dir, then reads them back.
type fsDirect struct{ dir string }

func (d fsDirect) put(ctx context.Context, key string, b *blob) error {
	p := filepath.Join(d.dir, key)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	f, err := os.Create(p)
	if err != nil {
		return err
	}
	buf := make([]byte, 256<<10)
	_, err = io.CopyBuffer(struct{ io.Writer }{f}, ctxReader{ctx, b.Reader()}, buf)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func (d fsDirect) get(ctx context.Context, key string, size int64) error {
	f, err := os.Open(filepath.Join(d.dir, key))
	if err != nil {
		return err
	}
	defer f.Close()
	return readAll(ctxReader{ctx, f}, size)
}

// ctxReader stops a long local copy when the run is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

func readAll(r io.Reader, size int64) error {
	buf := make([]byte, 256<<10)
	n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{r}, buf)
	if err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("read %d bytes, want %d", n, size)
	}
	return nil
}

// s3Direct uses one PutObject / GetObject per blob, unsigned payload (the
// body is not read twice to sign it) and no extra checksums.
type s3Direct struct {
	client *s3.Client
	bucket string
}

func newS3Client(m *minioServer) *s3.Client {
	return s3.New(s3.Options{
		Region:                     "us-east-1",
		BaseEndpoint:               aws.String(m.endpoint),
		UsePathStyle:               true,
		Credentials:                credentials.NewStaticCredentialsProvider(m.accessKey, m.secretKey, ""),
		HTTPClient:                 &http.Client{Transport: newHTTPClient().Transport},
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
}

func createBucket(ctx context.Context, c *s3.Client, name string) error {
	_, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)})
	var owned *types.BucketAlreadyOwnedByYou
	if err != nil && !errors.As(err, &owned) {
		return fmt.Errorf("creating bucket %s: %w", name, err)
	}
	return nil
}

func (d s3Direct) put(ctx context.Context, key string, b *blob) error {
	_, err := d.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(d.bucket),
		Key:           aws.String(key),
		Body:          b.Reader(),
		ContentLength: aws.Int64(b.Size),
	}, s3.WithAPIOptions(v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware))
	if err != nil {
		return fmt.Errorf("PutObject %s: %w", key, err)
	}
	return nil
}

func (d s3Direct) get(ctx context.Context, key string, size int64) error {
	out, err := d.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(d.bucket), Key: aws.String(key)})
	if err != nil {
		return fmt.Errorf("GetObject %s: %w", key, err)
	}
	defer out.Body.Close()
	return readAll(out.Body, size)
}
