#!/usr/bin/env bash
# Runs the whole Stratus test suite on a fresh Debian machine (as root) or a
# developer's. It installs what the tests need, caches it, runs every test
# (each test package starts and stops its own servers on 127.0.0.1: redis-server,
# MinIO, fake-gcs-server, stratus itself), then the OCI conformance suite and the
# real CLI clients.
#
#   bash integration/test.sh          # everything
#   SHORT=1 bash integration/test.sh  # go test -short (smaller objects, fewer iterations)
#
# integration/bench runs in its -short mode as part of go test (TestShortRun),
# so the benchmark harness itself is exercised on every run.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

export GOFLAGS="${GOFLAGS:--buildvcs=false}"
TOOLS="${STRATUS_TOOLS_DIR:-$HOME/.cache/stratus-tools}"
mkdir -p "$TOOLS/bin"
export PATH="$TOOLS/bin:$(go env GOPATH)/bin:$PATH"

# Versions of the external programs the tests drive. Pinned so a run is repeatable.
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
AZURITE_VERSION=3.37.0     # npm; storage/azure/azuretest pins the same
FAKE_GCS_VERSION=v1.56.1   # storage/gcs/gcstest.Version
CRANE_VERSION=v0.22.1
ORAS_VERSION=v1.3.6
REGCTL_VERSION=v0.11.7
CONFORMANCE_VERSION=v0.0.0-20260831232431-97274622c111
REFERENCE_VERSION=v3.1.2   # CNCF Distribution, the baseline of integration/bench
STATICCHECK_VERSION=v0.8.2 # staticcheck 2026.2.2

log() { printf '\n== %s\n' "$*"; }

apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian starts redis-server as a system service on install; the tests
  # start their own on a temp socket, so stop the system one.
  if [[ " ${missing[*]} " == *" redis-server "* ]]; then
    (service redis-server stop || systemctl stop redis-server || true) >/dev/null 2>&1
  fi
}

go_tool() { # name module@version: installs into $TOOLS/bin once per version
  local name=$1 modver=$2 stamp="$TOOLS/bin/.$1.version"
  if [ -x "$TOOLS/bin/$name" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$modver" ]; then return 0; fi
  log "go install $modver"
  GOBIN="$TOOLS/bin" go install "$modver"
  echo "$modver" >"$stamp"
}

azurite_tool() { # npm install azurite into $TOOLS/azurite once per version
  local dir="$TOOLS/azurite" stamp="$TOOLS/azurite/.version"
  if [ -e "$dir/node_modules/.bin/azurite-blob" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$AZURITE_VERSION" ]; then return 0; fi
  log "npm install azurite@$AZURITE_VERSION"
  mkdir -p "$dir"
  npm install --prefix "$dir" --no-audit --no-fund --silent "azurite@$AZURITE_VERSION" >/dev/null
  echo "$AZURITE_VERSION" >"$stamp"
}

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt_install redis-server skopeo podman ca-certificates
  # The web UI's browser test (integration/ui_browser_test.go) drives
  # Debian's headless Chromium over CDP; chromium-driver (chromedriver)
  # comes along for WebDriver clients used to debug it.
  apt_install chromium chromium-driver
  # Azurite needs Node.js 18 or later; keep one that is already there.
  command -v npm >/dev/null || apt_install nodejs npm
fi
for bin in redis-server skopeo podman npm chromium; do
  command -v "$bin" >/dev/null || { echo "missing $bin: apt-get install -y $bin" >&2; exit 1; }
done
go_tool minio "github.com/minio/minio@$MINIO_VERSION"
azurite_tool
go_tool fake-gcs-server "github.com/fsouza/fake-gcs-server@$FAKE_GCS_VERSION"
go_tool crane "github.com/google/go-containerregistry/cmd/crane@$CRANE_VERSION"
go_tool oras "oras.land/oras/cmd/oras@$ORAS_VERSION"
go_tool regctl "github.com/regclient/regclient/cmd/regctl@$REGCTL_VERSION"
go_tool conformance "github.com/opencontainers/distribution-spec/conformance@$CONFORMANCE_VERSION"
go_tool registry "github.com/distribution/distribution/v3/cmd/registry@$REFERENCE_VERSION"
go_tool staticcheck "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"

log "gofmt and go vet"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then echo "gofmt needed on:"; echo "$unformatted"; exit 1; fi
go vet ./...

log "go mod tidy -diff"
if ! go mod tidy -diff; then echo "go.mod/go.sum are not tidy: run go mod tidy" >&2; exit 1; fi

log "staticcheck $STATICCHECK_VERSION"
staticcheck ./...

short=()
[ -n "${SHORT:-}" ] && short=(-short)
log "go test -race ./..."
# -p 1: packages that start servers (MinIO, redis, several stratus replicas)
# would otherwise compete for the two cores and time out each other.
go test -race -p 1 -timeout 60m "${short[@]}" ./...
