package httpmw

import (
	"net/http"
	"net/url"
	"sort"
	"strings"
)

// Redacted replaces a secret's value in logs.
const Redacted = "[REDACTED]"

// secretHeaders are redacted by name (canonical form).
var secretHeaders = map[string]bool{
	"Authorization":        true,
	"Proxy-Authorization":  true,
	"Cookie":               true,
	"Set-Cookie":           true,
	"X-Amz-Security-Token": true,
	"X-Registry-Auth":      true,
}

// secretWords mark a header or query parameter as secret wherever they
// appear in its name ("X-Api-Key", "access_token", "X-Amz-Signature").
var secretWords = []string{"token", "secret", "password", "passwd", "signature", "credential", "api-key", "apikey", "api_key", "auth"}

func secretName(name string) bool {
	if secretHeaders[http.CanonicalHeaderKey(name)] {
		return true
	}
	lower := strings.ToLower(name)
	for _, w := range secretWords {
		if strings.Contains(lower, w) {
			return true
		}
	}
	return false
}

// RedactHeaders returns the headers as "Name: value" strings, sorted, with
// the values of secret headers replaced by Redacted.
func RedactHeaders(h http.Header) []string {
	out := make([]string, 0, len(h))
	for name, values := range h {
		v := strings.Join(values, ", ")
		if secretName(name) {
			v = Redacted
		}
		out = append(out, name+": "+v)
	}
	sort.Strings(out)
	return out
}

// RedactQuery returns the raw query with the values of secret parameters
// (a token, a signature of a presigned URL) replaced by Redacted. A query
// that does not parse is dropped whole: it cannot be redacted safely.
func RedactQuery(raw string) string {
	if raw == "" {
		return ""
	}
	q, err := url.ParseQuery(raw)
	if err != nil {
		return Redacted
	}
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		for _, v := range q[k] {
			if b.Len() > 0 {
				b.WriteByte('&')
			}
			b.WriteString(url.QueryEscape(k) + "=")
			if secretName(k) {
				b.WriteString(Redacted)
			} else {
				b.WriteString(url.QueryEscape(v))
			}
		}
	}
	return b.String()
}
