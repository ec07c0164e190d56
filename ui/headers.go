package ui

import (
	"context"
	"net/http"
)

// csp allows only this origin's scripts, styles and images (and data:
// images), no inline script or style, no framing, no form posts elsewhere.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// secure sets the headers every UI response carries.
func secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}

type httpsKey struct{}

// markHTTPS records in the request's context whether the visitor uses
// HTTPS, as isHTTPS decides, for the cookies set while serving it.
func markHTTPS(isHTTPS func(*http.Request) bool, next http.Handler) http.Handler {
	if isHTTPS == nil {
		isHTTPS = func(r *http.Request) bool { return r.TLS != nil }
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), httpsKey{}, isHTTPS(r))))
	})
}

// overHTTPS reports what markHTTPS found (a direct TLS connection when the
// request did not pass through it).
func overHTTPS(r *http.Request) bool {
	if v, ok := r.Context().Value(httpsKey{}).(bool); ok {
		return v
	}
	return r.TLS != nil
}
