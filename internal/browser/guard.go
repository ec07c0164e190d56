package browser

import (
	"context"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// Attempt is a request the page tried to send to another host.
type Attempt struct {
	URL  string
	Kind string // the resource type ("Image", "Script", "Fetch", ...) or "WebSocket"
}

// Message is a console error, an uncaught exception or a browser log entry
// of level error (failed loads, CSP violations).
type Message struct {
	Source string // "console", "exception" or the log source ("network", "security", ...)
	Text   string
	URL    string
}

func (m Message) String() string {
	if m.URL == "" {
		return m.Source + ": " + m.Text
	}
	return m.Source + ": " + m.Text + " (" + m.URL + ")"
}

// Findings is what a page did that a test of a self-contained UI must not
// see: requests to other hosts and errors on the console.
type Findings struct {
	Blocked []Attempt
	Console []Message
}

// Empty reports whether nothing was found.
func (f Findings) Empty() bool { return len(f.Blocked) == 0 && len(f.Console) == 0 }

// recorder collects findings from the tab's event loop (which must not
// block) and from the request guard.
type recorder struct {
	mu sync.Mutex
	f  Findings
}

func (r *recorder) block(a Attempt) {
	r.mu.Lock()
	r.f.Blocked = append(r.f.Blocked, a)
	r.mu.Unlock()
}

func (r *recorder) console(m Message) {
	r.mu.Lock()
	r.f.Console = append(r.f.Console, m)
	r.mu.Unlock()
}

// drain returns what was recorded and forgets it.
func (r *recorder) drain() Findings {
	r.mu.Lock()
	defer r.mu.Unlock()
	f := r.f
	r.f = Findings{}
	return f
}

// listen is the tab's event listener (chromedp.WithListener): it runs on
// the goroutine that reads the tab's messages, so it only records.
// WebSockets are not paused by the Fetch domain; they are recorded here,
// and the host resolver rules keep them from resolving any name.
func (r *recorder) listen(ev any) {
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert {
			r.console(Message{Source: "console", Text: argsText(ev.Args), URL: frameURL(ev.StackTrace)})
		}
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		text := d.Text
		if d.Exception != nil {
			text += " " + d.Exception.Description
		}
		r.console(Message{Source: "exception", Text: text, URL: d.URL})
	case *log.EventEntryAdded:
		e := ev.Entry
		if e.Level == log.EntryLevelError || e.Source == log.EntrySourceSecurity {
			r.console(Message{Source: string(e.Source), Text: e.Text, URL: e.URL})
		}
	case *network.EventWebSocketCreated:
		if !allowed(ev.URL) {
			r.block(Attempt{URL: ev.URL, Kind: "WebSocket"})
		}
	}
}

func argsText(args []*runtime.RemoteObject) string {
	parts := make([]string, 0, len(args))
	for _, a := range args {
		switch {
		case len(a.Value) > 0:
			parts = append(parts, strings.Trim(string(a.Value), `"`))
		case a.Description != "":
			parts = append(parts, a.Description)
		default:
			parts = append(parts, string(a.Type))
		}
	}
	return strings.Join(parts, " ")
}

func frameURL(st *runtime.StackTrace) string {
	if st == nil || len(st.CallFrames) == 0 {
		return ""
	}
	return st.CallFrames[0].URL
}

// answerTimeout bounds one answer to a paused request.
const answerTimeout = 10 * time.Second

// guard pauses every request of the tab (Fetch.enable with a catch-all
// pattern), fails the ones to another host and continues the rest. It
// returns once interception is on, within timeout; the answering goroutine
// ends with ctx, the tab's context.
func guard(ctx context.Context, rec *recorder, timeout time.Duration) error {
	paused := chromedp.Events(ctx, fetch.RequestPaused)
	enableCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := chromedp.Do(enableCtx, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, fetch.Enable, fetch.EnableParams{
			Patterns: []*fetch.RequestPattern{{URLPattern: "*"}},
		})
		return err
	}))
	if err != nil {
		return err
	}
	go func() {
		for ev, err := range paused {
			if err != nil {
				return
			}
			answer(ctx, rec, ev)
		}
	}()
	return nil
}

// answer continues or fails one paused request. Its error is not reported:
// it fails only when the tab is gone or the request was cancelled, and a
// test then fails on its own action.
func answer(ctx context.Context, rec *recorder, ev fetch.EventRequestPaused) {
	ctx, cancel := context.WithTimeout(ctx, answerTimeout)
	defer cancel()
	u := ""
	if ev.Request != nil {
		u = ev.Request.URL
	}
	if allowed(u) {
		_, _ = chromedp.Call(ctx, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: ev.RequestID})
		return
	}
	// Recorded before the answer, so the attempt is known by the time the
	// page can observe its failure.
	rec.block(Attempt{URL: u, Kind: string(ev.ResourceType)})
	_, _ = chromedp.Call(ctx, fetch.FailRequest, fetch.FailRequestParams{
		RequestID:   ev.RequestID,
		ErrorReason: network.ErrorReasonBlockedByClient,
	})
}

// allowed reports whether a request to rawURL stays on this machine: an
// http(s) or ws(s) URL whose host is 127.0.0.1, localhost or [::1], or a
// URL that names no host at all (data:, blob:, about:). Anything else,
// unparseable URLs included, is blocked.
func allowed(rawURL string) bool {
	u, err := url.Parse(rawURL)
	if err != nil {
		return false
	}
	switch strings.ToLower(u.Scheme) {
	case "data", "about":
		return true
	case "blob":
		// blob:http://127.0.0.1:8080/uuid names its origin inside.
		return allowed(u.Opaque)
	case "http", "https", "ws", "wss":
		switch strings.ToLower(u.Hostname()) {
		case "127.0.0.1", "localhost", "::1":
			return true
		}
	}
	return false
}
