# The action's image: a static musl binary on `scratch`, with CA certificates
# for TLS to registries and the GitHub API.

FROM rust:1-alpine AS build
# musl-dev for the C runtime; cmake, make and perl for aws-lc-sys (rustls'
# default crypto provider) when it cannot use its prebuilt-free cc path.
RUN apk add --no-cache musl-dev cmake make perl ca-certificates
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
# Strip: the release profile keeps line tables (41 MB unstripped, ~2.8 MB
# stripped on x86_64 musl).
ENV CARGO_PROFILE_RELEASE_STRIP=true
RUN cargo build --release --target x86_64-unknown-linux-musl --locked \
 && cp target/x86_64-unknown-linux-musl/release/promoter /promoter

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /promoter /promoter
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
ENTRYPOINT ["/promoter"]
