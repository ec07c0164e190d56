package integration

import (
	"fmt"
	"net/http"
	"strings"
)

// storeDialect is what a faultProxy knows of one store's API: which
// operation a request is, and how the store refuses one.
type storeDialect struct {
	ops      []string // operation names, by storeOp
	classify func(r *http.Request) storeOp
	// faulted are the operations the driver sends, the ones fault plans
	// put faults on.
	faulted []storeOp
	// throttle is the error with which the store asks a client to slow
	// down (faultBefore).
	throttle refusalCase
	// refuse writes the store's error answer with status and error code
	// (code may be empty: a bare status).
	refuse func(w http.ResponseWriter, status int, code string)
	// keepHost forwards the Host header the client sent (to the proxy)
	// instead of the store's own: S3's SigV4 signs it.
	keepHost bool
	// crossCheck, if set, compares the proxy's reading of r with the
	// client's own name for it: "" when they agree, else the mismatch.
	crossCheck func(r *http.Request, op storeOp) string
}

// opsUpTo are the operations 0 to n-1.
func opsUpTo(n storeOp) []storeOp {
	ops := make([]storeOp, 0, n)
	for o := range n {
		ops = append(ops, o)
	}
	return ops
}

// S3 operations, of the ones the s3 driver sends, as the fault proxy
// recognises them from method, path, query and headers.
const (
	opPutObject storeOp = iota
	opPutObjectCreateOnly
	opUploadPart
	opUploadPartCopy
	opCreateMultipartUpload
	opCompleteMultipartUpload
	opAbortMultipartUpload
	opDeleteObject
	opDeleteObjects
	opGetObject
	opHeadObject
	opListObjectsV2
	opListParts
	opS3Other // bucket-level calls, CopyObject, anything else
)

var s3OpNames = []string{
	"PutObject", "PutObject(If-None-Match)", "UploadPart", "UploadPartCopy",
	"CreateMultipartUpload", "CompleteMultipartUpload", "AbortMultipartUpload",
	"DeleteObject", "DeleteObjects", "GetObject", "HeadObject", "ListObjectsV2",
	"ListParts", "other",
}

var s3Dialect = storeDialect{
	ops:      s3OpNames,
	classify: classifyS3,
	faulted:  opsUpTo(opS3Other),
	throttle: refusalCase{status: http.StatusServiceUnavailable, code: "SlowDown"},
	refuse: func(w http.ResponseWriter, status int, code string) {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(status)
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>Injected by the fault proxy.</Message><RequestId>fault-proxy</RequestId></Error>`, code)
	},
	keepHost:   true,
	crossCheck: checkS3SDKName,
}

// classifyS3 tells which operation a path-style S3 request is.
func classifyS3(r *http.Request) storeOp {
	q := r.URL.Query()
	p := strings.TrimPrefix(r.URL.Path, "/")
	i := strings.IndexByte(p, '/')
	hasKey := i >= 0 && i < len(p)-1 // "/bucket/key", not "/bucket" or "/bucket/"
	upload := q.Has("uploadId")
	switch r.Method {
	case http.MethodPut:
		copySrc := r.Header.Get("X-Amz-Copy-Source") != ""
		switch {
		case !hasKey:
			return opS3Other
		case upload && q.Has("partNumber") && copySrc:
			return opUploadPartCopy
		case upload && q.Has("partNumber"):
			return opUploadPart
		case copySrc:
			return opS3Other // CopyObject: the driver never sends it
		case r.Header.Get("If-None-Match") == "*":
			return opPutObjectCreateOnly
		}
		return opPutObject
	case http.MethodPost:
		switch {
		case q.Has("delete") && !hasKey:
			return opDeleteObjects
		case q.Has("uploads") && hasKey:
			return opCreateMultipartUpload
		case upload && hasKey:
			return opCompleteMultipartUpload
		}
	case http.MethodDelete:
		switch {
		case hasKey && upload:
			return opAbortMultipartUpload
		case hasKey:
			return opDeleteObject
		}
	case http.MethodGet:
		switch {
		case hasKey && upload:
			return opListParts
		case !hasKey && q.Get("list-type") == "2":
			return opListObjectsV2
		case hasKey:
			return opGetObject
		}
	case http.MethodHead:
		if hasKey {
			return opHeadObject
		}
	}
	return opS3Other
}

// sdkOpNames is what aws-sdk-go-v2 puts in its x-id query parameter for
// each operation, when it sends one; the proxy checks its own reading of
// the request against it.
var sdkOpNames = map[string][]storeOp{
	"PutObject":               {opPutObject, opPutObjectCreateOnly},
	"UploadPart":              {opUploadPart},
	"UploadPartCopy":          {opUploadPartCopy},
	"CreateMultipartUpload":   {opCreateMultipartUpload},
	"CompleteMultipartUpload": {opCompleteMultipartUpload},
	"AbortMultipartUpload":    {opAbortMultipartUpload},
	"DeleteObject":            {opDeleteObject},
	"DeleteObjects":           {opDeleteObjects},
	"GetObject":               {opGetObject},
	"HeadObject":              {opHeadObject},
	"ListObjectsV2":           {opListObjectsV2},
	"ListParts":               {opListParts},
}

func checkS3SDKName(r *http.Request, op storeOp) string {
	xid := r.URL.Query().Get("x-id")
	want, known := sdkOpNames[xid]
	if xid == "" || !known && op == opS3Other {
		return ""
	}
	for _, o := range want {
		if o == op {
			return ""
		}
	}
	return fmt.Sprintf("%s %s: read as %s, the SDK says %s", r.Method, r.URL, s3OpNames[op], xid)
}

// Azure Blob operations, by method, comp and copy source.
const (
	opPutBlob storeOp = iota
	opPutBlobFromURL
	opPutBlock
	opPutBlockFromURL
	opPutBlockList
	opAppendBlock
	opSetBlobMetadata
	opGetBlob
	opGetBlockList
	opGetBlobProperties
	opDeleteBlob
	opListBlobs
	opAzureOther // container-level calls, anything else
)

// azureDialect: the fault plans cover every request, the registry's
// record, link and catalog writes included.
var azureDialect = storeDialect{
	ops: []string{
		"Put Blob", "Put Blob From URL", "Put Block", "Put Block From URL", "Put Block List",
		"Append Block", "Set Blob Metadata", "Get Blob", "Get Block List", "Get Blob Properties",
		"Delete Blob", "List Blobs", "other",
	},
	classify: classifyAzure,
	faulted:  opsUpTo(opAzureOther + 1),
	throttle: refusalCase{status: http.StatusServiceUnavailable, code: "ServerBusy"},
	refuse: func(w http.ResponseWriter, status int, code string) {
		if code != "" {
			w.Header().Set("x-ms-error-code", code)
		}
		w.WriteHeader(status)
	},
}

func classifyAzure(r *http.Request) storeOp {
	q := r.URL.Query()
	comp, copySrc := q.Get("comp"), r.Header.Get("x-ms-copy-source") != ""
	switch {
	case q.Get("restype") == "container":
		if r.Method == http.MethodGet && comp == "list" {
			return opListBlobs
		}
		return opAzureOther
	case r.Method == http.MethodPut && comp == "block" && copySrc:
		return opPutBlockFromURL
	case r.Method == http.MethodPut && comp == "block":
		return opPutBlock
	case r.Method == http.MethodPut && comp == "blocklist":
		return opPutBlockList
	case r.Method == http.MethodPut && comp == "appendblock":
		return opAppendBlock
	case r.Method == http.MethodPut && comp == "metadata":
		return opSetBlobMetadata
	case r.Method == http.MethodPut && comp == "" && copySrc:
		return opPutBlobFromURL
	case r.Method == http.MethodPut && comp == "":
		return opPutBlob
	case r.Method == http.MethodGet && comp == "blocklist":
		return opGetBlockList
	case r.Method == http.MethodGet && comp == "":
		return opGetBlob
	case r.Method == http.MethodHead && comp == "":
		return opGetBlobProperties
	case r.Method == http.MethodDelete && comp == "":
		return opDeleteBlob
	}
	return opAzureOther
}

// GCS operations of the JSON API (and media downloads), by method and path.
const (
	opGCSInsert storeOp = iota // uploads: simple, multipart or resumable
	opGCSCompose
	opGCSRewrite
	opGCSGetMetadata
	opGCSUpdate
	opGCSDelete
	opGCSList
	opGCSRead // media: ?alt=media, /download/, or the XML API's GET
	opGCSOther
)

// gcsDialect: the fault plans cover every request.
var gcsDialect = storeDialect{
	ops:      []string{"insert", "compose", "rewrite", "get", "update", "delete", "list", "read", "other"},
	classify: classifyGCS,
	faulted:  opsUpTo(opGCSOther + 1),
	throttle: refusalCase{status: http.StatusTooManyRequests, code: "rateLimitExceeded"},
	refuse: func(w http.ResponseWriter, status int, reason string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"error":{"code":%d,"message":"injected","errors":[{"reason":%q}]}}`, status, reason)
	},
}

func classifyGCS(r *http.Request) storeOp {
	p := r.URL.Path
	object := strings.Contains(p, "/o/")
	switch {
	case strings.HasPrefix(p, "/upload/"):
		return opGCSInsert
	case strings.HasPrefix(p, "/download/") || r.URL.Query().Get("alt") == "media":
		return opGCSRead
	case !strings.HasPrefix(p, "/storage/v1/"):
		if r.Method == http.MethodGet {
			return opGCSRead // the XML API
		}
		return opGCSOther
	case r.Method == http.MethodPost && strings.HasSuffix(p, "/compose"):
		return opGCSCompose
	case r.Method == http.MethodPost && strings.Contains(p, "/rewriteTo/"):
		return opGCSRewrite
	case r.Method == http.MethodGet && object:
		return opGCSGetMetadata
	case r.Method == http.MethodGet && strings.HasSuffix(p, "/o"):
		return opGCSList
	case r.Method == http.MethodPatch && object:
		return opGCSUpdate
	case r.Method == http.MethodDelete && object:
		return opGCSDelete
	}
	return opGCSOther
}
