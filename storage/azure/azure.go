// Package azure is the storage driver for Azure Blob Storage (and Azurite),
// built on the azblob SDK.
//
// Keys map to block blobs named <root_directory>/<key> in one container.
// A resumable write stages blocks on its target blob and commits them with
// one Put Block List (see multipart.go). The driver keeps its own
// bookkeeping blobs (upload markers and tail segments) under
// <root_directory>/_stratus/, which List hides and which storage keys may
// not use.
package azure

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/service"

	"github.com/stratus-registry/stratus/storage"
)

// smallBufSize is the buffer of appends and puts small enough not to need
// a whole block buffer.
const smallBufSize = 1 << 20

// Driver is the Azure Blob storage driver. It is safe for concurrent use.
type Driver struct {
	cfg       Config
	account   string
	container *container.Client
	// service is set with a token credential, to get user delegation
	// keys; sharedKey is set with an account key. Either signs URLs.
	service   *service.Client
	sharedKey *blob.SharedKeyCredential
	transport *http.Transport
	logger    *slog.Logger
	root      string // "" or "<root_directory>/"
	lim       limits

	bufs      sync.Pool // block buffers, lim.blockSize bytes each
	smallBufs sync.Pool // smallBufSize bytes each

	// noBatch is set once the blob batch API was refused with this
	// credential; deletes then run one request per blob.
	noBatch atomic.Bool
	udk     delegationKeys
}

var (
	_ storage.Driver          = (*Driver)(nil)
	_ storage.URLSigner       = (*Driver)(nil)
	_ storage.MultipartReaper = (*Driver)(nil)
)

// New builds a driver from cfg (defaults applied, then validated). It does
// not contact the store, so a registry can start while Azure is
// unreachable; the first operation reports that.
func New(ctx context.Context, cfg Config, logger *slog.Logger) (*Driver, error) {
	return newDriver(ctx, cfg, logger, options{})
}

// options are what tests change: Azure's limits scaled down, a token
// credential instead of DefaultAzureCredential, a private CA.
type options struct {
	lim     limits
	cred    azcore.TokenCredential
	rootCAs *x509.CertPool
	dial    func(ctx context.Context, network, addr string) (net.Conn, error)
}

func newDriver(_ context.Context, cfg Config, logger *slog.Logger, o options) (*Driver, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	lim := o.lim
	if lim.blockSize == 0 {
		lim = defaultLimits(cfg)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cs, _ := parseConnectionString(cfg.ConnectionString) // validated
	account := cfg.AccountName
	if account == "" {
		account = cs.accountName
	}
	serviceURL := cfg.ServiceURL
	switch {
	case serviceURL != "":
	case cs.blobEndpoint != "":
		serviceURL = cs.blobEndpoint
	default:
		serviceURL = "https://" + account + ".blob.core.windows.net"
	}
	serviceURL = strings.TrimRight(serviceURL, "/")

	transport := newTransport(cfg, o)
	opts := azcore.ClientOptions{
		Transport: &http.Client{Transport: transport},
		Retry: policy.RetryOptions{
			MaxRetries:    cfg.maxRetries(),
			RetryDelay:    cfg.RetryDelay,
			MaxRetryDelay: cfg.MaxRetryDelay,
		},
		Telemetry: policy.TelemetryOptions{ApplicationID: "stratus"},
	}
	d := &Driver{cfg: cfg, account: account, transport: transport, logger: logger, lim: lim}
	if root := strings.Trim(cfg.RootDirectory, "/"); root != "" {
		d.root = root + "/"
	}
	if err := d.connect(serviceURL, cs, opts, o.cred); err != nil {
		return nil, err
	}
	blockSize := int(lim.blockSize)
	d.bufs.New = func() any {
		b := make([]byte, blockSize)
		return &b
	}
	d.smallBufs.New = func() any {
		b := make([]byte, smallBufSize)
		return &b
	}
	return d, nil
}

// newTransport: request_timeout bounds connecting and waiting for
// headers, never a whole body, which may stream for as long as it needs.
func newTransport(cfg Config, o options) *http.Transport {
	dialer := &net.Dialer{Timeout: cfg.RequestTimeout, KeepAlive: 30 * time.Second}
	transport := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		TLSHandshakeTimeout:   cfg.RequestTimeout,
		ResponseHeaderTimeout: cfg.RequestTimeout,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   64, // one host, many concurrent requests
		ForceAttemptHTTP2:     true,
	}
	if o.dial != nil {
		transport.DialContext = o.dial
	}
	if o.rootCAs != nil {
		transport.TLSClientConfig = &tls.Config{RootCAs: o.rootCAs, MinVersion: tls.VersionTLS12}
	}
	return transport
}

// connect builds the container client (and, with a token credential, the
// service client that gets user delegation keys) for the configured
// credential; cred replaces DefaultAzureCredential when set.
func (d *Driver) connect(serviceURL string, cs connString, opts azcore.ClientOptions, cred azcore.TokenCredential) error {
	cfg := d.cfg
	containerURL := serviceURL + "/" + url.PathEscape(cfg.Container)
	var err error
	switch key, sas := firstOf(cfg.AccountKey, cs.accountKey), firstOf(cfg.SASToken, cs.sas); {
	case key != "":
		d.sharedKey, err = blob.NewSharedKeyCredential(d.account, key)
		if err != nil {
			return fmt.Errorf("storage.azure.account_key: %w", err)
		}
		d.container, err = container.NewClientWithSharedKeyCredential(containerURL, d.sharedKey, &container.ClientOptions{ClientOptions: opts})
	case sas != "":
		d.container, err = container.NewClientWithNoCredential(containerURL+"?"+strings.TrimPrefix(sas, "?"), &container.ClientOptions{ClientOptions: opts})
	default:
		if cred == nil {
			dc, cerr := azidentity.NewDefaultAzureCredential(&azidentity.DefaultAzureCredentialOptions{ClientOptions: opts})
			if cerr != nil {
				return fmt.Errorf("storage.azure: no credential (set account_key, connection_string or sas_token, or configure DefaultAzureCredential): %w", cerr)
			}
			cred = dc
		}
		d.container, err = container.NewClient(containerURL, cred, &container.ClientOptions{ClientOptions: opts})
		if err == nil {
			d.service, err = service.NewClient(serviceURL, cred, &service.ClientOptions{ClientOptions: opts})
		}
	}
	if err != nil {
		return fmt.Errorf("storage.azure: building the client for %s: %w", containerURL, err)
	}
	return nil
}

func firstOf(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Name implements storage.Driver.
func (d *Driver) Name() string { return driverName }

// Close releases idle connections.
func (d *Driver) Close() error {
	d.transport.CloseIdleConnections()
	return nil
}

// blobName maps a storage key to the container.
func (d *Driver) blobName(key string) string { return d.root + key }

func (d *Driver) blockBlob(name string) *blockblob.Client {
	return d.container.NewBlockBlobClient(name)
}

func (d *Driver) getBuf() *[]byte       { return d.bufs.Get().(*[]byte) }
func (d *Driver) putBuf(b *[]byte)      { d.bufs.Put(b) }
func (d *Driver) getSmallBuf() *[]byte  { return d.smallBufs.Get().(*[]byte) }
func (d *Driver) putSmallBuf(b *[]byte) { d.smallBufs.Put(b) }

// checkKey rejects invalid keys and the driver's own namespace.
func (d *Driver) checkKey(op, key string) error { return storage.CheckDriverKey(driverName, op, key) }

// Stat implements storage.Driver.
func (d *Driver) Stat(ctx context.Context, key string) (storage.Info, error) {
	if err := d.checkKey("stat", key); err != nil {
		return storage.Info{}, err
	}
	info, err := d.stat(ctx, d.blobName(key))
	if err != nil {
		return storage.Info{}, d.opError("stat", key, err)
	}
	info.Key = key
	return info, nil
}

// stat reads a blob's properties; the Info has no Key.
func (d *Driver) stat(ctx context.Context, name string) (storage.Info, error) {
	p, err := d.blockBlob(name).GetProperties(ctx, nil)
	if err != nil {
		return storage.Info{}, err
	}
	return storage.Info{Size: deref(p.ContentLength), ModTime: deref(p.LastModified), ETag: etagString(p.ETag)}, nil
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func etagString(e *azcore.ETag) string {
	if e == nil {
		return ""
	}
	return strings.Trim(string(*e), `"`)
}

// Delete implements storage.Driver.
func (d *Driver) Delete(ctx context.Context, key string) error {
	if err := d.checkKey("delete", key); err != nil {
		return err
	}
	return d.deleteBlob(ctx, "delete", key, d.blobName(key))
}

// deleteBlob removes one blob and its snapshots; a missing one is fine.
func (d *Driver) deleteBlob(ctx context.Context, op, key, name string) error {
	_, err := d.blockBlob(name).Delete(ctx, &blob.DeleteOptions{DeleteSnapshots: ptr(blob.DeleteSnapshotsOptionTypeInclude)})
	if err = d.opError(op, key, err); errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	return err
}

func ptr[T any](v T) *T { return &v }
