package ratelimit

import (
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/stratus-registry/stratus/httpmw"
)

// Limit kinds, the "kind" label of the metrics.
const (
	KindIP   = "ip"
	KindUser = "user"
)

// UserFunc names the authenticated user of a request, or "" for an
// anonymous one. It is the hook by which authentication decides whose
// allowance a request draws on.
type UserFunc func(r *http.Request) string

// Options configure Middleware.
type Options struct {
	Limiter Limiter
	// Rate applies to each client IP and to each authenticated user.
	Rate Rate
	// User, if set, keys authenticated requests by user, so that one
	// user behind many addresses shares one allowance and many users
	// behind one NAT do not. Nil: every request is keyed by client IP.
	User    UserFunc
	Metrics *Metrics
	Logger  *slog.Logger
}

// failureLogEvery spaces the warnings of a failing limiter: during a Redis
// outage every request fails, and one line per request would bury the log.
const failureLogEvery = 10 * time.Second

// Middleware answers 429 TOOMANYREQUESTS with Retry-After to requests over
// the rate. The client IP is httpmw.ClientIP (X-Forwarded-For only from
// trusted proxies), so the middleware must run inside httpmw.Observe.
//
// A limiter that fails (Redis down) lets the request through: the limit
// protects the registry from abuse, and turning a Redis outage into a
// registry outage would be a worse abuse. The failure is counted and
// logged.
func Middleware(opts Options) func(http.Handler) http.Handler {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var lastLog atomic.Int64
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			kind, key := requestKey(r, opts.User)
			d, err := opts.Limiter.Allow(r.Context(), key, opts.Rate)
			if err != nil {
				opts.Metrics.Failed(kind)
				if now := time.Now().UnixNano(); now-lastLog.Load() >= int64(failureLogEvery) {
					lastLog.Store(now)
					logger.Warn("rate limiter failing; letting requests through until it recovers", "kind", kind, "err", err)
				}
				next.ServeHTTP(w, r)
				return
			}
			if !d.Allowed {
				opts.Metrics.Rejected(kind)
				WriteTooManyRequests(w, d.RetryAfter, "too many requests from this "+kindNoun(kind)+"; retry later")
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// requestKey is the limit a request draws on: its user's when
// authenticated, else its client IP's.
func requestKey(r *http.Request, user UserFunc) (kind, key string) {
	if user != nil {
		if u := user(r); u != "" {
			return KindUser, KindUser + ":" + u
		}
	}
	ip := httpmw.ClientIP(r.Context())
	if ip == "" {
		ip = r.RemoteAddr
		if host, _, err := net.SplitHostPort(ip); err == nil {
			ip = host
		}
	}
	return KindIP, KindIP + ":" + ip
}

func kindNoun(kind string) string {
	if kind == KindUser {
		return "user"
	}
	return "client address"
}

// RetryAfterSeconds renders d for Retry-After: whole seconds, rounded up,
// at least 1 (0 would invite an immediate retry that is refused again).
func RetryAfterSeconds(d time.Duration) int {
	s := int((d + time.Second - 1) / time.Second)
	return max(s, 1)
}

// WriteTooManyRequests answers 429 with the OCI error body and
// Retry-After.
func WriteTooManyRequests(w http.ResponseWriter, retryAfter time.Duration, message string) {
	type ociError struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	body, _ := json.Marshal(struct {
		Errors []ociError `json:"errors"`
	}{[]ociError{{Code: "TOOMANYREQUESTS", Message: message}}})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Retry-After", strconv.Itoa(RetryAfterSeconds(retryAfter)))
	w.WriteHeader(http.StatusTooManyRequests)
	w.Write(body)
}
