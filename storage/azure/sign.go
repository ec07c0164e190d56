package azure

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/service"

	"github.com/stratus-registry/stratus/storage"
)

// clockSkew backdates a SAS's start, for clocks slightly apart.
const clockSkew = 5 * time.Minute

// SignedURL implements storage.URLSigner: a read-only SAS for one blob,
// valid for ttl (redirect_expiry when ttl <= 0). With a shared key it is a
// service SAS signed by the account key; with azidentity a user-delegation
// SAS (the identity needs Storage Blob Delegator on the account). It
// returns ErrUnsupported when redirect is off or the credential cannot
// sign (a sas_token), so that the registry streams instead.
func (d *Driver) SignedURL(ctx context.Context, key string, ttl time.Duration) (string, error) {
	if err := d.checkKey("sign", key); err != nil {
		return "", err
	}
	if !d.cfg.Redirect {
		return "", &storage.OpError{Op: "sign", Driver: driverName, Key: key, Err: fmt.Errorf("%w: storage.azure.redirect is off", storage.ErrUnsupported)}
	}
	if ttl <= 0 {
		ttl = d.cfg.RedirectExpiry
	}
	ttl = min(ttl, maxRedirectExpiry-2*clockSkew)
	now := time.Now().UTC()
	name := d.blobName(key)
	v := sas.BlobSignatureValues{
		Protocol:      sas.ProtocolHTTPS,
		StartTime:     now.Add(-clockSkew),
		ExpiryTime:    now.Add(ttl),
		Permissions:   (&sas.BlobPermissions{Read: true}).String(),
		ContainerName: d.cfg.Container,
		BlobName:      name,
	}
	u := d.blockBlob(name).URL()
	if strings.HasPrefix(u, "http://") {
		v.Protocol = sas.ProtocolHTTPSandHTTP // Azurite and other plain-HTTP endpoints
	}
	var qp sas.QueryParameters
	var err error
	switch {
	case d.sharedKey != nil:
		qp, err = v.SignWithSharedKey(d.sharedKey)
	case d.service != nil:
		if h := hostOf(u); strings.Split(h, ".")[0] != d.account {
			// The SDK signs for the account named by the URL's first DNS
			// label; a path-style endpoint would get URLs that never work.
			return "", &storage.OpError{Op: "sign", Driver: driverName, Key: key, Err: fmt.Errorf(
				"%w: a user-delegation SAS needs a service_url whose host starts with the account name %q, not %q", storage.ErrUnsupported, d.account, h)}
		}
		var udc *service.UserDelegationCredential
		udc, err = d.udk.get(ctx, d.service, ttl)
		if err == nil {
			qp, err = v.SignWithUserDelegation(udc)
		}
	default:
		return "", &storage.OpError{Op: "sign", Driver: driverName, Key: key, Err: fmt.Errorf("%w: a sas_token cannot sign URLs", storage.ErrUnsupported)}
	}
	if err != nil {
		return "", d.opError("sign", key, err)
	}
	if i := strings.IndexByte(u, '?'); i >= 0 {
		u = u[:i]
	}
	return u + "?" + qp.Encode(), nil
}

// delegationKeys caches the user delegation key: getting one is a request
// to the service, and one key signs every URL until it nears its expiry.
type delegationKeys struct {
	mu      sync.Mutex
	cred    *service.UserDelegationCredential
	expires time.Time
}

// delegationKeyLife is how long a fresh key is asked for; URLs signed with
// it must expire before it does.
const delegationKeyLife = 6 * time.Hour

func (k *delegationKeys) get(ctx context.Context, svc *service.Client, ttl time.Duration) (*service.UserDelegationCredential, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := time.Now().UTC()
	if k.cred != nil && k.expires.Sub(now) > ttl+clockSkew {
		return k.cred, nil
	}
	life := min(max(delegationKeyLife, 2*ttl), maxRedirectExpiry-clockSkew)
	expires := now.Add(life)
	cred, err := svc.GetUserDelegationCredential(ctx, service.KeyInfo{
		Start:  ptr(now.Add(-clockSkew).Format(sas.TimeFormat)),
		Expiry: ptr(expires.Format(sas.TimeFormat)),
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("getting a user delegation key (the identity needs Storage Blob Delegator): %w", err)
	}
	k.cred, k.expires = cred, expires
	return cred, nil
}

// hostOf is the host name of a URL, without the port.
func hostOf(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return ""
	}
	return p.Hostname()
}
