package s3_test

import (
	"bytes"
	"crypto/rand"
	"io"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/stratus-registry/stratus/storage"
	"github.com/stratus-registry/stratus/storage/s3/s3test"
)

// BenchmarkDirectVsDriver compares the driver with bare SDK calls on the
// same MinIO, to show what the driver's bookkeeping costs:
//
//	go test -run '^$' -bench DirectVsDriver ./storage/s3/
func BenchmarkDirectVsDriver(b *testing.B) {
	srv := s3test.Start(b)
	prefix := "bench-" + strings.ToLower(rand.Text())
	d := newTestDriver(b, srv.Config(prefix))
	client := srv.Client()
	for _, size := range []int{4 << 10, 1 << 20, 32 << 20} {
		data := make([]byte, size)
		rand.Read(data)
		name := storage.Size(size).String()
		key := "obj-" + name

		b.Run("put/"+name+"/direct", func(b *testing.B) {
			b.SetBytes(int64(size))
			for b.Loop() {
				_, err := client.PutObject(b.Context(), &awss3.PutObjectInput{
					Bucket: aws.String(srv.Bucket), Key: aws.String(prefix + "/direct-" + key),
					Body: bytes.NewReader(data), ContentLength: aws.Int64(int64(size)),
				})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("put/"+name+"/driver", func(b *testing.B) {
			b.SetBytes(int64(size))
			for b.Loop() {
				if _, err := d.Put(b.Context(), key, bytes.NewReader(data), storage.PutOptions{Size: -1}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("get/"+name+"/direct", func(b *testing.B) {
			b.SetBytes(int64(size))
			for b.Loop() {
				out, err := client.GetObject(b.Context(), &awss3.GetObjectInput{Bucket: aws.String(srv.Bucket), Key: aws.String(prefix + "/direct-" + key)})
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, out.Body)
				out.Body.Close()
			}
		})
		b.Run("get/"+name+"/driver", func(b *testing.B) {
			b.SetBytes(int64(size))
			for b.Loop() {
				rc, err := d.Reader(b.Context(), key, 0, -1)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, rc)
				rc.Close()
			}
		})
		d.Delete(b.Context(), key)
		d.Delete(b.Context(), "direct-"+key)
	}
}
