//! Typed library errors. Every variant names the file, flag or spec entry at fault, so the CLI can
//! print one line that tells the operator where to look.

use std::path::PathBuf;

/// Result alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can stop a kpki operation before or while it touches the disk.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The certificate spec (certs-spec.toml) is malformed or inconsistent.
    #[error("spec {origin}: {entry}: {message}")]
    Spec {
        /// Where the spec came from (a path or "embedded default").
        origin: String,
        /// The entry (or top-level key) at fault.
        entry: String,
        /// What is wrong.
        message: String,
    },
    /// A cluster input (flag or kubeadm config field) is invalid.
    #[error("{field}: {message}")]
    Input {
        /// The flag (`--service-cidr`) or config field (`networking.serviceSubnet`) at fault.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The kubeadm config file could not be read or parsed.
    #[error("{path}: {message}")]
    Config {
        /// The config file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A file on disk could not be read, written or understood.
    #[error("{path}: {message}")]
    File {
        /// The file at fault.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A file or directory could not be read, written, renamed or locked: the operating
    /// system's error is the source.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory at fault.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// An entry on disk conflicts with the spec and inputs, so `init` refuses to touch the tree.
    #[error("{}{message}", conflict_prefix(path, entry))]
    Conflict {
        /// The spec entry.
        entry: String,
        /// The file at fault.
        path: PathBuf,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A cryptographic operation failed (key generation, signing).
    #[error("{context}: {message}")]
    Crypto {
        /// What was being done.
        context: String,
        /// The underlying failure.
        message: String,
    },
    /// Another kpki process holds the lock on the directory.
    #[error("{path}: {message}")]
    Locked {
        /// The lock file.
        path: PathBuf,
        /// What happened.
        message: String,
    },
}

impl Error {
    pub(crate) fn file(path: impl Into<PathBuf>, message: impl std::fmt::Display) -> Self {
        Error::File {
            path: path.into(),
            message: message.to_string(),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn input(field: impl Into<String>, message: impl std::fmt::Display) -> Self {
        Error::Input {
            field: field.into(),
            message: message.to_string(),
        }
    }

    pub(crate) fn crypto(context: impl Into<String>, message: impl std::fmt::Display) -> Self {
        Error::Crypto {
            context: context.into(),
            message: message.to_string(),
        }
    }
}

/// `<path>: <entry>: `, or just `<path>: ` when the entry is named after the file (a kubeconfig
/// entry is its file name: `/etc/kubernetes/admin.conf: admin.conf:` would say it twice).
fn conflict_prefix(path: &std::path::Path, entry: &str) -> String {
    if path
        .file_name()
        .is_some_and(|f| f == std::ffi::OsStr::new(entry))
    {
        format!("{}: ", path.display())
    } else {
        format!("{}: {entry}: ", path.display())
    }
}
