# syntax=docker/dockerfile:1
#
#   docker build --build-arg VERSION=$(git describe --tags --always) -t stratus .
#   docker run -p 5000:5000 -v stratus-data:/data stratus
#
# Multi-platform: docker buildx build --platform linux/amd64,linux/arm64 .
# (the builder runs natively and cross-compiles; no emulation needed).
#
# deploy/dockerfile_test.go parses this file and builds the CI binary with
# the flags of the go build below, so keep that RUN a single go build.

FROM --platform=$BUILDPLATFORM golang:1.26.8-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
ARG TARGETOS=linux
ARG TARGETARCH=amd64
# CGO off: a static binary that runs on distroless/static (no libc).
# -trimpath: no build-machine paths in the binary, reproducible builds.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/stratus ./cmd/stratus
# The default storage root for `docker run`, owned by the runtime user: the
# final stage has no shell to create it.
RUN mkdir -p /out/data

# distroless/static: CA certificates, tzdata and /etc/passwd with the
# nonroot user (65532), nothing else. No shell, no package manager.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/stratus /usr/local/bin/stratus
COPY --from=build --chown=65532:65532 /out/data /data
VOLUME /data
# 5000: the registry API; 9090: /metrics (metrics.addr), not for the public.
EXPOSE 5000 9090
# Numeric, so that Kubernetes' runAsNonRoot can verify it without /etc/passwd.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/stratus", "serve"]
# Replaced by the arguments of `docker run IMAGE ...` or a pod's args, e.g.
# --config /etc/stratus/stratus.yaml.
CMD ["--root", "/data"]
