//! The rotation folder of a tree (`<cert dir>/rotation`, mode 0700), read for `kpki ca rotate`
//! and for the assessment. A rotation keeps its state in files only, so every command that reads
//! the tree knows it:
//!
//! ```text
//! rotation/<entry>/new.crt new.key   the new CA (prepare)          key pairs: new.pub new.key
//! rotation/<entry>/old.crt old.key   the old CA, archived (prepare)            old.pub old.key
//! rotation/signer/<entry>.crt        single-certificate copy of the CA that signs now
//!                                    (kube-controller-manager cannot take a bundle, kubeadm#1350)
//! rotation/archive/<entry>-<UTC>-finished|aborted/   a rotation's folder once it is over
//! ```
//!
//! Besides those files, every certificate (or public key) of each rotating entry's live trust
//! file (`ca.crt`, `sa.pub`, ...) is read: during a rotation they hold two.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::disk::read::{read_cert, read_key, read_optional, KeyFile, Observed};
use crate::model::resolve::{Desired, Entry};

/// The folder's name inside the cert dir.
pub const DIR: &str = "rotation";
/// Where finished and aborted rotations are kept, inside [`DIR`].
pub const ARCHIVE: &str = "archive";
/// Where the single-certificate signer copies live, inside [`DIR`].
pub const SIGNER: &str = "signer";

/// The CA whose signer gets a single-certificate copy: the cluster CA, which
/// kube-controller-manager signs with (`--cluster-signing-cert-file`, kubeadm#1350).
pub fn signer_copied(entry: &str) -> bool {
    entry == "ca"
}

/// The paths of a tree's rotation folder.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Layout {
    /// `<cert dir>/rotation`.
    pub root: PathBuf,
}

impl Layout {
    /// The rotation folder of the tree whose certificates are in `cert_dir`.
    pub fn of(cert_dir: &Path) -> Layout {
        Layout {
            root: cert_dir.join(DIR),
        }
    }

    /// `rotation/<entry>`: a rotation in progress.
    pub fn dir(&self, entry: &str) -> PathBuf {
        self.root.join(entry)
    }

    /// The trust file of one side (`new.crt`, `old.pub`, ...).
    pub fn trust(&self, entry: &str, side: &str, keypair: bool) -> PathBuf {
        let ext = if keypair { "pub" } else { "crt" };
        self.dir(entry).join(format!("{side}.{ext}"))
    }

    /// The private key of one side (`new.key`, `old.key`).
    pub fn key(&self, entry: &str, side: &str) -> PathBuf {
        self.dir(entry).join(format!("{side}.key"))
    }

    /// `rotation/signer/<entry>.crt`.
    pub fn signer(&self, entry: &str) -> PathBuf {
        self.root.join(SIGNER).join(format!("{entry}.crt"))
    }

    /// `rotation/archive`.
    pub fn archive(&self) -> PathBuf {
        self.root.join(ARCHIVE)
    }
}

/// One side (old or new) of a rotation as read.
#[derive(Debug, Clone)]
pub struct Side {
    /// The CA certificate (DER) or, for a key pair, the public key (DER SubjectPublicKeyInfo).
    pub trust: Observed<Vec<u8>>,
    /// Its private key.
    pub key: Observed<Arc<KeyFile>>,
}

impl Default for Side {
    fn default() -> Side {
        Side {
            trust: Observed::Missing,
            key: Observed::Missing,
        }
    }
}

/// The folder of one rotation in progress.
#[derive(Debug, Clone, Default)]
pub struct Staged {
    /// A key pair (`sa`), not a CA.
    pub keypair: bool,
    /// The archived old CA (or key).
    pub old: Side,
    /// The staged new CA (or key).
    pub new: Side,
}

/// Everything of the rotation folder an assessment or a rotation plan needs.
#[derive(Debug, Clone, Default)]
pub struct RotationDisk {
    /// Where the folder is (or would be).
    pub layout: Layout,
    /// Entry name -> its rotation folder, for the CAs and key pairs that have one.
    pub staged: BTreeMap<String, Staged>,
    /// Entry name -> every element (certificate DER, or public key SPKI) of its live trust file,
    /// for the entries in [`RotationDisk::staged`] and those with a signer copy.
    pub live: BTreeMap<String, Observed<Vec<Vec<u8>>>>,
    /// Entry name -> the certificates of its signer copy, where one exists.
    pub signer: BTreeMap<String, Observed<Vec<Vec<u8>>>>,
    /// Names of the archived rotations, sorted.
    pub archives: Vec<String>,
    /// Why the folder could not be listed, if it could not.
    pub problem: Option<String>,
}

impl RotationDisk {
    /// True when any rotation is in progress.
    pub fn in_progress(&self) -> bool {
        !self.staged.is_empty()
    }
}

fn message(e: &crate::Error) -> String {
    match e {
        crate::Error::File { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

/// Every certificate of a certificate file (DER), in file order.
pub fn read_certs(path: &Path) -> Observed<Vec<Vec<u8>>> {
    match read_cert(path) {
        Observed::Present(c) => Observed::Present(std::iter::once(c.der).chain(c.chain).collect()),
        Observed::Missing => Observed::Missing,
        Observed::Unread => Observed::Unread,
        Observed::Invalid(m) => Observed::Invalid(m),
    }
}

/// Every `PUBLIC KEY` block of a public key file (DER SubjectPublicKeyInfo), in file order:
/// `sa.pub` holds two while the service-account key is rotated (kube-apiserver's
/// `--service-account-key-file` takes several keys).
pub fn read_public_keys(path: &Path) -> Observed<Vec<Vec<u8>>> {
    let bytes = match read_optional(path) {
        Ok(None) => return Observed::Missing,
        Ok(Some(b)) => b,
        Err(e) => return Observed::Invalid(message(&e)),
    };
    let Ok(text) = std::str::from_utf8(&bytes) else {
        return Observed::Invalid("not a PEM file".into());
    };
    match pem::parse_many(text) {
        Err(e) => Observed::Invalid(format!("not a valid PEM file: {e}")),
        Ok(blocks) if blocks.is_empty() => Observed::Invalid("no PEM block found".into()),
        Ok(blocks) => {
            if let Some(b) = blocks.iter().find(|b| b.tag() != "PUBLIC KEY") {
                return Observed::Invalid(format!("expected PUBLIC KEY blocks, found {}", b.tag()));
            }
            Observed::Present(blocks.into_iter().map(|b| b.into_contents()).collect())
        }
    }
}

fn read_side(layout: &Layout, entry: &str, side: &str, keypair: bool) -> Side {
    let trust_path = layout.trust(entry, side, keypair);
    let trust = if keypair {
        match read_public_keys(&trust_path) {
            Observed::Present(mut v) if v.len() == 1 => Observed::Present(v.remove(0)),
            Observed::Present(v) => {
                Observed::Invalid(format!("holds {} public keys, expected 1", v.len()))
            }
            Observed::Missing => Observed::Missing,
            Observed::Unread => Observed::Unread,
            Observed::Invalid(m) => Observed::Invalid(m),
        }
    } else {
        match read_certs(&trust_path) {
            Observed::Present(mut v) if v.len() == 1 => Observed::Present(v.remove(0)),
            Observed::Present(v) => {
                Observed::Invalid(format!("holds {} certificates, expected 1", v.len()))
            }
            Observed::Missing => Observed::Missing,
            Observed::Unread => Observed::Unread,
            Observed::Invalid(m) => Observed::Invalid(m),
        }
    };
    let key = match read_key(&layout.key(entry, side)) {
        Observed::Present(k) => Observed::Present(Arc::new(k)),
        Observed::Missing => Observed::Missing,
        Observed::Unread => Observed::Unread,
        Observed::Invalid(m) => Observed::Invalid(m),
    };
    Side { trust, key }
}

/// Reads the rotation folder of `desired`'s tree: for every CA and key pair of the spec, its
/// rotation folder if there is one, and the live trust files of those that have one.
pub fn observe(desired: &Desired) -> RotationDisk {
    let layout = Layout::of(&desired.inputs.cert_dir);
    let mut out = RotationDisk {
        layout: layout.clone(),
        ..Default::default()
    };
    match std::fs::symlink_metadata(&layout.root) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return out,
        Err(e) => {
            out.problem = Some(e.to_string());
            return out;
        }
        Ok(m) if !m.is_dir() => {
            out.problem = Some("is not a directory".into());
            return out;
        }
        Ok(_) => {}
    }
    for e in &desired.entries {
        let (keypair, live_path) = match e {
            Entry::Ca(c) => (false, &c.cert_path),
            Entry::KeyPair(k) => (true, &k.pub_path),
            _ => continue,
        };
        let name = e.name();
        let dir = layout.dir(name);
        let staged = std::fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir());
        let signer = layout.signer(name);
        let has_signer = signer_copied(name) && std::fs::symlink_metadata(&signer).is_ok();
        if staged {
            out.staged.insert(
                name.to_string(),
                Staged {
                    keypair,
                    old: read_side(&layout, name, "old", keypair),
                    new: read_side(&layout, name, "new", keypair),
                },
            );
        }
        if has_signer {
            out.signer.insert(name.to_string(), read_certs(&signer));
        }
        if staged || has_signer {
            let live = if keypair {
                read_public_keys(live_path)
            } else {
                read_certs(live_path)
            };
            out.live.insert(name.to_string(), live);
        }
    }
    if let Ok(rd) = std::fs::read_dir(layout.archive()) {
        out.archives = rd
            .flatten()
            .map(|d| d.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .collect();
        out.archives.sort();
    }
    out
}
