//! The control-plane join bundle: kubeadm's encrypted `kube-system/kubeadm-certs` Secret.
//!
//! A new control-plane node needs the cluster's CAs and service-account key pair. kubeadm moves
//! them with `init phase upload-certs` and `join --control-plane --certificate-key`; kpki reads
//! and writes the same Secret byte-compatibly, so either tool can be on either side:
//!
//! * data keys: each file's path under the cert dir with `/` replaced by `-` (`etcd-ca.crt`);
//!   which files travel is the spec's `bundle = true`, plus kubeadm's three `external-etcd*`
//!   files named by the config's `etcd.external` (they may live outside the cert dir);
//! * each value: base64(12-byte nonce || AES-256-GCM ciphertext || 16-byte tag), no additional
//!   data, a fresh nonce per file, the key being the 32 bytes of the hex certificate key;
//! * a file missing on disk is an empty value (skipped on download), a missing data key is an
//!   error.
//!
//! The work is split so that the decrypted, checked [`Material`] (entry and part -> bytes) stands
//! apart from the writing ([`install`]), which plan/apply can later take over as import steps.
//! Neither the key nor any plaintext ever appears in an error or a `Debug` output.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::apply::write::{self, WritePolicy};
use crate::disk::read::{parse_cert_pem, read_optional};
use crate::error::{Error, Result};
use crate::model::resolve::{Desired, Entry};
use crate::model::spec::{bundle_key, Spec, EXTERNAL_ETCD_BUNDLE_KEYS};
use crate::ops::token::{self, BootstrapToken};
use crate::x509::keys::PrivateKey;
use crate::Run;

/// Name of the bundle Secret.
pub const SECRET_NAME: &str = "kubeadm-certs";
/// Namespace of every object the bundle consists of.
pub const NAMESPACE: &str = "kube-system";
/// Name of the Role and RoleBinding that let joining nodes read the Secret.
pub const RBAC_NAME: &str = "kubeadm:kubeadm-certs";
/// The group bootstrap tokens authenticate as (kubeadm's `NodeBootstrapTokenAuthGroup`).
pub const BOOTSTRAPPERS_GROUP: &str = "system:bootstrappers:kubeadm:default-node-token";
/// Lifetime of the token that owns the Secret (kubeadm's `DefaultCertTokenDuration`).
pub const TOKEN_TTL: time::Duration = time::Duration::hours(2);
/// Description kubeadm gives that token.
pub const TOKEN_DESCRIPTION: &str = "Proxy for managing TTL for the kubeadm-certs secret";
/// Type of bootstrap-token Secrets.
pub const TOKEN_SECRET_TYPE: &str = "bootstrap.kubernetes.io/token";

/// Bytes of the AES-GCM tag after the ciphertext.
const TAG_LEN: usize = 16;

// ------------------------------------------------------------------ the key

/// A certificate key: the 32-byte AES-256 key, written as 64 hex characters (kubeadm's
/// `--certificate-key`). Never printed by `Debug`.
pub struct CertificateKey([u8; 32]);

impl fmt::Debug for CertificateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CertificateKey(<redacted>)")
    }
}

impl CertificateKey {
    /// Parses the hex form (surrounding white space ignored). `field` names the flag or file in
    /// the error, which never repeats the text.
    pub fn from_hex(text: &str, field: &str) -> Result<CertificateKey> {
        let t = text.trim();
        if t.len() != 64 {
            return Err(Error::input(
                field,
                format!(
                    "a certificate key is 64 hexadecimal characters (32 bytes); this one has {} characters",
                    t.chars().count()
                ),
            ));
        }
        let mut key = [0u8; 32];
        hex::decode_to_slice(t, &mut key).map_err(|_| {
            Error::input(
                field,
                "the certificate key contains characters that are not hexadecimal digits",
            )
        })?;
        Ok(CertificateKey(key))
    }

    /// A new random key (kubeadm's `CreateCertificateKey`).
    pub fn generate(run: &Run<'_>) -> Result<CertificateKey> {
        let mut key = [0u8; 32];
        run.entropy.fill(&mut key)?;
        Ok(CertificateKey(key))
    }

    /// The hex form (64 lower-case characters).
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    fn aead(&self) -> Result<LessSafeKey> {
        let unbound = UnboundKey::new(&AES_256_GCM, &self.0)
            .map_err(|_| Error::crypto("certificate key", "AES-256-GCM refused the key"))?;
        Ok(LessSafeKey::new(unbound))
    }
}

/// Encrypts one file: `nonce || ciphertext || tag`, the nonce drawn from the run's entropy.
fn seal(key: &LessSafeKey, run: &Run<'_>, plain: &[u8]) -> Result<Vec<u8>> {
    let mut nonce = [0u8; NONCE_LEN];
    run.entropy.fill(&mut nonce)?;
    let mut buf = plain.to_vec();
    key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut buf)
        .map_err(|_| Error::crypto("join bundle", "AES-256-GCM encryption failed"))?;
    let mut out = Vec::with_capacity(NONCE_LEN + buf.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&buf);
    Ok(out)
}

/// Why one value did not decrypt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpenError {
    /// Shorter than nonce + tag.
    Truncated(usize),
    /// The tag does not verify: wrong key, or the value was altered.
    Auth,
}

fn open(key: &LessSafeKey, sealed: &[u8]) -> std::result::Result<Vec<u8>, OpenError> {
    if sealed.len() < NONCE_LEN + TAG_LEN {
        return Err(OpenError::Truncated(sealed.len()));
    }
    let (nonce, body) = sealed.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| OpenError::Auth)?;
    let mut buf = body.to_vec();
    let n = key
        .open_in_place(nonce, Aad::empty(), &mut buf)
        .map_err(|_| OpenError::Auth)?
        .len();
    buf.truncate(n);
    Ok(buf)
}

// ------------------------------------------------------------------ which files travel

/// Which file of an entry a bundle value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Part {
    /// A certificate (PEM).
    Cert,
    /// A private key (PEM).
    Key,
    /// A bare public key (`PUBLIC KEY` PEM).
    Public,
}

/// What a value must be, which decides its checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotKind {
    /// A spec CA: the certificate is a CA; the key, when present, is its key.
    Ca,
    /// A spec key pair: the public key is the private key's.
    KeyPair,
    /// `etcd.external.caFile`: a CA certificate.
    ExternalEtcdCa,
    /// `etcd.external.certFile` / `keyFile`: a client certificate and its key.
    ExternalEtcdClient,
}

/// One file the bundle carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    /// Data key in the Secret (`etcd-ca.crt`).
    pub data_key: String,
    /// Spec entry (`etcd-ca`), or `external-etcd-ca` / `external-etcd`.
    pub entry: String,
    /// Which file of the entry.
    pub part: Part,
    /// What it must be.
    pub kind: SlotKind,
    /// Where it lives; `None` for an `etcd.external` file the config does not name.
    pub path: Option<PathBuf>,
    /// File mode it is written with.
    pub mode: u32,
    /// An empty value (file absent on the first node) is refused. A CA key may be absent
    /// (external CA: the key stays offline), and so may the external-etcd files (an insecure
    /// external etcd); everything else a control plane cannot run without.
    pub required: bool,
}

/// Every file of the bundle for one tree, in write order (each key before its certificate).
#[derive(Debug, Clone)]
pub struct Layout {
    /// The files.
    pub slots: Vec<Slot>,
    /// The cert dir (locked while writing).
    pub cert_dir: PathBuf,
    /// Mode of directories kpki creates.
    pub dir_mode: u32,
    /// The spec entries whose files travel (CAs, key pairs): the bundle's material for them is
    /// judged by the one assessment, like files on disk.
    pub entries: Vec<Entry>,
}

impl Layout {
    fn slot(&self, data_key: &str) -> Option<&Slot> {
        self.slots.iter().find(|s| s.data_key == data_key)
    }
}

/// The bundle's files for a resolved tree: the entries the spec marks `bundle = true` (those
/// whose condition holds, so `etcd-ca` only with a local etcd), then the `etcd.external` files
/// when the config has an external etcd.
pub fn layout(spec: &Spec, desired: &Desired) -> Result<Layout> {
    let cert_dir = &desired.inputs.cert_dir;
    let modes = desired.modes;
    let rel_key = |entry: &str, path: &Path| -> Result<String> {
        let rel = path.strip_prefix(cert_dir).map_err(|_| Error::Spec {
            origin: "resolved".into(),
            entry: entry.to_string(),
            message: format!(
                "{} is not under the cert dir; only cert-dir files can travel in the join bundle",
                path.display()
            ),
        })?;
        Ok(bundle_key(&rel.to_string_lossy()))
    };
    let mut slots = Vec::new();
    for e in &desired.entries {
        match e {
            Entry::Ca(c) if spec.ca(&c.name).is_some_and(|s| s.bundle) => {
                for (part, path, mode, required) in [
                    (Part::Key, &c.key_path, modes.key, false),
                    (Part::Cert, &c.cert_path, modes.cert, true),
                ] {
                    slots.push(Slot {
                        data_key: rel_key(&c.name, path)?,
                        entry: c.name.clone(),
                        part,
                        kind: SlotKind::Ca,
                        path: Some(path.clone()),
                        mode,
                        required,
                    });
                }
            }
            Entry::KeyPair(k) if spec.keypairs.iter().any(|s| s.name == k.name && s.bundle) => {
                for (part, path, mode) in [
                    (Part::Key, &k.key_path, modes.key),
                    (Part::Public, &k.pub_path, modes.public),
                ] {
                    slots.push(Slot {
                        data_key: rel_key(&k.name, path)?,
                        entry: k.name.clone(),
                        part,
                        kind: SlotKind::KeyPair,
                        path: Some(path.clone()),
                        mode,
                        required: true,
                    });
                }
            }
            _ => {}
        }
    }
    if let Some(ext) = &desired.inputs.external_etcd {
        let [ca_key, cert_key, key_key] = EXTERNAL_ETCD_BUNDLE_KEYS;
        for (data_key, entry, part, kind, path, mode) in [
            (
                ca_key,
                "external-etcd-ca",
                Part::Cert,
                SlotKind::ExternalEtcdCa,
                &ext.ca_file,
                modes.cert,
            ),
            (
                key_key,
                "external-etcd",
                Part::Key,
                SlotKind::ExternalEtcdClient,
                &ext.key_file,
                modes.key,
            ),
            (
                cert_key,
                "external-etcd",
                Part::Cert,
                SlotKind::ExternalEtcdClient,
                &ext.cert_file,
                modes.cert,
            ),
        ] {
            slots.push(Slot {
                data_key: data_key.to_string(),
                entry: entry.to_string(),
                part,
                kind,
                path: path.clone(),
                mode,
                required: false,
            });
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for s in &slots {
        if !seen.insert(s.data_key.as_str()) {
            return Err(Error::Spec {
                origin: "resolved".into(),
                entry: s.entry.clone(),
                message: format!("two bundle files share the data key {:?}", s.data_key),
            });
        }
    }
    let entries = desired
        .entries
        .iter()
        .filter(|e| slots.iter().any(|s| s.entry == e.name()))
        .cloned()
        .collect();
    Ok(Layout {
        slots,
        cert_dir: cert_dir.clone(),
        dir_mode: modes.dir,
        entries,
    })
}

// ------------------------------------------------------------------ the material

/// One decrypted (or read) file.
#[derive(Clone, PartialEq, Eq)]
pub struct Item {
    /// Data key in the Secret.
    pub data_key: String,
    /// Spec entry (or `external-etcd-ca` / `external-etcd`).
    pub entry: String,
    /// Which file of the entry.
    pub part: Part,
    /// The file's bytes.
    pub bytes: Vec<u8>,
}

impl fmt::Debug for Item {
    // Private keys: the bytes are never printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Item")
            .field("data_key", &self.data_key)
            .field("entry", &self.entry)
            .field("part", &self.part)
            .field("len", &self.bytes.len())
            .finish()
    }
}

/// The files a bundle carries, checked: every file parses, pairs match, CAs are CAs. Values that
/// were empty (files absent on the first node) are not here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Material {
    /// In layout order.
    pub items: Vec<Item>,
}

impl Material {
    /// The bytes of one file of an entry.
    pub fn get(&self, entry: &str, part: Part) -> Option<&[u8]> {
        self.items
            .iter()
            .find(|i| i.entry == entry && i.part == part)
            .map(|i| i.bytes.as_slice())
    }

    fn by_key(&self, data_key: &str) -> Option<&Item> {
        self.items.iter().find(|i| i.data_key == data_key)
    }
}

/// A fixed message for an unreadable private key: parser details could quote key bytes.
const BAD_KEY: &str = "is not a private key kpki can read (PEM RSA/EC/PKCS#8, unencrypted)";

fn parse_key(bytes: &[u8]) -> std::result::Result<PrivateKey, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| BAD_KEY.to_string())?;
    PrivateKey::from_pem(text).map_err(|_| BAD_KEY.to_string())
}

fn parse_cert(bytes: &[u8]) -> std::result::Result<crate::x509::inspect::CertInfo, String> {
    let (der, _) = parse_cert_pem(bytes).map_err(|m| format!("is not a certificate: {m}"))?;
    crate::x509::inspect::info(&der).map_err(|m| format!("is not a certificate: {m}"))
}

fn parse_public(bytes: &[u8]) -> std::result::Result<Vec<u8>, String> {
    let bad = || "is not a PUBLIC KEY PEM block".to_string();
    let text = std::str::from_utf8(bytes).map_err(|_| bad())?;
    let block = pem::parse(text).map_err(|_| bad())?;
    if block.tag() != "PUBLIC KEY" {
        return Err(bad());
    }
    Ok(block.into_contents())
}

/// Checks the material: every file parses, CA certificates are CAs, each key belongs to its
/// certificate or public key. Errors are `(data key, message)`; messages quote no key bytes.
pub fn check(layout: &Layout, material: &Material) -> std::result::Result<(), (String, String)> {
    let err = |k: &str, m: String| (k.to_string(), m);
    for slot in &layout.slots {
        if slot.required && material.by_key(&slot.data_key).is_none() {
            return Err(err(&slot.data_key, "is required but missing".into()));
        }
    }
    for item in &material.items {
        let Some(slot) = layout.slot(&item.data_key) else {
            continue;
        };
        // The spec's entries are judged like files on disk ([`judge`]); what remains here is
        // the shape of the `etcd.external` files, which the spec does not describe.
        if matches!(slot.kind, SlotKind::Ca | SlotKind::KeyPair) {
            parse_any(item).map_err(|m| err(&item.data_key, m))?;
            continue;
        }
        let k = item.data_key.as_str();
        match item.part {
            Part::Cert => {
                let info = parse_cert(&item.bytes).map_err(|m| err(k, m))?;
                let must_be_ca = matches!(slot.kind, SlotKind::Ca | SlotKind::ExternalEtcdCa);
                if must_be_ca && !info.is_ca {
                    return Err(err(
                        k,
                        "is not a CA certificate (basicConstraints CA:FALSE or absent)".into(),
                    ));
                }
                // The key, if it travels too, must be this certificate's.
                let key_item = material
                    .items
                    .iter()
                    .find(|i| i.entry == item.entry && i.part == Part::Key);
                if let Some(key_item) = key_item {
                    let key = parse_key(&key_item.bytes).map_err(|m| err(&key_item.data_key, m))?;
                    if !key.matches_spki(&info.spki) {
                        return Err(err(
                            &key_item.data_key,
                            format!("is not the key of the certificate {k}"),
                        ));
                    }
                }
            }
            Part::Key => {
                parse_key(&item.bytes).map_err(|m| err(k, m))?;
                if slot.kind == SlotKind::ExternalEtcdClient
                    && material.get(&item.entry, Part::Cert).is_none()
                {
                    return Err(err(k, "travels without its certificate".into()));
                }
                if slot.kind == SlotKind::Ca && material.get(&item.entry, Part::Cert).is_none() {
                    return Err(err(k, "travels without its CA certificate".into()));
                }
            }
            Part::Public => {
                let spki = parse_public(&item.bytes).map_err(|m| err(k, m))?;
                if let Some(key_bytes) = material.get(&item.entry, Part::Key) {
                    let key = parse_key(key_bytes).map_err(|m| err(k, m))?;
                    if !key.matches_spki(&spki) {
                        return Err(err(
                            k,
                            "is not the public half of the private key beside it".into(),
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

/// Whether a value parses as what its part says (certificate, key, public key).
fn parse_any(item: &Item) -> std::result::Result<(), String> {
    match item.part {
        Part::Cert => parse_cert(&item.bytes).map(|_| ()),
        Part::Key => parse_key(&item.bytes).map(|_| ()),
        Part::Public => parse_public(&item.bytes).map(|_| ()),
    }
}

/// The one assessment of what the bundle carries for the spec's entries, as if it were on disk
/// with the spec's modes: a certificate that is not a CA, a key that is not the certificate's, an
/// expired CA, an `sa.pub` that is not `sa.key`'s are its findings, refused here naming the
/// data key.
fn judge(
    layout: &Layout,
    material: &Material,
    now: OffsetDateTime,
) -> std::result::Result<(), (String, String)> {
    use crate::disk::read::{parse_cert_pem, CertFile, KeyFile, Observed};
    use crate::disk::Seen;
    use std::sync::Arc;
    let mode = |entry: &str, part: Part| {
        layout
            .slots
            .iter()
            .find(|s| s.entry == entry && s.part == part)
            .map(|s| s.mode)
            .unwrap_or(0o600)
    };
    let cert = |entry: &str| -> Observed<CertFile> {
        match material.get(entry, Part::Cert) {
            None => Observed::Missing,
            Some(b) => match parse_cert_pem(b) {
                Ok((der, chain)) => Observed::Present(CertFile {
                    der,
                    chain,
                    mode: mode(entry, Part::Cert),
                }),
                Err(m) => Observed::Invalid(m),
            },
        }
    };
    let key = |entry: &str| -> Observed<Arc<KeyFile>> {
        match material.get(entry, Part::Key) {
            None => Observed::Missing,
            Some(b) => match parse_key(b) {
                Ok(key) => Observed::Present(Arc::new(KeyFile {
                    key,
                    mode: mode(entry, Part::Key),
                })),
                Err(m) => Observed::Invalid(m),
            },
        }
    };
    let public = |entry: &str| -> Observed<(Vec<u8>, u32)> {
        match material.get(entry, Part::Public) {
            None => Observed::Missing,
            Some(b) => match parse_public(b) {
                Ok(spki) => Observed::Present((spki, mode(entry, Part::Public))),
                Err(m) => Observed::Invalid(m),
            },
        }
    };
    let mut a = crate::assess::Assessor::new(now, crate::assess::Options::default());
    for e in &layout.entries {
        let seen = match e {
            Entry::Ca(c) => Seen::Cert {
                cert: cert(&c.name),
                key: key(&c.name),
            },
            Entry::KeyPair(k) => Seen::KeyPair {
                key: key(&k.name),
                public: public(&k.name),
            },
            _ => continue,
        };
        let ea = a.entry(e, &seen, None);
        let refused = ea
            .errors()
            .find(|f| f.remedy != crate::assess::Remedy::Repair)
            .map(|f| {
                let data_key = layout
                    .slots
                    .iter()
                    .find(|s| s.path.as_deref() == Some(Path::new(&f.path)))
                    .map(|s| s.data_key.clone())
                    .unwrap_or_else(|| e.name().to_string());
                (data_key, format!("{} ({})", f.message, f.code))
            });
        if let Some(r) = refused {
            return Err(r);
        }
    }
    Ok(())
}

/// Reads the bundle's files from the tree (the upload side). A missing required file is an
/// error; a missing optional one (CA key of an external CA, unset external-etcd file) is left
/// out and travels as an empty value, as kubeadm does.
pub fn read_tree(layout: &Layout) -> Result<Material> {
    let mut items = Vec::new();
    for slot in &layout.slots {
        let bytes = match &slot.path {
            Some(p) => read_optional(p)?,
            None => None,
        };
        match bytes {
            Some(b) if !b.is_empty() => items.push(Item {
                data_key: slot.data_key.clone(),
                entry: slot.entry.clone(),
                part: slot.part,
                bytes: b,
            }),
            _ if slot.required => {
                let path = slot.path.clone().unwrap_or_default();
                return Err(Error::file(
                    path,
                    format!(
                        "is missing or empty; the join bundle needs it ({})",
                        slot.data_key
                    ),
                ));
            }
            _ => {}
        }
    }
    let material = Material { items };
    check(layout, &material).map_err(|(key, message)| {
        let path = layout
            .slot(&key)
            .and_then(|s| s.path.clone())
            .unwrap_or_default();
        Error::file(path, message)
    })?;
    Ok(material)
}

// ------------------------------------------------------------------ the objects

/// `metadata.ownerReferences[]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OwnerReference {
    /// `v1`.
    pub api_version: String,
    /// True: deleting waits for this dependent.
    pub block_owner_deletion: bool,
    /// True: the owner is the managing controller.
    pub controller: bool,
    /// `Secret`.
    pub kind: String,
    /// `bootstrap-token-<id>`.
    pub name: String,
    /// The owner's server-assigned uid.
    pub uid: String,
}

/// `metadata` as kpki writes it (server-assigned fields are left to the server).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    /// Object name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// Owners (garbage collection).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub owner_references: Vec<OwnerReference>,
}

/// A `v1` Secret (fields in the order kubectl prints them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Secret {
    /// `v1`.
    pub api_version: String,
    /// Base64 values.
    pub data: BTreeMap<String, String>,
    /// `Secret`.
    pub kind: String,
    /// Name, namespace, owners.
    pub metadata: ObjectMeta,
    /// `Opaque` or `bootstrap.kubernetes.io/token`.
    #[serde(rename = "type")]
    pub type_: String,
}

/// An RBAC policy rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyRule {
    /// API groups (`""`: core).
    pub api_groups: Vec<String>,
    /// The only objects the rule covers.
    pub resource_names: Vec<String>,
    /// Resources.
    pub resources: Vec<String>,
    /// Verbs.
    pub verbs: Vec<String>,
}

/// An `rbac.authorization.k8s.io/v1` Role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Role {
    /// `rbac.authorization.k8s.io/v1`.
    pub api_version: String,
    /// `Role`.
    pub kind: String,
    /// Name and namespace.
    pub metadata: ObjectMeta,
    /// What it grants.
    pub rules: Vec<PolicyRule>,
}

/// A RoleBinding's `roleRef`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleRef {
    /// `rbac.authorization.k8s.io`.
    pub api_group: String,
    /// `Role`.
    pub kind: String,
    /// The Role.
    pub name: String,
}

/// A RoleBinding subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Subject {
    /// `rbac.authorization.k8s.io`.
    pub api_group: String,
    /// `Group`.
    pub kind: String,
    /// The group.
    pub name: String,
}

/// An `rbac.authorization.k8s.io/v1` RoleBinding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleBinding {
    /// `rbac.authorization.k8s.io/v1`.
    pub api_version: String,
    /// `RoleBinding`.
    pub kind: String,
    /// Name and namespace.
    pub metadata: ObjectMeta,
    /// The Role.
    pub role_ref: RoleRef,
    /// Who gets it.
    pub subjects: Vec<Subject>,
}

/// One object of the output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Object {
    /// A Secret (the bundle or its TTL token).
    Secret(Secret),
    /// The Role.
    Role(Role),
    /// The RoleBinding.
    RoleBinding(RoleBinding),
}

/// A `v1` List, what `kubectl apply -f` takes as one document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct List {
    /// `v1`.
    pub api_version: String,
    /// The objects, owner first.
    pub items: Vec<Object>,
    /// `List`.
    pub kind: String,
}

impl List {
    /// YAML, one document.
    pub fn to_yaml(&self) -> Result<String> {
        let mut opts = serde_saphyr::SerializerOptions::default();
        opts.prefer_block_scalars = false;
        opts.indent_step = 2;
        let mut out = String::new();
        serde_saphyr::to_fmt_writer_with_options(&mut out, self, opts)
            .map_err(|e| Error::crypto("rendering the join bundle as YAML", e))?;
        Ok(out)
    }

    /// Indented JSON with a final newline.
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string_pretty(self)
            .map(|s| s + "\n")
            .map_err(|e| Error::crypto("rendering the join bundle as JSON", e))
    }
}

/// The TTL token that already exists on the server and owns the bundle (second step of the
/// two-step apply: its uid is known only once the server has created it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// The token ID (`bootstrap-token-<id>`).
    pub token_id: String,
    /// The token Secret's `metadata.uid`.
    pub uid: String,
}

impl Owner {
    /// Checks the token ID (`[a-z0-9]{6}`) and the uid (a UUID, as the API server assigns).
    pub fn new(token_id: &str, uid: &str) -> Result<Owner> {
        let id_ok = token_id.len() == 6
            && token_id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if !id_ok {
            return Err(Error::input(
                "--token-id",
                format!("{token_id:?} is not a bootstrap token ID ([a-z0-9]{{6}})"),
            ));
        }
        let groups: Vec<&str> = uid.split('-').collect();
        let uuid_ok = groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
            && groups
                .iter()
                .all(|g| g.bytes().all(|b| b.is_ascii_hexdigit()));
        if !uuid_ok {
            return Err(Error::input(
                "--owner-uid",
                format!(
                    "{uid:?} is not a uid (8-4-4-4-12 hex digits, as `kubectl get secret -o jsonpath='{{.metadata.uid}}'` prints it)"
                ),
            ));
        }
        Ok(Owner {
            token_id: token_id.to_string(),
            uid: uid.to_ascii_lowercase(),
        })
    }
}

/// What `upload` produced.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Upload {
    /// The objects, ready for `kubectl apply -f`.
    pub objects: List,
    /// The new TTL token, when the output creates one (no [`Owner`] given).
    pub token: Option<BootstrapToken>,
}

fn meta(name: &str, owner_references: Vec<OwnerReference>) -> ObjectMeta {
    ObjectMeta {
        name: name.to_string(),
        namespace: NAMESPACE.to_string(),
        owner_references,
    }
}

/// The encrypted Secret's `data`: every slot of the layout, empty where the material has no file.
pub fn encrypt(
    layout: &Layout,
    material: &Material,
    key: &CertificateKey,
    run: &Run<'_>,
) -> Result<BTreeMap<String, String>> {
    let aead = key.aead()?;
    let mut data = BTreeMap::new();
    for slot in &layout.slots {
        let value = match material.by_key(&slot.data_key) {
            Some(item) => B64.encode(seal(&aead, run, &item.bytes)?),
            None => String::new(),
        };
        data.insert(slot.data_key.clone(), value);
    }
    Ok(data)
}

/// The objects `kubeadm init phase upload-certs` creates, for the given material: the 2-hour
/// bootstrap-token Secret, the encrypted `kubeadm-certs` Secret, and the Role and RoleBinding
/// that let bootstrap tokens read it.
///
/// Without `owner`, the token is new and the bundle carries no owner reference yet (the server
/// refuses one without the owner's uid): apply, then run again with the token's uid as `owner`,
/// which leaves the token out and ties the bundle to it.
pub fn upload(
    layout: &Layout,
    material: &Material,
    key: &CertificateKey,
    owner: Option<&Owner>,
    run: &Run<'_>,
) -> Result<Upload> {
    let data = encrypt(layout, material, key, run)?;
    let mut items = Vec::new();
    let (token, owner_references) = match owner {
        Some(o) => (
            None,
            vec![OwnerReference {
                api_version: "v1".into(),
                block_owner_deletion: true,
                controller: true,
                kind: "Secret".into(),
                name: format!("bootstrap-token-{}", o.token_id),
                uid: o.uid.clone(),
            }],
        ),
        None => {
            let t = token::generate(run)?;
            let expiration = expiration(run.now)?;
            let token_data: BTreeMap<String, String> = [
                ("description", TOKEN_DESCRIPTION),
                ("expiration", expiration.as_str()),
                ("token-id", t.id.as_str()),
                ("token-secret", t.secret.as_str()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), B64.encode(v)))
            .collect();
            items.push(Object::Secret(Secret {
                api_version: "v1".into(),
                data: token_data,
                kind: "Secret".into(),
                metadata: meta(&format!("bootstrap-token-{}", t.id), Vec::new()),
                type_: TOKEN_SECRET_TYPE.into(),
            }));
            (Some(t), Vec::new())
        }
    };
    items.push(Object::Secret(Secret {
        api_version: "v1".into(),
        data,
        kind: "Secret".into(),
        metadata: meta(SECRET_NAME, owner_references),
        type_: "Opaque".into(),
    }));
    items.push(Object::Role(Role {
        api_version: "rbac.authorization.k8s.io/v1".into(),
        kind: "Role".into(),
        metadata: meta(RBAC_NAME, Vec::new()),
        rules: vec![PolicyRule {
            api_groups: vec![String::new()],
            resource_names: vec![SECRET_NAME.into()],
            resources: vec!["secrets".into()],
            verbs: vec!["get".into()],
        }],
    }));
    items.push(Object::RoleBinding(RoleBinding {
        api_version: "rbac.authorization.k8s.io/v1".into(),
        kind: "RoleBinding".into(),
        metadata: meta(RBAC_NAME, Vec::new()),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "Role".into(),
            name: RBAC_NAME.into(),
        },
        subjects: vec![Subject {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "Group".into(),
            name: BOOTSTRAPPERS_GROUP.into(),
        }],
    }));
    Ok(Upload {
        objects: List {
            api_version: "v1".into(),
            items,
            kind: "List".into(),
        },
        token,
    })
}

// ------------------------------------------------------------------ reading a Secret

/// Any object as `kubectl get -o yaml|json` prints it; only what identifies the Secret and its
/// data is read, everything else (uid, managedFields, ...) is ignored.
#[derive(Debug, Deserialize)]
struct AnyObject {
    #[serde(rename = "apiVersion", default)]
    api_version: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    metadata: Option<AnyMeta>,
    #[serde(default)]
    data: Option<BTreeMap<String, Option<String>>>,
    #[serde(rename = "type", default)]
    type_: Option<String>,
    #[serde(default)]
    items: Option<Vec<AnyObject>>,
}

#[derive(Debug, Deserialize)]
struct AnyMeta {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
}

/// The `data` of a `kube-system/kubeadm-certs` Secret: data key -> base64 value (null read as
/// empty).
#[derive(Clone, PartialEq, Eq)]
pub struct BundleSecret {
    /// Data key -> base64 text.
    pub data: BTreeMap<String, String>,
}

impl fmt::Debug for BundleSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BundleSecret")
            .field("keys", &self.data.keys().collect::<Vec<_>>())
            .finish()
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn flatten(obj: AnyObject, out: &mut Vec<AnyObject>) {
    match obj.items {
        Some(items) if obj.kind.as_deref().is_none_or(|k| k.ends_with("List")) => {
            for i in items {
                flatten(i, out);
            }
        }
        _ => out.push(obj),
    }
}

fn describe(o: &AnyObject) -> String {
    let meta = o.metadata.as_ref();
    let ns = meta.and_then(|m| m.namespace.as_deref());
    let name = meta.and_then(|m| m.name.as_deref()).unwrap_or("(unnamed)");
    format!(
        "{} {}{name}",
        o.kind.as_deref().unwrap_or("(no kind)"),
        ns.map(|n| format!("{n}/")).unwrap_or_default()
    )
}

/// Reads the bundle Secret from `kubectl get secret -n kube-system kubeadm-certs -o yaml` or
/// `-o json` output (or a List holding it, such as `upload-bundle`'s). Errors are one line and
/// quote no value.
pub fn parse_secret(text: &str) -> std::result::Result<BundleSecret, String> {
    let docs: Vec<AnyObject> = if text.trim_start().starts_with('{') {
        vec![serde_json::from_str(text)
            .map_err(|e| format!("not valid JSON: {}", one_line(&e.to_string())))?]
    } else {
        let options = serde_saphyr::options! { with_snippet: false };
        serde_saphyr::from_multiple_with_options::<Option<AnyObject>>(text, options)
            .map_err(|e| {
                format!(
                    "not a Kubernetes object in YAML or JSON: {}",
                    one_line(&e.to_string())
                )
            })?
            .into_iter()
            .flatten()
            .collect()
    };
    let mut objects = Vec::new();
    for d in docs {
        flatten(d, &mut objects);
    }
    let is_bundle = |o: &AnyObject| {
        o.kind.as_deref() == Some("Secret")
            && o.metadata.as_ref().and_then(|m| m.name.as_deref()) == Some(SECRET_NAME)
    };
    let mut found: Vec<AnyObject> = Vec::new();
    let mut others = Vec::new();
    for o in objects {
        if is_bundle(&o) {
            found.push(o);
        } else {
            others.push(describe(&o));
        }
    }
    let secret = match found.len() {
        1 => found.remove(0),
        0 if others.is_empty() => return Err("holds no Kubernetes object".into()),
        0 => {
            return Err(format!(
                "is not the join bundle: expected Secret {NAMESPACE}/{SECRET_NAME}, found {}",
                others.join(", ")
            ))
        }
        n => return Err(format!("holds {n} Secrets named {SECRET_NAME}; give one")),
    };
    if secret.api_version.as_deref() != Some("v1") {
        return Err(format!(
            "Secret {SECRET_NAME}: apiVersion is {:?}, expected \"v1\"",
            secret.api_version.as_deref().unwrap_or("")
        ));
    }
    if let Some(ns) = secret
        .metadata
        .as_ref()
        .and_then(|m| m.namespace.as_deref())
    {
        if ns != NAMESPACE {
            return Err(format!(
                "is Secret {ns}/{SECRET_NAME}, not the join bundle {NAMESPACE}/{SECRET_NAME}"
            ));
        }
    }
    if let Some(t) = secret.type_.as_deref() {
        if t != "Opaque" {
            return Err(format!(
                "Secret {SECRET_NAME} has type {t:?}; the join bundle is Opaque"
            ));
        }
    }
    let data = secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or_default()))
        .collect();
    Ok(BundleSecret { data })
}

/// Decrypts and checks a bundle for this tree's layout. Every non-empty value must decrypt
/// (kubeadm's rule: an altered value fails the whole bundle), every file of the layout must have
/// a data key, required files a non-empty value; then [`check`]. Errors are `(data key or
/// "kubeadm-certs", message)`, quoting neither the key nor any plaintext.
pub fn open_bundle(
    layout: &Layout,
    secret: &BundleSecret,
    key: &CertificateKey,
    now: OffsetDateTime,
) -> std::result::Result<Material, (String, String)> {
    let aead = key
        .aead()
        .map_err(|e| (SECRET_NAME.to_string(), e.to_string()))?;
    let mut plain: BTreeMap<&str, Vec<u8>> = BTreeMap::new();
    let mut failed: Vec<&str> = Vec::new();
    let mut tried = 0usize;
    for (k, v) in &secret.data {
        if v.is_empty() {
            continue;
        }
        let raw = B64
            .decode(v.trim())
            .map_err(|_| (k.clone(), "is not valid base64".to_string()))?;
        tried += 1;
        match open(&aead, &raw) {
            Ok(p) => {
                plain.insert(k.as_str(), p);
            }
            Err(OpenError::Truncated(n)) => {
                return Err((
                    k.clone(),
                    format!(
                        "is truncated: {n} bytes, less than the {NONCE_LEN}-byte nonce and {TAG_LEN}-byte tag"
                    ),
                ))
            }
            Err(OpenError::Auth) => failed.push(k.as_str()),
        }
    }
    if !failed.is_empty() && failed.len() == tried {
        return Err((
            SECRET_NAME.to_string(),
            "wrong certificate key: no value decrypts with it (AES-GCM authentication failed)"
                .into(),
        ));
    }
    if let Some(k) = failed.first() {
        return Err((
            k.to_string(),
            "does not decrypt although other values do: the value was altered (AES-GCM authentication failed)".into(),
        ));
    }
    let mut items = Vec::new();
    for slot in &layout.slots {
        let Some(value) = secret.data.get(&slot.data_key) else {
            return Err((
                slot.data_key.clone(),
                format!(
                    "is missing from the Secret (a bundle for this tree carries {})",
                    layout
                        .slots
                        .iter()
                        .map(|s| s.data_key.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        };
        if value.is_empty() {
            if slot.required {
                return Err((
                    slot.data_key.clone(),
                    "is empty, but a control-plane node cannot run without it".into(),
                ));
            }
            continue;
        }
        if slot.path.is_none() {
            return Err((
                slot.data_key.clone(),
                format!(
                    "is in the bundle but the kubeadm config names no etcd.external.{} to write it to",
                    match slot.part {
                        Part::Key => "keyFile",
                        _ if slot.kind == SlotKind::ExternalEtcdCa => "caFile",
                        _ => "certFile",
                    }
                ),
            ));
        }
        let bytes = plain.remove(slot.data_key.as_str()).unwrap_or_default();
        items.push(Item {
            data_key: slot.data_key.clone(),
            entry: slot.entry.clone(),
            part: slot.part,
            bytes,
        });
    }
    let material = Material { items };
    check(layout, &material)?;
    judge(layout, &material, now)?;
    Ok(material)
}

// ------------------------------------------------------------------ writing

/// How [`install`] may write.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct InstallOptions {
    /// How long to wait for another kpki process holding the tree lock.
    pub lock_timeout: std::time::Duration,
    /// Write even into directories that group or others can write to.
    pub allow_insecure_dir: bool,
}

/// One file after [`install`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Installed {
    /// Data key.
    pub data_key: String,
    /// Where it is.
    pub path: PathBuf,
    /// True: written now; false: an identical file was there already.
    pub written: bool,
}

/// Writes the material into the tree with the one writer: under the tree lock, directories
/// checked, every new file staged with its final mode, one flush, then renamed into place in
/// layout order (keys first), no-clobber. A file already there with the same bytes is kept; one
/// with other bytes is an error before anything is written: kpki never replaces a CA key, and a
/// bundle never silently changes a tree. `etcd.external` files go to their configured paths,
/// their directories checked and flushed like the cert dir.
pub fn install(
    layout: &Layout,
    material: &Material,
    opts: &InstallOptions,
) -> Result<Vec<Installed>> {
    let targets: Vec<(&Slot, &Item)> = layout
        .slots
        .iter()
        .filter_map(|s| material.by_key(&s.data_key).map(|i| (s, i)))
        .collect();
    let path_of = |s: &Slot| -> Result<PathBuf> {
        s.path.clone().ok_or_else(|| {
            Error::input(
                "etcd.external",
                format!("no path to write {} to", s.data_key),
            )
        })
    };
    if !opts.allow_insecure_dir {
        write::check_dir_secure(&layout.cert_dir)?;
        for (s, _) in &targets {
            let p = path_of(s)?;
            if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                write::check_dir_secure(dir)?;
            }
        }
    }
    let _lock = write::lock_dir(&layout.cert_dir, layout.dir_mode, opts.lock_timeout)?;

    let mut out = Vec::new();
    let mut todo: Vec<(&Slot, &Item, PathBuf)> = Vec::new();
    for (slot, item) in &targets {
        let path = path_of(slot)?;
        match std::fs::symlink_metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                todo.push((slot, item, path));
            }
            Err(e) => return Err(Error::io(&path, e)),
            Ok(m) if m.file_type().is_symlink() => {
                return Err(Error::file(
                    &path,
                    "is a symbolic link; kpki does not write through links",
                ))
            }
            Ok(m) if !m.is_file() => {
                return Err(Error::file(&path, "is not a regular file"));
            }
            Ok(_) => {
                let existing = crate::disk::read::read_optional(&path)?.unwrap_or_default();
                if existing != item.bytes {
                    let message = if slot.kind == SlotKind::Ca && slot.part == Part::Key {
                        "holds a different CA key than the bundle; kpki never replaces a CA key (this node belongs to another cluster: move its tree away to join this one)"
                    } else {
                        "differs from the bundle's file; kpki does not overwrite it (move it away to take the bundle's)"
                    };
                    return Err(Error::Conflict {
                        entry: slot.entry.clone(),
                        path,
                        message: message.into(),
                    });
                }
                out.push(Installed {
                    data_key: slot.data_key.clone(),
                    path,
                    written: false,
                });
            }
        }
    }

    // The one path check over every file before the first is written: inside the cert dir or
    // the external-etcd files' directories, no link on the way.
    let mut policy = WritePolicy {
        roots: vec![crate::model::layout::normalize(&layout.cert_dir)],
        allow_insecure_dir: opts.allow_insecure_dir,
        ..Default::default()
    };
    for (slot, _, path) in &todo {
        if slot.kind != SlotKind::Ca && slot.kind != SlotKind::KeyPair {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                policy.roots.push(crate::model::layout::normalize(dir));
            }
        }
    }
    let writes: Vec<write::PlannedWrite<'_>> = todo
        .iter()
        .map(|(slot, _, path)| write::PlannedWrite {
            entry: &slot.entry,
            path,
            kind: write::WriteKind::Contents,
        })
        .collect();
    policy.check(&writes)?;

    let files: Vec<(String, PathBuf, Vec<u8>, u32)> = todo
        .iter()
        .map(|(slot, item, path)| {
            (
                slot.entry.clone(),
                path.clone(),
                item.bytes.clone(),
                slot.mode,
            )
        })
        .collect();
    crate::apply::write_files(files, layout.dir_mode)?;
    for (slot, _, path) in &todo {
        out.push(Installed {
            data_key: slot.data_key.clone(),
            path: path.clone(),
            written: true,
        });
    }
    Ok(out)
}

/// `kpki init --join`: a joining control-plane node issues its own leaves and kubeconfigs but
/// takes the cluster's CAs and service-account keys from the first node; creating them here would
/// make a second, unrelated cluster. Refuses, naming the first missing file.
pub fn check_joinable(spec: &Spec, desired: &Desired) -> Result<()> {
    let layout = layout(spec, desired)?;
    for slot in layout.slots.iter().filter(|s| s.required) {
        let Some(path) = &slot.path else { continue };
        if std::fs::symlink_metadata(path).is_err() {
            return Err(Error::Conflict {
                entry: slot.entry.clone(),
                path: path.clone(),
                message: "is missing: a joining control-plane node takes it from the first one (kpki certs download-bundle); init --join never creates it".into(),
            });
        }
    }
    Ok(())
}

/// The token's expiry as kubeadm writes it: RFC 3339, UTC, whole seconds.
fn expiration(now: OffsetDateTime) -> Result<String> {
    now.checked_add(TOKEN_TTL)
        .ok_or_else(|| Error::input("--now", "the token's expiry would be past the year 9999"))?
        .to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .map_err(|e| Error::crypto("token expiration", e))?
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(|e| Error::crypto("token expiration", e))
}

#[cfg(test)]
mod tests {
    /// Inside the fixture's validity (its CAs were made in November 2025).
    const NOW: OffsetDateTime = time::macros::datetime!(2026-11-28 09:00 UTC);
    use super::*;
    use crate::entropy::FixedEntropy;
    use crate::inputs::{InputArgs, Inputs};
    use crate::model::resolve::resolve;

    fn fixture(rel: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures/kubeadm-v1.28.4-rsa")
            .join(rel)
    }

    fn tree_layout(cert_dir: &Path) -> Layout {
        let args = InputArgs {
            cert_dir: Some(cert_dir.to_path_buf()),
            node_name: Some("n".into()),
            advertise_address: Some("10.0.0.10".parse().expect("ip")),
            ..Default::default()
        };
        let spec = Spec::default_spec().expect("spec");
        let inputs = Inputs::from_args(&args).expect("inputs");
        layout(&spec, &resolve(&spec, &inputs).expect("resolve")).expect("layout")
    }

    fn fixture_key() -> CertificateKey {
        let text =
            std::fs::read_to_string(fixture("upload-certs/certificate-key.txt")).expect("key");
        CertificateKey::from_hex(&text, "key").expect("hex")
    }

    #[test]
    fn layout_follows_the_spec() {
        let l = tree_layout(Path::new("/x/pki"));
        let keys: Vec<&str> = l.slots.iter().map(|s| s.data_key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "ca.key",
                "ca.crt",
                "front-proxy-ca.key",
                "front-proxy-ca.crt",
                "etcd-ca.key",
                "etcd-ca.crt",
                "sa.key",
                "sa.pub"
            ]
        );
        let etcd = l.slot("etcd-ca.crt").expect("etcd-ca.crt");
        assert_eq!(etcd.path.as_deref(), Some(Path::new("/x/pki/etcd/ca.crt")));
        assert_eq!((etcd.mode, etcd.required), (0o644, true));
        assert_eq!(
            l.slot("ca.key").map(|s| (s.mode, s.required)),
            Some((0o600, false))
        );
    }

    #[test]
    fn opens_kubeadms_capture_byte_for_byte() {
        let text = std::fs::read_to_string(fixture("upload-certs/kubeadm-certs.secret.yaml"))
            .expect("secret");
        let secret = parse_secret(&text).expect("parse");
        let layout = tree_layout(Path::new("/x/pki"));
        let m = open_bundle(&layout, &secret, &fixture_key(), NOW).expect("open");
        assert_eq!(m.items.len(), 8);
        for item in &m.items {
            let rel = layout
                .slot(&item.data_key)
                .and_then(|s| s.path.clone())
                .expect("path");
            let rel = rel.strip_prefix("/x/pki").expect("under");
            let want = std::fs::read(fixture("pki").join(rel)).expect("fixture file");
            assert_eq!(item.bytes, want, "{}", item.data_key);
        }
        assert_eq!(
            m.get("etcd-ca", Part::Cert),
            Some(
                std::fs::read(fixture("pki/etcd/ca.crt"))
                    .expect("ca")
                    .as_slice()
            )
        );
    }

    #[test]
    fn aes_256_gcm_known_answer_and_entropy_nonce() {
        // McGrew & Viega GCM test case 14: K = 0^256, IV = 0^96, P = 0^128.
        let key = CertificateKey([0u8; 32]);
        let aead = key.aead().expect("key");
        let e = FixedEntropy::new(0);
        let run = Run {
            now: OffsetDateTime::UNIX_EPOCH,
            entropy: &e,
            jobs: 1,
        };
        let sealed = seal(&aead, &run, &[0u8; 16]).expect("seal");
        // The fixed entropy's counter gives the nonce: 0 then 1, 8 bytes each, cut to 12.
        assert_eq!(hex::encode(&sealed[..12]), "000000000000000000000000");
        assert_eq!(
            hex::encode(&sealed[12..]),
            "cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919"
        );
        let next = seal(&aead, &run, b"x").expect("seal");
        assert_eq!(hex::encode(&next[..12]), "000000000000000200000000");
        assert_eq!(open(&aead, &sealed).expect("open"), [0u8; 16]);
        let mut flipped = sealed.clone();
        flipped[20] ^= 1;
        assert_eq!(open(&aead, &flipped), Err(OpenError::Auth));
        assert_eq!(open(&aead, &sealed[..27]), Err(OpenError::Truncated(27)));
    }

    #[test]
    fn round_trip_and_refusals() {
        let layout = tree_layout(Path::new("/x/pki"));
        let text = std::fs::read_to_string(fixture("upload-certs/kubeadm-certs.secret.yaml"))
            .expect("secret");
        let material = open_bundle(
            &layout,
            &parse_secret(&text).expect("parse"),
            &fixture_key(),
            NOW,
        )
        .expect("open");
        let e = FixedEntropy::new(7);
        let run = Run {
            now: OffsetDateTime::UNIX_EPOCH,
            entropy: &e,
            jobs: 1,
        };
        let key = CertificateKey::generate(&run).expect("key");
        let up = upload(&layout, &material, &key, None, &run).expect("upload");
        let yaml = up.objects.to_yaml().expect("yaml");
        let json = up.objects.to_json().expect("json");
        for text in [&yaml, &json] {
            let back = parse_secret(text).expect("parse own output");
            assert_eq!(
                open_bundle(&layout, &back, &key, NOW).expect("open"),
                material
            );
        }
        let secret = parse_secret(&yaml).expect("parse");
        let other = CertificateKey([9u8; 32]);
        let (k, m) = open_bundle(&layout, &secret, &other, NOW).expect_err("wrong key");
        assert_eq!(k, "kubeadm-certs");
        assert!(m.starts_with("wrong certificate key"), "{m}");

        let mut altered = secret.clone();
        let v = altered.data.get_mut("sa.key").expect("sa.key");
        let mut raw = B64.decode(v.as_bytes()).expect("b64");
        raw[40] ^= 0x80;
        *v = B64.encode(raw);
        let (k, m) = open_bundle(&layout, &altered, &key, NOW).expect_err("flipped");
        assert_eq!(k, "sa.key");
        assert!(m.contains("altered"), "{m}");

        let mut empty = secret.clone();
        empty.data.insert("ca.crt".into(), String::new());
        let (k, m) = open_bundle(&layout, &empty, &key, NOW).expect_err("empty");
        assert_eq!((k.as_str(), m.contains("empty")), ("ca.crt", true), "{m}");

        // An absent CA key (external CA) is fine: the certificate travels alone.
        let mut no_key = secret.clone();
        no_key
            .data
            .insert("front-proxy-ca.key".into(), String::new());
        let m = open_bundle(&layout, &no_key, &key, NOW).expect("external CA");
        assert!(m.get("front-proxy-ca", Part::Key).is_none());
        assert!(m.get("front-proxy-ca", Part::Cert).is_some());

        let mut missing = secret.clone();
        missing.data.remove("etcd-ca.key");
        let (k, m) = open_bundle(&layout, &missing, &key, NOW).expect_err("missing");
        assert_eq!(
            (k.as_str(), m.contains("missing")),
            ("etcd-ca.key", true),
            "{m}"
        );

        // Swapped files: each decrypts, but the pair check catches it.
        let mut swapped = secret.clone();
        let ca_key = swapped.data["ca.key"].clone();
        swapped
            .data
            .insert("ca.key".into(), swapped.data["front-proxy-ca.key"].clone());
        swapped.data.insert("front-proxy-ca.key".into(), ca_key);
        let (k, m) = open_bundle(&layout, &swapped, &key, NOW).expect_err("swapped");
        assert!(
            k.ends_with(".key") && m.contains("key-mismatch"),
            "{k}: {m}"
        );
    }

    #[test]
    fn objects_have_kubeadms_fields() {
        let layout = tree_layout(Path::new("/x/pki"));
        let e = FixedEntropy::new(1);
        let run = Run {
            now: time::macros::datetime!(2026-12-02 01:14:24 UTC),
            entropy: &e,
            jobs: 1,
        };
        let material = Material::default();
        let key = CertificateKey([1u8; 32]);
        // A tree without files: upload reads none, but encrypt still lists every key, empty.
        let up = upload(&layout, &material, &key, None, &run).expect("upload");
        let Object::Secret(token) = &up.objects.items[0] else {
            panic!("token first")
        };
        let t = up.token.expect("token");
        assert_eq!(token.metadata.name, format!("bootstrap-token-{}", t.id));
        assert_eq!(token.type_, TOKEN_SECRET_TYPE);
        assert_eq!(
            B64.decode(&token.data["expiration"]).expect("b64"),
            b"2026-12-02T03:14:24Z"
        );
        let Object::Secret(bundle) = &up.objects.items[1] else {
            panic!("bundle second")
        };
        assert!(bundle.metadata.owner_references.is_empty());
        assert!(bundle.data.values().all(String::is_empty));

        let owner = Owner::new("f1ggk1", "9e689798-2d65-4481-976d-706e7376c40c").expect("owner");
        let up = upload(&layout, &material, &key, Some(&owner), &run).expect("upload");
        assert!(up.token.is_none());
        assert_eq!(up.objects.items.len(), 3);
        let Object::Secret(bundle) = &up.objects.items[0] else {
            panic!("bundle first")
        };
        assert_eq!(
            bundle.metadata.owner_references[0].name,
            "bootstrap-token-f1ggk1"
        );
        assert!(Owner::new("F1GGK1", "9e689798-2d65-4481-976d-706e7376c40c").is_err());
        assert!(Owner::new("f1ggk1", "not-a-uid").is_err());
    }

    #[test]
    fn keys_and_secrets_are_never_printed() {
        let hexkey = "7060ef79704ae366fe23ba476ba560c1cf6664f23e04b93232286560e8613fd7";
        let k = CertificateKey::from_hex(hexkey, "--certificate-key").expect("hex");
        assert!(!format!("{k:?}").contains("7060"));
        for bad in [
            &hexkey[..63],
            "zz60ef79704ae366fe23ba476ba560c1cf6664f23e04b93232286560e8613fd7",
        ] {
            let e = CertificateKey::from_hex(bad, "--certificate-key")
                .expect_err("bad")
                .to_string();
            assert!(
                e.starts_with("--certificate-key: ") && !e.contains("60ef79"),
                "{e}"
            );
        }
        let item = Item {
            data_key: "ca.key".into(),
            entry: "ca".into(),
            part: Part::Key,
            bytes: b"-----BEGIN RSA PRIVATE KEY-----".to_vec(),
        };
        assert!(!format!("{item:?}").contains("BEGIN"));
    }

    #[test]
    fn parse_secret_finds_the_bundle_or_says_what_it_found() {
        let role = "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: kubeadm:kubeadm-certs\n  namespace: kube-system\n";
        let e = parse_secret(role).expect_err("role");
        assert!(
            e.contains("found Role kube-system/kubeadm:kubeadm-certs"),
            "{e}"
        );
        let other = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: other\n  namespace: kube-system\ndata:\n  ca.crt: AAAA\n";
        assert!(parse_secret(other)
            .expect_err("other")
            .contains("Secret kube-system/other"));
        let wrong_ns = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: kubeadm-certs\n  namespace: default\n";
        assert!(parse_secret(wrong_ns)
            .expect_err("ns")
            .contains("default/kubeadm-certs"));
        let json = r#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"kubeadm-certs","namespace":"kube-system","uid":"x"},"data":{"ca.crt":null,"sa.key":"QUJD"},"type":"Opaque"}"#;
        let s = parse_secret(json).expect("json");
        assert_eq!(s.data["ca.crt"], "");
        assert_eq!(s.data["sa.key"], "QUJD");
        assert!(parse_secret("").is_err());
        assert!(parse_secret("{").is_err());
    }
}
