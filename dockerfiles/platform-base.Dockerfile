ARG BUILDER_IMAGE
ARG RUNTIME_IMAGE
FROM --platform=$BUILDPLATFORM ${BUILDER_IMAGE} AS builder
ARG TARGETOS TARGETARCH
WORKDIR /src
COPY go.mod ./
COPY internal/ internal/
COPY cmd/healthcheck/ cmd/healthcheck/
RUN --mount=type=cache,id=orch-go-build,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath -ldflags="-s -w" -o /out/healthcheck ./cmd/healthcheck
FROM ${RUNTIME_IMAGE}
COPY --from=builder /out/healthcheck /usr/local/bin/healthcheck
USER 1001
CMD ["/usr/local/bin/healthcheck", "--version"]
