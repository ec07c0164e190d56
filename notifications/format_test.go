package notifications

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

func sampleEvent() queued {
	return queued{Kind: KindManifest, Event: Event{
		ID: "4b0a9c6e-1111-4222-8333-444455556666", Timestamp: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC),
		Action: ActionPush,
		Target: Target{MediaType: "application/vnd.oci.image.manifest.v1+json", Digest: digest.FromString("m"), Size: 7, Length: 7,
			Repository: "team/app", URL: "http://r/v2/team/app/manifests/" + digest.FromString("m").String(), Tag: "v1"},
		Request: Request{ID: "req-1", Addr: "10.0.0.1", Host: "r", Method: "PUT", UserAgent: "crane"},
		Source:  Source{Addr: "host:5000", InstanceID: "host-abcd"},
	}}
}

func TestEncode(t *testing.T) {
	q := sampleEvent()
	tests := []struct {
		name      string
		ep        Endpoint
		wantCType string
	}{
		{"distribution v2", Endpoint{Format: FormatDistribution, DistributionMediaType: "v2"}, MediaTypeEventsV2},
		{"distribution v1", Endpoint{Format: FormatDistribution, DistributionMediaType: "v1"}, MediaTypeEventsV1},
		{"cloudevents", Endpoint{Format: FormatCloudEvents}, MediaTypeCloudEvent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, ctype, err := encode(&tt.ep, q)
			if err != nil {
				t.Fatal(err)
			}
			if ctype != tt.wantCType {
				t.Errorf("Content-Type = %q, want %q", ctype, tt.wantCType)
			}
			var got Event
			if tt.ep.Format == FormatCloudEvents {
				var ce map[string]json.RawMessage
				if err := json.Unmarshal(body, &ce); err != nil {
					t.Fatal(err)
				}
				for k, want := range map[string]string{
					"specversion": `"1.0"`, "id": `"` + q.Event.ID + `"`, "type": `"dev.stratus.image.pushed"`,
					"source": `"/stratus/host-abcd"`, "subject": `"team/app@` + q.Event.Target.Digest.String() + `"`,
					"datacontenttype": `"application/json"`, "time": `"2026-12-01T10:00:00Z"`,
				} {
					if string(ce[k]) != want {
						t.Errorf("%s = %s, want %s", k, ce[k], want)
					}
				}
				if err := json.Unmarshal(ce["data"], &got); err != nil {
					t.Fatal(err)
				}
			} else {
				var env struct{ Events []Event }
				if err := json.Unmarshal(body, &env); err != nil {
					t.Fatal(err)
				}
				if len(env.Events) != 1 {
					t.Fatalf("%d events in the envelope", len(env.Events))
				}
				got = env.Events[0]
			}
			if got != q.Event {
				t.Errorf("event round trip:\n got %+v\nwant %+v", got, q.Event)
			}
		})
	}
}

func TestDistributionFieldNames(t *testing.T) {
	body, _, err := encode(&Endpoint{Format: FormatDistribution, DistributionMediaType: "v2"}, sampleEvent())
	if err != nil {
		t.Fatal(err)
	}
	// Decoded generically, so that the JSON names themselves are checked.
	var generic map[string][]map[string]any
	if err := json.Unmarshal(body, &generic); err != nil {
		t.Fatal(err)
	}
	e := generic["events"][0]
	for _, k := range []string{"id", "timestamp", "action", "target", "request", "actor", "source"} {
		if _, ok := e[k]; !ok {
			t.Errorf("event lacks %q", k)
		}
	}
	target := e["target"].(map[string]any)
	for _, k := range []string{"mediaType", "digest", "size", "length", "repository", "url", "tag"} {
		if _, ok := target[k]; !ok {
			t.Errorf("target lacks %q", k)
		}
	}
	req := e["request"].(map[string]any)
	for _, k := range []string{"id", "addr", "host", "method", "useragent"} {
		if _, ok := req[k]; !ok {
			t.Errorf("request lacks %q", k)
		}
	}
	src := e["source"].(map[string]any)
	if src["addr"] != "host:5000" || src["instanceID"] != "host-abcd" {
		t.Errorf("source = %v", src)
	}
}

func TestCloudEventTypes(t *testing.T) {
	tests := []struct {
		kind   Kind
		action Action
		want   string
	}{
		{KindManifest, ActionPush, TypeImagePushed},
		{KindManifest, ActionPull, TypeImagePulled},
		{KindManifest, ActionDelete, TypeImageDeleted},
		{KindTag, ActionDelete, TypeTagDeleted},
		{KindBlob, ActionPush, TypeBlobPushed},
		{KindBlob, ActionMount, TypeBlobMounted},
		{KindBlob, ActionDelete, TypeBlobDeleted},
		{KindTag, ActionPush, ""},
		{KindBlob, ActionPull, ""},
	}
	for _, tt := range tests {
		if got := cloudEventType(tt.kind, tt.action); got != tt.want {
			t.Errorf("%s %s: %q, want %q", tt.kind, tt.action, got, tt.want)
		}
	}
	q := sampleEvent()
	q.Kind, q.Event.Action = KindTag, ActionPush
	if _, _, err := encode(&Endpoint{Format: FormatCloudEvents}, q); err == nil {
		t.Error("a tag push has no CloudEvents type, but it encoded")
	}
}

func TestSubject(t *testing.T) {
	d := digest.FromString("x")
	tests := []struct {
		target Target
		want   string
	}{
		{Target{Repository: "a/b", Digest: d, Tag: "v1"}, "a/b@" + d.String()},
		{Target{Repository: "a/b", Tag: "v1"}, "a/b:v1"},
		{Target{Repository: "a/b"}, "a/b"},
	}
	for _, tt := range tests {
		if got := subject(tt.target); got != tt.want {
			t.Errorf("subject(%+v) = %q, want %q", tt.target, got, tt.want)
		}
	}
}
