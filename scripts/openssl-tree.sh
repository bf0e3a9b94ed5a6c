#!/usr/bin/env bash
# Reference for scripts/bench.sh: the tree `kpki init` writes (3 CAs, 7 leaves, sa key pair,
# 5 kubeconfigs), built by hand with the openssl CLI the way the Kubernetes docs describe it
# ("PKI certificates and requirements", "Certificates: openssl"): a key, a CSR from a config
# file, `openssl x509 -req` signed by the CA; kubeconfigs with `kubectl config` and
# --embed-certs. Sequential, one command after another, as a person or a script would run them.
#
# Usage: scripts/openssl-tree.sh rsa|ecdsa OUT_DIR [kubectl|printf]
#   kubectl (default): kubeconfigs with kubectl config set-cluster/set-credentials/set-context,
#                      as the docs show;
#   printf:            kubeconfigs written directly (a leaner reference: openssl only).
set -euo pipefail

alg=${1:?usage: $0 rsa|ecdsa OUT_DIR [kubectl|printf]}
out=${2:?usage: $0 rsa|ecdsa OUT_DIR [kubectl|printf]}
kc_mode=${3:-kubectl}
node=cp-1
addr=10.0.0.10
cpe_host=k8s.example.internal
server="https://${cpe_host}:6443"
local_server="https://${addr}:6443"

pki="$out/pki"
mkdir -p "$pki/etcd"
umask 077

genkey() { # path
  if [ "$alg" = rsa ]; then
    openssl genrsa -traditional -out "$1" 2048 2>/dev/null
  else
    openssl ecparam -name prime256v1 -genkey -noout -out "$1"
  fi
}

if [ "$alg" = rsa ]; then ku="digitalSignature,keyEncipherment"; else ku="digitalSignature"; fi

ca() { # base cn
  genkey "$pki/$1.key"
  openssl req -x509 -new -key "$pki/$1.key" -subj "/CN=$2" -days 3650 -sha256 \
    -addext "keyUsage=critical,$ku,keyCertSign" -addext "subjectAltName=DNS:$2" \
    -out "$pki/$1.crt"
}

# leaf base ca_base subject eku [sans]
leaf() {
  local base=$1 cab=$2 subj=$3 eku=$4 sans=${5:-}
  local conf="$pki/$base.cnf"
  genkey "$pki/$base.key"
  {
    echo "[req]"
    echo "prompt = no"
    echo "distinguished_name = dn"
    echo "[dn]"
    echo "[v3_ext]"
    echo "keyUsage = critical,$ku"
    echo "extendedKeyUsage = $eku"
    echo "basicConstraints = critical,CA:FALSE"
    echo "authorityKeyIdentifier = keyid"
    echo "subjectKeyIdentifier = hash"
    if [ -n "$sans" ]; then echo "subjectAltName = $sans"; fi
  } >"$conf"
  openssl req -new -key "$pki/$base.key" -subj "$subj" -config "$conf" -out "$pki/$base.csr"
  openssl x509 -req -in "$pki/$base.csr" -CA "$pki/$cab.crt" -CAkey "$pki/$cab.key" \
    -CAcreateserial -out "$pki/$base.crt" -days 365 -sha256 \
    -extensions v3_ext -extfile "$conf" 2>/dev/null
  rm -f "$pki/$base.csr" "$conf"
}

ca ca kubernetes
ca front-proxy-ca front-proxy-ca
ca etcd/ca etcd-ca

leaf apiserver ca "/CN=kube-apiserver" serverAuth \
  "DNS:$node,DNS:$cpe_host,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:10.96.0.1,IP:$addr"
leaf apiserver-kubelet-client ca "/O=kubeadm:cluster-admins/CN=kube-apiserver-kubelet-client" clientAuth
leaf front-proxy-client front-proxy-ca "/CN=front-proxy-client" clientAuth
leaf etcd/server etcd/ca "/CN=$node" serverAuth,clientAuth "DNS:$node,DNS:localhost,IP:$addr,IP:127.0.0.1,IP:::1"
leaf etcd/peer etcd/ca "/CN=$node" serverAuth,clientAuth "DNS:$node,DNS:localhost,IP:$addr,IP:127.0.0.1,IP:::1"
leaf etcd/healthcheck-client etcd/ca "/CN=kube-etcd-healthcheck-client" clientAuth
leaf apiserver-etcd-client etcd/ca "/CN=kube-apiserver-etcd-client" clientAuth

genkey "$pki/sa.key"
openssl pkey -in "$pki/sa.key" -pubout -out "$pki/sa.pub"

# kubeconfig file subject server
kubeconfig() {
  local file=$1 subj=$2 srv=$3 user
  user=$(sed -n 's|.*/CN=||p' <<<"$subj")
  leaf "kc-$file" ca "$subj" clientAuth
  local crt="$pki/kc-$file.crt" key="$pki/kc-$file.key" kc="$out/$file"
  if [ "$kc_mode" = kubectl ]; then
    KUBECONFIG=$kc kubectl config set-cluster kubernetes --server="$srv" \
      --certificate-authority="$pki/ca.crt" --embed-certs >/dev/null
    KUBECONFIG=$kc kubectl config set-credentials "$user" --client-certificate="$crt" \
      --client-key="$key" --embed-certs >/dev/null
    KUBECONFIG=$kc kubectl config set-context "$user@kubernetes" --cluster=kubernetes \
      --user="$user" >/dev/null
    KUBECONFIG=$kc kubectl config use-context "$user@kubernetes" >/dev/null
  else
    printf 'apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: %s\n    server: %s\n  name: kubernetes\ncontexts:\n- context:\n    cluster: kubernetes\n    user: %s\n  name: %s@kubernetes\ncurrent-context: %s@kubernetes\nkind: Config\npreferences: {}\nusers:\n- name: %s\n  user:\n    client-certificate-data: %s\n    client-key-data: %s\n' \
      "$(base64 -w0 "$pki/ca.crt")" "$srv" "$user" "$user" "$user" "$user" \
      "$(base64 -w0 "$crt")" "$(base64 -w0 "$key")" >"$kc"
  fi
  rm -f "$crt" "$key"
}

kubeconfig admin.conf "/O=kubeadm:cluster-admins/CN=kubernetes-admin" "$server"
kubeconfig super-admin.conf "/O=system:masters/CN=kubernetes-super-admin" "$server"
kubeconfig kubelet.conf "/O=system:nodes/CN=system:node:$node" "$local_server"
kubeconfig controller-manager.conf "/CN=system:kube-controller-manager" "$local_server"
kubeconfig scheduler.conf "/CN=system:kube-scheduler" "$local_server"
rm -f "$pki"/*.srl "$pki"/etcd/*.srl
