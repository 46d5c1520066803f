# syntax=docker/dockerfile:1
# The gitseal controller image (what deploy/deployment.yaml runs).
#
#   docker build -t ghcr.io/gitseal/gitseal-controller:0.1.0 .
#
# Build stage: the release binary, on the Debian release the runtime image
# is made from (same glibc). Runtime: distroless "cc" (glibc, libgcc, CA
# certificates; no shell, no package manager) as the non-root user 65532,
# the uid deploy/deployment.yaml's securityContext runs as. The root
# filesystem can be read-only: the controller writes nothing to disk.

ARG RUST_VERSION=1.95

FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
COPY . .
# Cache mounts keep the registry and target dir between builds; the binary
# is copied out of the cached target dir in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p gitseal-controller \
 && install -D -m 0755 target/release/gitseal-controller /out/gitseal-controller

FROM gcr.io/distroless/cc-debian12:nonroot
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="gitseal-controller" \
      org.opencontainers.image.description="Opens gitseal SealedSecrets into Kubernetes Secrets" \
      org.opencontainers.image.source="https://github.com/gitseal/gitseal" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /out/gitseal-controller /usr/local/bin/gitseal-controller
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/gitseal-controller"]
CMD ["run"]
