//! A typed kubeconfig (client-go's `clientcmd/api/v1` shape) and its YAML form.
//!
//! kpki models the fields it reads and writes; everything else (`proxy-url`, `extensions`, a
//! user's `exec:` or `as:`, `preferences`, fields of later client-go versions) is kept verbatim in
//! each object's `extra` map, so renewing a kubeconfig changes its certificate, key and CA data
//! and nothing else. The YAML comes out with every mapping's keys sorted, the order client-go
//! writes (it sorts keys), which keeps diffs against kubeadm-made files readable. YAML is serde-saphyr: it
//! is maintained, pure Rust, and quotes YAML 1.1 booleans (`yes`, `on`, `y`), which Go's reader would
//! otherwise turn into bools (a cluster named `on` would break the file).

use std::collections::BTreeMap;

use base64::Engine;
use serde::{Deserialize, Serialize};

/// Fields kpki does not model, kept as read (YAML read as client-go reads it: as JSON values).
pub type Extra = BTreeMap<String, serde_json::Value>;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// A kubeconfig file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kubeconfig {
    /// Always `v1`.
    #[serde(rename = "apiVersion", default = "v1")]
    pub api_version: String,
    /// Clusters.
    #[serde(default)]
    pub clusters: Vec<NamedCluster>,
    /// Contexts.
    #[serde(default)]
    pub contexts: Vec<NamedContext>,
    /// The context used by default.
    #[serde(rename = "current-context", default)]
    pub current_context: String,
    /// Always `Config`.
    #[serde(default = "config_kind")]
    pub kind: String,
    /// Always `{}` (client-go writes it).
    #[serde(default)]
    pub preferences: Preferences,
    /// Users (credentials).
    #[serde(default)]
    pub users: Vec<NamedUser>,
    /// Top-level fields kpki does not model (`extensions`, ...).
    #[serde(flatten)]
    pub extra: Extra,
}

fn v1() -> String {
    "v1".into()
}
fn config_kind() -> String {
    "Config".into()
}

/// client-go's preferences object (`{}` when kpki writes it; whatever was there is kept).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preferences {
    /// Its fields (`colors`, `extensions`, ...), kept as read.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A named cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedCluster {
    /// The cluster.
    pub cluster: Cluster,
    /// Its name.
    pub name: String,
    /// Fields kpki does not model.
    #[serde(flatten)]
    pub extra: Extra,
}

/// How to reach and trust an API server.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cluster {
    /// Path of a CA file (alternative to the embedded data).
    #[serde(
        rename = "certificate-authority",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub certificate_authority: Option<String>,
    /// Base64 of the CA certificate PEM.
    #[serde(
        rename = "certificate-authority-data",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub certificate_authority_data: Option<String>,
    /// API server URL.
    #[serde(default)]
    pub server: String,
    /// TLS server name override.
    #[serde(
        rename = "tls-server-name",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub tls_server_name: Option<String>,
    /// Fields kpki does not model (`proxy-url`, `extensions`, `insecure-skip-tls-verify`, ...).
    #[serde(flatten)]
    pub extra: Extra,
}

/// A named context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedContext {
    /// The context.
    pub context: Context,
    /// Its name.
    pub name: String,
    /// Fields kpki does not model.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A (cluster, user) pair.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Context {
    /// Cluster name.
    pub cluster: String,
    /// Default namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// User name.
    pub user: String,
    /// Fields kpki does not model (`extensions`, ...).
    #[serde(flatten)]
    pub extra: Extra,
}

/// A named user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedUser {
    /// Its name.
    pub name: String,
    /// The credentials.
    pub user: AuthInfo,
    /// Fields kpki does not model.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Client credentials.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthInfo {
    /// Path of a client certificate file.
    #[serde(
        rename = "client-certificate",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub client_certificate: Option<String>,
    /// Base64 of the client certificate PEM.
    #[serde(
        rename = "client-certificate-data",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub client_certificate_data: Option<String>,
    /// Path of a client key file.
    #[serde(
        rename = "client-key",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub client_key: Option<String>,
    /// Base64 of the client key PEM.
    #[serde(
        rename = "client-key-data",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub client_key_data: Option<String>,
    /// Bearer token (bootstrap tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Fields kpki does not model (`exec`, `as`, `as-groups`, `auth-provider`, ...).
    #[serde(flatten)]
    pub extra: Extra,
}

/// Whether serde-saphyr writes `s` as a plain scalar, character for character: base64 only
/// (no character that YAML treats specially), a letter first (not a number, nor `.inf`, `-`
/// or `+` forms), and longer than any YAML 1.1 keyword (`false`, `null`, `yes`, `off`, ...).
fn plain_base64(s: &str) -> bool {
    // Branch-free over the bytes (a fold, not `all`), so the compiler can use vector code: a
    // kubelet's kubeconfig has about 2.7 KB of it.
    let base64 = |b: u8| {
        (b | 0x20).wrapping_sub(b'a') < 26
            || b.wrapping_sub(b'0') < 10
            || b == b'+'
            || b == b'/'
            || b == b'='
    };
    s.len() > 5
        && s.as_bytes()[0].is_ascii_alphabetic()
        && s.bytes().fold(true, |ok, b| ok & base64(b))
}

/// The start of a stand-in for embedded data while serde-saphyr writes a kubeconfig
/// (`to_yaml_typed`); `-` is not base64.
const STAND_IN: &str = "kpki-data-";

/// Whether serde-saphyr writes the name `s` as a plain scalar, character for character: a
/// letter first, a letter or digit last, and between them only letters, digits and `-._:@/`
/// (no space, so no `: ` or ` #`), longer than any YAML 1.1 keyword. Kubernetes names
/// (`system:node:<node>`, `<user>@<cluster>`, `kubernetes`) are; `stand_ins_change_no_byte`
/// checks the rule against serde-saphyr itself.
fn plain_name(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() > 5
        && b[0].is_ascii_alphabetic()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"-._:@/".contains(c))
}

/// A kubeconfig with its values replaced by stand-ins, what serde-saphyr wrote for it, and
/// where each stand-in is in that text (its byte range, the index of its value), in text order.
struct Template {
    bare: Kubeconfig,
    text: String,
    spots: Vec<(std::ops::Range<usize>, usize)>,
}

thread_local! {
    /// The last [`Template`] made on this thread (see `to_yaml_typed`).
    static TEMPLATE: std::cell::RefCell<Option<Template>> = const { std::cell::RefCell::new(None) };
}

#[cfg(test)]
thread_local! {
    /// How many documents were written from a kept template on this thread (tests).
    static TEMPLATE_USED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// `text` with each stand-in at `spots` replaced by its value in `data`.
fn splice(text: &str, spots: &[(std::ops::Range<usize>, usize)], data: &[String]) -> String {
    let size = text.len() + data.iter().map(String::len).sum::<usize>();
    let mut out = String::with_capacity(size);
    let mut from = 0;
    for (at, i) in spots {
        out.push_str(&text[from..at.start]);
        out.push_str(&data[*i]);
        from = at.end;
    }
    out.push_str(&text[from..]);
    out
}

/// The pieces of a kubeconfig that its current context points at, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Current {
    /// Cluster entry name.
    pub cluster_name: String,
    /// User entry name.
    pub user_name: String,
    /// Server URL.
    pub server: String,
    /// CA certificate PEM bytes, if embedded.
    pub ca_pem: Option<Vec<u8>>,
    /// Client certificate PEM bytes, if embedded.
    pub client_cert_pem: Option<Vec<u8>>,
    /// Client key PEM bytes, if embedded.
    pub client_key_pem: Option<Vec<u8>>,
    /// Token, if any.
    pub token: Option<String>,
    /// `certificate-authority`: the CA certificate referenced by path.
    pub ca_file: Option<String>,
    /// `client-certificate`: the client certificate referenced by path.
    pub client_cert_file: Option<String>,
    /// `client-key`: the client key referenced by path.
    pub client_key_file: Option<String>,
}

/// The names and credentials of a kubeconfig with one cluster, user and context.
#[derive(Debug, Clone)]
pub struct Single<'a> {
    /// Cluster name.
    pub cluster_name: &'a str,
    /// API server URL.
    pub server: &'a str,
    /// CA certificate PEM (embedded as certificate-authority-data); `None` leaves it out.
    pub ca_pem: Option<&'a str>,
    /// User name (kubeadm: the client CN).
    pub user: &'a str,
    /// The credentials.
    pub auth: AuthInfo,
}

impl Kubeconfig {
    /// A kubeconfig with one cluster, one user and one current context `<user>@<cluster>`.
    pub fn single(s: Single<'_>) -> Kubeconfig {
        let context = format!("{}@{}", s.user, s.cluster_name);
        Kubeconfig {
            api_version: v1(),
            clusters: vec![NamedCluster {
                cluster: Cluster {
                    certificate_authority_data: s.ca_pem.map(|p| B64.encode(p)),
                    server: s.server.to_string(),
                    ..Default::default()
                },
                name: s.cluster_name.to_string(),
                extra: Extra::new(),
            }],
            contexts: vec![NamedContext {
                context: Context {
                    cluster: s.cluster_name.to_string(),
                    namespace: None,
                    user: s.user.to_string(),
                    extra: Extra::new(),
                },
                name: context.clone(),
                extra: Extra::new(),
            }],
            current_context: context,
            kind: config_kind(),
            preferences: Preferences::default(),
            users: vec![NamedUser {
                name: s.user.to_string(),
                user: s.auth,
                extra: Extra::new(),
            }],
            extra: Extra::new(),
        }
    }

    /// Client-certificate credentials with embedded PEM data.
    pub fn cert_auth(cert_pem: &str, key_pem: &str) -> AuthInfo {
        AuthInfo {
            client_certificate_data: Some(B64.encode(cert_pem)),
            client_key_data: Some(B64.encode(key_pem)),
            ..Default::default()
        }
    }

    /// Serialises like client-go: every mapping's keys sorted (kept fields included), 2-space
    /// indent, list items flush with their key.
    pub fn to_yaml(&self) -> Result<String, String> {
        let mut opts = serde_saphyr::SerializerOptions::default();
        opts.prefer_block_scalars = false;
        opts.indent_step = 2;
        // About 2.5 KB of YAML for a kubelet's kubeconfig: sized once.
        let mut out = String::with_capacity(4096);
        if self.has_extra() {
            // Kept fields go through JSON values, so they sort among the modelled ones.
            let value = serde_json::to_value(self).map_err(|e| e.to_string())?;
            serde_saphyr::to_fmt_writer_with_options(&mut out, &Sorted(&value), opts)
        } else {
            // Without kept fields the typed form is already in client-go's order (every struct
            // declares its fields sorted, as `fields_are_declared_in_sorted_order` checks), and
            // skips the JSON copy: a bulk `kpki nodes` run writes 100,000 of these.
            return self.to_yaml_typed(opts);
        }
        .map_err(|e| e.to_string())?;
        Ok(out)
    }

    /// The typed form, with the embedded data and the names handed to serde-saphyr as short
    /// stand-ins and put back in its output. The base64 is nine tenths of a kubelet's
    /// kubeconfig, and serde-saphyr examines each of its characters to choose a scalar style;
    /// base64 that [`plain_base64`] accepts, and names that [`plain_name`] accepts, are always
    /// written plain and as is, so the bytes are the same either way (`stand_ins_change_no_byte`).
    /// A stand-in has a `-`, which base64 lacks; a name may spell one, so each stand-in must be
    /// found exactly once in serde-saphyr's output, or no stand-ins are used.
    ///
    /// With the values taken out, the kubeconfigs of a bulk run are all the same document: its
    /// output (with stand-ins) is kept per thread, with that document, and reused while the next
    /// one is equal (serde-saphyr's fixed cost, about 50 k instructions a document, paid once).
    /// `to_yaml` is the only caller and always passes the same options.
    fn to_yaml_typed(&self, opts: serde_saphyr::SerializerOptions) -> Result<String, String> {
        let mut bare = self.clone();
        let mut data: Vec<String> = Vec::new();
        let mut swap = |field: &mut String, rule: fn(&str) -> bool| {
            if rule(field) {
                let token = format!("{STAND_IN}{}", data.len());
                data.push(std::mem::replace(field, token));
            }
        };
        for c in &mut bare.clusters {
            if let Some(d) = c.cluster.certificate_authority_data.as_mut() {
                swap(d, plain_base64);
            }
            swap(&mut c.name, plain_name);
        }
        for c in &mut bare.contexts {
            swap(&mut c.context.cluster, plain_name);
            swap(&mut c.context.user, plain_name);
            swap(&mut c.name, plain_name);
        }
        swap(&mut bare.current_context, plain_name);
        for u in &mut bare.users {
            swap(&mut u.name, plain_name);
            for d in [
                &mut u.user.client_certificate_data,
                &mut u.user.client_key_data,
            ]
            .into_iter()
            .flatten()
            {
                swap(d, plain_base64);
            }
        }
        let kept = TEMPLATE.with(|t| {
            t.borrow()
                .as_ref()
                // The same count of stand-ins, then the same document: a data field may hold a
                // stand-in's text as is (`-` is not base64), which equals the kept document
                // there but has no value to put back.
                .filter(|t| t.spots.len() == data.len() && t.bare == bare)
                .map(|t| splice(&t.text, &t.spots, &data))
        });
        if let Some(out) = kept {
            #[cfg(test)]
            TEMPLATE_USED.with(|n| n.set(n.get() + 1));
            return Ok(out);
        }
        let mut text = String::with_capacity(1024);
        serde_saphyr::to_fmt_writer_with_options(&mut text, &bare, opts.clone())
            .map_err(|e| e.to_string())?;
        // Each stand-in where serde-saphyr put it, in the order they appear.
        let mut spots: Vec<(std::ops::Range<usize>, usize)> = Vec::with_capacity(data.len());
        for (at, _) in text.match_indices(STAND_IN) {
            let digits = text[at + STAND_IN.len()..]
                .bytes()
                .take_while(u8::is_ascii_digit)
                .count();
            let end = at + STAND_IN.len() + digits;
            let index = text[at + STAND_IN.len()..end]
                .parse::<usize>()
                .ok()
                .filter(|i| *i < data.len() && format!("{STAND_IN}{i}") == text[at..end]);
            match index {
                Some(i) if !spots.iter().any(|(_, j)| *j == i) => spots.push((at..end, i)),
                _ => spots.push((at..end, usize::MAX)),
            }
        }
        if spots.len() != data.len() || spots.iter().any(|(_, i)| *i == usize::MAX) {
            text.clear();
            serde_saphyr::to_fmt_writer_with_options(&mut text, self, opts)
                .map_err(|e| e.to_string())?;
            return Ok(text);
        }
        let out = splice(&text, &spots, &data);
        TEMPLATE.with(|t| *t.borrow_mut() = Some(Template { bare, text, spots }));
        Ok(out)
    }

    /// Whether any object holds fields kpki does not model.
    fn has_extra(&self) -> bool {
        !self.extra.is_empty()
            || !self.preferences.extra.is_empty()
            || self
                .clusters
                .iter()
                .any(|c| !c.extra.is_empty() || !c.cluster.extra.is_empty())
            || self
                .contexts
                .iter()
                .any(|c| !c.extra.is_empty() || !c.context.extra.is_empty())
            || self
                .users
                .iter()
                .any(|u| !u.extra.is_empty() || !u.user.extra.is_empty())
    }

    /// Parses kubeconfig YAML. A name used twice for clusters, contexts or users is an error, as
    /// in client-go (kubectl refuses such a file).
    pub fn from_yaml(text: &str) -> Result<Kubeconfig, String> {
        // No source snippet in errors: it would quote the lines around the error, and those can
        // be `client-key-data` (the start of a private key in a verify report or a CI log).
        let options = serde_saphyr::options! { with_snippet: false };
        // Read as client-go reads it: YAML to JSON values (YAML 1.1 scalars), then the typed
        // fields. Going through values keeps every mapping key a string (`n:` stays "n"), which
        // the fields kpki keeps verbatim need.
        let value = serde_saphyr::from_str_with_options::<serde_json::Value>(text, options)
            .map_err(|e| {
                format!(
                    "not a valid kubeconfig: {}",
                    hide_values(&yaml_error(&e.to_string()))
                )
            })?;
        // The typed step's messages quote the offending value, which may be key material.
        let k: Kubeconfig = serde_json::from_value(value).map_err(|e| {
            format!(
                "not a valid kubeconfig: {}",
                hide_values(&one_line(&e.to_string()))
            )
        })?;
        k.check_names()?;
        Ok(k)
    }

    /// Refuses duplicate cluster, context or user names (client-go: "duplicate name in list").
    fn check_names(&self) -> Result<(), String> {
        let dup = |what: &str, names: Vec<&str>| -> Result<(), String> {
            let mut seen = std::collections::BTreeSet::new();
            for n in names {
                if !seen.insert(n) {
                    return Err(format!(
                        "has two {what} named {} (kubectl refuses the file: duplicate name in list)",
                        crate::text::label(n)
                    ));
                }
            }
            Ok(())
        };
        dup(
            "clusters",
            self.clusters.iter().map(|c| c.name.as_str()).collect(),
        )?;
        dup(
            "contexts",
            self.contexts.iter().map(|c| c.name.as_str()).collect(),
        )?;
        dup(
            "users",
            self.users.iter().map(|c| c.name.as_str()).collect(),
        )
    }

    /// Resolves the current context and decodes its embedded data.
    pub fn current(&self) -> Result<Current, String> {
        if self.current_context.is_empty() {
            return Err("has no current-context".into());
        }
        let ctx = self
            .contexts
            .iter()
            .find(|c| c.name == self.current_context)
            .ok_or_else(|| {
                format!(
                    "current-context {} is not among its contexts",
                    crate::text::label(&self.current_context)
                )
            })?;
        let cluster = self
            .clusters
            .iter()
            .find(|c| c.name == ctx.context.cluster)
            .ok_or_else(|| {
                format!(
                    "context {} names cluster {}, which is not defined",
                    crate::text::label(&ctx.name),
                    crate::text::label(&ctx.context.cluster)
                )
            })?;
        let user = self
            .users
            .iter()
            .find(|u| u.name == ctx.context.user)
            .ok_or_else(|| {
                format!(
                    "context {} names user {}, which is not defined",
                    crate::text::label(&ctx.name),
                    crate::text::label(&ctx.context.user)
                )
            })?;
        let dec = |field: &str, v: &Option<String>| -> Result<Option<Vec<u8>>, String> {
            v.as_ref()
                .map(|s| {
                    B64.decode(s.trim())
                        .map_err(|e| format!("{field} is not valid base64: {e}"))
                })
                .transpose()
        };
        Ok(Current {
            cluster_name: cluster.name.clone(),
            user_name: user.name.clone(),
            server: cluster.cluster.server.clone(),
            ca_pem: dec(
                "certificate-authority-data",
                &cluster.cluster.certificate_authority_data,
            )?,
            client_cert_pem: dec(
                "client-certificate-data",
                &user.user.client_certificate_data,
            )?,
            client_key_pem: dec("client-key-data", &user.user.client_key_data)?,
            token: user.user.token.clone(),
            ca_file: cluster.cluster.certificate_authority.clone(),
            client_cert_file: user.user.client_certificate.clone(),
            client_key_file: user.user.client_key.clone(),
        })
    }

    /// Replaces the current cluster's CA data (PEM, one certificate or a bundle), keeping the
    /// rest of the file: what a CA rotation changes in a kubeconfig.
    pub fn set_ca_data(&mut self, ca_pem: &str) -> Result<(), String> {
        let cur = self.current()?;
        if let Some(c) = self
            .clusters
            .iter_mut()
            .find(|c| c.name == cur.cluster_name)
        {
            c.cluster.certificate_authority_data = Some(B64.encode(ca_pem));
            c.cluster.certificate_authority = None;
        }
        Ok(())
    }

    /// Replaces the current user's client certificate and key, and the current cluster's CA.
    pub fn set_credentials(
        &mut self,
        ca_pem: Option<&str>,
        cert_pem: &str,
        key_pem: &str,
    ) -> Result<(), String> {
        let cur = self.current()?;
        if let Some(ca) = ca_pem {
            if let Some(c) = self
                .clusters
                .iter_mut()
                .find(|c| c.name == cur.cluster_name)
            {
                c.cluster.certificate_authority_data = Some(B64.encode(ca));
                c.cluster.certificate_authority = None;
            }
        }
        if let Some(u) = self.users.iter_mut().find(|u| u.name == cur.user_name) {
            u.user.client_certificate_data = Some(B64.encode(cert_pem));
            u.user.client_key_data = Some(B64.encode(key_pem));
            u.user.client_certificate = None;
            u.user.client_key = None;
        }
        Ok(())
    }
}

fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A YAML parser message in kpki's words: one line, and a duplicate key said plainly (the
/// parser's own text points at an option of its API).
pub fn yaml_error(raw: &str) -> String {
    let m = one_line(raw);
    if let Some(rest) = m.strip_prefix("duplicate mapping key: ") {
        let key = rest
            .split(", set DuplicateKeyPolicy")
            .next()
            .unwrap_or(rest);
        let at = rest
            .find(" at line ")
            .map(|i| rest[i..].to_string())
            .unwrap_or_default();
        return format!(
            "the key {} appears twice in one mapping{at}",
            crate::text::quote(key)
        );
    }
    m.replace(", set DuplicateKeyPolicy in Options if acceptable", "")
}

/// A parser message with every quoted value (`"..."` or `` `...` ``) passed through
/// [`crate::text::label`]: short names stay readable, key material and long values are
/// described, never quoted.
pub fn hide_values(msg: &str) -> String {
    let mut out = String::new();
    let mut rest = msg;
    while let Some(i) = rest.find(['"', '`']) {
        let q = rest.as_bytes()[i] as char;
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        // The closing quote: the last one of this kind before ", expected" or the end.
        let end = after
            .find(&format!("{q}, expected"))
            .or_else(|| after.rfind(q));
        match end {
            Some(j) => {
                out.push_str(&crate::text::label(&after[..j]));
                rest = &after[j + 1..];
            }
            None => {
                out.push_str(&rest[i..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Serialises a JSON value with every object's keys in sorted order, whatever map type
/// serde_json was built with.
struct Sorted<'a>(&'a serde_json::Value);

impl Serialize for Sorted<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self.0 {
            serde_json::Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                let mut map = s.serialize_map(Some(keys.len()))?;
                for k in keys {
                    map.serialize_entry(k, &Sorted(&m[k]))?;
                }
                map.end()
            }
            serde_json::Value::Array(a) => {
                let mut seq = s.serialize_seq(Some(a.len()))?;
                for v in a {
                    seq.serialize_element(&Sorted(v))?;
                }
                seq.end()
            }
            v => v.serialize(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sorted form (through JSON values), which `to_yaml` uses when fields are kept.
    fn sorted_yaml(k: &Kubeconfig) -> String {
        let value = serde_json::to_value(k).unwrap();
        let mut opts = serde_saphyr::SerializerOptions::default();
        opts.prefer_block_scalars = false;
        opts.indent_step = 2;
        let mut out = String::new();
        serde_saphyr::to_fmt_writer_with_options(&mut out, &Sorted(&value), opts).unwrap();
        out
    }

    #[test]
    fn fields_are_declared_in_sorted_order() {
        // Every optional field set, names YAML would misread, so both forms have every key.
        let mut k = Kubeconfig::single(Single {
            cluster_name: "on",
            server: "https://10.0.0.1:6443",
            ca_pem: Some("-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n"),
            user: "system:node:yes",
            auth: AuthInfo {
                client_certificate: Some("a.crt".into()),
                client_certificate_data: Some("Y2VydA==".into()),
                client_key: Some("a.key".into()),
                client_key_data: Some("a2V5".into()),
                token: Some("abcdef.0123456789abcdef".into()),
                extra: Extra::new(),
            },
        });
        k.clusters[0].cluster.certificate_authority = Some("/etc/ca.crt".into());
        k.clusters[0].cluster.tls_server_name = Some("kubernetes".into());
        k.contexts[0].context.namespace = Some("n".into());
        assert!(!k.has_extra());
        let direct = k.to_yaml().unwrap();
        assert_eq!(direct, sorted_yaml(&k));
        // And the kubeconfigs kubeadm wrote read back to the same bytes by both ways.
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures/kubeadm-v1.28.4-rsa/kubeconfig");
        for f in ["admin.conf", "kubelet.conf", "scheduler.conf"] {
            let text = std::fs::read_to_string(dir.join(f)).unwrap();
            let k = Kubeconfig::from_yaml(&text).unwrap();
            assert!(!k.has_extra(), "{f}");
            assert_eq!(k.to_yaml().unwrap(), sorted_yaml(&k), "{f}");
        }
        // A kept field takes the sorted path.
        k.users[0]
            .user
            .extra
            .insert("as".into(), serde_json::Value::String("x".into()));
        assert!(k.has_extra());
        assert_eq!(k.to_yaml().unwrap(), sorted_yaml(&k));
    }

    #[test]
    fn stand_ins_change_no_byte() {
        // serde-saphyr on the whole document, data included: what `to_yaml_typed` must equal.
        let whole = |k: &Kubeconfig| {
            let mut opts = serde_saphyr::SerializerOptions::default();
            opts.prefer_block_scalars = false;
            opts.indent_step = 2;
            let mut out = String::new();
            serde_saphyr::to_fmt_writer_with_options(&mut out, k, opts).unwrap();
            out
        };
        // Base64 of every length up to 64 bytes and some long ones, from a fixed sequence.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut values: Vec<String> = (0..64usize)
            .chain([700, 1200, 1700, 3000, 6000, 12000])
            .map(|n| {
                let bytes: Vec<u8> = (0..n)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        x as u8
                    })
                    .collect();
                B64.encode(bytes)
            })
            .collect();
        // Strings YAML reads as something else, or that need quotes, and the stand-in itself.
        for v in [
            "",
            "abcde",
            "Falsey",
            "123456",
            "+12345",
            "/abcdef",
            "=abcde",
            "1e1000",
            "0b1010",
            "a b c d",
            "abc:def",
            "abc: d",
            "abc #d",
            "kpki-data-0",
            "true",
            "NULL",
            "y",
        ] {
            values.push(v.to_string());
        }
        let mut checked = 0;
        for (i, v) in values.iter().enumerate() {
            let other = &values[(i * 7 + 3) % values.len()];
            for user in ["system:node:a", "kpki-data-0", "kpki-data-1 kpki-data-1"] {
                let k = Kubeconfig::single(Single {
                    cluster_name: "kubernetes",
                    server: "https://10.0.0.1:6443",
                    ca_pem: None,
                    user,
                    auth: AuthInfo {
                        client_certificate_data: Some(v.clone()),
                        client_key_data: Some(other.clone()),
                        ..AuthInfo::default()
                    },
                });
                let mut k = k;
                k.clusters[0].cluster.certificate_authority_data = Some(values[i / 2].clone());
                assert_eq!(k.to_yaml().unwrap(), whole(&k), "data {v:?}, user {user:?}");
                checked += 1;
            }
        }
        assert!(checked > 200);
        // Names: every one after a kubelet's, so the kept template is used for each name the
        // rule accepts, and compared with serde-saphyr on the whole document.
        let long = format!("system:node:{}", "n".repeat(300));
        let colons = format!("a:{}", "b".repeat(100));
        let names = [
            "system:node:node-00001",
            "system:node:a",
            "kubernetes",
            "kubernetes-admin",
            "system:kube-scheduler",
            "system:kube-controller-manager",
            "default-auth",
            "kubernetes-super-admin@kubernetes",
            "a",
            "ab",
            "yes",
            "true",
            "null",
            "NULL",
            "~",
            "on",
            "Off",
            "y",
            "n",
            "123456",
            "1e10",
            "0x1f",
            "-abcdef",
            ".inf",
            "abcdef:",
            "abc: def",
            "a bcdef",
            "a#bcdef",
            "abc #def",
            "abcdef-",
            "ABCdef",
            "Infinity",
            "infinity",
            "NaN",
            "nan_xy",
            "xyzzy@y",
            "@abcdef",
            "a/b/c/d",
            "a//bcd",
            "http://x.y:80",
            "https://k8s.example.internal:6443",
            "kpki-data-0",
            "kpki-data-12",
            "système-1",
            "a\tbcdef",
            "\"quoted\"",
            "'single'",
            "a,bcdef",
            "[abcdef]",
            "{abcdef}",
            "a*bcdef",
            "&anchor",
            "!tagged",
            "%abcdef",
            "|abcdef",
            ">abcdef",
            "ab|cdef",
            "0o17777",
            "1_000_000",
            "_abcdef",
            "abcdef_",
            "a.b.c.d",
            "a..bcd",
            "a::bcd",
            "a:b:c:d:e",
            "abc:-def",
            "abc?def",
            "abc-:-def",
            &long,
            &colons,
        ];
        let kubelet = |user: &str, cluster: &str| {
            Kubeconfig::single(Single {
                cluster_name: cluster,
                server: "https://10.0.0.1:6443",
                ca_pem: Some("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"),
                user,
                auth: Kubeconfig::cert_auth("cert", "key"),
            })
        };
        let before = TEMPLATE_USED.with(|n| n.get());
        let mut plain = 0;
        for name in names {
            for (user, cluster) in [(name, "kubernetes"), ("system:node:x1", name), (name, name)] {
                let first = kubelet("system:node:node-00000", "kubernetes");
                assert_eq!(first.to_yaml().unwrap(), whole(&first));
                let k = kubelet(user, cluster);
                assert_eq!(
                    k.to_yaml().unwrap(),
                    whole(&k),
                    "user {user:?}, cluster {cluster:?}"
                );
            }
            if plain_name(name) {
                plain += 1;
            }
        }
        // A data field that holds a stand-in's text as is, after a document whose stand-in
        // sits there (found by an adversarial review: the kept output was reused with a value
        // missing, and `splice` indexed past the end).
        // Stand-ins, in order: the CA data 0, six names 1-6, the certificate 7, the key 8.
        for (field, i) in [(0, 0), (1, 7), (2, 8)] {
            let mut a = kubelet("system:node:node-00000", "kubernetes");
            a.users[0].user.client_key_data = Some(B64.encode("a private key"));
            assert_eq!(a.to_yaml().unwrap(), whole(&a));
            let mut b = a.clone();
            let spelled = Some(format!("{STAND_IN}{i}"));
            match field {
                0 => b.clusters[0].cluster.certificate_authority_data = spelled,
                1 => b.users[0].user.client_certificate_data = spelled,
                _ => b.users[0].user.client_key_data = spelled,
            }
            assert_eq!(b.to_yaml().unwrap(), whole(&b), "stand-in {i} spelled");
        }
        let used = TEMPLATE_USED.with(|n| n.get()) - before;
        // Every accepted name was written from the template in its three places.
        assert!(plain >= 20, "{plain}");
        assert!(
            used >= plain * 3,
            "{used} documents from the template, {plain} plain names"
        );
        // The rule the stand-ins rest on, on its own.
        assert!(plain_base64("LS0tLS1CRUdJTiBDRVJU"));
        for v in ["abcde", "1abcdef", "+abcdef", "abc-def", "abc def", "abcdé"] {
            assert!(!plain_base64(v), "{v}");
        }
    }

    #[test]
    fn yaml_shape_matches_client_go() {
        let k = Kubeconfig::single(Single {
            cluster_name: "kubernetes",
            server: "https://10.0.0.10:6443",
            ca_pem: Some("CA"),
            user: "kubernetes-admin",
            auth: Kubeconfig::cert_auth("CERT", "KEY"),
        });
        let y = k.to_yaml().expect("yaml");
        let want = "apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: Q0E=
    server: https://10.0.0.10:6443
  name: kubernetes
contexts:
- context:
    cluster: kubernetes
    user: kubernetes-admin
  name: kubernetes-admin@kubernetes
current-context: kubernetes-admin@kubernetes
kind: Config
preferences: {}
users:
- name: kubernetes-admin
  user:
    client-certificate-data: Q0VSVA==
    client-key-data: S0VZ
";
        assert_eq!(y, want);
        let back = Kubeconfig::from_yaml(&y).expect("parse");
        assert_eq!(back, k);
        let cur = back.current().expect("current");
        assert_eq!(cur.ca_pem.as_deref(), Some(&b"CA"[..]));
    }

    #[test]
    fn yaml_quotes_yaml11_booleans() {
        let k = Kubeconfig::single(Single {
            cluster_name: "on",
            server: "https://h:1",
            ca_pem: None,
            user: "y",
            auth: AuthInfo::default(),
        });
        let y = k.to_yaml().expect("yaml");
        assert!(
            y.contains("name: \"on\"") || y.contains("name: 'on'"),
            "{y}"
        );
    }

    #[test]
    fn broken_kubeconfigs_are_errors() {
        assert!(Kubeconfig::from_yaml(": : :").is_err());
        let mut k = Kubeconfig::from_yaml("apiVersion: v1\nkind: Config\n").expect("parse");
        assert!(k.current().is_err());
        k.current_context = "x".into();
        assert!(k.current().unwrap_err().contains("not among"));
    }

    #[test]
    fn what_kpki_does_not_model_survives_a_credential_update() {
        let text = "apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: Q0E=
    extensions:
    - extension:
        last-update: x
        \"n\": 3
      name: client.authentication.k8s.io/exec
    proxy-url: socks5://proxy:1080
    server: https://10.0.0.10:6443
  name: kubernetes
contexts:
- context:
    cluster: kubernetes
    namespace: kube-system
    user: admin
  name: admin@kubernetes
current-context: admin@kubernetes
kind: Config
preferences:
  colors: true
users:
- name: admin
  user:
    as: someone
    as-groups:
    - g1
    client-certificate-data: Q0VSVA==
    client-key-data: S0VZ
    exec:
      apiVersion: client.authentication.k8s.io/v1
      args: null
      command: helper
      interactiveMode: IfAvailable
      provideClusterInfo: false
zz-future-field: 7
";
        let mut k = Kubeconfig::from_yaml(text).expect("parse");
        assert_eq!(
            Kubeconfig::from_yaml(&k.to_yaml().expect("yaml")).expect("re"),
            k
        );
        assert_eq!(
            k.to_yaml().expect("yaml"),
            text,
            "sorted keys, nothing lost"
        );
        k.set_credentials(Some("CA2"), "CERT2", "KEY2")
            .expect("set");
        let y = k.to_yaml().expect("yaml");
        let want = text
            .replace("Q0E=", "Q0Ey")
            .replace("Q0VSVA==", "Q0VSVDI=")
            .replace("S0VZ", "S0VZMg==");
        assert_eq!(y, want);
    }

    #[test]
    fn duplicate_names_and_keys_are_refused_in_plain_words() {
        let k = Kubeconfig::single(Single {
            cluster_name: "c",
            server: "https://h:1",
            ca_pem: None,
            user: "u",
            auth: AuthInfo::default(),
        });
        let mut y = k.to_yaml().expect("yaml");
        y = y.replace("users:\n", "users:\n- name: u\n  user: {}\n");
        let e = Kubeconfig::from_yaml(&y).expect_err("dup");
        assert!(e.contains("two users named \"u\""), "{e}");
        let e = Kubeconfig::from_yaml("kind: Config\nkind: Config\n").expect_err("dup key");
        assert!(
            e.contains("\"kind\" appears twice") && !e.contains("DuplicateKeyPolicy"),
            "{e}"
        );
        let e = Kubeconfig::from_yaml(
            "\"-----BEGIN EC PRIVATE KEY-----\\nMHcCAQEEIBXWzFcH5bGsecretsecretsecretsecret\\n\"\n",
        )
        .expect_err("a scalar");
        assert!(!e.contains("MHcC") && !e.contains("BEGIN"), "{e}");
        let e = Kubeconfig::from_yaml("clusters: 5\n").expect_err("a number");
        assert!(e.contains("invalid type"), "{e}");
        let secret = "-----BEGIN EC PRIVATE KEY-----MHcCAQEEIBXWzFcH5bG";
        let mut k2 = k.clone();
        k2.current_context = secret.into();
        let e = k2.current().expect_err("unresolved");
        assert!(!e.contains("MHcC") && !e.contains("BEGIN"), "{e}");
    }
}
