package ui

import (
	"context"
	"errors"
	"net/http"
)

// pageError is an error a page answers with its own status and message.
type pageError struct {
	status int
	msg    string
}

func (e *pageError) Error() string { return e.msg }

func errNotFound(msg string) error   { return &pageError{status: http.StatusNotFound, msg: msg} }
func errForbidden(msg string) error  { return &pageError{status: http.StatusForbidden, msg: msg} }
func errBadRequest(msg string) error { return &pageError{status: http.StatusBadRequest, msg: msg} }

// fail renders err as an error page. Store faults are 503 with a generic
// message (the log has the cause): a UI page never answers a bare 500.
func (u *UI) fail(w http.ResponseWriter, r *http.Request, v visitor, err error) {
	var pe *pageError
	switch {
	case errors.As(err, &pe):
	case errors.Is(err, ErrNotFound):
		pe = &pageError{status: http.StatusNotFound, msg: "not found"}
	case errors.Is(err, context.Canceled):
		return // the browser went away
	default:
		u.logger.Warn("ui: page failed", "path", r.URL.Path, "err", err)
		w.Header().Set("Retry-After", "5")
		pe = &pageError{status: http.StatusServiceUnavailable, msg: "the registry's storage did not answer; try again shortly"}
	}
	w.Header().Set("Cache-Control", "no-store")
	u.render(w, r, v, pe.status, "error", "Error", errorPage{Status: pe.status, Message: pe.msg})
}

type errorPage struct {
	Status  int
	Message string
}
