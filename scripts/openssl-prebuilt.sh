#!/usr/bin/env bash
# Builds the vendored OpenSSL once (scripts/openssl-prebuild: openssl-src, the version the root
# Cargo.lock names, in target/openssl-prebuild) and prints the shell lines that make every later
# cargo command link that build instead of building its own:
#   export OPENSSL_DIR=<install dir> OPENSSL_STATIC=1 OPENSSL_NO_VENDOR=1
# Why: openssl-sys's build script runs once per kind of build (`cargo clippy`/`check` and `cargo
# build`/`test` each build OpenSSL, about 5 minutes on two cores), so CI would build it twice
# or more. With these variables set, the build script only links the prebuilt static libraries.
# They must be the same for every cargo command of a run: a change re-runs openssl-sys's build
# script and rebuilds what depends on it.
# Usage: eval "$(bash scripts/openssl-prebuilt.sh)"      (.ci/run does this)
set -euo pipefail
cd "$(dirname "$0")/.."

ver() { # the openssl-src version in a lock file
  awk '/^name = "openssl-src"$/ { getline; gsub(/version = |"/, ""); print }' "$1"
}
want=$(ver Cargo.lock)
have=$(ver scripts/openssl-prebuild/Cargo.lock)
if [ -z "$want" ] || [ "$want" != "$have" ]; then
  echo "openssl-prebuilt: Cargo.lock has openssl-src '$want' but scripts/openssl-prebuild/Cargo.lock has '$have'" >&2
  exit 2
fi
dir=$(cargo run -q --locked --manifest-path scripts/openssl-prebuild/Cargo.toml \
  --target-dir target/openssl-prebuild)
test -f "$dir/include/openssl/opensslv.h" || { echo "openssl-prebuilt: no headers under $dir" >&2; exit 2; }
echo "export OPENSSL_DIR='$dir' OPENSSL_STATIC=1 OPENSSL_NO_VENDOR=1"
