//! File-system I/O for a PKI tree: reading what is there, and atomic, mode-exact writes.
//!
//! Every write goes to a temporary file in the target directory that is created with its final
//! mode (a key is never readable by others, not even for a moment), is fsynced, then renamed over
//! the final name; the directory is fsynced after. A CA key is written with a no-clobber rename, so
//! no flag and no race can replace an existing CA key.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::keys::PrivateKey;

/// What a file looks like on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed<T> {
    /// Not there.
    Missing,
    /// There and understood.
    Present(T),
    /// There but unreadable or not what it should be (the message says why).
    Invalid(String),
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

/// Reads a whole file; `Ok(None)` when it does not exist.
pub fn read_optional(path: &Path) -> Result<Option<Vec<u8>>> {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::file(path, e)),
        Ok(m) if m.is_dir() => return Err(Error::file(path, "is a directory, expected a file")),
        Ok(_) => {}
    }
    fs::read(path).map(Some).map_err(|e| Error::file(path, e))
}

fn mode_of(path: &Path) -> u32 {
    fs::metadata(path).map(|m| m.mode() & 0o7777).unwrap_or(0)
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
    match read_optional(path) {
        Ok(None) => Observed::Missing,
        Err(e) => Observed::Invalid(error_message(&e)),
        Ok(Some(bytes)) => match parse_cert_pem(&bytes) {
            Ok((der, chain)) => Observed::Present(CertFile {
                der,
                chain,
                mode: mode_of(path),
            }),
            Err(m) => Observed::Invalid(m),
        },
    }
}

/// Reads a private key file.
pub fn read_key(path: &Path) -> Observed<KeyFile> {
    match read_optional(path) {
        Ok(None) => Observed::Missing,
        Err(e) => Observed::Invalid(error_message(&e)),
        Ok(Some(bytes)) => match std::str::from_utf8(&bytes) {
            Err(_) => Observed::Invalid("not a PEM file (binary data; DER is not accepted)".into()),
            Ok(text) => match PrivateKey::from_pem(text) {
                Ok(key) => Observed::Present(KeyFile {
                    key,
                    mode: mode_of(path),
                }),
                Err(m) => Observed::Invalid(m),
            },
        },
    }
}

/// Reads a `PUBLIC KEY` PEM file and returns the DER SubjectPublicKeyInfo.
pub fn read_public_key(path: &Path) -> Observed<(Vec<u8>, u32)> {
    match read_optional(path) {
        Ok(None) => Observed::Missing,
        Err(e) => Observed::Invalid(error_message(&e)),
        Ok(Some(bytes)) => {
            let parsed = std::str::from_utf8(&bytes)
                .map_err(|_| "not a PEM file".to_string())
                .and_then(|t| pem::parse(t).map_err(|e| format!("not a valid PEM file: {e}")));
            match parsed {
                Ok(b) if b.tag() == "PUBLIC KEY" => {
                    Observed::Present((b.into_contents(), mode_of(path)))
                }
                Ok(b) => {
                    Observed::Invalid(format!("expected a PUBLIC KEY block, found {}", b.tag()))
                }
                Err(m) => Observed::Invalid(m),
            }
        }
    }
}

fn error_message(e: &Error) -> String {
    match e {
        Error::File { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

/// How a file may be replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replace {
    /// Overwrite whatever is there.
    Allow,
    /// Fail if the file exists (CA keys).
    Never,
}

/// Creates `dir` and missing parents with exactly `mode` (umask notwithstanding).
pub fn ensure_dir(dir: &Path, mode: u32) -> Result<()> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        ensure_dir(parent, mode)?;
    }
    match fs::DirBuilder::new().mode(mode).create(dir) {
        Ok(()) => fs::set_permissions(dir, fs::Permissions::from_mode(mode))
            .map_err(|e| Error::file(dir, e)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(Error::file(dir, format!("cannot create directory: {e}"))),
    }
}

/// Writes `data` to `path` atomically with exactly `mode`.
pub fn write_atomic(
    path: &Path,
    data: &[u8],
    mode: u32,
    dir_mode: u32,
    replace: Replace,
) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    ensure_dir(&dir, dir_mode)?;
    if let Ok(m) = fs::symlink_metadata(path) {
        if m.file_type().is_symlink() {
            return Err(Error::file(
                path,
                "is a symbolic link; kpki does not write through links",
            ));
        }
        if m.is_dir() {
            return Err(Error::file(path, "is a directory, expected a file"));
        }
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".kpki-tmp")
        .permissions(fs::Permissions::from_mode(mode & 0o600))
        .tempfile_in(&dir)
        .map_err(|e| Error::file(&dir, format!("cannot create a temporary file: {e}")))?;
    // Set the final mode on the descriptor before any byte is written (umask may have narrowed it).
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(mode))
        .map_err(|e| Error::file(path, e))?;
    tmp.write_all(data).map_err(|e| Error::file(path, e))?;
    tmp.as_file().sync_all().map_err(|e| Error::file(path, e))?;
    match replace {
        Replace::Allow => tmp
            .persist(path)
            .map(|_| ())
            .map_err(|e| Error::file(path, e.error))?,
        Replace::Never => tmp.persist_noclobber(path).map(|_| ()).map_err(|e| {
            if e.error.kind() == std::io::ErrorKind::AlreadyExists {
                Error::file(path, "exists already; kpki never overwrites a CA key")
            } else {
                Error::file(path, e.error)
            }
        })?,
    }
    if let Ok(d) = fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_sets_exact_mode_and_refuses_clobber() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("a/b/key");
        write_atomic(&p, b"x", 0o600, 0o755, Replace::Never).expect("write");
        assert_eq!(mode_of(&p), 0o600);
        assert_eq!(mode_of(&dir.path().join("a")), 0o755);
        let e = write_atomic(&p, b"y", 0o600, 0o755, Replace::Never).expect_err("clobber");
        assert!(e.to_string().contains("never overwrites"));
        assert_eq!(fs::read(&p).expect("read"), b"x");
        write_atomic(&p, b"z", 0o644, 0o755, Replace::Allow).expect("replace");
        assert_eq!(mode_of(&p), 0o644);
        let leftovers: Vec<_> = fs::read_dir(dir.path().join("a/b"))
            .expect("ls")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "{leftovers:?}");
    }

    #[test]
    fn refuses_symlinks() {
        let dir = tempfile::tempdir().expect("tmp");
        let target = dir.path().join("target");
        fs::write(&target, b"t").expect("write");
        let link = dir.path().join("link.key");
        std::os::unix::fs::symlink(&target, &link).expect("link");
        assert!(write_atomic(&link, b"x", 0o600, 0o755, Replace::Allow).is_err());
        assert_eq!(fs::read(&target).expect("read"), b"t");
    }
}
