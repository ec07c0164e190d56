package gc

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// Report is what one pass did; it is stored for `stratus gc status`.
type Report struct {
	Started         time.Time `json:"started"`
	Finished        time.Time `json:"finished"`
	DurationSeconds float64   `json:"duration_seconds"`
	// MarkSeconds is the repository phase (mark, and each repository's
	// manifest and link sweep); SweepSeconds the global blob, orphan and
	// upload sweep.
	MarkSeconds       float64 `json:"mark_seconds"`
	SweepSeconds      float64 `json:"sweep_seconds"`
	LinksExamined     int     `json:"links_examined"`
	DryRun            bool    `json:"dry_run"`
	Repositories      int     `json:"repositories"`
	ManifestsExamined int     `json:"manifests_examined"`
	ManifestsDeleted  int     `json:"manifests_deleted"`
	BlobsExamined     int     `json:"blobs_examined"`
	BytesExamined     int64   `json:"bytes_examined"`
	BlobsDeleted      int     `json:"blobs_deleted"`
	BytesReclaimed    int64   `json:"bytes_reclaimed"`
	LinksDeleted      int     `json:"links_deleted"`
	// TagsDeleted counts tags retention deleted (or would, in a dry run).
	TagsDeleted    int `json:"tags_deleted"`
	OrphansDeleted int `json:"orphan_data_deleted"`
	// DataIndexed counts data index entries backfilled for data written
	// before the index existed (layout v1); 0 once a store is migrated.
	DataIndexed    int         `json:"data_index_backfilled"`
	UploadsAborted int         `json:"uploads_aborted"`
	ReposRemoved   int         `json:"repositories_removed"`
	KeptByPin      int         `json:"kept_by_pin"`
	KeptYoung      int         `json:"kept_young"`
	Errors         []string    `json:"errors,omitempty"`
	Decisions      []Decision  `json:"decisions,omitempty"`
	Policy         PolicyState `json:"policy"`
}

// PolicyState records the settings a pass ran with.
type PolicyState struct {
	GraceSeconds  float64 `json:"grace_seconds"`
	Untagged      string  `json:"untagged"`
	KeepReferrers bool    `json:"keep_referrers"`
}

// Decision explains one object's fate (dry runs list them all).
type Decision struct {
	Object string `json:"object"`
	Action string `json:"action"` // "delete" or "keep"
	Reason string `json:"reason"`
}

// maxDecisions bounds the decisions a report lists.
const maxDecisions = 10000

func (c *Collector) saveReport(ctx context.Context, r *Report) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode gc report: %w", err)
	}
	return c.store.SaveGCReport(ctx, b)
}

// LastReport returns the report of the last pass, or storage.ErrNotFound.
func (c *Collector) LastReport(ctx context.Context) (*Report, error) {
	b, err := c.store.GCReport(ctx)
	if err != nil {
		return nil, err
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("gc report: %w", err)
	}
	return &r, nil
}
