package registry

// The bucket layout (docs/architecture.md). Every key the registry writes is
// built here, so the layout can be read in one place.
//
// Per-repository keys put an underscore component after the name: name
// components cannot start with "_", so "repos/a/_tags/" never lists anything
// of repository "a/tags".

func blobRecordKey(d Digest) string { return "blobs/" + d.Alg + "/" + d.Hex[:2] + "/" + d.Hex }

func dataKey(uploadID string) string { return "data/" + uploadID }

const dataPrefix = "data/"

func repoPrefix(name string) string { return "repos/" + name + "/" }

func linkKey(name string, d Digest) string { return repoPrefix(name) + "_links/" + d.Alg + "/" + d.Hex }

func manifestKey(name string, d Digest) string {
	return repoPrefix(name) + "_manifests/" + d.Alg + "/" + d.Hex
}

func tagsPrefix(name string) string { return repoPrefix(name) + "_tags/" }

func tagKey(name, tag string) string { return tagsPrefix(name) + tag }

func referrersPrefix(name string, subject Digest) string {
	return repoPrefix(name) + "_referrers/" + subject.Alg + "/" + subject.Hex + "/"
}

func referrerKey(name string, subject, d Digest) string {
	return referrersPrefix(name, subject) + d.Alg + "-" + d.Hex
}

const catalogPrefix = "catalog/"

const catalogSuffix = "/_repo"

func catalogKey(name string) string { return catalogPrefix + name + catalogSuffix }
