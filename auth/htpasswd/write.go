package htpasswd

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// Set writes or replaces the entry of user in the file at path with a
// bcrypt hash of password at cost, creating the file if needed. The new
// content goes to a temporary file in the same directory (mode 0600) that
// is then renamed over the old one, so a reader (a running registry) sees
// the old file or the new one, never half of it. Other lines, comments
// included, are kept as they are.
func Set(path, user, password string, cost int) error {
	if err := ValidUser(user); err != nil {
		return fmt.Errorf("htpasswd: %w", err)
	}
	if password == "" {
		return errors.New("htpasswd: empty password")
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		return fmt.Errorf("htpasswd: %w", err)
	}
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("htpasswd: %w", err)
	}
	if len(old) > 0 {
		// Refuse to rewrite a file the registry would refuse to load.
		if _, err := parse(bytes.NewReader(old), path); err != nil {
			return err
		}
	}
	return writeAtomic(path, replaceEntry(old, user, string(hash)))
}

// replaceEntry returns content with user's line replaced (or appended).
func replaceEntry(content []byte, user, hash string) []byte {
	var out bytes.Buffer
	replaced := false
	sc := bufio.NewScanner(bytes.NewReader(content))
	sc.Buffer(make([]byte, 0, 256), maxLine)
	for sc.Scan() {
		line := sc.Text()
		if u, _, ok := strings.Cut(strings.TrimSpace(line), ":"); ok && u == user && !replaced {
			line = user + ":" + hash
			replaced = true
		}
		out.WriteString(line + "\n")
	}
	if !replaced {
		out.WriteString(user + ":" + hash + "\n")
	}
	return out.Bytes()
}

func writeAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("htpasswd: %w", err)
	}
	done := false
	defer func() {
		if !done {
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("htpasswd: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("htpasswd: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("htpasswd: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("htpasswd: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("htpasswd: %w", err)
	}
	done = true
	return nil
}
