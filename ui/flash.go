package ui

import (
	"net/http"
	"strings"
)

const flashCookie = "stratus_ui_flash"

// flash is a one-time message shown on the page a POST redirects to.
type flash struct {
	OK      bool
	Message string
}

// maxFlash bounds a flash message (they quote registry error messages).
const maxFlash = 500

// setFlash stores the message in a signed cookie: only this server can
// put a message on a page.
func (u *UI) setFlash(w http.ResponseWriter, r *http.Request, f flash) {
	msg := f.Message
	if len(msg) > maxFlash {
		msg = msg[:maxFlash] + "…"
	}
	kind := "e"
	if f.OK {
		kind = "k"
	}
	val := kind + b64.EncodeToString([]byte(msg))
	val += "." + b64.EncodeToString(u.sessions.mac("flash", val))
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Value: val, Path: Prefix, MaxAge: 60,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
}

// takeFlash reads and clears the flash cookie.
func (u *UI) takeFlash(w http.ResponseWriter, r *http.Request) *flash {
	c, err := r.Cookie(flashCookie)
	if err != nil {
		return nil
	}
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Value: "", Path: Prefix, MaxAge: -1,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	val, sig, ok := strings.Cut(c.Value, ".")
	if !ok || len(val) < 1 || !u.sessions.checkMAC(sig, "flash", val) {
		return nil
	}
	msg, err := b64.DecodeString(val[1:])
	if err != nil {
		return nil
	}
	return &flash{OK: val[0] == 'k', Message: string(msg)}
}
