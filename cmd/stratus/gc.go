package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/stratus-registry/stratus/registry"
	"github.com/stratus-registry/stratus/storage"
)

func gcRun(ctx context.Context, cfg *Config, dryRun, asJSON bool, stdout, logOut io.Writer) error {
	logger := newLogger(cfg.Log, logOut)
	if !cfg.redisEnabled() && !dryRun {
		logger.Warn("no redis configured: this pass cannot see the pins of a running `stratus serve`; run it only while no server uses this storage, or let serve collect in the background (registry.gc.interval)")
	}
	reg, _, _, closeAll, err := openRegistry(ctx, cfg, logger, nil, nil, nil)
	if err != nil {
		return err
	}
	defer closeAll()
	report, err := reg.RunGC(ctx, dryRun)
	if report != nil {
		printReport(stdout, report, asJSON)
	}
	return err
}

func gcStatus(ctx context.Context, cfg *Config, asJSON bool, stdout, logOut io.Writer) error {
	reg, _, _, closeAll, err := openRegistry(ctx, cfg, newLogger(cfg.Log, logOut), nil, nil, nil)
	if err != nil {
		return err
	}
	defer closeAll()
	report, err := reg.LastGCReport(ctx)
	if errors.Is(err, storage.ErrNotFound) {
		fmt.Fprintln(stdout, "no garbage collection has run on this storage yet")
		return nil
	}
	if err != nil {
		return err
	}
	printReport(stdout, report, asJSON)
	return nil
}

func printReport(w io.Writer, r *registry.GCReport, asJSON bool) {
	if asJSON {
		b, _ := json.MarshalIndent(r, "", "  ")
		fmt.Fprintln(w, string(b))
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	kind := "pass"
	if r.DryRun {
		kind = "dry run"
	}
	fmt.Fprintf(tw, "last %s\t%s (took %s)\n", kind, r.Started.Format(time.RFC3339), time.Duration(r.DurationSeconds*float64(time.Second)).Round(time.Millisecond))
	fmt.Fprintf(tw, "policy\tgrace %s, untagged %s, keep referrers %v\n", time.Duration(r.Policy.GraceSeconds*float64(time.Second)), r.Policy.Untagged, r.Policy.KeepReferrers)
	fmt.Fprintf(tw, "repositories\t%d examined, %d removed (empty)\n", r.Repositories, r.ReposRemoved)
	fmt.Fprintf(tw, "manifests\t%d examined, %d deleted\n", r.ManifestsExamined, r.ManifestsDeleted)
	fmt.Fprintf(tw, "blobs\t%d examined (%d bytes), %d deleted (%d bytes reclaimed)\n", r.BlobsExamined, r.BytesExamined, r.BlobsDeleted, r.BytesReclaimed)
	fmt.Fprintf(tw, "links\t%d deleted\n", r.LinksDeleted)
	fmt.Fprintf(tw, "tags\t%d deleted by retention\n", r.TagsDeleted)
	fmt.Fprintf(tw, "orphaned data\t%d deleted\n", r.OrphansDeleted)
	fmt.Fprintf(tw, "stale uploads\t%d aborted\n", r.UploadsAborted)
	fmt.Fprintf(tw, "kept\t%d by pin (claim refused), %d younger than grace\n", r.KeptByPin, r.KeptYoung)
	for _, e := range r.Errors {
		fmt.Fprintf(tw, "error\t%s\n", e)
	}
	tw.Flush()
	printStorage(w, r.Storage)
	if len(r.Decisions) > 0 {
		fmt.Fprintln(w, "\ndecisions:")
		for _, d := range r.Decisions {
			fmt.Fprintf(w, "  %-6s %s  (%s)\n", d.Action, d.Object, d.Reason)
		}
	}
}
