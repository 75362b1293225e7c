ARG BUILDER_IMAGE
ARG RUNTIME_IMAGE
FROM --platform=$BUILDPLATFORM ${BUILDER_IMAGE} AS builder
ARG TARGETOS TARGETARCH
WORKDIR /src
COPY go.mod ./
COPY internal/ internal/
COPY cmd/dbmigrate/ cmd/dbmigrate/
RUN --mount=type=cache,id=orch-go-build,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath -ldflags="-s -w" -o /out/dbmigrate ./cmd/dbmigrate
FROM ${RUNTIME_IMAGE}
COPY --from=builder /out/dbmigrate /usr/local/bin/dbmigrate
USER 1001
ENTRYPOINT ["/usr/local/bin/dbmigrate"]
