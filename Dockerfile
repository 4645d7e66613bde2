# Gatehouse container image: built in the official Rust image, run on
# distroless (no shell, no package manager) as the non-root user 65532.
#   docker build -t gatehouse .
#   docker run -p 8080:8080 -e GATEHOUSE__UPSTREAM__URL=http://app:3000 \
#     -v gatehouse-data:/var/lib/gatehouse gatehouse

FROM rust:1-bookworm AS build
# cmake: Pingora's zlib-ng build. The rest (cc, make) is in the Rust image.
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# Page and mail templates, the demo config and the SQL migrations are
# compiled into the binary: the binary is all the runtime stage needs.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
 && install -D -m 0755 target/release/gatehouse /out/gatehouse \
 && mkdir -p /out/data

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/gatehouse /usr/local/bin/gatehouse
COPY config/container.yaml /etc/gatehouse/gatehouse.yaml
# Created by this COPY, so owned by the non-root user (the SQLite store).
COPY --from=build --chown=65532:65532 /out/data /var/lib/gatehouse
VOLUME /var/lib/gatehouse
USER 65532:65532
EXPOSE 8080 9090
# No shell in the image: the binary checks its own health endpoint.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["gatehouse", "healthcheck"]
ENTRYPOINT ["gatehouse"]
CMD ["serve", "-c", "/etc/gatehouse/gatehouse.yaml"]
