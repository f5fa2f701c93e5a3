# The action's image: the promoter as a static musl binary, on Alpine for
# `git` (the pull-request check compares with the base commit by running
# `git`) and CA certificates (TLS to registries and the GitHub API).
#
# Why not `scratch`: `promoter check --base-ref` shells out to git, and a
# static git is not packaged anywhere we trust; reading the base through the
# GitHub contents API would be one request per manifest file and would not
# see what `actions/checkout` fetched. Alpine with git adds ~15 MB.
#
# Multi-arch: BuildKit sets TARGETARCH (amd64, arm64) for the platform being
# built; the release builds each natively (.github/workflows/release.yml).
# Bases are pinned to a Rust release and an Alpine release; the packages
# come from that Alpine branch, which takes only security fixes.

FROM rust:1.95.0-alpine3.22 AS build
ARG TARGETARCH
# musl-dev for the C runtime; cmake, make and perl for aws-lc-sys (rustls'
# default crypto provider) when it cannot use its prebuilt-free cc path.
# hadolint ignore=DL3018
RUN apk add --no-cache musl-dev cmake make perl
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
# Strip: the release profile keeps line tables (41 MB unstripped).
# No CPU-jitter entropy in AWS-LC: as .cargo/config.toml says, it costs
# about 30 ms of CPU in every process's first TLS handshake; AWS-LC then
# seeds from getrandom(2).
ENV CARGO_PROFILE_RELEASE_STRIP=true \
    AWS_LC_SYS_NO_JITTER_ENTROPY=1
SHELL ["/bin/ash", "-eo", "pipefail", "-c"]
RUN case "${TARGETARCH:-amd64}" in \
      amd64) arch=x86_64 ;; \
      arm64) arch=aarch64 ;; \
      *) echo "unsupported TARGETARCH=${TARGETARCH}: build linux/amd64 or linux/arm64" >&2; exit 1 ;; \
    esac \
 && cargo build --release --target "${arch}-unknown-linux-musl" --locked \
 && cp "target/${arch}-unknown-linux-musl/release/promoter" /promoter

FROM alpine:3.22
# The runner mounts the workspace owned by another user than the
# container's root: without `safe.directory`, git refuses to read it
# ("detected dubious ownership in repository").
# hadolint ignore=DL3018
RUN apk add --no-cache git ca-certificates \
 && git config --system --add safe.directory '*'
COPY --from=build /promoter /usr/local/bin/promoter
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
# `docker run <image> check --manifest ...` works as the command line;
# the action passes `action` (action.yml `args`).
ENTRYPOINT ["/usr/local/bin/promoter"]
CMD ["action"]
