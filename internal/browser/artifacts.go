package browser

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// ArtifactsEnv names the environment variable that sets the artifact
// folder (CI uploads it); without it, screenshots go to
// integration/artifacts/ui in the module, which git ignores. It is not a
// STRATUS_ name: `stratus serve` reads every STRATUS_ variable as a
// configuration key and refuses unknown ones, and tests start it with
// their own environment.
const ArtifactsEnv = "TEST_ARTIFACTS"

// screenshotTimeout bounds one capture: a long page is one large PNG.
const screenshotTimeout = 30 * time.Second

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// ArtifactsDir is the folder of tb's screenshots: one subfolder per test
// under $TEST_ARTIFACTS, or under integration/artifacts/ui of the
// module that holds the working directory (the working directory itself
// outside a module).
func ArtifactsDir(tb testing.TB) string {
	root := os.Getenv(ArtifactsEnv)
	if root == "" {
		root = filepath.Join(moduleRoot(), "integration", "artifacts", "ui")
	}
	return filepath.Join(root, unsafeName.ReplaceAllString(tb.Name(), "_"))
}

func moduleRoot() string {
	wd, err := os.Getwd()
	if err != nil {
		return "."
	}
	for dir := wd; ; {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return wd
		}
		dir = parent
	}
}

// Screenshot saves a full-page PNG of the tab as NN-name.png in the
// artifact folder (NN counts the test's screenshots, so the folder reads
// in the order of the steps) and returns its path. A failure fails the
// test: a screenshot is one of the things the test must produce.
func (b *Browser) Screenshot(name string) string {
	b.tb.Helper()
	p, err := b.save(name)
	if err != nil {
		b.tb.Fatalf("screenshot %q: %v", name, err)
	}
	return p
}

func (b *Browser) save(name string) (string, error) {
	if err := os.MkdirAll(b.opts.Artifacts, 0o755); err != nil {
		return "", fmt.Errorf("making the artifact folder: %w", err)
	}
	if b.shots == 0 {
		// Screenshots of an earlier, longer run would read as this run's
		// steps; only files of this naming scheme are removed.
		old, _ := filepath.Glob(filepath.Join(b.opts.Artifacts, "[0-9][0-9]-*.png"))
		for _, p := range old {
			if err := os.Remove(p); err != nil {
				return "", fmt.Errorf("clearing an earlier screenshot: %w", err)
			}
		}
	}
	ctx, cancel := context.WithTimeout(b.ctx, screenshotTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		return "", fmt.Errorf("capturing: %w", err)
	}
	if len(png) == 0 {
		return "", errors.New("capturing: the browser returned no image")
	}
	b.shots++
	p := filepath.Join(b.opts.Artifacts, fmt.Sprintf("%02d-%s.png", b.shots, unsafeName.ReplaceAllString(name, "_")))
	if err := os.WriteFile(p, png, 0o644); err != nil {
		return "", fmt.Errorf("writing: %w", err)
	}
	return p, nil
}
