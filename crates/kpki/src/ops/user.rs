//! Kubeconfigs for extra users, signed by the cluster CA: kubeadm's `kubeadm kubeconfig user`.
//!
//! An operator who needs credentials for a person or a tool asks for a client name and groups.
//! What such a kubeconfig is (CN, O, usages, server, CA) is the spec's `[user]` section; the
//! request resolves it into one entry next to the tree's CAs, which the `fresh` view of the plan
//! issues and the one writer writes (or [`crate::apply::render`] returns for printing).

use std::path::PathBuf;

use time::Duration;

use crate::error::{Error, Result};
use crate::inputs::DEFAULT_CERT_VALIDITY;

/// What to issue: the identity, its lifetime and where it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UserRequest {
    /// Client name: the certificate CN and the kubeconfig user name.
    pub client_name: String,
    /// Groups (certificate O values); comma lists are split, blanks dropped, duplicates merged.
    pub orgs: Vec<String>,
    /// Validity: NotAfter = now + validity (NotBefore is back-dated by five minutes).
    pub validity: Duration,
    /// Write the kubeconfig here (mode from the spec, atomically); `None`: return it only.
    pub out: Option<PathBuf>,
}

impl UserRequest {
    /// A request for `client_name`, no groups, kubeadm's default validity (8760h), not written.
    pub fn new(client_name: impl Into<String>) -> UserRequest {
        UserRequest {
            client_name: client_name.into(),
            orgs: Vec::new(),
            validity: DEFAULT_CERT_VALIDITY,
            out: None,
        }
    }

    /// Adds a group.
    pub fn group(mut self, org: impl Into<String>) -> UserRequest {
        self.orgs.push(org.into());
        self
    }

    /// Sets the validity.
    pub fn validity(mut self, d: Duration) -> UserRequest {
        self.validity = d;
        self
    }

    /// Writes the kubeconfig to `path`.
    pub fn out(mut self, path: impl Into<PathBuf>) -> UserRequest {
        self.out = Some(path.into());
        self
    }

    /// Checks the request (name, validity) and normalises the groups.
    pub fn validated(&self) -> Result<UserRequest> {
        let name = self.client_name.trim();
        if name.is_empty() {
            return Err(Error::input("--client-name", "must not be empty"));
        }
        if name.chars().any(char::is_control) {
            return Err(Error::input(
                "--client-name",
                format!("{name:?} contains control characters"),
            ));
        }
        if self.validity <= Duration::ZERO {
            return Err(Error::input("--validity-period", "must be positive"));
        }
        Ok(UserRequest {
            client_name: name.to_string(),
            orgs: normalize_orgs(&self.orgs),
            validity: self.validity,
            out: self.out.clone(),
        })
    }
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn requests_are_checked() {
        assert!(UserRequest::new(" ").validated().is_err());
        assert!(UserRequest::new("a\u{1b}b").validated().is_err());
        assert!(UserRequest::new("jane")
            .validity(Duration::ZERO)
            .validated()
            .is_err());
        let r = UserRequest::new(" jane ")
            .group("a,b")
            .group("a")
            .validated()
            .expect("ok");
        assert_eq!(
            (r.client_name.as_str(), r.orgs),
            ("jane", vec!["a".to_string(), "b".into()])
        );
    }
}
