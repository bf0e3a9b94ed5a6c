//! `certs renew --if-expiring-within`: renew only what expires inside a window, so a daily timer
//! can run it and change nothing on most days.
//!
//! [`select`] is the decision (pure over the observed disk and the clock): each named entry is
//! due, not due, signed by an external CA, or unreadable, and each CA that signs one of them is
//! due or not. [`renew_if_due`] renews exactly the due entries through [`Kpki::renew`] (CAs are
//! never renewed: rotating a CA is a different procedure, see docs/operations.md) and says what
//! came of it as an [`Outcome`] with a documented exit code. A second run inside the same window
//! finds nothing due, because a renewed certificate's validity starts at the run's instant.

use time::{Duration, OffsetDateTime};

use crate::assess::{Assessment, CaView, Code, EntryAssessment, State};
use crate::error::{Error, Result};
use crate::model::resolve::Entry;
use crate::plan::Action;
use crate::{InitReport, Kpki, Run};

/// Parses a renewal window: a Go duration (`720h`, `1h30m`) or whole days (`30d`).
pub fn parse_window(s: &str) -> std::result::Result<Duration, String> {
    let d = match s.strip_suffix('d') {
        Some(days) if !days.is_empty() && days.bytes().all(|b| b.is_ascii_digit()) => {
            let n: i64 = days
                .parse()
                .map_err(|_| format!("invalid duration {s:?}: too many days"))?;
            if n > 106_000 {
                return Err(format!("invalid duration {s:?}: too many days"));
            }
            Duration::days(n)
        }
        _ => crate::inputs::duration::parse_go_duration(s)
            .map_err(|m| format!("{m} (or whole days, e.g. 30d)"))?,
    };
    if d.is_negative() {
        return Err(format!("invalid duration {s:?}: must not be negative"));
    }
    Ok(d)
}

/// Where one entry stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Expires inside the window (or has expired): renew it.
    Due,
    /// Expires after the window.
    NotDue,
    /// Due, but its CA is external (no CA key): the external CA must issue it again.
    DueExternal,
    /// A CA that expires inside the window: not renewed here (rotation).
    CaDue,
    /// A CA that expires after the window.
    CaNotDue,
    /// The certificate is missing or unreadable (the message says why): nothing to renew.
    Unreadable(String),
    /// A kubeconfig whose client certificate is a file reference (the kubelet rotates it).
    ByReference,
}

/// One entry's expiry and status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Spec entry name.
    pub entry: String,
    /// Its certificate file or kubeconfig.
    pub path: String,
    /// The certificate's notAfter, when it could be read.
    pub not_after: Option<OffsetDateTime>,
    /// Where it stands.
    pub status: Status,
}

/// What is due among the named entries and their CAs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// The window.
    pub within: Duration,
    /// The instant it was decided at.
    pub now: OffsetDateTime,
    /// Named entries, then the CAs that sign them, in spec order.
    pub candidates: Vec<Candidate>,
}

impl Selection {
    /// Names of the entries to renew.
    pub fn due(&self) -> Vec<String> {
        self.with(|s| *s == Status::Due)
    }

    /// Names of the CAs that expire inside the window.
    pub fn cas_due(&self) -> Vec<String> {
        self.with(|s| *s == Status::CaDue)
    }

    /// Names of entries that need an operator rather than a renewal: due with an external CA,
    /// or missing/unreadable.
    pub fn not_renewable(&self) -> Vec<String> {
        self.with(|s| matches!(s, Status::DueExternal | Status::Unreadable(_)))
    }

    fn with(&self, f: impl Fn(&Status) -> bool) -> Vec<String> {
        self.candidates
            .iter()
            .filter(|c| f(&c.status))
            .map(|c| c.entry.clone())
            .collect()
    }
}

/// Decides what is due, from the one assessment of the tree (`a`, of `kpki.desired`): each
/// named entry's expiry, whether its CA is external, whether it is missing or unreadable, and
/// whether its client certificate is a file its owner rotates.
pub fn select(
    kpki: &Kpki,
    a: &Assessment,
    names: &[String],
    now: OffsetDateTime,
    within: Duration,
) -> Result<Selection> {
    let known = kpki.renewable();
    let mut wanted: Vec<String> = Vec::new();
    for n in names {
        if n == "all" {
            wanted.extend(kpki.renew_all_names());
        } else if known.contains(n) {
            wanted.push(n.clone());
        } else {
            return Err(Error::Input {
                field: "certs renew".into(),
                message: format!(
                    "unknown certificate {n:?} (known: all, {})",
                    known.join(", ")
                ),
            });
        }
    }
    if wanted.is_empty() {
        return Err(Error::Input {
            field: "certs renew".into(),
            message: "name at least one certificate, or all".into(),
        });
    }
    let external = |ca: &str| {
        a.get(ca)
            .and_then(|ea| ea.ca.as_ref())
            .is_some_and(CaView::external)
    };
    // Missing, or not readable as what it should be: the assessment's finding says why.
    let unreadable = |ea: &EntryAssessment| -> Option<String> {
        if ea.state == State::Missing {
            return Some("missing".into());
        }
        ea.findings
            .iter()
            .find(|f| {
                matches!(
                    f.code,
                    Code::PemInvalid
                        | Code::FileUnreadable
                        | Code::KubeconfigInvalid
                        | Code::KubeconfigContextUnresolved
                        | Code::KubeconfigNoClientCert
                )
            })
            .map(|f| f.message.clone())
    };
    let due = |t: OffsetDateTime| t - now <= within;
    let mut candidates = Vec::new();
    let mut signers: Vec<String> = Vec::new();
    for (e, ea) in kpki.desired.entries.iter().zip(&a.entries) {
        if !wanted.iter().any(|w| w == e.name()) {
            continue;
        }
        let ca = match e {
            Entry::Leaf(c) => c.ca.clone().unwrap_or_default(),
            Entry::Kubeconfig(k) => k.ca.clone(),
            _ => String::new(),
        };
        if !ca.is_empty() && !signers.contains(&ca) {
            signers.push(ca.clone());
        }
        let (not_after, status) = match (unreadable(ea), ea.not_after) {
            // A client certificate referenced by path is the kubelet's to rotate.
            _ if ea.credentials_elsewhere => (ea.not_after, Status::ByReference),
            (Some(m), _) => (None, Status::Unreadable(m)),
            (None, None) => (None, Status::Unreadable("has no certificate".into())),
            (None, Some(t)) if due(t) && external(&ca) => (Some(t), Status::DueExternal),
            (None, Some(t)) if due(t) => (Some(t), Status::Due),
            (None, Some(t)) => (Some(t), Status::NotDue),
        };
        candidates.push(Candidate {
            entry: e.name().to_string(),
            path: e.main_path().display().to_string(),
            not_after,
            status,
        });
    }
    for (e, ea) in kpki.desired.entries.iter().zip(&a.entries) {
        let Entry::Ca(c) = e else { continue };
        if !signers.contains(&c.name) {
            continue;
        }
        let (not_after, status) = match (unreadable(ea), ea.not_after) {
            (Some(m), _) => (None, Status::Unreadable(m)),
            (None, None) => (None, Status::Unreadable("has no certificate".into())),
            (None, Some(t)) if due(t) => (Some(t), Status::CaDue),
            (None, Some(t)) => (Some(t), Status::CaNotDue),
        };
        candidates.push(Candidate {
            entry: c.name.clone(),
            path: c.cert_path.display().to_string(),
            not_after,
            status,
        });
    }
    Ok(Selection {
        within,
        now,
        candidates,
    })
}

/// What a renew-if-due run came to. Each has its own exit code (docs/operations.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing expires inside the window: nothing was written.
    NothingDue,
    /// Certificates were renewed, and nothing needs an operator.
    Renewed,
    /// A CA expires inside the window. CAs are not renewed here: rotate it. Due leaves and
    /// kubeconfigs were still renewed.
    CaDue,
    /// A due certificate could not be renewed here (its CA is external), or a named certificate is
    /// missing or unreadable. Everything else due was renewed.
    NotRenewable,
}

impl Outcome {
    /// The process exit code: 0 nothing due, 3 renewed, 4 a CA is due, 5 not renewable here
    /// (2, "could not run", is kpki's code for errors).
    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::NothingDue => 0,
            Outcome::Renewed => 3,
            Outcome::CaDue => 4,
            Outcome::NotRenewable => 5,
        }
    }
}

/// The result of [`renew_if_due`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RenewIfDue {
    /// What was due.
    pub selection: Selection,
    /// The renewal's plan and writes (`None` when nothing was due).
    pub report: Option<InitReport>,
    /// Entries actually renewed (or, in a dry run, that would be).
    pub renewed: Vec<String>,
    /// The verdict.
    pub outcome: Outcome,
}

/// Renews the entries of `names` (or `all`) that expire within `within` of `run.now`, through
/// [`Kpki::renew`] (same backups, locking and SAN rules), and nothing else.
pub fn renew_if_due(
    kpki: &Kpki,
    names: &[String],
    within: Duration,
    sans: crate::Sans,
    run: &Run<'_>,
    mode: crate::Mode,
) -> Result<RenewIfDue> {
    let disk = crate::disk::observe(&kpki.desired);
    let a = crate::assess::assess(&kpki.desired, &disk, run.now, &Default::default());
    let selection = select(kpki, &a, names, run.now, within)?;
    let due = selection.due();
    let (report, renewed) = if due.is_empty() {
        (None, Vec::new())
    } else {
        let report = kpki.renew(&due, sans, run, mode)?;
        let renewed: Vec<String> = report
            .plan
            .steps
            .iter()
            .filter(|s| matches!(s.action, Action::Renew | Action::Regenerate))
            .map(|s| s.entry.clone())
            .collect();
        (Some(report), renewed)
    };
    let skipped_due = due.iter().any(|d| !renewed.contains(d));
    let outcome = if !selection.cas_due().is_empty() {
        Outcome::CaDue
    } else if !selection.not_renewable().is_empty() || skipped_due {
        Outcome::NotRenewable
    } else if !renewed.is_empty() {
        Outcome::Renewed
    } else {
        Outcome::NothingDue
    };
    Ok(RenewIfDue {
        selection,
        report,
        renewed,
        outcome,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_go_durations_or_days() {
        assert_eq!(parse_window("30d"), Ok(Duration::days(30)));
        assert_eq!(parse_window("720h"), Ok(Duration::hours(720)));
        assert_eq!(parse_window("1h30m"), Ok(Duration::minutes(90)));
        assert_eq!(parse_window("0"), Ok(Duration::ZERO));
        assert!(parse_window("-1h").is_err());
        assert!(parse_window("30").is_err());
        assert!(parse_window("d").is_err());
        assert!(parse_window("1.5d").is_err());
        assert!(parse_window("999999999999d").is_err());
    }
}
