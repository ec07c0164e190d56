package drivertest

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"

	"github.com/stratus-registry/stratus/storage"
)

// Fault is when an injected failure happens relative to the store.
type Fault int

const (
	// Before: the operation fails without reaching the store.
	Before Fault = iota + 1
	// After: the store applies the operation, then the answer is lost.
	After
)

// ErrInjected is the transient error a Faulty driver injects.
var ErrInjected = &storage.TransientError{Err: errors.New("drivertest: injected fault")}

// Faulty wraps a driver and fails chosen writes, before or after the
// wrapped driver applies them: the second kind is what an SDK retry after a
// lost answer turns into, and what idempotent callers must survive.
type Faulty struct {
	storage.Driver
	mu    sync.Mutex
	rules []*faultRule
}

type faultRule struct {
	op, keyPart string
	when        Fault
	times       int
}

// NewFaulty wraps d; with no rules it is transparent.
func NewFaulty(d storage.Driver) *Faulty { return &Faulty{Driver: d} }

// Fail makes the next times calls of op ("put", "commit", "delete",
// "append") on keys containing keyPart fail at when.
func (f *Faulty) Fail(op, keyPart string, when Fault, times int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = append(f.rules, &faultRule{op: op, keyPart: keyPart, when: when, times: times})
}

// fault reports whether a call of op on key fails, and when.
func (f *Faulty) fault(op, key string) Fault {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.rules {
		if r.op == op && r.times > 0 && strings.Contains(key, r.keyPart) {
			r.times--
			return r.when
		}
	}
	return 0
}

func (f *Faulty) Put(ctx context.Context, key string, r io.Reader, opts storage.PutOptions) (storage.Info, error) {
	when := f.fault("put", key)
	if when == Before {
		return storage.Info{}, ErrInjected
	}
	info, err := f.Driver.Put(ctx, key, r, opts)
	if when == After && err == nil {
		return storage.Info{}, ErrInjected
	}
	return info, err
}

func (f *Faulty) Delete(ctx context.Context, key string) error {
	when := f.fault("delete", key)
	if when == Before {
		return ErrInjected
	}
	if err := f.Driver.Delete(ctx, key); err != nil || when == After {
		return errors.Join(err, ErrInjected)
	}
	return nil
}

func (f *Faulty) NewMultipart(ctx context.Context, key string) (storage.Multipart, error) {
	m, err := f.Driver.NewMultipart(ctx, key)
	if err != nil {
		return nil, err
	}
	return &faultyMultipart{Multipart: m, f: f, key: key}, nil
}

func (f *Faulty) ResumeMultipart(ctx context.Context, handle []byte) (storage.Multipart, error) {
	m, err := f.Driver.ResumeMultipart(ctx, handle)
	if err != nil {
		return nil, err
	}
	return &faultyMultipart{Multipart: m, f: f, key: string(handle)}, nil
}

// faultyMultipart matches rules on the key it was started for, or, once
// resumed, on the handle's text (which names the key in every driver).
type faultyMultipart struct {
	storage.Multipart
	f   *Faulty
	key string
}

func (m *faultyMultipart) Append(ctx context.Context, r io.Reader) (int64, error) {
	when := m.f.fault("append", m.key)
	if when == Before {
		return 0, ErrInjected
	}
	n, err := m.Multipart.Append(ctx, r)
	if when == After && err == nil {
		return 0, ErrInjected
	}
	return n, err
}

func (m *faultyMultipart) Commit(ctx context.Context) (storage.Info, error) {
	when := m.f.fault("commit", m.key)
	if when == Before {
		return storage.Info{}, ErrInjected
	}
	info, err := m.Multipart.Commit(ctx)
	if when == After && err == nil {
		return storage.Info{}, ErrInjected
	}
	return info, err
}
