package httpmw_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/stratus-registry/stratus/httpmw"
	"github.com/stratus-registry/stratus/internal/spantest"
)

func TestTraceSpans(t *testing.T) {
	const traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	routes := func(r *http.Request) httpmw.Route {
		if r.URL.Path == "/v2/app/manifests/v1" {
			return httpmw.Route{Template: "/v2/{name}/manifests/{reference}", Repository: "app", Reference: "v1"}
		}
		return httpmw.Route{}
	}
	tests := []struct {
		name        string
		path        string
		traceparent string
		status      int
		wantName    string
		wantCode    codes.Code
		wantTrace   string
	}{
		{"route template, new trace", "/v2/app/manifests/v1", "", 201, "PUT /v2/{name}/manifests/{reference}", codes.Unset, ""},
		{"incoming traceparent is the parent", "/v2/app/manifests/v1", traceparent, 200, "PUT /v2/{name}/manifests/{reference}", codes.Unset, "0af7651916cd43dd8448eb211c80319c"},
		{"unknown route, server error", "/nope", "", 503, "PUT other", codes.Error, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tracer, exp := spantest.New(t)
			var inner trace.SpanContext
			h := httpmw.Chain(httpmw.Options{Route: routes, Tracer: tracer})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				inner = trace.SpanContextFromContext(r.Context())
				w.WriteHeader(tt.status)
			}))
			req := httptest.NewRequest(http.MethodPut, tt.path, nil)
			if tt.traceparent != "" {
				req.Header.Set("Traceparent", tt.traceparent)
			}
			h.ServeHTTP(httptest.NewRecorder(), req)
			spans := exp.GetSpans()
			if len(spans) != 1 {
				t.Fatalf("%d spans, want 1", len(spans))
			}
			s := spans[0]
			if s.Name != tt.wantName || s.Status.Code != tt.wantCode || s.SpanKind != trace.SpanKindServer {
				t.Errorf("span %q status %v kind %v; want %q %v server", s.Name, s.Status.Code, s.SpanKind, tt.wantName, tt.wantCode)
			}
			if inner.SpanID() != s.SpanContext.SpanID() {
				t.Error("the handler's context does not carry the request span")
			}
			if tt.wantTrace != "" && (s.SpanContext.TraceID().String() != tt.wantTrace || s.Parent.SpanID().String() != "b7ad6b7169203331") {
				t.Errorf("trace %s parent %s; want the incoming traceparent's", s.SpanContext.TraceID(), s.Parent.SpanID())
			}
			attrs := map[string]any{}
			for _, a := range s.Attributes {
				attrs[string(a.Key)] = a.Value.AsInterface()
			}
			if attrs["http.response.status_code"] != int64(tt.status) || attrs["http.request.method"] != "PUT" || attrs["stratus.request_id"] == nil {
				t.Errorf("attributes %v", attrs)
			}
		})
	}
}

func TestChainWithoutTracerHasNoSpan(t *testing.T) {
	var sc trace.SpanContext
	h := httpmw.Chain(httpmw.Options{})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sc = trace.SpanContextFromContext(r.Context())
	}))
	req := httptest.NewRequest(http.MethodGet, "/v2/", nil)
	req.Header.Set("Traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	h.ServeHTTP(httptest.NewRecorder(), req)
	if sc.IsValid() {
		t.Error("without a tracer the request context carries a span context (the traceparent was parsed)")
	}
}
