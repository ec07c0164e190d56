package azure

import (
	"cmp"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/stratus-registry/stratus/storage"
)

// Config is the `storage.azure` section of the configuration.
//
// Credentials, in the order they are looked at (exactly one of the first
// three may be set):
//   - connection_string: the account's connection string (account key or
//     SAS inside; BlobEndpoint in it overrides service_url);
//   - account_key: shared-key authentication for account_name;
//   - sas_token: a container or account SAS (without the leading "?");
//   - otherwise DefaultAzureCredential (azidentity): environment
//     (AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET ...), workload
//     identity (AKS), managed identity, then the Azure CLI.
type Config struct {
	AccountName string `yaml:"account_name"`
	Container   string `yaml:"container"`
	// RootDirectory is a blob name prefix inside the container, so that
	// several registries (or other data) can share one container.
	RootDirectory string `yaml:"root_directory"`
	// ServiceURL overrides https://<account_name>.blob.core.windows.net,
	// for Azurite ("http://127.0.0.1:10000/devstoreaccount1") and
	// sovereign clouds ("https://<account>.blob.core.chinacloudapi.cn").
	ServiceURL       string `yaml:"service_url"`
	AccountKey       string `yaml:"account_key"`
	ConnectionString string `yaml:"connection_string"`
	SASToken         string `yaml:"sas_token"`
	// BlockSize is the size of the staged blocks of a resumable write and
	// the one buffer an upload holds in memory. A blob has at most 50,000
	// committed blocks, so the largest blob is 50,000 x block_size: 781 GiB
	// at the 16 MiB default. It must allow at least 500 GiB.
	BlockSize storage.Size `yaml:"block_size"`
	// UploadConcurrency is how many blocks of one whole-object write, or
	// tail segments of one block, move at once.
	UploadConcurrency int `yaml:"upload_concurrency"`
	// RequestTimeout bounds connecting and waiting for the response
	// headers of one attempt; bodies stream for as long as they need.
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// MaxRetries is how many times the SDK retries a transient failure
	// (408, 429, 5xx, connection errors) with exponential backoff; 0
	// disables retries. Unset means DefaultMaxRetries.
	MaxRetries *int `yaml:"max_retries"`
	// RetryDelay and MaxRetryDelay shape the SDK's backoff (a Retry-After
	// from the service takes precedence).
	RetryDelay    time.Duration `yaml:"retry_delay"`
	MaxRetryDelay time.Duration `yaml:"max_retry_delay"`
	// Redirect lets the registry answer blob pulls with a redirect to a
	// SAS URL valid for RedirectExpiry: a user-delegation SAS with
	// azidentity, an account-key SAS with a shared key.
	Redirect       bool          `yaml:"redirect"`
	RedirectExpiry time.Duration `yaml:"redirect_expiry"`
}

// Defaults applied by SetDefaults.
const (
	DefaultBlockSize         = 16 << 20
	DefaultUploadConcurrency = 4
	DefaultRequestTimeout    = 60 * time.Second
	DefaultMaxRetries        = 5
	DefaultRetryDelay        = 500 * time.Millisecond
	DefaultMaxRetryDelay     = 30 * time.Second
	DefaultRedirectExpiry    = 20 * time.Minute

	// maxUploadConcurrency keeps a typo from allocating gigabytes of
	// block buffers.
	maxUploadConcurrency = 64
	// maxRedirectExpiry bounds a user-delegation key's lifetime (7 days);
	// an account-key SAS could live longer, but a pull needs minutes.
	maxRedirectExpiry = 7 * 24 * time.Hour
)

// SetDefaults fills the keys left unset.
func (c *Config) SetDefaults() {
	c.BlockSize = cmp.Or(c.BlockSize, DefaultBlockSize)
	c.UploadConcurrency = cmp.Or(c.UploadConcurrency, DefaultUploadConcurrency)
	c.RequestTimeout = cmp.Or(c.RequestTimeout, DefaultRequestTimeout)
	c.RetryDelay = cmp.Or(c.RetryDelay, DefaultRetryDelay)
	c.MaxRetryDelay = cmp.Or(c.MaxRetryDelay, DefaultMaxRetryDelay)
	if c.MaxRetries == nil {
		c.MaxRetries = new(DefaultMaxRetries)
	}
	c.RedirectExpiry = cmp.Or(c.RedirectExpiry, DefaultRedirectExpiry)
}

// Azure's naming rules: accounts are 3-24 lower-case letters and digits;
// containers 3-63 lower-case letters, digits and single dashes.
var (
	accountNameRE   = regexp.MustCompile(`^[a-z0-9]{3,24}$`)
	containerNameRE = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9]|-[a-z0-9]){2,62}$`)
)

// Validate reports every problem at once, each prefixed with its key path.
// It expects SetDefaults to have run.
func (c *Config) Validate() error {
	errs := storage.ConfigErrors{Prefix: "storage.azure."}
	add := errs.Add

	cs, csErr := parseConnectionString(c.ConnectionString)
	if csErr != nil {
		add("connection_string", "%v", csErr)
	}
	switch {
	case c.AccountName == "" && cs.accountName == "":
		add("account_name", "required (or a connection_string that names the account)")
	case c.AccountName != "" && !accountNameRE.MatchString(c.AccountName):
		add("account_name", "%q is not a storage account name (3-24 lower-case letters and digits)", c.AccountName)
	}
	switch {
	case c.Container == "":
		add("container", "required")
	case !containerNameRE.MatchString(c.Container):
		add("container", "%q is not a container name (3-63 lower-case letters, digits and single dashes)", c.Container)
	}
	errs.RootDirectory(c.RootDirectory)
	if c.ServiceURL != "" {
		u, err := url.Parse(c.ServiceURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
			add("service_url", "%q is not an http:// or https:// URL without a query", c.ServiceURL)
		}
	}
	set := 0
	for _, v := range []string{c.ConnectionString, c.AccountKey, c.SASToken} {
		if v != "" {
			set++
		}
	}
	if set > 1 {
		add("account_key", "set at most one of connection_string, account_key and sas_token")
	}
	errs.Secret("account_key", c.AccountKey)
	errs.Secret("connection_string", c.ConnectionString)
	errs.Secret("sas_token", c.SASToken)
	if c.SASToken != "" {
		if q, err := url.ParseQuery(strings.TrimPrefix(c.SASToken, "?")); err != nil || q.Get("sig") == "" {
			add("sas_token", "is not a SAS query string (no sig=)")
		}
	}
	if msg := checkBlockSize(int64(c.BlockSize)); msg != "" {
		add("block_size", "%s", msg)
	}
	errs.Between("upload_concurrency", c.UploadConcurrency, 1, maxUploadConcurrency)
	errs.Timeout("request_timeout", c.RequestTimeout)
	errs.Retries("max_retries", c.MaxRetries)
	if c.RetryDelay < 0 || c.MaxRetryDelay < c.RetryDelay {
		add("retry_delay", "must not be negative nor above max_retry_delay")
	}
	if c.RedirectExpiry <= 0 || c.RedirectExpiry > maxRedirectExpiry {
		add("redirect_expiry", "must be positive and at most %s", maxRedirectExpiry)
	}
	if c.Redirect && c.SASToken != "" {
		add("redirect", "cannot sign URLs with a sas_token; use account_key, a connection_string with AccountKey, or azidentity")
	}
	return errs.Err()
}

// maxRetries turns max_retries into the SDK's value (< 0 means none).
func (c *Config) maxRetries() int32 {
	n := storage.RetryCount(c.MaxRetries, DefaultMaxRetries)
	if n == 0 {
		return -1
	}
	return int32(n)
}

// connString is what a connection string says about the blob service.
type connString struct {
	accountName, accountKey, sas, blobEndpoint string
}

// parseConnectionString reads the key=value;... form of the Azure portal.
// An empty string is no connection string.
func parseConnectionString(s string) (connString, error) {
	var cs connString
	if strings.TrimSpace(s) == "" {
		return cs, nil
	}
	protocol, suffix := "https", "core.windows.net"
	for part := range strings.SplitSeq(strings.TrimSpace(s), ";") {
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			// Never quote it: it may be a piece of a secret.
			return connString{}, fmt.Errorf("a part of %d characters is not key=value", len(part))
		}
		switch strings.ToLower(k) {
		case "accountname":
			cs.accountName = v
		case "accountkey":
			cs.accountKey = v
		case "sharedaccesssignature":
			cs.sas = v
		case "blobendpoint":
			cs.blobEndpoint = v
		case "defaultendpointsprotocol":
			protocol = v
		case "endpointsuffix":
			suffix = v
		}
	}
	if cs.accountKey == "" && cs.sas == "" {
		return connString{}, errors.New("has neither AccountKey nor SharedAccessSignature")
	}
	if cs.accountKey != "" && cs.accountName == "" {
		return connString{}, errors.New("has an AccountKey but no AccountName")
	}
	if cs.blobEndpoint == "" {
		if cs.accountName == "" {
			return connString{}, errors.New("has neither BlobEndpoint nor AccountName")
		}
		cs.blobEndpoint = fmt.Sprintf("%s://%s.blob.%s", protocol, cs.accountName, suffix)
	}
	return cs, nil
}
