# The image the Helm chart (charts/wirescope) runs, as the hub and as the
# node agents: one static binary on distroless/static.
#
#   docker build -t ghcr.io/wirescope/wirescope:0.1.0 .
#
# charts/chart_test.go (TestStaticBuild) runs this file's go build line and
# checks the binary is static (no interpreter, no shared libraries): the
# final stage has no libc.

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/wirescope ./cmd/wirescope

# No shell, no package manager, no tcpdump; CA certificates and /etc/passwd
# with the nonroot user (65532) only.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/wirescope /usr/local/bin/wirescope
# The hub runs as this user; the chart runs the agent as uid 0 with only the
# capabilities capture and eBPF need (charts/wirescope/values.yaml).
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/wirescope"]
