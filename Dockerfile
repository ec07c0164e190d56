# syntax=docker/dockerfile:1
# Build: docker build -t stratus .
# Run:   docker run -p 5000:5000 -v stratus-data:/data stratus
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/stratus ./cmd/stratus

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/stratus /usr/local/bin/stratus
ENV STRATUS_STORAGE_FILESYSTEM_ROOT=/data
VOLUME /data
EXPOSE 5000
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/stratus"]
CMD ["serve"]
