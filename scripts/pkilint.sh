#!/usr/bin/env bash
# RFC 5280 lint (pkilint's lint_pkix_cert + lint_pkix_signer_signee_cert_chain) of every certificate
# kpki issues: an RSA-2048 and an ECDSA-P256 tree from `kpki init`, the client certificates inside
# their kubeconfigs, a `kpki nodes --serving` node and a `kpki kubeconfig user` kubeconfig.
#
# Allowed (see docs/lint.md), everything else fails the run:
#   pkix.invalid_domain_name_syntax                 only for the single-label DNS SANs Kubernetes
#                                                   needs: kubernetes, localhost, the node names,
#                                                   and the CA names kubeadm puts in CA SANs
#   pkix.subject_key_identifier_method_1_identified INFO: pkilint recognising the RFC 5280 method 1
#                                                   SKI (SHA-1 of the key), which kpki uses as Go does
#
# Usage: scripts/pkilint.sh            (KPKI=path/to/kpki to use a given binary; default: builds
#                                       and uses target/debug/kpki)
# Creates target/pkilint-venv (pkilint 0.13.3 from PyPI) when missing. Exit 0: clean; 1: findings
# outside the allowlist; 2: could not run.
set -euo pipefail
cd "$(dirname "$0")/.."

PKILINT_VERSION=0.13.3
VENV=${PKILINT_VENV:-target/pkilint-venv}
start=$(date +%s)

if [ ! -x "$VENV/bin/lint_pkix_cert" ]; then
  if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
    echo "installing: python3-venv"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq python3-venv >/dev/null
  fi
  echo "== creating $VENV (pkilint $PKILINT_VERSION)"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "pkilint==$PKILINT_VERSION"
fi
"$VENV/bin/python" -c "import importlib.metadata as m, sys; v = m.version('pkilint'); sys.exit(0 if v == '$PKILINT_VERSION' else f'pkilint {v} in $VENV, expected $PKILINT_VERSION')"

if [ -z "${KPKI:-}" ]; then
  cargo build -q -p kpki-cli --bin kpki
  KPKI=target/debug/kpki
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

NODE=cp-1
WORKER=worker-1
for alg in ECDSA-P256 RSA-2048; do
  t="$work/$alg"
  common=(--apiserver-advertise-address 10.0.0.10 --encryption-algorithm "$alg")
  "$KPKI" init --cert-dir "$t/pki" --node-name "$NODE" "${common[@]}" \
    --apiserver-cert-extra-sans api.example.com,10.0.0.100 >/dev/null
  printf '%s,10.0.0.21\n' "$WORKER" >"$work/nodes-$alg.txt"
  "$KPKI" nodes --cert-dir "$t/pki" --nodes "$work/nodes-$alg.txt" --out-dir "$t/nodes" --serving \
    "${common[@]}" >/dev/null
  "$KPKI" kubeconfig user --cert-dir "$t/pki" --client-name jane --org developers \
    --out "$t/user-jane.conf" "${common[@]}" >/dev/null
done

"$VENV/bin/python" - "$work" "$VENV/bin" "$NODE" "$WORKER" <<'PY'
import base64, concurrent.futures, json, os, re, subprocess, sys
from collections import Counter

work, bindir, node, worker = sys.argv[1:5]
ALLOWED_NAMES = {"kubernetes", "localhost", node, worker, "etcd-ca", "front-proxy-ca"}
ALLOWED_CODES = {"pkix.subject_key_identifier_method_1_identified"}
NAME_RE = re.compile(r'Invalid domain name syntax: "([^"]*)"')
CERT_RE = re.compile(r"^\s*client-certificate-data:\s*(\S+)\s*$", re.M)

def die(msg):
    print(f"pkilint: {msg}", file=sys.stderr)
    sys.exit(2)

def allowed(code, message):
    if code in ALLOWED_CODES:
        return True
    if code == "pkix.invalid_domain_name_syntax":
        m = NAME_RE.fullmatch(message or "")
        return bool(m) and m.group(1) in ALLOWED_NAMES
    return False

def openssl_hash(what, cert):
    r = subprocess.run(["openssl", "x509", "-noout", what, "-in", cert], capture_output=True, text=True)
    if r.returncode != 0:
        die(f"{cert}: openssl x509 {what}: {r.stderr.strip()}")
    return r.stdout.strip()

def issuer_of(cas, cert):
    h = openssl_hash("-issuer_hash", cert)
    if h not in cas:
        die(f"{cert}: issued by none of the tree's CAs")
    return cas[h]

# (label, cert file, issuing CA file or None for a self-signed CA)
jobs = []
for alg in sorted(os.listdir(work)):
    t = os.path.join(work, alg)
    if not os.path.isdir(t):
        continue
    pki = os.path.join(t, "pki")
    cas = {}  # subject hash -> CA file: each issued cert is linted against the CA that names it
    for rel in ("ca.crt", "etcd/ca.crt", "front-proxy-ca.crt"):
        cas[openssl_hash("-subject_hash", os.path.join(pki, rel))] = os.path.join(pki, rel)
    n = 0
    for root, _, files in os.walk(t):
        for f in sorted(files):
            p = os.path.join(root, f)
            rel = os.path.relpath(p, pki) if p.startswith(pki + os.sep) else os.path.relpath(p, t)
            if f.endswith(".crt"):
                is_ca = rel in ("ca.crt", "etcd/ca.crt", "front-proxy-ca.crt")
                issuer = None if is_ca else issuer_of(cas, p)
                jobs.append((f"{alg}/{rel}", p, issuer)); n += 1
            elif f.endswith(".conf"):
                found = CERT_RE.findall(open(p).read())
                if len(found) != 1:
                    die(f"{p}: expected one client-certificate-data, found {len(found)}")
                out = p + ".client.crt"
                with open(out, "wb") as fh:
                    fh.write(base64.b64decode(found[0]))
                jobs.append((f"{alg}/{rel} (client cert)", out, issuer_of(cas, out))); n += 1
    # 3 CAs + 7 leaves + 5 kubeconfigs (init) + kubelet.conf and kubelet.crt (nodes) + user-jane.conf
    if n != 18:
        die(f"{alg}: linted {n} certificates, expected 18 (did kpki's output layout change?)")

def lint(job):
    label, cert, issuer = job
    cmds = [[os.path.join(bindir, "lint_pkix_cert"), "lint", "-s", "ALL", "-f", "JSON", cert]]
    if issuer:
        cmds.append([os.path.join(bindir, "lint_pkix_signer_signee_cert_chain"), "lint",
                     "-s", "ALL", "-f", "JSON", issuer, cert])
    found = []
    for cmd in cmds:
        r = subprocess.run(cmd, capture_output=True, text=True)
        try:
            doc = json.loads(r.stdout)
        except ValueError:
            die(f"{label}: {' '.join(cmd)} failed (exit {r.returncode}): {r.stderr.strip()}")
        for res in doc["results"]:
            for d in res["finding_descriptions"]:
                found.append((d["severity"], d["code"], d.get("message") or "", res["node_path"]))
    return label, found

with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as ex:
    results = list(ex.map(lint, jobs))

bad, ok = [], Counter()
for label, found in results:
    for sev, code, msg, path in found:
        if allowed(code, msg):
            ok[(code, msg)] += 1
        else:
            bad.append(f"{label}: {code} ({sev}) {msg} @ {path}")

print(f"pkilint: {len(results)} certificates linted (and each issued one against its CA)")
for (code, msg), c in sorted(ok.items()):
    print(f"  allowed x{c}: {code} {msg}")
if bad:
    print(f"pkilint: {len(bad)} finding(s) outside the allowlist:")
    for b in bad:
        print("  " + b)
    sys.exit(1)
print("pkilint: no finding outside the allowlist")
PY

# The linter must still see what it is meant to see: kubeadm's own leaves have no SKI.
out=$("$VENV/bin/lint_pkix_cert" lint fixtures/kubeadm-v1.28.4-rsa/pki/apiserver.crt || true)
if ! grep -q 'pkix.certificate_skid_end_entity_missing' <<<"$out"; then
  echo "pkilint self-check failed: the kubeadm fixture apiserver.crt should draw certificate_skid_end_entity_missing" >&2
  exit 2
fi
echo "== pkilint took $(( $(date +%s) - start ))s"
