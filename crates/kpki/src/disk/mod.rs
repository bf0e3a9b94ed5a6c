//! What is on disk for each resolved entry. This is the only place the planner's inputs are
//! read; the planner itself is pure.

pub mod all;
pub mod node;
pub mod read;
pub mod rotation;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::disk::read::{read_cert, read_key, read_public_key, CertFile, KeyFile, Observed};
use crate::kubeconfig::Kubeconfig;
use crate::model::resolve::{Desired, Entry};
use crate::x509::keys::PrivateKey;

/// A kubeconfig as read, with its current context decoded. Credentials referenced by path
/// (`certificate-authority`, `client-certificate`, `client-key`: a kubeadm node after
/// kubelet-finalize points kubelet.conf at the kubelet's rotated certificate) are read too, so
/// they are checked like embedded ones.
#[derive(Debug, Clone)]
pub struct KubeconfigFile {
    /// The parsed file.
    pub config: Kubeconfig,
    /// Server URL of the current context.
    pub server: String,
    /// Cluster entry name of the current context.
    pub cluster_name: String,
    /// User entry name of the current context.
    pub user_name: String,
    /// Context name.
    pub context_name: String,
    /// DER of the CA certificate (embedded, or read from its referenced file).
    pub ca_der: Option<Vec<u8>>,
    /// DER of the further certificates of the CA data: a bundle (during a CA rotation the old
    /// and the new CA, the signer first).
    pub ca_chain: Vec<Vec<u8>>,
    /// DER of the client certificate (embedded, or read from its referenced file).
    pub cert_der: Option<Vec<u8>>,
    /// The client key (embedded, or read from its referenced file).
    pub key: Option<Arc<PrivateKey>>,
    /// There is a client key (embedded or referenced) that this read left unread
    /// ([`Keys::Skip`]): `key` and `key_ref` are empty for that reason, not because the file
    /// has none.
    pub key_unread: bool,
    /// The CA certificate's file, when referenced by path.
    pub ca_ref: Option<Reference>,
    /// The client certificate's file, when referenced by path.
    pub cert_ref: Option<Reference>,
    /// The client key's file, when referenced by path.
    pub key_ref: Option<Reference>,
    /// File mode bits.
    pub mode: u32,
}

/// A credential a kubeconfig references by path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The path as written in the kubeconfig.
    pub written: String,
    /// Where it was read from (relative paths resolve against the kubeconfig's directory, as
    /// client-go does).
    pub path: PathBuf,
    /// Why it could not be used, if it could not.
    pub problem: Option<String>,
}

/// Observed state of one entry.
#[derive(Debug, Clone)]
// One value per entry, moved rarely: the size difference does not matter.
#[allow(clippy::large_enum_variant)]
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

impl Seen {
    /// True when none of the entry's files is there (a new tree).
    pub fn is_missing(&self) -> bool {
        match self {
            Seen::Cert { cert, key } => {
                matches!(cert, Observed::Missing) && matches!(key, Observed::Missing)
            }
            Seen::KeyPair { key, public } => {
                matches!(key, Observed::Missing) && matches!(public, Observed::Missing)
            }
            Seen::Kubeconfig(k) => matches!(k, Observed::Missing),
        }
    }
}

/// Observed state of every entry, by entry name.
#[derive(Debug, Clone, Default)]
pub struct Disk {
    /// Entry name → what is there.
    pub entries: HashMap<String, Seen>,
    /// Kubeconfig entry name → `<file>.crt`, a client certificate signed by an external CA
    /// for a kubeconfig that `generate-csr` left with only its key.
    pub signed: HashMap<String, Observed<CertFile>>,
    /// Entry name -> whether its `generate-csr` request file exists (anything at that name,
    /// a dangling link included).
    pub csr: HashMap<String, bool>,
    /// The files the node's components are given (when the inputs came from a node).
    pub node: Option<node::NodeFiles>,
    /// The CA rotations in progress (`<cert dir>/rotation`, `kpki ca rotate`).
    pub rotation: rotation::RotationDisk,
}

fn arc_key(o: Observed<KeyFile>) -> Observed<Arc<KeyFile>> {
    match o {
        Observed::Missing => Observed::Missing,
        Observed::Unread => Observed::Unread,
        Observed::Invalid(m) => Observed::Invalid(m),
        Observed::Present(k) => Observed::Present(Arc::new(k)),
    }
}

/// Reads a kubeconfig file and decodes its current context.
pub fn read_kubeconfig(path: &Path) -> Observed<KubeconfigFile> {
    read_kubeconfig_in(path, &crate::inputs::root::Root::none())
}

/// [`read_kubeconfig`] for a node under `--root`: the paths it references are read under the
/// root (`Root::resolve`).
pub fn read_kubeconfig_in(
    path: &Path,
    root: &crate::inputs::root::Root,
) -> Observed<KubeconfigFile> {
    read_kubeconfig_with(path, root, Keys::Load)
}

/// Whether a read loads private keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keys {
    /// Load and check every key (the judge needs them).
    Load,
    /// Leave them unread ([`Observed::Unread`], [`KubeconfigFile::key_unread`]): reading what
    /// a tree says about its inputs, or when its certificates expire, needs only the
    /// certificates, and an RSA key's consistency check is most of a read's cost.
    Skip,
}

/// The result of a parse of a PEM certificate file.
type ParsedCerts = std::result::Result<(Vec<u8>, Vec<Vec<u8>>), String>;

thread_local! {
    /// The last `certificate-authority-data` parsed on this thread and its result.
    static LAST_CA_PEM: crate::memo::Last<ParsedCerts> = const { std::cell::RefCell::new(None) };
}

/// [`read_kubeconfig_in`], loading the client key or not.
pub fn read_kubeconfig_with(
    path: &Path,
    root: &crate::inputs::root::Root,
    keys: Keys,
) -> Observed<KubeconfigFile> {
    let (bytes, mode) = match read::read_optional_with_mode(path, crate::limits::MAX_KUBECONFIG) {
        Ok(None) => return Observed::Missing,
        Ok(Some(b)) => b,
        // The message without the path: the finding around it names the file.
        Err(e) => return Observed::Invalid(crate::disk::read::error_message(&e)),
    };
    let base = path.parent().unwrap_or(Path::new("."));
    let parse = || -> Result<KubeconfigFile, String> {
        let text = std::str::from_utf8(&bytes).map_err(|_| "not a text file".to_string())?;
        let config = Kubeconfig::from_yaml(text)?;
        let cur = config.current()?;
        type Certs = Option<(Vec<u8>, Vec<Vec<u8>>)>;
        let certs = |what: &str, pem: &Option<Vec<u8>>| -> Result<Certs, String> {
            pem.as_ref()
                .map(|p| crate::disk::read::parse_cert_pem(p).map_err(|m| format!("{what}: {m}")))
                .transpose()
        };
        // Every kubeconfig of a tree (100,000 of them for `kpki nodes`) embeds the same CA: its
        // parse is remembered per thread, keyed by the exact bytes (the same bytes, the same result).
        let ca = cur
            .ca_pem
            .as_ref()
            .map(|p| crate::memo::last(&LAST_CA_PEM, p, || crate::disk::read::parse_cert_pem(p)));
        let (mut ca_der, mut ca_chain) = match ca
            .transpose()
            .map_err(|m| format!("certificate-authority-data: {m}"))?
        {
            Some((der, chain)) => (Some(der), chain),
            None => (None, Vec::new()),
        };
        let mut cert_der =
            certs("client-certificate-data", &cur.client_cert_pem)?.map(|(der, _)| der);
        let load_keys = keys == Keys::Load;
        let mut key = cur
            .client_key_pem
            .as_ref()
            .filter(|_| load_keys)
            .map(|p| {
                std::str::from_utf8(p)
                    .map_err(|_| "client-key-data: not PEM text".to_string())
                    .and_then(|t| {
                        PrivateKey::from_pem(t).map_err(|m| format!("client-key-data: {m}"))
                    })
            })
            .transpose()?
            .map(Arc::new);
        let reference = |written: &String| -> Reference {
            Reference {
                written: written.clone(),
                path: root.resolve(base, Path::new(written)),
                problem: None,
            }
        };
        // Embedded data wins over a path, as in client-go.
        let mut ca_ref = None;
        if let (None, Some(f)) = (&ca_der, &cur.ca_file) {
            let mut r = reference(f);
            match read_cert(&r.path) {
                Observed::Present(c) => {
                    ca_der = Some(c.der);
                    ca_chain = c.chain;
                }
                Observed::Missing => r.problem = Some("does not exist".into()),
                Observed::Invalid(m) => r.problem = Some(m),
                Observed::Unread => {}
            }
            ca_ref = Some(r);
        }
        let mut cert_ref = None;
        if let (None, Some(f)) = (&cert_der, &cur.client_cert_file) {
            let mut r = reference(f);
            match read_cert(&r.path) {
                Observed::Present(c) => cert_der = Some(c.der),
                Observed::Missing => r.problem = Some("does not exist".into()),
                Observed::Invalid(m) => r.problem = Some(m),
                Observed::Unread => {}
            }
            cert_ref = Some(r);
        }
        let mut key_ref = None;
        if let (true, None, Some(f)) = (load_keys, &key, &cur.client_key_file) {
            let mut r = reference(f);
            match read_key(&r.path) {
                Observed::Present(k) => key = Some(Arc::new(k.key)),
                Observed::Missing => r.problem = Some("does not exist".into()),
                Observed::Invalid(m) => r.problem = Some(m),
                Observed::Unread => {}
            }
            key_ref = Some(r);
        }
        Ok(KubeconfigFile {
            server: cur.server.clone(),
            cluster_name: cur.cluster_name.clone(),
            user_name: cur.user_name.clone(),
            context_name: config.current_context.clone(),
            config,
            ca_der,
            ca_chain,
            cert_der,
            key,
            ca_ref,
            cert_ref,
            key_ref,
            key_unread: !load_keys
                && (cur.client_key_pem.is_some() || cur.client_key_file.is_some()),
            mode,
        })
    };
    match parse() {
        Ok(k) => Observed::Present(k),
        Err(m) => Observed::Invalid(m),
    }
}

/// Reads every entry's files, and the files the node's components are given (when the inputs
/// came from a node).
pub fn observe(desired: &Desired) -> Disk {
    observe_with(desired, Keys::Load)
}

/// [`observe`], loading the tree's private keys or leaving them unread.
pub fn observe_with(desired: &Desired, keys: Keys) -> Disk {
    let mut d = read_entries(&desired.entries, &desired.inputs.root, keys);
    d.node = node::observe(desired);
    d.rotation = rotation::observe(desired);
    d
}

/// Reads the files of `entries`.
pub fn observe_entries(list: &[Entry]) -> Disk {
    observe_entries_in(list, &crate::inputs::root::Root::none())
}

/// [`observe_entries`] on a node under `--root` (kubeconfig references are read under it).
///
/// Entries are read on up to two threads: reading a tree is mostly loading private keys (an
/// RSA key's consistency check costs about a millisecond), and the entries are independent.
/// The first entry (the first CA) is read on its own first: when none of its files is there
/// (a new tree) the rest is read on this thread, as a second thread would cost more to start
/// than the few failed opens it would take over.
pub fn observe_entries_in(list: &[Entry], root: &crate::inputs::root::Root) -> Disk {
    read_entries(list, root, Keys::Load)
}

fn read_entries(list: &[Entry], root: &crate::inputs::root::Root, keys: Keys) -> Disk {
    // A folder that is not there (a new tree) is looked at once, not once per file in it.
    let absent: HashSet<PathBuf> = list
        .iter()
        .flat_map(entry_paths)
        .filter_map(|p| p.parent().map(Path::to_path_buf))
        .collect::<HashSet<_>>()
        .into_iter()
        .filter(|d| !d.as_os_str().is_empty() && read::absent_dir(d))
        .collect();
    let absent = &absent;
    // Without the keys a read is a few certificate parses: less than a thread costs to start
    // (its stack, its malloc arena), so it stays on this one.
    let threads = match keys {
        Keys::Skip => 1,
        Keys::Load => crate::limits::cores().clamp(1, 2),
    };
    let (head, list) = list.split_at(list.len().min(1));
    let head: Vec<Read> = head
        .iter()
        .map(|e| read_entry(e, root, absent, keys))
        .collect();
    let new_tree = head
        .iter()
        .all(|r| r.seen.is_missing() && r.csr != Some(true));
    let chunk = list.len().div_ceil(threads).max(1);
    let mut parts: Vec<Vec<Read>> = if threads == 1 || list.len() < 4 || new_tree {
        vec![list
            .iter()
            .map(|e| read_entry(e, root, absent, keys))
            .collect()]
    } else {
        std::thread::scope(|scope| {
            let mut chunks = list.chunks(chunk);
            let first = chunks.next().unwrap_or(&[]);
            let handles: Vec<_> = chunks
                .map(|c| {
                    scope.spawn(move || {
                        c.iter()
                            .map(|e| read_entry(e, root, absent, keys))
                            .collect()
                    })
                })
                .collect();
            let mut parts = vec![first
                .iter()
                .map(|e| read_entry(e, root, absent, keys))
                .collect()];
            for h in handles {
                // A panic in a reader is a bug: surface it as the same panic here.
                parts.push(h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
            }
            parts
        })
    };
    parts.insert(0, head);
    let mut entries = HashMap::new();
    let mut signed = HashMap::new();
    let mut csr = HashMap::new();
    for r in parts.into_iter().flatten() {
        if let Some(c) = r.csr {
            csr.insert(r.name.clone(), c);
        }
        if let Some(s) = r.signed {
            signed.insert(r.name.clone(), s);
        }
        entries.insert(r.name, r.seen);
    }
    Disk {
        entries,
        signed,
        csr,
        node: None,
        rotation: rotation::RotationDisk::default(),
    }
}

/// What one entry's files hold.
struct Read {
    name: String,
    csr: Option<bool>,
    signed: Option<Observed<CertFile>>,
    seen: Seen,
}

/// The files of an entry that observing it reads.
fn entry_paths(e: &Entry) -> Vec<PathBuf> {
    let mut v = match e {
        Entry::Ca(c) | Entry::Leaf(c) => vec![c.cert_path.clone(), c.key_path.clone()],
        Entry::KeyPair(k) => vec![k.key_path.clone(), k.pub_path.clone()],
        Entry::Kubeconfig(k) => vec![k.signed_path(), k.path.clone()],
    };
    v.extend(e.csr_path());
    v
}

fn read_entry(
    e: &Entry,
    root: &crate::inputs::root::Root,
    absent: &HashSet<PathBuf>,
    keys: Keys,
) -> Read {
    let gone = |p: &Path| p.parent().is_some_and(|d| absent.contains(d));
    let csr = e
        .csr_path()
        .map(|p| !gone(&p) && std::fs::symlink_metadata(p).is_ok());
    let cert = |p: &Path| {
        if gone(p) {
            Observed::Missing
        } else {
            read_cert(p)
        }
    };
    let key = |p: &Path| {
        if gone(p) {
            Observed::Missing
        } else if keys == Keys::Skip {
            // Anything at that name (a dangling link too) is "there", as a read would find.
            if std::fs::symlink_metadata(p).is_ok() {
                Observed::Unread
            } else {
                Observed::Missing
            }
        } else {
            arc_key(read_key(p))
        }
    };
    let signed = match e {
        Entry::Kubeconfig(k) => Some(cert(&k.signed_path())),
        _ => None,
    };
    let seen = match e {
        Entry::Ca(c) | Entry::Leaf(c) => Seen::Cert {
            cert: cert(&c.cert_path),
            key: key(&c.key_path),
        },
        Entry::KeyPair(k) => Seen::KeyPair {
            key: key(&k.key_path),
            public: if gone(&k.pub_path) {
                Observed::Missing
            } else {
                read_public_key(&k.pub_path)
            },
        },
        Entry::Kubeconfig(k) if gone(&k.path) => Seen::Kubeconfig(Observed::Missing),
        Entry::Kubeconfig(k) => Seen::Kubeconfig(read_kubeconfig_with(&k.path, root, keys)),
    };
    Read {
        name: e.name().to_string(),
        csr,
        signed,
        seen,
    }
}
