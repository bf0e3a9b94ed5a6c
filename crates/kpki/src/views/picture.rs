//! The tree as a picture: each CA with what it signs beneath it (leaves, then kubeconfigs, then
//! per-node credentials, counted when there are many), every certificate's remaining life as a
//! bar, and `verify`'s findings under the entry they are about.
//!
//! `build` ([`crate::Kpki::picture`]) turns the observed disk and a verify [`Report`] into a [`Picture`] (data, no I/O but
//! the optional node credentials); [`render_text`] draws it for a terminal (ANSI colour optional)
//! and `views::html` for a browser, so both show the same thing.

use std::path::{Path, PathBuf};

use time::{Duration, OffsetDateTime};

use crate::assess::{Finding, Severity};
use crate::disk::all::EmbeddedKind;
use crate::disk::read::Observed;
use crate::disk::{Disk, Seen};
use crate::error::Result;
use crate::inputs::Inputs;
use crate::model::resolve::{Desired, Entry};
use crate::model::spec::Spec;
use crate::views::expiration::human_duration;
use crate::views::verify::{Report, Summary};
use crate::x509::inspect;

/// Node credentials are listed one by one up to this many; beyond, they are counted.
pub const LIST_NODES_UP_TO: usize = 8;
/// Width of the life bar in cells.
pub const BAR_CELLS: usize = 20;

/// What an item of the picture is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A certificate authority.
    Ca,
    /// A leaf certificate file.
    Leaf,
    /// A kubeconfig with a client certificate.
    Kubeconfig,
    /// A bare key pair (no certificate, no expiry).
    KeyPair,
    /// A node's kubelet client kubeconfig (`kpki nodes`).
    NodeKubeconfig,
    /// A node's kubelet serving certificate (`kpki nodes --serving`).
    NodeServing,
}

impl Kind {
    /// Short name for displays.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Ca => "CA",
            Kind::Leaf => "cert",
            Kind::Kubeconfig => "kubeconfig",
            Kind::KeyPair => "key pair",
            Kind::NodeKubeconfig => "node kubeconfig",
            Kind::NodeServing => "node serving cert",
        }
    }
}

/// A certificate's validity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Life {
    /// NotBefore.
    pub not_before: OffsetDateTime,
    /// NotAfter.
    pub not_after: OffsetDateTime,
    /// Subject, RFC 4514-like.
    pub subject: String,
}

/// How a certificate is doing at the picture's instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Health {
    /// Valid beyond the warning window, no error finding.
    Ok,
    /// Expires within the warning window, or has warnings.
    Warning,
    /// Expired, not yet valid, unreadable, missing, or has error findings.
    Error,
}

impl Life {
    /// Time left (negative once expired).
    pub fn remaining(&self, now: OffsetDateTime) -> Duration {
        self.not_after - now
    }

    /// Share of the validity period still ahead, 0..=1.
    pub fn fraction_left(&self, now: OffsetDateTime) -> f64 {
        let total = (self.not_after - self.not_before).whole_seconds();
        if total <= 0 {
            return 0.0;
        }
        let left = (self.not_after - now).whole_seconds();
        (left as f64 / total as f64).clamp(0.0, 1.0)
    }

    /// Remaining life in words: kubeadm's residual time (`364d`, `9y`), or `expired`.
    pub fn remaining_text(&self, now: OffsetDateTime) -> String {
        let left = self.remaining(now).whole_seconds();
        if left <= 0 {
            format!(
                "expired {} ago",
                human_duration((now - self.not_after).whole_seconds())
            )
        } else if now < self.not_before {
            "not yet valid".into()
        } else {
            human_duration(left)
        }
    }
}

/// One line of the picture.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// Spec entry name (a node's name for node credentials).
    pub entry: String,
    /// What it is.
    pub kind: Kind,
    /// The file.
    pub path: PathBuf,
    /// The certificate's validity, when it could be read.
    pub life: Option<Life>,
    /// Why there is no validity (missing, unreadable), if so.
    pub problem: Option<String>,
    /// `verify`'s findings about this entry.
    pub findings: Vec<Finding>,
    /// What this CA signs.
    pub children: Vec<Item>,
    /// Node credentials signed by this CA, when `kpki nodes` output was given.
    pub nodes: Option<NodeGroup>,
}

/// The node credentials signed by one CA.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NodeGroup {
    /// Credentials found (kubeconfigs and serving certificates).
    pub total: usize,
    /// Of which expired.
    pub expired: usize,
    /// Of which expiring within the warning window.
    pub expiring: usize,
    /// Of which missing or unreadable.
    pub unreadable: usize,
    /// Every credential, in nodes-file order (listed when few, counted when many).
    pub items: Vec<Item>,
}

impl NodeGroup {
    /// The credential that expires first.
    pub fn soonest(&self) -> Option<&Item> {
        self.items
            .iter()
            .filter(|i| i.life.is_some())
            .min_by_key(|i| i.life.as_ref().map(|l| l.not_after))
    }

    /// True when the credentials are counted rather than listed.
    pub fn counted(&self) -> bool {
        self.items.len() > LIST_NODES_UP_TO
    }
}

/// The whole picture.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Picture {
    /// The instant it shows.
    pub now: OffsetDateTime,
    /// Certificates expiring within this are warnings (`--warn-within`).
    pub warn_within: Duration,
    /// Certificate directory.
    pub cert_dir: PathBuf,
    /// Kubeconfig directory.
    pub kubeconfig_dir: PathBuf,
    /// Top-level items: root CAs (with what they sign), then key pairs and anything whose CA is
    /// not in the tree.
    pub roots: Vec<Item>,
    /// verify's counts.
    pub summary: Summary,
    /// Findings that are about no entry of the tree (the inputs themselves).
    pub notes: Vec<Finding>,
}

impl Item {
    fn new(entry: &str, kind: Kind, path: &Path) -> Item {
        Item {
            entry: entry.to_string(),
            kind,
            path: path.to_path_buf(),
            life: None,
            problem: None,
            findings: Vec::new(),
            children: Vec::new(),
            nodes: None,
        }
    }

    fn with_der(mut self, der: Option<&[u8]>) -> Item {
        if let Some(der) = der {
            match inspect::info(der) {
                Ok(i) => {
                    self.life = Some(Life {
                        not_before: i.not_before,
                        not_after: i.not_after,
                        subject: i.subject,
                    })
                }
                Err(m) => self.problem = Some(m),
            }
        }
        self
    }

    /// The item's own health (findings included; children not).
    pub fn health(&self, now: OffsetDateTime, warn_within: Duration) -> Health {
        let mut h = Health::Ok;
        if self.problem.is_some() {
            return Health::Error;
        }
        if let Some(l) = &self.life {
            if l.remaining(now) <= Duration::ZERO || now < l.not_before {
                return Health::Error;
            }
            if l.remaining(now) <= warn_within {
                h = Health::Warning;
            }
        }
        for f in &self.findings {
            match f.severity {
                Severity::Error => return Health::Error,
                Severity::Warning => h = h.max(Health::Warning),
                Severity::Info => {}
            }
        }
        h
    }

    /// This item and everything beneath it, depth first (listed node credentials included).
    pub fn walk(&self) -> Vec<&Item> {
        let mut out = vec![self];
        for c in &self.children {
            out.extend(c.walk());
        }
        if let Some(g) = &self.nodes {
            out.extend(g.items.iter());
        }
        out
    }
}

fn observed<T>(o: &Observed<T>) -> std::result::Result<Option<&T>, String> {
    match o {
        Observed::Present(v) => Ok(Some(v)),
        Observed::Missing => Err("missing".into()),
        Observed::Invalid(m) => Err(m.clone()),
        Observed::Unread => Err(crate::disk::read::NOT_READ.into()),
    }
}

fn entry_item(e: &Entry, disk: &Disk) -> Item {
    let seen = disk.entries.get(e.name());
    match e {
        Entry::Ca(c) | Entry::Leaf(c) => {
            let kind = if matches!(e, Entry::Ca(_)) {
                Kind::Ca
            } else {
                Kind::Leaf
            };
            let item = Item::new(&c.name, kind, &c.cert_path);
            match seen {
                Some(Seen::Cert { cert, .. }) => match observed(cert) {
                    Ok(f) => item.with_der(f.map(|f| f.der.as_slice())),
                    Err(m) => Item {
                        problem: Some(m),
                        ..item
                    },
                },
                _ => Item {
                    problem: Some("not observed".into()),
                    ..item
                },
            }
        }
        Entry::KeyPair(k) => Item::new(&k.name, Kind::KeyPair, &k.key_path),
        Entry::Kubeconfig(k) => {
            let item = Item::new(&k.name, Kind::Kubeconfig, &k.path);
            match seen {
                Some(Seen::Kubeconfig(o)) => match observed(o) {
                    Ok(Some(kc)) => match &kc.cert_der {
                        Some(der) => item.with_der(Some(der)),
                        None => Item {
                            problem: Some("no embedded client certificate".into()),
                            ..item
                        },
                    },
                    Ok(None) => item,
                    Err(m) => Item {
                        problem: Some(m),
                        ..item
                    },
                },
                _ => Item {
                    problem: Some("not observed".into()),
                    ..item
                },
            }
        }
    }
}

fn signer(e: &Entry) -> Option<&str> {
    match e {
        Entry::Ca(c) | Entry::Leaf(c) => c.ca.as_deref(),
        Entry::Kubeconfig(k) => Some(&k.ca),
        Entry::KeyPair(_) => None,
    }
}

/// Node credentials as `kpki nodes` wrote them: which CA signs them and each node's items.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NodeCredentials {
    /// Signing CA name → credentials.
    pub by_ca: Vec<(String, Vec<Item>)>,
}

/// Reads the credentials `kpki nodes --nodes FILE --out-dir DIR` wrote, for every node of the
/// nodes file (paths from the spec's `[node]` section). A credential that is absent is shown
/// missing; serving certificates are shown only where they exist.
pub(crate) fn read_node_credentials(
    spec: &Spec,
    inputs: &Inputs,
    nodes_file: &Path,
    dir: &Path,
) -> Result<NodeCredentials> {
    let node = spec.node.as_ref().ok_or_else(|| crate::Error::Spec {
        origin: "spec".into(),
        entry: "node".into(),
        message: "the spec has no [node] section, so it does not say where node credentials are"
            .into(),
    })?;
    let mut reader = crate::ops::nodes::open_nodes(nodes_file)?;
    let mut kubeconfigs = Vec::new();
    let mut serving = Vec::new();
    for (line, n) in reader.by_ref() {
        let n = n.map_err(|m| crate::Error::Input {
            field: format!("{}:{line}", nodes_file.display()),
            message: m,
        })?;
        // Where the node's files are: the same entries `kpki nodes` issues.
        let entries = crate::ops::nodes::node_entries(spec, inputs, dir, &n, true)?;
        let Some(Entry::Kubeconfig(k)) = entries.iter().find(|e| matches!(e, Entry::Kubeconfig(_)))
        else {
            continue;
        };
        let serving_entry = entries.iter().find_map(|e| match e {
            Entry::Leaf(c) => Some(c),
            _ => None,
        });
        let mut item = Item::new(&n.name, Kind::NodeKubeconfig, &k.path);
        match crate::disk::all::read_kubeconfig_certs_in(&k.path, &inputs.root) {
            Observed::Present(list) => {
                let der = list
                    .iter()
                    .find(|e| e.kind == EmbeddedKind::User)
                    .and_then(|e| e.certs.first());
                item = match der {
                    Some(d) => item.with_der(Some(d)),
                    None => Item {
                        problem: Some("no client certificate".into()),
                        ..item
                    },
                };
            }
            Observed::Missing => item.problem = Some("missing".into()),
            Observed::Invalid(m) => item.problem = Some(m),
            Observed::Unread => item.problem = Some(crate::disk::read::NOT_READ.into()),
        }
        kubeconfigs.push(item);
        if let Some(c) = serving_entry {
            match crate::disk::read::read_cert(&c.cert_path) {
                Observed::Missing | Observed::Unread => {}
                Observed::Present(f) => serving.push(
                    Item::new(&n.name, Kind::NodeServing, &c.cert_path).with_der(Some(&f.der)),
                ),
                Observed::Invalid(m) => serving.push(Item {
                    problem: Some(m),
                    ..Item::new(&n.name, Kind::NodeServing, &c.cert_path)
                }),
            }
        }
    }
    if let Some(e) = reader.take_error() {
        return Err(crate::Error::io(nodes_file, e));
    }
    let mut by_ca: Vec<(String, Vec<Item>)> = vec![(node.kubeconfig.ca.clone(), kubeconfigs)];
    if let Some(s) = &node.serving {
        let ca = s.ca.clone().unwrap_or_default();
        match by_ca.iter_mut().find(|(c, _)| *c == ca) {
            Some((_, v)) => v.extend(serving),
            None => by_ca.push((ca, serving)),
        }
    }
    Ok(NodeCredentials { by_ca })
}

/// Builds the picture of `desired` as `disk` holds it, with `report`'s findings attached to their
/// entries and, optionally, node credentials under their CA.
pub(crate) fn build(
    desired: &Desired,
    disk: &Disk,
    report: &Report,
    now: OffsetDateTime,
    warn_within: Duration,
    nodes: Option<NodeCredentials>,
) -> Picture {
    let items: Vec<(Option<String>, Item)> = desired
        .entries
        .iter()
        .map(|e| {
            let mut item = entry_item(e, disk);
            item.findings = report
                .findings
                .iter()
                .filter(|f| f.entry == e.name())
                .cloned()
                .collect();
            (signer(e).map(str::to_string), item)
        })
        .collect();
    let mut nodes = nodes.unwrap_or_default().by_ca;
    let is_ca = |name: &str| {
        items
            .iter()
            .any(|(_, i)| i.kind == Kind::Ca && i.entry == name)
    };
    // A CA's children: what names it as signer (spec order), CAs first, then leaves, then
    // kubeconfigs. The spec rejects CA cycles; the depth bound only guards against a bad spec.
    fn assemble(idx: usize, items: &[(Option<String>, Item)], depth: usize) -> Item {
        let mut it = items[idx].1.clone();
        if it.kind == Kind::Ca && depth < 16 {
            for (j, (signer, _)) in items.iter().enumerate() {
                if j != idx && signer.as_deref() == Some(it.entry.as_str()) {
                    it.children.push(assemble(j, items, depth + 1));
                }
            }
            it.children.sort_by_key(|c| match c.kind {
                Kind::Ca => 0,
                Kind::Leaf => 1,
                Kind::Kubeconfig => 2,
                _ => 3,
            });
        }
        it
    }
    let mut roots: Vec<Item> = (0..items.len())
        .filter(|&i| match &items[i].0 {
            None => true,
            Some(s) => *s == items[i].1.entry || !is_ca(s),
        })
        .map(|i| assemble(i, &items, 0))
        .collect();
    fn attach(
        item: &mut Item,
        nodes: &mut Vec<(String, Vec<Item>)>,
        now: OffsetDateTime,
        warn: Duration,
    ) {
        if item.kind == Kind::Ca {
            if let Some(pos) = nodes.iter().position(|(ca, _)| *ca == item.entry) {
                let (_, list) = nodes.remove(pos);
                let mut g = NodeGroup {
                    total: list.len(),
                    ..Default::default()
                };
                for n in &list {
                    match (&n.life, &n.problem) {
                        (_, Some(_)) | (None, None) => g.unreadable += 1,
                        (Some(l), None) if l.remaining(now) <= Duration::ZERO => g.expired += 1,
                        (Some(l), None) if l.remaining(now) <= warn => g.expiring += 1,
                        _ => {}
                    }
                }
                g.items = list;
                item.nodes = Some(g);
            }
        }
        for c in &mut item.children {
            attach(c, nodes, now, warn);
        }
    }
    for r in &mut roots {
        attach(r, &mut nodes, now, warn_within);
    }
    // Roots: CAs first, then key pairs and orphans, as the spec orders them.
    roots.sort_by_key(|r| if r.kind == Kind::Ca { 0 } else { 1 });
    Picture {
        now,
        warn_within,
        cert_dir: desired.inputs.cert_dir.clone(),
        kubeconfig_dir: desired.inputs.kubeconfig_dir.clone(),
        roots,
        summary: report.summary,
        notes: report
            .findings
            .iter()
            .filter(|f| desired.get(&f.entry).is_none())
            .cloned()
            .collect(),
    }
}

// ------------------------------------------------------------------ text

/// How [`render_text`] draws: plain text, or with ANSI colours for a terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Style {
    /// No escape sequences.
    Plain,
    /// ANSI colours.
    Colour,
}

/// ANSI styles used on a terminal.
struct Painter {
    on: bool,
}

impl Painter {
    fn paint(&self, code: &str, s: &str) -> String {
        if self.on && !s.is_empty() {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    fn health(&self, h: Health, s: &str) -> String {
        self.paint(
            match h {
                Health::Ok => "32",
                Health::Warning => "33",
                Health::Error => "31",
            },
            s,
        )
    }
    fn severity(&self, sev: Severity, s: &str) -> String {
        self.paint(
            match sev {
                Severity::Error => "1;31",
                Severity::Warning => "33",
                Severity::Info => "36",
            },
            s,
        )
    }
    fn dim(&self, s: &str) -> String {
        self.paint("2", s)
    }
    fn bold(&self, s: &str) -> String {
        self.paint("1", s)
    }
}

/// The life bar: `BAR_CELLS` cells, the filled share being the life left.
pub fn bar(fraction: f64) -> (String, String) {
    let filled = ((fraction * BAR_CELLS as f64).round() as usize).min(BAR_CELLS);
    ("█".repeat(filled), "░".repeat(BAR_CELLS - filled))
}

/// Symbol of a finding's severity.
pub fn severity_mark(s: Severity) -> &'static str {
    match s {
        Severity::Error => "✗",
        Severity::Warning => "!",
        Severity::Info => "i",
    }
}

struct Line {
    prefix: String,
    name: String,
    item: Option<Item>,
    /// Text instead of a bar (group summaries).
    text: Option<(Health, String)>,
    findings_prefix: String,
}

fn lines_of(item: &Item, prefix: &str, child_prefix: &str, out: &mut Vec<Line>) {
    let label = match item.kind {
        Kind::Ca => format!("{} (CA)", item.entry),
        _ => item.entry.clone(),
    };
    let n_children =
        item.children.len() + usize::from(item.nodes.as_ref().is_some_and(|g| g.total > 0));
    out.push(Line {
        prefix: prefix.to_string(),
        name: label,
        item: Some(item.clone()),
        text: None,
        findings_prefix: format!(
            "{child_prefix}{}",
            if n_children > 0 { "│  " } else { "   " }
        ),
    });
    let mut k = 0;
    for c in &item.children {
        k += 1;
        let last = k == n_children;
        let (p, cp) = if last {
            ("└─ ", "   ")
        } else {
            ("├─ ", "│  ")
        };
        lines_of(
            c,
            &format!("{child_prefix}{p}"),
            &format!("{child_prefix}{cp}"),
            out,
        );
    }
    if let Some(g) = item.nodes.as_ref().filter(|g| g.total > 0) {
        let p = format!("{child_prefix}└─ ");
        let cp = format!("{child_prefix}   ");
        if g.counted() {
            let ok = g.total - g.expired - g.expiring - g.unreadable;
            let health = if g.expired + g.unreadable > 0 {
                Health::Error
            } else if g.expiring > 0 {
                Health::Warning
            } else {
                Health::Ok
            };
            out.push(Line {
                prefix: p,
                name: format!("node credentials ×{}", g.total),
                item: None,
                text: Some((
                    health,
                    format!(
                        "{ok} ok, {} expiring, {} expired, {} missing or unreadable",
                        g.expiring, g.expired, g.unreadable
                    ),
                )),
                findings_prefix: cp.clone(),
            });
            if let Some(s) = g.soonest() {
                let mut s = s.clone();
                s.entry = format!("soonest: {} ({})", s.entry, s.kind.as_str());
                lines_of(&s, &format!("{cp}└─ "), &format!("{cp}   "), out);
            }
        } else {
            out.push(Line {
                prefix: p,
                name: format!("node credentials ×{}", g.total),
                item: None,
                text: None,
                findings_prefix: cp.clone(),
            });
            for (j, n) in g.items.iter().enumerate() {
                let last = j + 1 == g.items.len();
                let (pp, pcp) = if last {
                    ("└─ ", "   ")
                } else {
                    ("├─ ", "│  ")
                };
                let mut n = n.clone();
                if n.kind == Kind::NodeServing {
                    n.entry = format!("{} (serving)", n.entry);
                }
                lines_of(&n, &format!("{cp}{pp}"), &format!("{cp}{pcp}"), out);
            }
        }
    }
}

fn date(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day())
}

/// Draws the picture as text: one line per certificate with its life bar, remaining time and
/// expiry date, findings indented beneath. `colour` adds ANSI colours (for a terminal).
pub fn render_text(p: &Picture, style: Style) -> String {
    let st = Painter {
        on: style == Style::Colour,
    };
    let mut lines = Vec::new();
    for r in &p.roots {
        lines_of(r, "", "", &mut lines);
    }
    let width = lines
        .iter()
        .map(|l| l.prefix.chars().count() + l.name.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    let s = &p.summary;
    out.push_str(&st.bold(&format!(
        "{}  (kubeconfigs: {})  at {}",
        p.cert_dir.display(),
        p.kubeconfig_dir.display(),
        crate::views::expiration::format_kubeadm_date(p.now)
    )));
    out.push('\n');
    out.push_str(&st.dim(&format!(
        "{} entries: {} error(s), {} warning(s), {} info; bars show the share of each certificate's life left",
        s.entries, s.errors, s.warnings, s.info
    )));
    out.push_str("\n\n");
    for f in &p.notes {
        out.push_str(&st.severity(
            f.severity,
            &format!(
                "{} {} {}",
                severity_mark(f.severity),
                f.severity.as_str(),
                f.code
            ),
        ));
        out.push_str(&format!(": {}\n", f.message));
    }
    if !p.notes.is_empty() {
        out.push('\n');
    }
    for l in &lines {
        let used = l.prefix.chars().count() + l.name.chars().count();
        let pad = " ".repeat(width - used + 2);
        out.push_str(&st.dim(&l.prefix));
        match (&l.item, &l.text) {
            (_, Some((h, text))) => {
                out.push_str(&st.health(*h, &l.name));
                out.push_str(&pad);
                out.push_str(&st.health(*h, text));
            }
            (Some(item), None) => {
                let h = item.health(p.now, p.warn_within);
                let name = if item.kind == Kind::Ca {
                    st.bold(&l.name)
                } else {
                    l.name.clone()
                };
                out.push_str(&name);
                out.push_str(&pad);
                match (&item.life, &item.problem, item.kind) {
                    (_, Some(m), _) => out.push_str(&st.health(Health::Error, m)),
                    (Some(life), None, _) => {
                        let (full, empty) = bar(life.fraction_left(p.now));
                        out.push_str(&st.health(h, &full));
                        out.push_str(&st.dim(&empty));
                        out.push_str(&format!(
                            "  {}  {}",
                            st.health(h, &format!("{:<14}", life.remaining_text(p.now))),
                            date(life.not_after)
                        ));
                    }
                    (None, None, Kind::KeyPair) => out.push_str(&st.dim("key pair, no expiry")),
                    (None, None, _) => {}
                }
            }
            (None, None) => out.push_str(&l.name),
        }
        // No trailing spaces: pipes and diffs stay clean.
        while out.ends_with(' ') {
            out.pop();
        }
        out.push('\n');
        if let Some(item) = &l.item {
            for f in &item.findings {
                out.push_str(&st.dim(&l.findings_prefix));
                out.push_str(&st.severity(
                    f.severity,
                    &format!(
                        "{} {} {}",
                        severity_mark(f.severity),
                        f.severity.as_str(),
                        f.code
                    ),
                ));
                out.push_str(&format!(": {}\n", f.message));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn bar_and_remaining_life() {
        let l = Life {
            not_before: datetime!(2026-01-01 0:00 UTC),
            not_after: datetime!(2027-01-01 0:00 UTC),
            subject: "CN=x".into(),
        };
        let now = datetime!(2026-07-02 12:00 UTC);
        assert!((l.fraction_left(now) - 0.5).abs() < 0.01);
        let (full, empty) = bar(l.fraction_left(now));
        assert_eq!((full.chars().count(), empty.chars().count()), (10, 10));
        assert_eq!(l.remaining_text(now), "182d");
        assert_eq!(l.fraction_left(datetime!(2028-01-01 0:00 UTC)), 0.0);
        assert_eq!(
            l.remaining_text(datetime!(2027-01-04 0:00 UTC)),
            "expired 3d ago"
        );
        assert_eq!(l.fraction_left(datetime!(2025-01-01 0:00 UTC)), 1.0);
        assert_eq!(
            l.remaining_text(datetime!(2025-01-01 0:00 UTC)),
            "not yet valid"
        );
        let (full, empty) = bar(0.0);
        assert_eq!(
            (full.chars().count(), empty.chars().count()),
            (0, BAR_CELLS)
        );
    }
}
