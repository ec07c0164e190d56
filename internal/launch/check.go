package launch

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"time"
)

// A Check is one readiness probe. Ready makes one attempt and returns nil
// once the process is ready; WaitReady tries it again until then. String
// names it in errors.
type Check interface {
	Ready(ctx context.Context, p *Process) error
	String() string
}

// attemptTimeout bounds one network attempt of Dial and HTTPGet.
const attemptTimeout = time.Second

// Dial passes once a connection to addr (net.Dial's network and address,
// "unix" and a socket path included) is accepted.
func Dial(network, addr string) Check { return dialCheck{network, addr} }

type dialCheck struct{ network, addr string }

func (c dialCheck) String() string { return "dial " + c.network + " " + c.addr }

func (c dialCheck) Ready(ctx context.Context, _ *Process) error {
	ctx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, c.network, c.addr)
	if err != nil {
		return err
	}
	return conn.Close()
}

// HTTPGet passes once a GET of url answers with one of statuses, or with
// any status when none are given (a 403 is an answer too). client may be
// nil for a plain one; each attempt is bounded to a second either way.
func HTTPGet(client *http.Client, url string, statuses ...int) Check {
	if client == nil {
		client = http.DefaultClient
	}
	return httpCheck{client, url, statuses}
}

type httpCheck struct {
	client   *http.Client
	url      string
	statuses []int
}

func (c httpCheck) String() string { return "GET " + c.url }

func (c httpCheck) Ready(ctx context.Context, _ *Process) error {
	ctx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if len(c.statuses) > 0 && !slices.Contains(c.statuses, resp.StatusCode) {
		return fmt.Errorf("status %s", resp.Status)
	}
	return nil
}

// Func is a Check made of a function, named desc in errors.
func Func(desc string, f func(ctx context.Context) error) Check { return funcCheck{desc, f} }

type funcCheck struct {
	desc string
	f    func(ctx context.Context) error
}

func (c funcCheck) String() string { return c.desc }

func (c funcCheck) Ready(ctx context.Context, _ *Process) error { return c.f(ctx) }
