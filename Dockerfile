# The action's image: the promoter as a static musl binary, on Alpine for
# `git` (the pull-request check compares with the base commit by running
# `git`) and CA certificates (TLS to registries and the GitHub API).
#
# Why not `scratch`: `promoter check --base-ref` shells out to git, and a
# static git is not packaged anywhere we trust; reading the base through the
# GitHub contents API would be one request per manifest file and would not
# see what `actions/checkout` fetched. Alpine with git adds ~15 MB.

FROM rust:1-alpine AS build
# musl-dev for the C runtime; cmake, make and perl for aws-lc-sys (rustls'
# default crypto provider) when it cannot use its prebuilt-free cc path.
RUN apk add --no-cache musl-dev cmake make perl
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
# Strip: the release profile keeps line tables (41 MB unstripped).
ENV CARGO_PROFILE_RELEASE_STRIP=true
RUN cargo build --release --target x86_64-unknown-linux-musl --locked \
 && cp target/x86_64-unknown-linux-musl/release/promoter /promoter

FROM alpine:3
# The runner mounts the workspace owned by another user than the
# container's root: without `safe.directory`, git refuses to read it
# ("detected dubious ownership in repository").
RUN apk add --no-cache git ca-certificates \
 && git config --system --add safe.directory '*'
COPY --from=build /promoter /usr/local/bin/promoter
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
# `docker run <image> check --manifest ...` works as the command line;
# the action passes `action` (action.yml `args`).
ENTRYPOINT ["/usr/local/bin/promoter"]
CMD ["action"]
