//! Every input with its value and where it came from: the table `plan`, `verify` and `renew`
//! show (text) and write (`inputs` in their JSON), so an operator sees why a tree is checked as
//! node `cp-1` on a host named otherwise.

use serde::{Deserialize, Serialize};

use crate::inputs::node::{Setting, SHOWN};
use crate::inputs::origin::Origin;
use crate::inputs::Inputs;

/// One row: an input, its value, its origin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputValue {
    /// The input (`node_name`, `advertise_address`, `cert_dir`, ...).
    pub input: String,
    /// Its value as text.
    pub value: String,
    /// Where it came from (absent when nothing is recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
}

impl Inputs {
    /// The inputs in a fixed order, each with its origin.
    pub fn table(&self) -> Vec<InputValue> {
        let mut rows = Vec::new();
        let mut row = |input: &str, value: String, origin: Option<Origin>| {
            rows.push(InputValue {
                input: input.to_string(),
                value,
                origin,
            })
        };
        let o = |k: &str| self.origin(k).cloned();
        if let Some(r) = self.root.dir() {
            row(
                "root",
                r.display().to_string(),
                Some(Origin::flag("--root")),
            );
        }
        if let Some(n) = &self.node {
            if let Some(d) = &n.manifests_dir {
                row("manifests_dir", d.display().to_string(), None);
            }
            if let Some(k) = &n.kubelet {
                row("kubelet_config", k.file.display().to_string(), None);
            }
        }
        row("target", self.target.kubeadm(), o("target"));
        if let Some(v) = &self.target.kubernetes_version {
            row("kubernetes_version", v.clone(), o("kubernetes_version"));
        }
        row(
            "cert_dir",
            self.cert_dir.display().to_string(),
            o("cert_dir"),
        );
        row(
            "kubeconfig_dir",
            self.kubeconfig_dir.display().to_string(),
            o("kubeconfig_dir"),
        );
        row("node_name", self.node_name.clone(), o("node_name"));
        row(
            "advertise_address",
            self.advertise_address.to_string(),
            o("advertise_address"),
        );
        row("bind_port", self.bind_port.to_string(), o("bind_port"));
        if let Some(e) = &self.control_plane_endpoint {
            let host = if e.host.contains(':') {
                format!("[{}]", e.host)
            } else {
                e.host.clone()
            };
            row(
                "control_plane_endpoint",
                format!("{host}:{}", e.port),
                o("control_plane_endpoint"),
            );
        }
        row(
            "service_cidrs",
            self.service_cidrs
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(","),
            o("service_cidrs"),
        );
        row("dns_domain", self.dns_domain.clone(), o("dns_domain"));
        row("cluster_name", self.cluster_name.clone(), o("cluster_name"));
        row(
            "key_algorithm",
            self.key_algorithm.to_string(),
            o("key_algorithm"),
        );
        row(
            "cert_validity",
            crate::inputs::duration::format_go_duration(self.cert_validity),
            o("cert_validity"),
        );
        row(
            "ca_validity",
            crate::inputs::duration::format_go_duration(self.ca_validity),
            o("ca_validity"),
        );
        for (san, origin) in self
            .apiserver_extra_sans
            .iter()
            .zip(&self.apiserver_extra_san_origins)
        {
            row("apiserver_extra_san", san.clone(), Some(origin.clone()));
        }
        if let Some(n) = &self.node {
            for (name, by, flag) in SHOWN {
                if let Setting::Value { value, .. } = n.setting(by, flag) {
                    row(name, value, n.origin(by, flag));
                }
            }
        }
        rows
    }

    /// True when some input came from the node's manifests or kubelet config (or `--root`
    /// was given): then the commands show the inputs table.
    pub fn from_node(&self) -> bool {
        self.root.is_set()
            || self
                .origins
                .values()
                .any(|o| matches!(o, Origin::Manifest { .. } | Origin::KubeletConfig { .. }))
    }
}

/// The table as text: `INPUT  VALUE  FROM`, one row per input, then a blank line.
pub fn render(rows: &[InputValue]) -> String {
    let mut out = format!("{:<22}  {:<40}  FROM\n", "INPUT", "VALUE");
    for r in rows {
        // Values and origins come from manifests and kubeconfigs: one escaped, bounded line each.
        let row = format!(
            "{:<22}  {:<40}  {}",
            r.input,
            r.value,
            r.origin
                .as_ref()
                .map(|o| o.to_string())
                .unwrap_or_else(|| "-".into())
        );
        out.push_str(&crate::text::line(&row, crate::text::MAX_LINE));
        out.push('\n');
    }
    out.push('\n');
    out
}
