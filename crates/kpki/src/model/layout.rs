//! The files a resolved spec names, checked after template expansion.
//!
//! The spec is checked as written (`spec.rs`), but a template such as `{cluster_name}.conf` or
//! `{node_name}` only becomes a path once the inputs fill it in, and a kubeconfig path lives in
//! another directory than a certificate path. So after resolution every path is checked again:
//! each expanded template stays inside its directory (no `..`, not absolute, no control
//! characters), and every file of every entry, of every kind, is distinct from every other, and
//! none is a directory on the way to another. A CA's files above all: `--node-name ca` with a
//! leaf at `{node_name}` would otherwise write the apiserver pair over the CA. The error names the
//! entry and the input (or spec field) that made the path.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};
use crate::model::resolve::{template_origin, Desired, Entry};
use crate::model::spec::{Spec, Template, LIST_VARS, SCALAR_VARS};

/// Why an expanded relative path is unusable, or `Ok`.
pub fn check_expanded(rel: &str) -> std::result::Result<(), &'static str> {
    if rel.is_empty() {
        return Err("is empty");
    }
    if rel.chars().any(crate::text::is_unsafe) {
        return Err("contains a control or formatting character");
    }
    let p = Path::new(rel);
    if p.is_absolute() {
        return Err("is an absolute path, outside its directory");
    }
    for c in p.components() {
        match c {
            Component::Normal(_) => {}
            Component::ParentDir => return Err("leaves its directory ('..')"),
            _ => return Err("has a '.' or empty component"),
        }
    }
    if rel.ends_with('/') || rel.contains("//") || rel.starts_with("./") || rel.contains("/./") {
        return Err("has a '.' or empty component");
    }
    Ok(())
}

/// The variables a template uses, in order.
fn variables(template: &str) -> Vec<String> {
    let mut scalars: Vec<&str> = SCALAR_VARS.to_vec();
    scalars.push("node_name");
    match Template::parse(template, &scalars, LIST_VARS) {
        Ok(Template::Scalar(pieces)) => pieces
            .into_iter()
            .filter_map(|p| match p {
                crate::model::spec::Piece::Var(v) => Some(v),
                crate::model::spec::Piece::Lit(_) => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The error for a path made from `template`: on the input when a variable filled it in (the one
/// whose value looks like a path, else the first), on the spec when it is literal.
pub fn blame(
    origin: &str,
    entry: &str,
    field: &str,
    template: &str,
    values: &dyn Fn(&str) -> Option<String>,
    what: &str,
) -> Error {
    let vars = variables(template);
    let suspicious = |v: &String| {
        values(v).is_some_and(|x| {
            x.contains('/') || x.starts_with('.') || x.chars().any(crate::text::is_unsafe)
        })
    };
    let var = vars
        .iter()
        .find(|v| suspicious(v))
        .or_else(|| vars.first())
        .cloned();
    match var {
        Some(v) => {
            let flag = template_origin(&format!("{{{v}}}"));
            let flag = flag.split(" / ").next().unwrap_or(flag);
            Error::input(
                flag,
                format!(
                    "with {}, entry {entry}'s {field} {} {what}",
                    crate::text::quote(&values(&v).unwrap_or_default()),
                    crate::text::quote(template),
                ),
            )
        }
        None => Error::Spec {
            origin: if origin.is_empty() {
                "resolved".into()
            } else {
                origin.to_string()
            },
            entry: entry.to_string(),
            message: format!("{field} {} {what}", crate::text::quote(template)),
        },
    }
}

/// `path` made absolute and with `.`/`..` resolved lexically (no file system access), so two
/// spellings of one file compare equal.
pub fn normalize(path: &Path) -> PathBuf {
    Normalizer::default().normalize(path)
}

/// [`normalize`] for many paths, reading the current directory once: `std::path::absolute` asks
/// the kernel for it (getcwd) on every relative path, and a bulk run with a relative
/// `--out-dir` has several per node.
#[derive(Debug, Default)]
pub struct Normalizer {
    cwd: std::cell::OnceCell<Option<PathBuf>>,
}

impl Normalizer {
    /// See [`normalize`].
    pub fn normalize(&self, path: &Path) -> PathBuf {
        // Already absolute with no `..`: nothing to resolve (paths compare and hash by their
        // components, so `.` and doubled separators are no difference). Every path of a
        // resolved tree is like this when its directories were given absolute.
        if path.is_absolute() && !path.components().any(|c| c == Component::ParentDir) {
            return path.to_path_buf();
        }
        let abs = if path.is_absolute() || path.as_os_str().is_empty() {
            path.to_path_buf()
        } else {
            match self.cwd.get_or_init(|| std::env::current_dir().ok()) {
                Some(cwd) => cwd.join(path),
                None => path.to_path_buf(),
            }
        };
        resolve_dots(&abs)
    }
}

/// Drops `.` components and resolves `..` against the components before it.
fn resolve_dots(abs: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in abs.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            c => out.push(c.as_os_str()),
        }
    }
    out
}

/// One file a resolved entry names.
struct Claim {
    path: PathBuf,
    entry: String,
    what: &'static str,
    ca: bool,
    field: &'static str,
    template: String,
}

/// Every file of every resolved entry, with the spec field and template it came from.
fn claims(desired: &Desired, spec: &Spec) -> Vec<Claim> {
    let mut out = Vec::new();
    let cert_template = |name: &str| -> String {
        spec.cas
            .iter()
            .chain(&spec.certs)
            .find(|c| c.name == name)
            .map(|c| c.path.clone())
            .unwrap_or_default()
    };
    for e in &desired.entries {
        let mut push =
            |path: &Path, what: &'static str, ca: bool, field: &'static str, t: String| {
                out.push(Claim {
                    path: normalize(path),
                    entry: e.name().to_string(),
                    what,
                    ca,
                    field,
                    template: t,
                })
            };
        match e {
            Entry::Ca(c) | Entry::Leaf(c) => {
                let ca = matches!(e, Entry::Ca(_));
                let t = cert_template(&c.name);
                push(&c.cert_path, "certificate", ca, "path", format!("{t}.crt"));
                push(&c.key_path, "key", ca, "path", format!("{t}.key"));
                if let Some(p) = e.csr_path() {
                    push(
                        &p,
                        "certificate signing request",
                        false,
                        "path",
                        format!("{t}.csr"),
                    );
                }
            }
            Entry::KeyPair(k) => {
                let s = spec.keypairs.iter().find(|s| s.name == k.name);
                let (kt, pt) = s
                    .map(|s| (s.key.clone(), s.public.clone()))
                    .unwrap_or_default();
                push(&k.key_path, "private key", false, "key", kt);
                push(&k.pub_path, "public key", false, "pub", pt);
            }
            Entry::Kubeconfig(k) => {
                let t = spec
                    .kubeconfigs
                    .iter()
                    .find(|s| s.name == k.name)
                    .map(|s| s.file.clone())
                    .unwrap_or_default();
                push(&k.path, "kubeconfig", false, "file", t.clone());
                if let Some(p) = e.csr_path() {
                    push(
                        &p,
                        "certificate signing request",
                        false,
                        "file",
                        format!("{t}.csr"),
                    );
                }
                push(
                    &k.signed_path(),
                    "externally signed certificate",
                    false,
                    "file",
                    format!("{t}.crt"),
                );
            }
        }
    }
    out
}

/// Refuses a resolved tree in which two entries name one file, or one entry's file is a
/// directory on the way to another's.
pub fn check(desired: &Desired, spec: &Spec) -> Result<()> {
    let vars = crate::model::resolve::Vars::from_inputs(&desired.inputs);
    let values = |v: &str| vars.value(v);
    let all = claims(desired, spec);
    let mut by_path: HashMap<&Path, &Claim> = HashMap::new();
    for c in &all {
        match by_path.get(c.path.as_path()) {
            Some(other) if other.entry != c.entry => {
                // Blame the entry that is not a CA (a CA's files are never the ones to move).
                let (culprit, victim) = if c.ca && !other.ca {
                    (*other, c)
                } else {
                    (c, *other)
                };
                let whose = if victim.ca {
                    format!("the {} of CA {}", victim.what, victim.entry)
                } else {
                    format!("the {} of entry {}", victim.what, victim.entry)
                };
                return Err(blame(
                    &spec.origin,
                    &culprit.entry,
                    culprit.field,
                    &culprit.template,
                    &values,
                    &format!(
                        "names {}, which is {whose}; every entry needs files of its own",
                        culprit.path.display()
                    ),
                ));
            }
            _ => {
                by_path.insert(&c.path, c);
            }
        }
    }
    for c in &all {
        for dir in c.path.ancestors().skip(1) {
            if let Some(other) = by_path
                .get(dir)
                .filter(|o| o.entry != c.entry || o.path != c.path)
            {
                return Err(blame(
                    &spec.origin,
                    &other.entry,
                    other.field,
                    &other.template,
                    &values,
                    &format!(
                        "names {}, which is the directory of {} ({} of entry {})",
                        other.path.display(),
                        c.path.display(),
                        c.what,
                        c.entry
                    ),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizer_reads_the_current_directory_once_and_agrees_with_absolute() {
        // What `normalize` did before the current directory was read once: std's `absolute`
        // (getcwd per call), then `.` and `..` resolved.
        let before = |p: &Path| {
            let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
            resolve_dots(&abs)
        };
        let paths = Normalizer::default();
        for p in [
            "",
            ".",
            "..",
            "a",
            "a/b",
            "./a//b/",
            "a/../b",
            "../../x",
            "/",
            "/a/./b//c/",
            "/a/../../b",
            "/etc/kubernetes/pki/ca.key",
            "nodes/n-1/kubelet.conf",
        ] {
            let p = Path::new(p);
            assert_eq!(paths.normalize(p), before(p), "{}", p.display());
            assert_eq!(normalize(p), before(p), "{}", p.display());
        }
        assert!(paths.normalize(Path::new("a")).is_absolute());
    }
}
