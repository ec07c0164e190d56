package main

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestIsUploadWrite(t *testing.T) {
	const id = "0123456789abcdef0123456789abcdef"
	tests := []struct {
		method, target string
		want           bool
	}{
		{"PATCH", "/v2/a/b/blobs/uploads/" + id, true},
		{"PUT", "/v2/a/blobs/uploads/" + id + "?digest=sha256:x", true},
		{"GET", "/v2/a/blobs/uploads/" + id, false},
		{"DELETE", "/v2/a/blobs/uploads/" + id, false},
		{"POST", "/v2/a/blobs/uploads/?digest=sha256:x", true},
		{"POST", "/v2/a/blobs/uploads/", false},
		{"POST", "/v2/a/blobs/uploads/?mount=sha256:x&from=b", false},
		{"PUT", "/v2/a/manifests/v1", false},
		{"GET", "/v2/a/blobs/sha256:x", false},
	}
	for _, tt := range tests {
		if got := isUploadWrite(httptest.NewRequest(tt.method, tt.target, nil)); got != tt.want {
			t.Errorf("%s %s: %v, want %v", tt.method, tt.target, got, tt.want)
		}
	}
}

func TestCountUploadsWhileStreaming(t *testing.T) {
	g, err := newUploadsActive(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	var during []float64
	h := countUploads(g, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		during = append(during, testutil.ToFloat64(g))
		if r.Method == http.MethodPut {
			panic("handler failure")
		}
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("PATCH", "/v2/a/blobs/uploads/0123456789abcdef0123456789abcdef", nil))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/v2/a/manifests/v1", nil))
	func() {
		defer func() { recover() }()
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("PUT", "/v2/a/blobs/uploads/0123456789abcdef0123456789abcdef?digest=sha256:x", nil))
	}()
	if want := []float64{1, 0, 1}; len(during) != 3 || during[0] != want[0] || during[1] != want[1] || during[2] != want[2] {
		t.Errorf("gauge during the requests = %v, want %v", during, want)
	}
	if v := testutil.ToFloat64(g); v != 0 {
		t.Errorf("gauge after the requests = %v, want 0 (also after a panic)", v)
	}
}
