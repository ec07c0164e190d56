package integration

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"syscall"
	"testing"
)

// roundRobin is the load balancer of the multi-replica tests: no session
// affinity, every request goes to the next replica. A replica that refuses
// the connection (killed) is skipped, as a real balancer's health check
// would do; a request that reached a replica is never replayed.
type roundRobin struct {
	backends []string // host:port
	next     atomic.Uint64
	served   []atomic.Int64
	client   *http.Client
}

func newRoundRobin(t testing.TB, backends ...string) (*roundRobin, *httptest.Server) {
	rr := &roundRobin{
		backends: backends,
		served:   make([]atomic.Int64, len(backends)),
		client: &http.Client{
			// The client must see redirects and Location headers as the
			// replica wrote them.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
	srv := httptest.NewServer(rr)
	t.Cleanup(srv.Close)
	return rr, srv
}

// Served reports how many requests each replica answered.
func (rr *roundRobin) Served() []int64 {
	out := make([]int64, len(rr.served))
	for i := range rr.served {
		out[i] = rr.served[i].Load()
	}
	return out
}

func (rr *roundRobin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Bodies in these tests are chunks of at most a few MiB; buffering them
	// lets the balancer move a request whose connection was refused.
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	start := rr.next.Add(1)
	n := uint64(len(rr.backends))
	for i := uint64(0); i < n; i++ {
		idx := int((start + i) % n)
		req, err := http.NewRequestWithContext(r.Context(), r.Method, "http://"+rr.backends[idx]+r.URL.RequestURI(), bytes.NewReader(body))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		req.Header = r.Header.Clone()
		req.ContentLength = int64(len(body))
		resp, err := rr.client.Do(req)
		if err != nil {
			if isConnRefused(err) {
				continue
			}
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		rr.served[idx].Add(1)
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
		resp.Body.Close()
		return
	}
	http.Error(w, "no replica reachable", http.StatusBadGateway)
}

func isConnRefused(err error) bool {
	var op *net.OpError
	return errors.Is(err, syscall.ECONNREFUSED) || (errors.As(err, &op) && op.Op == "dial")
}
