//! Which component reads each file of the tree, through which flag: the spec's `read_by` column.
//!
//! The Kubernetes documentation's "certificate paths" table (PKI certificates and requirements)
//! lists, for every certificate and key, the command that reads it and the flags that name the
//! key and the certificate (`kube-apiserver --tls-private-key-file / --tls-cert-file`,
//! `kube-controller-manager --cluster-signing-key-file / --cluster-signing-cert-file`, ...).
//! certs-spec.toml carries that table as `read_by` rows on each entry, and everything the node's
//! wiring is checked against ([`crate::assess::wiring`]) comes from those rows: no flag is named
//! in Rust. A row belongs to one component: a static Pod, identified by its command's name, or
//! [`KUBELET`], whose settings are fields of its configuration file.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::model::resolve::Entry;
use crate::model::spec::Spec;

/// The component whose settings are fields of its configuration file (`--kubelet-config`,
/// default `/var/lib/kubelet/config.yaml`), not flags of a static Pod: its references are field
/// paths such as `authentication.x509.clientCAFile`.
pub const KUBELET: &str = "kubelet";

/// One component reading one entry's files (a row of the documentation's table).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Reader {
    /// The component: a static Pod's command (`kube-apiserver`, `etcd`), or [`KUBELET`].
    pub by: String,
    /// The flag naming the certificate file (`[[ca]]` and `[[cert]]` entries).
    #[serde(default)]
    pub cert: Option<String>,
    /// The flag naming the private key file.
    #[serde(default)]
    pub key: Option<String>,
    /// The flag naming the public key file (`[[keypair]]` entries).
    #[serde(default, rename = "pub")]
    pub public: Option<String>,
    /// The flag naming the kubeconfig file (`[[kubeconfig]]` entries).
    #[serde(default)]
    pub file: Option<String>,
    /// Flags of the same component whose addresses (bare IPs or URLs, comma-separated) the
    /// certificate must cover: the names clients use to reach the component.
    #[serde(default)]
    pub covers: Vec<String>,
    /// A flag of the same component listing the common names it accepts for this certificate
    /// (`--requestheader-allowed-names`); empty there means any name.
    #[serde(default)]
    pub cn_in: Option<String>,
    /// The flags may be empty when the entry's CA has no key (external CA mode: kubeadm writes
    /// `--cluster-signing-cert-file=` and `--cluster-signing-key-file=`).
    #[serde(default)]
    pub empty_if_external: bool,
}

/// What a flag names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A certificate (or CA bundle) file.
    Cert,
    /// A private key file.
    Key,
    /// A public key file.
    Pub,
    /// A kubeconfig file.
    File,
}

impl Reader {
    /// The file flags of the row, with what each names.
    pub fn roles(&self) -> Vec<(Role, &str)> {
        [
            (Role::Cert, &self.cert),
            (Role::Key, &self.key),
            (Role::Pub, &self.public),
            (Role::File, &self.file),
        ]
        .into_iter()
        .filter_map(|(r, f)| f.as_deref().map(|f| (r, f)))
        .collect()
    }

    /// `kube-apiserver --client-ca-file`: how findings name a flag.
    pub fn name(&self, flag: &str) -> String {
        format!("{} {flag}", self.by)
    }
}

/// A row of the table for a resolved entry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Wire {
    /// The spec entry read.
    pub entry: String,
    /// Who reads it, through which flags.
    pub reader: Reader,
}

/// The rows of the entries present under these inputs, in entry order.
pub fn for_entries(spec: &Spec, entries: &[Entry]) -> Vec<Wire> {
    let mut out = Vec::new();
    for e in entries {
        let rows = match e {
            Entry::Ca(_) | Entry::Leaf(_) => spec
                .cas
                .iter()
                .chain(spec.certs.iter())
                .find(|c| c.name == e.name())
                .map(|c| &c.read_by),
            Entry::KeyPair(_) => spec
                .keypairs
                .iter()
                .find(|k| k.name == e.name())
                .map(|k| &k.read_by),
            Entry::Kubeconfig(_) => spec
                .kubeconfigs
                .iter()
                .find(|k| k.name == e.name())
                .map(|k| &k.read_by),
        };
        for r in rows.into_iter().flatten() {
            out.push(Wire {
                entry: e.name().to_string(),
                reader: r.clone(),
            });
        }
    }
    out
}

/// The kind of entry a row belongs to, for validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `[[ca]]`.
    Ca,
    /// `[[cert]]`.
    Leaf,
    /// `[[keypair]]`.
    KeyPair,
    /// `[[kubeconfig]]`.
    Kubeconfig,
}

fn component_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
}

/// A flag (`--name`) for a static Pod, a field path (`a.b.c`) for the kubelet.
fn reference_ok(by: &str, flag: &str) -> Result<(), String> {
    if by == KUBELET {
        let ok = !flag.is_empty()
            && flag.split('.').all(|part| {
                part.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                    && part.chars().all(|c| c.is_ascii_alphanumeric())
            });
        if !ok {
            return Err(format!(
                "{flag:?}: the kubelet's settings are configuration fields such as authentication.x509.clientCAFile"
            ));
        }
        return Ok(());
    }
    let ok = flag
        .strip_prefix("--")
        .is_some_and(|n| component_ok(n) && n.len() < 100);
    if !ok {
        return Err(format!(
            "{flag:?} is not a flag such as --client-ca-file (a static Pod's command-line flag)"
        ));
    }
    Ok(())
}

/// Validates one entry's rows; `seen` maps `component flag` to the entry that already claims it
/// (a flag names one file).
pub fn check(
    entry: &str,
    kind: Kind,
    rows: &[Reader],
    seen: &mut BTreeMap<String, String>,
) -> Result<(), String> {
    for r in rows {
        let what = format!("read_by {}", r.by);
        if !component_ok(&r.by) {
            return Err(format!(
                "read_by: {:?} is not a component name (a static Pod's command such as kube-apiserver, or {KUBELET})",
                r.by
            ));
        }
        let allowed: &[Role] = match kind {
            Kind::Ca | Kind::Leaf => &[Role::Cert, Role::Key],
            Kind::KeyPair => &[Role::Pub, Role::Key],
            Kind::Kubeconfig => &[Role::File],
        };
        let roles = r.roles();
        if roles.is_empty() {
            return Err(format!("{what}: names no file (give {})", names(allowed)));
        }
        for (role, flag) in &roles {
            if !allowed.contains(role) {
                return Err(format!(
                    "{what}: {} is not for this kind of entry (use {})",
                    role_key(*role),
                    names(allowed)
                ));
            }
            reference_ok(&r.by, flag).map_err(|m| format!("{what}: {m}"))?;
            if let Some(other) = seen.insert(r.name(flag), entry.to_string()) {
                return Err(format!(
                    "{what}: {} already names a file of entry {other:?}",
                    r.name(flag)
                ));
            }
        }
        let has_cert = r.cert.is_some();
        if (!r.covers.is_empty() || r.cn_in.is_some()) && (kind != Kind::Leaf || !has_cert) {
            return Err(format!(
                "{what}: covers and cn_in are about a leaf's certificate (give cert too)"
            ));
        }
        for f in r.covers.iter().chain(r.cn_in.iter()) {
            reference_ok(&r.by, f).map_err(|m| format!("{what}: {m}"))?;
            if roles.iter().any(|(_, rf)| rf == f) {
                return Err(format!("{what}: {f} already names a file of this row"));
            }
        }
        if r.empty_if_external && kind == Kind::Kubeconfig {
            return Err(format!(
                "{what}: empty_if_external is for certificates and keys"
            ));
        }
    }
    Ok(())
}

fn role_key(r: Role) -> &'static str {
    match r {
        Role::Cert => "cert",
        Role::Key => "key",
        Role::Pub => "pub",
        Role::File => "file",
    }
}

fn names(roles: &[Role]) -> String {
    roles
        .iter()
        .map(|r| role_key(*r))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use crate::model::spec::{Spec, DEFAULT_SPEC};

    fn broken(edit: impl Fn(String) -> String) -> String {
        match Spec::parse(&edit(DEFAULT_SPEC.to_string()), "test") {
            Ok(_) => panic!("spec accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn default_table_names_every_control_plane_file() {
        let s = Spec::default_spec().expect("spec");
        let ca = s.ca("ca").expect("ca");
        let flags: Vec<String> = ca
            .read_by
            .iter()
            .flat_map(|r| r.roles().into_iter().map(|(_, f)| r.name(f)))
            .collect();
        for want in [
            "kube-apiserver --client-ca-file",
            "kube-controller-manager --client-ca-file",
            "kube-controller-manager --root-ca-file",
            "kube-controller-manager --cluster-signing-cert-file",
            "kube-controller-manager --cluster-signing-key-file",
            "kubelet authentication.x509.clientCAFile",
        ] {
            assert!(flags.iter().any(|f| f == want), "{want}: {flags:?}");
        }
        let sa = &s.keypairs[0];
        assert!(sa.read_by.iter().any(|r| r.public.as_deref()
            == Some("--service-account-key-file")
            && r.key.as_deref() == Some("--service-account-signing-key-file")));
        assert!(s.kubeconfigs.iter().any(|k| k
            .read_by
            .iter()
            .any(|r| r.file.as_deref() == Some("--authorization-kubeconfig"))));
    }

    #[test]
    fn rejects_bad_rows() {
        let e = broken(|s| {
            s.replacen(
                "{ by = \"kube-apiserver\", cert = \"--client-ca-file\" }",
                "{ by = \"kube-apiserver\", cert = \"client-ca-file\" }",
                1,
            )
        });
        assert!(
            e.contains("ca: read_by kube-apiserver") && e.contains("not a flag"),
            "{e}"
        );
        let e = broken(|s| {
            s.replacen(
                "{ by = \"kube-apiserver\", cert = \"--client-ca-file\" }",
                "{ by = \"kube-apiserver\", cert = \"--tls-cert-file\" }",
                1,
            )
        });
        assert!(e.contains("already names a file"), "{e}");
        let e = broken(|s| {
            s.replacen(
                "{ by = \"kube-apiserver\", cert = \"--client-ca-file\" }",
                "{ by = \"kube-apiserver\", file = \"--client-ca-file\" }",
                1,
            )
        });
        assert!(e.contains("file is not for this kind"), "{e}");
        let e = broken(|s| {
            s.replacen(
                "{ by = \"kubelet\", cert = \"authentication.x509.clientCAFile\" }",
                "{ by = \"kubelet\", cert = \"--client-ca-file\" }",
                1,
            )
        });
        assert!(e.contains("configuration fields"), "{e}");
        let e = broken(|s| {
            s.replacen(
                "{ by = \"kube-apiserver\", cert = \"--client-ca-file\" }",
                "{ by = \"kube-apiserver\", cert = \"--client-ca-file\", cn_in = \"--x\" }",
                1,
            )
        });
        assert!(e.contains("covers and cn_in"), "{e}");
        let e = broken(|s| {
            s.replacen(
                "{ by = \"kube-apiserver\", cert = \"--client-ca-file\" }",
                "{ by = \"Kube API\", cert = \"--client-ca-file\" }",
                1,
            )
        });
        assert!(e.contains("not a component name"), "{e}");
    }
}
