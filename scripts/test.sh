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
# Operating tests (crates/kpki-cli/tests/integration/operate.rs), without recommends (they would
# add minutes):
# promtool checks the metrics and alert rules, Chromium renders the HTML report, systemd-analyze
# checks the units, tmux shows `kpki tree` in a terminal, man and groff render the man page.
lean=()
command -v promtool >/dev/null 2>&1 || lean+=(prometheus)
command -v chromium >/dev/null 2>&1 || lean+=(chromium)
command -v systemd-analyze >/dev/null 2>&1 || lean+=(systemd)
command -v tmux >/dev/null 2>&1 || lean+=(tmux)
command -v man >/dev/null 2>&1 || lean+=(man-db)
command -v groff >/dev/null 2>&1 || lean+=(groff-base)
if [ ${#need[@]} -gt 0 ] || [ ${#lean[@]} -gt 0 ]; then
  echo "installing: ${need[*]} ${lean[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  if [ ${#need[@]} -gt 0 ]; then $SUDO apt-get install -y -qq "${need[@]}" >/dev/null; fi
  if [ ${#lean[@]} -gt 0 ]; then
    $SUDO apt-get install -y -qq --no-install-recommends "${lean[@]}" >/dev/null
  fi
fi

# check-expiration's YAML output is read back with PyYAML (an independent parser); the join bundle
# is decrypted with the `cryptography` package's AESGCM (an independent AES-GCM), which also reads
# certificate fields for the metrics tests; the metrics are parsed with the Prometheus client's own
# parser.
python3 -c 'import yaml' 2>/dev/null || python3 -m pip install -q pyyaml
python3 -c 'import cryptography.hazmat.primitives.ciphers.aead' 2>/dev/null || python3 -m pip install -q cryptography
python3 -c 'import prometheus_client' 2>/dev/null || python3 -m pip install -q prometheus_client

cargo test --workspace --all-targets "$@"
# Doctests (`--all-targets` leaves them out) and the installer example, which runs the library
# end to end (init, verify, three workers, check-expiration) in a temporary directory.
cargo test --workspace --doc
cargo run -q -p kpki --example installer >/dev/null

# RFC 5280 lint of every certificate kpki issues (pkilint from PyPI, in target/pkilint-venv).
bash scripts/pkilint.sh
