# syntax=docker/dockerfile:1
#
# Hookline in one image: the `hookline` binary and the dashboard's assets.
#
#   docker build -t hookline .
#   docker run -p 3000:3000 -v hookline-data:/var/lib/hookline hookline
#
# See docs/deploy.md. Needs BuildKit (the default builder since Docker 23) for the cache mounts.

# --- build: what `HOOKLINE_RELEASE=1 scripts/hookline build` builds --------------------------
FROM rust:1.95-bookworm AS build

# Installed here, in their own layers, so a source change does not download them again (the
# script would add the target too). brotli precompresses the assets below.
RUN rustup target add wasm32-unknown-unknown
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends brotli \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY . .

# Dependencies are cached by BuildKit cache mounts rather than by a layer of manifests: with
# six workspace crates a "manifests first" layer needs stub sources for each and still
# rebuilds on any Cargo.toml change. The mounts keep the registry, the compiled dependencies
# (target/) and the wasm-bindgen CLI (.tools/, installed by the script at the version in
# Cargo.lock) between builds. Cache mounts are not part of the image, so the results are
# copied out to /out in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    --mount=type=cache,target=/src/.tools \
    HOOKLINE_RELEASE=1 scripts/hookline build \
 && mkdir -p /out \
 && cp target/release/hookline /out/hookline \
 && cp -r target/site /out/site

# The server sends `name.br` or `name.gz` in place of `name` to browsers that accept it: the
# dashboard's WebAssembly goes over the wire at an eighth of its size without a proxy that
# compresses.
RUN find /out/site -type f \( -name '*.wasm' -o -name '*.js' -o -name '*.css' -o -name '*.svg' \) \
      -exec gzip -9 -k {} \; -exec brotli -q 11 -k {} \;

# --- runtime ---------------------------------------------------------------------------------
FROM debian:bookworm-slim

# ca-certificates: deliveries go to https endpoints. busybox: its `wget` answers the
# HEALTHCHECK (about 1 MB, where curl would bring a dozen libraries).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates busybox \
 && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 hookline \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/hookline --no-create-home \
      --shell /usr/sbin/nologin hookline \
 && install -d -o hookline -g hookline -m 0750 /var/lib/hookline

COPY --from=build /out/hookline /usr/local/bin/hookline
COPY --from=build /out/site /usr/share/hookline/site

ENV HOOKLINE_SITE_ROOT=/usr/share/hookline/site \
    HOOKLINE_LISTEN=0.0.0.0:3000 \
    HOOKLINE_DATABASE_URL="sqlite:///var/lib/hookline/hookline.db?mode=rwc"

# The SQLite database of the default configuration; unused with PostgreSQL.
VOLUME ["/var/lib/hookline"]
WORKDIR /var/lib/hookline
USER 10001:10001
EXPOSE 3000

# SIGTERM (Docker's default, said here because the drain depends on it): the server stops
# taking requests and lets deliveries in flight finish. Give containers a stop timeout of
# 40 s (`docker stop -t 40`, `stop_grace_period` in compose).
STOPSIGNAL SIGTERM

# The port is read from HOOKLINE_LISTEN, so overriding it does not break the check. No `-T`:
# Debian's BusyBox 1.35 wget crashes with it; Docker's --timeout bounds the check instead.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["sh", "-c", "exec busybox wget -q -O /dev/null \"http://127.0.0.1:${HOOKLINE_LISTEN##*:}/healthz\""]

ENTRYPOINT ["hookline"]
CMD ["serve"]
