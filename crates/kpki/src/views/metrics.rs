//! Prometheus metrics of a tree, named, labelled and HELP-texted as the x509-certificate-exporter
//! names them, so its Grafana dashboard and alert rules work unchanged on kpki's output.
//!
//! Source matched: enix/x509-certificate-exporter v3.9.0 (commit 290094a8),
//! `internal/collector.go` (metric names, HELP texts, gauge type, when `x509_cert_error` is 0 or 1,
//! `x509_read_errors` as a count) and `internal/exporter.go` (`getLabels`, `getBaseLabels`,
//! `fillLabelsFromName`: `serial_number` in decimal, `filename` = base name, `filepath` = the
//! cleaned path, `issuer_*`/`subject_*` from the first C, StreetAddress (as `_ST`), L, O, OU
//! value and the CN, each only when present; `embedded_kind`/`embedded_key` for kubeconfigs).
//! Differences, all deliberate (see docs/operations.md):
//! * `embedded_kind` is `cluster` or `user`, the value v4 (`pkg/source/kubeconfig`) and its
//!   documentation give; v3.9.0's code derives it from a JSONPath and emits `clusters[:]`.
//! * `x509_cert_error` is always emitted (the exporter needs `--expose-per-cert-error-metrics`).
//! * `x509_exporter_build_info` and the relative `*_seconds` gauges are not written: the first
//!   describes the exporter binary, the second go stale in a textfile between runs.
//! * No timestamps on samples (the node-exporter textfile collector refuses them).
//!
//! kpki adds `kpki_finding{severity,code,entry,path}`: how many `verify` findings of that code the
//! entry's file has (docs/findings.md).
//!
//! Label names are sorted and families ordered by name, as client_golang's registry writes them;
//! values use Go's `strconv.FormatFloat(v, 'g', -1, 64)` form (`1.732281505e+09`).

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::x509::X509Name;

use crate::apply::write::{write_atomic, Replace};
use crate::disk::all::{read_all_certs, Embedded};
use crate::disk::read::Observed;
use crate::error::Result;
use crate::model::resolve::{Desired, Entry};
use crate::views::verify::Report;

/// The file `--textfile DIR` writes (the textfile collector reads `*.prom`).
pub const TEXTFILE_NAME: &str = "kpki.prom";

/// `(name, HELP, TYPE)` of every family kpki writes; the x509 ones are the exporter's verbatim.
pub const FAMILIES: &[(&str, &str, &str)] = &[
    (
        KPKI_FINDING,
        "Number of kpki verify findings with this severity and code for this spec entry and file (see docs/findings.md)",
        "gauge",
    ),
    (
        X509_CERT_ERROR,
        "Indicates wether the corresponding secret has read failure(s)",
        "gauge",
    ),
    (
        X509_CERT_EXPIRED,
        "Indicates if the certificate is expired",
        "gauge",
    ),
    (
        X509_CERT_NOT_AFTER,
        "Indicates the certificate's not after timestamp",
        "gauge",
    ),
    (
        X509_CERT_NOT_BEFORE,
        "Indicates the certificate's not before timestamp",
        "gauge",
    ),
    (
        X509_READ_ERRORS,
        "Indicates the number of read failure(s)",
        "gauge",
    ),
];

/// `kpki_finding`.
pub const KPKI_FINDING: &str = "kpki_finding";
/// `x509_cert_error`.
pub const X509_CERT_ERROR: &str = "x509_cert_error";
/// `x509_cert_expired`.
pub const X509_CERT_EXPIRED: &str = "x509_cert_expired";
/// `x509_cert_not_after`.
pub const X509_CERT_NOT_AFTER: &str = "x509_cert_not_after";
/// `x509_cert_not_before`.
pub const X509_CERT_NOT_BEFORE: &str = "x509_cert_not_before";
/// `x509_read_errors`.
pub const X509_READ_ERRORS: &str = "x509_read_errors";

/// Label names sorted byte-wise, with their values.
pub type Labels = Vec<(String, String)>;

/// One sample of a family.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Labels, sorted by name.
    pub labels: Labels,
    /// The value.
    pub value: f64,
}

/// One metric family.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    /// Metric name.
    pub name: &'static str,
    /// HELP text.
    pub help: &'static str,
    /// TYPE (always `gauge` here).
    pub kind: &'static str,
    /// Samples, sorted by labels.
    pub samples: Vec<Sample>,
}

/// Every family, in name order: a whole exposition.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Exposition {
    /// The families.
    pub families: Vec<Family>,
}

/// A certificate-bearing file of the tree, as the exporter would watch it.
struct Watched<'a> {
    path: &'a Path,
    kubeconfig: bool,
}

fn watched(desired: &Desired) -> Vec<Watched<'_>> {
    let mut out: Vec<Watched<'_>> = Vec::new();
    for e in &desired.entries {
        let w = match e {
            Entry::Ca(c) | Entry::Leaf(c) => Watched {
                path: &c.cert_path,
                kubeconfig: false,
            },
            Entry::Kubeconfig(k) => Watched {
                path: &k.path,
                kubeconfig: true,
            },
            Entry::KeyPair(_) => continue,
        };
        if !out.iter().any(|o| o.path == w.path) {
            out.push(w);
        }
    }
    out
}

/// `path.Clean`: drops `.` components and doubled separators (`..` is kept, as the tree's own
/// paths never contain it).
pub fn clean_path(p: &Path) -> String {
    let mut out = PathBuf::new();
    for c in p.components() {
        if c != Component::CurDir {
            out.push(c);
        }
    }
    if out.as_os_str().is_empty() {
        ".".into()
    } else {
        out.display().to_string()
    }
}

fn base_labels(path: &Path) -> Labels {
    let clean = clean_path(path);
    let name = Path::new(&clean)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| clean.clone());
    vec![("filename".into(), name), ("filepath".into(), clean)]
}

/// `fillLabelsFromName`: Go's `pkix.Name` keeps every C, STREET, L, O, OU value in order and the
/// last CN; the exporter labels the first of each list (StreetAddress as `_ST`, Province unused).
fn name_labels(name: &X509Name<'_>, prefix: &str, out: &mut Labels) {
    const LISTS: &[(&str, &str)] = &[
        ("2.5.4.6", "C"),
        ("2.5.4.9", "ST"),
        ("2.5.4.7", "L"),
        ("2.5.4.10", "O"),
        ("2.5.4.11", "OU"),
    ];
    let mut first: BTreeMap<&str, String> = BTreeMap::new();
    let mut cn: Option<String> = None;
    for rdn in name.iter() {
        for atv in rdn.iter() {
            let oid = atv.attr_type().to_id_string();
            let Ok(value) = atv.as_str() else { continue };
            if oid == "2.5.4.3" {
                cn = Some(value.to_string());
            } else if let Some((_, short)) = LISTS.iter().find(|(o, _)| *o == oid) {
                first.entry(short).or_insert_with(|| value.to_string());
            }
        }
    }
    for (short, v) in first {
        if !v.is_empty() {
            out.push((format!("{prefix}_{short}"), v));
        }
    }
    if let Some(v) = cn.filter(|v| !v.is_empty()) {
        out.push((format!("{prefix}_CN"), v));
    }
}

/// Labels of one certificate (`getLabels`), or why it does not parse.
fn cert_labels(der: &[u8], base: &Labels) -> std::result::Result<(Labels, i64, i64), String> {
    let (_, c) = X509Certificate::from_der(der)
        .map_err(|e| format!("the certificate does not parse: {e}"))?;
    let mut labels = base.clone();
    let serial = x509_parser::num_bigint::BigInt::from_signed_bytes_be(c.raw_serial());
    labels.push(("serial_number".into(), serial.to_string()));
    name_labels(c.issuer(), "issuer", &mut labels);
    name_labels(c.subject(), "subject", &mut labels);
    Ok((
        labels,
        c.validity().not_before.timestamp(),
        c.validity().not_after.timestamp(),
    ))
}

fn sorted(mut l: Labels) -> Labels {
    l.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    l
}

#[derive(Default)]
struct Builder {
    samples: BTreeMap<&'static str, Vec<Sample>>,
    read_errors: usize,
}

impl Builder {
    fn push(&mut self, name: &'static str, labels: Labels, value: f64) {
        self.samples.entry(name).or_default().push(Sample {
            labels: sorted(labels),
            value,
        });
    }

    /// One watched file: its certificates, or a read error (`x509_cert_error` 1).
    fn file(
        &mut self,
        path: &Path,
        certs: std::result::Result<Vec<(Labels, &[u8])>, String>,
        now: i64,
    ) {
        let base = base_labels(path);
        let mut series: Vec<(Labels, i64, i64)> = Vec::new();
        let mut error = false;
        match certs {
            Err(_) => error = true,
            Ok(list) => {
                for (extra, der) in list {
                    let mut b = base.clone();
                    b.extend(extra);
                    match cert_labels(der, &b) {
                        Ok((labels, nb, na)) => {
                            let labels = sorted(labels);
                            // Two identical label sets would be one series written twice: the
                            // exporter reports such a duplicate as a read error instead.
                            if series.iter().any(|s| s.0 == labels) {
                                self.read_errors += 1;
                                error = true;
                            } else {
                                series.push((labels, nb, na));
                            }
                        }
                        Err(_) => {
                            error = true;
                            series.clear();
                            break;
                        }
                    }
                }
            }
        }
        if error && series.is_empty() {
            self.read_errors += 1;
        }
        for (labels, nb, na) in series {
            self.push(
                X509_CERT_EXPIRED,
                labels.clone(),
                f64::from(u8::from(now > na)),
            );
            self.push(X509_CERT_NOT_BEFORE, labels.clone(), nb as f64);
            self.push(X509_CERT_NOT_AFTER, labels, na as f64);
        }
        self.push(X509_CERT_ERROR, base, f64::from(u8::from(error)));
    }
}

/// The metrics of every certificate of the tree `desired` describes (CA and leaf files, every
/// certificate of a bundle, the cluster and user certificates of each kubeconfig), per-file read
/// errors, and `verify`'s findings from `report`. Files are read with [`crate::disk::all`]; `now`
/// decides `x509_cert_expired`.
pub(crate) fn collect(desired: &Desired, report: &Report, now: OffsetDateTime) -> Exposition {
    let now = now.unix_timestamp();
    let mut b = Builder::default();
    for w in watched(desired) {
        if w.kubeconfig {
            let owned: std::result::Result<Vec<Embedded>, String> =
                match crate::disk::all::read_kubeconfig_certs_in(w.path, &desired.inputs.root) {
                    Observed::Present(v) => Ok(v),
                    Observed::Missing => Err("missing".into()),
                    Observed::Invalid(m) => Err(m),
                    Observed::Unread => Err(crate::disk::read::NOT_READ.into()),
                };
            let certs = owned.as_ref().map(|list| {
                let mut out: Vec<(Labels, &[u8])> = Vec::new();
                for e in list {
                    for (i, der) in e.certs.iter().enumerate() {
                        // v3: "name(i)" when one entry holds several certificates.
                        let key = if e.certs.len() > 1 {
                            format!("{}({i})", e.name)
                        } else {
                            e.name.clone()
                        };
                        out.push((
                            vec![
                                ("embedded_kind".into(), e.kind.as_str().into()),
                                ("embedded_key".into(), key),
                            ],
                            der.as_slice(),
                        ));
                    }
                }
                out
            });
            b.file(w.path, certs.map_err(|m| m.clone()), now);
        } else {
            let owned: std::result::Result<Vec<Vec<u8>>, String> = match read_all_certs(w.path) {
                Observed::Present(v) => Ok(v),
                Observed::Missing => Err("missing".into()),
                Observed::Invalid(m) => Err(m),
                Observed::Unread => Err(crate::disk::read::NOT_READ.into()),
            };
            let certs = owned
                .as_ref()
                .map(|v| v.iter().map(|d| (Vec::new(), d.as_slice())).collect());
            b.file(w.path, certs.map_err(|m| m.clone()), now);
        }
    }
    let mut findings: BTreeMap<Labels, usize> = BTreeMap::new();
    for f in &report.findings {
        let labels = sorted(vec![
            ("severity".into(), f.severity.as_str().into()),
            ("code".into(), f.code.as_str().into()),
            ("entry".into(), f.entry.clone()),
            ("path".into(), f.path.clone()),
        ]);
        *findings.entry(labels).or_default() += 1;
    }
    for (labels, n) in findings {
        b.push(KPKI_FINDING, labels, n as f64);
    }
    let read_errors = b.read_errors;
    b.push(X509_READ_ERRORS, Vec::new(), read_errors as f64);
    let mut families = Vec::new();
    for (name, help, kind) in FAMILIES {
        let mut samples = b.samples.remove(name).unwrap_or_default();
        samples.sort_by(|a, b| a.labels.cmp(&b.labels));
        families.push(Family {
            name,
            help,
            kind,
            samples,
        });
    }
    families.sort_by_key(|f| f.name);
    Exposition { families }
}

/// Go's `strconv.FormatFloat(v, 'g', -1, 64)`, which client_golang's text format uses.
pub fn go_float(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if v == 0.0 {
        return "0".into();
    }
    // Shortest round-trip digits, then Go's rule: %e when the exponent is < -4 or >= 6.
    let sci = format!("{v:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        format!("{v}")
    }
}

fn escape_label(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

impl Exposition {
    /// The Prometheus text exposition format (0.0.4), without timestamps.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for f in &self.families {
            out.push_str(&format!("# HELP {} {}\n", f.name, escape_help(f.help)));
            out.push_str(&format!("# TYPE {} {}\n", f.name, f.kind));
            for s in &f.samples {
                out.push_str(f.name);
                if !s.labels.is_empty() {
                    out.push('{');
                    let parts: Vec<String> = s
                        .labels
                        .iter()
                        .map(|(k, v)| format!("{k}=\"{}\"", escape_label(v)))
                        .collect();
                    out.push_str(&parts.join(","));
                    out.push('}');
                }
                out.push(' ');
                out.push_str(&go_float(s.value));
                out.push('\n');
            }
        }
        out
    }

    /// The family with this name.
    pub fn family(&self, name: &str) -> Option<&Family> {
        self.families.iter().find(|f| f.name == name)
    }
}

/// Writes `DIR/kpki.prom` atomically (temporary file in `dir`, fsync, rename), mode 0644, so the
/// textfile collector never reads a half-written file. Returns the path.
pub fn write_textfile(dir: &Path, text: &str) -> Result<PathBuf> {
    if !dir.is_dir() {
        return Err(crate::Error::File {
            path: dir.to_path_buf(),
            message: "--textfile: not a directory (the node-exporter textfile collector's directory must exist)".into(),
        });
    }
    let path = dir.join(TEXTFILE_NAME);
    write_atomic(&path, text.as_bytes(), 0o644, 0o755, Replace::Allow)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_are_written_as_go_writes_them() {
        assert_eq!(go_float(0.0), "0");
        assert_eq!(go_float(1.0), "1");
        assert_eq!(go_float(15.0), "15");
        assert_eq!(go_float(999_999.0), "999999");
        assert_eq!(go_float(1_000_000.0), "1e+06");
        assert_eq!(go_float(1_682_115_307.0), "1.682115307e+09");
        assert_eq!(go_float(-1_682_115_307.0), "-1.682115307e+09");
        assert_eq!(go_float(0.5), "0.5");
        assert_eq!(go_float(0.00001), "1e-05");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(clean_path(Path::new("./a//b/./c.crt")), "a/b/c.crt");
        assert_eq!(
            clean_path(Path::new("/etc/kubernetes/pki/ca.crt")),
            "/etc/kubernetes/pki/ca.crt"
        );
    }
}
