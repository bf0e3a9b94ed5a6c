//! Carrying a plan out.
//!
//! Everything is computed in memory first (keys in parallel, then signatures in dependency order,
//! CAs first); only when every entry is ready are files written, key before certificate. A failure
//! before the write phase leaves the tree untouched.

pub(crate) mod rotate;
pub mod write;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use rayon::prelude::*;
use time::OffsetDateTime;

use crate::apply::write::Replace;
use crate::disk::read::Observed;
use crate::disk::{Disk, Seen};
use crate::entropy::Entropy;
use crate::error::{Error, Result};
use crate::inputs::BACKDATE;
use crate::kubeconfig::{Kubeconfig, Single};
use crate::model::resolve::{Desired, Entry};
use crate::plan::{Action, Plan};
use crate::x509::issue::{cert_pem, issue, Issuance, Issuer};
use crate::x509::keys::{KeyAlgorithm, PrivateKey};

/// How to run: the clock, the randomness and the parallelism.
pub struct Context<'a> {
    /// The one start instant every validity is computed from.
    pub now: OffsetDateTime,
    /// Randomness (serials, keys).
    pub entropy: &'a dyn Entropy,
    /// Threads for key generation (0 = all cores; at most [`crate::limits::max_jobs`]).
    pub jobs: usize,
}

/// One file written.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Written {
    /// Entry name.
    pub entry: String,
    /// File path.
    pub path: PathBuf,
}

/// A file to write.
struct Out {
    entry: String,
    path: PathBuf,
    data: Vec<u8>,
    mode: u32,
    /// Mode of directories created for it.
    dir_mode: u32,
    replace: Replace,
    /// Move this already written file into place instead of writing `data`.
    rename_from: Option<PathBuf>,
    /// Only set the mode of the existing file (a `repair` step).
    chmod_only: bool,
    /// A rotation's replacement of a live CA key: the archive that must hold its bytes
    /// ([`Replace::CaKeyAfterArchive`]).
    key_archive: Option<PathBuf>,
    /// Write nothing: `path` (an archive) must hold exactly the bytes of this live key, and is
    /// flushed (a rotation's archive step before a key replacement).
    verify_of: Option<PathBuf>,
}

impl Out {
    fn write(
        entry: &str,
        path: &std::path::Path,
        data: Vec<u8>,
        mode: u32,
        dir_mode: u32,
        replace: Replace,
    ) -> Out {
        Out {
            entry: entry.to_string(),
            path: path.to_path_buf(),
            data,
            mode,
            dir_mode,
            replace,
            rename_from: None,
            chmod_only: false,
            key_archive: None,
            verify_of: None,
        }
    }
}

/// The files issuing `e` writes (its final names).
pub fn targets(e: &Entry) -> Vec<PathBuf> {
    match e {
        Entry::Ca(c) | Entry::Leaf(c) => vec![c.key_path.clone(), c.cert_path.clone()],
        Entry::KeyPair(k) => vec![k.key_path.clone(), k.pub_path.clone()],
        Entry::Kubeconfig(k) => vec![k.path.clone()],
    }
}

/// Where a replacement certificate waits while its key is swapped in (see [`recover_pending`]).
pub fn staged_path(cert: &std::path::Path) -> PathBuf {
    let mut s = cert.as_os_str().to_owned();
    s.push(".kpki-new");
    PathBuf::from(s)
}

/// Finishes or undoes a pair replacement that a crash interrupted. A renewal writes the new
/// certificate to `<cert>.kpki-new`, then swaps the key in, then renames the certificate: if the
/// staged certificate matches the key on disk the swap happened and is completed; otherwise the
/// old pair is intact and the staged file is dropped. Leftover temp files of killed runs are
/// removed. Returns the files it changed.
pub fn recover_pending(desired: &Desired) -> Result<Vec<PathBuf>> {
    let mut changed = Vec::new();
    // Temp files a killed run left behind: never under a final name, never read, but clutter;
    // only a kpki holding the lock may remove them. Only below the locked cert dir: a kubeconfig
    // dir may be shared with another tree's run.
    let mut dirs: Vec<&std::path::Path> = desired
        .entries
        .iter()
        .filter_map(|e| e.main_path().parent())
        .filter(|d| d.starts_with(&desired.inputs.cert_dir))
        .collect();
    dirs.sort();
    dirs.dedup();
    for dir in dirs {
        changed.extend(remove_temporaries(dir)?);
    }
    for e in &desired.entries {
        match e {
            Entry::Leaf(c) | Entry::Ca(c) => {
                changed.extend(recover_pair(&c.cert_path, &c.key_path)?);
            }
            // A kubeconfig whose client certificate and key are files in the tree is renewed
            // like a leaf pair, so an interrupted renewal is finished or undone the same way.
            Entry::Kubeconfig(k) => {
                if let Observed::Present(kc) = crate::disk::read_kubeconfig(&k.path) {
                    if let (Some(c), Some(key)) = (&kc.cert_ref, &kc.key_ref) {
                        if c.path != key.path
                            && crate::plan::credentials_in_tree(desired, &c.path, &key.path)
                        {
                            changed.extend(recover_pair(&c.path, &key.path)?);
                        }
                    }
                }
            }
            Entry::KeyPair(_) => {}
        }
    }
    Ok(changed)
}

/// Removes the temporary files (`.<name>[.<random>].kpki-tmp`) a killed run left in `dir`; the
/// caller holds the lock that rules out a live writer. Returns what it removed.
pub fn remove_temporaries(dir: &std::path::Path) -> Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Ok(removed);
    };
    for f in rd.flatten() {
        let name = f.file_name().to_string_lossy().into_owned();
        if name.starts_with('.')
            && name.ends_with(".kpki-tmp")
            && f.file_type().map(|t| t.is_file()).unwrap_or(false)
        {
            std::fs::remove_file(f.path()).map_err(|e| Error::io(f.path(), e))?;
            removed.push(f.path());
        }
    }
    Ok(removed)
}

/// Completes (staged certificate matches the key on disk) or drops (it does not) one
/// interrupted pair replacement; returns the file it changed, if any.
pub fn recover_pair(cert: &std::path::Path, key: &std::path::Path) -> Result<Option<PathBuf>> {
    let staged = staged_path(cert);
    if !staged.exists() {
        return Ok(None);
    }
    let roll_forward = match (
        crate::disk::read::read_cert(&staged),
        crate::disk::read::read_key(key),
    ) {
        (Observed::Present(cf), Observed::Present(kf)) => crate::x509::inspect::info(&cf.der)
            .map(|i| kf.key.matches_spki(&i.spki))
            .unwrap_or(false),
        _ => false,
    };
    if roll_forward {
        std::fs::rename(&staged, cert).map_err(|e| Error::io(cert, e))?;
        Ok(Some(cert.to_path_buf()))
    } else {
        std::fs::remove_file(&staged).map_err(|e| Error::io(&staged, e))?;
        Ok(Some(staged))
    }
}

fn backup_name(path: &std::path::Path, now: OffsetDateTime, n: usize) -> PathBuf {
    let stamp = format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    );
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".bak-{stamp}"));
    if n > 0 {
        s.push(format!(".{n}"));
    }
    PathBuf::from(s)
}

/// The backup names of an entry's files: `<file>.bak-<stamp>`, or with `.1`, `.2`, ... when any
/// of them is taken (two renewals in one second, an interrupted renewal). One suffix for all the
/// entry's files, so a key backup and its certificate backup always pair up.
fn backup_names(files: &[(&PathBuf, u32)], now: OffsetDateTime) -> Vec<PathBuf> {
    (0..)
        .map(|n| {
            files
                .iter()
                .map(|(p, _)| backup_name(p, now, n))
                .collect::<Vec<_>>()
        })
        .find(|names| names.iter().all(|p| std::fs::symlink_metadata(p).is_err()))
        .unwrap_or_default()
}

/// Generates keys for all steps that need one, in parallel.
fn generate_keys(
    jobs: &[(String, KeyAlgorithm)],
    entropy: &dyn Entropy,
    threads: usize,
) -> Result<HashMap<String, PrivateKey>> {
    if jobs.is_empty() {
        return Ok(HashMap::new());
    }
    generate_keys_on(&key_pool(threads)?, jobs, entropy)
}

/// The threads keys are generated on (`threads` = 0: one per core).
fn key_pool(threads: usize) -> Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Error::crypto("starting key generation threads", e))
}

/// [`generate_keys`] on `pool`.
fn generate_keys_on(
    pool: &rayon::ThreadPool,
    jobs: &[(String, KeyAlgorithm)],
    entropy: &dyn Entropy,
) -> Result<HashMap<String, PrivateKey>> {
    let keys: Vec<Result<(String, PrivateKey)>> = pool.install(|| {
        // One key per task: RSA key times vary about tenfold, so the threads take keys one at a
        // time (rayon's default splitting would hand each thread runs of four).
        jobs.par_iter()
            .with_max_len(1)
            .map(|(name, alg)| entropy.key(*alg).map(|k| (name.clone(), k)))
            .collect()
    });
    keys.into_iter().collect()
}

/// Applies `plan` (which must have no errors) with the caller's write policy: its roots, the files it protects, and
/// `--allow-insecure-dir`. Every file the plan writes passes [`WritePolicy::check`] before the
/// first byte is written, so a refused run leaves no backups or staged certificates behind.
///
/// [`WritePolicy::check`]: crate::apply::write::WritePolicy::check
pub fn apply_with_policy(
    desired: &Desired,
    disk: &Disk,
    plan: &Plan,
    ctx: &Context<'_>,
    backups: bool,
    policy: crate::apply::write::WritePolicy,
) -> Result<Vec<Written>> {
    prepare(desired, disk, plan, ctx, backups, policy)?.write()
}

/// What [`apply_with_policy`] is about to write: every file made in memory (keys, signatures,
/// YAML) and checked against the write policy, nothing touched on disk yet. Bulk node runs
/// prepare the next batch while the previous one is written.
pub struct Prepared {
    outs: Vec<Out>,
}

impl std::fmt::Debug for Prepared {
    // Not derived: the files hold private keys.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("files", &self.outs.len())
            .finish()
    }
}

impl Prepared {
    /// Writes the prepared files through the one writer (staged, flushed, renamed in order).
    pub fn write(self) -> Result<Vec<Written>> {
        write_all(self.outs)
    }
}

/// The first half of [`apply_with_policy`]: builds every file `plan` writes and checks each
/// against `policy`, writing nothing.
pub fn prepare(
    desired: &Desired,
    disk: &Disk,
    plan: &Plan,
    ctx: &Context<'_>,
    backups: bool,
    policy: crate::apply::write::WritePolicy,
) -> Result<Prepared> {
    let outs = build(desired, disk, plan, ctx, backups)?;
    let writes: Vec<crate::apply::write::PlannedWrite<'_>> = outs
        .iter()
        .map(|o| crate::apply::write::PlannedWrite {
            entry: &o.entry,
            path: &o.path,
            kind: if o.chmod_only {
                crate::apply::write::WriteKind::Mode
            } else if o.rename_from.is_some() {
                crate::apply::write::WriteKind::Rename
            } else {
                crate::apply::write::WriteKind::Contents
            },
        })
        .collect();
    let mut policy = policy;
    policy.protect_ca_keys_on_disk(disk, desired);
    policy.check(&writes)?;
    Ok(Prepared { outs })
}

/// Writes files whose bytes come from elsewhere (a join bundle) through the one writer: staged
/// with their final modes, one flush, renamed in order with no-clobber (an existing file is never
/// replaced), directories created with `dir_mode`. The caller holds the lock and has compared
/// each target with what is on disk.
pub fn write_files(
    files: Vec<(String, PathBuf, Vec<u8>, u32)>,
    dir_mode: u32,
) -> Result<Vec<Written>> {
    let outs = files
        .into_iter()
        .map(|(entry, path, data, mode)| {
            Out::write(&entry, &path, data, mode, dir_mode, Replace::Never)
        })
        .collect();
    write_all(outs)
}

/// A file a plan produces, not written (a kubeconfig for standard output).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// Entry name.
    pub entry: String,
    /// Where it would go.
    pub path: PathBuf,
    /// Its content.
    pub data: Vec<u8>,
    /// Its mode.
    pub mode: u32,
}

/// Carries `plan` out in memory: every file it would write, nothing written (no backups, no
/// repairs). For commands that print what they issue (`kubeconfig user` without `--out`).
pub fn render(
    desired: &Desired,
    disk: &Disk,
    plan: &Plan,
    ctx: &Context<'_>,
) -> Result<Vec<Rendered>> {
    Ok(build(desired, disk, plan, ctx, false)?
        .into_iter()
        .filter(|o| o.rename_from.is_none() && !o.chmod_only)
        .map(|o| Rendered {
            entry: o.entry,
            path: o.path,
            data: o.data,
            mode: o.mode,
        })
        .collect())
}

/// Everything `plan` writes, computed in memory: keys generated in parallel, certificates
/// signed in dependency order. Nothing is touched on disk.
fn build(
    desired: &Desired,
    disk: &Disk,
    plan: &Plan,
    ctx: &Context<'_>,
    backups: bool,
) -> Result<Vec<Out>> {
    plan.check()?;
    crate::limits::check_jobs(ctx.jobs)?;
    let modes = desired.modes;
    let not_before = ctx.now - BACKDATE;

    // 1. keys, in parallel
    let mut key_jobs = Vec::new();
    for (e, s) in desired.entries.iter().zip(&plan.steps) {
        let needs = matches!(
            s.action,
            Action::Create | Action::Renew | Action::Regenerate | Action::Csr
        ) && !s.keep_key;
        let token = matches!(e, Entry::Kubeconfig(k) if k.token.is_some());
        if needs && !token {
            let alg = match e {
                Entry::Ca(c) | Entry::Leaf(c) => c.algorithm,
                Entry::KeyPair(k) => k.algorithm,
                Entry::Kubeconfig(k) => k.algorithm,
            };
            key_jobs.push((e.name().to_string(), alg));
        }
    }
    // The threads that made the keys also make the signatures (see `presignable`).
    let pool = if key_jobs.is_empty() {
        None
    } else {
        Some(key_pool(ctx.jobs)?)
    };
    let mut new_keys = match &pool {
        Some(p) => generate_keys_on(p, &key_jobs, ctx.entropy)?,
        None => HashMap::new(),
    };

    // 2. signatures in entry order (CAs come first, parents before children)
    let mut ca_material: HashMap<String, (Vec<u8>, Arc<PrivateKey>)> = HashMap::new();
    // CA name -> the PEM a kubeconfig trusts: every certificate of the CA file (during a
    // rotation a bundle of the old and the new CA, the signer first).
    let mut ca_certs: HashMap<String, String> = HashMap::new();
    let mut outs: Vec<Out> = Vec::new();
    let existing_key = |name: &str| -> Option<Arc<PrivateKey>> {
        match disk.entries.get(name) {
            Some(Seen::Cert {
                key: Observed::Present(k),
                ..
            })
            | Some(Seen::KeyPair {
                key: Observed::Present(k),
                ..
            }) => PrivateKey::from_pem(k.key.pem()).ok().map(Arc::new),
            _ => None,
        }
    };
    let existing_bundle = |name: &str| -> Option<String> {
        match disk.entries.get(name) {
            Some(Seen::Cert {
                cert: Observed::Present(c),
                ..
            }) => Some(
                std::iter::once(&c.der)
                    .chain(&c.chain)
                    .map(|d| cert_pem(d))
                    .collect(),
            ),
            _ => None,
        }
    };
    let existing_cert = |name: &str| -> Option<Vec<u8>> {
        match disk.entries.get(name) {
            Some(Seen::Cert {
                cert: Observed::Present(c),
                ..
            }) => Some(c.der.clone()),
            _ => None,
        }
    };
    let mut take_key = |name: &str, keep: bool| -> Result<Arc<PrivateKey>> {
        if keep {
            existing_key(name).ok_or_else(|| {
                Error::crypto(
                    name.to_string(),
                    "the existing key could not be loaded again",
                )
            })
        } else {
            new_keys
                .remove(name)
                .map(Arc::new)
                .ok_or_else(|| Error::crypto(name.to_string(), "no key was generated"))
        }
    };
    let issuance = |c_validity: time::Duration| -> Result<Issuance> {
        let not_after = ctx.now.checked_add(c_validity).ok_or_else(|| {
            Error::input(
                "--now",
                format!(
                    "{} plus the validity is past the year 9999",
                    crate::assess::fmt_time(ctx.now)
                ),
            )
        })?;
        Ok(Issuance {
            not_before,
            not_after,
            serial: ctx.entropy.serial()?,
        })
    };

    // Leaf and kubeconfig signatures made before the loop, in parallel (see `presignable`).
    let mut presigned: HashMap<String, Signed> = HashMap::new();
    let mut cas_done = false;
    for (e, s) in desired.entries.iter().zip(&plan.steps) {
        if !cas_done && !matches!(e, Entry::Ca(_)) {
            cas_done = true;
            let min = if pool.is_some() {
                PRESIGN_MIN_POOL
            } else {
                PRESIGN_MIN
            };
            if let Some(jobs) = presignable(desired, plan, &ca_material, min) {
                // Keys and serials drawn in entry order, as the loop would; only the
                // signatures run in parallel.
                let mut work = Vec::with_capacity(jobs.len());
                for (name, profile, ca, validity) in jobs {
                    let key = take_key(name, false)?;
                    work.push((name, profile, ca, key, issuance(validity)?));
                }
                let cas = &ca_material;
                let sign_all = move || -> Vec<Result<(String, Signed)>> {
                    work.into_par_iter()
                        .map(|(name, profile, ca, key, when)| {
                            let der = sign_by(name, profile, ca, &key, cas, when)?;
                            Ok((name.to_string(), (key, der)))
                        })
                        .collect()
                };
                let signed = match &pool {
                    Some(p) => p.install(sign_all),
                    None => sign_all(),
                };
                presigned = signed.into_iter().collect::<Result<_>>()?;
            }
        }
        match (e, s.action) {
            (_, Action::Repair) => {
                for r in &s.repairs {
                    outs.push(Out {
                        chmod_only: true,
                        ..Out::write(
                            e.name(),
                            std::path::Path::new(&r.path),
                            Vec::new(),
                            r.mode,
                            modes.dir,
                            Replace::Allow,
                        )
                    });
                }
                if let Entry::Ca(c) = e {
                    if let (Some(der), Some(pem)) =
                        (existing_cert(&c.name), existing_bundle(&c.name))
                    {
                        if let Some(key) = existing_key(&c.name) {
                            ca_material.insert(c.name.clone(), (der, key));
                        }
                        ca_certs.insert(c.name.clone(), pem);
                    }
                }
            }
            (Entry::Leaf(c), Action::Csr) => {
                let key = take_key(&c.name, false)?;
                let csr_path = e
                    .csr_path()
                    .ok_or_else(|| Error::file(&c.cert_path, "has no request path"))?;
                // kubeadm creates the request directories 0700.
                outs.push(Out::write(
                    &c.name,
                    &c.key_path,
                    key.pem().as_bytes().to_vec(),
                    modes.key,
                    0o700,
                    Replace::Never,
                ));
                outs.push(Out::write(
                    &c.name,
                    &csr_path,
                    crate::x509::csr::csr_pem(&c.profile, &key)?.into_bytes(),
                    modes.key,
                    0o700,
                    Replace::Never,
                ));
            }
            (Entry::Kubeconfig(k), Action::Csr) => {
                let key = take_key(&k.name, false)?;
                let csr_path = e
                    .csr_path()
                    .ok_or_else(|| Error::file(&k.path, "has no request path"))?;
                let cfg = Kubeconfig::single(Single {
                    cluster_name: &k.cluster_name,
                    server: &k.server,
                    ca_pem: None,
                    user: &k.profile.cn,
                    auth: crate::kubeconfig::AuthInfo {
                        client_key_data: Some(base64::Engine::encode(
                            &base64::engine::general_purpose::STANDARD,
                            key.pem(),
                        )),
                        ..Default::default()
                    },
                });
                let yaml = cfg.to_yaml().map_err(|m| Error::file(&k.path, m))?;
                outs.push(Out::write(
                    &k.name,
                    &k.path,
                    yaml.into_bytes(),
                    modes.kubeconfig,
                    0o700,
                    Replace::Never,
                ));
                outs.push(Out::write(
                    &k.name,
                    &csr_path,
                    crate::x509::csr::csr_pem(&k.profile, &key)?.into_bytes(),
                    modes.key,
                    0o700,
                    Replace::Never,
                ));
            }
            (Entry::Ca(c), Action::Reuse | Action::SkipExternal) => {
                if let (Some(der), Some(pem)) = (existing_cert(&c.name), existing_bundle(&c.name)) {
                    if let Some(key) = existing_key(&c.name) {
                        ca_material.insert(c.name.clone(), (der, key));
                    }
                    ca_certs.insert(c.name.clone(), pem);
                }
            }
            (Entry::Kubeconfig(k), Action::Create) if s.keep_key => {
                // generate-csr left the key; an external CA signed `<file>.crt`: embed both.
                let (
                    Some(Seen::Kubeconfig(Observed::Present(existing))),
                    Some(Observed::Present(signed)),
                    Some(ca_pem),
                ) = (
                    disk.entries.get(&k.name),
                    disk.signed.get(&k.name),
                    ca_certs.get(&k.ca),
                )
                else {
                    return Err(Error::file(
                        &k.path,
                        "the externally signed client certificate is no longer readable",
                    ));
                };
                let key = existing
                    .key
                    .as_ref()
                    .ok_or_else(|| Error::file(&k.path, "has no client key"))?;
                let mut cfg = existing.config.clone();
                cfg.set_credentials(Some(ca_pem), &cert_pem(&signed.der), key.pem())
                    .map_err(|m| Error::file(&k.path, m))?;
                let yaml = cfg.to_yaml().map_err(|m| Error::file(&k.path, m))?;
                outs.push(Out::write(
                    &k.name,
                    &k.path,
                    yaml.into_bytes(),
                    modes.kubeconfig,
                    modes.dir,
                    Replace::Allow,
                ));
            }
            (Entry::Ca(c), Action::Create) => {
                let key = take_key(&c.name, s.keep_key)?;
                let der = {
                    let parent = c.ca.as_ref().and_then(|p| ca_material.get(p));
                    let issuer = parent.map(|(d, k)| Issuer {
                        cert_der: d,
                        key: k,
                    });
                    issue(&c.profile, &key, issuer, issuance(c.validity)?)?
                };
                if !s.keep_key {
                    outs.push(Out::write(
                        &c.name,
                        &c.key_path,
                        key.pem().as_bytes().to_vec(),
                        modes.key,
                        modes.dir,
                        Replace::Never,
                    ));
                }
                outs.push(Out::write(
                    &c.name,
                    &c.cert_path,
                    cert_pem(&der).into_bytes(),
                    modes.cert,
                    modes.dir,
                    Replace::Allow,
                ));
                ca_certs.insert(c.name.clone(), cert_pem(&der));
                ca_material.insert(c.name.clone(), (der, key));
            }
            (Entry::Leaf(c), Action::Create | Action::Renew | Action::Regenerate) => {
                let (key, der) = match presigned.remove(&c.name) {
                    Some(done) => done,
                    None => {
                        let key = take_key(&c.name, s.keep_key)?;
                        let ca = c.ca.as_deref().unwrap_or_default();
                        let when = issuance(c.validity)?;
                        let der = sign_by(&c.name, &c.profile, ca, &key, &ca_material, when)?;
                        (key, der)
                    }
                };
                if s.action != Action::Create && backups {
                    push_backups(
                        &mut outs,
                        &c.name,
                        &[(&c.key_path, modes.key), (&c.cert_path, modes.cert)],
                        ctx.now,
                    )?;
                }
                let cert_bytes = cert_pem(&der).into_bytes();
                if s.action != Action::Create && !s.keep_key {
                    // Replacing a pair: stage the cert, swap the key, then move the cert in.
                    let staged = staged_path(&c.cert_path);
                    outs.push(Out::write(
                        &c.name,
                        &staged,
                        cert_bytes,
                        modes.cert,
                        modes.dir,
                        Replace::Allow,
                    ));
                    outs.push(Out::write(
                        &c.name,
                        &c.key_path,
                        key.pem().as_bytes().to_vec(),
                        modes.key,
                        modes.dir,
                        Replace::Allow,
                    ));
                    outs.push(Out {
                        rename_from: Some(staged),
                        ..Out::write(
                            &c.name,
                            &c.cert_path,
                            Vec::new(),
                            modes.cert,
                            modes.dir,
                            Replace::Allow,
                        )
                    });
                    continue;
                }
                if !s.keep_key {
                    outs.push(Out::write(
                        &c.name,
                        &c.key_path,
                        key.pem().as_bytes().to_vec(),
                        modes.key,
                        modes.dir,
                        Replace::Allow,
                    ));
                }
                outs.push(Out::write(
                    &c.name,
                    &c.cert_path,
                    cert_bytes,
                    modes.cert,
                    modes.dir,
                    Replace::Allow,
                ));
            }
            (Entry::KeyPair(k), Action::Create) => {
                let key = take_key(&k.name, s.keep_key)?;
                if !s.keep_key {
                    outs.push(Out::write(
                        &k.name,
                        &k.key_path,
                        key.pem().as_bytes().to_vec(),
                        modes.key,
                        modes.dir,
                        Replace::Allow,
                    ));
                }
                outs.push(Out::write(
                    &k.name,
                    &k.pub_path,
                    key.public_key_pem().into_bytes(),
                    modes.public,
                    modes.dir,
                    Replace::Allow,
                ));
            }
            (Entry::Kubeconfig(k), Action::Create | Action::Renew | Action::Regenerate)
                if k.token.is_some() =>
            {
                let ca_pem = ca_certs.get(&k.ca).ok_or_else(|| {
                    Error::crypto(k.name.clone(), format!("CA {} is not available", k.ca))
                })?;
                let cfg = Kubeconfig::single(Single {
                    cluster_name: &k.cluster_name,
                    server: &k.server,
                    ca_pem: Some(ca_pem),
                    user: &k.user,
                    auth: crate::kubeconfig::AuthInfo {
                        token: k.token.clone(),
                        ..Default::default()
                    },
                });
                let yaml = cfg.to_yaml().map_err(|m| Error::file(&k.path, m))?;
                outs.push(Out::write(
                    &k.name,
                    &k.path,
                    yaml.into_bytes(),
                    modes.kubeconfig,
                    modes.dir,
                    Replace::Allow,
                ));
            }
            (Entry::Kubeconfig(k), Action::Create | Action::Renew | Action::Regenerate) => {
                let (key, der) = match presigned.remove(&k.name) {
                    Some(done) => done,
                    None => {
                        let key = take_key(&k.name, false)?;
                        let when = issuance(k.validity)?;
                        let der = sign_by(&k.name, &k.profile, &k.ca, &key, &ca_material, when)?;
                        (key, der)
                    }
                };
                let ca_pem = match ca_certs.get(&k.ca) {
                    Some(pem) => pem.clone(),
                    // Signed above, so the CA is in this run's material.
                    None => ca_material
                        .get(&k.ca)
                        .map(|(der, _)| cert_pem(der))
                        .unwrap_or_default(),
                };
                let cert_pem_text = cert_pem(&der);
                // Client certificate and key kept as files in the tree: renew those files in
                // place (backups, staged certificate, key swap), the kubeconfig stays as it is.
                if let (
                    Action::Renew | Action::Regenerate,
                    Some(Seen::Kubeconfig(Observed::Present(existing))),
                ) = (s.action, disk.entries.get(&k.name))
                {
                    if let (Some(cr), Some(kr)) = (&existing.cert_ref, &existing.key_ref) {
                        if crate::plan::credentials_in_tree(desired, &cr.path, &kr.path) {
                            renew_files_in_place(
                                &mut outs,
                                &k.name,
                                (&cr.path, &kr.path),
                                (cert_pem_text.into_bytes(), key.pem().as_bytes().to_vec()),
                                &modes,
                                backups.then_some(ctx.now),
                            )?;
                            continue;
                        }
                    }
                }
                let config = match (s.action, disk.entries.get(&k.name)) {
                    (Action::Renew, Some(Seen::Kubeconfig(Observed::Present(existing)))) => {
                        let mut cfg = existing.config.clone();
                        cfg.set_credentials(Some(&ca_pem), &cert_pem_text, key.pem())
                            .map_err(|m| Error::file(&k.path, m))?;
                        if backups {
                            push_backups(
                                &mut outs,
                                &k.name,
                                &[(&k.path, modes.kubeconfig)],
                                ctx.now,
                            )?;
                        }
                        cfg
                    }
                    _ => Kubeconfig::single(Single {
                        cluster_name: &k.cluster_name,
                        server: &k.server,
                        ca_pem: Some(&ca_pem),
                        user: &k.user,
                        auth: Kubeconfig::cert_auth(&cert_pem_text, key.pem()),
                    }),
                };
                let yaml = config.to_yaml().map_err(|m| Error::file(&k.path, m))?;
                outs.push(Out::write(
                    &k.name,
                    &k.path,
                    yaml.into_bytes(),
                    modes.kubeconfig,
                    modes.dir,
                    Replace::Allow,
                ));
            }
            _ => {}
        }
    }

    Ok(outs)
}

/// Batches with more files than this are staged in parallel.
const STAGE_PARALLEL_MIN: usize = 64;

/// Below this many signatures a plan is signed in its loop, one after another.
const PRESIGN_MIN: usize = 32;

/// [`PRESIGN_MIN`] when this plan generated keys: the key generation threads are running
/// already, so even a control-plane tree's 15 signatures are worth sharing out.
const PRESIGN_MIN_POOL: usize = 4;

/// A key and the certificate (DER) signed for it.
type Signed = (Arc<PrivateKey>, Vec<u8>);

/// A signature to make: entry name, profile, CA name, validity.
type PresignJob<'a> = (
    &'a str,
    &'a crate::x509::issue::Profile,
    &'a str,
    time::Duration,
);

/// The signatures [`build`] may make in parallel before its loop, once the CAs are done (the
/// CAs come first in entry order; `ca_material` then holds every signer, read from disk or
/// issued by this plan): at least `min` of them, every CA of the batch before its first other
/// entry, and every other issuing step signing a fresh key or none (a bare key pair), so keys
/// and serials are still drawn in entry order. `None`: sign in the loop.
fn presignable<'a>(
    desired: &'a Desired,
    plan: &Plan,
    ca_material: &HashMap<String, (Vec<u8>, Arc<PrivateKey>)>,
    min: usize,
) -> Option<Vec<PresignJob<'a>>> {
    let mut jobs = Vec::new();
    let mut past_cas = false;
    for (e, s) in desired.entries.iter().zip(&plan.steps) {
        let issues = matches!(
            s.action,
            Action::Create | Action::Renew | Action::Regenerate
        );
        match e {
            Entry::Ca(_) if past_cas => return None,
            Entry::Ca(_) => continue,
            _ => past_cas = true,
        }
        if !issues {
            continue;
        }
        match e {
            Entry::Leaf(c) if !s.keep_key => {
                let ca = c.ca.as_deref()?;
                ca_material.get(ca)?;
                jobs.push((c.name.as_str(), &c.profile, ca, c.validity));
            }
            Entry::Kubeconfig(k) if k.token.is_some() => {}
            Entry::Kubeconfig(k) if s.action == Action::Create && s.keep_key => {}
            Entry::Kubeconfig(k) => {
                ca_material.get(&k.ca)?;
                jobs.push((k.name.as_str(), &k.profile, k.ca.as_str(), k.validity));
            }
            // Signs nothing and draws no serial (its key was generated with the others).
            Entry::KeyPair(_) => {}
            _ => return None,
        }
    }
    (jobs.len() >= min).then_some(jobs)
}

/// Writes what [`build`] computed: every new file to a temporary name with its final mode, one
/// flush for all of them, then renames in order (key before certificate), then the directories.
/// A crash leaves only complete files under final names.
fn write_all(outs: Vec<Out>) -> Result<Vec<Written>> {
    let stage = |o: &Out| -> Result<Option<crate::apply::write::Pending>> {
        let moves = o.rename_from.is_some() || o.chmod_only || o.verify_of.is_some();
        Ok(match (moves, &o.key_archive) {
            (true, _) => None,
            (false, Some(archive)) => Some(crate::apply::write::stage_key_replacement(
                &o.path, &o.data, o.mode, o.dir_mode, archive,
            )?),
            (false, None) => Some(crate::apply::write::stage(
                &o.path, &o.data, o.mode, o.dir_mode, o.replace,
            )?),
        })
    };
    // Staging writes only temporary names, in any order: a large batch (bulk node credentials)
    // is staged on the current thread pool; nothing is renamed before all are staged.
    let pending: Vec<Option<crate::apply::write::Pending>> = if outs.len() > STAGE_PARALLEL_MIN {
        outs.par_iter().map(stage).collect::<Result<_>>()?
    } else {
        outs.iter().map(stage).collect::<Result<_>>()?
    };
    // One flush per file system written to (the cert dir, the kubeconfig dir and a nodes
    // output directory may live on different ones).
    let mut devices: Vec<(u64, PathBuf)> = Vec::new();
    // Directory -> its file system, looked up once per directory.
    let mut dev_of: HashMap<PathBuf, u64> = HashMap::new();
    for (o, p) in outs.iter().zip(&pending).filter(|(o, _)| !o.chmod_only) {
        // A bare file name's directory is `.` (not the empty path, which opens nothing).
        let dir = crate::apply::write::parent_dir(&o.path);
        let dir = dir.as_path();
        if dev_of.contains_key(dir) {
            continue;
        }
        // A staged file's own file system, from its open descriptor (no path to walk); the
        // directory's for a rename.
        let dev = match p {
            Some(p) => p.device(),
            None => {
                use std::os::unix::fs::MetadataExt;
                std::fs::metadata(dir).ok().map(|m| m.dev())
            }
        };
        let Some(dev) = dev else { continue };
        dev_of.insert(dir.to_path_buf(), dev);
        if !devices.iter().any(|(d, _)| *d == dev) {
            devices.push((dev, dir.to_path_buf()));
            crate::apply::write::sync_filesystem(dir)?;
        }
    }
    let mut written = Vec::new();
    let mut dirs: Vec<PathBuf> = Vec::new();
    let mut dir_seen = std::collections::HashSet::new();
    let pause = failpoint_rename_pause();
    for (o, p) in outs.into_iter().zip(pending) {
        if let Some(d) = pause {
            std::thread::sleep(d);
        }
        match (p, &o.rename_from) {
            (Some(p), _) => p.commit()?,
            (None, Some(from)) => {
                // A rotation moves a whole folder into its archive: the parent may be new.
                if let Some(d) = o.path.parent() {
                    crate::apply::write::ensure_dir(d, o.dir_mode)?;
                }
                std::fs::rename(from, &o.path).map_err(|e| Error::io(&o.path, e))?;
                let d = crate::apply::write::parent_dir(from);
                if dir_seen.insert(d.clone()) {
                    dirs.push(d);
                }
            }
            (None, None) if o.chmod_only => crate::apply::write::set_mode(&o.path, o.mode)?,
            (None, None) => {
                if let Some(live) = &o.verify_of {
                    crate::apply::write::verify_archive(&o.path, live)?;
                }
            }
        }
        let d = crate::apply::write::parent_dir(&o.path);
        if dir_seen.insert(d.clone()) {
            dirs.push(d);
        }
        written.push(Written {
            entry: o.entry,
            path: o.path,
        });
    }
    let dirs: Vec<(PathBuf, Option<u64>)> = dirs
        .into_iter()
        .map(|d| {
            let dev = dev_of.get(&d).copied();
            (d, dev)
        })
        .collect();
    crate::apply::write::sync_dirs(&dirs, &devices)?;
    Ok(written)
}

/// Failpoint for the crash-safety harness: widen the gaps between renames so that SIGKILLs land
/// between them (the renames otherwise take microseconds). Only in builds with the `failpoints`
/// feature (the test builds); a release binary reads no such variable.
#[cfg(feature = "failpoints")]
fn failpoint_rename_pause() -> Option<std::time::Duration> {
    std::env::var("KPKI_FAILPOINT_RENAME_PAUSE_US")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map(std::time::Duration::from_micros)
}

#[cfg(not(feature = "failpoints"))]
fn failpoint_rename_pause() -> Option<std::time::Duration> {
    None
}

/// Renews a client certificate and key kept as files (a kubeconfig's `client-certificate` and
/// `client-key`) with the rules of a leaf pair: backups first, then the certificate staged as
/// `<cert>.kpki-new`, the key swapped in, the certificate renamed into place. One file holding
/// both (as the kubelet keeps them) is replaced in one atomic write.
fn renew_files_in_place(
    outs: &mut Vec<Out>,
    entry: &str,
    (cert, key): (&PathBuf, &PathBuf),
    (cert_bytes, key_bytes): (Vec<u8>, Vec<u8>),
    modes: &crate::model::resolve::Modes,
    backup_at: Option<OffsetDateTime>,
) -> Result<()> {
    if cert == key {
        if let Some(now) = backup_at {
            push_backups(outs, entry, &[(cert, modes.key)], now)?;
        }
        let mut both = cert_bytes;
        both.extend_from_slice(&key_bytes);
        outs.push(Out::write(
            entry,
            cert,
            both,
            modes.key,
            modes.dir,
            Replace::Allow,
        ));
        return Ok(());
    }
    if let Some(now) = backup_at {
        push_backups(outs, entry, &[(key, modes.key), (cert, modes.cert)], now)?;
    }
    let staged = staged_path(cert);
    outs.push(Out::write(
        entry,
        &staged,
        cert_bytes,
        modes.cert,
        modes.dir,
        Replace::Allow,
    ));
    outs.push(Out::write(
        entry,
        key,
        key_bytes,
        modes.key,
        modes.dir,
        Replace::Allow,
    ));
    outs.push(Out {
        rename_from: Some(staged),
        ..Out::write(
            entry,
            cert,
            Vec::new(),
            modes.cert,
            modes.dir,
            Replace::Allow,
        )
    });
    Ok(())
}

fn push_backups(
    outs: &mut Vec<Out>,
    entry: &str,
    files: &[(&PathBuf, u32)],
    now: OffsetDateTime,
) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let names = backup_names(files, now);
    for ((path, default_mode), backup) in files.iter().zip(names) {
        if let Some(data) = crate::disk::read::read_optional(path)? {
            let mode = std::fs::metadata(path)
                .map(|m| m.mode() & 0o7777)
                .unwrap_or(*default_mode);
            outs.push(Out::write(
                entry,
                &backup,
                data,
                mode,
                0o700,
                Replace::Never,
            ));
        }
    }
    Ok(())
}

/// Signs `profile` for `key` with CA `ca` of this run (`name` names the entry in the error when
/// that CA is not available).
fn sign_by(
    name: &str,
    profile: &crate::x509::issue::Profile,
    ca: &str,
    key: &PrivateKey,
    cas: &HashMap<String, (Vec<u8>, Arc<PrivateKey>)>,
    when: Issuance,
) -> Result<Vec<u8>> {
    let (der, ca_key) = cas.get(ca).ok_or_else(|| {
        Error::crypto(
            name.to_string(),
            format!("CA {ca} is not available to sign"),
        )
    })?;
    issue(
        profile,
        key,
        Some(Issuer {
            cert_der: der,
            key: ca_key,
        }),
        when,
    )
}
