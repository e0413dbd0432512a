#!/usr/bin/env bash
# Puts into .device/deps/ (git-ignored) what a bare GPU machine with CMake + nvcc lacks to build the
# tests and benchmarks OFFLINE: the sources of GoogleTest and Google Benchmark, as Debian ships
# them (source packages `googletest` and `benchmark`, upstream tarballs, no Debian patches needed).
# scripts/device-check.sh builds and installs them there into build/device-deps/ with the
# machine's own compiler — robust against an unknown OS image, unlike prebuilt .debs whose
# glibc / libstdc++ may not match.
#
# Run it HERE (a machine that reaches Debian's mirrors), then hand `.device/deps` to the GPU
# machine with the working tree (the lending tool copies ignored paths only when told: carry
# ".device/deps").  About 6 MB unpacked.
#
# Usage: scripts/prepare-device-deps.sh [--force]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
deps=$root/.device/deps
force=0
[ "${1:-}" = "--force" ] && force=1

if [ $force = 0 ] && [ -f "$deps/src/googletest/CMakeLists.txt" ] &&
  [ -f "$deps/src/benchmark/CMakeLists.txt" ]; then
  echo "prepare-device-deps: $deps already holds googletest and benchmark (--force to refetch)"
  exit 0
fi
rm -rf "$deps"
mkdir -p "$deps/dl" "$deps/src"

# A private apt configuration with deb-src entries, so that the system's sources and package
# lists stay untouched.
apt_dir=$(mktemp -d)
trap 'rm -rf "$apt_dir"' EXIT
mkdir -p "$apt_dir/lists/partial" "$apt_dir/parts"
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
cat >"$apt_dir/parts/deb-src.sources" <<EOF
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: $codename
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
apt_opts=(-o "Dir::Etc::SourceList=/dev/null" -o "Dir::Etc::SourceParts=$apt_dir/parts"
  -o "Dir::State::Lists=$apt_dir/lists" -o "Debug::NoLocking=1")
echo "prepare-device-deps: fetching the source packages googletest and benchmark ($codename)"
apt-get "${apt_opts[@]}" update -qq 2>&1 | grep -Ev "^W: (.*Unable to read /dev/null|Download is performed)" || true
(cd "$deps/dl" && apt-get "${apt_opts[@]}" source --download-only googletest benchmark 2>&1 |
  grep -Ev "^(Reading|Need to get|NOTICE|Please use|git clone|https://|to retrieve|W: Download is performed)" || true)

unpack() { # $1 = package, $2 = target folder name
  local tarball
  tarball=$(ls "$deps/dl/$1"_*.orig.tar.* 2>/dev/null | head -n1 || true)
  if [ -z "$tarball" ]; then
    echo "prepare-device-deps: no upstream tarball for $1 was downloaded" >&2
    return 1
  fi
  mkdir -p "$deps/src/$2"
  tar -xf "$tarball" -C "$deps/src/$2" --strip-components=1
  echo "prepare-device-deps: $2 <- $(basename "$tarball")"
}

ok=1
unpack googletest googletest || ok=0
unpack benchmark benchmark || ok=0
if [ $ok = 0 ] && [ ! -f "$deps/src/googletest/CMakeLists.txt" ] &&
  [ -f /usr/src/googletest/CMakeLists.txt ]; then
  # Fallback: the `googletest` binary package ships its sources.
  cp -r /usr/src/googletest/. "$deps/src/googletest/"
  echo "prepare-device-deps: googletest <- /usr/src/googletest (package googletest)"
fi
rm -rf "$deps/dl"
if [ ! -f "$deps/src/googletest/CMakeLists.txt" ] || [ ! -f "$deps/src/benchmark/CMakeLists.txt" ]; then
  echo "prepare-device-deps: FAILED: $deps is incomplete (no network to Debian's mirrors?)" >&2
  exit 1
fi
cat >"$deps/README" <<EOF
Sources for an offline build on the GPU machine, from Debian's source packages ($codename):
  src/googletest  (googletest: GoogleTest + GoogleMock)
  src/benchmark   (benchmark: Google Benchmark)
Made by scripts/prepare-device-deps.sh; built and installed by scripts/device-check.sh.
EOF
echo "prepare-device-deps: done, $(du -sh "$deps" | cut -f1) in $deps"
echo "  hand it to the GPU machine with the working tree (lending tool: carry [\".device/deps\"]),"
echo "  then run there: scripts/device-check.sh"
