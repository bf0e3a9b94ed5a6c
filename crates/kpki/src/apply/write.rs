//! The one writer: atomic, mode-exact writes, the tree lock and the directory checks.
//!
//! Every write goes to a temporary file in the target directory that is created with its final
//! mode (a key is never readable by others, not even for a moment), is fsynced, then renamed over
//! the final name; the directory is fsynced after. A CA key is written with a no-clobber rename, so
//! no flag and no race can replace an existing CA key. The one exception is CA rotation
//! ([`Replace::CaKeyAfterArchive`]): a live CA key (or `sa.key`) is replaced only when an archive
//! holding its exact bytes is on disk and flushed, checked at the moment of the rename.

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
    /// `kpki ca rotate` only: replace a live CA key (or `sa.key`). The write must be staged with
    /// [`stage_key_replacement`], which names the archive; [`Pending::commit`] then re-reads the
    /// live key and the archive, refuses unless they are byte-identical, flushes the archive and
    /// its directory, and only then renames. Nothing else may replace a CA key.
    CaKeyAfterArchive,
}

/// Creates `dir` and missing parents with exactly `mode` (umask notwithstanding).
pub fn ensure_dir(dir: &Path, mode: u32) -> Result<()> {
    make_dir(dir, mode).map(|_| ())
}

/// [`ensure_dir`], telling whether it made `dir` (then `dir` is empty but for what the caller
/// puts there). A missing parent is looked for only when `dir` cannot be made.
fn make_dir(dir: &Path, mode: u32) -> Result<bool> {
    // Looked at first: most calls are for a directory that is there (every file of a tree is
    // staged into one of a few), and a failed `mkdir` would cost a second call for each.
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(false);
    }
    let mkdir = || fs::DirBuilder::new().mode(mode).create(dir);
    let mut made = mkdir();
    if matches!(&made, Err(e) if e.kind() == std::io::ErrorKind::NotFound) {
        if let Some(parent) = dir.parent() {
            make_dir(parent, mode)?;
        }
        made = mkdir();
    }
    match made {
        Ok(()) => fs::set_permissions(dir, fs::Permissions::from_mode(mode))
            .map(|()| true)
            .map_err(|e| Error::io(dir, e)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(false),
        Err(e) => Err(Error::file(dir, format!("cannot create directory: {e}"))),
    }
}

/// A file written under a temporary name in its final directory, with its final mode, waiting
/// to be moved into place by [`Pending::commit`]. Dropping it removes the temporary file.
///
/// Its descriptor is closed once the bytes are written: a bulk batch stages thousands of files
/// (512 nodes with `--serving` are 1,536), more than the usual limit of 1,024 open files, and
/// the batch's flush (`syncfs`) covers closed files too.
#[derive(Debug)]
pub struct Pending {
    tmp: tempfile::TempPath,
    /// The file system the file is on, read from its descriptor before it was closed.
    device: Option<u64>,
    path: PathBuf,
    replace: Replace,
    /// For [`Replace::CaKeyAfterArchive`]: the archive that must hold the live key's bytes.
    archive: Option<PathBuf>,
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
    stage_with(path, data, mode, dir_mode, replace, false)
}

/// [`stage`], flushing the file's data before its descriptor is closed when `flush` is set.
fn stage_with(
    path: &Path,
    data: &[u8],
    mode: u32,
    dir_mode: u32,
    replace: Replace,
    flush: bool,
) -> Result<Pending> {
    let dir = parent_dir(path);
    // In a directory made just now there is nothing to find at `path`.
    let made = make_dir(&dir, dir_mode)?;
    if let Some(m) = (!made).then(|| fs::symlink_metadata(path).ok()).flatten() {
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
        .map_err(|e| Error::io(path, e))?;
    tmp.write_all(data).map_err(|e| Error::io(path, e))?;
    if flush {
        tmp.as_file().sync_all().map_err(|e| Error::io(path, e))?;
    }
    let device = {
        use std::os::unix::fs::MetadataExt;
        tmp.as_file().metadata().ok().map(|m| m.dev())
    };
    Ok(Pending {
        tmp: tmp.into_temp_path(),
        device,
        path: path.to_path_buf(),
        replace,
        archive: None,
    })
}

/// Stages the replacement of a live CA key (or `sa.key`) by `kpki ca rotate`: committed only if
/// `archive` then holds exactly the bytes of the key being replaced (see
/// [`Replace::CaKeyAfterArchive`]).
pub fn stage_key_replacement(
    path: &Path,
    data: &[u8],
    mode: u32,
    dir_mode: u32,
    archive: &Path,
) -> Result<Pending> {
    let mut p = stage(path, data, mode, dir_mode, Replace::CaKeyAfterArchive)?;
    p.archive = Some(archive.to_path_buf());
    Ok(p)
}

/// Checks that `archive` holds exactly the bytes of `live` (a CA key about to be replaced) and
/// makes the archive durable (file and directory flushed). The check that stands between a
/// rotation and the loss of a CA key.
pub fn verify_archive(archive: &Path, live: &Path) -> Result<()> {
    let kept = match crate::disk::read::read_optional(archive)? {
        Some(b) => b,
        None => {
            return Err(Error::file(
                archive,
                format!(
                    "does not exist: {} is replaced only after it is archived",
                    live.display()
                ),
            ))
        }
    };
    if let Some(current) = crate::disk::read::read_optional(live)? {
        if current != kept {
            return Err(Error::file(
                archive,
                format!(
                    "does not hold the key in {} (it changed since it was archived); the key is not replaced",
                    live.display()
                ),
            ));
        }
    }
    let f = fs::File::open(archive).map_err(|e| Error::file(archive, e))?;
    f.sync_all().map_err(|e| Error::file(archive, e))?;
    let dir = parent_dir(archive);
    let d = fs::File::open(&dir).map_err(|e| Error::file(&dir, e))?;
    d.sync_all().map_err(|e| Error::file(&dir, e))
}

impl Pending {
    /// The file system the staged file is on (its descriptor's device), if it can be read.
    pub fn device(&self) -> Option<u64> {
        self.device
    }

    /// Renames the temporary file over the final name (no-clobber for [`Replace::Never`]).
    pub fn commit(self) -> Result<()> {
        let path = self.path;
        match self.replace {
            Replace::Allow => self.tmp.persist(&path).map(|_| ()).map_err(|e| Error::file(&path, e.error)),
            Replace::CaKeyAfterArchive => {
                let Some(archive) = &self.archive else {
                    return Err(Error::file(&path, "a CA key is replaced only with an archive of it (internal: none named)"));
                };
                verify_archive(archive, &path)?;
                self.tmp.persist(&path).map(|_| ()).map_err(|e| Error::file(&path, e.error))
            }
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

pub(crate) fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Flushes every dirty file of the file system holding `dir` in one go (syncfs): one journal
/// commit instead of one per file.
pub fn sync_filesystem(dir: &Path) -> Result<()> {
    let f = fs::File::open(dir).map_err(|e| Error::io(dir, e))?;
    rustix::fs::syncfs(&f)
        .map_err(|e| Error::file(dir, format!("cannot flush the file system: {e}")))
}

/// Makes the renames in `dir` durable.
pub fn sync_dir(dir: &Path) {
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Above this many changed directories, [`sync_dirs`] flushes each file system once instead of
/// fsyncing each directory.
pub const DIR_FSYNC_MAX: usize = 8;

/// Makes the renames (and the directories made) in `dirs` durable; each directory comes with
/// its file system's device number when known. A few directories are fsynced one by one; a
/// batch that touched more (a bulk `kpki nodes` chunk: a new directory per node) is made
/// durable with one `syncfs` per file system in `devices` (device number, a directory on it):
/// it writes every dirty directory block and inode of that file system, the same guarantee
/// for all of them with one device flush instead of one per directory. A directory whose file
/// system is not known is fsynced on its own.
pub fn sync_dirs(dirs: &[(PathBuf, Option<u64>)], devices: &[(u64, PathBuf)]) -> Result<()> {
    if dirs.len() <= DIR_FSYNC_MAX {
        for (d, _) in dirs {
            sync_dir(d);
        }
        return Ok(());
    }
    let mut flushed: Vec<u64> = Vec::new();
    for (d, dev) in dirs {
        match dev.and_then(|v| devices.iter().find(|(x, _)| *x == v)) {
            Some((v, on)) => {
                if !flushed.contains(v) {
                    flushed.push(*v);
                    sync_filesystem(on)?;
                }
            }
            None => sync_dir(d),
        }
    }
    Ok(())
}

/// Writes `data` to `path` atomically with exactly `mode`: temp file, fsync, rename, dir fsync.
pub fn write_atomic(
    path: &Path,
    data: &[u8],
    mode: u32,
    dir_mode: u32,
    replace: Replace,
) -> Result<()> {
    let p = stage_with(path, data, mode, dir_mode, replace, true)?;
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
    let m = f.metadata().map_err(|e| Error::io(path, e))?;
    if !m.is_file() {
        return Err(Error::file(
            path,
            "is not a regular file; its mode is left alone",
        ));
    }
    f.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(|e| Error::io(path, e))
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
    let file = fs::File::open(dir).map_err(|e| Error::io(dir, e))?;
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
/// group or others may write to, or that is owned by someone other than root or the user running
/// kpki: whoever can write there, or owns it, can swap files under the tree. A sticky directory
/// such as /tmp is refused as the target itself, but kpki may create its directories inside one.
/// Every ancestor above it is checked the same way (sticky allowed), up to `/`: a 0777 parent lets
/// anyone rename the whole tree away and put their own in its place.
pub fn check_dir_secure(dir: &Path) -> Result<()> {
    check_dirs_secure(std::iter::once(dir))
}

/// [`check_dir_secure`] for several directories, each ancestor looked at once (a tree's
/// directories share all but their last components).
pub fn check_dirs_secure<'a>(dirs: impl IntoIterator<Item = &'a Path>) -> Result<()> {
    let mut checked = std::collections::HashSet::new();
    for dir in dirs {
        check_dir_secure_once(dir, &mut checked)?;
    }
    Ok(())
}

fn check_dir_secure_once(
    dir: &Path,
    checked: &mut std::collections::HashSet<PathBuf>,
) -> Result<()> {
    let abs = crate::model::layout::normalize(dir);
    for d in abs.ancestors() {
        // The directory itself is judged without the sticky allowance, its ancestors with it:
        // an ancestor already judged as an ancestor needs no second look.
        if d != abs && !checked.insert(d.to_path_buf()) {
            break;
        }
        let m = match fs::metadata(d) {
            Ok(m) => m,
            Err(_) => continue, // to be created by kpki, inside the next existing ancestor
        };
        let shown = if d == abs {
            dir.to_path_buf()
        } else {
            d.to_path_buf()
        };
        let mode = m.mode() & 0o7777;
        // kpki creates the missing directories itself inside a sticky ancestor such as /tmp;
        // nobody else can then rename or replace them.
        let sticky_ok = d != abs && mode & 0o1000 != 0;
        if mode & 0o022 != 0 && !sticky_ok {
            return Err(Error::file(
                &shown,
                format!("is writable by group or others (mode {mode:04o}); fix its mode or pass --allow-insecure-dir"),
            ));
        }
        check_owner(&shown, m.uid())?;
    }
    Ok(())
}

/// The user kpki runs as.
fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

fn check_owner(dir: &Path, uid: u32) -> Result<()> {
    let me = euid();
    if uid != 0 && uid != me {
        return Err(Error::file(
            dir,
            format!(
                "is owned by uid {uid}, neither root nor the user running kpki (uid {me}): its owner can swap what is below it; change its owner or pass --allow-insecure-dir"
            ),
        ));
    }
    Ok(())
}

/// What a planned write does to its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteKind<'a> {
    /// New contents: a temporary file renamed over the path.
    Contents,
    /// A file already written under another name (a staged certificate) moved onto the path.
    Rename,
    /// Only the mode of the existing file (a `repair` step).
    Mode,
    /// A rotation's archive of the live key `of`: the path (inside the rotation folder) is
    /// written no-clobber with the key's bytes, or, when it exists, checked to hold them and
    /// flushed.
    KeyArchive {
        /// The live key archived.
        of: &'a Path,
    },
    /// `kpki ca rotate issue` only: new contents for a live CA key (or the service-account
    /// key). Refused unless the policy was made by [`WritePolicy::for_rotation`] and an earlier
    /// write of the same batch is the [`WriteKind::KeyArchive`] of this key at `archive`.
    CaKeyAfterArchive {
        /// The archive that holds the key being replaced.
        archive: &'a Path,
    },
}

/// One write a command plans, checked with every other before the first byte is written.
#[derive(Debug, Clone, Copy)]
pub struct PlannedWrite<'a> {
    /// The entry the write is for.
    pub entry: &'a str,
    /// The path written.
    pub path: &'a Path,
    /// What the write does.
    pub kind: WriteKind<'a>,
}

/// Where a command may write and what it must never write over: the one path check every
/// writing command runs over all its planned writes before the first byte is written.
///
/// A write must be inside one of the roots (the cert dir, the kubeconfig dir, the `--out` file's
/// directory, a bundle's external-etcd directories), with no `..` component and no symbolic link
/// between the root and the file; every directory below the root must be a real directory owned by
/// root or the running user and not writable by group or others (the roots and their ancestors
/// are checked by [`check_dir_secure`]); the file itself must not be a link, a directory or a
/// special file. It must never land on an existing CA key (only CA rotation, which archives the
/// old key first, may replace one) nor on a file that belongs to another entry, and no two writes
/// of one run may share a path.
#[derive(Debug, Clone, Default)]
pub struct WritePolicy {
    /// Directories the writes must stay inside.
    pub roots: Vec<PathBuf>,
    /// Files that belong to an entry (normalized path -> entry).
    pub claims: std::collections::HashMap<PathBuf, String>,
    /// CA key files (normalized) and what they belong to ("CA ca"): never written over once
    /// they exist.
    pub ca_keys: Vec<(PathBuf, String)>,
    /// `--allow-insecure-dir`: skip the owner and mode checks (never the link, `..`, root, CA key
    /// and other-entry checks).
    pub allow_insecure_dir: bool,
    /// Refuse to replace an existing file that holds a private key unless it is one of the
    /// writing entry's own files (for output outside the tree: `--out`).
    pub protect_key_files: bool,
    /// The rotation folder (`<cert dir>/rotation`), set only by [`WritePolicy::for_rotation`]:
    /// the one policy under which an existing CA key may be replaced
    /// ([`WriteKind::CaKeyAfterArchive`], its archive inside this folder). Not public: no caller
    /// outside the crate can grant the exception.
    pub(crate) rotation: Option<PathBuf>,
}

impl WritePolicy {
    /// The policy for a resolved tree: its cert dir and kubeconfig dir, every file of every entry,
    /// its CA keys.
    pub fn for_tree(desired: &crate::model::resolve::Desired, allow_insecure_dir: bool) -> Self {
        use crate::model::layout::normalize;
        let mut p = WritePolicy {
            roots: vec![
                normalize(&desired.inputs.cert_dir),
                normalize(&desired.inputs.kubeconfig_dir),
            ],
            allow_insecure_dir,
            ..Default::default()
        };
        p.claim_all(desired);
        // An entry outside both (an `--out` file, a node's files) has its own directory as root.
        let mut outside: Vec<PathBuf> = p
            .claims
            .keys()
            .filter(|f| !p.roots.iter().any(|r| f.starts_with(r)))
            .filter_map(|f| f.parent().map(Path::to_path_buf))
            .collect();
        // Sorted and deduplicated (a bulk run has thousands of node directories: no quadratic
        // membership test).
        outside.sort_unstable();
        outside.dedup();
        outside.retain(|r| !p.roots.contains(r));
        p.roots.extend(outside);
        p
    }

    /// The policy for a resolved set of entries that must all lie below one directory (a bulk
    /// run's output directory): the same claims and CA keys as [`WritePolicy::for_tree`], `root`
    /// the only root.
    pub fn under(
        desired: &crate::model::resolve::Desired,
        root: PathBuf,
        allow_insecure_dir: bool,
    ) -> Self {
        let mut p = WritePolicy {
            roots: vec![root],
            allow_insecure_dir,
            ..Default::default()
        };
        p.claim_all(desired);
        p
    }

    /// Records every file of every entry as that entry's, and every CA key.
    fn claim_all(&mut self, desired: &crate::model::resolve::Desired) {
        use crate::model::resolve::Entry;
        let paths = crate::model::layout::Normalizer::default();
        let normalize = |p: &Path| paths.normalize(p);
        self.claims.reserve(2 * desired.entries.len());
        for e in &desired.entries {
            let name = e.name();
            let mut claim = |f: &Path| {
                self.claims.insert(normalize(f), name.to_string());
            };
            if let Some(csr) = e.csr_path() {
                claim(&csr);
            }
            match e {
                Entry::Ca(c) => {
                    self.ca_keys
                        .push((normalize(&c.key_path), format!("CA {}", c.name)));
                    claim(&c.cert_path);
                    claim(&c.key_path);
                }
                Entry::Leaf(c) => {
                    claim(&c.cert_path);
                    claim(&c.key_path);
                }
                Entry::KeyPair(k) => {
                    claim(&k.key_path);
                    claim(&k.pub_path);
                }
                Entry::Kubeconfig(k) => {
                    claim(&k.path);
                    claim(&k.signed_path());
                }
            }
        }
    }

    /// Adds the entries of `outside` (credentials issued outside the tree: `kubeconfig user`,
    /// `kubeconfig bootstrap`) to a tree's policy: their directories become roots, their files
    /// theirs unless the tree claims them already (then the write is refused), and files
    /// holding a private key are never replaced.
    pub fn with_outside(mut self, outside: &crate::model::resolve::Desired) -> Self {
        let extra = WritePolicy::for_tree(outside, self.allow_insecure_dir);
        for (f, e) in extra.claims {
            if !self.roots.iter().any(|r| f.starts_with(r)) {
                if let Some(dir) = f.parent() {
                    self.roots.push(dir.to_path_buf());
                }
            }
            self.claims.entry(f).or_insert(e);
        }
        self.protect_key_files = true;
        self
    }

    /// Also protects every key the disk shows to be a CA's, whatever entry the spec now gives its
    /// path to: a key file beside a CA certificate it matches (a spec that moves a leaf onto an
    /// old CA's files must not re-issue over that CA's key).
    pub fn protect_ca_keys_on_disk(
        &mut self,
        disk: &crate::disk::Disk,
        desired: &crate::model::resolve::Desired,
    ) {
        use crate::disk::read::Observed;
        use crate::disk::Seen;
        use crate::model::resolve::Entry;
        for e in &desired.entries {
            let (Entry::Ca(c) | Entry::Leaf(c)) = e else {
                continue;
            };
            let Some(Seen::Cert {
                cert: Observed::Present(cf),
                key: Observed::Present(kf),
            }) = disk.entries.get(&c.name)
            else {
                continue;
            };
            let Ok(info) = crate::x509::inspect::info(&cf.der) else {
                continue;
            };
            if info.is_ca && kf.key.matches_spki(&info.spki) {
                let p = crate::model::layout::normalize(&c.key_path);
                if !self.ca_keys.iter().any(|(k, _)| *k == p) {
                    self.ca_keys
                        .push((p, format!("the CA certificate {}", c.cert_path.display())));
                }
            }
        }
    }

    /// The policy of `kpki ca rotate`: the tree's ([`WritePolicy::for_tree`]), with the
    /// service-account key and every key in the rotation folder (the staged and the archived CA
    /// keys) protected like a CA key, and the one exception to the never-overwrite rule: a live
    /// CA key (or the service-account key) may be replaced by a [`WriteKind::CaKeyAfterArchive`]
    /// write whose archive, inside the rotation folder, an earlier write of the same batch makes
    /// or checks.
    pub fn for_rotation(
        desired: &crate::model::resolve::Desired,
        allow_insecure_dir: bool,
    ) -> Self {
        use crate::model::layout::normalize;
        use crate::model::resolve::Entry;
        let mut p = WritePolicy::for_tree(desired, allow_insecure_dir);
        for e in &desired.entries {
            if let Entry::KeyPair(k) = e {
                p.ca_keys
                    .push((normalize(&k.key_path), format!("key pair {}", k.name)));
            }
        }
        let root = normalize(&crate::disk::rotation::Layout::of(&desired.inputs.cert_dir).root);
        // The staged and archived keys of rotations in progress.
        if let Ok(rd) = fs::read_dir(&root) {
            for d in rd.flatten() {
                for side in ["old", "new"] {
                    let k = d.path().join(format!("{side}.key"));
                    if fs::symlink_metadata(&k).is_ok() {
                        let what = format!(
                            "the rotation of {} ({side})",
                            d.file_name().to_string_lossy()
                        );
                        p.ca_keys.push((normalize(&k), what));
                    }
                }
            }
        }
        p.rotation = Some(root);
        p
    }

    /// Checks every planned write (see [`WritePolicy`]); the first problem is the error.
    pub fn check(&self, writes: &[PlannedWrite<'_>]) -> Result<()> {
        let paths = crate::model::layout::Normalizer::default();
        let normalize = |p: &Path| paths.normalize(p);
        let mut seen = std::collections::HashSet::new();
        for (i, w) in writes.iter().enumerate() {
            if w.path
                .components()
                .any(|c| c == std::path::Component::ParentDir)
            {
                return Err(Error::file(
                    w.path,
                    "contains a '..' component; kpki writes only to paths inside its directories",
                ));
            }
            let p = normalize(w.path);
            if !seen.insert(p.clone()) {
                return Err(Error::file(
                    w.path,
                    "would be written twice in one run (two entries name this file)",
                ));
            }
            let Some(root) = self
                .roots
                .iter()
                .filter(|r| p.starts_with(r) && p != **r)
                .max_by_key(|r| r.as_os_str().len())
            else {
                return Err(Error::file(
                    w.path,
                    format!(
                        "is outside the directories this command writes ({})",
                        self.roots
                            .iter()
                            .map(|r| r.display().to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            };
            if let WriteKind::CaKeyAfterArchive { archive } = w.kind {
                self.check_key_replacement(w, &p, archive, &writes[..i])?;
            } else if let WriteKind::KeyArchive { .. } = w.kind {
                if !self.rotation.as_ref().is_some_and(|r| p.starts_with(r)) {
                    return Err(Error::file(
                        w.path,
                        "is not inside the rotation folder; kpki archives a CA key only there",
                    ));
                }
            } else if let Some((_, ca)) = self.ca_keys.iter().find(|(k, _)| *k == p) {
                if w.kind != WriteKind::Mode && fs::symlink_metadata(&p).is_ok() {
                    return Err(Error::Conflict {
                        entry: w.entry.to_string(),
                        path: w.path.to_path_buf(),
                        message: format!(
                            "is the key of {ca} and exists already; kpki never overwrites a CA key (only a CA rotation, which archives it first, may)"
                        ),
                    });
                }
            }
            if let Some(owner) = self.claims.get(&p).filter(|o| *o != w.entry) {
                return Err(Error::Conflict {
                    entry: w.entry.to_string(),
                    path: w.path.to_path_buf(),
                    message: format!(
                        "is the file of entry {owner}; kpki never writes one entry's file for another"
                    ),
                });
            }
            self.check_components(root, &p)?;
            if w.kind != WriteKind::Mode {
                check_target(w.path)?;
            }
            if self.protect_key_files && w.kind == WriteKind::Contents {
                if let Ok(Some(b)) = crate::disk::read::read_optional(w.path) {
                    if b.windows(11).any(|x| x == b"PRIVATE KEY") {
                        return Err(Error::file(
                            w.path,
                            "holds a private key; kpki never replaces a key file with this output (choose another file)",
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// The one exception to the never-overwrite rule (see [`WriteKind::CaKeyAfterArchive`]):
    /// only a rotation's policy, only over a CA key it knows, and only when an earlier write of
    /// the batch archives that very key at the named path inside the rotation folder.
    fn check_key_replacement(
        &self,
        w: &PlannedWrite<'_>,
        p: &Path,
        archive: &Path,
        earlier: &[PlannedWrite<'_>],
    ) -> Result<()> {
        use crate::model::layout::normalize;
        let refuse = |why: &str| {
            Err(Error::Conflict {
                entry: w.entry.to_string(),
                path: w.path.to_path_buf(),
                message: format!("is not replaced: {why}"),
            })
        };
        let Some(root) = &self.rotation else {
            return refuse("only `kpki ca rotate` replaces a CA key");
        };
        if !self.ca_keys.iter().any(|(k, _)| k == p) || p.starts_with(root) {
            return refuse("it is not a live CA key; nothing else is replaced this way");
        }
        let archive = normalize(archive);
        if !archive.starts_with(root) {
            return refuse("its archive is not inside the rotation folder");
        }
        let archived = earlier.iter().any(|e| {
            normalize(e.path) == archive
                && matches!(e.kind, WriteKind::KeyArchive { of } if normalize(of) == p)
        });
        if !archived {
            return refuse(&format!(
                "no earlier step of this run archives it to {}",
                archive.display()
            ));
        }
        Ok(())
    }

    /// Every directory strictly between `root` and the file: a real directory (not a link), owned
    /// by root or the running user, not writable by group or others. A missing one ends the walk:
    /// kpki creates it and what is below.
    pub(crate) fn check_components(&self, root: &Path, file: &Path) -> Result<()> {
        let Ok(rel) = file.strip_prefix(root) else {
            return Ok(());
        };
        let mut d = root.to_path_buf();
        let comps: Vec<_> = rel.components().collect();
        for c in comps.iter().take(comps.len().saturating_sub(1)) {
            d.push(c);
            let m = match fs::symlink_metadata(&d) {
                Ok(m) => m,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(Error::io(&d, e)),
            };
            if m.file_type().is_symlink() {
                let to = fs::read_link(&d)
                    .map(|t| t.display().to_string())
                    .unwrap_or_default();
                let what = if fs::metadata(&d).is_err() {
                    "a dangling symbolic link"
                } else {
                    "a symbolic link"
                };
                return Err(Error::file(
                    &d,
                    format!("is {what} (to {to}); kpki does not write through linked directories"),
                ));
            }
            if !m.is_dir() {
                return Err(Error::file(&d, "is not a directory"));
            }
            if !self.allow_insecure_dir {
                let mode = m.mode() & 0o7777;
                if mode & 0o022 != 0 {
                    return Err(Error::file(
                        &d,
                        format!("is writable by group or others (mode {mode:04o}); fix its mode or pass --allow-insecure-dir"),
                    ));
                }
                check_owner(&d, m.uid())?;
            }
        }
        Ok(())
    }
}

/// The file a write replaces, if any, must be a regular file: never a link (kpki does not write
/// through links), a directory or a special file.
fn check_target(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Err(Error::file(
            path,
            "is a symbolic link; kpki does not write through links",
        )),
        Ok(m) if m.is_dir() => Err(Error::file(path, "is a directory, expected a file")),
        Ok(m) if !m.is_file() => Err(Error::file(
            path,
            "is not a regular file (a FIFO, socket or device); kpki does not replace it",
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    fn mode_of(p: &Path) -> u32 {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(p).map(|m| m.mode() & 0o7777).unwrap_or(0)
    }

    #[test]
    fn only_a_rotation_policy_replaces_a_ca_key_and_only_after_archiving_that_key() {
        let dir = tempfile::tempdir().expect("tmp");
        let root = crate::model::layout::normalize(dir.path());
        let key = root.join("ca.key");
        let sa = root.join("sa.key");
        let leaf = root.join("apiserver.key");
        let archive = root.join("rotation/ca/old.key");
        let elsewhere = root.join("old-ca.key");
        for f in [&key, &sa, &leaf, &archive] {
            write_atomic(f, b"k", 0o600, 0o700, Replace::Never).expect("write");
        }
        let tree = WritePolicy {
            roots: vec![root.clone()],
            ca_keys: vec![
                (key.clone(), "CA ca".into()),
                (sa.clone(), "key pair sa".into()),
            ],
            allow_insecure_dir: true,
            ..Default::default()
        };
        let rotation = WritePolicy {
            rotation: Some(root.join("rotation")),
            ..tree.clone()
        };
        let w = |path: &'static Path, kind| PlannedWrite {
            entry: "ca",
            path,
            kind,
        };
        let leak = |p: &PathBuf| -> &'static Path { Box::leak(p.clone().into_boxed_path()) };
        let (key, sa, leaf, archive, elsewhere) = (
            leak(&key),
            leak(&sa),
            leak(&leaf),
            leak(&archive),
            leak(&elsewhere),
        );
        let archived = w(archive, WriteKind::KeyArchive { of: key });
        let replace = w(key, WriteKind::CaKeyAfterArchive { archive });
        let refused = |p: &WritePolicy, ws: &[PlannedWrite<'_>]| {
            let e = p.check(ws).expect_err("refused");
            e.to_string()
        };
        // Plain contents over a CA key: refused by every policy.
        assert!(
            refused(&tree, &[w(key, WriteKind::Contents)]).contains("never overwrites a CA key")
        );
        assert!(refused(&rotation, &[w(key, WriteKind::Contents)])
            .contains("never overwrites a CA key"));
        // The exception, outside a rotation's policy: refused even after the archive step.
        assert!(refused(&tree, &[archived, replace]).contains("not inside the rotation folder"));
        assert!(refused(&tree, &[replace]).contains("only `kpki ca rotate`"));
        // A rotation's policy: no archive step, or the step after the replacement, refused.
        assert!(refused(&rotation, &[replace]).contains("no earlier step"));
        assert!(refused(&rotation, &[replace, archived]).contains("no earlier step"));
        // The archive of another key, or at another path, does not count.
        let of_sa = w(archive, WriteKind::KeyArchive { of: sa });
        assert!(refused(&rotation, &[of_sa, replace]).contains("no earlier step"));
        // An archive outside the rotation folder: refused.
        let outside = w(elsewhere, WriteKind::KeyArchive { of: key });
        assert!(refused(&rotation, &[outside]).contains("not inside the rotation folder"));
        let to_outside = w(key, WriteKind::CaKeyAfterArchive { archive: elsewhere });
        assert!(refused(&rotation, &[to_outside]).contains("not inside the rotation folder"));
        // A file that is not a CA key (a leaf's key, the archive itself) is not replaced this way.
        let leaf_archive = w(archive, WriteKind::KeyArchive { of: leaf });
        let on_leaf = w(leaf, WriteKind::CaKeyAfterArchive { archive });
        assert!(refused(&rotation, &[leaf_archive, on_leaf]).contains("not a live CA key"));
        // Archived first, then replaced, under a rotation's policy: accepted (CA and SA key).
        rotation.check(&[archived, replace]).expect("accepted");
        let sa_archive = w(archive, WriteKind::KeyArchive { of: sa });
        let sa_replace = PlannedWrite {
            entry: "sa",
            ..w(sa, WriteKind::CaKeyAfterArchive { archive })
        };
        rotation.check(&[sa_archive, sa_replace]).expect("accepted");
    }

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
    fn a_ca_key_is_replaced_only_over_a_byte_identical_flushed_archive() {
        let dir = tempfile::tempdir().expect("tmp");
        let live = dir.path().join("ca.key");
        let archive = dir.path().join("rotation/ca/old.key");
        write_atomic(&live, b"old key", 0o600, 0o755, Replace::Never).expect("live");
        // No archive: refused, the live key untouched.
        let p = stage_key_replacement(&live, b"new key", 0o600, 0o700, &archive).expect("stage");
        let e = p.commit().expect_err("no archive");
        assert!(
            e.to_string()
                .contains("is replaced only after it is archived"),
            "{e}"
        );
        assert_eq!(fs::read(&live).expect("read"), b"old key");
        // An archive with other bytes: refused.
        write_atomic(&archive, b"old key\n", 0o600, 0o700, Replace::Never).expect("archive");
        let p = stage_key_replacement(&live, b"new key", 0o600, 0o700, &archive).expect("stage");
        let e = p.commit().expect_err("different archive");
        assert!(e.to_string().contains("does not hold the key"), "{e}");
        assert_eq!(fs::read(&live).expect("read"), b"old key");
        // A byte copy: replaced, the archive kept.
        fs::remove_file(&archive).expect("rm");
        write_atomic(&archive, b"old key", 0o600, 0o700, Replace::Never).expect("archive");
        let p = stage_key_replacement(&live, b"new key", 0o600, 0o700, &archive).expect("stage");
        p.commit().expect("replaced");
        assert_eq!(fs::read(&live).expect("read"), b"new key");
        assert_eq!(fs::read(&archive).expect("read"), b"old key");
        assert_eq!(mode_of(&live), 0o600);
        // The mode alone, without the archive, is refused too (no other path replaces a key).
        let p = stage(&live, b"other", 0o600, 0o755, Replace::CaKeyAfterArchive).expect("stage");
        assert!(p.commit().is_err());
        assert_eq!(fs::read(&live).expect("read"), b"new key");
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
