//! Every certificate a file holds, for the views that report on certificates rather than on
//! spec entries (metrics, the tree picture): all blocks of a PEM bundle, and every cluster CA and
//! user certificate of a kubeconfig (not only its current context).
//!
//! Built on [`read::read_optional`] and [`read::parse_cert_pem`], so a file is read and its PEM
//! understood exactly as the planner reads it. What counts as one certificate follows the
//! x509-certificate-exporter (v3 `internal/certificate.go`, v4 `pkg/source/kubeconfig`): blocks
//! other than `CERTIFICATE` are skipped, one malformed certificate makes the whole file an error,
//! and a kubeconfig's `certificate-authority-data` / `client-certificate-data` win over the
//! `certificate-authority` / `client-certificate` paths (resolved against the kubeconfig's
//! directory), as client-go does.

use std::path::{Path, PathBuf};

use base64::Engine;
use x509_parser::prelude::FromDer;

use crate::disk::read::{self, Observed};
use crate::kubeconfig::Kubeconfig;

/// Which part of a kubeconfig a certificate came from (the exporter's `embedded_kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EmbeddedKind {
    /// `clusters[].cluster`: the CA the client trusts.
    Cluster,
    /// `users[].user`: the client certificate.
    User,
}

impl EmbeddedKind {
    /// `cluster` or `user`.
    pub fn as_str(self) -> &'static str {
        match self {
            EmbeddedKind::Cluster => "cluster",
            EmbeddedKind::User => "user",
        }
    }
}

/// The certificates of one cluster or user entry of a kubeconfig.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Embedded {
    /// Cluster or user.
    pub kind: EmbeddedKind,
    /// The cluster or user name (the exporter's `embedded_key`).
    pub name: String,
    /// The referenced file, when the certificate is given by path rather than embedded.
    pub file: Option<PathBuf>,
    /// DER of each certificate, in file order.
    pub certs: Vec<Vec<u8>>,
}

/// Parses PEM text into the DER of every `CERTIFICATE` block; every one must parse.
pub fn parse_all_certs_pem(bytes: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let (first, chain) = read::parse_cert_pem(bytes)?;
    for (i, der) in chain.iter().enumerate() {
        x509_parser::certificate::X509Certificate::from_der(der)
            .map_err(|e| format!("certificate {} of the bundle does not parse: {e}", i + 2))?;
    }
    let mut all = Vec::with_capacity(1 + chain.len());
    all.push(first);
    all.extend(chain);
    Ok(all)
}

/// Reads every certificate of a PEM file (a bundle gives several).
pub fn read_all_certs(path: &Path) -> Observed<Vec<Vec<u8>>> {
    match read::read_optional(path) {
        Ok(None) => Observed::Missing,
        Err(e) => Observed::Invalid(message(&e)),
        Ok(Some(bytes)) => match parse_all_certs_pem(&bytes) {
            Ok(v) => Observed::Present(v),
            Err(m) => Observed::Invalid(m),
        },
    }
}

/// Reads every certificate a kubeconfig holds or references: each cluster's CA and each user's
/// client certificate. Entries without a certificate (token users) are left out; a file that
/// yields none at all is invalid ("no certificate found"), as the exporter reports it.
pub fn read_kubeconfig_certs(path: &Path) -> Observed<Vec<Embedded>> {
    read_kubeconfig_certs_in(path, &crate::inputs::root::Root::none())
}

/// [`read_kubeconfig_certs`] for a node under `--root`: referenced files are read under it.
pub fn read_kubeconfig_certs_in(
    path: &Path,
    root: &crate::inputs::root::Root,
) -> Observed<Vec<Embedded>> {
    let bytes = match read::read_optional(path) {
        Ok(None) => return Observed::Missing,
        Ok(Some(b)) => b,
        Err(e) => return Observed::Invalid(message(&e)),
    };
    let parse = || -> Result<Vec<Embedded>, String> {
        let text = std::str::from_utf8(&bytes).map_err(|_| "not a text file".to_string())?;
        let config = Kubeconfig::from_yaml(text)?;
        let base = path.parent().unwrap_or(Path::new("."));
        let mut out = Vec::new();
        for c in &config.clusters {
            let field = (
                "certificate-authority-data",
                &c.cluster.certificate_authority_data,
                "certificate-authority",
                &c.cluster.certificate_authority,
            );
            if let Some(e) = embedded(EmbeddedKind::Cluster, &c.name, field, base, root)? {
                out.push(e);
            }
        }
        for u in &config.users {
            let field = (
                "client-certificate-data",
                &u.user.client_certificate_data,
                "client-certificate",
                &u.user.client_certificate,
            );
            if let Some(e) = embedded(EmbeddedKind::User, &u.name, field, base, root)? {
                out.push(e);
            }
        }
        if out.is_empty() {
            return Err("no certificate found (no certificate-authority(-data) or client-certificate(-data))".into());
        }
        Ok(out)
    };
    match parse() {
        Ok(v) => Observed::Present(v),
        Err(m) => Observed::Invalid(m),
    }
}

type Field<'a> = (&'a str, &'a Option<String>, &'a str, &'a Option<String>);

fn embedded(
    kind: EmbeddedKind,
    name: &str,
    (data_key, data, path_key, file): Field<'_>,
    base: &Path,
    root: &crate::inputs::root::Root,
) -> Result<Option<Embedded>, String> {
    let at = |key: &str| format!("{} {name:?} {key}", kind.as_str());
    let (pem, file) = match (data.as_deref(), file.as_deref()) {
        (Some(d), _) if !d.trim().is_empty() => {
            let pem = base64::engine::general_purpose::STANDARD
                .decode(d.trim())
                .map_err(|e| format!("{}: not valid base64: {e}", at(data_key)))?;
            (pem, None)
        }
        (_, Some(f)) if !f.is_empty() => {
            let p = root.resolve(base, Path::new(f));
            let pem = match read::read_optional(&p) {
                Ok(Some(b)) => b,
                Ok(None) => {
                    return Err(format!("{}: {} does not exist", at(path_key), p.display()))
                }
                Err(e) => return Err(format!("{}: {}", at(path_key), e)),
            };
            (pem, Some(p))
        }
        _ => return Ok(None),
    };
    let certs = parse_all_certs_pem(&pem).map_err(|m| {
        let key = if file.is_some() { path_key } else { data_key };
        format!("{}: {m}", at(key))
    })?;
    Ok(Some(Embedded {
        kind,
        name: name.to_string(),
        file,
        certs,
    }))
}

fn message(e: &crate::Error) -> String {
    match e {
        crate::Error::File { message, .. } => message.clone(),
        crate::Error::Io { source, .. } => source.to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn token_only_kubeconfig_has_no_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k.conf");
        std::fs::write(
            &p,
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://x\nusers:\n- name: u\n  user:\n    token: abc\n",
        )
        .unwrap();
        match read_kubeconfig_certs(&p) {
            Observed::Invalid(m) => assert!(m.contains("no certificate"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            read_kubeconfig_certs(&dir.path().join("absent")),
            Observed::Missing
        );
    }

    #[test]
    fn a_referenced_file_that_is_missing_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k.conf");
        std::fs::write(
            &p,
            "apiVersion: v1\nkind: Config\nusers:\n- name: node\n  user:\n    client-certificate: pki/client.pem\n",
        )
        .unwrap();
        match read_kubeconfig_certs(&p) {
            Observed::Invalid(m) => {
                assert!(m.contains("user \"node\" client-certificate"), "{m}");
                assert!(m.contains("pki/client.pem"), "{m}");
            }
            other => panic!("{other:?}"),
        }
    }
}
