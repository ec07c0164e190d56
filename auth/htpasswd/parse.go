// Package htpasswd checks user names and passwords against an Apache-style
// htpasswd file that holds bcrypt hashes only, reloads the file when it
// changes, and writes entries for the `stratus htpasswd add` command.
package htpasswd

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// ErrFormat is wrapped by every error about the file's content.
var ErrFormat = errors.New("htpasswd")

// maxLine bounds one line; a bcrypt entry is the user name plus 60 bytes.
const maxLine = 4096

// entry is one user of the file.
type entry struct {
	user string
	hash []byte
}

// parse reads the file's entries. Blank lines and lines starting with '#'
// are skipped. Every other line must be "user:bcrypt-hash"; anything else
// (MD5 "$apr1$", SHA1 "{SHA}", crypt, plain text) is refused with the file
// name and line, because accepting a weak hash silently would make the
// whole file as weak as its weakest line.
func parse(r io.Reader, file string) ([]entry, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 256), maxLine)
	var out []entry
	seen := map[string]int{}
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		e, err := parseLine(line)
		if err != nil {
			return nil, fmt.Errorf("%w: %s:%d: %w", ErrFormat, file, n, err)
		}
		if prev, dup := seen[e.user]; dup {
			return nil, fmt.Errorf("%w: %s:%d: user %q is already defined on line %d", ErrFormat, file, n, e.user, prev)
		}
		seen[e.user] = n
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("%w: %s: a line is longer than %d bytes", ErrFormat, file, maxLine)
		}
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return out, nil
}

// parseLine reads one "user:hash" line. The messages never quote the hash.
func parseLine(line string) (entry, error) {
	user, hash, ok := strings.Cut(line, ":")
	if !ok {
		return entry{}, errors.New(`want "user:bcrypt-hash"`)
	}
	if err := ValidUser(user); err != nil {
		return entry{}, err
	}
	if !isBcrypt(hash) {
		return entry{}, fmt.Errorf("user %q: the hash is %s, not bcrypt; only bcrypt ($2y$, $2b$, $2a$) is accepted: re-create it with `stratus htpasswd add` or `htpasswd -B`", user, hashKind(hash))
	}
	if _, err := bcrypt.Cost([]byte(hash)); err != nil {
		return entry{}, fmt.Errorf("user %q: malformed bcrypt hash: %w", user, err)
	}
	return entry{user: user, hash: []byte(hash)}, nil
}

// ValidUser checks a user name: not empty, no ':' (the field separator),
// no whitespace or control characters, at most 256 bytes.
func ValidUser(user string) error {
	switch {
	case user == "":
		return errors.New("empty user name")
	case len(user) > 256:
		return errors.New("user name longer than 256 bytes")
	case strings.ContainsAny(user, ":"):
		return fmt.Errorf("user name %q contains ':'", user)
	case strings.ContainsFunc(user, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		return fmt.Errorf("user name %q contains whitespace or control characters", user)
	}
	return nil
}

func isBcrypt(hash string) bool {
	for _, p := range []string{"$2y$", "$2b$", "$2a$"} {
		if strings.HasPrefix(hash, p) {
			return true
		}
	}
	return false
}

// hashKind names what a non-bcrypt hash looks like, for the error message.
func hashKind(hash string) string {
	switch {
	case strings.HasPrefix(hash, "$apr1$"):
		return "Apache MD5 ($apr1$)"
	case strings.HasPrefix(hash, "{SHA}"):
		return "SHA-1 ({SHA})"
	case strings.HasPrefix(hash, "$1$"):
		return "MD5-crypt ($1$)"
	case strings.HasPrefix(hash, "$5$"), strings.HasPrefix(hash, "$6$"):
		return "SHA-crypt"
	case hash == "":
		return "empty"
	}
	return "not a recognised hash (crypt or plain text?)"
}
