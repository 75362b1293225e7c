ARG BUILDER_IMAGE
ARG RUNTIME_IMAGE
FROM --platform=$BUILDPLATFORM ${BUILDER_IMAGE} AS builder
ARG TARGETOS TARGETARCH
WORKDIR /src
COPY go.mod ./
COPY internal/ internal/
COPY cmd/notification/ cmd/notification/
RUN --mount=type=cache,id=orch-go-build,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath -ldflags="-s -w" -o /out/notification ./cmd/notification
FROM controller-base
COPY --from=builder /out/notification /usr/local/bin/notification
USER 1001
EXPOSE 8082
ENTRYPOINT ["/usr/local/bin/notification"]
