# syntax=docker/dockerfile:1
#
# spark-executor image: one fully static musl binary on distroless/static (no libc, no shell,
# no package manager), running as uid 65532.
#
#   docker build --build-arg VERSION=v0.3.3 -t spark-executor:v0.3.3 .
#   docker run --rm -p 4001:4001 -p 9464:9464 \
#     -v "$PWD/runtime/tenants.json:/etc/spark/tenants.json:ro" spark-executor:v0.3.3
#
# docs/DEPLOYMENT.md has the build, push and deploy steps; tests/docker/lint.sh lints this file.

# ---- build stage: static binary --------------------------------------------------------------
# Alpine >= 3.18 is required for musl >= 1.2.4 (DNS over TCP for large answers); pinned to a
# patch release so that rebuilds get the same toolchain.
FROM alpine:3.23.2 AS build

# Headers and pkg-config files (-dev) plus the static archives (-static) of every library the
# binary links. libcurl's Libs.private pulls in nghttp2, zlib, brotli, zstd, c-ares, libidn2,
# libpsl and libunistring, so each of them must be present as an archive too (c-ares and
# hiredis ship their .a in the -dev package).
RUN apk add --no-cache \
        binutils \
        build-base \
        linux-headers \
        pkgconf \
        libevent-dev libevent-static \
        jansson-dev jansson-static \
        curl-dev curl-static \
        openssl-dev openssl-libs-static \
        hiredis-dev \
        nghttp2-dev nghttp2-static \
        zlib-dev zlib-static \
        brotli-dev brotli-static \
        zstd-dev zstd-static \
        c-ares-dev \
        libidn2-dev libidn2-static \
        libpsl-dev libpsl-static \
        libunistring-dev libunistring-static

# Fail here, naming the archive, rather than later with a page of undefined symbols.
RUN set -eu; missing=""; \
    for lib in $(pkg-config --static --libs-only-l libevent jansson libcurl hiredis openssl \
                 | tr ' ' '\n' | sed -n 's/^-l//p' | sort -u); do \
        case "$lib" in c|m|dl|rt|pthread) continue ;; esac; \
        [ -e "/usr/lib/lib$lib.a" ] || [ -e "/lib/lib$lib.a" ] || missing="$missing lib$lib.a"; \
    done; \
    if [ -n "$missing" ]; then echo "static archives missing:$missing" >&2; exit 1; fi

WORKDIR /src
COPY . .

# The version is stamped into the binary (there is no .git in the build context).
ARG VERSION=v0.3.3

# `make static` links with `pkg-config --static --libs`. Then prove the result is fully static
# (no program interpreter, no NEEDED entries) with a non-executable stack, strip it and run it.
RUN set -eu; \
    make static VERSION="$VERSION"; \
    if readelf --program-headers spark-executor | grep -q INTERP \
       || readelf --dynamic spark-executor | grep -q NEEDED; then \
        echo "spark-executor is not fully static" >&2; exit 1; \
    fi; \
    if ! readelf --wide --program-headers spark-executor | grep -q 'GNU_STACK.*RW '; then \
        echo "spark-executor has an executable stack" >&2; exit 1; \
    fi; \
    strip spark-executor; \
    ./spark-executor --version; \
    install -D -m 0555 spark-executor /out/spark-executor

# ---- runtime stage ---------------------------------------------------------------------------
# distroless/static: CA certificates, /etc/passwd with the user nonroot (65532), /tmp, tzdata;
# no libc and no shell, which a static binary does not need.
# Pinned by digest so that a rebuild cannot silently change the base. The digest is the one
# published for static-debian12:nonroot as of 2026-08-26 (as pinned by public projects that
# build on it); the build machines here cannot reach the registry to re-read it. Before the
# first production push, and to update it, read the current digest and replace the line:
#   crane digest gcr.io/distroless/static-debian12:nonroot
#   skopeo inspect --format '{{.Digest}}' docker://gcr.io/distroless/static-debian12:nonroot
FROM gcr.io/distroless/static-debian12:nonroot@sha256:afa5c872c891853ca7fcf1f12c3edb23f7eeef36189728842dd51042ff57f7ab

ARG VERSION=v0.3.3
LABEL org.opencontainers.image.title="spark-executor" \
      org.opencontainers.image.description="Multi-tenant trading-executor front door" \
      org.opencontainers.image.version="$VERSION"

COPY --from=build /out/spark-executor /spark-executor

ENV PORT=4001 \
    ADMIN_PORT=9464 \
    TENANT_KEYS_FILE=/etc/spark/tenants.json \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt

USER 65532:65532
EXPOSE 4001 9464

# Exec form: there is no shell. `spark-executor healthcheck` asks the local /healthz and exits
# 0 or 1. Kubernetes ignores HEALTHCHECK and uses the probes in k8s/deployment.yaml instead.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["/spark-executor", "healthcheck"]

ENTRYPOINT ["/spark-executor"]
CMD ["serve"]
