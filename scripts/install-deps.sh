#!/usr/bin/env bash
# Installs the Debian packages mlops needs to build, test and benchmark,
# but only those missing, so a second run costs nothing.
set -euo pipefail
PKGS="build-essential cmake pkg-config libczmq-dev libzmq3-dev libprotobuf-c-dev protobuf-c-compiler
liblmdb-dev libopenblas-dev libyaml-dev libcmocka-dev zlib1g-dev libjansson-dev
python3 python3-numpy python3-pandas python3-sklearn python3-yaml"
if [ "${1:-}" = "--bench" ]; then
  PKGS="$PKGS python3-distributed python3-faiss dataset-fashion-mnist"
fi
if [ "${1:-}" = "--demo" ] || [ "${1:-}" = "--test" ] || [ "${1:-}" = "--bench" ]; then
  PKGS="$PKGS dataset-fashion-mnist"
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
