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
	DataIndexed    int `json:"data_index_backfilled"`
	UploadsAborted int `json:"uploads_aborted"`
	ReposRemoved   int `json:"repositories_removed"`
	KeptByPin      int `json:"kept_by_pin"`
	KeptYoung      int `json:"kept_young"`
	// MarkCacheHits counts tags and manifests the mark did not read
	// because the mark cache had them at their listed version.
	MarkCacheHits int         `json:"mark_cache_hits"`
	Errors        []string    `json:"errors,omitempty"`
	Decisions     []Decision  `json:"decisions,omitempty"`
	Policy        PolicyState `json:"policy"`
	// Storage is what each repository's live content costs, as the mark
	// found it (nil when the pass failed before the mark finished).
	Storage *Storage `json:"storage,omitempty"`
}

// Storage is the registry's live content by repository. A blob or manifest
// used by several repositories counts once in UniqueBytes, in full in the
// Bytes of each repository that uses it, and in no repository's
// ExclusiveBytes.
type Storage struct {
	// UniqueBytes is every live blob and manifest once.
	UniqueBytes int64 `json:"unique_bytes"`
	// Repositories is sorted by Bytes, largest first, and bounded; the
	// rest are summed in OtherRepositories and OtherBytes.
	Repositories      []RepoStorage `json:"repositories"`
	OtherRepositories int           `json:"other_repositories,omitempty"`
	OtherBytes        int64         `json:"other_bytes,omitempty"`
}

// RepoStorage is one repository's live content.
type RepoStorage struct {
	Repository string `json:"repository"`
	// Bytes is its live blobs and manifests, each once.
	Bytes int64 `json:"bytes"`
	// ExclusiveBytes is the part of Bytes no other repository uses: what
	// deleting this repository would reclaim.
	ExclusiveBytes int64 `json:"exclusive_bytes"`
	Blobs          int   `json:"blobs"`
	Manifests      int   `json:"manifests"`
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
