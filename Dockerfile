# The operator image: the `flink-operator` binary on a distroless base, as a non-root user.
#   docker build -t flink-operator:dev .
# The build stage runs the same `cargo build --release --locked -p flink-operator
# --no-default-features` that docs/helm.md describes for a local build: without the `local`
# feature, so the local cluster (API stand-in, process runtime, Flink installer) is not in the
# image. Plugins are not in the image either (they come from the policies ConfigMap or a
# mounted directory).

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p flink-operator --no-default-features \
    && install -D -m 0755 target/release/flink-operator /out/flink-operator \
    && strip /out/flink-operator

# glibc (not static musl): wasmtime and the allocator behave best on glibc, and
# distroless/cc carries exactly libc, libgcc and CA certificates.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/flink-operator /usr/local/bin/flink-operator
# 65532 = nonroot in distroless; the chart runs it with a read-only root file system.
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/flink-operator"]
CMD ["run"]
