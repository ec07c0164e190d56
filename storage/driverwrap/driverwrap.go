// Package driverwrap gives a storage.Driver wrapper (metrics, tracing)
// exactly the optional capabilities of the driver it wraps. Callers find a
// capability by type assertion (the registry redirects pulls when the
// driver is a storage.URLSigner, GC reaps when it is a
// storage.MultipartReaper), so a wrapper that hid one would change
// behaviour, and one that claimed a missing one would fail at run time.
//
// A wrapper implements only storage.Driver itself and hands Compose its
// versions of the optional methods; Compose picks the one type per
// combination that answers the type assertions as the wrapped driver does.
package driverwrap

import (
	"context"
	"time"

	"github.com/stratus-registry/stratus/storage"
)

// Hooks are a wrapper's versions of the optional capabilities. Each gets
// the wrapped driver's capability to call. A nil hook forwards unchanged.
type Hooks struct {
	SignedURL  func(ctx context.Context, next storage.URLSigner, key string, ttl time.Duration) (string, error)
	AbortStale func(ctx context.Context, next storage.MultipartReaper, cutoff time.Time, dryRun bool) (int, error)
}

// Compose returns base, a wrapper of inner that implements storage.Driver
// only, extended with exactly the optional capabilities inner has, served
// through h.
func Compose(base, inner storage.Driver, h Hooks) storage.Driver {
	if h.SignedURL == nil {
		h.SignedURL = func(ctx context.Context, s storage.URLSigner, key string, ttl time.Duration) (string, error) {
			return s.SignedURL(ctx, key, ttl)
		}
	}
	if h.AbortStale == nil {
		h.AbortStale = func(ctx context.Context, r storage.MultipartReaper, cutoff time.Time, dryRun bool) (int, error) {
			return r.AbortStale(ctx, cutoff, dryRun)
		}
	}
	signer, isSigner := inner.(storage.URLSigner)
	reaper, isReaper := inner.(storage.MultipartReaper)
	s := signing{signer: signer, hook: h.SignedURL}
	r := reaping{reaper: reaper, hook: h.AbortStale}
	switch {
	case isSigner && isReaper:
		return &signingReaping{Driver: base, signing: s, reaping: r}
	case isSigner:
		return &signingDriver{Driver: base, signing: s}
	case isReaper:
		return &reapingDriver{Driver: base, reaping: r}
	}
	return base
}

// Unwrap returns the driver under a wrapper built with Compose (or any
// wrapper with an Unwrap method), or d itself when it wraps nothing.
func Unwrap(d storage.Driver) storage.Driver {
	if u, ok := d.(interface{ Unwrap() storage.Driver }); ok {
		return u.Unwrap()
	}
	return d
}

type signing struct {
	signer storage.URLSigner
	hook   func(context.Context, storage.URLSigner, string, time.Duration) (string, error)
}

func (s signing) SignedURL(ctx context.Context, key string, ttl time.Duration) (string, error) {
	return s.hook(ctx, s.signer, key, ttl)
}

type reaping struct {
	reaper storage.MultipartReaper
	hook   func(context.Context, storage.MultipartReaper, time.Time, bool) (int, error)
}

func (r reaping) AbortStale(ctx context.Context, cutoff time.Time, dryRun bool) (int, error) {
	return r.hook(ctx, r.reaper, cutoff, dryRun)
}

// The combinations. Each embeds the base wrapper as storage.Driver, which
// hides the base's other methods; Unwrap is forwarded explicitly.

type signingDriver struct {
	storage.Driver
	signing
}

func (d *signingDriver) Unwrap() storage.Driver { return Unwrap(d.Driver) }

type reapingDriver struct {
	storage.Driver
	reaping
}

func (d *reapingDriver) Unwrap() storage.Driver { return Unwrap(d.Driver) }

type signingReaping struct {
	storage.Driver
	signing
	reaping
}

func (d *signingReaping) Unwrap() storage.Driver { return Unwrap(d.Driver) }
