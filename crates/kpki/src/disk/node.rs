//! The files the node's components are given: every certificate, key, public key and kubeconfig
//! that a flag of the spec's `read_by` column names in the node's manifests or kubelet config,
//! read the way the component reads it (a CA flag may hold a bundle; a service-account key file
//! may hold public keys, private keys or certificates, as Go's `keyutil` accepts). Reads are
//! bounded ([`crate::limits::MAX_NODE_FILE`]) and every path goes through `--root`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::disk::read::{read_optional_capped, Observed};
use crate::disk::{read_kubeconfig_in, KubeconfigFile};
use crate::inputs::node::{Node, Setting};
use crate::limits::MAX_NODE_FILE;
use crate::model::readers::Role;
use crate::model::resolve::Desired;
use crate::x509::keys::PrivateKey;

/// What a file named by a flag holds, read as its role says.
#[derive(Debug, Clone)]
pub enum Material {
    /// Certificates (DER, file order): a certificate or a CA bundle.
    Certs(Observed<Vec<Vec<u8>>>),
    /// A private key.
    Key(Observed<Arc<PrivateKey>>),
    /// Public keys (DER SubjectPublicKeyInfo), from every usable PEM block.
    Public(Observed<Vec<Vec<u8>>>),
    /// A kubeconfig.
    Kubeconfig(Box<Observed<KubeconfigFile>>),
}

/// Every file named by the node, by path as read and role.
#[derive(Debug, Clone, Default)]
pub struct NodeFiles {
    /// (path on this machine, role) -> material.
    pub files: HashMap<(PathBuf, Role), Material>,
}

impl NodeFiles {
    /// The material of a file read for a role.
    pub fn get(&self, path: &Path, role: Role) -> Option<&Material> {
        self.files.get(&(path.to_path_buf(), role))
    }
}

/// Where the file a setting's value names is read: absolute paths under `--root`, relative ones
/// from the node's `/` (a static Pod's working directory).
pub fn locate(node: &Node, value: &str) -> PathBuf {
    node.root.map(&Path::new("/").join(value))
}

fn read(path: &Path) -> Observed<Vec<u8>> {
    match read_optional_capped(path, MAX_NODE_FILE) {
        Ok(None) => Observed::Missing,
        Ok(Some(b)) => Observed::Present(b),
        Err(e) => Observed::Invalid(crate::disk::read::error_message(&e)),
    }
}

fn then<T>(o: Observed<Vec<u8>>, f: impl FnOnce(&[u8]) -> Result<T, String>) -> Observed<T> {
    match o {
        Observed::Missing => Observed::Missing,
        Observed::Unread => Observed::Unread,
        Observed::Invalid(m) => Observed::Invalid(m),
        Observed::Present(b) => match f(&b) {
            Ok(v) => Observed::Present(v),
            Err(m) => Observed::Invalid(m),
        },
    }
}

/// Public keys as Go's `keyutil.ParsePublicKeysPEM` finds them: `PUBLIC KEY` blocks, the public
/// half of private keys, and certificates' keys.
pub fn public_keys(bytes: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    use x509_parser::prelude::FromDer;
    let text = std::str::from_utf8(bytes).map_err(|_| "is not a PEM file".to_string())?;
    let blocks = pem::parse_many(text).map_err(|e| format!("is not a valid PEM file: {e}"))?;
    let mut out = Vec::new();
    for b in &blocks {
        match b.tag() {
            "PUBLIC KEY" => {
                x509_parser::x509::SubjectPublicKeyInfo::from_der(b.contents())
                    .map_err(|e| format!("a PUBLIC KEY block does not parse: {e}"))?;
                out.push(b.contents().to_vec());
            }
            "CERTIFICATE" => out.push(crate::x509::inspect::info(b.contents())?.spki),
            "RSA PRIVATE KEY" | "EC PRIVATE KEY" | "PRIVATE KEY" => {
                out.push(PrivateKey::from_pem(&pem::encode(b))?.spki_der())
            }
            _ => {}
        }
    }
    if out.is_empty() {
        return Err(format!(
            "holds no public key (found {}); expected PUBLIC KEY, a private key or a certificate",
            if blocks.is_empty() {
                "no PEM block".to_string()
            } else {
                blocks
                    .iter()
                    .map(|b| b.tag().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ));
    }
    Ok(out)
}

/// Reads one file for a role.
pub fn read_material(node: &Node, path: &Path, role: Role) -> Material {
    match role {
        Role::Cert => Material::Certs(then(read(path), crate::disk::all::parse_all_certs_pem)),
        Role::Key => Material::Key(then(read(path), |b| {
            let text = std::str::from_utf8(b)
                .map_err(|_| "is not a PEM file (binary data; DER is not accepted)".to_string())?;
            PrivateKey::from_pem(text).map(Arc::new)
        })),
        Role::Pub => Material::Public(then(read(path), public_keys)),
        // Bounded by the kubeconfig cap of the tree's own reader.
        Role::File => Material::Kubeconfig(Box::new(read_kubeconfig_in(path, &node.root))),
    }
}

/// Reads every file a `read_by` flag names on the node (nothing without a node).
pub fn observe(desired: &Desired) -> Option<NodeFiles> {
    let node = desired.inputs.node.as_deref()?;
    let mut out = NodeFiles::default();
    for w in &desired.readers {
        for (role, flag) in w.reader.roles() {
            let Setting::Value { value, .. } = node.setting(&w.reader.by, flag) else {
                continue;
            };
            if value.trim().is_empty() {
                continue;
            }
            let path = locate(node, value.trim());
            if out.files.contains_key(&(path.clone(), role)) {
                continue;
            }
            let m = read_material(node, &path, role);
            out.files.insert((path, role), m);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::x509::keys::KeyAlgorithm;

    #[test]
    fn public_keys_like_keyutil() {
        let k = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let from_pub = public_keys(k.public_key_pem().as_bytes()).unwrap();
        let from_key = public_keys(k.pem().as_bytes()).unwrap();
        assert_eq!(from_pub, vec![k.spki_der()]);
        assert_eq!(from_key, from_pub);
        let e = public_keys(b"-----BEGIN FOO-----\nAAAA\n-----END FOO-----\n").unwrap_err();
        assert!(e.contains("found FOO"), "{e}");
        assert!(public_keys(b"\xff").is_err());
    }
}
