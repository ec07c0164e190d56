package ui

import (
	"net/http"
	"strings"
)

// maxFormBytes bounds a form body (login, delete).
const maxFormBytes = 16 << 10

type loginPage struct {
	// NoPasswords: auth is configured but no password can be checked
	// here (external token issuer only); NoAuth: no auth at all.
	NoPasswords bool
	NoAuth      bool
	Username    string
}

func (u *UI) loginForm(w http.ResponseWriter, r *http.Request, _ uiRoute, v visitor) error {
	u.render(w, r, v, http.StatusOK, "login", "Sign in", u.loginState(""))
	return nil
}

func (u *UI) loginState(user string) loginPage {
	return loginPage{NoAuth: u.access == nil, NoPasswords: u.access != nil && !u.access.ChecksPasswords(), Username: user}
}

// parseForm reads a bounded form body and checks its CSRF token against
// the visitor's binding; a missing or wrong token is 403 and nothing is
// done.
func (u *UI) parseForm(w http.ResponseWriter, r *http.Request, v visitor) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		return errBadRequest("the form could not be read")
	}
	if !u.sessions.checkCSRF(v.binding, r.PostForm.Get("csrf")) {
		return errForbidden("the form's CSRF token is missing or does not match your session; reload the page and try again")
	}
	return nil
}

func (u *UI) login(w http.ResponseWriter, r *http.Request, _ uiRoute, v visitor) error {
	if err := u.parseForm(w, r, v); err != nil {
		return err
	}
	st := u.loginState("")
	if st.NoAuth || st.NoPasswords {
		u.render(w, r, v, http.StatusBadRequest, "login", "Sign in", st)
		return nil
	}
	user := strings.TrimSpace(r.PostForm.Get("username"))
	pass := r.PostForm.Get("password")
	// Authenticate checks the bcrypt hash (which bounds guessing per
	// request) and audits failures; the registry's rate limit sits in
	// front of the UI.
	if user == "" || len(user) > maxUserLen || u.access.Authenticate(r.Context(), user, pass) != nil {
		st.Username = user
		u.renderWith(w, r, v, http.StatusUnauthorized, "login", "Sign in", st, &flash{Message: "wrong user name or password"})
		return nil
	}
	u.sessions.setSession(w, r, user)
	u.setFlash(w, r, flash{OK: true, Message: "signed in as " + user})
	http.Redirect(w, r, Prefix, http.StatusSeeOther)
	return nil
}

func (u *UI) logout(w http.ResponseWriter, r *http.Request, _ uiRoute, v visitor) error {
	if err := u.parseForm(w, r, v); err != nil {
		return err
	}
	clearSession(w, r)
	u.setFlash(w, r, flash{OK: true, Message: "signed out"})
	http.Redirect(w, r, Prefix, http.StatusSeeOther)
	return nil
}
