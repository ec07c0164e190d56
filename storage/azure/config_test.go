package azure_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/stratus-registry/stratus/storage"
	"github.com/stratus-registry/stratus/storage/azure"
)

func TestConfigValidate(t *testing.T) {
	valid := func() azure.Config { return azure.Config{AccountName: "stratusprod", Container: "registry"} }
	tests := []struct {
		name   string
		modify func(c *azure.Config)
		want   []string // substrings of the error; none means valid
	}{
		{"defaults (DefaultAzureCredential)", func(c *azure.Config) {}, nil},
		{"everything set", func(c *azure.Config) {
			*c = azure.Config{
				AccountName: "stratusprod", Container: "reg-1", RootDirectory: "/stratus/prod/",
				ServiceURL: "https://stratusprod.blob.core.chinacloudapi.cn", AccountKey: "a2V5",
				BlockSize: 64 << 20, UploadConcurrency: 8, RequestTimeout: time.Second, MaxRetries: new(0),
				RetryDelay: time.Second, MaxRetryDelay: time.Minute, Redirect: true, RedirectExpiry: time.Hour,
			}
		}, nil},
		{"connection string names the account", func(c *azure.Config) {
			c.AccountName = ""
			c.ConnectionString = "DefaultEndpointsProtocol=https;AccountName=acct1;AccountKey=a2V5;EndpointSuffix=core.windows.net"
		}, nil},
		{"sas connection string", func(c *azure.Config) {
			c.ConnectionString = "BlobEndpoint=https://acct1.blob.core.windows.net;SharedAccessSignature=sv=2024&sig=x"
		}, nil},
		{"account missing", func(c *azure.Config) { c.AccountName = "" }, []string{"storage.azure.account_name: required"}},
		{"account not a name", func(c *azure.Config) { c.AccountName = "My_Account" }, []string{"storage.azure.account_name:"}},
		{"container missing", func(c *azure.Config) { c.Container = "" }, []string{"storage.azure.container: required"}},
		{"container not a name", func(c *azure.Config) { c.Container = "Reg--x" }, []string{"storage.azure.container:"}},
		{"bad root", func(c *azure.Config) { c.RootDirectory = "a/../b" }, []string{"storage.azure.root_directory:"}},
		{"service url without scheme", func(c *azure.Config) { c.ServiceURL = "127.0.0.1:10000" }, []string{"storage.azure.service_url:"}},
		{"service url with a query", func(c *azure.Config) { c.ServiceURL = "https://a.blob.core.windows.net?sig=x" }, []string{"storage.azure.service_url:"}},
		{"two credentials", func(c *azure.Config) { c.AccountKey, c.SASToken = "a2V5", "sv=1&sig=x" }, []string{"storage.azure.account_key: set at most one"}},
		{"key with newline", func(c *azure.Config) { c.AccountKey = "a2V5\n" }, []string{"storage.azure.account_key: has leading or trailing whitespace"}},
		{"sas without signature", func(c *azure.Config) { c.SASToken = "sv=2024-01-01" }, []string{"storage.azure.sas_token:"}},
		{"connection string without secret", func(c *azure.Config) { c.ConnectionString = "AccountName=a1b" }, []string{"storage.azure.connection_string: has neither AccountKey nor SharedAccessSignature"}},
		{"connection string garbage does not leak", func(c *azure.Config) { c.ConnectionString = "s3cr3tk3y" }, []string{"storage.azure.connection_string: a part of 9 characters"}},
		{"block size below 500 GiB", func(c *azure.Config) { c.BlockSize = 10 << 20 }, []string{"storage.azure.block_size: must be at least 10737419 bytes"}},
		{"block size minimum", func(c *azure.Config) { c.BlockSize = azure.MinBlockSize }, nil},
		{"block size above Azure's", func(c *azure.Config) { c.BlockSize = 4001 << 20 }, []string{"storage.azure.block_size: must be at most"}},
		{"concurrency", func(c *azure.Config) { c.UploadConcurrency = 1000 }, []string{"storage.azure.upload_concurrency:"}},
		{"retries", func(c *azure.Config) { c.MaxRetries = new(-1) }, []string{"storage.azure.max_retries:"}},
		{"retry delays", func(c *azure.Config) { c.RetryDelay, c.MaxRetryDelay = time.Minute, time.Second }, []string{"storage.azure.retry_delay:"}},
		{"redirect expiry", func(c *azure.Config) { c.RedirectExpiry = 8 * 24 * time.Hour }, []string{"storage.azure.redirect_expiry:"}},
		{"redirect with a sas token", func(c *azure.Config) { c.Redirect, c.SASToken = true, "sv=1&sig=x" }, []string{"storage.azure.redirect: cannot sign"}},
		{"every error at once", func(c *azure.Config) { *c = azure.Config{BlockSize: 1, UploadConcurrency: -1} }, []string{
			"storage.azure.account_name", "storage.azure.container", "storage.azure.block_size", "storage.azure.upload_concurrency",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			tt.modify(&c)
			c.SetDefaults()
			err := c.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate accepted %+v", c)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("error %q quotes the connection string", err)
			}
		})
	}
}

// TestClassify maps Azure answers without a server: the codes the fault
// proxy cannot fake cheaply, and the precedence between code and status.
func TestClassify(t *testing.T) {
	tests := []struct {
		status              int
		code                string
		want                error
		retryable, throttle bool
	}{
		{404, "BlobNotFound", storage.ErrNotFound, false, false},
		{409, "BlobAlreadyExists", storage.ErrExists, false, false},
		{412, "ConditionNotMet", storage.ErrExists, false, false},
		{416, "InvalidRange", storage.ErrInvalidRange, false, false},
		{503, "ServerBusy", nil, true, true},
		{500, "ServerBusy", nil, true, true},
		{503, "IngressOverAccountLimit", nil, true, true},
		{429, "", nil, true, true},
		{500, "OperationTimedOut", nil, true, false},
		{502, "", nil, true, false},
		{408, "", nil, true, false},
		{400, "InvalidBlockList", nil, false, false},
		{409, "BlockCountExceedsLimit", nil, false, false},
	}
	for _, tt := range tests {
		resp := &http.Response{StatusCode: tt.status, Header: http.Header{"X-Ms-Error-Code": {tt.code}}, Request: &http.Request{Method: "GET"}}
		err := azure.Classify(&azcore.ResponseError{ErrorCode: tt.code, StatusCode: tt.status, RawResponse: resp})
		if tt.want != nil && !errors.Is(err, tt.want) {
			t.Errorf("%d %s: %v; want %v", tt.status, tt.code, err, tt.want)
		}
		if storage.Retryable(err) != tt.retryable || storage.Throttled(err) != tt.throttle {
			t.Errorf("%d %s: Retryable %v Throttled %v; want %v %v", tt.status, tt.code, storage.Retryable(err), storage.Throttled(err), tt.retryable, tt.throttle)
		}
	}
}
