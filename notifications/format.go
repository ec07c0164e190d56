package notifications

import (
	"encoding/json"
	"fmt"
	"time"
)

// Media types of the bodies.
const (
	MediaTypeEventsV2   = "application/vnd.docker.distribution.events.v2+json"
	MediaTypeEventsV1   = "application/vnd.docker.distribution.events.v1+json"
	MediaTypeCloudEvent = "application/cloudevents+json"
)

// distributionTypes maps distribution_media_type to the Content-Type.
var distributionTypes = map[string]string{"v2": MediaTypeEventsV2, "v1": MediaTypeEventsV1}

// CloudEvents types, one per kind and action.
const (
	TypeImagePushed   = "dev.stratus.image.pushed"
	TypeImagePulled   = "dev.stratus.image.pulled"
	TypeImageDeleted  = "dev.stratus.image.deleted"
	TypeTagDeleted    = "dev.stratus.tag.deleted"
	TypeBlobPushed    = "dev.stratus.blob.pushed"
	TypeBlobMounted   = "dev.stratus.blob.mounted"
	TypeBlobDeleted   = "dev.stratus.blob.deleted"
	cloudEventsSpec   = "1.0"
	cloudEventsSource = "/stratus/"
)

// cloudEventType names the CloudEvents type of a kind and action; it is
// "" for a combination the registry never emits.
func cloudEventType(k Kind, a Action) string {
	switch {
	case k == KindManifest && a == ActionPush:
		return TypeImagePushed
	case k == KindManifest && a == ActionPull:
		return TypeImagePulled
	case k == KindManifest && a == ActionDelete:
		return TypeImageDeleted
	case k == KindTag && a == ActionDelete:
		return TypeTagDeleted
	case k == KindBlob && a == ActionPush:
		return TypeBlobPushed
	case k == KindBlob && a == ActionMount:
		return TypeBlobMounted
	case k == KindBlob && a == ActionDelete:
		return TypeBlobDeleted
	}
	return ""
}

// CloudEvent is a CloudEvents 1.0 event in structured mode.
type CloudEvent struct {
	SpecVersion     string    `json:"specversion"`
	ID              string    `json:"id"`
	Source          string    `json:"source"`
	Type            string    `json:"type"`
	Time            time.Time `json:"time"`
	Subject         string    `json:"subject,omitempty"`
	DataContentType string    `json:"datacontenttype"`
	Data            Event     `json:"data"`
}

// Envelope is the CNCF Distribution notification body.
type Envelope struct {
	Events []Event `json:"events"`
}

// encode renders one event in the endpoint's format and returns the body
// and its Content-Type.
func encode(ep *Endpoint, q queued) ([]byte, string, error) {
	switch ep.Format {
	case FormatCloudEvents:
		t := cloudEventType(q.Kind, q.Event.Action)
		if t == "" {
			return nil, "", fmt.Errorf("no CloudEvents type for a %s %s", q.Kind, q.Event.Action)
		}
		b, err := json.Marshal(CloudEvent{
			SpecVersion: cloudEventsSpec, ID: q.Event.ID, Type: t, Time: q.Event.Timestamp,
			Source:  cloudEventsSource + q.Event.Source.InstanceID,
			Subject: subject(q.Event.Target), DataContentType: "application/json", Data: q.Event,
		})
		return b, MediaTypeCloudEvent, err
	case FormatDistribution:
		b, err := json.Marshal(Envelope{Events: []Event{q.Event}})
		return b, distributionTypes[ep.DistributionMediaType], err
	}
	return nil, "", fmt.Errorf("unknown format %q", ep.Format)
}

// subject is "repo@digest", "repo:tag" for a tag deletion, or "repo".
func subject(t Target) string {
	switch {
	case t.Digest != "":
		return t.Repository + "@" + t.Digest.String()
	case t.Tag != "":
		return t.Repository + ":" + t.Tag
	}
	return t.Repository
}
