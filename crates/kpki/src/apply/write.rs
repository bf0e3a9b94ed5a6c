//! The one writer: atomic, mode-exact writes, the tree lock and the directory checks.
//!
//! Every write goes to a temporary file in the target directory that is created with its final
//! mode (a key is never readable by others, not even for a moment), is fsynced, then renamed over
//! the final name; the directory is fsynced after. A CA key is written with a no-clobber rename, so
//! no flag and no race can replace an existing CA key.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// How a file may be replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replace {
    /// Overwrite whatever is there.
    Allow,
    /// Fail if the file exists (CA keys).
    Never,
}

/// Creates `dir` and missing parents with exactly `mode` (umask notwithstanding).
pub fn ensure_dir(dir: &Path, mode: u32) -> Result<()> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        ensure_dir(parent, mode)?;
    }
    match fs::DirBuilder::new().mode(mode).create(dir) {
        Ok(()) => fs::set_permissions(dir, fs::Permissions::from_mode(mode))
            .map_err(|e| Error::file(dir, e)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(Error::file(dir, format!("cannot create directory: {e}"))),
    }
}

/// A file written under a temporary name in its final directory, with its final mode, waiting
/// to be moved into place by [`Pending::commit`]. Dropping it removes the temporary file.
#[derive(Debug)]
pub struct Pending {
    tmp: tempfile::NamedTempFile,
    path: PathBuf,
    replace: Replace,
}

/// Writes `data` to a temporary file beside `path` (same checks as [`write_atomic`]) without
/// flushing it: callers that write many files flush once ([`sync_filesystem`]) and then commit.
pub fn stage(
    path: &Path,
    data: &[u8],
    mode: u32,
    dir_mode: u32,
    replace: Replace,
) -> Result<Pending> {
    let dir = parent_dir(path);
    ensure_dir(&dir, dir_mode)?;
    if let Ok(m) = fs::symlink_metadata(path) {
        if m.file_type().is_symlink() {
            return Err(Error::file(
                path,
                "is a symbolic link; kpki does not write through links",
            ));
        }
        if m.is_dir() {
            return Err(Error::file(path, "is a directory, expected a file"));
        }
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".kpki-tmp")
        .permissions(fs::Permissions::from_mode(mode & 0o600))
        .tempfile_in(&dir)
        .map_err(|e| Error::file(&dir, format!("cannot create a temporary file: {e}")))?;
    // Set the final mode on the descriptor before any byte is written (umask may have narrowed it).
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(mode))
        .map_err(|e| Error::file(path, e))?;
    tmp.write_all(data).map_err(|e| Error::file(path, e))?;
    Ok(Pending {
        tmp,
        path: path.to_path_buf(),
        replace,
    })
}

impl Pending {
    /// Flushes this one file's data (for single writes; batches use [`sync_filesystem`]).
    pub fn sync(&self) -> Result<()> {
        self.tmp
            .as_file()
            .sync_all()
            .map_err(|e| Error::file(&self.path, e))
    }

    /// The final path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Renames the temporary file over the final name (no-clobber for [`Replace::Never`]).
    pub fn commit(self) -> Result<()> {
        let path = self.path;
        match self.replace {
            Replace::Allow => self.tmp.persist(&path).map(|_| ()).map_err(|e| Error::file(&path, e.error)),
            Replace::Never => self.tmp.persist_noclobber(&path).map(|_| ()).map_err(|e| {
                if e.error.kind() == std::io::ErrorKind::AlreadyExists {
                    Error::file(&path, "exists already; kpki never overwrites it (CA keys and backups are written no-clobber)")
                } else {
                    Error::file(&path, e.error)
                }
            }),
        }
    }
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Flushes every dirty file of the file system holding `dir` in one go (syncfs): one journal
/// commit instead of one per file.
pub fn sync_filesystem(dir: &Path) -> Result<()> {
    let f = fs::File::open(dir).map_err(|e| Error::file(dir, e))?;
    rustix::fs::syncfs(&f)
        .map_err(|e| Error::file(dir, format!("cannot flush the file system: {e}")))
}

/// Makes the renames in `dir` durable.
pub fn sync_dir(dir: &Path) {
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Writes `data` to `path` atomically with exactly `mode`: temp file, fsync, rename, dir fsync.
pub fn write_atomic(
    path: &Path,
    data: &[u8],
    mode: u32,
    dir_mode: u32,
    replace: Replace,
) -> Result<()> {
    let p = stage(path, data, mode, dir_mode, replace)?;
    p.sync()?;
    p.commit()?;
    sync_dir(&parent_dir(path));
    Ok(())
}

/// Sets the mode of an existing regular file without following a link (a `repair` step):
/// the file is opened with `O_NOFOLLOW` (non-blocking, so a FIFO cannot hang it) and its mode
/// set on the descriptor.
pub fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(
            rustix::fs::OFlags::NOFOLLOW.bits() as i32 | rustix::fs::OFlags::NONBLOCK.bits() as i32,
        )
        .open(path)
        .map_err(|e| Error::file(path, format!("cannot open to set its mode: {e}")))?;
    let m = f.metadata().map_err(|e| Error::file(path, e))?;
    if !m.is_file() {
        return Err(Error::file(
            path,
            "is not a regular file; its mode is left alone",
        ));
    }
    f.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(|e| Error::file(path, e))
}

/// An exclusive advisory lock (flock) on a directory, held until dropped, so two kpki processes
/// never interleave writes in one tree. The directory itself is locked: no lock file is left behind.
#[derive(Debug)]
pub struct DirLock {
    _file: fs::File,
}

/// Takes the lock on `dir` (created if missing), waiting up to `timeout`.
pub fn lock_dir(dir: &Path, dir_mode: u32, timeout: std::time::Duration) -> Result<DirLock> {
    ensure_dir(dir, dir_mode)?;
    let file = fs::File::open(dir).map_err(|e| Error::file(dir, e))?;
    let start = std::time::Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(DirLock { _file: file }),
            Err(fs::TryLockError::WouldBlock) if start.elapsed() < timeout => {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(fs::TryLockError::WouldBlock) => {
                return Err(Error::Locked {
                    path: dir.to_path_buf(),
                    message: format!(
                        "another kpki process is working on this directory (waited {:.1}s; see --lock-timeout)",
                        timeout.as_secs_f64()
                    ),
                })
            }
            Err(fs::TryLockError::Error(e)) => return Err(Error::file(dir, format!("cannot lock: {e}"))),
        }
    }
}

/// Refuses a directory (or its nearest existing ancestor, which kpki would create it in) that
/// group or others may write to: anyone who can write there can swap files under the tree.
/// A sticky directory such as /tmp is refused as the target itself, but kpki may create its
/// directories inside one.
pub fn check_dir_secure(dir: &Path) -> Result<()> {
    let mut cur = Some(dir);
    while let Some(d) = cur {
        match fs::metadata(d) {
            Ok(m) => {
                let mode = m.mode() & 0o7777;
                // kpki creates the missing directories itself inside a sticky ancestor such as
                // /tmp; nobody else can then rename or replace them.
                let creates_inside_sticky = d != dir && mode & 0o1000 != 0;
                if mode & 0o022 != 0 && !creates_inside_sticky {
                    return Err(Error::file(
                        d,
                        format!("is writable by group or others (mode {mode:04o}); fix its mode or pass --allow-insecure-dir"),
                    ));
                }
                return Ok(());
            }
            Err(_) => cur = d.parent().filter(|p| !p.as_os_str().is_empty()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::read::mode_of;

    #[test]
    fn atomic_write_sets_exact_mode_and_refuses_clobber() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("a/b/key");
        write_atomic(&p, b"x", 0o600, 0o755, Replace::Never).expect("write");
        assert_eq!(mode_of(&p), 0o600);
        assert_eq!(mode_of(&dir.path().join("a")), 0o755);
        let e = write_atomic(&p, b"y", 0o600, 0o755, Replace::Never).expect_err("clobber");
        assert!(e.to_string().contains("never overwrites"));
        assert_eq!(fs::read(&p).expect("read"), b"x");
        write_atomic(&p, b"z", 0o644, 0o755, Replace::Allow).expect("replace");
        assert_eq!(mode_of(&p), 0o644);
        let leftovers: Vec<_> = fs::read_dir(dir.path().join("a/b"))
            .expect("ls")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "{leftovers:?}");
    }

    #[test]
    fn lock_excludes_a_second_holder_and_insecure_dirs_are_refused() {
        let dir = tempfile::tempdir().expect("tmp");
        let a = lock_dir(dir.path(), 0o755, std::time::Duration::ZERO).expect("first");
        let e =
            lock_dir(dir.path(), 0o755, std::time::Duration::from_millis(120)).expect_err("second");
        assert!(e.to_string().contains("another kpki process"), "{e}");
        drop(a);
        lock_dir(dir.path(), 0o755, std::time::Duration::ZERO).expect("free again");
        let open = dir.path().join("open");
        fs::create_dir(&open).expect("mkdir");
        fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).expect("chmod");
        assert!(check_dir_secure(&open.join("pki/etcd")).is_err());
        fs::set_permissions(&open, fs::Permissions::from_mode(0o755)).expect("chmod");
        assert!(check_dir_secure(&open.join("pki/etcd")).is_ok());
    }

    #[test]
    fn refuses_symlinks() {
        let dir = tempfile::tempdir().expect("tmp");
        let target = dir.path().join("target");
        fs::write(&target, b"t").expect("write");
        let link = dir.path().join("link.key");
        std::os::unix::fs::symlink(&target, &link).expect("link");
        assert!(write_atomic(&link, b"x", 0o600, 0o755, Replace::Allow).is_err());
        assert_eq!(fs::read(&target).expect("read"), b"t");
    }
}
