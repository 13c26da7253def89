#!/usr/bin/env bash
# docker/build-image.sh [BUILD_DIR] [TAG]
#
# Builds the mlops image without pulling anything: a FROM scratch image
# holding the three programs of BUILD_DIR (default: build), every shared
# library `ldd` says they load, and the dynamic loader. It gets the tag
# docker-compose.yml uses (default mlops:latest, or $MLOPS_IMAGE), so
# `docker-compose up` runs it as it would run the image docker/Dockerfile
# makes. Use it where no registry is reachable; with a registry,
# `docker compose build` (docker/Dockerfile) is the ordinary way.
#
# The image only runs on machines like the one that built BUILD_DIR
# (same CPU family: the build uses -mtune=native), which is what a local
# image is for.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="$(cd "${1:-$ROOT/build}" && pwd)"
TAG="${2:-${MLOPS_IMAGE:-mlops:latest}}"
PROGS="mlops-coordinator mlops-worker mlopsctl mlops-serve"

for p in $PROGS; do
    [ -x "$BUILD/$p" ] || { echo "build-image: $BUILD/$p is not built (cmake --build $BUILD)" >&2; exit 2; }
done
command -v docker >/dev/null || { echo "build-image: no docker command" >&2; exit 2; }
docker info >/dev/null 2>&1 || { echo "build-image: the docker daemon does not answer" >&2; exit 3; }

CTX="$(mktemp -d "${TMPDIR:-/tmp}/mlops-image.XXXXXX")"
trap 'rm -rf "$CTX"' EXIT
R="$CTX/rootfs"
mkdir -p "$R/usr/local/bin" "$R/usr/local/lib/mlops" "$R/lib64" "$R/data" "$R/tmp" "$R/etc"
chmod 1777 "$R/tmp"
for p in $PROGS; do
    cp "$BUILD/$p" "$R/usr/local/bin/"
    strip --strip-debug "$R/usr/local/bin/$p" 2>/dev/null || true
done

# Libraries: "name => /path (addr)" lines; the loader is the line that
# starts with a path. cp -L follows Debian's alternatives symlinks
# (libopenblas.so.0) to the real file, stored under the soname.
loader=""
while read -r a b c _; do
    if [ "$b" = "=>" ] && [ -f "$c" ]; then
        cp -L "$c" "$R/usr/local/lib/mlops/$a"
    elif [ "${a#/}" != "$a" ] && [ -f "$a" ]; then
        loader="$a"
    fi
done < <(for p in $PROGS; do ldd "$BUILD/$p"; done | sort -u)
[ -n "$loader" ] || { echo "build-image: ldd named no dynamic loader" >&2; exit 1; }
mkdir -p "$R$(dirname "$loader")"
cp -L "$loader" "$R$loader"
# Name resolution (ZeroMQ connects to service names) needs no NSS module
# on glibc >= 2.34: files and dns are built in; docker mounts hosts and
# resolv.conf. A minimal passwd lets tools print a user name.
echo "root:x:0:0:root:/data:/nonexistent" >"$R/etc/passwd"
echo "hosts: files dns" >"$R/etc/nsswitch.conf"

cat >"$CTX/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY rootfs/ /
ENV PATH=/usr/local/bin LD_LIBRARY_PATH=/usr/local/lib/mlops OPENBLAS_NUM_THREADS=1
EXPOSE 5555
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
echo "build-image: $TAG ($(du -sh "$R" | cut -f1) from $BUILD)"
