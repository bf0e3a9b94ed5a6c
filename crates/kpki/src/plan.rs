//! The planner: a pure function from (desired entries, the assessment of what is on disk,
//! options) to one action per entry with its reason.
//!
//! The planner judges nothing itself: [`crate::assess`] says what is wrong with each entry and
//! how it can be cured, and the plan maps that to an action. An error that re-issuing cures makes
//! the step `regenerate` (or refuses, naming it, unless the caller allows re-issuing); an error
//! only the operator can fix makes it `error`; a mode kpki can tighten makes it `repair`;
//! warnings keep `reuse` and travel with the step. So `plan`, `init`, `renew`, `nodes` and
//! `verify` cannot disagree about a file.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::assess::{self, fmt_time, Assessment, EntryAssessment, Finding, Severity, State};
use crate::disk::Disk;
use crate::error::Error;
use crate::model::resolve::{Desired, Entry};

/// What to do with an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Nothing there: generate it.
    Create,
    /// There and right: keep it byte for byte.
    Reuse,
    /// There and right, but asked to renew it (new key, serial, validity).
    Renew,
    /// There but drifted from the spec (e.g. a SAN added): issue it again from the spec.
    Regenerate,
    /// There and right but for a file mode: tighten the mode in place.
    Repair,
    /// Its CA is external (no key): it can only be checked, not made.
    SkipExternal,
    /// Left alone: not selected (renew of other entries), selected but missing, or owned by
    /// someone else (the kubelet's rotated client certificate).
    Skip,
    /// Wrong in a way kpki will not fix on its own; the reason says what to do.
    Error,
    /// `generate-csr`: a new key and a certificate signing request for an external CA.
    Csr,
}

/// A file mode to set in place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Repair {
    /// The file.
    pub path: String,
    /// The mode the spec asks for.
    pub mode: u32,
}

/// The planned action for one entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Step {
    /// Spec entry name.
    pub entry: String,
    /// The action.
    pub action: Action,
    /// Why, in words an operator can act on.
    pub reason: String,
    /// The file the reason is about.
    pub path: String,
    /// The assessment's findings for this entry (errors and warnings; information is left to
    /// `verify`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<Finding>,
    /// For `Create`: an orphan key on disk is reused instead of generating one.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keep_key: bool,
    /// For `Repair`: the modes to set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repairs: Vec<Repair>,
    /// NotAfter of the certificate on disk (RFC 3339), when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    /// NotAfter a certificate issued by this step gets (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_expires: Option<String>,
}

impl Step {
    /// Warning findings.
    pub fn warnings(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Warning)
    }

    /// What a command should tell the operator about this step: the warnings, and the errors
    /// kpki repairs in place (an insecure file mode), which are worth a word even when repaired.
    pub fn notes(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| {
            f.severity == Severity::Warning
                || (f.severity == Severity::Error && f.remedy == assess::Remedy::Repair)
        })
    }

    /// True when the step writes a certificate.
    pub fn issues(&self) -> bool {
        matches!(
            self.action,
            Action::Create | Action::Renew | Action::Regenerate
        )
    }
}

/// `kpki plan -o json`: a versioned, documented contract (docs/plan.md). `v1alpha2` made
/// `inputs` the inputs with their origins and moved the findings about them to `inputFindings`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanDocument {
    /// `kpki/v1alpha2`.
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    /// `Plan`.
    pub kind: String,
    /// Every input with its value and where it came from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<crate::inputs::table::InputValue>,
    /// Findings about the inputs (an input that contradicts the tree, sources that disagree).
    #[serde(
        rename = "inputFindings",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub input_findings: Vec<Finding>,
    /// One step per spec entry, in spec order (CAs first).
    pub steps: Vec<Step>,
}

impl From<&Plan> for PlanDocument {
    fn from(p: &Plan) -> Self {
        PlanDocument {
            api_version: "kpki/v1alpha2".into(),
            kind: "Plan".into(),
            inputs: Vec::new(),
            input_findings: p.inputs.clone(),
            steps: p.steps.clone(),
        }
    }
}

impl PlanDocument {
    /// The document of a plan made from `inputs`, with the inputs table.
    pub fn with_inputs(p: &Plan, inputs: &crate::inputs::Inputs) -> PlanDocument {
        PlanDocument {
            inputs: inputs.table(),
            ..PlanDocument::from(p)
        }
    }
}

/// Which command the plan is for: the same assessment, seen through the command's rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum View {
    /// `init`: create what is missing, keep what is right.
    #[default]
    Init,
    /// `certs renew NAMES`: re-issue exactly these; CAs and everything else are left alone.
    Renew(Vec<String>),
    /// `certs generate-csr`: keys and CSRs for every leaf and kubeconfig, nothing may exist.
    Csr,
    /// `nodes`: per-node credentials kpki owns: what is missing is issued, what is wrong
    /// (drifted, unreadable as a certificate or kubeconfig) is issued again, what is right kept.
    Nodes,
    /// `kubeconfig user` / `bootstrap`: the entries outside the tree are issued anew every time
    /// (an existing kubeconfig at the target is replaced; any other file is refused).
    Fresh,
}

/// What the caller wants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Options {
    /// Re-issue entries with errors that re-issuing cures instead of refusing.
    pub regenerate_drifted: bool,
    /// The command's rules.
    pub view: View,
    /// Judge with this expiry warning horizon.
    pub assess: assess::Options,
}

impl Options {
    /// `init --regenerate-drifted`'s options: entries with errors a re-issue cures are
    /// regenerated instead of refused.
    pub fn regenerating_drifted() -> Options {
        Options {
            regenerate_drifted: true,
            ..Default::default()
        }
    }

    /// `certs renew`'s options for these entries.
    pub fn renew(names: Vec<String>) -> Options {
        Options {
            view: View::Renew(names),
            ..Default::default()
        }
    }

    /// `certs generate-csr`'s options.
    pub fn csr() -> Options {
        Options {
            view: View::Csr,
            ..Default::default()
        }
    }

    fn selected(&self, name: &str) -> bool {
        matches!(&self.view, View::Renew(n) if n.iter().any(|x| x == name))
    }
}

/// The plan for a whole tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Plan {
    /// Findings about the inputs.
    pub inputs: Vec<Finding>,
    /// The caller allows re-issuing, so an input that contradicts the tree does not block.
    #[serde(skip)]
    pub regenerating: bool,
    /// One step per entry, in entry order.
    pub steps: Vec<Step>,
}

impl Plan {
    /// The step for an entry.
    pub fn step(&self, name: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.entry == name)
    }

    /// Steps that block applying the plan.
    pub fn errors(&self) -> impl Iterator<Item = &Step> {
        self.steps.iter().filter(|s| s.action == Action::Error)
    }

    /// The first blocking problem as an [`Error`], if any: an input that contradicts the tree,
    /// or a step that is an error.
    pub fn check(&self) -> Result<(), Error> {
        if let Some(f) = self
            .inputs
            .iter()
            .find(|f| f.severity == Severity::Error && !self.regenerating)
        {
            return Err(Error::input(
                f.entry.clone(),
                format!("{}; {}", f.message, f.fix),
            ));
        }
        match self.errors().next() {
            None => Ok(()),
            Some(s) => Err(Error::Conflict {
                entry: s.entry.clone(),
                path: s.path.clone().into(),
                message: s.reason.clone(),
            }),
        }
    }

    /// True when applying would write nothing.
    pub fn is_noop(&self) -> bool {
        self.steps.iter().all(|s| {
            matches!(
                s.action,
                Action::Reuse | Action::SkipExternal | Action::Skip
            )
        })
    }
}

/// The state of a CA after planning, which its dependants depend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CaState {
    /// Being made now.
    New,
    /// Kept, with its key: it can sign.
    Kept,
    /// Kept without its key: external CA mode.
    External,
    /// Broken: it can sign nothing.
    Broken,
}

/// Assesses `disk` and plans every entry of `desired` at time `now`.
pub(crate) fn plan(desired: &Desired, disk: &Disk, now: OffsetDateTime, opts: &Options) -> Plan {
    let a = assess::assess(desired, disk, now, &opts.assess);
    plan_assessed(desired, &a, now, opts)
}

/// Plans every entry of `desired` from its assessment (pure).
pub(crate) fn plan_assessed(
    desired: &Desired,
    a: &Assessment,
    now: OffsetDateTime,
    opts: &Options,
) -> Plan {
    // Nodes and fresh issues re-issue whatever re-issuing cures: the files are kpki's own.
    let regenerating = matches!(opts.view, View::Nodes | View::Fresh);
    let own;
    let opts = if regenerating && !opts.regenerate_drifted {
        own = Options {
            regenerate_drifted: true,
            ..opts.clone()
        };
        &own
    } else {
        opts
    };
    let mut cas: HashMap<String, CaState> = HashMap::new();
    let mut steps = Vec::with_capacity(desired.entries.len());
    for (e, ea) in desired.entries.iter().zip(&a.entries) {
        let s = plan_entry(desired, e, ea, &mut cas, now, opts);
        steps.push(match &opts.view {
            View::Init => s,
            View::Renew(_) => renew_view(e, s, opts),
            View::Csr => csr_view(e, ea),
            View::Nodes => nodes_view(desired, e, s, ea, &cas),
            View::Fresh => fresh_view(desired, e, s, ea, &cas),
        });
    }
    issue_warnings(desired, a, &mut steps, now, &opts.assess);
    Plan {
        inputs: a.inputs.clone(),
        regenerating: opts.regenerate_drifted,
        steps,
    }
}

/// True when a kubeconfig's client certificate and key files are inside the tree's directories
/// (the cert dir or the kubeconfig dir), so kpki may renew them in place; never for the kubelet's
/// own rotated `kubelet-client-*.pem`, which the kubelet renews.
pub(crate) fn credentials_in_tree(
    desired: &Desired,
    cert: &std::path::Path,
    key: &std::path::Path,
) -> bool {
    use crate::model::layout::normalize;
    let roots = [
        normalize(&desired.inputs.cert_dir),
        normalize(&desired.inputs.kubeconfig_dir),
    ];
    [cert, key].iter().all(|p| {
        let n = normalize(p);
        let kubelets = n
            .file_name()
            .is_some_and(|f| f.to_string_lossy().starts_with("kubelet-client-"));
        !kubelets && roots.iter().any(|r| n.starts_with(r) && n != *r)
    })
}

/// Warnings about what a step is about to issue, from the inputs and the CA it signs with: a
/// certificate that would outlive its CA (it stops working when the CA expires), a validity
/// inside the expiry warning horizon (a CA issued for 1ns expires at once), a CN longer than
/// RFC 5280's 64 characters.
fn issue_warnings(
    desired: &Desired,
    a: &Assessment,
    steps: &mut [Step],
    now: OffsetDateTime,
    opts: &assess::Options,
) {
    let after = |i: usize| -> Option<OffsetDateTime> {
        if steps[i].issues() {
            validity_of(&desired.entries[i]).and_then(|v| now.checked_add(v))
        } else {
            a.entries.get(i).and_then(|ea| ea.not_after)
        }
    };
    let mut notes: Vec<(usize, Finding)> = Vec::new();
    for (i, e) in desired.entries.iter().enumerate() {
        if !steps[i].issues() {
            continue;
        }
        let Some(validity) = validity_of(e) else {
            continue;
        };
        let new_after = now.checked_add(validity);
        let finding = |code: assess::Code, message: String, fix: String| Finding {
            code,
            severity: code.severity(),
            entry: e.name().to_string(),
            path: steps[i].path.clone(),
            message,
            fix,
            remedy: assess::Remedy::None,
        };
        let parent = match e {
            Entry::Ca(c) | Entry::Leaf(c) => c.ca.clone(),
            Entry::Kubeconfig(k) => Some(k.ca.clone()),
            Entry::KeyPair(_) => None,
        };
        let parent_after = parent.as_ref().and_then(|p| {
            desired
                .entries
                .iter()
                .position(|x| x.name() == p)
                .and_then(after)
        });
        if let (Some(mine), Some(ca), Some(p)) = (new_after, parent_after, &parent) {
            if mine > ca {
                notes.push((i, finding(
                    assess::Code::CertOutlivesCa,
                    format!(
                        "will be issued until {}, after its CA {p} expires ({}): it stops working then",
                        fmt_time(mine),
                        fmt_time(ca)
                    ),
                    format!("plan the rotation of CA {p} before {}, or give a shorter validity", fmt_time(ca)),
                )));
            }
        }
        if validity <= opts.warn_within {
            notes.push((
                i,
                finding(
                    assess::Code::CertExpiring,
                    format!(
                    "will be issued for only {}: it expires on {}, within the {} warning horizon",
                    crate::inputs::duration::format_go_duration(validity),
                    new_after.map(fmt_time).unwrap_or_default(),
                    crate::inputs::duration::format_go_duration(opts.warn_within)
                ),
                    "check --cert-validity / --ca-validity and the spec's validity".into(),
                ),
            ));
        }
        let cn = match e {
            Entry::Ca(c) | Entry::Leaf(c) => Some(&c.profile.cn),
            Entry::Kubeconfig(k) => Some(&k.profile.cn),
            Entry::KeyPair(_) => None,
        };
        if let Some(cn) = cn.filter(|cn| cn.chars().count() > assess::MAX_CN) {
            notes.push((
                i,
                finding(
                    assess::Code::SubjectCnLong,
                    assess::cn_long_message(cn).replacen("has", "will have", 1),
                    String::new(),
                ),
            ));
        }
    }
    for (i, f) in notes {
        if !steps[i].findings.iter().any(|x| x.code == f.code) {
            steps[i].findings.push(f);
        }
    }
}

fn base_step(e: &Entry, ea: &EntryAssessment, action: Action, reason: impl Into<String>) -> Step {
    Step {
        entry: e.name().to_string(),
        action,
        reason: reason.into(),
        path: e.main_path().display().to_string(),
        findings: ea
            .findings
            .iter()
            .filter(|f| f.severity != Severity::Info)
            .cloned()
            .collect(),
        keep_key: false,
        repairs: vec![],
        expires: ea.not_after.map(fmt_time),
        new_expires: None,
    }
}

/// A finding in words, with its fix.
fn explain(f: &Finding) -> String {
    if f.fix.is_empty() {
        f.message.clone()
    } else {
        format!("{}; {}", f.message, f.fix)
    }
}

/// Several findings of one entry in words (with their codes), then the first one's fix.
fn explain_all(fs: &[&Finding]) -> String {
    let what = fs
        .iter()
        .map(|f| format!("{} ({})", f.message, f.code))
        .collect::<Vec<_>>()
        .join("; ");
    match fs.first() {
        Some(f) if !f.fix.is_empty() => format!("{what}; {}", f.fix),
        _ => what,
    }
}

/// The error findings only the operator can fix, on the file of the first one.
fn manual_errors(ea: &EntryAssessment) -> Vec<&Finding> {
    let first = match ea.manual_error() {
        Some(f) => f,
        None => return vec![],
    };
    ea.errors()
        .filter(|f| f.remedy == assess::Remedy::Manual && f.path == first.path)
        .collect()
}

/// An `error` step about the file a finding names.
fn error_step(e: &Entry, ea: &EntryAssessment, f: &Finding, reason: String) -> Step {
    let mut s = base_step(e, ea, Action::Error, reason);
    s.path = f.path.clone();
    s
}

fn validity_of(e: &Entry) -> Option<time::Duration> {
    match e {
        Entry::Ca(c) | Entry::Leaf(c) => Some(c.validity),
        Entry::Kubeconfig(k) => Some(k.validity),
        Entry::KeyPair(_) => None,
    }
}

fn plan_entry(
    desired: &Desired,
    e: &Entry,
    ea: &EntryAssessment,
    cas: &mut HashMap<String, CaState>,
    now: OffsetDateTime,
    opts: &Options,
) -> Step {
    // Certificates carry whole seconds.
    let new_expires = validity_of(e)
        .and_then(|v| now.checked_add(v))
        .map(|t| fmt_time(t.replace_nanosecond(0).unwrap_or(t)));
    let issuing = |mut s: Step| {
        s.new_expires = new_expires.clone();
        s
    };
    let parent = match e {
        Entry::Ca(c) => c.ca.clone(),
        Entry::Leaf(c) => c.ca.clone(),
        Entry::Kubeconfig(k) => Some(k.ca.clone()),
        Entry::KeyPair(_) => None,
    };
    let parent_state = parent
        .as_ref()
        .map(|p| cas.get(p).copied().unwrap_or(CaState::Broken));
    let can_sign = matches!(parent_state, None | Some(CaState::New | CaState::Kept));
    let parent_name = parent.clone().unwrap_or_default();

    if let Entry::Ca(c) = e {
        if let Some(f) = ea.manual_error() {
            cas.insert(c.name.clone(), CaState::Broken);
            return error_step(e, ea, f, explain(f));
        }
        let (step, st) = match ea.state {
            State::Missing | State::KeyOnly if !can_sign => (
                base_step(
                    e,
                    ea,
                    Action::Error,
                    format!("its signing CA {parent_name} cannot sign"),
                ),
                CaState::Broken,
            ),
            State::Missing => (
                issuing(base_step(e, ea, Action::Create, "not present")),
                CaState::New,
            ),
            State::KeyOnly => {
                let mut s = issuing(base_step(e, ea, Action::Create, "CA key exists without a certificate; issuing a certificate for the existing key (the key is kept)"));
                s.keep_key = true;
                (s, CaState::New)
            }
            _ => {
                if let Some(f) = ea.errors().find(|f| f.remedy != assess::Remedy::Repair) {
                    (error_step(e, ea, f, explain(f)), CaState::Broken)
                } else if let Some(p) =
                    parent_state.filter(|p| matches!(p, CaState::New | CaState::Broken))
                {
                    let why = if p == CaState::New {
                        "is being created now"
                    } else {
                        "has a problem"
                    };
                    (
                        base_step(
                            e,
                            ea,
                            Action::Error,
                            format!("its signing CA {parent_name} {why}, so it cannot be kept"),
                        ),
                        CaState::Broken,
                    )
                } else {
                    let external = ea.ca.as_ref().is_some_and(assess::CaView::external);
                    let st = if external {
                        CaState::External
                    } else {
                        CaState::Kept
                    };
                    let s = if ea.repairs().next().is_some() {
                        repair_step(desired, e, ea)
                    } else if external {
                        base_step(e, ea, Action::SkipExternal, format!("external CA: {} is absent, so every certificate it signs must already exist", c.key_path.display()))
                    } else {
                        base_step(e, ea, Action::Reuse, "CA certificate and key present")
                    };
                    (s, st)
                }
            }
        };
        cas.insert(c.name.clone(), st);
        return step;
    }

    let external = parent_state == Some(CaState::External);
    let manual = manual_errors(ea);
    if let Some(f) = manual.first() {
        return error_step(e, ea, f, explain_all(&manual));
    }
    match ea.state {
        State::Missing | State::KeyOnly => {
            let keep = ea.state == State::KeyOnly;
            if let Entry::KeyPair(_) = e {
                let mut s = issuing(base_step(
                    e,
                    ea,
                    Action::Create,
                    if keep {
                        "public key missing; derived from the existing private key"
                    } else {
                        "not present"
                    },
                ));
                s.new_expires = None;
                s.keep_key = keep;
                if keep {
                    s.path = match e {
                        Entry::KeyPair(k) => k.pub_path.display().to_string(),
                        _ => s.path,
                    };
                }
                return s;
            }
            if external {
                return base_step(e, ea, Action::Error, format!("is missing and its CA {parent_name} is external (no key): have the external CA sign it (see kpki certs generate-csr)"));
            }
            if !can_sign {
                return base_step(
                    e,
                    ea,
                    Action::Error,
                    format!("cannot be issued: its CA {parent_name} has a problem"),
                );
            }
            let mut s = issuing(base_step(
                e,
                ea,
                Action::Create,
                if keep {
                    "key exists without a certificate; issuing a certificate for the existing key"
                } else {
                    "not present"
                },
            ));
            s.keep_key = keep;
            s
        }
        State::SignedElsewhere => {
            let mut s = base_step(
                e,
                ea,
                Action::Create,
                ea.findings
                    .iter()
                    .find(|f| f.code == assess::Code::KubeconfigNoClientCert)
                    .map(|f| f.message.clone())
                    .unwrap_or_else(|| "embedding the externally signed certificate".into()),
            );
            s.keep_key = true;
            s
        }
        State::Present => {
            if parent_state == Some(CaState::Broken) {
                return base_step(
                    e,
                    ea,
                    Action::Error,
                    format!("its CA {parent_name} has a problem"),
                );
            }
            let drift: Vec<&Finding> = ea.reissue_errors().collect();
            let selected = opts.selected(e.name());
            if let Some(first) = drift.first() {
                return if opts.regenerate_drifted || selected {
                    let what = drift
                        .iter()
                        .map(|f| format!("{} ({})", f.message, f.code))
                        .collect::<Vec<_>>()
                        .join("; ");
                    issuing(base_step(
                        e,
                        ea,
                        Action::Regenerate,
                        format!("{what}; re-issuing it from the spec"),
                    ))
                } else {
                    error_step(
                        e,
                        ea,
                        first,
                        format!("{}, or pass --regenerate-drifted", explain_all(&drift)),
                    )
                };
            }
            if selected {
                if external {
                    let long = match e {
                        Entry::Leaf(c) if !c.long_name.is_empty() => c.long_name.clone(),
                        _ => e.name().to_string(),
                    };
                    return base_step(
                        e,
                        ea,
                        Action::SkipExternal,
                        format!("Detected external {parent_name}, {long} can't be renewed"),
                    );
                }
                let old = ea.not_after.map(fmt_time).unwrap_or_default();
                if ea.credentials_elsewhere {
                    return match &ea.client_files {
                        Some(cf) if credentials_in_tree(desired, &cf.cert, &cf.key) => issuing(base_step(
                            e,
                            ea,
                            Action::Renew,
                            format!(
                                "renewal requested (expires {old}); its client certificate and key are files in the tree ({}), renewed in place",
                                if cf.cert == cf.key {
                                    cf.cert.display().to_string()
                                } else {
                                    format!("{}, {}", cf.cert.display(), cf.key.display())
                                }
                            ),
                        )),
                        Some(cf) => base_step(
                            e,
                            ea,
                            Action::Skip,
                            format!(
                                "its client certificate is a file kpki does not manage ({}: outside the cert and kubeconfig directories, or the kubelet's rotated certificate, which the kubelet renews); left alone",
                                cf.cert.display()
                            ),
                        ),
                        None => base_step(
                            e,
                            ea,
                            Action::Skip,
                            "it references only part of its credentials by path (kpki renews in place only a client certificate and key that are both files in the tree); left alone",
                        ),
                    };
                }
                return issuing(base_step(
                    e,
                    ea,
                    Action::Renew,
                    format!("renewal requested (expires {old})"),
                ));
            }
            if ea.repairs().next().is_some() {
                return repair_step(desired, e, ea);
            }
            if external {
                return base_step(
                    e,
                    ea,
                    Action::SkipExternal,
                    "present and valid; its CA is external",
                );
            }
            let why = match e {
                Entry::Leaf(_) => "present, signed by its CA, key matches, matches the spec",
                Entry::KeyPair(_) => "key pair present and matching",
                Entry::Kubeconfig(_) if ea.credentials_elsewhere => "present; trusts the CA, its client certificate file (rotated by its owner) chains and matches its key",
                Entry::Kubeconfig(_) => "present, trusts the CA, client certificate chains and matches its key",
                Entry::Ca(_) => "present",
            };
            base_step(e, ea, Action::Reuse, why)
        }
    }
}

/// A `repair` step: the modes the spec asks for on the files the assessment flagged.
fn repair_step(desired: &Desired, e: &Entry, ea: &EntryAssessment) -> Step {
    let m = &desired.modes;
    let mode_of = |path: &str| -> u32 {
        let p = std::path::Path::new(path);
        match e {
            Entry::Ca(c) | Entry::Leaf(c) if p == c.key_path => m.key,
            Entry::Ca(_) | Entry::Leaf(_) => m.cert,
            Entry::KeyPair(k) if p == k.key_path => m.key,
            Entry::KeyPair(_) => m.public,
            Entry::Kubeconfig(_) => m.kubeconfig,
        }
    };
    let repairs: Vec<Repair> = ea
        .repairs()
        .map(|f| Repair {
            path: f.path.clone(),
            mode: mode_of(&f.path),
        })
        .collect();
    let what = repairs
        .iter()
        .map(|r| format!("{} -> {:04o}", r.path, r.mode))
        .collect::<Vec<_>>()
        .join(", ");
    let mut s = base_step(
        e,
        ea,
        Action::Repair,
        format!("present and right, but for file modes: {what}"),
    );
    s.repairs = repairs;
    s
}

/// `certs renew` sees the init plan through this: CAs are never made or renewed, entries not
/// asked for are left alone, and asked-for entries that are missing are reported, not created.
fn renew_view(e: &Entry, mut s: Step, opts: &Options) -> Step {
    let selected = opts.selected(e.name());
    match e {
        Entry::Ca(c) if s.action == Action::Create => {
            s.action = Action::Error;
            s.reason = format!(
                "CA {} is missing; renew never creates a CA (run kpki init)",
                c.name
            );
        }
        Entry::Ca(_) if s.action == Action::Repair => {
            s.action = Action::Reuse;
            s.repairs.clear();
        }
        Entry::Ca(_) => {}
        _ if !selected => {
            s.action = Action::Skip;
            s.reason = "not selected for renewal".into();
            s.keep_key = false;
            s.repairs.clear();
            s.new_expires = None;
        }
        Entry::KeyPair(k) => {
            s.action = Action::Skip;
            s.reason = format!("{} is a bare key pair; it is not renewed", k.name);
            s.new_expires = None;
        }
        _ if s.action == Action::Create => {
            let long = match e {
                Entry::Leaf(c) if !c.long_name.is_empty() => c.long_name.clone(),
                _ => e.name().to_string(),
            };
            s.action = Action::Skip;
            s.reason = format!("MISSING! {long}");
            s.keep_key = false;
            s.new_expires = None;
        }
        _ => {}
    }
    s
}

/// A CA for commands that only sign with existing CAs: never created here.
fn existing_ca_only(e: &Entry, mut s: Step) -> Step {
    if s.action == Action::Create {
        s.action = Action::Error;
        s.reason = format!("CA {} is missing; run kpki init first", e.name());
        s.keep_key = false;
    }
    s
}

/// The CA state of an entry's signer, for the views below.
fn signer_state(e: &Entry, cas: &HashMap<String, CaState>) -> Option<CaState> {
    let ca = signer(e)?;
    Some(cas.get(ca).copied().unwrap_or(CaState::Broken))
}

fn signer(e: &Entry) -> Option<&str> {
    match e {
        Entry::Leaf(c) => c.ca.as_deref(),
        Entry::Kubeconfig(k) => Some(k.ca.as_str()),
        _ => None,
    }
}

/// An entry whose CA has no key on disk cannot be signed here: the step names the key file.
fn needs_ca_key(desired: &Desired, e: &Entry, mut s: Step) -> Step {
    let ca = signer(e).unwrap_or_default();
    s.action = Action::Error;
    match desired.ca(ca) {
        Some(c) => {
            s.path = c.key_path.display().to_string();
            s.reason = format!(
                "does not exist: {} is signed with CA {ca}'s key, which is absent (external CA mode)",
                e.name()
            );
        }
        None => s.reason = format!("its CA {ca} has no key on disk: kpki cannot sign it"),
    }
    s.keep_key = false;
    s
}

/// Codes that say "this file is not a certificate / kubeconfig at all": for files kpki owns
/// (node credentials) re-issuing is the cure.
fn unreadable_output(f: &Finding) -> bool {
    matches!(
        f.code,
        assess::Code::PemInvalid
            | assess::Code::KubeconfigInvalid
            | assess::Code::KubeconfigContextUnresolved
    )
}

/// `nodes`: like `init --regenerate-drifted` for files kpki owns, so a broken credential is
/// issued again rather than refused.
fn nodes_view(
    desired: &Desired,
    e: &Entry,
    mut s: Step,
    ea: &EntryAssessment,
    cas: &HashMap<String, CaState>,
) -> Step {
    if let Entry::Ca(_) = e {
        return existing_ca_only(e, s);
    }
    if signer_state(e, cas) == Some(CaState::External) {
        if s.issues() || s.action == Action::Error {
            return needs_ca_key(desired, e, s);
        }
        return s;
    }
    let manual: Vec<&Finding> = ea
        .errors()
        .filter(|f| f.remedy == assess::Remedy::Manual)
        .collect();
    if s.action == Action::Error
        && !manual.is_empty()
        && manual.iter().all(|f| unreadable_output(f))
    {
        s.action = Action::Regenerate;
        s.keep_key = false;
        s.reason = format!("{}; issuing it again", explain_all(&manual));
    }
    s
}

/// `kubeconfig user` / `bootstrap`: issue anew; only a kubeconfig may be replaced.
fn fresh_view(
    desired: &Desired,
    e: &Entry,
    mut s: Step,
    ea: &EntryAssessment,
    cas: &HashMap<String, CaState>,
) -> Step {
    if let Entry::Ca(_) = e {
        return existing_ca_only(e, s);
    }
    if signer_state(e, cas) == Some(CaState::External) {
        return needs_ca_key(desired, e, s);
    }
    match (ea.state, s.action) {
        (_, Action::Error) => s,
        (State::Missing, _) => s,
        _ => {
            s.action = Action::Regenerate;
            s.keep_key = false;
            s.repairs.clear();
            s.reason = "issued anew (the existing kubeconfig is replaced)".into();
            s
        }
    }
}

/// `certs generate-csr`: every leaf and kubeconfig gets a key and a CSR; nothing may be in the
/// way (checked for all entries before anything is written).
fn csr_view(e: &Entry, ea: &EntryAssessment) -> Step {
    match e {
        Entry::Leaf(_) | Entry::Kubeconfig(_) => {
            if ea.state == State::Missing && !ea.request_exists {
                base_step(
                    e,
                    ea,
                    Action::Csr,
                    "a new key and a certificate signing request for the external CA",
                )
            } else if let Some(f) = ea
                .errors()
                .find(|f| f.code != assess::Code::FileMissing)
                .filter(|f| f.code == assess::Code::FileUnreadable)
            {
                // Something unusable is in the way (a dangling link, a directory): say what.
                error_step(
                    e,
                    ea,
                    f,
                    format!(
                        "{}; kpki generate-csr writes nothing while a file is in the way",
                        f.message
                    ),
                )
            } else {
                base_step(
                    e,
                    ea,
                    Action::Error,
                    "already exists (its certificate or key); kpki generate-csr never overwrites",
                )
            }
        }
        _ => base_step(
            e,
            ea,
            Action::Skip,
            "CAs and key pairs are not part of the external CA's requests",
        ),
    }
}

#[cfg(test)]
mod tests {
    //! Table tests: a real ECDSA tree, then synthetic disk states made by editing what was
    //! observed (no file I/O per case), each planned through every view that matters.

    use std::sync::Arc;

    use time::macros::datetime;

    use super::*;
    use crate::disk::read::{read_key, KeyFile, Observed};
    use crate::disk::Seen;
    use crate::entropy::FixedEntropy;
    use crate::inputs::InputArgs;
    use crate::{Kpki, Run};

    const NOW: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);

    fn tree(dir: &std::path::Path) -> (Kpki, Disk) {
        let args = InputArgs {
            cert_dir: Some(dir.join("pki")),
            node_name: Some("cp-1".into()),
            advertise_address: Some("10.0.0.10".parse().expect("ip")),
            key_algorithm: Some(crate::KeyAlgorithm::EcdsaP256),
            ..Default::default()
        };
        let k = Kpki::new(None, &args).expect("inputs");
        let e = FixedEntropy::new(7);
        let run = Run {
            now: NOW,
            entropy: &e,
            jobs: 1,
        };
        k.init(&Options::default(), &run, crate::Mode::Apply)
            .expect("init");
        let disk = crate::disk::observe(&k.desired);
        (k, disk)
    }

    fn cert<'a>(
        disk: &'a mut Disk,
        name: &str,
    ) -> (
        &'a mut Observed<crate::disk::read::CertFile>,
        &'a mut Observed<Arc<KeyFile>>,
    ) {
        match disk.entries.get_mut(name) {
            Some(Seen::Cert { cert, key }) => (cert, key),
            _ => panic!("{name} is not a cert entry"),
        }
    }

    type Edit = fn(&Kpki, &mut Disk);

    fn with_mode(path: &std::path::Path, mode: u32) -> Observed<Arc<KeyFile>> {
        match read_key(path) {
            Observed::Present(k) => Observed::Present(Arc::new(KeyFile { key: k.key, mode })),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn synthetic_disk_states_map_to_actions() {
        let dir = tempfile::tempdir().expect("tmp");
        let (k, base) = tree(dir.path());
        let init = Options::default();
        let regen = Options::regenerating_drifted();
        let renew = Options::renew(vec!["apiserver".into()]);
        let csr = Options::csr();
        let nodes = Options {
            view: View::Nodes,
            ..Default::default()
        };
        // (what, edit, options, entry, expected action, expected keep_key)
        let cases: Vec<(&str, Edit, &Options, &str, Action)> = vec![
            ("intact", |_, _| {}, &init, "apiserver", Action::Reuse),
            ("intact CA", |_, _| {}, &init, "ca", Action::Reuse),
            (
                "leaf cert gone, key kept",
                |_, d| *cert(d, "apiserver").0 = Observed::Missing,
                &init,
                "apiserver",
                Action::Create,
            ),
            (
                "leaf pair gone",
                |_, d| {
                    let (c, k) = cert(d, "apiserver");
                    *c = Observed::Missing;
                    *k = Observed::Missing;
                },
                &init,
                "apiserver",
                Action::Create,
            ),
            (
                "leaf cert garbage",
                |_, d| *cert(d, "apiserver").0 = Observed::Invalid("not a valid PEM file".into()),
                &init,
                "apiserver",
                Action::Error,
            ),
            (
                "leaf cert garbage, regenerate",
                |_, d| *cert(d, "apiserver").0 = Observed::Invalid("not a valid PEM file".into()),
                &regen,
                "apiserver",
                Action::Error,
            ),
            (
                "leaf key gone",
                |_, d| *cert(d, "apiserver").1 = Observed::Missing,
                &init,
                "apiserver",
                Action::Error,
            ),
            (
                "leaf key gone, regenerate",
                |_, d| *cert(d, "apiserver").1 = Observed::Missing,
                &regen,
                "apiserver",
                Action::Regenerate,
            ),
            (
                "leaf key readable by others",
                |k, d| {
                    let p = k
                        .desired
                        .get("apiserver")
                        .map(|e| match e {
                            Entry::Leaf(c) => c.key_path.clone(),
                            _ => unreachable!(),
                        })
                        .expect("entry");
                    *cert(d, "apiserver").1 = with_mode(&p, 0o644);
                },
                &regen,
                "apiserver",
                Action::Regenerate,
            ),
            (
                "CA key readable by others: repaired",
                |k, d| {
                    let p = k.desired.ca("ca").expect("ca").key_path.clone();
                    *cert(d, "ca").1 = with_mode(&p, 0o644);
                },
                &init,
                "ca",
                Action::Repair,
            ),
            (
                "CA gone: created",
                |_, d| {
                    let (c, k) = cert(d, "front-proxy-ca");
                    *c = Observed::Missing;
                    *k = Observed::Missing;
                },
                &init,
                "front-proxy-ca",
                Action::Create,
            ),
            (
                "CA gone: its leaf refused",
                |_, d| {
                    let (c, k) = cert(d, "front-proxy-ca");
                    *c = Observed::Missing;
                    *k = Observed::Missing;
                },
                &init,
                "front-proxy-client",
                Action::Error,
            ),
            (
                "CA gone: its leaf re-issued under the new one",
                |_, d| {
                    let (c, k) = cert(d, "front-proxy-ca");
                    *c = Observed::Missing;
                    *k = Observed::Missing;
                },
                &regen,
                "front-proxy-client",
                Action::Regenerate,
            ),
            (
                "CA key gone: external",
                |_, d| *cert(d, "etcd-ca").1 = Observed::Missing,
                &init,
                "etcd-ca",
                Action::SkipExternal,
            ),
            (
                "external CA: leaf kept",
                |_, d| *cert(d, "etcd-ca").1 = Observed::Missing,
                &init,
                "etcd-peer",
                Action::SkipExternal,
            ),
            (
                "external CA: missing leaf refused",
                |_, d| {
                    *cert(d, "etcd-ca").1 = Observed::Missing;
                    let (c, k) = cert(d, "etcd-peer");
                    *c = Observed::Missing;
                    *k = Observed::Missing;
                },
                &init,
                "etcd-peer",
                Action::Error,
            ),
            (
                "CA cert garbage: never replaced",
                |_, d| *cert(d, "ca").0 = Observed::Invalid("no CERTIFICATE block found".into()),
                &regen,
                "ca",
                Action::Error,
            ),
            (
                "sa.pub gone: derived",
                |_, d| {
                    if let Some(Seen::KeyPair { public, .. }) = d.entries.get_mut("sa") {
                        *public = Observed::Missing;
                    }
                },
                &init,
                "sa",
                Action::Create,
            ),
            (
                "sa.key gone, sa.pub kept: refused",
                |_, d| {
                    if let Some(Seen::KeyPair { key, .. }) = d.entries.get_mut("sa") {
                        *key = Observed::Missing;
                    }
                },
                &regen,
                "sa",
                Action::Error,
            ),
            (
                "kubeconfig garbage",
                |_, d| {
                    d.entries.insert(
                        "admin.conf".into(),
                        Seen::Kubeconfig(Observed::Invalid("not a valid kubeconfig".into())),
                    );
                },
                &regen,
                "admin.conf",
                Action::Error,
            ),
            (
                "kubeconfig gone",
                |_, d| {
                    d.entries
                        .insert("admin.conf".into(), Seen::Kubeconfig(Observed::Missing));
                },
                &init,
                "admin.conf",
                Action::Create,
            ),
            (
                "renew: selected",
                |_, _| {},
                &renew,
                "apiserver",
                Action::Renew,
            ),
            (
                "renew: not selected",
                |_, _| {},
                &renew,
                "admin.conf",
                Action::Skip,
            ),
            (
                "renew: CA untouched",
                |_, _| {},
                &renew,
                "ca",
                Action::Reuse,
            ),
            (
                "renew: selected but missing",
                |_, d| {
                    let (c, k) = cert(d, "apiserver");
                    *c = Observed::Missing;
                    *k = Observed::Missing;
                },
                &renew,
                "apiserver",
                Action::Skip,
            ),
            (
                "renew: CA missing refused",
                |_, d| {
                    let (c, k) = cert(d, "ca");
                    *c = Observed::Missing;
                    *k = Observed::Missing;
                },
                &renew,
                "ca",
                Action::Error,
            ),
            (
                "csr: present refused",
                |_, _| {},
                &csr,
                "apiserver",
                Action::Error,
            ),
            (
                "csr: missing requested",
                |_, d| {
                    let (c, k) = cert(d, "apiserver");
                    *c = Observed::Missing;
                    *k = Observed::Missing;
                },
                &csr,
                "apiserver",
                Action::Csr,
            ),
            ("csr: CAs left alone", |_, _| {}, &csr, "ca", Action::Skip),
            (
                "nodes: garbage re-issued",
                |_, d| {
                    d.entries.insert(
                        "admin.conf".into(),
                        Seen::Kubeconfig(Observed::Invalid("not a valid kubeconfig".into())),
                    );
                },
                &nodes,
                "admin.conf",
                Action::Regenerate,
            ),
            (
                "nodes: a missing CA is never made",
                |_, d| {
                    let (c, k) = cert(d, "ca");
                    *c = Observed::Missing;
                    *k = Observed::Missing;
                },
                &nodes,
                "ca",
                Action::Error,
            ),
        ];
        let mut failures = Vec::new();
        for (what, edit, opts, entry, want) in cases {
            let mut disk = base.clone();
            edit(&k, &mut disk);
            let p = plan(&k.desired, &disk, NOW, opts);
            let got = p.step(entry).map(|s| s.action);
            if got != Some(want) {
                failures.push(format!(
                    "{what}: {entry} is {got:?}, want {want:?} ({:?})",
                    p.step(entry).map(|s| &s.reason)
                ));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn orphan_keys_are_kept_and_repairs_carry_modes() {
        let dir = tempfile::tempdir().expect("tmp");
        let (k, mut disk) = tree(dir.path());
        *cert(&mut disk, "apiserver").0 = Observed::Missing;
        let p = plan(&k.desired, &disk, NOW, &Options::default());
        let s = p.step("apiserver").expect("step");
        assert!(s.keep_key && s.new_expires.is_some(), "{s:?}");
        let mut disk = crate::disk::observe(&k.desired);
        let key = k.desired.ca("ca").expect("ca").key_path.clone();
        *cert(&mut disk, "ca").1 = with_mode(&key, 0o640);
        let p = plan(&k.desired, &disk, NOW, &Options::default());
        let s = p.step("ca").expect("step");
        assert_eq!(
            s.repairs,
            [Repair {
                path: key.display().to_string(),
                mode: 0o600
            }]
        );
        assert!(p.check().is_ok());
    }
}
