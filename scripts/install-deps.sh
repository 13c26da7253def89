#!/usr/bin/env bash
# Installs the Debian packages mlops needs, from the one table below
# (between <<'DEPS' and DEPS), but only those missing, so a second run
# costs nothing.
#   install-deps.sh            build
#   install-deps.sh --test     build + test (make test, make demo)
#   install-deps.sh --demo     the same as --test
#   install-deps.sh --bench    build + test + bench
#   install-deps.sh --fresh    build + fresh (make test-fresh)
#   install-deps.sh --list SET print a set's packages and exit
set -euo pipefail
sets="build"
case "${1:-}" in
  "") ;;
  --test | --demo) sets="build test" ;;
  --bench) sets="build test bench" ;;
  --fresh) sets="build fresh" ;;
  --list) sets="${2:?--list needs a set name}" ;;
  *) echo "install-deps: unknown option '$1' (expected --test, --demo, --bench, --fresh or --list SET)" >&2; exit 2 ;;
esac
deps_table() {
    cat <<'DEPS'
# this table: every Debian package mlops uses, in one table.
#
# Read by scripts/install-deps.sh (which installs the `pkg` rows of the
# sets it is asked for) and by scripts/check-deps.py (run first by
# `make test`), which fails when a Python module imported under tests/,
# bench/ or examples/, or a program the test scripts call, is not
# provided by a package listed here for the right set. So a test that
# starts using a new module or program cannot pass here and then fail on
# a fresh machine: add its row.
#
# Rows (whitespace-separated):
#   pkg  SET     PACKAGE      installed by `install-deps.sh --SET`
#   py   MODULE  PACKAGE      the Debian package of a top-level Python module
#   prog NAME    PACKAGE      the Debian package of a program the scripts run
# Sets: build (always), test (make test, make demo), bench (make bench),
# fresh (make test-fresh). --test includes build; --bench includes test.

pkg build build-essential
pkg build cmake
pkg build pkg-config
pkg build libczmq-dev
pkg build libzmq3-dev
pkg build libprotobuf-c-dev
pkg build protobuf-c-compiler
pkg build liblmdb-dev
pkg build libopenblas-dev
pkg build libyaml-dev
pkg build libcmocka-dev
pkg build zlib1g-dev
pkg build libjansson-dev
pkg build libsodium-dev
pkg build libzstd-dev
pkg build libmicrohttpd-dev
pkg build python3
pkg build python3-minimal

pkg test python3-numpy
pkg test python3-pandas
pkg test python3-scipy
pkg test python3-sklearn
pkg test python3-threadpoolctl
pkg test python3-yaml
pkg test python3-zmq
pkg test python3-psutil
pkg test dataset-fashion-mnist
pkg test docker.io
pkg test docker-compose
pkg test iproute2
pkg test procps
pkg test clang
# clang only recommends its sanitizer and libFuzzer runtimes, and we install
# without recommends (make test-fresh found it)
pkg test libclang-rt-14-dev
pkg test tcpdump
pkg test zstd
pkg test valgrind
pkg test prometheus
pkg test chromium
pkg test curl
pkg test slurm-wlm
pkg test slurmctld
pkg test slurmd
pkg test slurm-client
pkg test munge
pkg test systemd

pkg bench python3-dask
pkg bench python3-distributed
pkg bench python3-faiss
pkg bench wrk
pkg bench python3-flask
pkg bench gunicorn

pkg fresh debootstrap

py numpy         python3-numpy
py pandas        python3-pandas
py scipy         python3-scipy
py sklearn       python3-sklearn
py threadpoolctl python3-threadpoolctl
py yaml          python3-yaml
py zmq           python3-zmq
py psutil        python3-psutil
py dask          python3-dask
py distributed   python3-distributed
py faiss         python3-faiss
py flask         python3-flask

# Programs from packages of Priority required (coreutils, grep, sed,
# mawk, findutils, ...: on every Debian system, debootstrap's minbase too)
# need no row; check-deps.py asks dpkg. Every other program does.
prog docker         docker.io
prog dockerd        docker.io
prog docker-compose docker-compose
prog cmake          cmake
prog ctest          cmake
prog make           make
prog ps             procps
prog pgrep          procps
prog pkill          procps
prog ip             iproute2
prog ss             iproute2
prog debootstrap    debootstrap
prog valgrind       valgrind
prog python3        python3-minimal
prog gzip           gzip
prog zstd           zstd
prog strip          binutils
prog clang          clang
prog tcpdump        tcpdump
prog prometheus     prometheus
prog chromium       chromium
prog curl           curl
prog wrk            wrk
prog gunicorn       gunicorn
prog slurmctld      slurmctld
prog slurmd         slurmd
prog srun           slurm-client
prog sbatch         slurm-client
prog sinfo          slurm-client
prog squeue         slurm-client
prog scontrol       slurm-client
prog munged         munge
prog mungekey       munge
prog systemd-analyze systemd
DEPS
}

PKGS=""
for s in $sets; do
  PKGS="$PKGS $(deps_table | awk -v s="$s" '$1 == "pkg" && $2 == s { printf "%s ", $3 }')"
done
if [ "${1:-}" = "--list" ]; then
  echo $PKGS
  exit 0
fi
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "install-deps: installing:$missing"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
fi
