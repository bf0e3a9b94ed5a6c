//! Reading what is in a tree: certificates, keys and public keys, each as [`Observed`]
//! (missing, present, or invalid with the reason). Only regular files are read.

use std::fs;
use std::path::Path;

use crate::error::{Error, Result};
use crate::x509::keys::PrivateKey;

/// What a file looks like on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed<T> {
    /// Not there.
    Missing,
    /// There and understood.
    Present(T),
    /// There but unreadable or not what it should be (the message says why).
    Invalid(String),
    /// There, and deliberately not read ([`crate::disk::Keys::Skip`]): the view asking does
    /// not judge it. Only private keys are ever left unread (`certs check-expiration` reports
    /// dates, as kubeadm's does, and loading a key is most of the cost of reading a tree).
    Unread,
}

impl<T> Observed<T> {
    /// The value, when present.
    pub fn present(&self) -> Option<&T> {
        match self {
            Observed::Present(v) => Some(v),
            _ => None,
        }
    }

    /// True unless missing.
    pub fn exists(&self) -> bool {
        !matches!(self, Observed::Missing)
    }
}

/// What a finding or an error says of an [`Observed::Unread`] file where a view needed it.
pub const NOT_READ: &str = "was not read (this view leaves private keys unread)";

/// A certificate file as read: the first certificate's DER plus the raw text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFile {
    /// DER of the first CERTIFICATE block (kubeadm: the rest are intermediates).
    pub der: Vec<u8>,
    /// DER of the further CERTIFICATE blocks.
    pub chain: Vec<Vec<u8>>,
    /// File mode bits.
    pub mode: u32,
}

/// A key file as read.
#[derive(Debug)]
pub struct KeyFile {
    /// The key.
    pub key: PrivateKey,
    /// File mode bits.
    pub mode: u32,
}

/// Reads a whole tree file (at most [`crate::limits::MAX_KUBECONFIG`] bytes); `Ok(None)` when
/// it does not exist.
pub fn read_optional(path: &Path) -> Result<Option<Vec<u8>>> {
    read_optional_capped(path, crate::limits::MAX_KUBECONFIG)
}

/// Reads a whole tree file of at most `cap` bytes; `Ok(None)` when it does not exist. Only a
/// regular file (or a link to one) is read: a FIFO would block, a device never end. A file
/// that is missing because a directory on its way is a dangling link says so.
pub fn read_optional_capped(path: &Path, cap: u64) -> Result<Option<Vec<u8>>> {
    Ok(read_optional_with_mode(path, cap)?.map(|(b, _)| b))
}

/// [`read_optional_capped`] with the file's mode bits (from the same stat).
pub fn read_optional_with_mode(path: &Path, cap: u64) -> Result<Option<(Vec<u8>, u32)>> {
    match crate::limits::read_capped_with_mode(path, cap, false)? {
        Some(b) => Ok(Some(b)),
        None => {
            if let Ok(t) = fs::read_link(path) {
                return Err(Error::file(
                    path,
                    format!("is a dangling symbolic link (to {})", t.display()),
                ));
            }
            if let Some(dir) = dangling_ancestor(path) {
                return Err(Error::file(
                    path,
                    format!(
                        "its directory {} is a dangling symbolic link (to {})",
                        dir.display(),
                        fs::read_link(&dir)
                            .map(|t| t.display().to_string())
                            .unwrap_or_default()
                    ),
                ));
            }
            Ok(None)
        }
    }
}

/// The nearest missing ancestor of `path` when it is a dangling symbolic link.
pub(crate) fn dangling_ancestor(path: &Path) -> Option<std::path::PathBuf> {
    let mut cur = path.parent();
    while let Some(d) = cur.filter(|d| !d.as_os_str().is_empty()) {
        match fs::symlink_metadata(d) {
            Ok(m) if m.file_type().is_symlink() && fs::metadata(d).is_err() => {
                return Some(d.to_path_buf())
            }
            Ok(_) => return None,
            Err(_) => cur = d.parent(),
        }
    }
    None
}

/// Whether `dir` is simply not there: missing, and no directory on its way is a dangling link
/// (a file under it then reads as [`Observed::Missing`] without being opened).
pub(crate) fn absent_dir(dir: &Path) -> bool {
    // Not found without following links: `dir` is no link itself, so only the directories
    // above it can be dangling ones (one stat of `dir`, not two: a bulk run asks per node).
    matches!(fs::symlink_metadata(dir), Err(e) if e.kind() == std::io::ErrorKind::NotFound)
        && dangling_ancestor(dir).is_none()
}

/// Parses PEM text holding one or more certificates.
pub fn parse_cert_pem(bytes: &[u8]) -> std::result::Result<(Vec<u8>, Vec<Vec<u8>>), String> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| "not a PEM file (binary data; DER is not accepted)".to_string())?;
    let blocks = pem::parse_many(text).map_err(|e| format!("not a valid PEM file: {e}"))?;
    let mut certs = blocks
        .into_iter()
        .filter(|b| b.tag() == "CERTIFICATE")
        .map(|b| b.into_contents());
    let first = certs
        .next()
        .ok_or_else(|| "no CERTIFICATE block found".to_string())?;
    use x509_parser::prelude::FromDer;
    let (rest, _) = x509_parser::certificate::X509Certificate::from_der(&first)
        .map_err(|e| format!("the certificate does not parse: {e}"))?;
    if !rest.is_empty() {
        return Err("trailing data after the certificate".into());
    }
    Ok((first, certs.collect()))
}

/// Reads a certificate file.
pub fn read_cert(path: &Path) -> Observed<CertFile> {
    match read_optional_with_mode(path, crate::limits::MAX_PEM) {
        Ok(None) => Observed::Missing,
        Err(e) => Observed::Invalid(error_message(&e)),
        Ok(Some((bytes, mode))) => match parse_cert_pem(&bytes) {
            Ok((der, chain)) => Observed::Present(CertFile { der, chain, mode }),
            Err(m) => Observed::Invalid(m),
        },
    }
}

/// Reads a private key file.
pub fn read_key(path: &Path) -> Observed<KeyFile> {
    match read_optional_with_mode(path, crate::limits::MAX_PEM) {
        Ok(None) => Observed::Missing,
        Err(e) => Observed::Invalid(error_message(&e)),
        Ok(Some((bytes, mode))) => match std::str::from_utf8(&bytes) {
            Err(_) => Observed::Invalid("not a PEM file (binary data; DER is not accepted)".into()),
            Ok(text) => match PrivateKey::from_pem(text) {
                Ok(key) => Observed::Present(KeyFile { key, mode }),
                Err(m) => Observed::Invalid(m),
            },
        },
    }
}

/// Reads a `PUBLIC KEY` PEM file and returns the DER SubjectPublicKeyInfo.
pub fn read_public_key(path: &Path) -> Observed<(Vec<u8>, u32)> {
    match read_optional_with_mode(path, crate::limits::MAX_PEM) {
        Ok(None) => Observed::Missing,
        Err(e) => Observed::Invalid(error_message(&e)),
        Ok(Some((bytes, mode))) => {
            let parsed = std::str::from_utf8(&bytes)
                .map_err(|_| "not a PEM file".to_string())
                .and_then(|t| pem::parse(t).map_err(|e| format!("not a valid PEM file: {e}")));
            match parsed {
                Ok(b) if b.tag() == "PUBLIC KEY" => Observed::Present((b.into_contents(), mode)),
                Ok(b) => {
                    Observed::Invalid(format!("expected a PUBLIC KEY block, found {}", b.tag()))
                }
                Err(m) => Observed::Invalid(m),
            }
        }
    }
}

/// The message of a read error without the path (the finding or error around it names the file).
pub fn error_message(e: &Error) -> String {
    match e {
        Error::File { message, .. } => message.clone(),
        Error::Io { source, .. } => source.to_string(),
        other => other.to_string(),
    }
}
