//! `--root DIR`: a node's files read from a copy of its file system.
//!
//! A control-plane node names its files by absolute paths: the static Pod manifests say
//! `--tls-cert-file=/etc/kubernetes/pki/apiserver.crt`, the kubelet config
//! `clientCAFile: /etc/kubernetes/pki/ca.crt`, kubelet.conf
//! `client-certificate: /var/lib/kubelet/pki/kubelet-client-current.pem` (a symbolic link to a
//! dated file, by absolute path). To audit a node copied elsewhere (or a test tree), every such
//! path must be read under the copy, and so must the links inside it: [`Root::map`] resolves a
//! path the way `chroot DIR` would (`..` and absolute link targets stay inside DIR). Every reader
//! of a path written in a file goes through it, so no path escapes to the auditing host.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

/// Links followed while resolving one path before giving up (Linux's own limit is 40).
const MAX_LINKS: usize = 40;

/// The directory that stands for `/` of the node, or none (the node is this host).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Root {
    dir: Option<PathBuf>,
}

impl Root {
    /// `Some(dir)`: the node's `/` is `dir`; `None`: paths are this host's.
    pub fn new(dir: Option<PathBuf>) -> Root {
        Root { dir }
    }

    /// The node is this host.
    pub fn none() -> Root {
        Root { dir: None }
    }

    /// The directory given with `--root`.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// True with `--root`.
    pub fn is_set(&self) -> bool {
        self.dir.is_some()
    }

    /// Where the file the node calls `written` is read on this machine. A relative path is
    /// taken from the node's `/` (a static Pod's working directory). Without a root the path is
    /// returned unchanged.
    pub fn map(&self, written: &Path) -> PathBuf {
        match &self.dir {
            None => written.to_path_buf(),
            Some(dir) => in_root(dir, &Path::new("/").join(written)),
        }
    }

    /// Where `written`, found in a file that lives in `base` (a directory on this machine), is
    /// read: relative paths against `base` (client-go's rule for kubeconfigs), absolute ones
    /// under the root.
    pub fn resolve(&self, base: &Path, written: &Path) -> PathBuf {
        match &self.dir {
            None if written.is_absolute() => written.to_path_buf(),
            None => base.join(written),
            Some(dir) if written.is_absolute() => in_root(dir, written),
            Some(dir) => in_root(dir, &self.node_path(base).join(written)),
        }
    }

    /// The node's own name for a path on this machine (the root stripped), for messages and
    /// fixes that the operator applies on the node.
    pub fn node_path(&self, p: &Path) -> PathBuf {
        match &self.dir {
            Some(dir) => match p.strip_prefix(dir) {
                Ok(rest) => Path::new("/").join(rest),
                Err(_) => p.to_path_buf(),
            },
            None => p.to_path_buf(),
        }
    }
}

/// Resolves the absolute node path `p` inside `root` like `chroot`: `..` never climbs above the
/// root, and symbolic links are followed with absolute targets taken from the root. A link loop
/// (or more than [`MAX_LINKS`] links) leaves the rest of the path unresolved, so the read fails
/// where the loop is.
fn in_root(root: &Path, p: &Path) -> PathBuf {
    let mut pending: VecDeque<OsString> = VecDeque::new();
    push_front(&mut pending, p);
    let mut out = PathBuf::new();
    let mut links = 0;
    while let Some(c) = pending.pop_front() {
        if c == ".." {
            out.pop();
            continue;
        }
        out.push(&c);
        let here = root.join(&out);
        let is_link = std::fs::symlink_metadata(&here).is_ok_and(|m| m.file_type().is_symlink());
        if !is_link {
            continue;
        }
        links += 1;
        let Ok(target) = std::fs::read_link(&here) else {
            continue;
        };
        if links > MAX_LINKS {
            for rest in pending {
                out.push(rest);
            }
            return root.join(out);
        }
        out.pop();
        if target.is_absolute() {
            out = PathBuf::new();
        }
        push_front(&mut pending, &target);
    }
    root.join(out)
}

/// Puts the components of `p` before what is pending (`.` dropped, `..` kept).
fn push_front(pending: &mut VecDeque<OsString>, p: &Path) {
    let parts: Vec<OsString> = p
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect();
    for part in parts.into_iter().rev() {
        pending.push_front(part);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn paths_stay_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(Some(dir.path().to_path_buf()));
        let pki = dir.path().join("var/lib/kubelet/pki");
        std::fs::create_dir_all(&pki).unwrap();
        std::fs::write(pki.join("kubelet-client-2026.pem"), "x").unwrap();
        // kubelet's own link: absolute target, read inside the root.
        symlink(
            "/var/lib/kubelet/pki/kubelet-client-2026.pem",
            pki.join("kubelet-client-current.pem"),
        )
        .unwrap();
        let p = root.map(Path::new("/var/lib/kubelet/pki/kubelet-client-current.pem"));
        assert_eq!(p, pki.join("kubelet-client-2026.pem"));
        // `..` stops at the root.
        assert_eq!(
            root.map(Path::new("/../../etc/shadow")),
            dir.path().join("etc/shadow")
        );
        // A link to a directory outside, by absolute path, lands inside.
        symlink("/etc", dir.path().join("outside")).unwrap();
        assert_eq!(
            root.map(Path::new("/outside/passwd")),
            dir.path().join("etc/passwd")
        );
        // A loop ends (the read fails there).
        symlink("loop", dir.path().join("loop")).unwrap();
        assert!(root.map(Path::new("/loop/x")).starts_with(dir.path()));
        // Relative references resolve against their file's directory, inside the root.
        let kc = dir.path().join("etc/kubernetes");
        assert_eq!(
            root.resolve(&kc, Path::new("pki/ca.crt")),
            kc.join("pki/ca.crt")
        );
        assert_eq!(
            root.node_path(&kc.join("admin.conf")),
            Path::new("/etc/kubernetes/admin.conf")
        );
        // Without a root nothing changes.
        let none = Root::none();
        assert_eq!(none.map(Path::new("/etc/x")), Path::new("/etc/x"));
        assert_eq!(
            none.resolve(Path::new("/a"), Path::new("b")),
            Path::new("/a/b")
        );
    }
}
