package main

// The counting proxy in front of MinIO: how many bytes each contender
// makes the object store write, which is what MinIO grows by while an
// upload runs.

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// s3Counter is a reverse proxy that every client of one MinIO goes through
// (the registries and the direct ceiling alike, so all pay the same hop).
// Per bucket it adds up the bytes each PUT carries (PutObject, UploadPart)
// and, for server-side copies (CopyObject, UploadPartCopy), the size of
// the copied source, which MinIO writes again without the bytes passing
// through here.
type s3Counter struct {
	srv      *http.Server
	endpoint string     // http://127.0.0.1:PORT, in place of MinIO's
	head     *s3.Client // straight to MinIO, to size copy sources
	log      *slog.Logger

	mu      sync.Mutex
	buckets map[string]*atomic.Int64
}

func startS3Counter(m *minioServer, log *slog.Logger) (*s3Counter, error) {
	target, err := url.Parse(m.endpoint)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	sc := &s3Counter{endpoint: "http://" + ln.Addr().String(), head: newS3Client(m), log: log, buckets: make(map[string]*atomic.Int64)}
	proxy := &httputil.ReverseProxy{
		// The Host header passes through: clients sign the proxy's
		// address, and MinIO checks the signature against it.
		Rewrite:    func(pr *httputil.ProxyRequest) { pr.SetURL(target); pr.Out.Host = pr.In.Host },
		Transport:  newHTTPClient().Transport,
		ErrorLog:   slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BufferPool: bufPool{},
	}
	sc.srv = &http.Server{Handler: sc.wrap(proxy), ReadHeaderTimeout: 10 * time.Second}
	go sc.srv.Serve(ln)
	return sc, nil
}

func (sc *s3Counter) close() { sc.srv.Close() }

// written returns the bytes written into bucket so far.
func (sc *s3Counter) written(bucket string) int64 { return sc.counter(bucket).Load() }

func (sc *s3Counter) counter(bucket string) *atomic.Int64 {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	c := sc.buckets[bucket]
	if c == nil {
		c = new(atomic.Int64)
		sc.buckets[bucket] = c
	}
	return c
}

func (sc *s3Counter) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPut {
			next.ServeHTTP(w, r)
			return
		}
		bucket, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		c := sc.counter(bucket)
		if src := r.Header.Get("X-Amz-Copy-Source"); src != "" {
			// Sized before the copy: a copied tail segment is deleted
			// right after it.
			c.Add(sc.copySize(r.Context(), src, r.Header.Get("X-Amz-Copy-Source-Range")))
			next.ServeHTTP(w, r)
			return
		}
		if dec := r.Header.Get("X-Amz-Decoded-Content-Length"); dec != "" {
			// aws-chunked: the body carries chunk signatures around the data.
			if n, err := strconv.ParseInt(dec, 10, 64); err == nil {
				c.Add(n)
				next.ServeHTTP(w, r)
				return
			}
		}
		r.Body = &countingBody{ReadCloser: r.Body, n: c}
		next.ServeHTTP(w, r)
	})
}

// copySize is how many bytes a copy from src ("bucket/key", URL-escaped,
// optionally ?versionId=) writes: its range, or the whole source object.
func (sc *s3Counter) copySize(ctx context.Context, src, rng string) int64 {
	if first, last, ok := parseByteRange(rng); ok {
		return last - first + 1
	}
	src, _, _ = strings.Cut(src, "?")
	if u, err := url.PathUnescape(src); err == nil {
		src = u
	}
	bucket, key, _ := strings.Cut(strings.TrimPrefix(src, "/"), "/")
	out, err := sc.head.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		sc.log.Warn("sizing a copy source", "source", src, "err", err)
		return 0
	}
	return aws.ToInt64(out.ContentLength)
}

// parseByteRange parses "bytes=first-last".
func parseByteRange(s string) (first, last int64, ok bool) {
	a, b, found := strings.Cut(strings.TrimPrefix(s, "bytes="), "-")
	if !found {
		return 0, 0, false
	}
	first, err1 := strconv.ParseInt(a, 10, 64)
	last, err2 := strconv.ParseInt(b, 10, 64)
	return first, last, err1 == nil && err2 == nil && last >= first
}

// countingBody adds what is read through it to n.
type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	k, err := b.ReadCloser.Read(p)
	b.n.Add(int64(k))
	return k, err
}

// empty deletes every object of bucket (the memory workload's blobs
// would otherwise fill the disk round after round).
func (sc *s3Counter) empty(ctx context.Context, bucket string) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	pages := s3.NewListObjectsV2Paginator(sc.head, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			sc.log.Warn("emptying bucket", "bucket", bucket, "err", err)
			return
		}
		var ids []types.ObjectIdentifier
		for _, o := range page.Contents {
			ids = append(ids, types.ObjectIdentifier{Key: o.Key})
		}
		if len(ids) == 0 {
			continue
		}
		if _, err := sc.head.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String(bucket), Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)}}); err != nil {
			sc.log.Warn("emptying bucket", "bucket", bucket, "err", err)
			return
		}
	}
}
