// Package browser runs Debian's headless Chromium for tests, driven
// through github.com/chromedp/chromedp, on a page that may reach nothing
// but this machine:
//
//   - the host resolver maps every name but 127.0.0.1 to "not found", so
//     no request can leave the machine, whatever asks for it;
//   - the tab pauses every request (the CDP Fetch domain), fails those to
//     a host other than 127.0.0.1, localhost or [::1] and records them;
//   - console errors, uncaught exceptions and browser log errors (failed
//     loads, CSP violations) are recorded too.
//
// Whatever was recorded and not taken with Drain fails the test at its
// end, so a page that tries to load a CDN font or breaks its own CSP
// cannot pass. Screenshots go to an artifact folder (ArtifactsEnv, else
// integration/artifacts/ui in the module).
package browser

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/stratus-registry/stratus/internal/launch"
)

// InstallHint is how a Debian machine gets the browser (integration/test.sh
// runs it).
const InstallHint = "apt-get install -y --no-install-recommends chromium chromium-driver"

// Defaults of Options.
const (
	DefaultStartTimeout   = time.Minute
	DefaultSessionTimeout = 5 * time.Minute
	DefaultActionTimeout  = 30 * time.Second
	DefaultWidth          = 1280
	DefaultHeight         = 900
)

// Options configure Start; the zero value is ready to use.
type Options struct {
	// ExecPath is the browser binary; empty finds "chromium" (see Find).
	ExecPath string
	// StartTimeout bounds the browser's start, SessionTimeout its whole
	// life, ActionTimeout each Do or Run.
	StartTimeout   time.Duration
	SessionTimeout time.Duration
	ActionTimeout  time.Duration
	// Width and Height are the window size; screenshots cover the full
	// page whatever its height.
	Width, Height int
	// Artifacts is the folder for screenshots; empty is ArtifactsDir(tb).
	Artifacts string
}

func (o Options) withDefaults(tb testing.TB) Options {
	if o.StartTimeout <= 0 {
		o.StartTimeout = DefaultStartTimeout
	}
	if o.SessionTimeout <= 0 {
		o.SessionTimeout = DefaultSessionTimeout
	}
	if o.ActionTimeout <= 0 {
		o.ActionTimeout = DefaultActionTimeout
	}
	if o.Width <= 0 {
		o.Width = DefaultWidth
	}
	if o.Height <= 0 {
		o.Height = DefaultHeight
	}
	if o.Artifacts == "" {
		o.Artifacts = ArtifactsDir(tb)
	}
	return o
}

// Find returns the path of Debian's chromium, or a *launch.MissingError
// naming InstallHint.
func Find() (string, error) { return launch.Find("chromium", InstallHint) }

// Browser is one headless Chromium with one tab.
type Browser struct {
	tb     testing.TB
	ctx    context.Context // the tab's chromedp context
	opts   Options
	rec    *recorder
	output *launch.Log
	shots  int
}

// Start launches the browser for tb and stops it at the end of the test.
// A missing chromium skips the test, or fails it under $CI. At cleanup,
// every finding not taken with Drain fails the test.
func Start(tb testing.TB, opts Options) *Browser {
	tb.Helper()
	opts = opts.withDefaults(tb)
	if opts.ExecPath == "" {
		p, err := Find()
		launch.Require(tb, err)
		opts.ExecPath = p
	}
	b := &Browser{tb: tb, opts: opts, rec: &recorder{}, output: launch.NewLog(0)}
	// Registered first so that it runs last, after the browser is gone.
	tb.Cleanup(func() {
		if f := b.rec.drain(); !f.Empty() {
			tb.Errorf("the browser saw what a self-contained page must not cause:\n%s", f)
		}
	})

	session, cancelSession := context.WithTimeout(context.Background(), opts.SessionTimeout)
	alloc, cancelAlloc := chromedp.NewExecAllocator(session, allocatorOptions(tb, opts, b.output)...)
	tab, cancelTab := chromedp.NewContext(alloc, chromedp.WithListener(b.rec.listen))
	tb.Cleanup(func() {
		cancelTab()
		cancelAlloc() // waits for the process to exit
		cancelSession()
	})
	b.ctx = tab
	// The first action starts the browser with the session's lifetime (a
	// timeout on its context would end the browser with it), so the start
	// is bounded from outside; then the guard is on before the tab loads
	// anything.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(tab) }()
	select {
	case err := <-started:
		if err != nil {
			tb.Fatalf("starting %s: %v\n%s", opts.ExecPath, err, b.output.Tail(40))
		}
	case <-time.After(opts.StartTimeout):
		cancelSession()
		<-started
		tb.Fatalf("%s did not start within %s\n%s", opts.ExecPath, opts.StartTimeout, b.output.Tail(40))
	}
	if err := guard(tab, b.rec, opts.ActionTimeout); err != nil {
		tb.Fatalf("enabling request interception: %v", err)
	}
	return b
}

// allocatorOptions are Chromium's flags: headless, quiet (no first-run,
// sync, component or metrics traffic), a fresh profile per test, and a
// resolver that only knows the loopback address.
func allocatorOptions(tb testing.TB, opts Options, output *launch.Log) []chromedp.ExecAllocatorOption {
	return []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(opts.ExecPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(tb.TempDir()),
		chromedp.WindowSize(opts.Width, opts.Height),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("mute-audio", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("host-resolver-rules", HostResolverRules),
		chromedp.CombinedOutput(output),
	}
}

// HostResolverRules make every host name but the loopback ones resolve to
// nothing: the second wall behind the request guard, for what the Fetch
// domain does not pause (WebSockets, other targets, the browser itself).
// localhost is excluded because the guard allows it.
const HostResolverRules = "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost"

// Context is the tab's chromedp context, for actions the helpers do not
// cover; bound it with context.WithTimeout, never the context itself.
func (b *Browser) Context() context.Context { return b.ctx }

func (b *Browser) bounded(f func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(b.ctx, b.opts.ActionTimeout)
	defer cancel()
	return f(ctx)
}

// Do runs the actions of one step within the action timeout. On error it
// saves a screenshot of the page as it is and fails the test, naming step.
func (b *Browser) Do(step string, actions ...chromedp.Action[chromedp.Void]) {
	b.tb.Helper()
	err := b.bounded(func(ctx context.Context) error { return chromedp.Do(ctx, actions...) })
	if err != nil {
		b.fail(step, err)
	}
}

// Run runs one action that returns a value, as Browser.Do does.
func Run[T any](b *Browser, step string, a chromedp.Action[T]) T {
	b.tb.Helper()
	var v T
	err := b.bounded(func(ctx context.Context) error {
		var err error
		v, err = chromedp.Run(ctx, a)
		return err
	})
	if err != nil {
		b.fail(step, err)
	}
	return v
}

func (b *Browser) fail(step string, err error) {
	b.tb.Helper()
	where := "unknown"
	if loc, lerr := b.location(); lerr == nil {
		where = loc
	}
	shot := ""
	if p, serr := b.save("FAILED-" + step); serr == nil {
		shot = "; screenshot " + p
	}
	if errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("%w (action timeout %s)", err, b.opts.ActionTimeout)
	}
	b.tb.Fatalf("browser step %q at %s: %v%s", step, where, err, shot)
}

func (b *Browser) location() (string, error) {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Location())
}

// Drain returns what was recorded so far and forgets it, for a test that
// expects findings (the guard's own tests).
func (b *Browser) Drain() Findings { return b.rec.drain() }

func (f Findings) String() string {
	var sb strings.Builder
	for _, a := range f.Blocked {
		fmt.Fprintf(&sb, "  blocked %s request to %s\n", a.Kind, a.URL)
	}
	for _, m := range f.Console {
		fmt.Fprintf(&sb, "  console %s\n", m)
	}
	return sb.String()
}
