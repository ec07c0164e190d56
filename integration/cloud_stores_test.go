package integration

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stratus-registry/stratus/storage/azure/azuretest"
	"github.com/stratus-registry/stratus/storage/gcs/gcstest"
	"github.com/stratus-registry/stratus/storage/s3/s3test"
)

// cloudStore is an object-store backend that the store scenarios
// (store_scenarios_test.go, store_faults_test.go) run on: its emulator and
// what the scenarios need to know of it. Each scenario runs as one subtest
// per entry of cloudStores.
type cloudStore struct {
	// name is the driver's: storage.driver=<name>, storage.<name>.* flags.
	name string
	// start returns this test binary's emulator with a fresh prefix.
	start func(t *testing.T) storeSite
	// largeBlob is what TestLargeBlobSmallChunks pushes without -short.
	largeBlob int64
	// resume is TestUploadResumedByAnotherProcess's upload.
	resume resumePlan
	// checkRedirect, where the backend can redirect pulls (the driver's
	// redirect and redirect_expiry settings), checks the Location that a
	// blob GET answers with when the expiry is 5 minutes: a URL on the
	// site, signed, valid for 300 s. Nil where the backend cannot redirect,
	// which leaves it out of TestRedirectedPulls.
	checkRedirect func(site storeSite, loc string) error
	// dialect is how a fault proxy reads and refuses the store's requests.
	dialect storeDialect
	// faultFlags make the driver give up soon behind a fault proxy: one
	// retry, short waits.
	faultFlags []string
	// faultPlan is TestStoreFaults' mix of faults, and faultSeed its seed.
	faultPlan func(d storeDialect) faultPlan
	faultSeed uint64
	// refusals are the persistent errors TestStoreThrottled answers every
	// request with, and the status the registry's clients must get.
	refusals []refusalCase
}

// resumePlan is an upload that a first process takes up to killAt in
// chunk-byte PATCHes before it dies, and a second process finishes.
type resumePlan struct{ size, chunk, killAt int64 }

// refusalCase is a store error, by HTTP status and error code, and the
// status the registry must turn it into.
type refusalCase struct {
	status int
	code   string
	want   int
}

// storeSite is one emulator as `stratus serve` sees it.
type storeSite struct {
	endpoint string // the store API's base URL
	// via are the `stratus serve` flags for the site's prefix, with the
	// store's API reached at endpoint (a proxy in front of the emulator).
	via func(endpoint string) []string
	// signing, if set, are the flags for the site with credentials that
	// can sign URLs, where args' cannot.
	signing func(t *testing.T) []string
}

// args are the `stratus serve` flags for the site, the emulator reached
// directly.
func (s storeSite) args() []string { return s.via(s.endpoint) }

// signingArgs are args with credentials that can sign URLs.
func (s storeSite) signingArgs(t *testing.T) []string {
	if s.signing != nil {
		return s.signing(t)
	}
	return s.args()
}

// cloudStores: S3 on MinIO, Azure Blob on Azurite and GCS on
// fake-gcs-server.
func cloudStores() []cloudStore {
	return []cloudStore{
		{
			name: "s3", start: s3Site, checkRedirect: s3Presigned, largeBlob: 1 << 30,
			resume:     resumePlan{size: 24<<20 + 5, chunk: 3 << 20, killAt: 12<<20 + 2},
			dialect:    s3Dialect,
			faultFlags: []string{"--set", "storage.s3.max_retries=1", "--set", "storage.s3.request_timeout=5s"},
			faultPlan: func(d storeDialect) faultPlan {
				var p faultPlan
				p.set(faultBefore, 0.08, d.faulted...)
				p.set(faultReset, 0.04, d.faulted...)
				p.set(faultLag, 0.08, d.faulted...)
				p.lag = 200 * time.Millisecond
				return p
			},
			faultSeed: 42,
			// A pull starts with a GET of the link (layout v2), whose error
			// body carries S3's code: SlowDown is throttling for pulls too.
			refusals: []refusalCase{
				{status: 503, code: "SlowDown", want: 429},
				{status: 429, want: 429}, {status: 503, code: "ServiceUnavailable", want: 503}, {status: 500, code: "InternalError", want: 503},
			},
		},
		{
			// 300 MiB + 12345: over 256 MiB, and no whole number of blocks.
			name: "azure", start: azureSite, checkRedirect: azureSAS, largeBlob: 300<<20 + 12345,
			// 40 MiB + 5: two whole 16 MiB blocks; the kill lands mid-block.
			resume:     resumePlan{size: 40<<20 + 5, chunk: 1 << 20, killAt: 23 << 20},
			dialect:    azureDialect,
			faultFlags: []string{"--set", "storage.azure.max_retries=1", "--set", "storage.azure.retry_delay=50ms"},
			faultPlan:  everyRequestPlan(0.20, 0.10),
			faultSeed:  7,
			refusals: []refusalCase{
				{status: 503, code: "ServerBusy", want: 429}, {status: 429, want: 429},
				{status: 503, want: 503}, {status: 500, code: "InternalError", want: 503},
			},
		},
		{
			name: "gcs", start: gcsSite, checkRedirect: gcsSignedURL, largeBlob: 300 << 20,
			resume:     resumePlan{size: 24<<20 + 5, chunk: 1 << 20, killAt: 12<<20 + 2},
			dialect:    gcsDialect,
			faultFlags: []string{"--set", "storage.gcs.max_retries=1", "--set", "storage.gcs.request_timeout=5s"},
			faultPlan:  everyRequestPlan(0.10, 0.05),
			faultSeed:  11,
			refusals:   []refusalCase{{status: 429, code: "rateLimitExceeded", want: 429}, {status: 503, code: "rateLimitExceeded", want: 503}},
		},
	}
}

// everyRequestPlan throttles a share of every request the driver sends
// and applies a share, then loses the answer.
func everyRequestPlan(throttled, lost float64) func(d storeDialect) faultPlan {
	return func(d storeDialect) faultPlan {
		var p faultPlan
		p.set(faultBefore, throttled, d.faulted...)
		p.set(faultAfter, lost, d.faulted...)
		return p
	}
}

func s3Site(t *testing.T) storeSite {
	mio, prefix := s3test.Start(t), uniquePrefix(t)
	return storeSite{
		endpoint: mio.Endpoint,
		via:      func(endpoint string) []string { return s3ArgsVia(mio, prefix, endpoint) },
	}
}

func s3Presigned(site storeSite, loc string) error {
	if !strings.HasPrefix(loc, site.endpoint) || !strings.Contains(loc, "X-Amz-Signature") {
		return fmt.Errorf("not a presigned URL on MinIO")
	}
	// The configured redirect_expiry (5m), not a built-in default.
	if u, err := url.Parse(loc); err != nil || u.Query().Get("X-Amz-Expires") != "300" {
		return fmt.Errorf("presigned URL expiry %q; want 300 s from storage.s3.redirect_expiry=5m", u.Query().Get("X-Amz-Expires"))
	}
	return nil
}

// azureArgs are the `stratus serve` flags for Azurite under prefix, with
// the well-known development account's shared key.
func azureArgs(srv *azuretest.Server, prefix string) []string {
	return azureArgsVia(srv, prefix, srv.Config(prefix).ServiceURL)
}

// azureArgsVia is azureArgs with the Blob API reached at serviceURL.
func azureArgsVia(srv *azuretest.Server, prefix, serviceURL string) []string {
	c := srv.Config(prefix)
	return []string{
		"--set", "storage.driver=azure",
		"--set", "storage.azure.account_name=" + c.AccountName,
		"--set", "storage.azure.container=" + c.Container,
		"--set", "storage.azure.root_directory=" + c.RootDirectory,
		"--set", "storage.azure.service_url=" + serviceURL,
		"--set", "storage.azure.account_key=" + c.AccountKey,
	}
}

func azureSite(t *testing.T) storeSite {
	az, prefix := azuretest.Start(t), uniquePrefix(t)
	return storeSite{
		endpoint: az.ServiceURL,
		via:      func(endpoint string) []string { return azureArgsVia(az, prefix, endpoint) },
	}
}

func azureSAS(site storeSite, loc string) error {
	if !strings.HasPrefix(loc, site.endpoint) || !strings.Contains(loc, "sig=") || !strings.Contains(loc, "sp=r") {
		return fmt.Errorf("not a read-only account-key SAS URL on Azurite")
	}
	// The configured redirect_expiry (5m), not a built-in default.
	u, err := url.Parse(loc)
	if err != nil {
		return err
	}
	se, err := time.Parse(time.RFC3339, u.Query().Get("se"))
	if left := time.Until(se); err != nil || left < 4*time.Minute || left > 5*time.Minute+5*time.Second {
		return fmt.Errorf("SAS expiry se=%q (%v); want 5m from now from storage.azure.redirect_expiry=5m", u.Query().Get("se"), err)
	}
	return nil
}

// gcsArgs are the `stratus serve` flags for fake-gcs-server under prefix.
func gcsArgs(srv *gcstest.Server, prefix string) []string {
	return gcsArgsVia(srv, prefix, srv.Config(prefix).Endpoint)
}

// gcsArgsVia is gcsArgs with the JSON API reached at endpoint.
func gcsArgsVia(srv *gcstest.Server, prefix, endpoint string) []string {
	return append(gcsNoCredentials(srv, prefix, endpoint), "--set", "storage.gcs.anonymous=true")
}

// gcsNoCredentials are the flags for fake-gcs-server without credentials:
// the caller adds a key, or anonymous.
func gcsNoCredentials(srv *gcstest.Server, prefix, endpoint string) []string {
	c := srv.Config(prefix)
	return []string{
		"--set", "storage.driver=gcs",
		"--set", "storage.gcs.bucket=" + c.Bucket,
		"--set", "storage.gcs.root_directory=" + c.RootDirectory,
		"--set", "storage.gcs.endpoint=" + endpoint,
	}
}

func gcsSite(t *testing.T) storeSite {
	fake, prefix := gcstest.Start(t), uniquePrefix(t)
	return storeSite{
		endpoint: fake.Endpoint,
		via:      func(endpoint string) []string { return gcsArgsVia(fake, prefix, endpoint) },
		// A service-account key, not anonymous, authenticates and signs
		// V4 URLs.
		signing: func(t *testing.T) []string {
			return append(gcsNoCredentials(fake, prefix, fake.Endpoint), "--set", "storage.gcs.credentials_file="+gcstest.NewKeyFile(t).Path)
		},
	}
}

func gcsSignedURL(site storeSite, loc string) error {
	if !strings.HasPrefix(loc, site.endpoint+"/") || !strings.Contains(loc, "X-Goog-Signature=") || !strings.Contains(loc, "X-Goog-Expires=300") {
		return fmt.Errorf("not a V4 signed URL on fake-gcs-server valid 300s")
	}
	return nil
}
