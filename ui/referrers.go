package ui

import (
	"errors"
	"net/http"
	"strings"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

const (
	// maxReferrersShown bounds one referrers page.
	maxReferrersShown = 100
	// maxReportBytes bounds the scan report blob read for a summary.
	maxReportBytes = 4 << 20
	// maxReportsRead bounds the report blobs one page reads.
	maxReportsRead = 10
)

type referrersPage struct {
	Repo    string
	Subject digest.Digest
	Rows    []referrerRow
	More    bool
}

type referrerRow struct {
	Digest       digest.Digest
	ArtifactType string
	Kind         string
	Size         int64
	Created      string
	Scan         *scanSummary
	Note         string
}

func (u *UI) referrers(w http.ResponseWriter, r *http.Request, rt uiRoute, v visitor) error {
	if err := u.visible(r, v, rt.repo); err != nil {
		return err
	}
	refs, more, err := u.src.Referrers(r.Context(), rt.repo, rt.digest, maxReferrersShown)
	if err != nil {
		return err
	}
	p := referrersPage{Repo: rt.repo, Subject: rt.digest, More: more}
	reads := 0
	for _, d := range refs {
		row := referrerRow{Digest: d.Digest, ArtifactType: d.ArtifactType, Kind: classify(d.ArtifactType), Size: d.Size,
			Created: d.Annotations[v1.AnnotationCreated]}
		// A scan's summary, or a JSON artifact that may be a Trivy report,
		// needs the report blob: read a bounded number per page.
		if (row.Kind == kindScan || row.Kind == kindOther) && reads < maxReportsRead {
			scan, note, read, err := u.scanOf(r, rt.repo, d)
			if err != nil {
				return err
			}
			if read {
				reads++
			}
			if scan != nil {
				row.Kind, row.Scan = kindScan, scan
			} else if row.Kind == kindScan {
				row.Note = note
			}
		}
		p.Rows = append(p.Rows, row)
	}
	u.render(w, r, v, http.StatusOK, "referrers", "Referrers of "+shortDigest(rt.digest), p)
	return nil
}

// scanOf reads a referrer's report layer and summarises it. read reports
// that a blob was read; a report that cannot be summarised is a note.
func (u *UI) scanOf(r *http.Request, repo string, d v1.Descriptor) (s *scanSummary, note string, read bool, err error) {
	m, err := u.src.Manifest(r.Context(), repo, d.Digest)
	if errors.Is(err, ErrNotFound) {
		return nil, "the report manifest is missing", false, nil
	}
	if err != nil {
		return nil, "", false, err
	}
	md, err := parseDoc(m)
	if err != nil || len(md.Layers) == 0 {
		return nil, "the report has no layer", false, nil
	}
	layer := md.Layers[0]
	if classify(d.ArtifactType) != kindScan && !jsonMediaType(layer.MediaType) {
		return nil, "", false, nil
	}
	b, err := u.src.Blob(r.Context(), repo, layer.Digest, maxReportBytes)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, "the report blob is missing", false, nil
	case errors.Is(err, ErrTooLarge):
		return nil, "the report is larger than the UI reads", false, nil
	case err != nil:
		return nil, "", false, err
	}
	sum, err := summarizeScan(b)
	if err != nil {
		return nil, "the report is not SARIF or Trivy JSON", true, nil
	}
	return &sum, "", true, nil
}

func jsonMediaType(mt string) bool {
	mt = strings.ToLower(mt)
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}
