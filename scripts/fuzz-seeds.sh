#!/usr/bin/env bash
# Rebuilds the checked-in seed corpus fuzz/corpus/<target>/ from the kubeadm fixture, the
# repository spec and a fresh ECDSA-P256 kpki tree (keys are new on every run, so only rerun it
# when the seeds should change). Usage: scripts/fuzz-seeds.sh (KPKI=path/to/kpki, default: builds
# and uses target/debug/kpki). Needs openssl.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${KPKI:-}" ]; then
  cargo build -q -p kpki-cli --bin kpki
  KPKI=target/debug/kpki
fi
FIX=fixtures/kubeadm-v1.28.4-rsa
C=fuzz/corpus
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The same tree as fuzz/fuzz_targets/verify_tree.rs builds.
"$KPKI" init --cert-dir "$work/t/pki" --kubeconfig-dir "$work/t" --node-name cp-1 \
  --apiserver-advertise-address 10.0.0.10 --encryption-algorithm ECDSA-P256 >/dev/null
T=$work/t

rm -rf "$C"
mkdir -p "$C"/{key_pem,cert_pem,cert_der,spec_toml,kubeconfig_yaml,kubeadm_config_yaml,verify_tree}

# Keys: PKCS#1 RSA and SEC1 EC as kubeadm/kpki write them, PKCS#8, P-384, an encrypted one.
cp "$FIX/pki/ca.key" "$C/key_pem/kubeadm-rsa-pkcs1.key"
cp "$T/pki/ca.key" "$C/key_pem/kpki-ec-sec1.key"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$C/key_pem/pkcs8-p256.key" 2>/dev/null
openssl ecparam -name secp384r1 -genkey -noout -out "$C/key_pem/sec1-p384.key" 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -aes128 -pass pass:x \
  -out "$C/key_pem/encrypted.key" 2>/dev/null

# Certificates: kubeadm's and kpki's CA, server and client certificates, and a two-cert chain.
for f in ca.crt apiserver.crt etcd/peer.crt front-proxy-client.crt; do
  n=$(echo "$f" | tr / -)
  cp "$FIX/pki/$f" "$C/cert_pem/kubeadm-$n"
  cp "$T/pki/$f" "$C/cert_pem/kpki-$n"
  openssl x509 -in "$FIX/pki/$f" -outform DER -out "$C/cert_der/kubeadm-${n%.crt}.der"
  openssl x509 -in "$T/pki/$f" -outform DER -out "$C/cert_der/kpki-${n%.crt}.der"
done
cat "$T/pki/apiserver.crt" "$T/pki/ca.crt" >"$C/cert_pem/kpki-chain.crt"

# Specs: the repository table and a minimal one (checked by a dry run).
cp certs-spec.toml "$C/spec_toml/certs-spec.toml"
cat >"$C/spec_toml/minimal.toml" <<'EOF'
version = 1

[[ca]]
name = "ca"
path = "ca"
cn = "kubernetes"
key_usages = ["digital_signature", "key_cert_sign"]
validity = "ca"

[[cert]]
name = "web"
path = "web"
ca = "ca"
cn = "{node_name}"
o = ["a", "b"]
key_usages = ["digital_signature"]
ext_key_usages = ["server_auth", "client_auth"]
sans = ["{node_name}.{dns_domain}", "{advertise_address}", "{apiserver_extra_sans}"]
validity = "cert"
EOF
"$KPKI" --spec "$C/spec_toml/minimal.toml" init --dry-run --cert-dir "$work/m" --node-name n1 \
  --apiserver-advertise-address 10.0.0.1 >/dev/null

# Kubeconfigs: kubeadm's and kpki's, a bootstrap (token) one.
cp "$FIX/kubeconfig/admin.conf" "$C/kubeconfig_yaml/kubeadm-admin.conf"
cp "$FIX/kubeconfig/kubelet.conf" "$C/kubeconfig_yaml/kubeadm-kubelet.conf"
cp "$T/admin.conf" "$C/kubeconfig_yaml/kpki-admin.conf"
cp "$T/kubelet.conf" "$C/kubeconfig_yaml/kpki-kubelet.conf"
"$KPKI" kubeconfig bootstrap --cert-dir "$T/pki" --apiserver-advertise-address 10.0.0.10 \
  --token abcdef.0123456789abcdef >"$C/kubeconfig_yaml/kpki-bootstrap.conf" 2>/dev/null || true

# kubeadm configs: the fixture (v1beta3) and a v1beta4 one with every field kpki reads.
cp "$FIX/kubeadm-config.yaml" "$C/kubeadm_config_yaml/kubeadm-v1beta3.yaml"
cat >"$C/kubeadm_config_yaml/v1beta4-full.yaml" <<'EOF'
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
clusterName: prod
controlPlaneEndpoint: "[2001:db8::10]:6443"
certificatesDir: /etc/kubernetes/pki
encryptionAlgorithm: ECDSA-P256
certificateValidityPeriod: 8760h0m0s
caCertificateValidityPeriod: 87600h0m0s
apiServer:
  certSANs: [api.prod.example.com, "2001:db8::10"]
etcd:
  local:
    serverCertSANs: [etcd-0.prod.example.com, 10.0.0.21]
    peerCertSANs: [10.0.0.21]
networking:
  serviceSubnet: 10.96.0.0/12,fd00:10:96::/112
  dnsDomain: prod.local
featureGates:
  PublicKeysECDSA: true
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
nodeRegistration:
  name: cp-a
localAPIEndpoint:
  advertiseAddress: "2001:db8::1"
  bindPort: 8443
---
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: systemd
EOF

# verify_tree: <file number><contents>, files numbered in path order as the target does.
python3 - "$T" "$C/verify_tree" <<'PY'
import os, sys
tree, out = sys.argv[1:3]
paths = []
for root, _, files in os.walk(tree):
    for f in files:
        if f.endswith((".crt", ".key", ".pub", ".conf")):
            paths.append(os.path.relpath(os.path.join(root, f), tree))
paths.sort(key=lambda p: p.split("/"))
for i, p in enumerate(paths):
    with open(os.path.join(tree, p), "rb") as fh:
        data = fh.read()
    with open(os.path.join(out, f"{i:02}-" + p.replace("/", "-")), "wb") as fh:
        fh.write(bytes([i]) + data)
PY
find "$C" -type f | wc -l | xargs echo "seed files:"
du -sh "$C"
