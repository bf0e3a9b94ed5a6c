#!/usr/bin/env bash
# Installs what the tests need (Debian packages) and runs every test in the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
need=()
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v etcd >/dev/null 2>&1 || need+=(etcd-server)
command -v etcdctl >/dev/null 2>&1 || need+=(etcd-client)
command -v kubectl >/dev/null 2>&1 || need+=(kubernetes-client)
command -v strace >/dev/null 2>&1 || need+=(strace)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v unshare >/dev/null 2>&1 || need+=(util-linux)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

# check-expiration's YAML output is read back with PyYAML (an independent parser); the join bundle
# is decrypted with the `cryptography` package's AESGCM (an independent AES-GCM).
python3 -c 'import yaml' 2>/dev/null || python3 -m pip install -q pyyaml
python3 -c 'import cryptography.hazmat.primitives.ciphers.aead' 2>/dev/null || python3 -m pip install -q cryptography

cargo test --workspace --all-targets "$@"

# RFC 5280 lint of every certificate kpki issues (pkilint from PyPI, in target/pkilint-venv).
bash scripts/pkilint.sh
