//! What is on disk for each resolved entry. This is the only place the planner's inputs are
//! read; the planner itself is pure.

pub mod read;

use std::collections::HashMap;
use std::sync::Arc;

use crate::disk::read::{
    read_cert, read_key, read_optional, read_public_key, CertFile, KeyFile, Observed,
};
use crate::kubeconfig::Kubeconfig;
use crate::model::resolve::{Desired, Entry};
use crate::x509::keys::PrivateKey;

/// A kubeconfig as read, with its current context decoded.
#[derive(Debug, Clone)]
pub struct KubeconfigFile {
    /// The parsed file.
    pub config: Kubeconfig,
    /// Server URL of the current context.
    pub server: String,
    /// DER of the embedded CA certificate, if any.
    pub ca_der: Option<Vec<u8>>,
    /// DER of the embedded client certificate, if any.
    pub cert_der: Option<Vec<u8>>,
    /// The embedded client key, if any.
    pub key: Option<Arc<PrivateKey>>,
    /// File mode bits.
    pub mode: u32,
}

/// Observed state of one entry.
#[derive(Debug, Clone)]
pub enum Seen {
    /// A `.crt`/`.key` pair.
    Cert {
        /// The certificate file.
        cert: Observed<CertFile>,
        /// The key file.
        key: Observed<Arc<KeyFile>>,
    },
    /// A bare key pair.
    KeyPair {
        /// The private key file.
        key: Observed<Arc<KeyFile>>,
        /// The public key (DER SPKI) and its mode.
        public: Observed<(Vec<u8>, u32)>,
    },
    /// A kubeconfig.
    Kubeconfig(Observed<KubeconfigFile>),
}

/// Observed state of every entry, by entry name.
#[derive(Debug, Clone, Default)]
pub struct Disk {
    /// Entry name → what is there.
    pub entries: HashMap<String, Seen>,
    /// Kubeconfig entry name → `<file>.crt`, a client certificate signed by an external CA
    /// for a kubeconfig that `generate-csr` left with only its key.
    pub signed: HashMap<String, Observed<CertFile>>,
}

fn arc_key(o: Observed<KeyFile>) -> Observed<Arc<KeyFile>> {
    match o {
        Observed::Missing => Observed::Missing,
        Observed::Invalid(m) => Observed::Invalid(m),
        Observed::Present(k) => Observed::Present(Arc::new(k)),
    }
}

/// Reads a kubeconfig file and decodes its current context.
pub fn read_kubeconfig(path: &std::path::Path) -> Observed<KubeconfigFile> {
    use std::os::unix::fs::MetadataExt;
    let bytes = match read_optional(path) {
        Ok(None) => return Observed::Missing,
        Ok(Some(b)) => b,
        Err(e) => return Observed::Invalid(e.to_string()),
    };
    let parse = || -> Result<KubeconfigFile, String> {
        let text = std::str::from_utf8(&bytes).map_err(|_| "not a text file".to_string())?;
        let config = Kubeconfig::from_yaml(text)?;
        let cur = config.current()?;
        let cert = |what: &str, pem: &Option<Vec<u8>>| -> Result<Option<Vec<u8>>, String> {
            pem.as_ref()
                .map(|p| {
                    crate::disk::read::parse_cert_pem(p)
                        .map(|(der, _)| der)
                        .map_err(|m| format!("{what}: {m}"))
                })
                .transpose()
        };
        let ca_der = cert("certificate-authority-data", &cur.ca_pem)?;
        let cert_der = cert("client-certificate-data", &cur.client_cert_pem)?;
        let key = cur
            .client_key_pem
            .as_ref()
            .map(|p| {
                std::str::from_utf8(p)
                    .map_err(|_| "client-key-data: not PEM text".to_string())
                    .and_then(|t| {
                        PrivateKey::from_pem(t).map_err(|m| format!("client-key-data: {m}"))
                    })
            })
            .transpose()?
            .map(Arc::new);
        Ok(KubeconfigFile {
            server: cur.server.clone(),
            config,
            ca_der,
            cert_der,
            key,
            mode: std::fs::metadata(path)
                .map(|m| m.mode() & 0o7777)
                .unwrap_or(0),
        })
    };
    match parse() {
        Ok(k) => Observed::Present(k),
        Err(m) => Observed::Invalid(m),
    }
}

/// Reads every entry's files.
pub fn observe(desired: &Desired) -> Disk {
    let mut entries = HashMap::new();
    let mut signed = HashMap::new();
    for e in &desired.entries {
        if let Entry::Kubeconfig(k) = e {
            let mut crt = k.path.as_os_str().to_owned();
            crt.push(".crt");
            signed.insert(k.name.clone(), read_cert(std::path::Path::new(&crt)));
        }
        let seen = match e {
            Entry::Ca(c) | Entry::Leaf(c) => Seen::Cert {
                cert: read_cert(&c.cert_path),
                key: arc_key(read_key(&c.key_path)),
            },
            Entry::KeyPair(k) => Seen::KeyPair {
                key: arc_key(read_key(&k.key_path)),
                public: read_public_key(&k.pub_path),
            },
            Entry::Kubeconfig(k) => Seen::Kubeconfig(read_kubeconfig(&k.path)),
        };
        entries.insert(e.name().to_string(), seen);
    }
    Disk { entries, signed }
}
