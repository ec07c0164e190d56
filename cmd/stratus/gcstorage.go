package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/stratus-registry/stratus/internal/bytesize"
	"github.com/stratus-registry/stratus/registry"
)

// storageRows is how many repositories the human output of a GC report
// lists; --json has every repository the report holds.
const storageRows = 20

// printStorage writes the storage section of a GC report: live bytes,
// and the largest repositories with the share only they use.
func printStorage(w io.Writer, s *registry.GCStorage) {
	if s == nil {
		fmt.Fprintln(w, "\nstorage: not recorded (the pass did not finish its mark)")
		return
	}
	listed := len(s.Repositories) + s.OtherRepositories
	fmt.Fprintf(w, "\nstorage: %d bytes live (%s), shared content counted once; %d repositories with live content\n",
		s.UniqueBytes, bytesize.Format(s.UniqueBytes), listed)
	if len(s.Repositories) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  repository\tbytes\texclusive\tmanifests\tblobs")
	shown := s.Repositories[:min(len(s.Repositories), storageRows)]
	for _, r := range shown {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\t%d\n", r.Repository, sizeCell(r.Bytes), sizeCell(r.ExclusiveBytes), r.Manifests, r.Blobs)
	}
	tw.Flush()
	var restN int
	var restBytes int64
	for _, r := range s.Repositories[len(shown):] {
		restN++
		restBytes += r.Bytes
	}
	restN += s.OtherRepositories
	restBytes += s.OtherBytes
	if restN > 0 {
		fmt.Fprintf(w, "  and %d more repositories: %d bytes (%s), shared content counted in each (--json lists %d)\n",
			restN, restBytes, bytesize.Format(restBytes), len(s.Repositories))
	}
}

// sizeCell is a byte count exactly and in binary units.
func sizeCell(n int64) string { return fmt.Sprintf("%d (%s)", n, bytesize.Format(n)) }
