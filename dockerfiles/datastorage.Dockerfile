ARG BUILDER_IMAGE
ARG RUNTIME_IMAGE
FROM --platform=$BUILDPLATFORM ${BUILDER_IMAGE} AS builder
ARG TARGETOS TARGETARCH
WORKDIR /src
COPY go.mod ./
COPY internal/ internal/
COPY cmd/datastorage/ cmd/datastorage/
RUN --mount=type=cache,id=orch-go-build,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath -ldflags="-s -w" -o /out/datastorage ./cmd/datastorage
FROM platform-base
COPY --from=builder /out/datastorage /usr/local/bin/datastorage
USER 1001
EXPOSE 8085
ENTRYPOINT ["/usr/local/bin/datastorage"]
