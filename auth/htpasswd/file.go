package htpasswd

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// ErrBadCredentials is returned for an unknown user and for a wrong
// password alike, so callers cannot tell the two apart either.
var ErrBadCredentials = errors.New("htpasswd: bad user name or password")

// checkEvery is how often, at most, a request stats the file. The file is
// checked lazily on the request path rather than by an fsnotify watcher: a
// stat per second costs nothing, needs no goroutine or watcher to close,
// and follows the symlink swaps of Kubernetes secret volumes (os.Stat
// resolves the link, so a swapped target shows as another file).
const checkEvery = time.Second

// File is a loaded htpasswd file. It is safe for concurrent use.
type File struct {
	path   string
	logger *slog.Logger
	now    func() time.Time

	mu      sync.Mutex
	users   []entry
	dummy   []byte // a bcrypt hash compared for unknown users
	stat    os.FileInfo
	checked time.Time
	ok      *okCache
}

// Open loads the file; any error (missing file, a non-bcrypt line) is
// returned, so that startup stops.
func Open(path string, logger *slog.Logger) (*File, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	f := &File{path: path, logger: logger, now: time.Now}
	if err := f.load(); err != nil {
		return nil, err
	}
	return f, nil
}

// load reads and installs the file's content.
func (f *File) load() error {
	st, err := os.Stat(f.path)
	if err != nil {
		return fmt.Errorf("htpasswd: %w", err)
	}
	data, err := os.ReadFile(f.path)
	if err != nil {
		return fmt.Errorf("htpasswd: %w", err)
	}
	users, err := parse(bytes.NewReader(data), f.path)
	if err != nil {
		return err
	}
	// The dummy costs what the dearest entry costs, so that no user is
	// cheaper to probe than a missing one.
	cost := 0
	for _, u := range users {
		if c, err := bcrypt.Cost(u.hash); err == nil && c > cost {
			cost = c
		}
	}
	if cost == 0 {
		cost = bcrypt.DefaultCost
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, err := bcrypt.Cost(f.dummy); err != nil || c != cost {
		if f.dummy, err = dummyHash(cost); err != nil {
			return err
		}
	}
	f.users, f.stat, f.checked = users, st, f.now()
	f.ok = newOKCache()
	return nil
}

// dummyHash is the hash of a random password at cost: comparing against it
// takes as long as comparing against a real entry of that cost.
func dummyHash(cost int) ([]byte, error) {
	pw := make([]byte, 32)
	rand.Read(pw)
	h, err := bcrypt.GenerateFromPassword(pw, cost)
	if err != nil {
		return nil, fmt.Errorf("htpasswd: %w", err)
	}
	return h, nil
}

// Users is the number of entries loaded.
func (f *File) Users() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.users)
}

// Authenticate checks a user name and password. An unknown user costs the
// same bcrypt comparison as a known one, and the user name is compared
// against every entry in constant time, so neither timing nor the error
// tells which users exist.
func (f *File) Authenticate(_ context.Context, user, password string) error {
	f.reloadIfChanged()
	f.mu.Lock()
	hash, dummy, ok := f.lookup(user), f.dummy, f.ok
	f.mu.Unlock()
	key := ok.key(user, password)
	if hash != nil && ok.has(key, f.now()) {
		return nil
	}
	if hash == nil {
		bcrypt.CompareHashAndPassword(dummy, []byte(password))
		return ErrBadCredentials
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil {
		return ErrBadCredentials
	}
	ok.add(key, f.now())
	return nil
}

// lookup scans every entry without stopping at a match; f.mu is held.
func (f *File) lookup(user string) []byte {
	var found []byte
	for _, e := range f.users {
		if subtle.ConstantTimeCompare([]byte(e.user), []byte(user)) == 1 {
			found = e.hash
		}
	}
	return found
}

// reloadIfChanged re-reads the file when its size, modification time or
// identity changed, at most once per checkEvery. A file that no longer
// parses is logged and the loaded entries stay: a half-written edit must
// not lock everyone out.
func (f *File) reloadIfChanged() {
	f.mu.Lock()
	now := f.now()
	if now.Sub(f.checked) < checkEvery {
		f.mu.Unlock()
		return
	}
	f.checked = now
	prev := f.stat
	f.mu.Unlock()
	st, err := os.Stat(f.path)
	if err != nil {
		f.logger.Error("htpasswd file unreadable; keeping the users loaded before", "file", f.path, "err", err)
		return
	}
	if os.SameFile(prev, st) && st.Size() == prev.Size() && st.ModTime().Equal(prev.ModTime()) {
		return
	}
	if err := f.load(); err != nil {
		f.logger.Error("htpasswd file changed but is invalid; keeping the users loaded before", "file", f.path, "err", err)
		f.mu.Lock()
		f.stat = st // do not re-parse the same broken content every second
		f.mu.Unlock()
		return
	}
	f.logger.Info("htpasswd file reloaded", "file", f.path, "users", f.Users())
}

// okCache remembers credentials that passed bcrypt for a short while, so
// that a client sending Basic credentials on every request (docker does,
// regctl sends a 100 MiB layer as 100 PATCHes) does not pay a bcrypt
// comparison each time. Keys are salted SHA-256 of user and password, the
// salt is random per load, and the cache is dropped on every reload, so a
// removed user or a changed password stops working at the next reload.
type okCache struct {
	salt [32]byte
	mu   sync.Mutex
	seen map[[32]byte]time.Time
}

const (
	okTTL     = time.Minute
	okEntries = 1024
)

func newOKCache() *okCache {
	c := &okCache{seen: map[[32]byte]time.Time{}}
	rand.Read(c.salt[:])
	return c
}

func (c *okCache) key(user, password string) [32]byte {
	h := sha256.New()
	h.Write(c.salt[:])
	h.Write([]byte(user))
	h.Write([]byte{0})
	h.Write([]byte(password))
	var k [32]byte
	h.Sum(k[:0])
	return k
}

func (c *okCache) has(k [32]byte, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	exp, ok := c.seen[k]
	return ok && now.Before(exp)
}

func (c *okCache) add(k [32]byte, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.seen) >= okEntries {
		for key, exp := range c.seen {
			if !now.Before(exp) || len(c.seen) >= okEntries {
				delete(c.seen, key)
			}
		}
	}
	c.seen[k] = now.Add(okTTL)
}
