#!/usr/bin/env bash
# make test-fresh: `make test` as a new user's fresh machine would run it.
#
# Builds a clean Debian bookworm root with debootstrap (minbase, from the
# mirror apt is configured with here), copies this checkout's files into
# it (tracked and untracked-but-not-ignored: what a clone of this tree
# would hold, with no build directory), mounts /proc, /sys and /dev, and
# runs `make test` inside with chroot. The only package given beforehand
# is `make` itself, which a user types `make test` with. Everything else
# must come from scripts/install-deps.sh: a package installed here by
# hand cannot hide a missing install step. Cleans up after itself.
#
#   MLOPS_FRESH_DIR=DIR   where to build the root (default: a new dir in /var/tmp)
#   MLOPS_FRESH_KEEP=1    keep the root afterwards (for a look inside)
#   MLOPS_FRESH_TARGET=T  the make target to run inside (default: test)
set -euo pipefail
SRC="$(cd "$(dirname "$0")/.." && pwd)"
[ "$(id -u)" -eq 0 ] || { echo "test-fresh: needs root (debootstrap, chroot and mounts)" >&2; exit 1; }
bash "$SRC/scripts/install-deps.sh" --fresh
start=$SECONDS

# The mirror apt uses here (deb822 .sources, or a classic sources.list line).
mirror="$(awk '/^URIs:/ && !/security/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)"
[ -n "$mirror" ] || mirror="$(awk '$1 == "deb" && $3 ~ /^bookworm$/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)"
[ -n "$mirror" ] || mirror="http://deb.debian.org/debian"

ROOT="${MLOPS_FRESH_DIR:-$(mktemp -d /var/tmp/mlops-fresh.XXXXXX)}"
mkdir -p "$ROOT"
# mktemp makes it 0700: the root of a machine is 0755, and packages whose
# scripts run as their own user (munge's postinst) need to reach /bin/sh
chmod 0755 "$ROOT"
mounted=()
cleanup() {
    local rc=$?
    for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[i]}" 2>/dev/null || true; done
    # and whatever the tests mounted inside (ip netns makes ROOT/run/netns a mount)
    awk -v r="$ROOT/" 'index($2, r) == 1 {print $2}' /proc/mounts | sort -r |
        while read -r m; do umount -l "$m" 2>/dev/null || true; done
    if [ "${MLOPS_FRESH_KEEP:-0}" = 1 ]; then
        echo "test-fresh: kept $ROOT"
    else
        rm -rf --one-file-system "$ROOT"
    fi
    echo "test-fresh: $( [ $rc -eq 0 ] && echo passed || echo "FAILED (exit $rc)") in $((SECONDS - start)) s"
    exit $rc
}
trap cleanup EXIT

echo "test-fresh: debootstrap bookworm (minbase) from $mirror into $ROOT"
debootstrap --variant=minbase bookworm "$ROOT" "$mirror" >"$ROOT.debootstrap.log" 2>&1 ||
    { tail -20 "$ROOT.debootstrap.log" >&2; exit 1; }
rm -f "$ROOT.debootstrap.log"
# The same package sources as this machine (updates and security too).
if ls /etc/apt/sources.list.d/*.sources >/dev/null 2>&1; then
    rm -f "$ROOT/etc/apt/sources.list"
    cp /etc/apt/sources.list.d/*.sources "$ROOT/etc/apt/sources.list.d/"
fi
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"

mkdir -p "$ROOT/src"
(cd "$SRC" && git ls-files -z --cached --others --exclude-standard | tar -cf - --null --no-recursion -T -) |
    tar -xf - -C "$ROOT/src"
echo "test-fresh: copied $(cd "$ROOT/src" && find . -type f | wc -l) files of the checkout"

for m in proc sys dev dev/pts; do
    mkdir -p "$ROOT/$m"
    case $m in
        proc) mount -t proc proc "$ROOT/proc" ;;
        sys) mount -t sysfs sys "$ROOT/sys" ;;
        dev) mount --bind /dev "$ROOT/dev" ;;
        dev/pts) mount -t devpts devpts "$ROOT/dev/pts" -o newinstance,ptmxmode=0666 ;;
    esac
    mounted+=("$ROOT/$m")
done
mkdir -p "$ROOT/dev/shm" 2>/dev/null || true

run_in() {
    chroot "$ROOT" /usr/bin/env -i HOME=/root TERM=dumb CI=true LANG=C.UTF-8 \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin /bin/bash -c "$1"
}
run_in 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends make >/dev/null'
echo "test-fresh: running make ${MLOPS_FRESH_TARGET:-test} in the fresh root"
run_in "cd /src && make ${MLOPS_FRESH_TARGET:-test}"
