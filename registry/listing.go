package registry

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
)

// maxListPage bounds a tags or catalog response; clients follow the Link
// header for the rest.
const maxListPage = 10000

// pageParams reads ?n= and ?last=. n absent means "as many as allowed".
func pageParams(q url.Values) (n int, last string, err error) {
	n = maxListPage
	if s := q.Get("n"); s != "" {
		v, perr := strconv.Atoi(s)
		if perr != nil || v < 0 {
			return 0, "", newError(codePaginationInvalid, "n=%q: want a non-negative integer", s)
		}
		n = min(v, maxListPage)
	}
	return n, q.Get("last"), nil
}

func setNextLink(w http.ResponseWriter, path string, n int, last string, explicitN bool) {
	q := url.Values{}
	q.Set("last", last)
	if explicitN {
		q.Set("n", strconv.Itoa(n))
	}
	w.Header().Set("Link", fmt.Sprintf(`<%s?%s>; rel="next"`, path, q.Encode()))
}

func writeJSON(w http.ResponseWriter, contentType string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(b)
	return err
}
