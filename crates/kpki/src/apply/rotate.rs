//! Carrying a rotation plan out through the one writer.
//!
//! A rotation's steps become the same staged writes as any plan's (temporary files with final
//! modes, one flush per file system, renames in order), followed, for `issue`, by the tree's
//! re-issue built by [`super::build`] against the disk as the new CA sees it. The one write no
//! other command makes, replacing a live CA key or `sa.key`, is [`Replace::CaKeyAfterArchive`]:
//! it is accepted here only after an archive step for the same key earlier in the same batch,
//! and the writer checks the archive's bytes again when it renames.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::write::{PlannedWrite, Replace, WriteKind, WritePolicy};
use super::{build, generate_keys, push_backups, write_all, Context, Out, Written};
use crate::disk::rotation::Layout;
use crate::disk::Disk;
use crate::error::{Error, Result};
use crate::inputs::BACKDATE;
use crate::model::resolve::Desired;
use crate::rotate::plan::{Op, RotationPlan};
use crate::x509::issue::{cert_pem, issue, Issuance};
use crate::x509::keys::PrivateKey;

/// Removes the temporary files a killed rotation left in the rotation folder (the caller holds
/// the tree lock).
pub(crate) fn recover(layout: &Layout) -> Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    let Ok(rd) = std::fs::read_dir(&layout.root) else {
        return Ok(removed);
    };
    removed.extend(super::remove_temporaries(&layout.root)?);
    for d in rd.flatten() {
        if d.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            removed.extend(super::remove_temporaries(&d.path())?);
        }
    }
    Ok(removed)
}

/// Carries `plan` out; returns the files written, in order. Every write passes the rotation's
/// [`WritePolicy`] (the tree's path check, plus the one exception: a live CA key replaced after
/// its archive) before the first byte is written.
pub(crate) fn apply(
    desired: &Desired,
    disk: &Disk,
    plan: &RotationPlan,
    ctx: &Context<'_>,
    allow_insecure_dir: bool,
) -> Result<Vec<Written>> {
    let outs = outs(desired, plan, ctx)?;
    if outs.is_empty() {
        return Ok(Vec::new());
    }
    let mut policy = WritePolicy::for_rotation(desired, allow_insecure_dir);
    policy.protect_ca_keys_on_disk(disk, desired);
    policy.check(&planned(&outs))?;
    write_all(outs)
}

/// What each output does to its path, for the policy.
fn planned(outs: &[Out]) -> Vec<PlannedWrite<'_>> {
    outs.iter()
        .map(|o| PlannedWrite {
            entry: &o.entry,
            path: &o.path,
            kind: if o.chmod_only {
                WriteKind::Mode
            } else if o.rename_from.is_some() {
                WriteKind::Rename
            } else if let Some(of) = &o.verify_of {
                WriteKind::KeyArchive { of }
            } else if let (Replace::CaKeyAfterArchive, Some(archive)) = (o.replace, &o.key_archive)
            {
                WriteKind::CaKeyAfterArchive { archive }
            } else {
                WriteKind::Contents
            },
        })
        .collect()
}

fn outs(desired: &Desired, plan: &RotationPlan, ctx: &Context<'_>) -> Result<Vec<Out>> {
    let modes = desired.modes;
    let layout = Layout::of(&desired.inputs.cert_dir);
    let dir_mode = |p: &Path| {
        if p.starts_with(&layout.root) {
            0o700
        } else {
            modes.dir
        }
    };
    let jobs: Vec<(String, crate::x509::keys::KeyAlgorithm)> = plan
        .steps
        .iter()
        .filter_map(|s| match &s.op {
            Op::NewKey { alg } => Some((s.path.clone(), *alg)),
            _ => None,
        })
        .collect();
    let mut generated = generate_keys(&jobs, ctx.entropy, ctx.jobs)?;
    let mut made: HashMap<PathBuf, Arc<PrivateKey>> = HashMap::new();
    let key_at = |made: &HashMap<PathBuf, Arc<PrivateKey>>, p: &Path| -> Result<Arc<PrivateKey>> {
        if let Some(k) = made.get(p) {
            return Ok(Arc::clone(k));
        }
        match crate::disk::read::read_key(p) {
            crate::disk::read::Observed::Present(k) => Ok(Arc::new(k.key)),
            crate::disk::read::Observed::Missing => Err(Error::file(p, "is missing")),
            crate::disk::read::Observed::Invalid(m) => Err(Error::file(p, m)),
            crate::disk::read::Observed::Unread => Err(Error::file(p, crate::disk::read::NOT_READ)),
        }
    };
    let mut outs: Vec<Out> = Vec::new();
    for s in &plan.steps {
        let path = PathBuf::from(&s.path);
        let dm = dir_mode(&path);
        match &s.op {
            Op::None => {}
            Op::Write {
                data,
                mode,
                never,
                backup,
            } => {
                if *backup {
                    push_backups(&mut outs, &s.entry, &[(&path, *mode)], ctx.now)?;
                }
                let replace = if *never {
                    Replace::Never
                } else {
                    Replace::Allow
                };
                outs.push(Out::write(
                    &s.entry,
                    &path,
                    data.clone(),
                    *mode,
                    dm,
                    replace,
                ));
            }
            Op::NewKey { .. } => {
                let key = generated
                    .remove(&s.path)
                    .ok_or_else(|| Error::crypto(s.entry.clone(), "no key was generated"))?;
                outs.push(Out::write(
                    &s.entry,
                    &path,
                    key.pem().as_bytes().to_vec(),
                    modes.key,
                    dm,
                    Replace::Never,
                ));
                made.insert(path.clone(), Arc::new(key));
            }
            Op::NewCaCert {
                profile,
                validity,
                key,
            } => {
                let k = key_at(&made, key)?;
                let not_after = ctx.now.checked_add(*validity).ok_or_else(|| {
                    Error::input("--now", "the CA validity ends past the year 9999")
                })?;
                let der = issue(
                    profile,
                    &k,
                    None,
                    Issuance {
                        not_before: ctx.now - BACKDATE,
                        not_after,
                        serial: ctx.entropy.serial()?,
                    },
                )?;
                outs.push(Out::write(
                    &s.entry,
                    &path,
                    cert_pem(&der).into_bytes(),
                    modes.cert,
                    dm,
                    Replace::Never,
                ));
            }
            Op::NewPub { key } => {
                let k = key_at(&made, key)?;
                outs.push(Out::write(
                    &s.entry,
                    &path,
                    k.public_key_pem().into_bytes(),
                    modes.public,
                    dm,
                    Replace::Never,
                ));
            }
            Op::VerifyArchive { live } => outs.push(Out {
                verify_of: Some(live.clone()),
                ..Out::write(&s.entry, &path, Vec::new(), modes.key, dm, Replace::Never)
            }),
            Op::ReplaceKey { data, archive } => outs.push(Out {
                key_archive: Some(archive.clone()),
                ..Out::write(
                    &s.entry,
                    &path,
                    data.clone(),
                    modes.key,
                    dm,
                    Replace::CaKeyAfterArchive,
                )
            }),
            Op::Rename { from } => outs.push(Out {
                rename_from: Some(from.clone()),
                ..Out::write(&s.entry, &path, Vec::new(), modes.cert, dm, Replace::Allow)
            }),
        }
    }
    if let (Some(tree), Some(vdisk)) = (&plan.reissue, &plan.reissue_disk) {
        if !tree.is_noop() {
            outs.extend(build(desired, &vdisk.0, tree, ctx, true)?);
        }
    }
    check_archive_first(&outs)?;
    Ok(outs)
}

/// The rule for replacing a live CA key: the same batch must first archive it (write the
/// archive no-clobber, or verify an existing one), and the archive is the one the replacement
/// names. The writer re-checks the bytes at the rename.
fn check_archive_first(outs: &[Out]) -> Result<()> {
    for (i, o) in outs.iter().enumerate() {
        if o.replace != Replace::CaKeyAfterArchive {
            continue;
        }
        let Some(archive) = &o.key_archive else {
            return Err(Error::file(
                &o.path,
                "a CA key is replaced only with an archive of it (internal: none named)",
            ));
        };
        let live_bytes = std::fs::read(&o.path).ok();
        let archived = outs[..i].iter().any(|p| {
            &p.path == archive
                && match &p.verify_of {
                    Some(of) => of == &o.path,
                    // A fresh no-clobber copy of the live key's current bytes.
                    None => {
                        p.replace == Replace::Never
                            && p.rename_from.is_none()
                            && live_bytes.as_deref() == Some(p.data.as_slice())
                    }
                }
        });
        if !archived {
            return Err(Error::file(
                &o.path,
                format!(
                    "is not replaced: no step of this plan archives it to {} first",
                    archive.display()
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(path: &str, replace: Replace) -> Out {
        Out::write("ca", Path::new(path), b"k".to_vec(), 0o600, 0o700, replace)
    }

    #[test]
    fn a_key_replacement_needs_an_earlier_archive_step_for_that_key() {
        let replace = || Out {
            key_archive: Some(PathBuf::from("/t/rotation/ca/old.key")),
            ..out("/t/ca.key", Replace::CaKeyAfterArchive)
        };
        // Alone, or with the archive step after it, or archiving another key: refused.
        assert!(check_archive_first(&[replace()]).is_err());
        let verify = Out {
            verify_of: Some(PathBuf::from("/t/ca.key")),
            ..out("/t/rotation/ca/old.key", Replace::Never)
        };
        assert!(check_archive_first(&[replace(), verify]).is_err());
        let other = Out {
            verify_of: Some(PathBuf::from("/t/sa.key")),
            ..out("/t/rotation/ca/old.key", Replace::Never)
        };
        assert!(check_archive_first(&[other, replace()]).is_err());
        let unnamed = out("/t/ca.key", Replace::CaKeyAfterArchive);
        assert!(check_archive_first(&[unnamed]).is_err());
        // Verified (or freshly written no-clobber) before: accepted.
        let verify = Out {
            verify_of: Some(PathBuf::from("/t/ca.key")),
            ..out("/t/rotation/ca/old.key", Replace::Never)
        };
        assert!(check_archive_first(&[verify, replace()]).is_ok());
        let dir = tempfile::tempdir().expect("tmp");
        let live = dir.path().join("ca.key");
        std::fs::write(&live, b"k").expect("write");
        let replace_live = || Out {
            key_archive: Some(PathBuf::from("/t/rotation/ca/old.key")),
            ..Out::write(
                "ca",
                &live,
                b"new".to_vec(),
                0o600,
                0o700,
                Replace::CaKeyAfterArchive,
            )
        };
        let copy = out("/t/rotation/ca/old.key", Replace::Never);
        assert!(check_archive_first(&[copy, replace_live()]).is_ok());
        let wrong = Out::write(
            "ca",
            Path::new("/t/rotation/ca/old.key"),
            b"x".to_vec(),
            0o600,
            0o700,
            Replace::Never,
        );
        assert!(check_archive_first(&[wrong, replace_live()]).is_err());
    }
}
