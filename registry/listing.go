package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/stratus-registry/stratus/storage"
)

// Listing bounds: a response never holds more than maxListPage entries;
// clients follow the Link header for the rest.
const (
	listPage    = 1000
	maxListPage = 10000
)

// pageParams reads ?n= and ?last=. n absent means "as many as allowed".
func pageParams(q url.Values) (n int, last string, err error) {
	n = maxListPage
	if s := q.Get("n"); s != "" {
		v, perr := strconv.Atoi(s)
		if perr != nil || v < 0 {
			return 0, "", newError(http.StatusBadRequest, codeUnsupported, "n=%q: want a non-negative integer", s)
		}
		n = min(v, maxListPage)
	}
	return n, q.Get("last"), nil
}

// listNames lists up to n names under prefix after last, mapping each key
// to a name with toName (which returns false for keys to skip). more
// reports that names after the last one returned exist.
func (g *Registry) listNames(ctx context.Context, prefix, startAfter string, n int, toName func(key string) (string, bool)) (names []string, more bool, err error) {
	names = []string{}
	after := startAfter
	for len(names) < n {
		page, err := g.store.List(ctx, prefix, after, min(listPage, n-len(names)+1))
		if err != nil {
			return nil, false, err
		}
		for _, o := range page.Objects {
			if nm, ok := toName(o.Key); ok {
				if len(names) == n {
					return names, true, nil
				}
				names = append(names, nm)
			}
		}
		if !page.More || len(page.Objects) == 0 {
			return names, false, nil
		}
		after = page.Objects[len(page.Objects)-1].Key
	}
	// Filled exactly: peek whether anything follows.
	page, err := g.store.List(ctx, prefix, after, 1)
	if err != nil {
		return nil, false, err
	}
	return names, len(page.Objects) > 0, nil
}

func setNextLink(w http.ResponseWriter, path string, n int, last string, explicitN bool) {
	q := url.Values{}
	q.Set("last", last)
	if explicitN {
		q.Set("n", strconv.Itoa(n))
	}
	w.Header().Set("Link", fmt.Sprintf(`<%s?%s>; rel="next"`, path, q.Encode()))
}

func writeJSON(w http.ResponseWriter, contentType string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(b)
	return err
}

func (g *Registry) getTags(w http.ResponseWriter, r *http.Request, rt route) error {
	ctx := r.Context()
	n, last, err := pageParams(r.URL.Query())
	if err != nil {
		return err
	}
	prefix := tagsPrefix(rt.name)
	startAfter := ""
	if last != "" {
		startAfter = prefix + last
	}
	tags, more, err := g.listNames(ctx, prefix, startAfter, n, func(key string) (string, bool) {
		return strings.TrimPrefix(key, prefix), true
	})
	if err != nil {
		return err
	}
	// An empty page, with or without last, is where an unknown repository
	// shows: answer 404 for it either way, 200 with no tags for a known one.
	if len(tags) == 0 {
		if err := g.checkRepoExists(ctx, rt.name); err != nil {
			return err
		}
	}
	if more && len(tags) > 0 {
		setNextLink(w, "/v2/"+rt.name+"/tags/list", n, tags[len(tags)-1], r.URL.Query().Has("n"))
	}
	return writeJSON(w, "application/json", struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}{rt.name, tags})
}

// checkRepoExists answers NAME_UNKNOWN for a repository that is not in the
// catalog: the catalog entry is what makes a repository exist (ensureRepo
// writes it on the first push).
func (g *Registry) checkRepoExists(ctx context.Context, name string) error {
	_, err := g.store.Stat(ctx, catalogKey(name))
	if errors.Is(err, storage.ErrNotFound) {
		return newError(http.StatusNotFound, codeNameUnknown, "repository %s is not known", name).
			withDetail(map[string]string{"name": name})
	}
	return err
}

func (g *Registry) getCatalog(w http.ResponseWriter, r *http.Request) error {
	n, last, err := pageParams(r.URL.Query())
	if err != nil {
		return err
	}
	startAfter := ""
	if last != "" {
		startAfter = catalogKey(last)
	}
	repos, more, err := g.listNames(r.Context(), catalogPrefix, startAfter, n, func(key string) (string, bool) {
		name, ok := strings.CutSuffix(strings.TrimPrefix(key, catalogPrefix), catalogSuffix)
		return name, ok && validName(name)
	})
	if err != nil {
		return err
	}
	if more && len(repos) > 0 {
		setNextLink(w, "/v2/_catalog", n, repos[len(repos)-1], r.URL.Query().Has("n"))
	}
	return writeJSON(w, "application/json", struct {
		Repositories []string `json:"repositories"`
	}{repos})
}

// maxReferrersPage bounds the bytes of the descriptors in one referrers
// response; the rest follows through the Link header (distribution spec
// 1.1, "Listing Referrers"). It is the 4 MiB clients accept for an index.
// A single descriptor larger than that is still sent, alone on its page:
// its size is bounded by the manifest's (maxReferrerRecord).
const maxReferrersPage = 4 << 20

// referrerRecordOverhead is what a referrer record holds besides the
// manifest's annotations (copied verbatim) and its artifactType (at most
// maxArtifactTypeLen bytes, six bytes per byte if every one is escaped):
// media type, digest, size and the JSON around them.
const referrerRecordOverhead = 6*maxArtifactTypeLen + 1024

// referrerRecord is the object at referrerKey: the descriptor the referrers
// API lists, annotations as the manifest had them.
type referrerRecord struct {
	MediaType    string          `json:"mediaType"`
	Digest       string          `json:"digest"`
	Size         int64           `json:"size"`
	ArtifactType string          `json:"artifactType,omitempty"`
	Annotations  json.RawMessage `json:"annotations,omitempty"`
}

// maxReferrerRecord is the largest referrer record putReferrer writes, and
// so the cap getReferrers reads records with.
func (g *Registry) maxReferrerRecord() int64 {
	return int64(g.cfg.MaxManifestSize) + referrerRecordOverhead
}

// getReferrers answers the referrers API. It always returns an index,
// empty when nothing refers to the subject (never 404). A response holds
// at most max_referrers descriptors and maxReferrersPage bytes of them; a
// Link header names the next page, whose ?last= is where this one ended.
func (g *Registry) getReferrers(w http.ResponseWriter, r *http.Request, rt route) error {
	d, err := parseDigestParam(rt.arg, "subject digest")
	if err != nil {
		return err
	}
	q := r.URL.Query()
	filter, last := q.Get("artifactType"), q.Get("last")
	if len(last) > maxNameLength || strings.Contains(last, "/") {
		return newError(http.StatusBadRequest, codeUnsupported, "last=%q is not a referrers page cursor", last)
	}
	prefix := referrersPrefix(rt.name, d)
	startAfter := ""
	if last != "" {
		startAfter = prefix + last
	}
	page, err := g.collectReferrers(r.Context(), prefix, startAfter, filter)
	if err != nil {
		return err
	}
	if filter != "" {
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	if page.more {
		next := url.Values{"last": {strings.TrimPrefix(page.last, prefix)}}
		if filter != "" {
			next.Set("artifactType", filter)
		}
		w.Header().Set("Link", fmt.Sprintf(`</v2/%s/referrers/%s?%s>; rel="next"`, rt.name, d, next.Encode()))
	}
	var body bytes.Buffer
	body.Grow(page.bytes + len(page.records) + 128)
	body.WriteString(`{"schemaVersion":2,"mediaType":"` + mtOCIIndex + `","manifests":[`)
	for i, rec := range page.records {
		if i > 0 {
			body.WriteByte(',')
		}
		body.Write(rec)
	}
	body.WriteString("]}")
	w.Header().Set("Content-Type", mtOCIIndex)
	w.Header().Set("Content-Length", strconv.Itoa(body.Len()))
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(body.Bytes())
	return err
}

// referrersPage is one response's worth of referrer records.
type referrersPage struct {
	records [][]byte // compact JSON descriptors
	bytes   int
	last    string // key of the last record this page covers
	more    bool   // a record that did not fit follows last
}

// collectReferrers reads the records under prefix after startAfter until
// the page is full. A record that does not fit is read once more by the
// next page; more is set only when such a record exists, so the last page
// never carries a Link to an empty one.
func (g *Registry) collectReferrers(ctx context.Context, prefix, startAfter, filter string) (*referrersPage, error) {
	p := &referrersPage{}
	after := startAfter
	for {
		listing, err := g.store.List(ctx, prefix, after, 0)
		if err != nil {
			return nil, err
		}
		for _, o := range listing.Objects {
			rec, err := g.readReferrer(ctx, o, filter)
			if err != nil {
				return nil, err
			}
			if rec != nil {
				if len(p.records) >= g.cfg.MaxReferrers || len(p.records) > 0 && p.bytes+len(rec) > maxReferrersPage {
					p.more = true
					return p, nil
				}
				p.records = append(p.records, rec)
				p.bytes += len(rec)
			}
			p.last = o.Key
		}
		if !listing.More || len(listing.Objects) == 0 {
			return p, nil
		}
		after = listing.Objects[len(listing.Objects)-1].Key
	}
}

// errRecordTooLarge: a record is over maxReferrerRecord, so not one that
// putReferrer wrote.
var errRecordTooLarge = errors.New("referrer record too large")

// readReferrer returns the record at o as compact JSON, or nil when it
// does not match filter, was deleted meanwhile, or is unusable (corrupt,
// oversized: skipped with a warning, so one bad object cannot break the
// listing). Errors are the store's, for the client to retry.
func (g *Registry) readReferrer(ctx context.Context, o storage.Info, filter string) ([]byte, error) {
	limit := g.maxReferrerRecord()
	b, err := readRecord(ctx, g.store, o, limit)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return nil, nil
	case errors.Is(err, errRecordTooLarge):
		g.logger.Warn("skipping oversized referrer record", "key", o.Key, "max", limit)
		return nil, nil
	case err != nil:
		return nil, err
	}
	var desc descriptor
	if err := json.Unmarshal(b, &desc); err != nil {
		g.logger.Warn("skipping corrupt referrer record", "key", o.Key, "err", err)
		return nil, nil
	}
	if _, err := ParseDigest(desc.Digest); err != nil || desc.MediaType == "" {
		g.logger.Warn("skipping corrupt referrer record", "key", o.Key, "err", "not a descriptor")
		return nil, nil
	}
	if filter != "" && desc.ArtifactType != filter {
		return nil, nil
	}
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		return nil, fmt.Errorf("compact referrer record %s: %w", o.Key, err)
	}
	return out.Bytes(), nil
}

// readRecord reads the listed object o, refusing (errRecordTooLarge) one
// over limit bytes by its listed size, or without reading more than
// limit+1 bytes if it grew since it was listed.
func readRecord(ctx context.Context, store storage.Driver, o storage.Info, limit int64) ([]byte, error) {
	key := o.Key
	if o.Size > limit {
		return nil, fmt.Errorf("%w: %s has %d bytes, over %d", errRecordTooLarge, key, o.Size, limit)
	}
	rc, err := store.Reader(ctx, key, 0, -1)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: %s is over %d bytes", errRecordTooLarge, key, limit)
	}
	return b, nil
}
