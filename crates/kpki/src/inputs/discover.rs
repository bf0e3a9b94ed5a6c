//! What an existing tree says about the cluster inputs.
//!
//! An input not given by a flag or the kubeadm config comes from the tree before any default
//! (the host name above all): a tree made for node `cp-1` is checked, planned and renewed as
//! `cp-1` wherever kpki runs. The spec says where each input shows: a certificate whose CN
//! template is `system:node:{node_name}` gives the node name back by stripping the literal
//! parts; a SAN template `kubernetes.default.svc.{dns_domain}` gives the DNS domain; the
//! kubeconfigs' servers give the local endpoint (`server = "local"`) and the control-plane
//! endpoint; a CA that follows the cluster algorithm gives the key algorithm. Nothing here is
//! written for one certificate: it is the spec's templates read backwards.
//!
//! An input that is given but contradicts the tree's identity (the node name) is not taken
//! silently: it becomes an `input-conflict` finding that `init` and `renew` refuse unless told
//! to re-issue (`--regenerate-drifted`).

use std::net::IpAddr;
use std::path::Path;

use crate::assess::{Code, Finding, Remedy};
use crate::disk::read::{read_cert, Observed};
use crate::disk::{read_kubeconfig_with, Keys};
use crate::inputs::kubeadm_config::KubeadmConfig;
use crate::inputs::root::Root;
use crate::inputs::InputArgs;
use crate::model::spec::{Piece, Spec, Template, SCALAR_VARS};
use crate::x509::inspect;

/// One input value read from the tree.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Fact {
    /// The input, by its flag name (`--node-name`).
    pub input: &'static str,
    /// The value.
    pub value: String,
    /// Where it was read (`etcd/server.crt: subject CN`).
    pub source: String,
}

/// Everything the tree says, first source first, with the sources that disagree.
#[derive(Debug, Clone, Default)]
pub struct Discovery {
    /// One fact per input (the first source in spec order).
    pub facts: Vec<Fact>,
    /// Later sources that disagree with the first one.
    pub disagreements: Vec<(Fact, Fact)>,
}

impl Discovery {
    fn add(&mut self, f: Fact) {
        match self.facts.iter().find(|x| x.input == f.input) {
            Some(first) if first.value != f.value => {
                self.disagreements.push((first.clone(), f));
            }
            Some(_) => {}
            None => self.facts.push(f),
        }
    }
}

/// The input a template variable is set by.
fn input_of(var: &str) -> Option<&'static str> {
    Some(match var {
        "node_name" => "--node-name",
        "dns_domain" => "--service-dns-domain",
        "cluster_name" => "--cluster-name",
        _ => return None,
    })
}

/// Reads `value` back through `template` when the template has exactly one variable and that
/// variable is one the tree can answer for: `(variable, value)`.
fn invert(template: &str, value: &str, need_literal: bool) -> Option<(&'static str, String)> {
    let Ok(Template::Scalar(pieces)) = Template::parse(template, SCALAR_VARS, &[]) else {
        return None;
    };
    let vars: Vec<&String> = pieces
        .iter()
        .filter_map(|p| match p {
            Piece::Var(v) => Some(v),
            Piece::Lit(_) => None,
        })
        .collect();
    let [var] = vars.as_slice() else {
        return None;
    };
    let input = input_of(var)?;
    let mut prefix = String::new();
    let mut suffix = String::new();
    let mut seen_var = false;
    for p in &pieces {
        match p {
            Piece::Lit(l) if seen_var => suffix.push_str(l),
            Piece::Lit(l) => prefix.push_str(l),
            Piece::Var(_) => seen_var = true,
        }
    }
    if need_literal && prefix.is_empty() && suffix.is_empty() {
        return None;
    }
    let inner = value.strip_prefix(&prefix)?.strip_suffix(&suffix)?;
    if inner.is_empty() {
        return None;
    }
    Some((input, inner.to_string()))
}

fn spec_path(template: &str) -> Option<String> {
    // Only fixed paths are looked at: a path with a variable depends on the value sought.
    (!template.contains('{')).then(|| template.to_string())
}

/// `https://host:port` -> (host, port).
fn split_url(url: &str) -> Option<(String, u16)> {
    let rest = url.strip_prefix("https://")?;
    let rest = rest.split('/').next()?;
    if let Some(v6) = rest.strip_prefix('[') {
        let (host, port) = v6.split_once("]:")?;
        return Some((host.to_string(), port.parse().ok()?));
    }
    let (host, port) = rest.rsplit_once(':')?;
    Some((host.to_string(), port.parse().ok()?))
}

/// Reads what the tree under `cert_dir` / `kubeconfig_dir` says about the inputs, on a node under
/// `--root` (paths the kubeconfigs reference are read under it).
pub fn discover_in(spec: &Spec, cert_dir: &Path, kubeconfig_dir: &Path, root: &Root) -> Discovery {
    let mut d = Discovery::default();
    // A directory that is not there holds nothing to read back (one look instead of a failed
    // open per file: `init` of a new tree starts here).
    let certs_there = cert_dir.is_dir();
    let kubeconfigs_there = kubeconfig_dir.is_dir();
    // Leaf certificates: the CN and the SANs read back through their templates.
    for c in spec.certs.iter().filter(|_| certs_there) {
        let Some(base) = spec_path(&c.path) else {
            continue;
        };
        let rel = format!("{base}.crt");
        let Observed::Present(cf) = read_cert(&cert_dir.join(&rel)) else {
            continue;
        };
        let Ok(info) = inspect::info(&cf.der) else {
            continue;
        };
        if let [cn] = info.cn.as_slice() {
            if let Some((input, value)) = invert(&c.cn, cn, false) {
                d.add(Fact {
                    input,
                    value: value.to_lowercase(),
                    source: format!("{rel}: subject CN"),
                });
            }
        }
        for t in &c.sans {
            for dns in &info.dns {
                if let Some((input, value)) = invert(t, dns, true) {
                    d.add(Fact {
                        input,
                        value,
                        source: format!("{rel}: SAN DNS:{dns}"),
                    });
                }
            }
        }
    }
    // Kubeconfigs: the client CN, the cluster name and the servers.
    let mut local: Option<(String, u16, String)> = None;
    let mut control_plane: Option<(String, u16, String)> = None;
    for k in spec.kubeconfigs.iter().filter(|_| kubeconfigs_there) {
        let Some(file) = spec_path(&k.file) else {
            continue;
        };
        let Observed::Present(kc) =
            read_kubeconfig_with(&kubeconfig_dir.join(&file), root, Keys::Skip)
        else {
            continue;
        };
        if let Some(info) = kc.cert_der.as_ref().and_then(|der| inspect::info(der).ok()) {
            if let [cn] = info.cn.as_slice() {
                if let Some((input, value)) = invert(&k.cn, cn, false) {
                    d.add(Fact {
                        input,
                        value: value.to_lowercase(),
                        source: format!("{file}: client certificate CN"),
                    });
                }
            }
        }
        d.add(Fact {
            input: "--cluster-name",
            value: kc.cluster_name.clone(),
            source: format!("{file}: cluster name"),
        });
        // A kubeconfig whose server depends on the kubeadm version (kubelet.conf) says nothing
        // sure about either endpoint.
        let server_varies = k.variants.iter().any(|v| v.server.is_some());
        if let Some((host, port)) = split_url(&kc.server).filter(|_| !server_varies) {
            let slot = if k.server == "local" {
                &mut local
            } else {
                &mut control_plane
            };
            if slot.is_none() {
                *slot = Some((host, port, format!("{file}: server")));
            }
        }
    }
    if let Some((host, port, source)) = &local {
        if let Ok(ip) = host.parse::<IpAddr>() {
            d.add(Fact {
                input: "--apiserver-advertise-address",
                value: ip.to_string(),
                source: source.clone(),
            });
            d.add(Fact {
                input: "--apiserver-bind-port",
                value: port.to_string(),
                source: source.clone(),
            });
        }
    }
    if let Some((host, port, source)) = &control_plane {
        let same_as_local = local
            .as_ref()
            .is_some_and(|(h, p, _)| h == host && p == port);
        if !same_as_local {
            let endpoint = if host.contains(':') {
                format!("[{host}]:{port}")
            } else {
                format!("{host}:{port}")
            };
            d.add(Fact {
                input: "--control-plane-endpoint",
                value: endpoint,
                source: source.clone(),
            });
        }
    }
    // The key algorithm of the first CA that follows the cluster setting.
    for c in spec.cas.iter().filter(|_| certs_there) {
        let alg = c
            .key_algorithm
            .as_deref()
            .unwrap_or(&spec.defaults.key_algorithm);
        if alg != "cluster" {
            continue;
        }
        let Some(base) = spec_path(&c.path) else {
            continue;
        };
        let rel = format!("{base}.crt");
        if let Observed::Present(cf) = read_cert(&cert_dir.join(&rel)) {
            if let Some(a) = inspect::info(&cf.der)
                .ok()
                .and_then(|i| crate::x509::keys::algorithm_of_spki(&i.spki).ok())
            {
                d.add(Fact {
                    input: "--encryption-algorithm",
                    value: a.to_string(),
                    source: format!("{rel}: key"),
                });
                break;
            }
        }
    }
    d
}

/// The tree's facts put where the flags and the config are silent, and the conflicts where
/// they speak against the tree's identity. Returns the filled arguments, the facts used, and
/// findings (input conflicts, disagreeing sources).
pub fn fill(
    d: &Discovery,
    args: &InputArgs,
    cfg: &KubeadmConfig,
) -> (InputArgs, Vec<Fact>, Vec<Finding>) {
    let mut out = args.clone();
    let mut used = Vec::new();
    let mut notes = Vec::new();
    let given_ecdsa = cfg.public_keys_ecdsa.is_some();
    for f in &d.facts {
        let given: Option<String> = match f.input {
            "--node-name" => out.node_name.clone().or(cfg.node_name.clone()),
            "--service-dns-domain" => out.service_dns_domain.clone().or(cfg.dns_domain.clone()),
            "--cluster-name" => out.cluster_name.clone().or(cfg.cluster_name.clone()),
            "--apiserver-advertise-address" => out
                .advertise_address
                .map(|ip| ip.to_string())
                .or(cfg.advertise_address.clone()),
            "--apiserver-bind-port" => out.bind_port.or(cfg.bind_port).map(|p| p.to_string()),
            "--control-plane-endpoint" => out
                .control_plane_endpoint
                .clone()
                .or(cfg.control_plane_endpoint.clone()),
            "--encryption-algorithm" => {
                out.key_algorithm.map(|a| a.name().to_string()).or_else(|| {
                    cfg.encryption_algorithm
                        .clone()
                        .filter(|a| !a.is_empty())
                        .or_else(|| given_ecdsa.then(String::new))
                })
            }
            _ => continue,
        };
        match given {
            None => {
                if set_from_fact(&mut out, f) {
                    used.push(f.clone());
                }
            }
            Some(g) if f.input == "--node-name" && g.trim().to_lowercase() != f.value => {
                notes.push(Finding {
                    code: Code::InputConflict,
                    severity: Code::InputConflict.severity(),
                    entry: f.input.to_string(),
                    path: f.source.split(':').next().unwrap_or_default().to_string(),
                    message: format!(
                        "{} {g:?} contradicts the tree, whose {} says {:?}",
                        f.input, f.source, f.value
                    ),
                    fix: format!(
                        "drop {} to keep {:?}, or pass --regenerate-drifted to re-issue the tree's certificates for {g:?}",
                        f.input, f.value
                    ),
                    remedy: Remedy::Manual,
                });
            }
            Some(_) => {}
        }
    }
    for (first, other) in &d.disagreements {
        notes.push(Finding {
            code: Code::InputDisagreement,
            severity: Code::InputDisagreement.severity(),
            entry: first.input.to_string(),
            path: other
                .source
                .split(':')
                .next()
                .unwrap_or_default()
                .to_string(),
            message: format!(
                "the tree disagrees about {}: {} says {:?}, {} says {:?} (using {:?})",
                first.input, first.source, first.value, other.source, other.value, first.value
            ),
            fix: format!("give {} explicitly", first.input),
            remedy: Remedy::None,
        });
    }
    (out, used, notes)
}

/// Sets the input a fact read from the tree stands for; false when the tree's text is not a
/// valid value (the input then stays unset and its default applies).
fn set_from_fact(out: &mut InputArgs, f: &Fact) -> bool {
    let v = f.value.as_str();
    match f.input {
        "--node-name" => out.node_name = Some(v.to_string()),
        "--service-dns-domain" => out.service_dns_domain = Some(v.to_string()),
        "--cluster-name" => out.cluster_name = Some(v.to_string()),
        "--control-plane-endpoint" => out.control_plane_endpoint = Some(v.to_string()),
        "--apiserver-advertise-address" => match crate::inputs::parse_ip(v) {
            Ok(ip) => out.advertise_address = Some(ip),
            Err(_) => return false,
        },
        "--apiserver-bind-port" => match crate::inputs::parse_port(v) {
            Ok(p) => out.bind_port = Some(p),
            Err(_) => return false,
        },
        "--encryption-algorithm" => match v.parse() {
            Ok(a) => out.key_algorithm = Some(a),
            Err(_) => return false,
        },
        _ => return false,
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_read_backwards() {
        assert_eq!(
            invert("system:node:{node_name}", "system:node:cp-1", false),
            Some(("--node-name", "cp-1".to_string()))
        );
        assert_eq!(
            invert("{node_name}", "cp-1", false),
            Some(("--node-name", "cp-1".to_string()))
        );
        // A bare variable is no evidence among SANs: any SAN would match it.
        assert_eq!(invert("{node_name}", "localhost", true), None);
        assert_eq!(
            invert(
                "kubernetes.default.svc.{dns_domain}",
                "kubernetes.default.svc.corp.local",
                true
            ),
            Some(("--service-dns-domain", "corp.local".to_string()))
        );
        assert_eq!(invert("kube-apiserver", "kube-apiserver", false), None);
        assert_eq!(
            invert("system:node:{node_name}", "kubernetes-admin", false),
            None
        );
        assert_eq!(
            split_url("https://[fd00::10]:6443"),
            Some(("fd00::10".to_string(), 6443))
        );
        assert_eq!(
            split_url("https://10.0.0.10:6443"),
            Some(("10.0.0.10".to_string(), 6443))
        );
    }
}
