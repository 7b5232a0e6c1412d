# syntax=docker/dockerfile:1
# The warden image: one static-ish binary for the control plane
# (`warden serve --runtime kubernetes`) and for the investigation Jobs
# (`warden agent run --bootstrap ...`).
#
# Build:  docker build -t ghcr.io/warden-dev/warden:0.1.0 .
# The workspace needs Rust 1.88 or newer (edition 2024, let chains).

FROM docker.io/library/rust:1-bookworm AS build
WORKDIR /src
COPY . .
# --locked: exactly the dependency versions of Cargo.lock.
RUN cargo build --release --locked -p warden --bin warden \
 && install -D -m 0755 target/release/warden /out/warden

# Distroless: glibc and libgcc, no shell, no package manager. Its `nonroot`
# user is UID/GID 65532, the fixed UID the Job spec and the Helm chart run
# as (runtime.kubernetes.run_as_user).
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/warden /usr/local/bin/warden
USER 65532:65532
# The Job spec and the chart set their own command; this is the default.
ENTRYPOINT ["/usr/local/bin/warden"]
CMD ["serve", "--listen", "0.0.0.0:7878", "--data-dir", "/var/lib/warden", "--runtime", "kubernetes"]
