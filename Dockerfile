# syntax=docker/dockerfile:1
# The one image of Altdata Explorer: the `altdata` binary (every role is a subcommand:
# migrate, ingest, aggregate, gateway, ...), the provider profiles and the built dashboard.
#
#   docker build -t altdata:latest .
#   docker run --rm altdata:latest --help
#
# Schema migrations and the merchant catalogue are embedded in the binary (include_str!),
# and protobuf is compiled by protox at build time, so no protoc and no data files are
# needed at run time besides profiles/.

# ---- dashboard (web/ -> web/dist, served by the gateway) ----------------------------------
FROM node:22-bookworm-slim AS web
WORKDIR /web
ENV PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
COPY web/package.json web/package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund
COPY web/ ./
RUN npm run build

# ---- binary ------------------------------------------------------------------------------
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# Cache mounts keep the crates.io registry and the target directory between builds; the
# binary is copied out of the cached target dir in the same step (a cache mount is not part
# of the image).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin altdata \
 && install -D -m 0755 target/release/altdata /out/altdata

# ---- runtime -----------------------------------------------------------------------------
# Distroless: glibc, libgcc and CA certificates, no shell, no package manager; `nonroot`
# runs as uid/gid 65532 by default, and USER below makes it the project's 10001, the uid the
# Kubernetes manifests pin (runAsUser: 10001).
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/altdata /usr/local/bin/altdata
COPY profiles/ /usr/local/share/altdata/profiles/
COPY --from=web /web/dist/ /usr/local/share/altdata/web/
WORKDIR /usr/local/share/altdata
ENV ALTDATA_PROFILES_DIR=/usr/local/share/altdata/profiles \
    ALTDATA_WEB_DIR=/usr/local/share/altdata/web \
    ALTDATA_LOG_FORMAT=json
USER 10001:10001
EXPOSE 8080 9090
ENTRYPOINT ["/usr/local/bin/altdata"]
CMD ["--help"]
