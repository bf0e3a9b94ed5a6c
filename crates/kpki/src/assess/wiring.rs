//! The node's wiring: is every component given the right files?
//!
//! The tree can be perfect and the cluster still down: `--client-ca-file` pointing at the
//! front-proxy CA, `--requestheader-allowed-names` not naming the proxy client, a
//! `--service-account-key-file` that does not verify the signing key, a kubelet `clientCAFile`
//! that is not the cluster CA. This judge compares, for every row of the spec's `read_by` column
//! ([`crate::model::readers`]), the file the node's manifest or kubelet config names with the
//! entry of the tree the row says it must be:
//!
//! * a CA flag must hold the entry's CA certificate (the CA that signs the component's clients:
//!   `--etcd-cafile` is etcd-ca, the CA of etcd's serving certificate, because etcd's `--cert-file`
//!   must in turn be signed by etcd-ca);
//! * a certificate flag's certificate must be signed by the entry's CA, cover the addresses of the
//!   row's `covers` flags, and have a CN the row's `cn_in` flag lists;
//! * a key flag's key must be the key of the row's certificate; every service-account signing key
//!   must have its public key in `--service-account-key-file`;
//! * a kubeconfig must trust the entry's CA and hold a client certificate it signed;
//! * a flag naming a file other than the tree's is a warning: renewals never reach it.
//!
//! Every finding names the component and flag (`entry`: `kube-apiserver --client-ca-file`) and
//! the manifest or kubelet config (`path`), and at most one error is reported per flag, so one
//! wrong line gives one finding. Pure: the files were read by [`crate::disk::node`].

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use crate::assess::{Code, Finding, Remedy};
use crate::disk::node::{locate, Material, NodeFiles};
use crate::disk::read::Observed;
use crate::disk::{Disk, Seen};
use crate::inputs::node::{Node, Setting};
use crate::model::readers::{Role, Wire, KUBELET};
use crate::model::resolve::{Desired, Entry};
use crate::x509::inspect;

/// One flag of one row, as the node sets it.
struct Slot<'a> {
    wire: &'a Wire,
    role: Role,
    flag: &'a str,
    /// The manifest or kubelet config.
    source: PathBuf,
    /// The value as written.
    value: String,
    /// Where it was read.
    path: PathBuf,
    /// The tree's file for this role.
    managed: PathBuf,
}

impl Slot<'_> {
    fn name(&self) -> String {
        self.wire.reader.name(self.flag)
    }

    fn managed_here(&self) -> bool {
        same_file(&self.path, &self.managed)
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    if a == b {
        return true;
    }
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

/// Collects findings, at most one error per component flag.
struct Out<'a> {
    node: &'a Node,
    findings: Vec<Finding>,
    errored: BTreeSet<String>,
}

impl Out<'_> {
    fn push(
        &mut self,
        code: Code,
        name: String,
        source: &Path,
        message: String,
        fix: String,
    ) -> bool {
        let error = code.severity() == crate::assess::Severity::Error;
        if error && !self.errored.insert(name.clone()) {
            return false;
        }
        self.findings.push(Finding {
            code,
            severity: code.severity(),
            entry: name,
            path: source.display().to_string(),
            message,
            fix,
            remedy: if error { Remedy::Manual } else { Remedy::None },
        });
        true
    }

    fn has_error(&self, name: &str) -> bool {
        self.errored.contains(name)
    }

    fn node_path(&self, p: &Path) -> String {
        self.node.root.node_path(p).display().to_string()
    }
}

/// The tree's certificate of an entry, when readable.
fn tree_cert<'a>(disk: &'a Disk, entry: &str) -> Option<&'a [u8]> {
    match disk.entries.get(entry) {
        Some(Seen::Cert {
            cert: Observed::Present(c),
            ..
        }) => Some(&c.der),
        _ => None,
    }
}

/// The public key the tree holds for an entry (certificate, key pair's key or public key).
fn tree_spki(disk: &Disk, entry: &str) -> Option<Vec<u8>> {
    match disk.entries.get(entry)? {
        Seen::Cert {
            cert: Observed::Present(c),
            ..
        } => inspect::info(&c.der).ok().map(|i| i.spki),
        Seen::KeyPair { key, public } => match (key, public) {
            (Observed::Present(k), _) => Some(k.key.spki_der()),
            (_, Observed::Present((der, _))) => Some(der.clone()),
            _ => None,
        },
        _ => None,
    }
}

/// A CA entry whose key is absent (external CA mode).
fn ca_external(disk: &Disk, entry: &str) -> bool {
    matches!(
        disk.entries.get(entry),
        Some(Seen::Cert {
            cert: Observed::Present(_),
            key: Observed::Missing
        })
    )
}

/// Names a certificate for messages: the tree CA it is, or its subject.
fn describe(desired: &Desired, disk: &Disk, der: &[u8]) -> String {
    for e in &desired.entries {
        if let Entry::Ca(c) = e {
            if tree_cert(disk, &c.name) == Some(der) {
                return format!("CA {}", c.name);
            }
        }
    }
    match inspect::info(der) {
        Ok(i) => format!("a certificate of {}", i.subject),
        Err(_) => "a certificate".into(),
    }
}

/// Names the signer of a certificate among the tree's CAs.
fn signer(desired: &Desired, disk: &Disk, der: &[u8]) -> String {
    for e in &desired.entries {
        if let Entry::Ca(c) = e {
            if let Some(ca) = tree_cert(disk, &c.name) {
                if crate::x509::chain::signed_by(der, ca).is_ok() {
                    return format!("CA {}", c.name);
                }
            }
        }
    }
    match inspect::info(der) {
        Ok(i) => format!(
            "no CA of the tree (its issuer is not one: subject {})",
            i.subject
        ),
        Err(_) => "no CA of the tree".into(),
    }
}

fn managed_path(e: &Entry, role: Role) -> PathBuf {
    match (e, role) {
        (Entry::Ca(c) | Entry::Leaf(c), Role::Key) => c.key_path.clone(),
        (Entry::Ca(c) | Entry::Leaf(c), _) => c.cert_path.clone(),
        (Entry::KeyPair(k), Role::Pub) => k.pub_path.clone(),
        (Entry::KeyPair(k), _) => k.key_path.clone(),
        (Entry::Kubeconfig(k), _) => k.path.clone(),
    }
}

/// Hosts of the addresses a flag lists: bare IPs or names, or URLs (`https://h:p`, IPv6 in
/// brackets); unspecified addresses (`0.0.0.0`, `::`) cover nothing and are skipped.
fn hosts(items: &[String]) -> (Vec<String>, Vec<IpAddr>) {
    let mut dns = Vec::new();
    let mut ips = Vec::new();
    for item in items {
        let host = match item.split_once("://") {
            Some((scheme, rest)) => {
                if !matches!(scheme, "https" | "http") {
                    continue; // unix sockets have no host to cover
                }
                let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
                let authority = authority.rsplit('@').next().unwrap_or(authority);
                match authority.strip_prefix('[') {
                    Some(v6) => v6.split(']').next().unwrap_or_default().to_string(),
                    None => authority
                        .rsplit_once(':')
                        .map(|(h, _)| h)
                        .unwrap_or(authority)
                        .to_string(),
                }
            }
            None => item.clone(),
        };
        if host.is_empty() {
            continue;
        }
        match host.parse::<IpAddr>() {
            Ok(ip) if ip.is_unspecified() => {}
            Ok(ip) => {
                let ip = ip.to_canonical();
                if !ips.contains(&ip) {
                    ips.push(ip);
                }
            }
            Err(_) => {
                let h = host.to_lowercase();
                if !dns.contains(&h) {
                    dns.push(h);
                }
            }
        }
    }
    (dns, ips)
}

/// Judges the node's wiring against the tree. No node: no findings.
pub fn assess(desired: &Desired, disk: &Disk) -> Vec<Finding> {
    let Some(node) = desired.inputs.node.as_deref() else {
        return Vec::new();
    };
    let empty = NodeFiles::default();
    let files = disk.node.as_ref().unwrap_or(&empty);
    let mut out = Out {
        node,
        findings: node.problems.clone(),
        errored: BTreeSet::new(),
    };
    kubelet_rotation(node, &mut out);

    // Every flag of every row the node has a component for.
    let mut slots: Vec<Slot<'_>> = Vec::new();
    for w in &desired.readers {
        let Some(entry) = desired.get(&w.entry) else {
            continue;
        };
        for (role, flag) in w.reader.roles() {
            let managed = managed_path(entry, role);
            let name = w.reader.name(flag);
            match node.setting(&w.reader.by, flag) {
                Setting::NoSource => {}
                Setting::Absent { file } => {
                    let file = file.to_path_buf();
                    out.push(
                        Code::WiringFlagAbsent,
                        name,
                        &file,
                        format!(
                            "does not set {flag}: {} is not given {} ({})",
                            w.reader.by,
                            out.node_path(&managed),
                            w.entry
                        ),
                        format!("add {flag}={}", out.node_path(&managed)),
                    );
                }
                Setting::Value { file, value } if value.trim().is_empty() => {
                    let file = file.to_path_buf();
                    let external = matches!(entry, Entry::Ca(_)) && ca_external(disk, &w.entry);
                    if !(w.reader.empty_if_external && external) {
                        out.push(
                            Code::WiringFlagAbsent,
                            name,
                            &file,
                            format!(
                                "sets {flag} to an empty value: {} is not given {} ({}){}",
                                w.reader.by,
                                out.node_path(&managed),
                                w.entry,
                                if w.reader.empty_if_external {
                                    "; empty is only right in external-CA mode, and the CA's key is present"
                                } else {
                                    ""
                                }
                            ),
                            format!("set {flag}={}", out.node_path(&managed)),
                        );
                    }
                }
                Setting::Value { file, value } => slots.push(Slot {
                    wire: w,
                    role,
                    flag,
                    source: file.to_path_buf(),
                    path: locate(node, value.trim()),
                    value: value.trim().to_string(),
                    managed,
                }),
            }
        }
    }

    // Files that are missing or not of their kind.
    for s in &slots {
        let problem = match files.get(&s.path, s.role) {
            None => None,
            Some(Material::Certs(o)) => observed_problem(o),
            Some(Material::Key(o)) => observed_problem(o),
            Some(Material::Public(o)) => observed_problem(o),
            Some(Material::Kubeconfig(o)) => observed_problem(o),
        };
        let kind = match s.role {
            Role::Cert => "certificate",
            Role::Key => "private key",
            Role::Pub => "public key",
            Role::File => "kubeconfig",
        };
        match problem {
            Some(None) => {
                out.push(
                    Code::WiringFileMissing,
                    s.name(),
                    &s.source,
                    format!(
                        "{}={}: no such file ({} cannot load its {kind})",
                        s.flag, s.value, s.wire.reader.by
                    ),
                    format!("point {} at {}", s.flag, out.node_path(&s.managed)),
                );
            }
            Some(Some(m)) => {
                out.push(
                    Code::WiringFileInvalid,
                    s.name(),
                    &s.source,
                    format!("{}={}: not a usable {kind}: {m}", s.flag, s.value),
                    format!("point {} at {}", s.flag, out.node_path(&s.managed)),
                );
            }
            None => {}
        }
    }

    for s in &slots {
        if out.has_error(&s.name()) {
            continue;
        }
        let Some(entry) = desired.get(&s.wire.entry) else {
            continue;
        };
        match (entry, s.role, files.get(&s.path, s.role)) {
            (Entry::Ca(_), Role::Cert, Some(Material::Certs(Observed::Present(certs)))) => {
                check_ca_flag(desired, disk, &mut out, s, certs)
            }
            (Entry::Leaf(c), Role::Cert, Some(Material::Certs(Observed::Present(certs)))) => {
                check_leaf_flag(desired, disk, node, &mut out, s, c.ca.as_deref(), &certs[0])
            }
            (Entry::Kubeconfig(k), Role::File, Some(Material::Kubeconfig(o))) => {
                if let Observed::Present(kc) = o.as_ref() {
                    check_kubeconfig(desired, disk, &mut out, s, &k.ca, kc)
                }
            }
            _ => {}
        }
    }
    check_pairs(desired, disk, files, &mut out, &slots);
    check_key_pairs(disk, files, &mut out, &slots);

    // Files other than the tree's: renewals never reach them.
    for s in &slots {
        if out.has_error(&s.name()) || s.managed_here() {
            continue;
        }
        out.push(
            Code::WiringNotManaged,
            s.name(),
            &s.source,
            format!(
                "{}={} is not the tree's {} ({}): `kpki certs renew` never reaches it",
                s.flag,
                s.value,
                out.node_path(&s.managed),
                s.wire.entry
            ),
            format!("point {} at {}", s.flag, out.node_path(&s.managed)),
        );
    }
    out.findings
}

/// `Some(None)`: missing; `Some(Some(why))`: unusable; `None`: fine.
fn observed_problem<T>(o: &Observed<T>) -> Option<Option<String>> {
    match o {
        Observed::Present(_) | Observed::Unread => None,
        Observed::Missing => Some(None),
        Observed::Invalid(m) => Some(Some(m.clone())),
    }
}

fn kubelet_rotation(node: &Node, out: &mut Out<'_>) {
    let Some(k) = &node.kubelet else { return };
    let field = "rotateCertificates";
    let message = match k.fields.get(field).map(String::as_str) {
        Some("true") => return,
        Some(v) => format!(
            "{field}: {v}: the kubelet does not renew its client certificate, so kubelet.conf stops working when it expires"
        ),
        None => format!(
            "{field} is not set (the kubelet's default is false): unless the kubelet runs with --rotate-certificates, kubelet.conf stops working when its certificate expires"
        ),
    };
    let file = k.file.clone();
    out.push(
        Code::KubeletRotationOff,
        format!("{KUBELET} {field}"),
        &file,
        message,
        format!("set {field}: true (kubeadm's setting) and restart the kubelet"),
    );
}

fn check_ca_flag(
    desired: &Desired,
    disk: &Disk,
    out: &mut Out<'_>,
    s: &Slot<'_>,
    certs: &[Vec<u8>],
) {
    let Some(ca) = tree_cert(disk, &s.wire.entry) else {
        return; // the assessment reports the CA
    };
    // A signing pair must start with the CA; a trust bundle only has to contain it.
    let signing = s.wire.reader.key.is_some();
    let ok = if signing {
        certs.first().map(Vec::as_slice) == Some(ca)
    } else {
        certs.iter().any(|c| c.as_slice() == ca)
    };
    if ok {
        return;
    }
    let holds = certs
        .iter()
        .map(|c| describe(desired, disk, c))
        .collect::<Vec<_>>()
        .join(", ");
    let consequence = if signing {
        format!(
            "the certificates {} signs with it are not trusted where CA {} is",
            s.wire.reader.by, s.wire.entry
        )
    } else {
        format!(
            "{} rejects the clients CA {} signed",
            s.wire.reader.by, s.wire.entry
        )
    };
    out.push(
        Code::WiringWrongCa,
        s.name(),
        &s.source,
        format!(
            "{}={} holds {holds}, not CA {}: {consequence}",
            s.flag, s.value, s.wire.entry
        ),
        format!(
            "point {} at {} (CA {})",
            s.flag,
            out.node_path(&s.managed),
            s.wire.entry
        ),
    );
}

#[allow(clippy::too_many_arguments)]
fn check_leaf_flag(
    desired: &Desired,
    disk: &Disk,
    node: &Node,
    out: &mut Out<'_>,
    s: &Slot<'_>,
    ca: Option<&str>,
    der: &[u8],
) {
    if let Some(ca_der) = ca.and_then(|c| tree_cert(disk, c)) {
        if crate::x509::chain::signed_by(der, ca_der).is_err() {
            out.push(
                Code::WiringWrongIssuer,
                s.name(),
                &s.source,
                format!(
                    "{}={} is signed by {}, not by CA {}, which {}'s peers trust for {}",
                    s.flag,
                    s.value,
                    signer(desired, disk, der),
                    ca.unwrap_or_default(),
                    s.wire.reader.by,
                    s.wire.entry
                ),
                format!("point {} at {}", s.flag, out.node_path(&s.managed)),
            );
            return;
        }
    }
    let Ok(info) = inspect::info(der) else { return };
    let by = &s.wire.reader.by;
    for flag in &s.wire.reader.covers {
        let items = node.list(by, flag);
        let (dns, ips) = hosts(&items);
        let missing = inspect::missing_sans(&info, &dns, &ips);
        if missing.is_empty() {
            continue;
        }
        out.push(
            Code::WiringSanMissing,
            s.wire.reader.name(flag),
            &s.source,
            format!(
                "{flag}={} names {}, which {}={} does not cover: clients dialing it reject {by}",
                items.join(","),
                missing.join(", "),
                s.flag,
                s.value
            ),
            format!(
                "correct {flag}, or re-issue {} with {} among its SANs",
                s.wire.entry,
                missing.join(", ")
            ),
        );
    }
    if let Some(flag) = &s.wire.reader.cn_in {
        let allowed = node.list(by, flag);
        if !allowed.is_empty() && !info.cn.iter().any(|cn| allowed.contains(cn)) {
            out.push(
                Code::WiringAllowedNames,
                s.wire.reader.name(flag),
                &s.source,
                format!(
                    "{flag}={} does not contain {:?}, the CN of {}={}: {by} rejects the requests it proxies",
                    allowed.join(","),
                    info.cn.join(", "),
                    s.flag,
                    s.value
                ),
                format!("add {} to {flag}", info.cn.join(",")),
            );
        }
    }
}

fn check_kubeconfig(
    desired: &Desired,
    disk: &Disk,
    out: &mut Out<'_>,
    s: &Slot<'_>,
    ca: &str,
    kc: &crate::disk::KubeconfigFile,
) {
    let Some(ca_der) = tree_cert(disk, ca) else {
        return;
    };
    let problem = match (&kc.ca_der, &kc.cert_der) {
        (Some(k), _) if k.as_slice() != ca_der => Some(format!(
            "trusts {}, not CA {ca}: {} cannot verify the API server",
            describe(desired, disk, k),
            s.wire.reader.by
        )),
        (None, _) => Some(format!(
            "has no certificate authority: {} cannot verify the API server",
            s.wire.reader.by
        )),
        (_, Some(cert)) if crate::x509::chain::signed_by(cert, ca_der).is_err() => Some(format!(
            "holds a client certificate signed by {}, not CA {ca}: the API server rejects {}",
            signer(desired, disk, cert),
            s.wire.reader.by
        )),
        _ => None,
    };
    if let Some(p) = problem {
        out.push(
            Code::WiringKubeconfigUntrusted,
            s.name(),
            &s.source,
            format!("{}={} {p}", s.flag, s.value),
            format!("point {} at {}", s.flag, out.node_path(&s.managed)),
        );
    }
}

/// `cert` + `key` rows: the key must be the certificate's.
fn check_pairs(
    desired: &Desired,
    disk: &Disk,
    files: &NodeFiles,
    out: &mut Out<'_>,
    slots: &[Slot<'_>],
) {
    for k in slots.iter().filter(|s| s.role == Role::Key) {
        let Some(entry) = desired.get(&k.wire.entry) else {
            continue;
        };
        if matches!(entry, Entry::KeyPair(_)) || out.has_error(&k.name()) {
            continue;
        }
        let Some(Material::Key(Observed::Present(key))) = files.get(&k.path, Role::Key) else {
            continue;
        };
        let cert = slots
            .iter()
            .find(|c| c.role == Role::Cert && std::ptr::eq(c.wire, k.wire));
        let (spki, blame) = match cert {
            Some(c) => {
                if out.has_error(&c.name()) {
                    continue;
                }
                let Some(Material::Certs(Observed::Present(certs))) =
                    files.get(&c.path, Role::Cert)
                else {
                    continue;
                };
                let Ok(info) = inspect::info(&certs[0]) else {
                    continue;
                };
                // The flag that left the tree is the likely culprit.
                let blame = match (c.managed_here(), k.managed_here()) {
                    (false, true) => c,
                    _ => k,
                };
                (info.spki, blame)
            }
            None => match tree_spki(disk, &k.wire.entry) {
                Some(s) => (s, k),
                None => continue,
            },
        };
        if key.matches_spki(&spki) {
            continue;
        }
        let cert_text = match cert {
            Some(c) => format!("{}={}", c.flag, c.value),
            None => format!("the tree's {}", k.wire.entry),
        };
        out.push(
            Code::WiringKeyMismatch,
            blame.name(),
            &blame.source,
            format!(
                "{}={} is not the key of {cert_text}: {} cannot load the pair",
                k.flag, k.value, k.wire.reader.by
            ),
            format!("point {} at {}", blame.flag, out.node_path(&blame.managed)),
        );
    }
}

/// Key pairs (`sa`): every signing key's public key must be among the public keys the verifier
/// is given (`--service-account-key-file`); without one, each key must be the tree's.
fn check_key_pairs(disk: &Disk, files: &NodeFiles, out: &mut Out<'_>, slots: &[Slot<'_>]) {
    let entries: BTreeSet<&str> = slots.iter().map(|s| s.wire.entry.as_str()).collect();
    for entry in entries {
        let is_pair = matches!(disk.entries.get(entry), Some(Seen::KeyPair { .. }));
        if !is_pair {
            continue;
        }
        let pubs: Vec<&Slot<'_>> = slots
            .iter()
            .filter(|s| s.wire.entry == entry && s.role == Role::Pub && !out.has_error(&s.name()))
            .collect();
        let keys: Vec<(&Slot<'_>, Vec<u8>)> = slots
            .iter()
            .filter(|s| s.wire.entry == entry && s.role == Role::Key && !out.has_error(&s.name()))
            .filter_map(|s| match files.get(&s.path, Role::Key) {
                Some(Material::Key(Observed::Present(k))) => Some((s, k.spki_der())),
                _ => None,
            })
            .collect();
        let mut accepted: Vec<Vec<u8>> = Vec::new();
        for p in &pubs {
            if let Some(Material::Public(Observed::Present(list))) = files.get(&p.path, Role::Pub) {
                accepted.extend(list.iter().cloned());
            }
        }
        let tree = tree_spki(disk, entry);
        if let Some(p) = pubs.first() {
            let bad: Vec<&(&Slot<'_>, Vec<u8>)> =
                keys.iter().filter(|(_, k)| !accepted.contains(k)).collect();
            let all_same = keys.windows(2).all(|w| w[0].1 == w[1].1);
            let pub_wrong = if keys.is_empty() {
                tree.as_ref().is_some_and(|t| !accepted.contains(t))
            } else {
                bad.len() == keys.len() && all_same
            };
            if pub_wrong {
                let signers = if keys.is_empty() {
                    format!("the tree's {entry} key")
                } else {
                    keys.iter()
                        .map(|(s, _)| s.name())
                        .collect::<Vec<_>>()
                        .join(" and ")
                };
                out.push(
                    Code::WiringKeyMismatch,
                    p.name(),
                    &p.source,
                    format!(
                        "{}={} holds no public key of {signers}: {} rejects the service-account tokens they sign",
                        p.flag, p.value, p.wire.reader.by
                    ),
                    format!("point {} at {}", p.flag, out.node_path(&p.managed)),
                );
                continue;
            }
            for (k, _) in bad {
                out.push(
                    Code::WiringKeyMismatch,
                    k.name(),
                    &k.source,
                    format!(
                        "{}={} is not the private key of a public key {} holds: tokens it signs are rejected",
                        k.flag,
                        k.value,
                        p.name()
                    ),
                    format!("point {} at {}", k.flag, out.node_path(&k.managed)),
                );
            }
        } else if let Some(t) = tree {
            for (k, spki) in &keys {
                if *spki != t {
                    out.push(
                        Code::WiringKeyMismatch,
                        k.name(),
                        &k.source,
                        format!(
                            "{}={} is not the tree's {entry} key: tokens it signs do not verify with {}",
                            k.flag,
                            k.value,
                            out.node_path(&k.managed)
                        ),
                        format!("point {} at {}", k.flag, out.node_path(&k.managed)),
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_of_urls_and_addresses() {
        let items: Vec<String> = [
            "https://127.0.0.1:2379",
            "https://10.0.0.10:2379",
            "https://[fd00::10]:2380",
            "http://0.0.0.0:2381",
            "https://etcd.example.com:2379/path",
            "10.0.0.11",
            "unix://socket:0",
            "https://10.0.0.10:2379",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let (dns, ips) = hosts(&items);
        assert_eq!(dns, ["etcd.example.com"]);
        let want: Vec<IpAddr> = ["127.0.0.1", "10.0.0.10", "fd00::10", "10.0.0.11"]
            .iter()
            .map(|s| s.parse().expect("ip"))
            .collect();
        assert_eq!(ips, want);
    }
}
