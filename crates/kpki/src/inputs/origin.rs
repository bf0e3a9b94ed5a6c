//! Where each cluster input came from, so `plan` and `verify` can say why a value is what it is.
//!
//! kubeadm refuses `--config` together with most flags ("can not mix '--config' with arguments",
//! `ValidateMixedArguments` in validation.go); kpki allows the mix and defines the merge (flags
//! override scalars, `--apiserver-cert-extra-sans` adds to `apiServer.certSANs`), which is why every
//! input records its source: flags, the config, the node's static Pod manifests and kubelet
//! config, the existing tree, defaults, detection. The enum is non-exhaustive.

use std::fmt;
use std::path::PathBuf;

/// The source of one input value.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "source", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Origin {
    /// A command-line flag (or the library's `InputArgs` field of that name).
    Flag {
        /// The flag, e.g. `--node-name`.
        flag: String,
    },
    /// A field of the kubeadm config file.
    Config {
        /// The file.
        file: PathBuf,
        /// The field path, e.g. `apiServer.certSANs[2]`.
        field: String,
        /// Its line (0: unknown).
        line: u64,
    },
    /// kubeadm's default.
    Default,
    /// The host's name (`/proc/sys/kernel/hostname`), kubeadm's node-name default.
    Hostname,
    /// Read from the existing tree (see `inputs::discover`).
    Tree {
        /// The file and what in it (`etcd/server.crt: subject CN`).
        read: String,
    },
    /// Detected like kubeadm: the default-route interface's global unicast address.
    Detected {
        /// The interface holding the address.
        interface: String,
    },
    /// A flag (or the image) of one of the node's static Pod manifests (see
    /// `inputs::node`).
    Manifest {
        /// The manifest file, as read.
        file: PathBuf,
        /// The flag (`--advertise-address`), or `image` for the image tag.
        flag: String,
    },
    /// A field of the node's kubelet configuration file.
    KubeletConfig {
        /// The file, as read.
        file: PathBuf,
        /// The field path (`clusterDomain`).
        field: String,
    },
}

impl Origin {
    /// A flag origin.
    pub fn flag(flag: &str) -> Origin {
        Origin::Flag {
            flag: flag.to_string(),
        }
    }
}

fn file_name(file: &std::path::Path) -> String {
    file.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| file.display().to_string())
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Flag { flag } => f.write_str(flag),
            Origin::Config { file, field, line } => {
                let name = file
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| file.display().to_string());
                if *line > 0 {
                    write!(f, "{name}:{line} {field}")
                } else {
                    write!(f, "{name} {field}")
                }
            }
            Origin::Default => f.write_str("kubeadm's default"),
            Origin::Hostname => f.write_str("the host name"),
            Origin::Tree { read } => write!(f, "the tree ({read})"),
            Origin::Detected { interface } => {
                write!(f, "detected on {interface}, the default-route interface")
            }
            Origin::Manifest { file, flag } => write!(f, "{} {flag}", file_name(file)),
            Origin::KubeletConfig { file, field } => {
                write!(f, "kubelet {} {field}", file_name(file))
            }
        }
    }
}
