ARG BUILDER_IMAGE
ARG RUNTIME_IMAGE
FROM --platform=$BUILDPLATFORM ${BUILDER_IMAGE} AS builder
ARG TARGETOS TARGETARCH
WORKDIR /src
COPY go.mod ./
COPY internal/ internal/
COPY cmd/leader-elect/ cmd/leader-elect/
RUN --mount=type=cache,id=orch-go-build,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath -ldflags="-s -w" -o /out/leader-elect ./cmd/leader-elect
FROM platform-base
COPY --from=builder /out/leader-elect /usr/local/bin/leader-elect
COPY config/controller.yaml /etc/kubernaut/controller.yaml
USER 1001
CMD ["/usr/local/bin/leader-elect", "--version"]
