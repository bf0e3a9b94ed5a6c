//! The plan of one rotation command: pure, from (desired entries, disk, assessment, rotations,
//! command) to file steps with reasons, plus for `issue` the tree's re-issue plan.
//!
//! Every step says what it writes and why; a step whose file already holds what the phase
//! wants is left out, so a re-run of a completed phase plans nothing and a re-run after a crash
//! plans exactly what is left.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use time::OffsetDateTime;

use crate::assess::rotation::{Phase, Rotation};
use crate::assess::{self, Assessment, Code, Severity};
use crate::disk::read::{CertFile, Observed, NOT_READ};
use crate::disk::rotation::Layout;
use crate::disk::{Disk, KubeconfigFile, Seen};
use crate::error::{Error, Result};
use crate::model::resolve::{Desired, Entry};
use crate::plan::{self, Action, Plan};
use crate::rotate::Command;
use crate::x509::issue::{cert_pem, Profile};
use crate::x509::keys::KeyAlgorithm;

/// What a step does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepAction {
    /// Copy the live CA (or key pair) into the rotation folder before anything changes.
    Archive,
    /// Generate the new CA key, certificate or public key in the rotation folder.
    Stage,
    /// Write the single-certificate copy of the CA that signs (kube-controller-manager).
    SignerCopy,
    /// Set what a trust point holds (a CA file, `sa.pub`, a kubeconfig's CA data).
    SetTrust,
    /// Check that the archive holds the live key byte for byte, and flush it.
    VerifyArchive,
    /// Replace the live CA key (or `sa.key`) with the new one (after [`StepAction::VerifyArchive`]).
    ReplaceKey,
    /// Move the staged CA certificate file into place.
    Rename,
    /// Move the rotation folder into `rotation/archive`.
    ArchiveFolder,
    /// Nothing kpki writes: the operator must act (a file kpki does not own).
    Manual,
}

/// How a step is carried out (not part of the printed plan). Its bytes can be private keys, so
/// its `Debug` shows only their length.
#[derive(Clone)]
pub(crate) enum Op {
    /// Write these bytes (backing the old file up first when `backup`).
    Write {
        data: Vec<u8>,
        mode: u32,
        never: bool,
        backup: bool,
    },
    /// A new private key.
    NewKey { alg: KeyAlgorithm },
    /// A new self-signed CA certificate for the key at `key`.
    NewCaCert {
        profile: Box<Profile>,
        validity: time::Duration,
        key: PathBuf,
    },
    /// The public key of the private key at `key`.
    NewPub { key: PathBuf },
    /// `path` (an archive) must hold the bytes of `live`.
    VerifyArchive { live: PathBuf },
    /// Replace the live key at `path` with `data` once `archive` holds its bytes.
    ReplaceKey { data: Vec<u8>, archive: PathBuf },
    /// Rename `from` onto `path`.
    Rename { from: PathBuf },
    /// No write.
    None,
}

impl std::fmt::Debug for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Op::Write { data, mode, .. } => write!(f, "Write({} bytes, {mode:04o})", data.len()),
            Op::NewKey { alg } => write!(f, "NewKey({alg})"),
            Op::NewCaCert { key, .. } => write!(f, "NewCaCert(key {})", key.display()),
            Op::NewPub { key } => write!(f, "NewPub(key {})", key.display()),
            Op::VerifyArchive { live } => write!(f, "VerifyArchive(of {})", live.display()),
            Op::ReplaceKey { data, archive } => write!(
                f,
                "ReplaceKey({} bytes, after {})",
                data.len(),
                archive.display()
            ),
            Op::Rename { from } => write!(f, "Rename(from {})", from.display()),
            Op::None => f.write_str("None"),
        }
    }
}

/// One file step.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// The CA or key pair this step is for (or the entry whose file it writes).
    pub entry: String,
    /// What it does.
    pub action: StepAction,
    /// The file (or folder) it writes.
    pub path: String,
    /// Why, in words an operator can act on.
    pub reason: String,
    #[serde(skip)]
    pub(crate) op: Op,
}

/// What the command does to one CA or key pair.
#[derive(Debug, Clone, Serialize)]
pub struct EntryPlan {
    /// The CA or key pair.
    pub entry: String,
    /// Its phase before the command (`None`: no rotation in progress).
    pub from: Option<Phase>,
    /// Its phase after the command (`None`: no rotation in progress).
    pub to: Option<Phase>,
    /// What happens, in words.
    pub note: String,
}

/// A value left out of `Debug` output (the disk holds kubeconfigs with their client keys).
#[derive(Clone)]
pub(crate) struct Unprinted<T>(pub T);

impl<T> std::fmt::Debug for Unprinted<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("..")
    }
}

/// The plan of one `kpki ca rotate` command.
#[derive(Debug, Clone, Serialize)]
pub struct RotationPlan {
    /// The command.
    pub command: Command,
    /// Per CA or key pair concerned.
    pub entries: Vec<EntryPlan>,
    /// File steps in the order they are written.
    pub steps: Vec<Step>,
    /// `issue`: the re-issue of every certificate the old CA signed, one step per tree entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reissue: Option<Plan>,
    /// `issue`: the disk as the re-issue sees it (the new CA in place of the old).
    #[serde(skip)]
    pub(crate) reissue_disk: Option<Unprinted<Disk>>,
}

impl RotationPlan {
    /// True when carrying it out writes nothing.
    pub fn is_noop(&self) -> bool {
        self.steps
            .iter()
            .all(|s| matches!(s.action, StepAction::Manual))
            && self.reissue.as_ref().is_none_or(Plan::is_noop)
    }
}

/// Everything the planner reads.
pub(crate) struct Input<'a> {
    pub desired: &'a Desired,
    pub disk: &'a Disk,
    pub assessment: &'a Assessment,
    pub rotations: &'a BTreeMap<String, Rotation>,
    pub now: OffsetDateTime,
}

/// The entries a rotation can replace: self-signed CAs with a key that sign no other CA, and
/// key pairs.
pub fn rotatable(desired: &Desired) -> Vec<String> {
    desired
        .entries
        .iter()
        .filter(|e| match e {
            Entry::Ca(c) => {
                c.ca.is_none()
                    && !desired.entries.iter().any(
                        |o| matches!(o, Entry::Ca(x) if x.ca.as_deref() == Some(c.name.as_str())),
                    )
            }
            Entry::KeyPair(_) => true,
            _ => false,
        })
        .map(|e| e.name().to_string())
        .filter(|n| {
            n != crate::disk::rotation::ARCHIVE
                && n != crate::disk::rotation::SIGNER
                && !n.contains('/')
        })
        .collect()
}

pub use crate::disk::rotation::signer_copied;

fn pem_of(x: &[u8], keypair: bool) -> String {
    if keypair {
        pem::encode_config(
            &pem::Pem::new("PUBLIC KEY", x.to_vec()),
            crate::x509::keys::pem_config(),
        )
    } else {
        cert_pem(x)
    }
}

fn bundle(list: &[&[u8]], keypair: bool) -> Vec<u8> {
    list.iter()
        .map(|x| pem_of(x, keypair))
        .collect::<String>()
        .into_bytes()
}

fn disp(p: &Path) -> String {
    p.display().to_string()
}

fn conflict(entry: &str, path: impl Into<PathBuf>, message: impl Into<String>) -> Error {
    Error::Conflict {
        entry: entry.to_string(),
        path: path.into(),
        message: message.into(),
    }
}

struct Builder<'a> {
    inp: &'a Input<'a>,
    layout: Layout,
    steps: Vec<Step>,
    entries: Vec<EntryPlan>,
}

impl<'a> Builder<'a> {
    fn step(&mut self, entry: &str, action: StepAction, path: &Path, reason: String, op: Op) {
        self.steps.push(Step {
            entry: entry.to_string(),
            action,
            path: disp(path),
            reason,
            op,
        });
    }

    #[allow(clippy::too_many_arguments)]
    fn write(
        &mut self,
        entry: &str,
        action: StepAction,
        path: &Path,
        reason: String,
        data: Vec<u8>,
        mode: u32,
        backup: bool,
    ) {
        self.step(
            entry,
            action,
            path,
            reason,
            Op::Write {
                data,
                mode,
                never: false,
                backup,
            },
        );
    }

    fn note(
        &mut self,
        entry: &str,
        from: Option<Phase>,
        to: Option<Phase>,
        note: impl Into<String>,
    ) {
        self.entries.push(EntryPlan {
            entry: entry.to_string(),
            from,
            to,
            note: note.into(),
        });
    }

    /// The live trust file and the live key of a rotating entry.
    fn live_paths(&self, name: &str) -> Option<(PathBuf, PathBuf, bool)> {
        match self.inp.desired.get(name)? {
            Entry::Ca(c) => Some((c.cert_path.clone(), c.key_path.clone(), false)),
            Entry::KeyPair(k) => Some((k.pub_path.clone(), k.key_path.clone(), true)),
            _ => None,
        }
    }

    /// Sets the live trust file of `r` to `want` (with a backup) unless it holds it.
    fn set_live(&mut self, r: &Rotation, want: &[&[u8]], why: &str) {
        let Some((path, _, keypair)) = self.live_paths(&r.entry) else {
            return;
        };
        if r.live.iter().map(Vec::as_slice).eq(want.iter().copied()) {
            return;
        }
        let mode = if keypair {
            self.inp.desired.modes.public
        } else {
            self.inp.desired.modes.cert
        };
        let words = r.describe(&want.iter().map(|x| x.to_vec()).collect::<Vec<_>>());
        self.write(
            &r.entry,
            StepAction::SetTrust,
            &path,
            format!("holds {}; {why}: {words}", r.describe(&r.live)),
            bundle(want, keypair),
            mode,
            true,
        );
    }

    /// The tree's kubeconfigs that trust the CA `ca`, with what is on disk.
    fn kubeconfigs_of(
        &self,
        ca: &str,
    ) -> Vec<(
        &'a crate::model::resolve::KubeconfigEntry,
        &'a Observed<KubeconfigFile>,
    )> {
        let inp = self.inp;
        inp.desired
            .entries
            .iter()
            .filter_map(|e| match e {
                Entry::Kubeconfig(k) if k.ca == ca => match inp.disk.entries.get(&k.name) {
                    Some(Seen::Kubeconfig(o)) => Some((k, o)),
                    _ => None,
                },
                _ => None,
            })
            .collect()
    }

    /// Sets every kubeconfig's CA data for CA `r` to `want`, except those in `skip`.
    fn set_kubeconfigs(
        &mut self,
        r: &Rotation,
        want: &[&[u8]],
        why: &str,
        skip: &[String],
    ) -> Result<()> {
        if r.keypair {
            return Ok(());
        }
        let words = r.describe(&want.iter().map(|x| x.to_vec()).collect::<Vec<_>>());
        for (k, obs) in self.kubeconfigs_of(&r.entry) {
            if skip.contains(&k.name) {
                continue;
            }
            let kc = match obs {
                Observed::Present(kc) => kc,
                Observed::Missing | Observed::Unread => continue,
                Observed::Invalid(m) => {
                    return Err(conflict(
                        &k.name,
                        &k.path,
                        format!("cannot be read, so its CA data cannot be set: {m}"),
                    ))
                }
            };
            if let Some(rf) = &kc.ca_ref {
                let live = self.live_paths(&r.entry).map(|(p, _, _)| p);
                if Some(&rf.path) != live.as_ref() {
                    self.step(
                        &k.name,
                        StepAction::Manual,
                        &k.path,
                        format!(
                            "references its CA file {} (not written by kpki): make it hold {words}",
                            rf.written
                        ),
                        Op::None,
                    );
                }
                continue;
            }
            let have: Vec<Vec<u8>> = kc
                .ca_der
                .iter()
                .cloned()
                .chain(kc.ca_chain.iter().cloned())
                .collect();
            if have.iter().map(Vec::as_slice).eq(want.iter().copied()) {
                continue;
            }
            let mut cfg = kc.config.clone();
            let pem = String::from_utf8(bundle(want, false)).unwrap_or_default();
            cfg.set_ca_data(&pem).map_err(|m| Error::file(&k.path, m))?;
            let yaml = cfg.to_yaml().map_err(|m| Error::file(&k.path, m))?;
            self.write(
                &k.name,
                StepAction::SetTrust,
                &k.path,
                format!(
                    "its certificate-authority-data holds {}; {why}: {words}",
                    r.describe(&have)
                ),
                yaml.into_bytes(),
                self.inp.desired.modes.kubeconfig,
                true,
            );
        }
        Ok(())
    }

    /// The signer copy of CA `r` := `signer` (the cluster CA only).
    fn signer_copy(&mut self, r: &Rotation, signer: &[u8], why: &str) {
        if !signer_copied(&r.entry) {
            return;
        }
        let path = self.layout.signer(&r.entry);
        let have = self.inp.disk.rotation.signer.get(&r.entry);
        if matches!(have, Some(Observed::Present(v)) if v.len() == 1 && v[0] == signer) {
            return;
        }
        self.write(
            &r.entry,
            StepAction::SignerCopy,
            &path,
            format!("{why} (kube-controller-manager's --cluster-signing-cert-file and --client-ca-file take one certificate, kubeadm#1350)"),
            cert_pem(signer).into_bytes(),
            self.inp.desired.modes.cert,
            false,
        );
    }

    /// Moves the rotation folder of `entry` into the archive.
    fn archive_folder(&mut self, entry: &str, outcome: &str) {
        let stamp = format!(
            "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
            self.inp.now.year(),
            u8::from(self.inp.now.month()),
            self.inp.now.day(),
            self.inp.now.hour(),
            self.inp.now.minute(),
            self.inp.now.second()
        );
        let base = format!("{entry}-{stamp}-{outcome}");
        let taken = |n: &str| {
            self.inp.disk.rotation.archives.iter().any(|a| a == n)
                || self.layout.archive().join(n).exists()
        };
        let name = (0..)
            .map(|i| {
                if i == 0 {
                    base.clone()
                } else {
                    format!("{base}.{i}")
                }
            })
            .find(|n| !taken(n))
            .unwrap_or(base);
        let to = self.layout.archive().join(name);
        let from = self.layout.dir(entry);
        self.step(
            entry,
            StepAction::ArchiveFolder,
            &to,
            format!(
                "the rotation is {outcome}: {} (both CA keys) is kept here until you remove it",
                disp(&from)
            ),
            Op::Rename { from },
        );
    }
}

/// Which entries the command concerns: `only` (validated; `all` = every rotatable entry), or
/// by default every rotatable entry (prepare) or every one with a rotation in progress.
pub(crate) fn targets(
    desired: &Desired,
    rotations: &BTreeMap<String, Rotation>,
    disk: &Disk,
    cmd: Command,
    only: &[String],
) -> Result<Vec<String>> {
    let can = rotatable(desired);
    let mut out = Vec::new();
    if only.is_empty() {
        if cmd == Command::Prepare {
            return Ok(can);
        }
        return Ok(can
            .into_iter()
            .filter(|n| rotations.contains_key(n) || disk.rotation.staged.contains_key(n))
            .collect());
    }
    for o in only {
        if o == "all" {
            for c in &can {
                if !out.contains(c) {
                    out.push(c.clone());
                }
            }
            continue;
        }
        if !can.contains(o) {
            let why = match desired.get(o) {
                Some(Entry::Ca(_)) => " (it has a parent or signs another CA: kpki rotates root CAs that sign only leaves)",
                Some(_) => " (not a CA or key pair)",
                None => "",
            };
            return Err(Error::input(
                "--ca",
                format!(
                    "{o:?} cannot be rotated{why}; choose from all, {}",
                    can.join(", ")
                ),
            ));
        }
        if !out.contains(o) {
            out.push(o.clone());
        }
    }
    // Keep the spec's order.
    Ok(can.into_iter().filter(|c| out.contains(c)).collect())
}

/// Plans `cmd` for `targets`.
pub(crate) fn plan(inp: &Input<'_>, cmd: Command, targets: &[String]) -> Result<RotationPlan> {
    let mut b = Builder {
        inp,
        layout: inp.disk.rotation.layout.clone(),
        steps: Vec::new(),
        entries: Vec::new(),
    };
    if inp.disk.rotation.layout.root.as_os_str().is_empty() {
        b.layout = Layout::of(&inp.desired.inputs.cert_dir);
    }
    if let Some(p) = &inp.disk.rotation.problem {
        return Err(Error::file(&b.layout.root, p));
    }
    let mut reissue = None;
    let mut reissue_disk = None;
    match cmd {
        Command::Prepare => {
            for t in targets {
                prepare(&mut b, t)?;
            }
        }
        Command::Trust => {
            // Kubeconfigs first, then sa.pub, then the CA files: the CA file marks the phase.
            let mut cas = Vec::new();
            for t in targets {
                if let Some(r) = ready(&mut b, t, Command::Trust)? {
                    cas.push(r);
                }
            }
            for r in &cas {
                let (o, n) = sides(r);
                b.set_kubeconfigs(r, &[o, n], "trust adds the new CA after the old one", &[])?;
            }
            for r in cas.iter().filter(|r| r.keypair) {
                let (o, n) = sides(r);
                b.set_live(
                    r,
                    &[o, n],
                    "trust adds the new public key after the old one",
                );
            }
            for r in cas.iter().filter(|r| !r.keypair) {
                let (o, n) = sides(r);
                b.signer_copy(r, o, "the old CA signs until issue");
                b.set_live(r, &[o, n], "trust adds the new CA after the old one");
            }
        }
        Command::Issue => {
            let mut cas = Vec::new();
            for t in targets {
                if let Some(r) = ready(&mut b, t, Command::Issue)? {
                    cas.push(r);
                }
            }
            if !cas.is_empty() {
                let (p, d) = issue(&mut b, &cas)?;
                reissue = Some(p);
                reissue_disk = Some(Unprinted(d));
            }
        }
        Command::Finish => {
            let mut cas = Vec::new();
            for t in targets {
                if let Some(r) = ready(&mut b, t, Command::Finish)? {
                    cas.push(r);
                }
            }
            for r in &cas {
                let (_, n) = sides(r);
                b.set_live(r, &[n], "finish drops the old CA");
            }
            for r in &cas {
                let (_, n) = sides(r);
                b.set_kubeconfigs(r, &[n], "finish drops the old CA", &[])?;
                b.signer_copy(r, n, "the new CA signs");
            }
            for r in &cas {
                b.archive_folder(&r.entry, "finished");
            }
        }
        Command::Abort => {
            let mut cas = Vec::new();
            for t in targets {
                if let Some(r) = ready(&mut b, t, Command::Abort)? {
                    cas.push(r);
                }
            }
            for r in &cas {
                if let Some(o) = r.old.clone() {
                    b.set_live(r, &[&o], "abort goes back to the old CA only");
                    b.set_kubeconfigs(r, &[&o], "abort goes back to the old CA only", &[])?;
                    if b.inp.disk.rotation.signer.contains_key(&r.entry) {
                        b.signer_copy(r, &o, "the old CA signs");
                    }
                }
            }
            for r in &cas {
                b.archive_folder(&r.entry, "aborted");
            }
        }
    }
    Ok(RotationPlan {
        command: cmd,
        entries: b.entries,
        steps: b.steps,
        reissue,
        reissue_disk,
    })
}

fn sides(r: &Rotation) -> (&[u8], &[u8]) {
    (
        r.old.as_deref().unwrap_or_default(),
        r.new.as_deref().unwrap_or_default(),
    )
}

/// Checks that `t` is in a phase `cmd` can work on; `None` when there is nothing to do.
fn ready(b: &mut Builder<'_>, t: &str, cmd: Command) -> Result<Option<Rotation>> {
    let r = match b.inp.rotations.get(t) {
        Some(r) => r.clone(),
        None => {
            if matches!(cmd, Command::Finish | Command::Abort) {
                b.note(t, None, None, "no rotation in progress: nothing to do");
                return Ok(None);
            }
            let path = b.layout.dir(t);
            return Err(conflict(t, path, format!("no rotation of {t} is in progress: run `kpki ca rotate prepare --ca {t}` first")));
        }
    };
    let path = b.layout.dir(t);
    let phase = match r.phase {
        Some(p) => p,
        None if cmd == Command::Abort && r.live_key_new == Some(false) && r.old.is_some() => {
            b.note(
                t,
                None,
                None,
                "the rotation's files are inconsistent; abort restores the old CA",
            );
            return Ok(Some(r));
        }
        None => {
            return Err(conflict(
                t,
                path,
                format!(
                    "the rotation's files form no known phase: {}",
                    r.problems.join("; ")
                ),
            ))
        }
    };
    use Phase::*;
    let err = |m: String| Err(conflict(t, b.layout.dir(t), m));
    match (cmd, phase) {
        (Command::Trust, Preparing) | (Command::Issue, Preparing) | (Command::Finish, Preparing) => {
            err("prepare has not completed: run `kpki ca rotate prepare` again (or abort)".into())
        }
        (Command::Trust, Prepared | Trust) => {
            b.note(t, Some(phase), Some(Trust), "every trust point gets the old and the new CA; the old CA keeps signing");
            Ok(Some(r))
        }
        (Command::Trust, _) => {
            b.note(t, Some(phase), Some(phase), format!("already past trust (phase {phase}): nothing to do"));
            Ok(None)
        }
        (Command::Issue, Prepared) => err("phase prepare: run `kpki ca rotate trust` (and roll it out) before issue".into()),
        (Command::Issue, Trust | Issue) => {
            if phase == Trust {
                let missing = trust_gaps(b.inp, &r);
                if !missing.is_empty() {
                    return err(format!(
                        "trust is incomplete ({}): run `kpki ca rotate trust` before issue",
                        missing.join("; ")
                    ));
                }
            }
            let note = if phase == Trust {
                "the new CA becomes the signer; everything the old CA signed is re-issued under it"
            } else {
                "issue already ran; what it left undone, if anything, is completed"
            };
            b.note(t, Some(phase), Some(Issue), note);
            Ok(Some(r))
        }
        (Command::Issue, Finished) => {
            b.note(t, Some(phase), Some(phase), "already finished: nothing to issue");
            Ok(None)
        }
        (Command::Finish, Prepared | Trust) => err(format!("phase {phase}: run `kpki ca rotate issue` before finish (or abort)")),
        (Command::Finish, Issue) => {
            if let Some(o) = r.own.first() {
                return err(format!("{}: {}; {}", o.path, o.message, o.fix));
            }
            let left = old_signed(b.inp, &r);
            if !left.is_empty() {
                return err(format!(
                    "still signed by the old CA: {}; finish would stop trusting them",
                    left.join("; ")
                ));
            }
            let missing = trust_gaps(b.inp, &r);
            if !missing.is_empty() {
                return err(format!("issue is incomplete ({}): run `kpki ca rotate issue`", missing.join("; ")));
            }
            b.note(t, Some(phase), None, "trust points keep only the new CA; the rotation folder (both CA keys) moves to rotation/archive");
            Ok(Some(r))
        }
        (Command::Finish, Finished) => {
            b.note(t, Some(phase), None, "trust points already hold only the new CA; the rotation folder moves to rotation/archive");
            Ok(Some(r))
        }
        (Command::Abort, Preparing | Prepared | Trust) => {
            b.note(t, Some(phase), None, "back to the old CA only; the rotation folder (with the unused new CA) moves to rotation/archive");
            Ok(Some(r))
        }
        (Command::Abort, _) => err(format!(
            "phase {phase}: the new CA already signs, abort is only possible before issue; complete the rotation with `kpki ca rotate finish`"
        )),
        // Prepare is planned by `prepare`, never through here.
        (Command::Prepare, _) => Err(Error::input(
            "ca rotate",
            format!("{t}: internal: prepare is planned separately"),
        )),
    }
}

/// Trust points of `r` that do not hold what its phase wants (the rotation findings on them).
fn trust_gaps(inp: &Input<'_>, r: &Rotation) -> Vec<String> {
    rotation_findings(inp, r)
        .filter(|f| {
            matches!(
                f.code,
                Code::RotationTrustMissing | Code::RotationPhaseMixed
            )
        })
        .map(|f| format!("{}: {}", f.path, f.message))
        .collect()
}

/// Certificates of `r`'s tree signed by the CA that does not sign in its phase.
fn old_signed(inp: &Input<'_>, r: &Rotation) -> Vec<String> {
    rotation_findings(inp, r)
        .filter(|f| f.code == Code::RotationSignerUnexpected)
        .map(|f| format!("{} ({})", f.path, f.fix))
        .collect()
}

fn rotation_findings<'a>(
    inp: &'a Input<'_>,
    r: &'a Rotation,
) -> impl Iterator<Item = &'a assess::Finding> {
    inp.assessment
        .entries
        .iter()
        .filter(move |ea| match inp.desired.get(&ea.entry) {
            Some(Entry::Leaf(c)) => c.ca.as_deref() == Some(r.entry.as_str()),
            Some(Entry::Kubeconfig(k)) => k.ca == r.entry,
            _ => false,
        })
        .flat_map(|ea| ea.findings.iter())
        .filter(|f| f.severity == Severity::Error)
}

/// `prepare` for one entry.
fn prepare(b: &mut Builder<'_>, t: &str) -> Result<()> {
    let inp = b.inp;
    if let Some(r) = inp.rotations.get(t) {
        match r.phase {
            Some(Phase::Preparing) => {}
            Some(p) => {
                if p == Phase::Prepared {
                    if let Some(o) = r.old.clone() {
                        b.signer_copy(r, &o, "the old CA signs until issue");
                    }
                }
                b.note(
                    t,
                    Some(p),
                    Some(p),
                    if p == Phase::Prepared {
                        "already prepared: nothing to do".to_string()
                    } else {
                        format!("a rotation is in progress (phase {p}): nothing to prepare; `kpki ca rotate status` shows what comes next")
                    },
                );
                return Ok(());
            }
            None => {
                return Err(conflict(
                    t,
                    b.layout.dir(t),
                    format!(
                        "the rotation's files form no known phase: {}",
                        r.problems.join("; ")
                    ),
                ))
            }
        }
    }
    let Some(entry) = inp.desired.get(t) else {
        return Err(Error::input("--ca", format!("unknown entry {t:?}")));
    };
    let staged = inp.disk.rotation.staged.get(t).cloned().unwrap_or_default();
    let from = inp.rotations.get(t).and_then(|r| r.phase);
    let dir = b.layout.dir(t);
    match (entry, inp.disk.entries.get(t)) {
        (Entry::Ca(c), Some(Seen::Cert { cert, key })) => {
            let cf: &CertFile = match cert {
                Observed::Present(cf) => cf,
                Observed::Missing => {
                    return Err(conflict(
                        t,
                        &c.cert_path,
                        "is missing: there is no CA to rotate (run kpki init)",
                    ))
                }
                Observed::Invalid(m) => return Err(conflict(t, &c.cert_path, m.clone())),
                Observed::Unread => return Err(conflict(t, &c.cert_path, NOT_READ)),
            };
            let kf = match key {
                Observed::Present(k) => k,
                Observed::Missing => {
                    return Err(conflict(
                        t,
                        &c.key_path,
                        "is absent (external CA): kpki can only rotate a CA whose key it holds",
                    ))
                }
                Observed::Invalid(m) => return Err(conflict(t, &c.key_path, m.clone())),
                Observed::Unread => return Err(conflict(t, &c.key_path, NOT_READ)),
            };
            if !cf.chain.is_empty() {
                return Err(conflict(
                    t,
                    &c.cert_path,
                    format!(
                        "holds {} certificates: a rotation starts from a single CA certificate",
                        cf.chain.len() + 1
                    ),
                ));
            }
            let info =
                crate::x509::inspect::info(&cf.der).map_err(|m| conflict(t, &c.cert_path, m))?;
            if !kf.key.matches_spki(&info.spki) {
                return Err(conflict(
                    t,
                    &c.key_path,
                    format!("does not match {}", disp(&c.cert_path)),
                ));
            }
            if let Some(ea) = inp.assessment.get(t) {
                if let Some(f) = ea.errors().find(|f| {
                    matches!(
                        f.code,
                        Code::CaNotCa
                            | Code::CaNoKeyCertSign
                            | Code::PemInvalid
                            | Code::FileUnreadable
                    )
                }) {
                    return Err(conflict(t, &f.path, format!("{} ({})", f.message, f.code)));
                }
            }
            let old_key = b.layout.key(t, "old");
            let old_crt = b.layout.trust(t, "old", false);
            let new_key = b.layout.key(t, "new");
            let new_crt = b.layout.trust(t, "new", false);
            archive_key(
                b,
                t,
                &staged.old.key,
                &old_key,
                kf.key.pem().as_bytes(),
                &c.key_path,
            )?;
            archive_trust(
                b,
                t,
                &staged.old.trust,
                &old_crt,
                &cf.der,
                false,
                &c.cert_path,
            )?;
            stage_new(b, t, &staged, &new_key, &new_crt, c.algorithm, || Op::NewCaCert {
                profile: Box::new(c.profile.clone()),
                validity: c.validity,
                key: new_key.clone(),
            }, "a new self-signed CA certificate from the spec's entry (same subject, new key, new validity)")?;
            let path = b.layout.signer(t);
            let have = inp.disk.rotation.signer.get(t);
            if signer_copied(t)
                && !matches!(have, Some(Observed::Present(v)) if v.len() == 1 && v[0] == cf.der)
            {
                b.write(t, StepAction::SignerCopy, &path, "a single-certificate copy of the CA that signs (now the old one): point kube-controller-manager's --cluster-signing-cert-file and --client-ca-file here before trust turns ca.crt into a bundle (kubeadm#1350)".into(), cert_pem(&cf.der).into_bytes(), inp.desired.modes.cert, false);
            }
        }
        (Entry::KeyPair(k), Some(Seen::KeyPair { key, public })) => {
            let kf = match key {
                Observed::Present(k) => k,
                Observed::Missing => {
                    return Err(conflict(
                        t,
                        &k.key_path,
                        "is missing: there is no key to rotate (run kpki init)",
                    ))
                }
                Observed::Invalid(m) => return Err(conflict(t, &k.key_path, m.clone())),
                Observed::Unread => return Err(conflict(t, &k.key_path, NOT_READ)),
            };
            match inp.disk.rotation.live.get(t) {
                Some(Observed::Present(v)) if v.len() > 1 => {
                    return Err(conflict(
                        t,
                        &k.pub_path,
                        format!(
                            "holds {} public keys: a rotation starts from a single key",
                            v.len()
                        ),
                    ))
                }
                _ => {}
            }
            if let Observed::Present((spki, _)) = public {
                if !kf.key.matches_spki(spki) {
                    return Err(conflict(
                        t,
                        &k.pub_path,
                        format!("does not match {}", disp(&k.key_path)),
                    ));
                }
            }
            let old_key = b.layout.key(t, "old");
            let old_pub = b.layout.trust(t, "old", true);
            let new_key = b.layout.key(t, "new");
            let new_pub = b.layout.trust(t, "new", true);
            archive_key(
                b,
                t,
                &staged.old.key,
                &old_key,
                kf.key.pem().as_bytes(),
                &k.key_path,
            )?;
            archive_trust(
                b,
                t,
                &staged.old.trust,
                &old_pub,
                &kf.key.spki_der(),
                true,
                &k.pub_path,
            )?;
            stage_new(
                b,
                t,
                &staged,
                &new_key,
                &new_pub,
                k.algorithm,
                || Op::NewPub {
                    key: new_key.clone(),
                },
                "the new public key",
            )?;
        }
        _ => return Err(conflict(t, entry.main_path(), "was not read")),
    }
    b.note(
        t,
        from,
        Some(Phase::Prepared),
        format!(
            "new {} staged in {} (0700), the old one archived there; nothing live changes",
            if matches!(entry, Entry::KeyPair(_)) {
                "key"
            } else {
                "CA"
            },
            disp(&dir)
        ),
    );
    Ok(())
}

/// Archives the old key unless the archive already holds it (byte for byte).
fn archive_key(
    b: &mut Builder<'_>,
    t: &str,
    have: &Observed<std::sync::Arc<crate::disk::read::KeyFile>>,
    path: &Path,
    data: &[u8],
    live: &Path,
) -> Result<()> {
    match have {
        Observed::Missing => {
            b.step(
                t,
                StepAction::Archive,
                path,
                format!("a byte copy of {} (the old key), kept before anything changes", disp(live)),
                Op::Write { data: data.to_vec(), mode: b.inp.desired.modes.key, never: true, backup: false },
            );
            Ok(())
        }
        Observed::Invalid(m) => Err(conflict(t, path, format!("{m}: remove it, or `kpki ca rotate abort`"))),
        Observed::Unread => Err(conflict(t, path, NOT_READ)),
        Observed::Present(k) if k.key.pem().as_bytes() == data => Ok(()),
        Observed::Present(_) => Err(conflict(t, path, format!("is not {} byte for byte: the live key changed after prepare began; `kpki ca rotate abort` and prepare again", disp(live)))),
    }
}

/// Archives the old certificate (or public key) unless the archive already holds it.
fn archive_trust(
    b: &mut Builder<'_>,
    t: &str,
    have: &Observed<Vec<u8>>,
    path: &Path,
    element: &[u8],
    keypair: bool,
    live: &Path,
) -> Result<()> {
    match have {
        Observed::Missing => {
            let mode = if keypair {
                b.inp.desired.modes.public
            } else {
                b.inp.desired.modes.cert
            };
            b.step(
                t,
                StepAction::Archive,
                path,
                format!(
                    "a copy of {} (the old {}), kept before anything changes",
                    disp(live),
                    if keypair {
                        "public key"
                    } else {
                        "CA certificate"
                    }
                ),
                Op::Write {
                    data: pem_of(element, keypair).into_bytes(),
                    mode,
                    never: true,
                    backup: false,
                },
            );
            Ok(())
        }
        Observed::Invalid(m) => Err(conflict(
            t,
            path,
            format!("{m}: remove it, or `kpki ca rotate abort`"),
        )),
        Observed::Unread => Err(conflict(t, path, NOT_READ)),
        Observed::Present(x) if x.as_slice() == element => Ok(()),
        Observed::Present(_) => Err(conflict(
            t,
            path,
            format!(
                "is not the live {}: `kpki ca rotate abort` and prepare again",
                disp(live)
            ),
        )),
    }
}

/// Stages the new key and its certificate (or public key) unless present.
#[allow(clippy::too_many_arguments)]
fn stage_new(
    b: &mut Builder<'_>,
    t: &str,
    staged: &crate::disk::rotation::Staged,
    key_path: &Path,
    trust_path: &Path,
    alg: KeyAlgorithm,
    trust_op: impl Fn() -> Op,
    what: &str,
) -> Result<()> {
    match &staged.new.key {
        Observed::Missing => {
            if staged.new.trust.exists() {
                return Err(conflict(
                    t,
                    trust_path,
                    format!(
                        "exists without {}: remove it, or `kpki ca rotate abort`",
                        disp(key_path)
                    ),
                ));
            }
            b.step(
                t,
                StepAction::Stage,
                key_path,
                format!("a new {alg} key"),
                Op::NewKey { alg },
            );
        }
        Observed::Invalid(m) => {
            return Err(conflict(
                t,
                key_path,
                format!("{m}: remove it, or `kpki ca rotate abort`"),
            ))
        }
        Observed::Unread => return Err(conflict(t, key_path, NOT_READ)),
        Observed::Present(_) => {}
    }
    match &staged.new.trust {
        Observed::Missing => {
            let why = if staged.new.key.exists() {
                format!("{what}, for the staged key {}", disp(key_path))
            } else {
                what.to_string()
            };
            b.step(t, StepAction::Stage, trust_path, why, trust_op());
        }
        Observed::Invalid(m) => {
            return Err(conflict(
                t,
                trust_path,
                format!("{m}: remove it, or `kpki ca rotate abort`"),
            ))
        }
        Observed::Unread => return Err(conflict(t, trust_path, NOT_READ)),
        Observed::Present(_) => {}
    }
    Ok(())
}

/// `issue`: the key swaps, then the tree's re-issue under the new CAs.
fn issue(b: &mut Builder<'_>, cas: &[Rotation]) -> Result<(Plan, Disk)> {
    let inp = b.inp;
    let mut vdisk = inp.disk.clone();
    for r in cas {
        let (o, n) = sides(r);
        let Some((live, key_path, keypair)) = b.live_paths(&r.entry) else {
            continue;
        };
        let archive = b.layout.key(&r.entry, "old");
        let new_key_path = b.layout.key(&r.entry, "new");
        let staged = inp.disk.rotation.staged.get(&r.entry);
        let Some(Observed::Present(new_key)) = staged.map(|s| &s.new.key) else {
            return Err(conflict(
                &r.entry,
                &new_key_path,
                "the staged new key cannot be read",
            ));
        };
        let want: [&[u8]; 2] = [n, o];
        let key_new = r.live_key_new == Some(true);
        if !key_new {
            // Refuse before anything is written when the archive is not a byte copy of the
            // live key (the writer checks again at the rename).
            let live_key = match inp.disk.entries.get(&r.entry) {
                Some(Seen::Cert {
                    key: Observed::Present(k),
                    ..
                })
                | Some(Seen::KeyPair {
                    key: Observed::Present(k),
                    ..
                }) => Some(k.key.pem().as_bytes().to_vec()),
                _ => None,
            };
            let archived = match staged.map(|s| &s.old.key) {
                Some(Observed::Present(k)) => Some(k.key.pem().as_bytes().to_vec()),
                _ => None,
            };
            if live_key.is_none() || live_key != archived {
                return Err(conflict(
                    &r.entry,
                    &archive,
                    format!(
                        "is not a byte copy of {}: the live key is not replaced without its archive (restore the archive, or `kpki ca rotate abort`)",
                        disp(&key_path)
                    ),
                ));
            }
            b.step(
                &r.entry,
                StepAction::VerifyArchive,
                &archive,
                format!(
                    "must hold {} byte for byte (checked, flushed) before that key is replaced",
                    disp(&key_path)
                ),
                Op::VerifyArchive {
                    live: key_path.clone(),
                },
            );
        }
        if keypair {
            b.set_live(
                r,
                &want,
                "issue makes the new key the signer and lists it first",
            );
            if !key_new {
                b.step(
                    &r.entry,
                    StepAction::ReplaceKey,
                    &key_path,
                    format!(
                        "the new key from {} signs from now on (the old one is archived)",
                        disp(&new_key_path)
                    ),
                    Op::ReplaceKey {
                        data: new_key.key.pem().as_bytes().to_vec(),
                        archive: archive.clone(),
                    },
                );
            }
        } else if !key_new {
            // The staged pair swap that `recover_pending` completes or undoes after a crash.
            let staged_cert = crate::apply::staged_path(&live);
            b.write(
                &r.entry,
                StepAction::SetTrust,
                &staged_cert,
                "the new CA first, then the old one (staged until the key is swapped)".into(),
                bundle(&want, false),
                inp.desired.modes.cert,
                false,
            );
            b.step(
                &r.entry,
                StepAction::ReplaceKey,
                &key_path,
                format!(
                    "the new CA key from {} signs from now on (the old one is archived)",
                    disp(&new_key_path)
                ),
                Op::ReplaceKey {
                    data: new_key.key.pem().as_bytes().to_vec(),
                    archive: archive.clone(),
                },
            );
            b.step(
                &r.entry,
                StepAction::Rename,
                &live,
                format!("{} holds the new CA first, then the old one", disp(&live)),
                Op::Rename { from: staged_cert },
            );
        } else {
            b.set_live(r, &want, "issue lists the new CA first");
        }
        b.signer_copy(r, n, "the new CA signs from now on");
        // The disk as the re-issue sees it: the new CA (and key) in place of the old.
        if let Some(seen) = vdisk.entries.get_mut(&r.entry) {
            let k = std::sync::Arc::clone(new_key);
            match seen {
                Seen::Cert { cert, key } => {
                    let mode = cert
                        .present()
                        .map(|c| c.mode)
                        .unwrap_or(inp.desired.modes.cert);
                    *cert = Observed::Present(CertFile {
                        der: n.to_vec(),
                        chain: vec![o.to_vec()],
                        mode,
                    });
                    *key = Observed::Present(k);
                }
                Seen::KeyPair { key, public } => {
                    let mode = public
                        .present()
                        .map(|p| p.1)
                        .unwrap_or(inp.desired.modes.public);
                    *public = Observed::Present((n.to_vec(), mode));
                    *key = Observed::Present(k);
                }
                Seen::Kubeconfig(_) => {}
            }
        }
        vdisk.rotation.live.insert(
            r.entry.clone(),
            Observed::Present(want.iter().map(|x| x.to_vec()).collect()),
        );
        if signer_copied(&r.entry) {
            vdisk
                .rotation
                .signer
                .insert(r.entry.clone(), Observed::Present(vec![n.to_vec()]));
        }
    }
    // Judge the tree as if the new CAs were in place: what the old CA signed is flagged
    // (rotation-signer-unexpected, remedy reissue) and renewed, with backups.
    let a = assess::assess(inp.desired, &vdisk, inp.now, &assess::Options::default());
    let rotating: Vec<&str> = cas.iter().map(|r| r.entry.as_str()).collect();
    let mut names = Vec::new();
    for ea in &a.entries {
        let of_rotating = match inp.desired.get(&ea.entry) {
            Some(Entry::Leaf(c)) => c.ca.as_deref().is_some_and(|c| rotating.contains(&c)),
            Some(Entry::Kubeconfig(k)) => rotating.contains(&k.ca.as_str()),
            _ => false,
        };
        if of_rotating
            && !ea.credentials_elsewhere
            && ea.findings.iter().any(|f| {
                f.remedy == assess::Remedy::Reissue
                    && matches!(
                        f.code,
                        Code::RotationSignerUnexpected
                            | Code::RotationTrustMissing
                            | Code::RotationPhaseMixed
                    )
            })
        {
            names.push(ea.entry.clone());
        }
    }
    let opts = plan::Options::renew(names);
    let mut tree = plan::plan_assessed(inp.desired, &a, inp.now, &opts);
    // A certificate signed by the old CA is renewed, not regenerated: a kubeconfig keeps its
    // file (only its credentials and CA data change) and every replaced file is backed up, as
    // `certs renew` does.
    for s in &mut tree.steps {
        if s.action == Action::Regenerate {
            s.action = Action::Renew;
        }
    }
    tree.check()?;
    // Kubeconfigs the re-issue leaves alone (the kubelet's by-reference client certificate)
    // still get the CA data of the phase.
    let renewed: Vec<String> = tree
        .steps
        .iter()
        .filter(|s| {
            matches!(
                s.action,
                Action::Renew | Action::Regenerate | Action::Create
            )
        })
        .map(|s| s.entry.clone())
        .collect();
    for r in cas {
        let (o, n) = sides(r);
        b.set_kubeconfigs(r, &[n, o], "issue lists the new CA first", &renewed)?;
    }
    Ok((tree, vdisk))
}
