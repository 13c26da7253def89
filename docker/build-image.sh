#!/usr/bin/env bash
# docker/build-image.sh [BUILD_DIR] [TAG]   (what `make image` runs)
#
# Builds the mlops image without pulling anything: a FROM scratch image
# holding the programs of BUILD_DIR (default: build) -- the coordinator,
# the worker, mlopsctl, and mlops-serve where the build has it --, every
# shared library `ldd` says they load, and the dynamic loader. No CA
# bundle, no shell. It runs as the user mlops (uid/gid 10001, from the
# passwd and group files written here), keeps its data in the volume
# /data, reads its keys from /keys, and its HEALTHCHECK is `mlopsctl
# ping` (the coordinator answers this container's key). It gets the tag
# docker-compose.yml uses (default mlops:latest, or $MLOPS_IMAGE), so
# `docker-compose up` runs it as it would run the image docker/Dockerfile
# makes. Use it where no registry is reachable; with a registry,
# `docker compose build` (docker/Dockerfile) is the ordinary way.
#
# With MLOPS_PROM_IMAGE set (make image sets mlops-prometheus:latest) and
# Debian's prometheus installed, it also builds that second image the
# same way: /usr/bin/prometheus and its libraries on scratch, for the
# compose profile "prometheus" (docker/prometheus.yml is its config).
#
# The image only runs on machines like the one that built BUILD_DIR
# (same CPU family: the build uses -mtune=native), which is what a local
# image is for.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="$(cd "${1:-$ROOT/build}" && pwd)"
TAG="${2:-${MLOPS_IMAGE:-mlops:latest}}"
PROGS="mlops-coordinator mlops-worker mlopsctl"
MLOPS_UID=10001

for p in $PROGS; do
    [ -x "$BUILD/$p" ] || { echo "build-image: $BUILD/$p is not built (cmake --build $BUILD)" >&2; exit 2; }
done
# mlops-serve is optional: the image has it once the build makes it
if [ -x "$BUILD/mlops-serve" ]; then
    PROGS="$PROGS mlops-serve"
else
    echo "build-image: $BUILD/mlops-serve is not built: this image has no mlops-serve (compose profile serve needs it)" >&2
fi
command -v docker >/dev/null || { echo "build-image: no docker command" >&2; exit 2; }
docker info >/dev/null 2>&1 || { echo "build-image: the docker daemon does not answer" >&2; exit 3; }

CTX="$(mktemp -d "${TMPDIR:-/tmp}/mlops-image.XXXXXX")"
trap 'rm -rf "$CTX"' EXIT
R="$CTX/rootfs"
mkdir -p "$R/usr/local/bin" "$R/tmp" "$R/etc" "$R/keys" "$CTX/data"
chmod 1777 "$R/tmp"
for p in $PROGS; do
    cp "$BUILD/$p" "$R/usr/local/bin/"
    strip --strip-debug "$R/usr/local/bin/$p" 2>/dev/null || true
done

# copy_libs ROOT LIBDIR FILE...: the libraries ldd lists for the FILEs
# into ROOT/LIBDIR, the loader at its own path. ldd prints "name => /path
# (addr)" lines; the loader is the line that starts with a path. cp -L
# follows Debian's alternatives symlinks (libopenblas.so.0) to the real
# file, stored under the soname.
copy_libs() {
    local root="$1" libdir="$2" loader="" a b c
    shift 2
    mkdir -p "$root$libdir"
    while read -r a b c _; do
        if [ "$b" = "=>" ] && [ -f "$c" ]; then
            cp -L "$c" "$root$libdir/$a"
        elif [ "${a#/}" != "$a" ] && [ -f "$a" ]; then
            loader="$a"
        fi
    done < <(for p in "$@"; do ldd "$p"; done | sort -u)
    [ -n "$loader" ] || { echo "build-image: ldd named no dynamic loader for $*" >&2; exit 1; }
    mkdir -p "$root$(dirname "$loader")"
    cp -L "$loader" "$root$loader"
}
progs=()
for p in $PROGS; do progs+=("$BUILD/$p"); done
copy_libs "$R" /usr/local/lib/mlops "${progs[@]}"

# Name resolution (ZeroMQ connects to service names) needs no NSS module
# on glibc >= 2.34: files and dns are built in; docker mounts hosts and
# resolv.conf. The daemons run as mlops, never as root.
printf 'root:x:0:0:root:/root:/nonexistent\nmlops:x:%s:%s:mlops:/data:/nonexistent\n' \
    "$MLOPS_UID" "$MLOPS_UID" >"$R/etc/passwd"
printf 'root:x:0:\nmlops:x:%s:\n' "$MLOPS_UID" >"$R/etc/group"
echo "hosts: files dns" >"$R/etc/nsswitch.conf"

cat >"$CTX/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY rootfs/ /
# the data directory belongs to the user the daemons run as; a named
# volume mounted there starts with this ownership
COPY --chown=10001:10001 data/ /data/
ENV PATH=/usr/local/bin LD_LIBRARY_PATH=/usr/local/lib/mlops OPENBLAS_NUM_THREADS=1 \
    MLOPS_COORDINATOR=tcp://127.0.0.1:5555 MLOPS_KEY=/keys/client.key \
    MLOPS_SERVER_KEY=/keys/coordinator.key
USER mlops
VOLUME ["/data"]
EXPOSE 5555
# SIGTERM drains: a worker hands its tasks back, the coordinator commits
STOPSIGNAL SIGTERM
# the coordinator answers this container's key (compose gives each
# service its key and the coordinator's endpoint in MLOPS_KEY and
# MLOPS_COORDINATOR; a worker pings with its worker key)
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 \
    CMD ["mlopsctl", "--timeout", "3000", "ping"]
# keys from /keys (`mlopsctl keygen --cluster --out DIR`, mounted there)
CMD ["mlops-coordinator", "--bind", "tcp://0.0.0.0:5555", "--data-dir", "/data", "--cert", "/keys/coordinator.key", "--worker-keys", "/keys/workers", "--client-keys", "/keys/clients"]
DOCKERFILE
# (the legacy builder's deprecation notice is noise here: show the
# output only when the build fails)
if ! docker build -q -t "$TAG" "$CTX" >"$CTX/build.log" 2>&1; then
    cat "$CTX/build.log" >&2
    echo "build-image: docker build failed" >&2
    exit 1
fi
echo "build-image: $TAG ($(du -sh "$R" | cut -f1) from $BUILD: $PROGS)"

# ------------------------------------------- the Prometheus image (optional)
[ -n "${MLOPS_PROM_IMAGE:-}" ] || exit 0
PROM="$(command -v prometheus || true)"
if [ -z "$PROM" ]; then
    echo "build-image: no prometheus program (Debian's prometheus): $MLOPS_PROM_IMAGE not built" >&2
    exit 0
fi
P="$CTX/prom"
mkdir -p "$P/rootfs/usr/bin" "$P/rootfs/etc/prometheus" "$P/rootfs/tmp" "$P/prometheus-data"
chmod 1777 "$P/rootfs/tmp"
cp -L "$PROM" "$P/rootfs/usr/bin/prometheus"
copy_libs "$P/rootfs" /usr/local/lib/prom "$PROM"
cp "$ROOT/docker/prometheus.yml" "$P/rootfs/etc/prometheus/prometheus.yml"
cp "$R/etc/passwd" "$R/etc/group" "$R/etc/nsswitch.conf" "$P/rootfs/etc/"
cat >"$P/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY rootfs/ /
COPY --chown=10001:10001 prometheus-data/ /prometheus/
ENV LD_LIBRARY_PATH=/usr/local/lib/prom
USER mlops
VOLUME ["/prometheus"]
EXPOSE 9090
ENTRYPOINT ["/usr/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus", "--web.listen-address=0.0.0.0:9090"]
DOCKERFILE
if ! docker build -q -t "$MLOPS_PROM_IMAGE" "$P" >"$CTX/build-prom.log" 2>&1; then
    cat "$CTX/build-prom.log" >&2
    echo "build-image: docker build of $MLOPS_PROM_IMAGE failed" >&2
    exit 1
fi
echo "build-image: $MLOPS_PROM_IMAGE ($(du -sh "$P/rootfs" | cut -f1), $PROM)"
