package htpasswd

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

func hashOf(t testing.TB, password string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestAuthenticate(t *testing.T) {
	path := writeFile(t, "# team\nalice:"+hashOf(t, "wonderland")+"\n\nbob:"+hashOf(t, "builder")+"\n")
	f, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, user, password string
		ok                   bool
	}{
		{"right password", "alice", "wonderland", true},
		{"right password again (cached)", "alice", "wonderland", true},
		{"second user", "bob", "builder", true},
		{"wrong password", "alice", "builder", false},
		{"empty password", "alice", "", false},
		{"unknown user", "mallory", "wonderland", false},
		{"user name differs in case", "Alice", "wonderland", false},
		{"user name prefix", "ali", "wonderland", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := f.Authenticate(context.Background(), tc.user, tc.password)
			if tc.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tc.ok && !errors.Is(err, ErrBadCredentials) {
				t.Fatalf("err = %v, want ErrBadCredentials", err)
			}
		})
	}
}

func TestOpenRefusesWhatIsNotBcrypt(t *testing.T) {
	good := "alice:" + hashOf(t, "x") + "\n"
	for _, tc := range []struct {
		name, line string
		want       []string
	}{
		{"apache md5", "bob:$apr1$abcdefgh$0123456789abcdefghijkl", []string{":2:", "Apache MD5", `"bob"`}},
		{"sha1", "bob:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=", []string{":2:", "SHA-1"}},
		{"md5-crypt", "bob:$1$salt$hash", []string{":2:", "MD5-crypt"}},
		{"plain text", "bob:hunter2", []string{":2:", "not bcrypt"}},
		{"no separator", "bob", []string{":2:", "user:bcrypt-hash"}},
		{"empty user", ":" + hashOf(t, "x"), []string{":2:", "empty user name"}},
		{"truncated bcrypt", "bob:$2y$10$short", []string{":2:", "malformed bcrypt"}},
		{"duplicate user", "alice:" + hashOf(t, "y"), []string{":2:", "already defined on line 1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, good+tc.line+"\n")
			_, err := Open(path, nil)
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("err = %v, want ErrFormat", err)
			}
			for _, w := range append(tc.want, path) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(tc.line, "$") && strings.Contains(err.Error(), tc.line[strings.Index(tc.line, ":")+1:]) {
				t.Errorf("error %q quotes the hash", err)
			}
		})
	}
	if _, err := Open(filepath.Join(t.TempDir(), "missing"), nil); err == nil {
		t.Error("a missing file opened")
	}
}

// newClockedFile opens path with a clock the test moves.
func newClockedFile(t *testing.T, path string) (*File, *time.Time) {
	t.Helper()
	f, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	f.now = func() time.Time { return now }
	return f, &now
}

func TestReloadAfterAnEdit(t *testing.T) {
	path := writeFile(t, "alice:"+hashOf(t, "old")+"\n")
	f, now := newClockedFile(t, path)
	ctx := context.Background()
	if err := f.Authenticate(ctx, "alice", "old"); err != nil {
		t.Fatal(err)
	}
	// The edit replaces the file (as Set and Kubernetes do), with a new
	// password for alice and a new user.
	if err := Set(path, "alice", "new", bcrypt.MinCost); err != nil {
		t.Fatal(err)
	}
	if err := Set(path, "carol", "c", bcrypt.MinCost); err != nil {
		t.Fatal(err)
	}
	if err := f.Authenticate(ctx, "carol", "c"); err == nil {
		t.Error("the file was re-read before a second passed")
	}
	*now = now.Add(checkEvery)
	for user, pw := range map[string]string{"alice": "new", "carol": "c"} {
		if err := f.Authenticate(ctx, user, pw); err != nil {
			t.Errorf("%s after reload: %v", user, err)
		}
	}
	if err := f.Authenticate(ctx, "alice", "old"); err == nil {
		t.Error("the old password (cached before the reload) still works")
	}

	// A broken edit keeps the users loaded before.
	if err := os.WriteFile(path+".new", []byte("alice:$apr1$x$y\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}
	*now = now.Add(checkEvery)
	if err := f.Authenticate(ctx, "alice", "new"); err != nil {
		t.Errorf("a broken edit locked alice out: %v", err)
	}
}

func TestSet(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "htpasswd")
	if err := os.WriteFile(path, []byte("# keep me\nbob:"+hashOf(t, "b")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Set(path, "alice", "a", bcrypt.MinCost); err != nil {
		t.Fatal(err)
	}
	if err := Set(path, "bob", "b2", bcrypt.MinCost+1); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 3 || lines[0] != "# keep me" || !strings.HasPrefix(lines[1], "bob:$2a$05$") || !strings.HasPrefix(lines[2], "alice:$2a$04$") {
		t.Fatalf("file:\n%s", data)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
	f, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if f.Authenticate(context.Background(), "bob", "b2") != nil || f.Authenticate(context.Background(), "bob", "b") == nil {
		t.Error("bob's password was not replaced")
	}
	for _, tc := range []struct{ user, password string }{{"a:b", "x"}, {"", "x"}, {"a b", "x"}, {"alice", ""}} {
		if err := Set(path, tc.user, tc.password, bcrypt.MinCost); err == nil {
			t.Errorf("Set(%q, %q) accepted", tc.user, tc.password)
		}
	}
	broken := writeFile(t, "x:{SHA}abc\n")
	if err := Set(broken, "alice", "a", bcrypt.MinCost); !errors.Is(err, ErrFormat) {
		t.Errorf("Set rewrote a file the registry refuses: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add("alice:" + hashOf(f, "x") + "\n")
	f.Add("# comment\n\nbob:$apr1$a$b\n")
	f.Add("a:b:c\n:x\n")
	f.Add("u:$2y$04$" + strings.Repeat("a", 53))
	f.Fuzz(func(t *testing.T, content string) {
		entries, err := parse(bytes.NewReader([]byte(content)), "fuzz")
		if err != nil {
			if !errors.Is(err, ErrFormat) && !strings.Contains(err.Error(), "fuzz") {
				t.Fatalf("error without the file name: %v", err)
			}
			return
		}
		for _, e := range entries {
			if ValidUser(e.user) != nil || !isBcrypt(string(e.hash)) {
				t.Fatalf("accepted entry %q", e.user)
			}
		}
	})
}
