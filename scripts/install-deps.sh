#!/usr/bin/env bash
# Installs the Debian packages mlops needs, from the one table in
# scripts/deps.txt, but only those missing, so a second run costs nothing.
#   install-deps.sh            build
#   install-deps.sh --test     build + test (make test, make demo)
#   install-deps.sh --demo     the same as --test
#   install-deps.sh --bench    build + test + bench
#   install-deps.sh --fresh    build + fresh (make test-fresh)
#   install-deps.sh --list SET print a set's packages and exit
set -euo pipefail
DEPS="$(dirname "$0")/deps.txt"
sets="build"
case "${1:-}" in
  "") ;;
  --test | --demo) sets="build test" ;;
  --bench) sets="build test bench" ;;
  --fresh) sets="build fresh" ;;
  --list) sets="${2:?--list needs a set name}" ;;
  *) echo "install-deps: unknown option '$1' (expected --test, --demo, --bench, --fresh or --list SET)" >&2; exit 2 ;;
esac
PKGS=""
for s in $sets; do
  PKGS="$PKGS $(awk -v s="$s" '$1 == "pkg" && $2 == s { printf "%s ", $3 }' "$DEPS")"
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
