package content

import "errors"

// The errors the content store returns. They say what is wrong with the
// content, never how a protocol answers it: the HTTP layer maps each to a
// code of its error table (registry/errors.go).
var (
	// ErrBlobUnknown: the repository does not link the blob, the blob does
	// not exist, or GC is deleting it.
	ErrBlobUnknown = errors.New("blob unknown")
	// ErrManifestUnknown: no such manifest (or tag) in the repository.
	ErrManifestUnknown = errors.New("manifest unknown")
	// ErrNameUnknown: the repository is not in the catalog.
	ErrNameUnknown = errors.New("repository name unknown")
	// ErrNameInvalid: not a repository name of the spec's grammar.
	ErrNameInvalid = errors.New("invalid repository name")
	// ErrManifestInvalid: a manifest does not parse or validate; the
	// wrapping error says why.
	ErrManifestInvalid = errors.New("manifest invalid")
	// ErrBeingDeleted: GC is deleting an older copy of what a write
	// creates (a blob, a link, a manifest); the write may be retried.
	ErrBeingDeleted = errors.New("being garbage-collected")
	// ErrDataBeingDeleted: GC is deleting the data object of an upload;
	// the upload must be restarted.
	ErrDataBeingDeleted = errors.New("upload data is being garbage-collected")
	// ErrTagExists: a create-only tag write found the tag set.
	ErrTagExists = errors.New("tag exists")
	// ErrCorrupt: an object of the layout does not decode.
	ErrCorrupt = errors.New("corrupt object in the store")
)

// ManifestInvalidError says why a manifest is invalid. It matches
// ErrManifestInvalid with errors.Is.
type ManifestInvalidError struct{ Reason string }

func (e *ManifestInvalidError) Error() string { return "manifest invalid: " + e.Reason }

// Is makes errors.Is(err, ErrManifestInvalid) true.
func (e *ManifestInvalidError) Is(target error) bool { return target == ErrManifestInvalid }

// RecordNotWrittenError: the blob record write failed and no record exists,
// so nothing points at the upload's data. A monolithic upload deletes its
// data then; a session keeps it for the retried PUT.
type RecordNotWrittenError struct{ Err error }

func (e *RecordNotWrittenError) Error() string { return "writing the blob record: " + e.Err.Error() }
func (e *RecordNotWrittenError) Unwrap() error { return e.Err }
