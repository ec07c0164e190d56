package ratelimit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/stratus-registry/stratus/ratelimit"
)

var okHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })

func serve(h http.Handler, remote, user string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, "/v2/app/manifests/latest", nil)
	req.RemoteAddr = remote
	if user != "" {
		req.Header.Set("X-Test-User", user)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func testUser(r *http.Request) string { return r.Header.Get("X-Test-User") }

func TestMiddlewareBurstOverTheLimit(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := ratelimit.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	h := ratelimit.Middleware(ratelimit.Options{
		Limiter: ratelimit.NewMemory(0),
		Rate:    ratelimit.Rate{PerSecond: 0.5, Burst: 3}, // refill: one per 2s
		User:    testUser,
		Metrics: m,
	})(okHandler)

	for i := range 3 {
		if rec := serve(h, "192.0.2.1:1234", ""); rec.Code != http.StatusOK {
			t.Fatalf("request %d within the burst: %d", i, rec.Code)
		}
	}
	rec := serve(h, "192.0.2.1:1234", "")
	if rec.Code != http.StatusTooManyRequests {
		t.Fatalf("request over the burst: %d, want 429", rec.Code)
	}
	if ra := rec.Header().Get("Retry-After"); ra != "2" {
		t.Errorf("Retry-After = %q, want 2 (seconds, rounded up)", ra)
	}
	var body struct {
		Errors []struct{ Code, Message string } `json:"errors"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || len(body.Errors) != 1 || body.Errors[0].Code != "TOOMANYREQUESTS" || body.Errors[0].Message == "" {
		t.Errorf("body %q (%v), want one TOOMANYREQUESTS error with a message", rec.Body, err)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}

	// Other clients and users have their own allowance; a user's requests
	// do not draw on the address they come from.
	if rec := serve(h, "192.0.2.2:1234", ""); rec.Code != http.StatusOK {
		t.Errorf("another address: %d", rec.Code)
	}
	for i := range 3 {
		if rec := serve(h, "192.0.2.1:1234", "alice"); rec.Code != http.StatusOK {
			t.Fatalf("user request %d from a limited address: %d", i, rec.Code)
		}
	}
	if rec := serve(h, "192.0.2.9:1234", "alice"); rec.Code != http.StatusTooManyRequests {
		t.Errorf("alice over her burst from another address: %d, want 429", rec.Code)
	}
	want := `
# HELP stratus_ratelimit_rejections_total Requests answered 429 by a limit, by limit kind.
# TYPE stratus_ratelimit_rejections_total counter
stratus_ratelimit_rejections_total{kind="ip"} 1
stratus_ratelimit_rejections_total{kind="user"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "stratus_ratelimit_rejections_total"); err != nil {
		t.Error(err)
	}
}

// failing is a limiter whose backend is down.
type failing struct{}

func (failing) Allow(context.Context, string, ratelimit.Rate) (ratelimit.Decision, error) {
	return ratelimit.Decision{}, errors.New("redis: connection refused")
}

func TestMiddlewareFailsOpen(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := ratelimit.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	h := ratelimit.Middleware(ratelimit.Options{
		Limiter: failing{},
		Rate:    ratelimit.Rate{PerSecond: 1, Burst: 1},
		Metrics: m,
		Logger:  slog.New(slog.NewTextHandler(&logs, nil)),
	})(okHandler)
	for i := range 5 {
		if rec := serve(h, "192.0.2.1:1234", ""); rec.Code != http.StatusOK {
			t.Fatalf("request %d with the limiter down: %d, want 200 (fail open)", i, rec.Code)
		}
	}
	if n := strings.Count(logs.String(), "rate limiter failing"); n != 1 {
		t.Errorf("%d warnings for 5 failures in a row, want 1 (spaced out):\n%s", n, logs.String())
	}
	want := `
# HELP stratus_ratelimit_errors_total Limiter failures (Redis unreachable); the request was let through (fail open).
# TYPE stratus_ratelimit_errors_total counter
stratus_ratelimit_errors_total{kind="ip"} 5
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "stratus_ratelimit_errors_total"); err != nil {
		t.Error(err)
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want int
	}{
		{0, 1},
		{time.Millisecond, 1},
		{time.Second, 1},
		{time.Second + time.Nanosecond, 2},
		{90 * time.Second, 90},
		{time.Hour - time.Microsecond, 3600},
	}
	for _, tt := range tests {
		if got := ratelimit.RetryAfterSeconds(tt.d); got != tt.want {
			t.Errorf("RetryAfterSeconds(%v) = %d, want %d", tt.d, got, tt.want)
		}
	}
}
