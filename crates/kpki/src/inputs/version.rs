//! Which kubeadm kpki imitates: the target version, its config API versions and feature gates.
//!
//! kubeadm's layout changed between 1.28 and 1.35 (O values, super-admin.conf, kubelet.conf's
//! server). The spec table says which entry or value belongs to which version (`when` conditions
//! and variants in certs-spec.toml); this module only knows kubeadm's *config* semantics per
//! version — which `apiVersion`s it reads, which feature gates exist with which defaults, which
//! `encryptionAlgorithm` values it accepts — and picks the target version.
//!
//! Sources (kubernetes/kubernetes): `cmd/kubeadm/app/features/features.go` (gates, per release),
//! `cmd/kubeadm/app/util/config/common.go` (`NormalizeKubernetesVersion`: kubeadm deploys its own
//! minor and one older), `cmd/kubeadm/app/util/version.go` (`KubernetesReleaseVersion`: semantic
//! versions and `stable`/`latest` labels), `cmd/kubeadm/app/apis/kubeadm/validation/validation.go`
//! (`ValidateFeatureGates`, `ValidateEncryptionAlgorithm`), and the kubeadm feature-gate tables of
//! the Kubernetes documentation (`kubeadm init`, "feature gates" and "removed feature gates").
//! docs/kubeadm-versions.md has the table of every rule.

use std::collections::BTreeMap;

/// The oldest kubeadm minor kpki models (1.28).
pub const OLDEST: u32 = 28;
/// The newest kubeadm minor kpki models (1.35).
pub const NEWEST: u32 = 35;

/// kubeadm's config API versions and the kubeadm minors that read them (inclusive).
pub const API_VERSIONS: &[(&str, u32, u32)] = &[
    ("kubeadm.k8s.io/v1beta3", 22, 35),
    ("kubeadm.k8s.io/v1beta4", 31, u32::MAX),
];

/// The kubeadm minor from which an API version is deprecated (kubeadm warns on load).
pub const API_DEPRECATED: &[(&str, u32)] = &[("kubeadm.k8s.io/v1beta3", 31)];

/// One stage of a kubeadm feature gate, from kubeadm minor `from` on.
#[derive(Debug, Clone, Copy)]
pub struct Stage {
    /// First kubeadm minor of this stage.
    pub from: u32,
    /// Default value.
    pub default: bool,
    /// GA and locked to the default: setting the other value is an error.
    pub locked: bool,
    /// Deprecated: setting it prints a warning.
    pub deprecated: bool,
}

/// A kubeadm feature gate: its stages and the minor that removed it.
#[derive(Debug, Clone, Copy)]
pub struct Gate {
    /// Gate name as written in `featureGates`.
    pub name: &'static str,
    /// Stages in order; the gate exists from the first stage's minor on.
    pub stages: &'static [Stage],
    /// First kubeadm minor without the gate (`None`: still present in the newest modeled).
    pub removed: Option<u32>,
}

const fn st(from: u32, default: bool, locked: bool, deprecated: bool) -> Stage {
    Stage {
        from,
        default,
        locked,
        deprecated,
    }
}

/// kubeadm's feature gates, 1.28 to 1.35 (`InitFeatureGates` in features.go of each release).
pub const GATES: &[Gate] = &[
    Gate {
        name: "PublicKeysECDSA",
        // Alpha since 1.19; deprecated in 1.31 in favour of encryptionAlgorithm; removed in 1.36.
        stages: &[st(19, false, false, false), st(31, false, false, true)],
        removed: Some(36),
    },
    Gate {
        name: "RootlessControlPlane",
        stages: &[st(22, false, false, false)],
        removed: None,
    },
    Gate {
        name: "EtcdLearnerMode",
        stages: &[
            st(27, false, false, false),
            st(29, true, false, false),
            st(32, true, true, false),
        ],
        removed: Some(33),
    },
    Gate {
        name: "UpgradeAddonsBeforeControlPlane",
        stages: &[st(28, false, false, true)],
        removed: Some(31),
    },
    Gate {
        name: "WaitForAllControlPlaneComponents",
        stages: &[
            st(30, false, false, false),
            st(33, true, false, false),
            st(34, true, true, false),
        ],
        removed: Some(35),
    },
    Gate {
        name: "ControlPlaneKubeletLocalMode",
        // Alpha 1.31 (off), beta 1.33 (on), GA and locked 1.35, removed 1.36.
        stages: &[
            st(31, false, false, false),
            st(33, true, false, false),
            st(35, true, true, false),
        ],
        removed: Some(36),
    },
    Gate {
        name: "NodeLocalCRISocket",
        stages: &[st(32, false, false, false), st(34, true, false, false)],
        removed: None,
    },
];

impl Gate {
    /// The gate's stage at kubeadm minor `minor`, or `None` when that kubeadm has no such gate.
    pub fn at(&self, minor: u32) -> Option<Stage> {
        if self.removed.is_some_and(|r| minor >= r) {
            return None;
        }
        self.stages.iter().rev().find(|s| s.from <= minor).copied()
    }
}

/// Looks a gate up by name.
pub fn gate(name: &str) -> Option<&'static Gate> {
    GATES.iter().find(|g| g.name == name)
}

/// `encryptionAlgorithm` values kubeadm of `minor` accepts (`ValidateEncryptionAlgorithm`), sorted
/// as kubeadm lists them. The field exists from 1.31 (v1beta4); ECDSA-P384 from 1.34.
pub fn encryption_algorithms(minor: u32) -> Vec<&'static str> {
    let mut v = vec!["ECDSA-P256", "RSA-2048", "RSA-3072", "RSA-4096"];
    if minor >= 34 {
        v.insert(1, "ECDSA-P384");
    }
    v
}

/// Whether kubeadm of `minor` reads config documents of `api_version`.
pub fn reads_api_version(minor: u32, api_version: &str) -> bool {
    API_VERSIONS
        .iter()
        .any(|(v, from, to)| *v == api_version && (*from..=*to).contains(&minor))
}

/// A `kubernetesVersion` as kubeadm reads it: a semantic version or a release label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KubernetesVersion {
    /// `v1.MINOR.PATCH[...]`.
    Semantic {
        /// Minor version.
        minor: u32,
        /// The text as written.
        text: String,
    },
    /// `stable`, `latest`, `stable-1`, `ci/latest`, ...: kubeadm asks the release server;
    /// with a minor (`stable-1.30`) that minor is known.
    Label {
        /// The minor the label pins, if any.
        minor: Option<u32>,
        /// The text as written.
        text: String,
    },
}

/// Parses a `kubernetesVersion` (kubeadm's `KubernetesReleaseVersion`).
pub fn parse_kubernetes_version(text: &str) -> Result<KubernetesVersion, String> {
    let t = text.trim();
    let bad = || {
        format!(
            "{t:?} is neither a version such as v1.31.2 nor a release label (stable, latest, stable-1.31, ...)"
        )
    };
    let label = t.strip_prefix("ci/").unwrap_or(t);
    for prefix in ["stable", "latest"] {
        if let Some(rest) = label.strip_prefix(prefix) {
            let minor = match rest {
                "" | "-1" => None,
                r => Some(
                    r.strip_prefix("-1.")
                        .and_then(|m| m.parse::<u32>().ok())
                        .ok_or_else(bad)?,
                ),
            };
            return Ok(KubernetesVersion::Label {
                minor,
                text: t.to_string(),
            });
        }
    }
    let v = t.strip_prefix('v').unwrap_or(t);
    let core = v.split(['-', '+']).next().unwrap_or_default();
    let parts: Vec<&str> = core.split('.').collect();
    let num = |s: &str| {
        (!s.is_empty()
            && s.bytes().all(|b| b.is_ascii_digit())
            && (s == "0" || !s.starts_with('0')))
        .then(|| s.parse::<u32>().ok())
        .flatten()
    };
    match parts.as_slice() {
        [major, minor, patch] if num(major) == Some(1) && num(patch).is_some() => {
            Ok(KubernetesVersion::Semantic {
                minor: num(minor).ok_or_else(bad)?,
                text: t.to_string(),
            })
        }
        [major, _, _] if num(major).is_some() => {
            Err(format!("{t:?}: kpki models Kubernetes 1.x only"))
        }
        _ => Err(bad()),
    }
}

/// Parses `--kubeadm-version` (`1.31`, `v1.31`, `v1.31.2`) to a minor.
pub fn parse_kubeadm_version(text: &str) -> Result<u32, String> {
    let t = text.trim();
    let v = t.strip_prefix('v').unwrap_or(t);
    let mut parts = v.split('.');
    let (major, minor) = (parts.next(), parts.next());
    let minor = match (major, minor) {
        (Some("1"), Some(m)) => m.parse::<u32>().ok(),
        _ => None,
    }
    .ok_or_else(|| format!("{t:?} is not a kubeadm version such as 1.31 or v1.31.2"))?;
    if !(OLDEST..=NEWEST).contains(&minor) {
        return Err(format!(
            "kubeadm v1.{minor} is not modeled; kpki knows kubeadm v1.{OLDEST} to v1.{NEWEST}"
        ));
    }
    Ok(minor)
}

/// Why the target kubeadm version is what it is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetReason {
    /// `--kubeadm-version`.
    Flag,
    /// The minor of `kubernetesVersion` (kubeadm deploys its own minor).
    KubernetesVersion,
    /// `kubernetesVersion` is newer than the newest modeled kubeadm.
    NewerThanModeled,
    /// No `kubernetesVersion`, or a label without a minor: the newest layout.
    Newest,
}

/// The kubeadm whose layout and config semantics kpki follows.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Target {
    /// kubeadm minor (major is 1).
    pub kubeadm_minor: u32,
    /// Why.
    pub reason: TargetReason,
    /// `kubernetesVersion` as written, if any.
    pub kubernetes_version: Option<String>,
    /// Effective value of every feature gate that kubeadm version has (config over defaults).
    pub gates: BTreeMap<String, bool>,
}

impl Target {
    /// The newest modeled kubeadm with default gates (no config, no flag).
    pub fn newest() -> Target {
        Target::with_defaults(NEWEST, TargetReason::Newest, None)
    }

    /// A target with the default value of each gate kubeadm `minor` has.
    pub fn with_defaults(minor: u32, reason: TargetReason, k8s: Option<String>) -> Target {
        let gates = GATES
            .iter()
            .filter_map(|g| g.at(minor).map(|s| (g.name.to_string(), s.default)))
            .collect();
        Target {
            kubeadm_minor: minor,
            reason,
            kubernetes_version: k8s,
            gates,
        }
    }

    /// Whether a feature gate is on; a gate this kubeadm does not have is off.
    pub fn feature(&self, name: &str) -> bool {
        self.gates.get(name).copied().unwrap_or(false)
    }

    /// `v1.N`, as the output names the target.
    pub fn kubeadm(&self) -> String {
        format!("v1.{}", self.kubeadm_minor)
    }
}

/// Chooses the target kubeadm from `kubernetesVersion` and `--kubeadm-version`.
///
/// Returns the target (gates at their defaults) and warnings. Errors are one line without the
/// field name (the caller names `kubernetesVersion` or `--kubeadm-version`), plus a flag saying
/// which of the two is at fault (`true`: the flag).
pub fn choose(
    kubernetes_version: Option<&str>,
    kubeadm_flag: Option<&str>,
) -> Result<(Target, Vec<String>), (bool, String)> {
    let mut warnings = Vec::new();
    let flag = kubeadm_flag
        .map(parse_kubeadm_version)
        .transpose()
        .map_err(|m| (true, m))?;
    let k8s = kubernetes_version
        .map(parse_kubernetes_version)
        .transpose()
        .map_err(|m| (false, m))?;
    let k8s_minor = match &k8s {
        Some(KubernetesVersion::Semantic { minor, .. }) => Some(*minor),
        Some(KubernetesVersion::Label { minor, .. }) => *minor,
        None => None,
    };
    let text = kubernetes_version.map(str::to_string);
    if let Some(a) = flag {
        if let Some(k) = k8s_minor {
            if k + 1 < a {
                return Err((
                    false,
                    format!(
                        "{}: kubeadm v1.{a} (--kubeadm-version) only deploys control planes >= v1.{}.0 (kubeadm deploys its own minor and one older)",
                        text.unwrap_or_default(),
                        a - 1
                    ),
                ));
            }
            if k > a {
                warnings.push(format!(
                    "kubernetesVersion {} is newer than kubeadm v1.{a} (--kubeadm-version); kubeadm warns the same way, consider a newer kubeadm",
                    text.clone().unwrap_or_default()
                ));
            }
        }
        return Ok((Target::with_defaults(a, TargetReason::Flag, text), warnings));
    }
    match k8s_minor {
        None => {
            if let Some(KubernetesVersion::Label { text: t, .. }) = &k8s {
                warnings.push(format!(
                    "kubernetesVersion {t:?} is a release label kpki does not look up; using the newest layout it models (kubeadm v1.{NEWEST})"
                ));
            }
            Ok((
                Target::with_defaults(NEWEST, TargetReason::Newest, text),
                warnings,
            ))
        }
        Some(k) if k < OLDEST => Err((
            false,
            format!(
                "{}: this is older than any kubeadm kpki models (v1.{OLDEST} to v1.{NEWEST}); kubeadm v1.{OLDEST} refuses control planes older than v1.{}.0{}",
                text.unwrap_or_default(),
                OLDEST - 1,
                if k + 1 == OLDEST {
                    format!(" (v1.{k} can be deployed by kubeadm v1.{OLDEST}: pass --kubeadm-version 1.{OLDEST})")
                } else {
                    String::new()
                }
            ),
        )),
        Some(k) if k > NEWEST => {
            warnings.push(format!(
                "kubernetesVersion {} is newer than the newest kubeadm kpki models (v1.{NEWEST}); using the v1.{NEWEST} layout",
                text.clone().unwrap_or_default()
            ));
            Ok((
                Target::with_defaults(NEWEST, TargetReason::NewerThanModeled, text),
                warnings,
            ))
        }
        Some(k) => Ok((
            Target::with_defaults(k, TargetReason::KubernetesVersion, text),
            warnings,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gates_per_version() {
        let g = gate("ControlPlaneKubeletLocalMode").expect("gate");
        assert!(g.at(30).is_none());
        assert!(!g.at(31).expect("1.31").default);
        assert!(!g.at(32).expect("1.32").default);
        assert!(g.at(33).expect("1.33").default);
        let s = g.at(35).expect("1.35");
        assert!(s.default && s.locked);
        assert!(g.at(36).is_none());
        assert!(gate("PublicKeysECDSA").expect("gate").at(35).is_some());
        assert!(gate("UpgradeAddonsBeforeControlPlane")
            .expect("gate")
            .at(31)
            .is_none());
        assert_eq!(
            Target::with_defaults(28, TargetReason::Newest, None)
                .gates
                .keys()
                .cloned()
                .collect::<Vec<_>>(),
            [
                "EtcdLearnerMode",
                "PublicKeysECDSA",
                "RootlessControlPlane",
                "UpgradeAddonsBeforeControlPlane"
            ]
        );
    }

    #[test]
    fn kubernetes_versions() {
        let minor = |s: &str| match parse_kubernetes_version(s).expect(s) {
            KubernetesVersion::Semantic { minor, .. } => Some(minor),
            KubernetesVersion::Label { minor, .. } => minor,
        };
        assert_eq!(minor("v1.28.4"), Some(28));
        assert_eq!(minor("1.31.0-rc.1"), Some(31));
        assert_eq!(minor("stable-1.30"), Some(30));
        assert_eq!(minor("ci/latest-1.33"), Some(33));
        assert_eq!(minor("stable"), None);
        assert_eq!(minor("stable-1"), None);
        for bad in ["v1.28", "1", "v1.x.0", "stable-2.1", "v01.28.0", ""] {
            assert!(parse_kubernetes_version(bad).is_err(), "{bad}");
        }
        assert!(parse_kubernetes_version("v2.0.0")
            .expect_err("2.x")
            .contains("1.x only"));
    }

    #[test]
    fn choosing_the_target() {
        let t = |k: Option<&str>, f: Option<&str>| {
            choose(k, f).map(|(t, w)| (t.kubeadm_minor, w.len()))
        };
        assert_eq!(t(None, None), Ok((NEWEST, 0)));
        assert_eq!(t(Some("v1.28.4"), None), Ok((28, 0)));
        assert_eq!(t(Some("v1.30.1"), Some("1.31")), Ok((31, 0)));
        assert_eq!(t(Some("v1.36.0"), None), Ok((NEWEST, 1)));
        assert_eq!(t(Some("stable"), None), Ok((NEWEST, 1)));
        assert_eq!(t(Some("v1.31.0"), Some("1.30")), Ok((30, 1)));
        let e = choose(Some("v1.21.0"), None).expect_err("too old");
        assert!(
            !e.0 && e.1.contains("older than any kubeadm kpki models"),
            "{e:?}"
        );
        let e = choose(Some("v1.27.3"), None).expect_err("too old");
        assert!(e.1.contains("--kubeadm-version 1.28"), "{e:?}");
        assert_eq!(t(Some("v1.27.3"), Some("1.28")), Ok((28, 0)));
        let e = choose(Some("v1.28.0"), Some("1.31")).expect_err("skew");
        assert!(e.1.contains(">= v1.30.0"), "{e:?}");
        let e = choose(None, Some("1.40")).expect_err("unmodeled");
        assert!(e.0 && e.1.contains("not modeled"), "{e:?}");
    }

    #[test]
    fn algorithms_per_version() {
        assert!(!encryption_algorithms(33).contains(&"ECDSA-P384"));
        assert_eq!(
            encryption_algorithms(34),
            [
                "ECDSA-P256",
                "ECDSA-P384",
                "RSA-2048",
                "RSA-3072",
                "RSA-4096"
            ]
        );
        assert!(reads_api_version(28, "kubeadm.k8s.io/v1beta3"));
        assert!(!reads_api_version(30, "kubeadm.k8s.io/v1beta4"));
        assert!(reads_api_version(35, "kubeadm.k8s.io/v1beta4"));
    }
}
