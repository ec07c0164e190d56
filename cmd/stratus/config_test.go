package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "stratus.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadConfigDefaults(t *testing.T) {
	cfg, err := loadConfig("", nil, nil)
	if err != nil {
		t.Fatalf("no config must be valid: %v", err)
	}
	if cfg.HTTP.Addr != ":5000" || cfg.Storage.Driver != DriverFilesystem || cfg.Storage.Filesystem.Root != "./data" {
		t.Errorf("defaults: addr=%q driver=%q root=%q", cfg.HTTP.Addr, cfg.Storage.Driver, cfg.Storage.Filesystem.Root)
	}
	if cfg.redisEnabled() {
		t.Error("redis must be off without an address")
	}
}

func TestLoadConfigPrecedence(t *testing.T) {
	file := writeConfig(t, "http:\n  addr: \":6000\"\n  shutdown_timeout: 5s\nstorage:\n  filesystem:\n    root: /from/file\n")
	tests := []struct {
		name     string
		env      []string
		sets     []string
		wantAddr string
		wantRoot string
	}{
		{"file only", nil, nil, ":6000", "/from/file"},
		{"env over file", []string{"STRATUS_HTTP_ADDR=:7000", "PATH=/bin"}, nil, ":7000", "/from/file"},
		{"flag over env", []string{"STRATUS_HTTP_ADDR=:7000"}, []string{"http.addr=:8000"}, ":8000", "/from/file"},
		{"env nested key", []string{"STRATUS_STORAGE_FILESYSTEM_ROOT=/from/env"}, nil, ":6000", "/from/env"},
		{"config file env var is not a key", []string{"STRATUS_CONFIG=/elsewhere"}, nil, ":6000", "/from/file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := loadConfig(file, tt.env, tt.sets)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.HTTP.Addr != tt.wantAddr || cfg.Storage.Filesystem.Root != tt.wantRoot {
				t.Errorf("addr=%q root=%q, want %q %q", cfg.HTTP.Addr, cfg.Storage.Filesystem.Root, tt.wantAddr, tt.wantRoot)
			}
			if cfg.HTTP.ShutdownTimeout != 5*time.Second {
				t.Errorf("shutdown_timeout = %v, want 5s from the file", cfg.HTTP.ShutdownTimeout)
			}
		})
	}
}

func TestLoadConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		file string
		env  []string
		sets []string
		want []string // every substring must appear in the error
	}{
		{"unknown key", "http:\n  adr: x\n", nil, nil, []string{"adr", "not found"}},
		{"bad duration", "http:\n  idle_timeout: soon\n", nil, nil, []string{"soon"}},
		{"unknown driver", "storage:\n  driver: floppy\n", nil, nil, []string{"floppy"}},
		{"unknown env var", "", []string{"STRATUS_HTTP_ADRR=:1"}, nil, []string{"STRATUS_HTTP_ADRR"}},
		{"bad env value", "", []string{"STRATUS_HTTP_IDLE_TIMEOUT=forever"}, nil, []string{"http.idle_timeout", "forever"}},
		{"unknown set key", "", nil, []string{"http.nope=1"}, []string{"http.nope", "unknown"}},
		{"set without value", "", nil, []string{"http.addr"}, []string{"key.path=value"}},
		{"pin ttl shorter than grace", "", nil, []string{"redis.addrs=127.0.0.1:6379", "redis.pin_ttl=30m", "registry.gc.grace=1h"}, []string{"redis.pin_ttl", "registry.gc.grace"}},
		{"pin ttl leaves a pass no time to claim", "", nil, []string{"redis.addrs=127.0.0.1:6379", "redis.pin_ttl=64m", "registry.gc.grace=1h"}, []string{"redis.pin_ttl", "by more than 5m0s"}},
		{"grace not above pin timeout", "", nil, []string{"registry.gc.grace=10s", "registry.pin_timeout=30s"}, []string{"registry.gc.grace", "pin_timeout"}},
		{"unknown untagged policy", "", nil, []string{"registry.gc.untagged=sometimes"}, []string{"registry.gc.untagged"}},
		{"negative mark cache", "", []string{"STRATUS_REGISTRY_GC_MARK_CACHE=-1"}, nil, []string{"registry.gc.mark_cache: -1 is outside"}},
		{"s3 part size too small", "storage:\n  driver: s3\n  s3:\n    bucket: b\n    part_size: 1MiB\n", nil, nil, []string{"storage.s3.part_size"}},
		{"s3 without bucket", "storage:\n  driver: s3\n", nil, nil, []string{"storage.s3.bucket"}},
		{"azure without account and container", "storage:\n  driver: azure\n", nil, nil, []string{"storage.azure.account_name", "storage.azure.container"}},
		{
			"azure every error at once", "storage:\n  driver: azure\n  azure:\n    account_name: Bad_Name\n    container: c\n    account_key: k\n    sas_token: sig=x\n    block_size: 8MiB\n",
			[]string{"STRATUS_STORAGE_AZURE_SERVICE_URL=ftp://x"}, []string{"storage.azure.redirect_expiry=-1s"},
			[]string{"storage.azure.account_name", "storage.azure.container", "storage.azure.account_key: set at most one", "storage.azure.block_size", "storage.azure.service_url", "storage.azure.redirect_expiry"},
		},
		{"gcs without bucket", "storage:\n  driver: gcs\n", nil, nil, []string{"storage.gcs.bucket"}},
		{"gcs chunk size and env override", "storage:\n  driver: gcs\n  gcs:\n    bucket: b\n", []string{"STRATUS_STORAGE_GCS_CHUNK_SIZE=100KiB", "STRATUS_STORAGE_GCS_REDIRECT_EXPIRY=720h"}, nil, []string{"storage.gcs.chunk_size", "storage.gcs.redirect_expiry"}},
		{
			"every validation error at once", "http:\n  tls:\n    cert: c.pem\n  idle_timeout: -1s\nlog:\n  format: json\n", nil, nil,
			[]string{"http.tls: cert and key", "http.idle_timeout: must not be negative"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := ""
			if tt.file != "" {
				path = writeConfig(t, tt.file)
			}
			_, err := loadConfig(path, tt.env, tt.sets)
			if err == nil {
				t.Fatal("want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestEveryKeyHasAnEnvName(t *testing.T) {
	var cfg Config
	seen := map[string]string{}
	for _, l := range leaves(&cfg) {
		name := envName(l.path)
		if prev, dup := seen[name]; dup {
			t.Errorf("keys %s and %s share the variable %s", prev, l.path, name)
		}
		seen[name] = l.path
	}
	for _, want := range []string{"STRATUS_HTTP_ADDR", "STRATUS_STORAGE_FILESYSTEM_ROOT", "STRATUS_STORAGE_DRIVER", "STRATUS_LOG_LEVEL"} {
		if _, ok := seen[want]; !ok {
			t.Errorf("no key for %s", want)
		}
	}
}

func TestConfigCheckCommand(t *testing.T) {
	good := writeConfig(t, "http:\n  addr: 127.0.0.1:5001\n")
	bad := writeConfig(t, "http:\n  tls:\n    key: k.pem\n  idle_timeout: -3s\n")
	tests := []struct {
		name    string
		args    []string
		wantErr bool
		wantOut []string
	}{
		{"valid", []string{"stratus", "config", "check", good}, false, []string{"configuration OK", "127.0.0.1:5001"}},
		{"invalid lists every error", []string{"stratus", "config", "check", bad}, true, []string{"http.tls", "http.idle_timeout"}},
		{"missing file", []string{"stratus", "config", "check", "/nonexistent.yaml"}, true, []string{"nonexistent.yaml"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			app := newApp(&out, &errOut, nil)
			app.ExitErrHandler = func(*cli.Context, error) {}
			err := app.Run(tt.args)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v; out=%s", err, tt.wantErr, out.String())
			}
			for _, w := range tt.wantOut {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output %q lacks %q", out.String(), w)
				}
			}
		})
	}
}

func TestVersionCommand(t *testing.T) {
	var out bytes.Buffer
	if err := newApp(&out, &out, nil).Run([]string{"stratus", "version"}); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "stratus ") {
		t.Errorf("version output %q", out.String())
	}
}

// TestLoadConfigReportsEverything: one run names every problem of every
// stage (file, environment, --set, validation), and a zero that a default
// would silently replace is an error, while a zero that means something
// (gc.interval 0 = off, s3 max_retries 0 = no retries) is kept.
func TestLoadConfigReportsEverything(t *testing.T) {
	file := writeConfig(t, "http:\n  idle_timeout: -1s\nregistry:\n  gc:\n    concurrency: 0\n    interval: 0s\n  bogus: 1\n")
	_, err := loadConfig(file, []string{"STRATUS_HTTP_ADR=:1"}, []string{"registry.upload_ttl=1s", "no.such.key=1"})
	if err == nil {
		t.Fatal("loadConfig accepted a config with errors in every stage")
	}
	for _, want := range []string{
		"field bogus not found",              // file: unknown key
		"STRATUS_HTTP_ADR",                   // environment typo
		"no.such.key: unknown configuration", // --set
		"registry.gc.concurrency: a zero",    // zero replaced by a default
		"http.idle_timeout: must not be negative",
		"registry.upload_ttl:",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "registry.gc.interval") {
		t.Errorf("gc.interval 0 means off and must be accepted:\n%v", err)
	}

	// 0 means no retries on every driver (and no mark cache); it is never
	// replaced by the default.
	for _, tc := range []struct {
		sets  []string
		value func(*Config) *int
	}{
		{[]string{"storage.driver=s3", "storage.s3.bucket=b", "storage.s3.max_retries=0"}, func(c *Config) *int { return c.Storage.S3.MaxRetries }},
		{[]string{"storage.driver=gcs", "storage.gcs.bucket=b", "storage.gcs.max_retries=0"}, func(c *Config) *int { return c.Storage.GCS.MaxRetries }},
		{[]string{"storage.driver=inmemory", "registry.gc.grace=1h", "registry.gc.mark_cache=0"}, func(c *Config) *int { return c.Registry.GC.MarkCache }},
		{[]string{"storage.driver=azure", "storage.azure.account_name=acct1", "storage.azure.container=registry", "storage.azure.max_retries=0"},
			func(c *Config) *int { return c.Storage.Azure.MaxRetries }},
	} {
		cfg, err := loadConfig("", nil, tc.sets)
		if err != nil {
			t.Fatal(err)
		}
		if n := tc.value(cfg); n == nil || *n != 0 {
			t.Errorf("%s became %v; 0 means no retries", tc.sets[2:], n)
		}
	}
}

func TestAzureConfigFromEnv(t *testing.T) {
	cfg, err := loadConfig("", []string{
		"STRATUS_STORAGE_DRIVER=azure",
		"STRATUS_STORAGE_AZURE_ACCOUNT_NAME=stratusprod",
		"STRATUS_STORAGE_AZURE_CONTAINER=registry",
		"STRATUS_STORAGE_AZURE_BLOCK_SIZE=32MiB",
		"STRATUS_STORAGE_AZURE_REDIRECT=true",
	}, []string{"storage.azure.root_directory=r1"})
	if err != nil {
		t.Fatal(err)
	}
	az := cfg.Storage.Azure
	if cfg.Storage.Driver != DriverAzure || az.AccountName != "stratusprod" || az.Container != "registry" ||
		az.BlockSize != 32<<20 || !az.Redirect || az.RootDirectory != "r1" {
		t.Errorf("azure config = %+v", az)
	}
	if az.UploadConcurrency == 0 || az.RedirectExpiry == 0 || az.RequestTimeout == 0 {
		t.Errorf("azure defaults not applied: %+v", az)
	}
	if az.AccountKey != "" || az.ConnectionString != "" || az.SASToken != "" {
		t.Errorf("a credential defaulted to something: %+v", az)
	}
}

func TestLoadConfigGCS(t *testing.T) {
	file := writeConfig(t, "storage:\n  driver: gcs\n  gcs:\n    bucket: from-file\n    chunk_size: 8MiB\n")
	env := []string{
		"STRATUS_STORAGE_GCS_BUCKET=from-env",
		"STRATUS_STORAGE_GCS_ENDPOINT=http://127.0.0.1:4443",
		"STRATUS_STORAGE_GCS_ANONYMOUS=true",
		"STRATUS_STORAGE_GCS_KMS_KEY_NAME=projects/p/locations/l/keyRings/r/cryptoKeys/k",
	}
	cfg, err := loadConfig(file, env, []string{"storage.gcs.root_directory=registry"})
	if err != nil {
		t.Fatal(err)
	}
	g := cfg.Storage.GCS
	if cfg.Storage.Driver != DriverGCS || g.Bucket != "from-env" || g.Endpoint != "http://127.0.0.1:4443" || !g.Anonymous ||
		g.RootDirectory != "registry" || g.ChunkSize != 8<<20 || g.KMSKeyName == "" {
		t.Errorf("gcs config = %+v", g)
	}
	if g.RequestTimeout != time.Minute || g.MaxRetries == nil || *g.MaxRetries != 5 || g.RedirectExpiry != 20*time.Minute {
		t.Errorf("gcs defaults not applied: %+v", g)
	}
}
