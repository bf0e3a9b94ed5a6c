//! Kubeconfigs for extra users, signed by the cluster CA: kubeadm's `kubeadm kubeconfig user`.
//!
//! An operator who needs credentials for a person or a tool asks for a client name and groups;
//! the client certificate is signed on the spot with `ca.crt`/`ca.key` from the cert dir (nothing
//! is written to the tree) and embedded, with the CA, in a one-context kubeconfig whose server is
//! the control-plane endpoint.

use std::path::{Path, PathBuf};

use time::Duration;

use crate::disk::read::{read_cert, read_key, Observed};
use crate::error::{Error, Result};
use crate::inputs::{InputArgs, Inputs, BACKDATE, DEFAULT_CERT_VALIDITY};
use crate::kubeconfig::{Kubeconfig, Single};
use crate::x509::issue::{cert_pem, issue, Issuance, Issuer, Profile};
use crate::x509::keys::KeyAlgorithm;
use crate::Run;

/// What to issue: the identity, its lifetime and where the cluster is.
#[derive(Debug, Clone)]
pub struct UserRequest<'a> {
    /// Directory holding `ca.crt` and `ca.key`.
    pub cert_dir: &'a Path,
    /// Client name: the certificate CN and the kubeconfig user name.
    pub client_name: &'a str,
    /// Groups (certificate O values); comma lists are split, blanks dropped, duplicates merged.
    pub orgs: &'a [String],
    /// Validity: NotAfter = now + validity (NotBefore is back-dated by five minutes).
    pub validity: Duration,
    /// Algorithm of the new client key.
    pub algorithm: KeyAlgorithm,
    /// API server URL written into the kubeconfig.
    pub server: &'a str,
    /// Cluster entry name (kubeadm's `clusterName`).
    pub cluster_name: &'a str,
}

/// Where a user kubeconfig points and how its key is made, resolved from kubeadm's inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Directory holding `ca.crt` and `ca.key`.
    pub cert_dir: PathBuf,
    /// Server URL: the control-plane endpoint (the local endpoint when none is set).
    pub server: String,
    /// Cluster entry name.
    pub cluster_name: String,
    /// Key algorithm for the client key.
    pub algorithm: KeyAlgorithm,
}

/// Stand-ins for inputs `kubeconfig user` never reads, so that only what matters is required.
const UNUSED_ADVERTISE_ADDRESS: &str = "192.0.2.1";
const UNUSED_NODE_NAME: &str = "kpki-kubeconfig-user";

/// Resolves the cert dir, server, cluster name and key algorithm from kubeadm's flags and config.
///
/// Validation is the same as `init`'s, with one relaxation: when a control-plane endpoint is set
/// (flag or `controlPlaneEndpoint`), the advertise address and node name may be absent, because
/// the server URL is then the endpoint and neither value is used. Without an endpoint the server
/// is `https://<advertise address>:<bind port>`, so the advertise address is required.
pub fn target(args: &InputArgs) -> Result<Target> {
    let cfg = crate::inputs::load_config(args.config.as_deref())?;
    let has_endpoint = args
        .control_plane_endpoint
        .as_ref()
        .or(cfg.control_plane_endpoint.as_ref())
        .is_some_and(|e| !e.trim().is_empty());
    let mut args = args.clone();
    if has_endpoint {
        if args.advertise_address.is_none() && cfg.advertise_address.is_none() {
            args.advertise_address = Some(UNUSED_ADVERTISE_ADDRESS.into());
        }
        if args.node_name.is_none() && cfg.node_name.is_none() {
            args.node_name = Some(UNUSED_NODE_NAME.into());
        }
    } else if args.advertise_address.is_none() && cfg.advertise_address.is_none() {
        return Err(Error::input(
            "--control-plane-endpoint",
            "the API server URL is unknown: give --control-plane-endpoint or \
             --apiserver-advertise-address, or a --config that sets one",
        ));
    }
    let inputs = Inputs::resolve(&args, &cfg)?;
    Ok(Target {
        server: inputs.control_plane().url(),
        cert_dir: inputs.cert_dir,
        cluster_name: inputs.cluster_name,
        algorithm: inputs.key_algorithm,
    })
}

/// Parses `--validity-period` (a positive Go duration such as `8760h`).
pub fn parse_validity_period(text: &str) -> Result<Duration> {
    let d = crate::inputs::duration::parse_go_duration(text.trim())
        .map_err(|m| Error::input("--validity-period", m))?;
    if d <= Duration::ZERO {
        return Err(Error::input(
            "--validity-period",
            format!("{text:?} must be a positive duration such as 8760h"),
        ));
    }
    Ok(d)
}

/// kubeadm's warning for a validity longer than its default (8760h), or `None`.
pub fn validity_warning(validity: Duration) -> Option<String> {
    (validity > DEFAULT_CERT_VALIDITY).then(|| {
        format!(
            "the specified certificate validity period {} is longer than the default duration {}, \
             this may increase security risks.",
            crate::inputs::duration::format_go_duration(validity),
            crate::inputs::duration::format_go_duration(DEFAULT_CERT_VALIDITY)
        )
    })
}

/// Splits comma lists, trims, drops blanks and repeats (first occurrence kept).
pub fn normalize_orgs(orgs: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for o in orgs.iter().flat_map(|o| o.split(',')) {
        let o = o.trim();
        if !o.is_empty() && !out.iter().any(|x| x == o) {
            out.push(o.to_string());
        }
    }
    out
}

/// Issues a client certificate signed by the cluster CA and returns the kubeconfig YAML.
///
/// Needs `<cert_dir>/ca.crt` and `<cert_dir>/ca.key` (a missing or unusable one is an
/// [`Error::File`] naming it). The certificate has EKU clientAuth, key usage digitalSignature
/// (plus keyEncipherment for RSA), NotBefore = now - 5 min, NotAfter = now + validity, a serial
/// and key from `run.entropy`. Nothing is written to disk.
pub fn user_kubeconfig(req: &UserRequest<'_>, run: &Run<'_>) -> Result<String> {
    let name = req.client_name.trim();
    if name.is_empty() {
        return Err(Error::input("--client-name", "must not be empty"));
    }
    if name.chars().any(char::is_control) {
        return Err(Error::input(
            "--client-name",
            format!("{name:?} contains control characters"),
        ));
    }
    if req.validity <= Duration::ZERO {
        return Err(Error::input("--validity-period", "must be positive"));
    }
    let orgs = normalize_orgs(req.orgs);

    let ca_crt = req.cert_dir.join("ca.crt");
    let ca_key = req.cert_dir.join("ca.key");
    let missing = |p: &Path| {
        Error::file(
            p,
            "does not exist; `kubeconfig user` signs with the cluster CA (ca.crt and ca.key): \
             run `kpki init` or point --cert-dir at the tree",
        )
    };
    let ca = match read_cert(&ca_crt) {
        Observed::Present(c) => c,
        Observed::Missing => return Err(missing(&ca_crt)),
        Observed::Invalid(m) => return Err(Error::file(&ca_crt, m)),
    };
    let key = match read_key(&ca_key) {
        Observed::Present(k) => k.key,
        Observed::Missing => return Err(missing(&ca_key)),
        Observed::Invalid(m) => return Err(Error::file(&ca_key, m)),
    };
    let info = crate::x509::inspect::info(&ca.der).map_err(|m| Error::file(&ca_crt, m))?;
    if !info.is_ca {
        return Err(Error::file(
            &ca_crt,
            "is not a CA certificate (basicConstraints CA:FALSE or absent)",
        ));
    }
    if !key.matches_spki(&info.spki) {
        return Err(Error::file(
            &ca_key,
            format!("is not the private key of {}", ca_crt.display()),
        ));
    }

    let profile = Profile {
        cn: name.to_string(),
        orgs,
        dns: Vec::new(),
        ips: Vec::new(),
        key_usages: vec!["digital_signature".into(), "key_encipherment".into()],
        ext_key_usages: vec!["client_auth".into()],
        is_ca: false,
    };
    let client_key = run.entropy.key(req.algorithm)?;
    let when = Issuance {
        not_before: run.now - BACKDATE,
        not_after: run.now + req.validity,
        serial: run.entropy.serial()?,
    };
    let der = issue(
        &profile,
        &client_key,
        Some(Issuer {
            cert_der: &ca.der,
            key: &key,
        }),
        when,
    )?;
    let config = Kubeconfig::single(Single {
        cluster_name: req.cluster_name,
        server: req.server,
        ca_pem: Some(&cert_pem(&ca.der)),
        user: name,
        auth: Kubeconfig::cert_auth(&cert_pem(&der), client_key.pem()),
    });
    config
        .to_yaml()
        .map_err(|m| Error::crypto("writing the kubeconfig", m))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entropy::FixedEntropy;
    use time::macros::datetime;

    #[test]
    fn orgs_split_and_dedup() {
        let got = normalize_orgs(&["a, b".into(), "".into(), "b".into(), "c,".into()]);
        assert_eq!(got, ["a", "b", "c"]);
    }

    #[test]
    fn warning_only_above_default() {
        assert!(validity_warning(Duration::hours(8760)).is_none());
        let w = validity_warning(Duration::hours(10000)).expect("warning");
        assert!(w.starts_with("the specified certificate validity period 10000h0m0s is longer than the default duration 8760h0m0s"), "{w}");
        assert!(parse_validity_period("0").is_err());
        assert!(parse_validity_period("12").is_err());
        assert_eq!(
            parse_validity_period("1h30m").expect("d"),
            Duration::minutes(90)
        );
    }

    #[test]
    fn server_needs_an_endpoint_or_address() {
        let e = target(&InputArgs::default()).expect_err("no server");
        assert!(e.to_string().contains("--control-plane-endpoint"), "{e}");
        let t = target(&InputArgs {
            control_plane_endpoint: Some("cp.example:7443".into()),
            ..Default::default()
        })
        .expect("endpoint alone");
        assert_eq!(t.server, "https://cp.example:7443");
        assert_eq!(t.cluster_name, "kubernetes");
        assert_eq!(t.cert_dir, PathBuf::from("/etc/kubernetes/pki"));
        let t = target(&InputArgs {
            advertise_address: Some("fd00::1".into()),
            node_name: Some("n".into()),
            ..Default::default()
        })
        .expect("address");
        assert_eq!(t.server, "https://[fd00::1]:6443");
    }

    #[test]
    fn missing_ca_files_are_named() {
        let dir = tempfile::tempdir().expect("tmp");
        let e = FixedEntropy::new(1);
        let run = Run {
            now: datetime!(2026-01-01 0:00 UTC),
            entropy: &e,
            jobs: 1,
        };
        let req = UserRequest {
            cert_dir: dir.path(),
            client_name: "jane",
            orgs: &[],
            validity: Duration::hours(1),
            algorithm: KeyAlgorithm::EcdsaP256,
            server: "https://h:6443",
            cluster_name: "kubernetes",
        };
        let err = user_kubeconfig(&req, &run).expect_err("no ca");
        assert!(err.to_string().contains("ca.crt"), "{err}");
    }
}
