package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/stratus-registry/stratus/internal/browser"
)

// UpdateScreenshotsEnv, set to 1, makes TestUIInBrowser copy its
// repository and image screenshots to docs/screenshots for the README.
// (Not a STRATUS_ name: those are configuration keys of the server the
// test starts, which refuses unknown ones.)
const UpdateScreenshotsEnv = "UPDATE_SCREENSHOTS"

// TestUIInBrowser drives the web UI of a real `stratus serve` in headless
// Chromium, with every non-loopback request blocked and failing the test:
// anonymous browsing, login, the repository, image, referrers, index,
// storage and status pages, a tag deleted through the confirmation, and a
// reader refused the delete even with a valid CSRF token. Every step is a
// screenshot in the artifact folder (internal/browser.ArtifactsDir).
func TestUIInBrowser(t *testing.T) {
	s := startUIServer(t)
	content := seedUIContent(t, s.srv)
	s.gcPass(t)

	b := browser.Start(t, browser.Options{})
	u := &uiDriver{t: t, b: b, ui: s, content: content}

	u.anonymousSeesPublic()
	u.aliceLogsIn()
	u.browseToReferrers()
	u.indexPlatforms()
	u.storageChart()
	u.statusPage()
	u.aliceDeletesTag()
	u.bobMayNotDelete()
	// What remains recorded (blocked requests, console errors, CSP
	// violations) fails the test in browser.Start's cleanup.
}

// uiDriver is the browser flow: the steps of TestUIInBrowser and the
// helpers they share.
type uiDriver struct {
	t       *testing.T
	b       *browser.Browser
	ui      *uiSetup
	content uiContent
}

func (u *uiDriver) url(path string) string { return u.ui.srv.URL() + path }

// anonymousSeesPublic: a visitor who is not signed in sees only the
// public repository, and a browser asking for / lands on the UI.
func (u *uiDriver) anonymousSeesPublic() {
	t, b := u.t, u.b
	// A browser asking for / lands on the UI.
	b.Do("open /", chromedp.Navigate(u.url("/")), chromedp.WaitVisible(chromedp.CSS("nav#nav")))
	if loc := browser.Run(b, "location", chromedp.Location()); loc != u.url("/ui/") {
		t.Errorf("/ in a browser ended at %s, want %s", loc, u.url("/ui/"))
	}
	u.wantTexts("a.repo-link", "public/hello")
	u.mustExist("a#nav-login")
	b.Screenshot("anonymous-repositories")

	// A repository the visitor may not pull is not shown by its URL either.
	b.Do("open acme/app anonymously", chromedp.Navigate(u.url("/ui/r/acme/app/")), chromedp.WaitVisible(chromedp.CSS("nav#nav")))
	if n := u.count("tr.tag-row"); n != 0 {
		t.Errorf("an anonymous visitor sees %d tags of acme/app", n)
	}
	status := u.documentStatus()
	if status < 400 || status > 499 {
		t.Errorf("anonymous acme/app page answered %d, want a 4xx", status)
	}
	b.Screenshot("anonymous-hidden-repository")
	u.drainStatusEntry(status, u.url("/ui/r/acme/app/"))
}

// aliceLogsIn: alice signs in through the form, sees every repository she
// may pull and narrows the list with the prefix search.
func (u *uiDriver) aliceLogsIn() {
	b := u.b
	u.login("alice")
	u.wantTexts("a.repo-link", "acme/app", "acme/multi", "public/hello")
	b.Screenshot("alice-repositories")
	b.Do("search acme/",
		chromedp.SetValue(chromedp.CSS("form#repo-search input[name=q]"), "acme/"),
		u.loads(chromedp.Submit(chromedp.CSS("form#repo-search"))))
	u.wantTexts("a.repo-link", "acme/app", "acme/multi")
	b.Screenshot("search")
}

// browseToReferrers: repository list to the repository, its tag, the
// image (layers bar, config, escaped hostile values) and its referrers.
func (u *uiDriver) browseToReferrers() {
	t, b := u.t, u.b
	b.Do("open acme/app", u.loads(chromedp.Click(u.linkWithText("a.repo-link", "acme/app"))))
	u.wantTexts("tr.tag-row a.tag-link", "v0", "v1")
	if n := u.count("tr.tag-row code.pull-cmd"); n != 6 {
		t.Errorf("%d pull commands for two tags, want three each (docker, podman, crane)", n)
	}
	if n := u.count("tr.tag-row a.delete-link"); n != 2 {
		t.Errorf("alice sees %d delete links, want one per tag", n)
	}
	u.keep(b.Screenshot("repository"), "repository.png")

	b.Do("open tag v1", u.loads(chromedp.Click(u.linkWithText("a.tag-link", "v1"))))
	b.Do("image page", chromedp.WaitVisible(chromedp.CSS("section#layers svg#layer-bar")))
	if n := u.count("svg#layer-bar rect.layer"); n != u.content.appLayers {
		t.Errorf("layer bar has %d rects, the image %d layers", n, u.content.appLayers)
	}
	config := browser.Run(b, "config", chromedp.Text(chromedp.CSS("section#config")))
	for _, want := range []string{"linux/amd64", "/usr/bin/acme-app", "--serve", "ACME_MODE", "acme app", hostileLabel} {
		if !strings.Contains(config, want) {
			t.Errorf("section#config lacks %q:\n%s", want, config)
		}
	}
	if strings.Contains(config, "production") {
		t.Errorf("section#config shows env values; it should list the keys only:\n%s", config)
	}
	if pwned := browser.Run(b, "window.__pwned", chromedp.Evaluate[string](`typeof window.__pwned`)); pwned != "undefined" {
		t.Errorf("the hostile label ran as script: typeof window.__pwned = %s", pwned)
	}
	annotations := browser.Run(b, "annotations", chromedp.Text(chromedp.CSS("section#annotations")))
	if !strings.Contains(annotations, hostileAnnotation) || !strings.Contains(annotations, "the acme application") {
		t.Errorf("section#annotations does not show the annotations as text:\n%s", annotations)
	}
	if n := u.count("section#annotations img, section#config script"); n != 0 {
		t.Errorf("a hostile value became %d element(s)", n)
	}
	u.keep(b.Screenshot("image"), "image.png")

	b.Do("open referrers", u.loads(chromedp.Click(chromedp.CSS("a#referrers-link"))))
	b.Do("referrers page", chromedp.WaitVisible(chromedp.CSS("tr.referrer-row")))
	kinds := browser.Run(b, "kinds", chromedp.Evaluate[[]string](
		`Array.from(document.querySelectorAll("tr.referrer-row")).map(r => r.dataset.kind).sort()`))
	if !slices.Equal(kinds, []string{"sbom", "scan", "signature"}) {
		t.Errorf("referrer kinds %q, want sbom, scan, signature", kinds)
	}
	summary := browser.Run(b, "scan summary", chromedp.Text(chromedp.CSS(`tr.referrer-row[data-kind="scan"] .scan-summary`)))
	if counts := numbersIn(summary); !slices.Equal(counts, []int{1, 1, 2}) {
		t.Errorf("scan summary %q: counts %v, want the report's 2 errors, 1 warning and 1 note by severity", summary, counts)
	}
	b.Screenshot("referrers")
}

// indexPlatforms: the tag of an index redirects to the index page, whose
// platforms link to their images.
func (u *uiDriver) indexPlatforms() {
	b := u.b
	b.Do("open acme/multi:latest", chromedp.Navigate(u.url("/ui/r/acme/multi/-/tag/latest")),
		chromedp.WaitVisible(chromedp.CSS("section#platforms")))
	u.wantTexts("section#platforms a.platform-link", "linux/amd64", "linux/arm64")
	b.Screenshot("index")
	b.Do("open linux/arm64", u.loads(chromedp.Click(u.linkWithText("a.platform-link", "linux/arm64"))),
		chromedp.WaitVisible(chromedp.CSS("section#layers svg#layer-bar")))
	b.Screenshot("index-platform-image")
}

// storageChart: the storage chart from the GC pass's report is drawn, one
// element with a non-zero box per repository.
func (u *uiDriver) storageChart() {
	t, b := u.t, u.b
	b.Do("open storage", u.loads(chromedp.Click(chromedp.CSS("a#nav-storage"))))
	b.Do("storage page", chromedp.WaitVisible(chromedp.CSS("svg#storage-chart")), chromedp.WaitVisible(chromedp.CSS("table#storage-table")))
	var bars []struct {
		Repo string  `json:"repo"`
		W    float64 `json:"w"`
		H    float64 `json:"h"`
	}
	raw := browser.Run(b, "bars", chromedp.Evaluate[[]byte](`Array.from(document.querySelectorAll("svg#storage-chart [data-repo]")).map(e => {
		const r = e.getBoundingClientRect();
		return {repo: e.dataset.repo, w: r.width, h: r.height};
	})`))
	if err := json.Unmarshal(raw, &bars); err != nil {
		t.Fatalf("bars: %v", err)
	}
	seen := map[string]bool{}
	for _, bar := range bars {
		seen[bar.Repo] = true
		if bar.W <= 0 || bar.H <= 0 {
			t.Errorf("the bar of %s is not drawn: %.1fx%.1f px", bar.Repo, bar.W, bar.H)
		}
	}
	for _, repo := range []string{"acme/app", "acme/multi", "public/hello"} {
		if !seen[repo] {
			t.Errorf("no data-repo element for %s in the chart (%v)", repo, bars)
		}
	}
	b.Screenshot("storage")
}

// statusPage: the status page has its GC, health and webhook sections.
func (u *uiDriver) statusPage() {
	b := u.b
	b.Do("open status", u.loads(chromedp.Click(chromedp.CSS("a#nav-status"))),
		chromedp.WaitVisible(chromedp.CSS("section#gc-report")))
	u.mustExist("section#health")
	u.mustExist("section#webhooks")
	b.Screenshot("status")
}

// aliceDeletesTag: alice deletes v0 through the confirmation page; it is
// gone from the page and from the registry API.
func (u *uiDriver) aliceDeletesTag() {
	t, b := u.t, u.b
	b.Do("open acme/app", chromedp.Navigate(u.url("/ui/r/acme/app/")), chromedp.WaitVisible(chromedp.CSS("tr.tag-row")))
	b.Do("delete v0", u.loads(chromedp.Click(chromedp.JSPath(
		`Array.from(document.querySelectorAll("tr.tag-row")).find(r => r.querySelector("a.tag-link").textContent.trim() === "v0").querySelector("a.delete-link")`))))
	b.Do("confirmation", chromedp.WaitVisible(chromedp.CSS("form#confirm-delete")))
	b.Screenshot("delete-confirmation")
	b.Do("confirm", u.loads(chromedp.Click(chromedp.CSS("form#confirm-delete button[type=submit]"))),
		chromedp.WaitVisible(chromedp.CSS(".flash.flash-ok")))
	u.wantTexts("tr.tag-row a.tag-link", "v1")
	b.Screenshot("deleted")
	if tags := apiTags(t, u.ui.srv, "acme/app"); !slices.Equal(tags, []string{"v1"}) {
		t.Errorf("tags/list after the delete: %v, want [v1]", tags)
	}
}

// bobMayNotDelete: bob, a reader, sees no delete link, and a delete he
// forges with his own valid CSRF token is refused and changes nothing.
func (u *uiDriver) bobMayNotDelete() {
	t, b := u.t, u.b
	b.Do("log out", u.loads(chromedp.Submit(chromedp.CSS("form#logout"))), chromedp.WaitVisible(chromedp.CSS("a#nav-login")))
	u.login("bob")
	b.Do("open acme/app", chromedp.Navigate(u.url("/ui/r/acme/app/")), chromedp.WaitVisible(chromedp.CSS("tr.tag-row")))
	u.wantTexts("tr.tag-row a.tag-link", "v1")
	if n := u.count("a.delete-link"); n != 0 {
		t.Errorf("bob sees %d delete links", n)
	}
	b.Screenshot("bob-repository")

	// Bob's own, valid token: the refusal must come from the policy,
	// not from CSRF.
	csrf := browser.Run(b, "bob's csrf", chromedp.Evaluate[string](`document.querySelector("form#logout input[name=csrf]").value`))
	if csrf == "" {
		t.Fatal("form#logout carries no csrf token")
	}
	forge := fmt.Sprintf(`(() => {
		const f = document.createElement("form");
		f.method = "POST";
		f.action = "/ui/r/acme/app/-/delete";
		for (const [k, v] of [["tag", "v1"], ["csrf", %s]]) {
			const i = document.createElement("input");
			i.type = "hidden"; i.name = k; i.value = v;
			f.appendChild(i);
		}
		document.body.appendChild(f);
		f.submit();
	})()`, strconv.Quote(csrf))
	b.Do("forged delete", u.loads(chromedp.Evaluate[chromedp.Void](forge)))
	// Refused either outright (403) or, as the contract has it for the
	// delete form, back on the repository page with an error flash; never
	// with a success flash.
	status := u.documentStatus()
	flashErr, flashOK := u.count(".flash.flash-error"), u.count(".flash.flash-ok")
	if flashOK != 0 || (status != http.StatusForbidden && flashErr == 0) {
		t.Errorf("bob's delete: status %d, %d error and %d success flashes; want a refusal", status, flashErr, flashOK)
	}
	b.Screenshot("bob-delete-refused")
	if status == http.StatusForbidden {
		u.drainStatusEntry(status, u.url("/ui/r/acme/app/-/delete"))
	}
	if tags := apiTags(t, u.ui.srv, "acme/app"); !slices.Equal(tags, []string{"v1"}) {
		t.Errorf("tags/list after bob's refused delete: %v, want [v1]", tags)
	}
}

// loads runs trigger and waits for the page it navigates to.
func (u *uiDriver) loads(trigger chromedp.Action[chromedp.Void]) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.WaitEvent(page.LoadEventFired, nil, trigger)(ctx, t)
		return chromedp.Void{}, err
	}
}

func (u *uiDriver) login(user string) {
	u.t.Helper()
	u.b.Do("open login", chromedp.Navigate(u.url("/ui/")), u.loads(chromedp.Click(chromedp.CSS("a#nav-login"))),
		chromedp.WaitVisible(chromedp.CSS("form#login")))
	u.b.Do("fill login",
		chromedp.SendKeys(chromedp.CSS("form#login input[name=username]"), user),
		chromedp.SendKeys(chromedp.CSS("form#login input[name=password]"), authUsers[user]))
	u.b.Screenshot("login-" + user)
	u.b.Do("submit login", u.loads(chromedp.Click(chromedp.CSS("form#login button[type=submit]"))),
		chromedp.WaitVisible(chromedp.CSS("span#nav-user")))
	if got := strings.TrimSpace(browser.Run(u.b, "nav user", chromedp.Text(chromedp.CSS("span#nav-user")))); got != user {
		u.t.Errorf("signed in as %q, want %q", got, user)
	}
}

// texts are the trimmed text contents of the elements matching css.
func (u *uiDriver) texts(css string) []string {
	u.t.Helper()
	return browser.Run(u.b, "texts of "+css, chromedp.Evaluate[[]string](
		`Array.from(document.querySelectorAll(`+strconv.Quote(css)+`)).map(e => e.textContent.trim())`))
}

func (u *uiDriver) wantTexts(css string, want ...string) {
	u.t.Helper()
	got := u.texts(css)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		u.t.Errorf("%s: %q, want %q", css, got, want)
	}
}

func (u *uiDriver) count(css string) int {
	u.t.Helper()
	return browser.Run(u.b, "count "+css, chromedp.Evaluate[int](`document.querySelectorAll(`+strconv.Quote(css)+`).length`))
}

func (u *uiDriver) mustExist(css string) {
	u.t.Helper()
	if u.count(css) == 0 {
		u.t.Errorf("no %s on %s", css, browser.Run(u.b, "location", chromedp.Location()))
	}
}

// linkWithText selects the first element matching css whose text is text.
func (u *uiDriver) linkWithText(css, text string) chromedp.JSPath {
	return chromedp.JSPath(fmt.Sprintf(`Array.from(document.querySelectorAll(%s)).find(e => e.textContent.trim() === %s)`,
		strconv.Quote(css), strconv.Quote(text)))
}

// keep copies a screenshot to docs/screenshots/name when
// UpdateScreenshotsEnv is 1.
func (u *uiDriver) keep(shot, name string) {
	u.t.Helper()
	if os.Getenv(UpdateScreenshotsEnv) != "1" {
		return
	}
	png, err := os.ReadFile(shot)
	if err != nil {
		u.t.Fatal(err)
	}
	dst := filepath.Join("..", "docs", "screenshots", name)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		u.t.Fatal(err)
	}
	if err := os.WriteFile(dst, png, 0o644); err != nil {
		u.t.Fatal(err)
	}
	u.t.Logf("updated %s", dst)
}

// numbersIn returns the integers in s, sorted.
func numbersIn(s string) []int {
	var ns []int
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r < '0' || r > '9' }) {
		if n, err := strconv.Atoi(f); err == nil {
			ns = append(ns, n)
		}
	}
	slices.Sort(ns)
	return ns
}

// apiTags is GET /v2/<repo>/tags/list as alice.
func apiTags(t *testing.T, srv *server, repo string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL()+"/v2/"+(&url.URL{Path: repo}).EscapedPath()+"/tags/list", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("alice", authUsers["alice"])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET tags/list of %s: %s", repo, resp.Status)
	}
	var body struct {
		Tags []string `json:"tags"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	slices.Sort(body.Tags)
	return body.Tags
}

// documentStatus is the HTTP status of the page the tab shows.
func (u *uiDriver) documentStatus() int {
	u.t.Helper()
	return browser.Run(u.b, "document status", chromedp.Evaluate[int](`performance.getEntriesByType("navigation")[0].responseStatus`))
}

// drainStatusEntry takes the browser's console findings after a page that
// answered an expected 4xx: the browser logs that load as a failure, and
// any other finding is an error of the test.
func (u *uiDriver) drainStatusEntry(status int, pageURL string) {
	u.t.Helper()
	for _, m := range u.b.Drain().Console {
		if !strings.Contains(m.Text, strconv.Itoa(status)) || m.URL != pageURL {
			u.t.Errorf("console: %s", m)
		}
	}
}
