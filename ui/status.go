package ui

import (
	"context"
	"errors"
	"net/http"
	"sort"
	"time"

	"github.com/stratus-registry/stratus/registry"
	"github.com/stratus-registry/stratus/registry/gc"
	"github.com/stratus-registry/stratus/storage"
)

const (
	// chartBars bounds the repositories drawn; the report itself is
	// bounded too (registry/gc), the rest are one "other" bar.
	chartBars = 50
	chartW    = 1000.0
	barH      = 18
	barGap    = 4
)

type storagePage struct {
	Report *registry.GCReport
	Rows   []storageRow
	Other  *storageRow
	Unique int64
	Height int
}

type storageRow struct {
	Repo      string
	Bytes     int64
	Exclusive int64
	Blobs     int
	Manifests int
	// Y and the widths place the bar in the chart's viewBox: the whole
	// bar is Bytes, its darker part ExclusiveBytes.
	Y, W, EW float64
	TextY    int
	// Repos counts the repositories of the "other" row.
	Repos int
}

// lastReport is the last GC report, nil before any pass.
func (u *UI) lastReport(ctx context.Context) (*registry.GCReport, error) {
	if u.gc == nil {
		return nil, nil
	}
	rep, err := u.gc.LastGCReport(ctx)
	if errors.Is(err, storage.ErrNotFound) || errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	return rep, err
}

func (u *UI) storage(w http.ResponseWriter, r *http.Request, _ uiRoute, v visitor) error {
	rep, err := u.lastReport(r.Context())
	if err != nil {
		return err
	}
	p := storagePage{Report: rep}
	if rep != nil && rep.Storage != nil {
		u.chart(r, v, rep.Storage, &p)
	}
	u.render(w, r, v, http.StatusOK, "storage", "Storage", p)
	return nil
}

// chart lays out the bars of the repositories the visitor may pull,
// scaled to the largest of them. The others are summed in one row: their
// names are not the visitor's to see.
func (u *UI) chart(r *http.Request, v visitor, st *gc.Storage, p *storagePage) {
	p.Unique = st.UniqueBytes
	var largest int64
	for _, rs := range st.Repositories {
		if len(p.Rows) >= chartBars || !u.canPull(r, v, rs.Repository) {
			p.addOther(rs.Bytes, 1)
			continue
		}
		largest = max(largest, rs.Bytes)
		p.Rows = append(p.Rows, storageRow{Repo: rs.Repository, Bytes: rs.Bytes, Exclusive: min(rs.ExclusiveBytes, rs.Bytes),
			Blobs: rs.Blobs, Manifests: rs.Manifests})
	}
	if st.OtherRepositories > 0 {
		p.addOther(st.OtherBytes, st.OtherRepositories)
	}
	for i := range p.Rows {
		row := &p.Rows[i]
		if largest > 0 {
			row.W = chartW * float64(row.Bytes) / float64(largest)
			row.EW = chartW * float64(row.Exclusive) / float64(largest)
		}
		row.Y = float64(i * (barH + barGap))
		row.TextY = i*(barH+barGap) + barH - 5
	}
	p.Height = max(len(p.Rows)*(barH+barGap), barH)
}

// addOther sums n repositories into the "other" row.
func (p *storagePage) addOther(bytes int64, n int) {
	if p.Other == nil {
		p.Other = &storageRow{Repo: "other repositories"}
	}
	p.Other.Bytes += bytes
	p.Other.Repos += n
}

type statusPage struct {
	Report     *registry.GCReport
	Ago        string
	Ready      bool
	ReadyText  string
	HasHealth  bool
	HasQueue   bool
	QueueDepth int64
	Endpoints  []endpointDepth
	QueueErr   string
}

type endpointDepth struct {
	Name    string
	Waiting int64
}

func (u *UI) status(w http.ResponseWriter, r *http.Request, _ uiRoute, v visitor) error {
	rep, err := u.lastReport(r.Context())
	if err != nil {
		return err
	}
	p := statusPage{Report: rep}
	if rep != nil {
		p.Ago = time.Since(rep.Finished).Round(time.Second).String()
	}
	if u.health != nil {
		p.HasHealth = true
		p.Ready, p.ReadyText = u.health.Ready(r.Context())
	}
	if u.webhooks != nil {
		p.HasQueue = true
		depth, err := u.webhooks.Depth(r.Context())
		if err != nil {
			u.logger.Warn("ui: webhook queue depth", "err", err)
			p.QueueErr = "the webhook queue did not answer"
		}
		for name, n := range depth {
			p.Endpoints = append(p.Endpoints, endpointDepth{name, n})
			p.QueueDepth += n
		}
		sort.Slice(p.Endpoints, func(i, j int) bool { return p.Endpoints[i].Name < p.Endpoints[j].Name })
	}
	u.render(w, r, v, http.StatusOK, "status", "Status", p)
	return nil
}
