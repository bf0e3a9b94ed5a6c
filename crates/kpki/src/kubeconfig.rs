//! A typed kubeconfig (client-go's `clientcmd/api/v1` shape) and its YAML form.
//!
//! Fields are declared in alphabetical order so the YAML comes out in the order client-go writes
//! (it sorts keys), which keeps diffs against kubeadm-made files readable. YAML is serde-saphyr: it
//! is maintained, pure Rust, and quotes YAML 1.1 booleans (`yes`, `on`, `y`), which Go's reader would
//! otherwise turn into bools (a cluster named `on` would break the file).

use base64::Engine;
use serde::{Deserialize, Serialize};

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
}

fn v1() -> String {
    "v1".into()
}
fn config_kind() -> String {
    "Config".into()
}

/// client-go's empty preferences object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preferences {}

/// A named cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedCluster {
    /// The cluster.
    pub cluster: Cluster,
    /// Its name.
    pub name: String,
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
}

/// A named context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedContext {
    /// The context.
    pub context: Context,
    /// Its name.
    pub name: String,
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
}

/// A named user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedUser {
    /// Its name.
    pub name: String,
    /// The credentials.
    pub user: AuthInfo,
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
            }],
            contexts: vec![NamedContext {
                context: Context {
                    cluster: s.cluster_name.to_string(),
                    namespace: None,
                    user: s.user.to_string(),
                },
                name: context.clone(),
            }],
            current_context: context,
            kind: config_kind(),
            preferences: Preferences {},
            users: vec![NamedUser {
                name: s.user.to_string(),
                user: s.auth,
            }],
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

    /// Serialises like client-go: sorted keys, 2-space indent, list items flush with their key.
    pub fn to_yaml(&self) -> Result<String, String> {
        let mut opts = serde_saphyr::SerializerOptions::default();
        opts.prefer_block_scalars = false;
        opts.indent_step = 2;
        let mut out = String::new();
        serde_saphyr::to_fmt_writer_with_options(&mut out, self, opts)
            .map_err(|e| e.to_string())?;
        Ok(out)
    }

    /// Parses kubeconfig YAML.
    pub fn from_yaml(text: &str) -> Result<Kubeconfig, String> {
        // No source snippet in errors: it would quote the lines around the error, and those can
        // be `client-key-data` (the start of a private key in a verify report or a CI log).
        let options = serde_saphyr::options! { with_snippet: false };
        serde_saphyr::from_str_with_options::<Kubeconfig>(text, options)
            .map_err(|e| format!("not a valid kubeconfig: {}", one_line(&e.to_string())))
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
                    "current-context {:?} is not among its contexts",
                    self.current_context
                )
            })?;
        let cluster = self
            .clusters
            .iter()
            .find(|c| c.name == ctx.context.cluster)
            .ok_or_else(|| {
                format!(
                    "context {:?} names cluster {:?}, which is not defined",
                    ctx.name, ctx.context.cluster
                )
            })?;
        let user = self
            .users
            .iter()
            .find(|u| u.name == ctx.context.user)
            .ok_or_else(|| {
                format!(
                    "context {:?} names user {:?}, which is not defined",
                    ctx.name, ctx.context.user
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
