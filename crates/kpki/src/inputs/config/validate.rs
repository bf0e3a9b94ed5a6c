//! kubeadm's validation of the config fields kpki reads, for the target kubeadm version.
//!
//! What kubeadm of the target version rejects, kpki rejects with one line naming the line and
//! field; what it accepts, kpki accepts. Sources: kubeadm's
//! `cmd/kubeadm/app/apis/kubeadm/validation/validation.go` (`ValidateClusterConfiguration`:
//! `ValidateAbsolutePath(certificatesDir)`, `ValidateFeatureGates`, `ValidateEtcd`,
//! `ValidateEncryptionAlgorithm`, `ValidateCertSANs`), `cmd/kubeadm/app/features/features.go`
//! (gate names, locked and deprecated gates) and `cmd/kubeadm/app/util/config/strict.go` /
//! `common.go` (which API versions a kubeadm reads, and the deprecation warning for v1beta3).
//! Value checks shared with the flags (IP, CIDR, host:port, DNS names) stay in `inputs`.

use std::net::IpAddr;

use super::yaml::with_line;
use super::{KubeadmConfig, CLUSTER, INIT};
use crate::inputs::version::{self, Target};

/// An error about `field` of the `kind` document, with its line.
fn err(cfg: &KubeadmConfig, kind: &str, field: &str, msg: &str) -> String {
    let line = match cfg.line(field) {
        0 => cfg.line(kind),
        n => n,
    };
    with_line(line, &format!("{kind}: {field}: {msg}"))
}

/// Checks the config against kubeadm `target`, and folds its feature gates into the target.
/// Returns warnings (deprecated API version or gate, one line each).
pub fn check(cfg: &KubeadmConfig, target: &mut Target) -> Result<Vec<String>, String> {
    let minor = target.kubeadm_minor;
    let mut warnings = Vec::new();

    for kind in [INIT, CLUSTER] {
        let Some(v) = cfg.version_of(kind) else {
            continue;
        };
        if !version::reads_api_version(minor, v) {
            let first = version::API_VERSIONS
                .iter()
                .find(|(name, _, _)| *name == v)
                .map(|(_, from, to)| (*from, *to));
            let why = match first {
                Some((from, _)) if minor < from => {
                    format!("{v} first appeared in kubeadm v1.{from}")
                }
                Some((_, to)) => format!("kubeadm v1.{} removed {v}", to + 1),
                None => format!("{v} is unknown"),
            };
            return Err(with_line(
                cfg.line(kind),
                &format!(
                    "{kind}: kubeadm {} does not read apiVersion {v} ({why}); write the file for the target's API or change the target (kubernetesVersion, --kubeadm-version)",
                    target.kubeadm()
                ),
            ));
        }
        if let Some((_, from)) = version::API_DEPRECATED.iter().find(|(n, _)| *n == v) {
            if minor >= *from {
                warnings.push(with_line(
                    cfg.line(kind),
                    &format!(
                        "{kind}: your configuration file uses a deprecated API spec: {v:?} (kubeadm {} warns the same; `kubeadm config migrate` writes {})",
                        target.kubeadm(),
                        super::V1BETA4
                    ),
                ));
            }
        }
    }

    // ValidateFeatureGates, per the target's gate list.
    for (name, value) in &cfg.feature_gates {
        let field = format!("featureGates.{name}");
        let stage = version::gate(name).and_then(|g| g.at(minor));
        let Some(stage) = stage else {
            let known: Vec<&str> = version::GATES
                .iter()
                .filter(|g| g.at(minor).is_some())
                .map(|g| g.name)
                .collect();
            return Err(err(
                cfg,
                CLUSTER,
                &field,
                &format!(
                    "{name} is not a valid feature name. (kubeadm {} knows: {})",
                    target.kubeadm(),
                    known.join(", ")
                ),
            ));
        };
        if stage.locked && *value != stage.default {
            return Err(err(
                cfg,
                CLUSTER,
                &field,
                &format!(
                    "cannot set feature gate {name} to {value}, feature is locked to {} in kubeadm {}",
                    stage.default,
                    target.kubeadm()
                ),
            ));
        }
        if stage.deprecated {
            warnings.push(with_line(
                cfg.line(&field),
                &format!(
                    "{CLUSTER}: {field}: setting deprecated feature gate {name}={value}; it will be removed in a future kubeadm release"
                ),
            ));
        }
        target.gates.insert(name.clone(), *value);
    }

    // ValidateEncryptionAlgorithm (v1beta4 only: v1beta3 has no such field).
    if let Some(a) = &cfg.encryption_algorithm {
        let known = version::encryption_algorithms(minor);
        if !known.contains(&a.as_str()) {
            return Err(err(
                cfg,
                CLUSTER,
                "encryptionAlgorithm",
                &format!(
                    "Invalid encryption algorithm {a:?}. Must be one of [{}] (kubeadm {}; the value is case-sensitive)",
                    known.join(" "),
                    target.kubeadm()
                ),
            ));
        }
    }

    // ValidateAbsolutePath.
    for (field, value) in [
        ("certificatesDir", cfg.certificates_dir.as_deref()),
        ("etcd.local.dataDir", cfg.etcd_data_dir.as_deref()),
    ] {
        if let Some(p) = value {
            if !p.starts_with('/') {
                return Err(err(
                    cfg,
                    CLUSTER,
                    field,
                    &format!("{p:?}: path is not absolute"),
                ));
            }
        }
    }

    check_external_etcd(cfg)?;

    // ValidateCertSANs. kubeadm lower-cases apiServer.certSANs before validating (dynamic
    // defaulting); etcd SANs are validated as written.
    for (field, sans, lower) in [
        ("apiServer.certSANs", &cfg.apiserver_cert_sans, true),
        (
            "etcd.local.serverCertSANs",
            &cfg.etcd_server_cert_sans,
            false,
        ),
        ("etcd.local.peerCertSANs", &cfg.etcd_peer_cert_sans, false),
    ] {
        for (i, san) in sans.iter().enumerate() {
            let v = if lower {
                san.to_lowercase()
            } else {
                san.clone()
            };
            if !valid_altname(&v) {
                return Err(err(
                    cfg,
                    CLUSTER,
                    &format!("{field}[{i}]"),
                    &format!("{san:?}: altname is not a valid IP address, DNS label or a DNS label with subdomain wildcards"),
                ));
            }
        }
    }
    Ok(warnings)
}

/// `ValidateEtcd` for `etcd.external`: cert and key together, a CA with them, absolute paths,
/// parseable endpoint URLs (https when certificates are given).
fn check_external_etcd(cfg: &KubeadmConfig) -> Result<(), String> {
    if !cfg.etcd_external {
        return Ok(());
    }
    let [ca, cert, key] = &cfg.etcd_external_files;
    let e = |field: &str, msg: &str| err(cfg, CLUSTER, field, msg);
    if cert.is_some() != key.is_some() {
        return Err(e(
            "etcd.external",
            "either both or none of .Etcd.External.CertFile and .Etcd.External.KeyFile must be set",
        ));
    }
    if cert.is_some() && ca.is_none() {
        return Err(e(
            "etcd.external",
            "setting .Etcd.External.CertFile and .Etcd.External.KeyFile requires .Etcd.External.CAFile",
        ));
    }
    for (name, v) in [("caFile", ca), ("certFile", cert), ("keyFile", key)] {
        if let Some(p) = v {
            if !p.starts_with('/') {
                return Err(e(
                    &format!("etcd.external.{name}"),
                    &format!("{p:?}: path is not absolute"),
                ));
            }
        }
    }
    let require_https = ca.is_some() || cert.is_some() || key.is_some();
    for (i, url) in cfg.etcd_external_endpoints.iter().enumerate() {
        let field = format!("etcd.external.endpoints[{i}]");
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(e(
                &field,
                &format!("{url:?}: the URL without scheme is not allowed"),
            ));
        };
        if rest.is_empty() || scheme.is_empty() {
            return Err(e(&field, &format!("{url:?}: URL parse error")));
        }
        if require_https && scheme != "https" {
            return Err(e(
                &field,
                &format!("{url:?}: the URL must be using the HTTPS scheme"),
            ));
        }
    }
    Ok(())
}

/// kubeadm's `ValidateCertSANs` for one value: an RFC 1123 subdomain, a `*.` wildcard
/// subdomain, or an IP as Go's sloppy parser reads it (IPv4 octets may have leading zeros).
pub fn valid_altname(s: &str) -> bool {
    parse_ip_sloppy(s).is_some()
        || is_dns1123_subdomain(s)
        || s.strip_prefix("*.").is_some_and(is_dns1123_subdomain)
}

/// Go's `netutils.ParseIPSloppy`: like `net.ParseIP` but IPv4 octets may carry leading zeros
/// (read as decimal).
pub fn parse_ip_sloppy(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    let parts: Vec<&str> = s.split('.').collect();
    if parts.len() != 4 {
        return None;
    }
    let mut octets = [0u8; 4];
    for (o, p) in octets.iter_mut().zip(&parts) {
        if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *o = p.parse().ok()?;
    }
    Some(IpAddr::from(octets))
}

/// Kubernetes' `IsDNS1123Subdomain`: lower-case alphanumerics, '-' and '.', at most 253
/// characters, each dot-separated part starting and ending with an alphanumeric.
pub fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inputs::config::parse;
    use crate::inputs::version::{Target, TargetReason};

    fn check_at(minor: u32, text: &str) -> Result<(Target, Vec<String>), String> {
        let cfg = parse(text)?;
        let mut t = Target::with_defaults(minor, TargetReason::Flag, None);
        let w = check(&cfg, &mut t)?;
        Ok((t, w))
    }

    const V4: &str = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n";
    const V3: &str = "apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\n";

    #[test]
    fn api_versions_per_target() {
        let e = check_at(30, V4).expect_err("v1beta4 on 1.30");
        assert_eq!(e, "line 1: ClusterConfiguration: kubeadm v1.30 does not read apiVersion kubeadm.k8s.io/v1beta4 (kubeadm.k8s.io/v1beta4 first appeared in kubeadm v1.31); write the file for the target's API or change the target (kubernetesVersion, --kubeadm-version)");
        assert!(check_at(31, V4).expect("ok").1.is_empty());
        let (_, w) = check_at(31, V3).expect("ok");
        assert!(w[0].contains("deprecated API spec"), "{w:?}");
        assert!(check_at(30, V3).expect("ok").1.is_empty());
    }

    #[test]
    fn feature_gates_per_target() {
        let text = format!("{V4}featureGates:\n  ControlPlaneKubeletLocalMode: false\n");
        let (t, _) = check_at(33, &text).expect("1.33");
        assert!(!t.feature("ControlPlaneKubeletLocalMode"));
        let e = check_at(35, &text).expect_err("locked");
        assert!(e.starts_with("line 4: ClusterConfiguration: featureGates.ControlPlaneKubeletLocalMode: cannot set feature gate ControlPlaneKubeletLocalMode to false, feature is locked to true"), "{e}");
        let text3 = format!("{V3}featureGates:\n  ControlPlaneKubeletLocalMode: true\n");
        let e = check_at(30, &text3).expect_err("unknown in 1.30");
        assert!(
            e.contains("ControlPlaneKubeletLocalMode is not a valid feature name."),
            "{e}"
        );
        let e = check_at(33, &format!("{V4}featureGates:\n  Bogus: true\n")).expect_err("bogus");
        assert!(e.starts_with("line 4: ClusterConfiguration: featureGates.Bogus: Bogus is not a valid feature name."), "{e}");
        let (_, w) = check_at(35, &format!("{V4}featureGates:\n  PublicKeysECDSA: true\n"))
            .expect("deprecated");
        assert!(
            w.iter()
                .any(|w| w.contains("deprecated feature gate PublicKeysECDSA=true")),
            "{w:?}"
        );
    }

    #[test]
    fn exact_values_and_paths() {
        let e = check_at(33, &format!("{V4}encryptionAlgorithm: ecdsa-p256\n")).expect_err("case");
        assert_eq!(e, "line 3: ClusterConfiguration: encryptionAlgorithm: Invalid encryption algorithm \"ecdsa-p256\". Must be one of [ECDSA-P256 RSA-2048 RSA-3072 RSA-4096] (kubeadm v1.33; the value is case-sensitive)");
        assert!(check_at(33, &format!("{V4}encryptionAlgorithm: ECDSA-P384\n")).is_err());
        assert!(check_at(34, &format!("{V4}encryptionAlgorithm: ECDSA-P384\n")).is_ok());
        let e = check_at(33, &format!("{V4}certificatesDir: pki\n")).expect_err("relative");
        assert_eq!(
            e,
            "line 3: ClusterConfiguration: certificatesDir: \"pki\": path is not absolute"
        );
        let e = check_at(
            33,
            &format!("{V4}apiServer:\n  certSANs: [ok.example.com, \"not valid\"]\n"),
        )
        .expect_err("san");
        assert!(e.starts_with("line 4: ClusterConfiguration: apiServer.certSANs[1]: \"not valid\": altname is not"), "{e}");
        assert!(check_at(
            33,
            &format!("{V4}apiServer:\n  certSANs: [UPPER.example.com, \"*.a.b\", 010.0.0.1]\n")
        )
        .is_ok());
        assert!(check_at(
            33,
            &format!("{V4}etcd:\n  local:\n    serverCertSANs: [UPPER.example.com]\n")
        )
        .is_err());
    }

    #[test]
    fn external_etcd_rules() {
        let base = format!("{V4}etcd:\n  external:\n    endpoints: [https://10.0.0.5:2379]\n");
        assert!(check_at(33, &base).is_ok());
        let e = check_at(33, &format!("{base}    certFile: /etc/etcd/c.crt\n")).expect_err("half");
        assert!(e.contains("either both or none"), "{e}");
        let e = check_at(33, &format!("{V4}etcd:\n  external:\n    endpoints: [http://10.0.0.5:2379]\n    caFile: /ca.crt\n")).expect_err("http");
        assert!(e.contains("HTTPS scheme"), "{e}");
        let e = check_at(
            33,
            &format!(
                "{V4}etcd:\n  external:\n    endpoints: [https://e:2379]\n    caFile: ca.crt\n"
            ),
        )
        .expect_err("rel");
        assert!(
            e.contains("etcd.external.caFile: \"ca.crt\": path is not absolute"),
            "{e}"
        );
    }
}
