//! File-system safety: exact modes whatever the umask (keys 0600 from the moment the file is
//! created), no writes through symbolic links, no writes into directories others can write to
//! (unless `--allow-insecure-dir`), and an existing CA key is never replaced by any command,
//! flag or race.

#![allow(clippy::unwrap_used)]

mod common;
mod reliability;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use reliability::{assert_complete, run_ok, Checker, Layout, Rng, FLAGS};

fn kpki_umask0(args: &[String], strace_to: Option<&Path>) -> Output {
    let mut script = String::from("umask 000; exec ");
    if let Some(t) = strace_to {
        script.push_str(&format!(
            "strace -f -qq -e trace=openat,fchmod,write,close -o '{}' ",
            t.display()
        ));
    }
    script.push_str(&format!("'{}'", env!("CARGO_BIN_EXE_kpki")));
    for a in args {
        script.push_str(&format!(" '{a}'"));
    }
    Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ok(o: &Output) {
    assert!(o.status.success(), "{:?}: {}", o.status, stderr(o));
}

fn want_mode(rel: &str, dir: bool) -> u32 {
    if dir {
        0o755
    } else if rel.contains(".crt") {
        0o644
    } else {
        0o600 // keys, sa.pub, kubeconfigs, and their backups
    }
}

/// With umask 000 every key, kubeconfig and sa.pub is 0600, certificates 0644, directories 0755
/// (init, renew with its backups, and nodes).
#[test]
fn modes_are_exact_with_umask_000() {
    let dir = tempfile::tempdir().unwrap();
    let l = Layout::new(dir.path());
    ok(&kpki_umask0(&l.args(&["init"], FLAGS), None));
    ok(&kpki_umask0(
        &l.args(&["certs", "renew", "all"], FLAGS),
        None,
    ));
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    reliability::set_mode(&out, 0o755);
    let list = common::write_file(dir.path(), "nodes.txt", b"node-a,10.1.0.1\nnode-b\n");
    let nodes: Vec<String> = [
        "nodes",
        "--cert-dir",
        &l.pki.display().to_string(),
        "--nodes",
        &list.display().to_string(),
        "--out-dir",
        &out.display().to_string(),
        "--serving",
        "--apiserver-advertise-address",
        "10.0.0.10",
        "--encryption-algorithm",
        "ECDSA-P256",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    ok(&kpki_umask0(&nodes, None));
    let snap = common::snapshot(dir.path());
    let mut seen_keys = 0;
    for (rel, n) in &snap {
        if rel == "nodes.txt" || rel == "k" || rel == "out" {
            continue;
        }
        assert_eq!(n.mode, want_mode(rel, n.dir), "{rel}: mode {:04o}", n.mode);
        seen_keys += usize::from(rel.ends_with(".key") || rel.contains(".key.bak-"));
    }
    // 10 pairs + sa + 7 renewal backups + 2 node serving keys
    assert_eq!(seen_keys, 10 + 1 + 7 + 2, "{:?}", snap.keys());
    assert_complete(&mut Checker::default_tree(), &l, FLAGS);
}

/// Under strace (when installed): every temporary file is created by `openat(O_CREAT|O_EXCL)`
/// with mode 0600 and gets its final mode by `fchmod` on the descriptor before the first byte is
/// written, so a key is never readable by others, not even for an instant.
#[test]
fn temporary_files_are_created_0600_and_fchmoded_before_the_first_write() {
    if Command::new("strace").arg("-V").output().is_err() {
        println!("strace is not installed: skipping the syscall-level check");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let l = Layout::new(dir.path());
    let trace = dir.path().join("trace.txt");
    ok(&kpki_umask0(&l.args(&["init"], FLAGS), Some(&trace)));
    let text = std::fs::read_to_string(&trace).unwrap();
    // Per (pid, fd): the temp file open on it, whether it was fchmod-ed, to what.
    #[derive(Default)]
    struct Tmp {
        path: String,
        fchmod: Option<String>,
        wrote: bool,
    }
    let mut open: BTreeMap<(String, String), Tmp> = BTreeMap::new();
    let mut checked = 0;
    for line in text.lines() {
        let (pid, call) = line.split_once(' ').unwrap_or(("", line));
        let call = call.trim_start();
        if call.starts_with("openat(") && call.contains(".kpki-tmp\"") {
            let path = call.split('"').nth(1).unwrap().to_string();
            assert!(
                call.contains("O_CREAT") && call.contains("O_EXCL"),
                "{line}"
            );
            let (args, ret) = call.rsplit_once(") = ").unwrap();
            let mode = args.rsplit(", ").next().unwrap();
            assert_eq!(
                mode, "0600",
                "temporary file created with mode {mode}: {line}"
            );
            open.insert(
                (pid.to_string(), ret.trim().to_string()),
                Tmp {
                    path,
                    ..Default::default()
                },
            );
        } else if let Some(rest) = call.strip_prefix("fchmod(") {
            let (fd, rest) = rest.split_once(", ").unwrap();
            if let Some(t) = open.get_mut(&(pid.to_string(), fd.to_string())) {
                assert!(!t.wrote, "{}: fchmod after a write", t.path);
                t.fchmod = Some(rest.split(')').next().unwrap().to_string());
            }
        } else if let Some(rest) = call.strip_prefix("write(") {
            let fd = rest.split(',').next().unwrap();
            if let Some(t) = open.get_mut(&(pid.to_string(), fd.to_string())) {
                assert!(t.fchmod.is_some(), "{}: written before fchmod", t.path);
                t.wrote = true;
            }
        } else if let Some(rest) = call.strip_prefix("close(") {
            let fd = rest.split(')').next().unwrap();
            if let Some(t) = open.remove(&(pid.to_string(), fd.to_string())) {
                let name = Path::new(&t.path)
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                let want = if name.contains(".crt.") {
                    "0644"
                } else {
                    "0600"
                };
                assert_eq!(t.fchmod.as_deref(), Some(want), "{name}");
                assert!(t.wrote, "{name}: never written");
                checked += 1;
            }
        }
    }
    assert_eq!(
        checked, 27,
        "temporary files traced (one per file of the tree)"
    );
}

// ------------------------------------------------------------------ symbolic links

fn fresh() -> (tempfile::TempDir, Layout, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let l = Layout::new(dir.path());
    let outside = dir.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    (dir, l, outside)
}

fn symlink(target: &Path, link: &Path) {
    std::fs::create_dir_all(link.parent().unwrap()).unwrap();
    reliability::set_mode(link.parent().unwrap(), 0o755);
    std::os::unix::fs::symlink(target, link).unwrap();
}

/// A dangling link at a key path (kubeconfig path) is refused before anything is written: the
/// file it points to is not created, nothing in the tree changes.
#[test]
fn dangling_symlinks_at_key_and_kubeconfig_paths_are_refused() {
    for at in [
        "pki/apiserver.key",
        "pki/ca.key",
        "pki/etcd/ca.key",
        "pki/sa.key",
        "admin.conf",
    ] {
        let (dir, l, outside) = fresh();
        // The cert dir exists: kpki creates a missing one when it takes its lock, before it
        // reads the tree (see docs/reliability.md).
        std::fs::create_dir(&l.pki).unwrap();
        reliability::set_mode(&l.pki, 0o755);
        let target = outside.join("stolen");
        symlink(&target, &l.k.join(at));
        let before = common::snapshot(dir.path());
        let (code, err) = common::kpki_fail(l.args(&["init"], FLAGS));
        assert_eq!(code, 2, "{at}: {err}");
        assert_eq!(err.lines().count(), 1, "{at}: {err}");
        assert!(
            err.contains(&l.k.join(at).display().to_string()),
            "{at}: {err}"
        );
        assert!(!target.exists(), "{at}: kpki wrote through the link");
        let after = common::snapshot(dir.path());
        assert!(
            common::changed(&before, &after).is_empty(),
            "{at}: {:?}",
            common::changed(&before, &after)
        );
    }
}

/// A renewal that finds a link at a key path it must replace refuses, leaves the link and its
/// target alone, and writes nothing at all (not even backups or a staged certificate).
#[test]
fn renewal_refuses_a_symlinked_key_before_writing_anything() {
    let (dir, l, outside) = fresh();
    run_ok(&l.args(&["init"], FLAGS));
    let key = l.pki.join("apiserver.key");
    let real = outside.join("apiserver.key");
    std::fs::rename(&key, &real).unwrap();
    std::os::unix::fs::symlink(&real, &key).unwrap();
    let target_before = std::fs::read(&real).unwrap();
    let before = common::snapshot(dir.path());
    let (code, err) = common::kpki_fail(l.args(&["certs", "renew", "all"], FLAGS));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&key.display().to_string()) && err.contains("symbolic link"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&real).unwrap(),
        target_before,
        "link target changed"
    );
    assert!(std::fs::symlink_metadata(&key)
        .unwrap()
        .file_type()
        .is_symlink());
    let after = common::snapshot(dir.path());
    let changed = common::changed(&before, &after);
    assert!(
        changed.is_empty(),
        "the refused renewal still wrote: {changed:?}"
    );
}

/// `kpki nodes` refuses a link at a node's key path and leaves its target alone.
#[test]
fn nodes_refuses_a_symlinked_key() {
    let (dir, l, outside) = fresh();
    run_ok(&l.args(&["init"], FLAGS));
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    reliability::set_mode(&out, 0o755);
    let target = outside.join("node-key");
    std::fs::write(&target, b"not yours\n").unwrap();
    symlink(&target, &out.join("node-a/kubelet.key"));
    let list = common::write_file(dir.path(), "nodes.txt", b"node-a\n");
    let o = common::kpki([
        "nodes",
        "--cert-dir",
        &l.pki.display().to_string(),
        "--nodes",
        &list.display().to_string(),
        "--out-dir",
        &out.display().to_string(),
        "--serving",
        "--apiserver-advertise-address",
        "10.0.0.10",
        "--encryption-algorithm",
        "ECDSA-P256",
    ]);
    assert!(!o.status.success(), "nodes wrote through a link");
    let err = stderr(&o);
    assert!(
        err.contains("node-a/kubelet.key") && err.contains("symbolic link"),
        "{err}"
    );
    assert_eq!(std::fs::read(&target).unwrap(), b"not yours\n");
    assert!(std::fs::symlink_metadata(out.join("node-a/kubelet.key"))
        .unwrap()
        .file_type()
        .is_symlink());
}

// ------------------------------------------------------------------ insecure directories

/// A cert dir or kubeconfig dir that group or others can write to is refused (exit 2, one line
/// naming it, nothing written) unless `--allow-insecure-dir`; a missing cert dir is judged by the
/// directory it would be created in.
#[test]
fn group_or_world_writable_dirs_are_refused_unless_allowed() {
    let cases: &[(&str, &str, u32)] = &[
        ("cert dir 0775", "pki", 0o775),
        ("cert dir 0757", "pki", 0o757),
        ("kubeconfig dir 0777", "", 0o777),
        ("kubeconfig dir 1777 (sticky, like /tmp)", "", 0o1777),
        ("etcd subdir 0770", "pki/etcd", 0o770),
    ];
    for (what, rel, mode) in cases {
        let (dir, l, _) = fresh();
        let d = if rel.is_empty() {
            l.k.clone()
        } else {
            l.k.join(rel)
        };
        std::fs::create_dir_all(&d).unwrap();
        std::fs::create_dir_all(&l.pki).unwrap();
        reliability::set_mode(&l.pki, 0o755);
        reliability::set_mode(&d, *mode);
        let before = common::snapshot(dir.path());
        let o = common::kpki(l.args(&["init"], FLAGS));
        let after = common::snapshot(dir.path());
        assert_eq!(o.status.code(), Some(2), "{what}: {}", stderr(&o));
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 1, "{what}: {err}");
        assert!(err.contains(&d.display().to_string()), "{what}: {err}");
        assert!(err.contains("writable by group or others"), "{what}: {err}");
        assert!(err.contains("--allow-insecure-dir"), "{what}: {err}");
        assert!(common::changed(&before, &after).is_empty(), "{what}: wrote");
        let mut args = vec!["--allow-insecure-dir".to_string()];
        args.extend(l.args(&["init"], FLAGS));
        ok(&common::kpki(&args));
        assert_eq!(
            common::mode(&d),
            *mode,
            "{what}: kpki changed the directory's mode"
        );
    }
    // Missing cert dir under an open parent: the parent is named.
    let (_dir, l, _) = fresh();
    reliability::set_mode(&l.k, 0o777);
    let (code, err) = common::kpki_fail(l.args(&["init"], FLAGS));
    assert_eq!(code, 2);
    assert!(
        err.contains(&l.k.display().to_string()) && err.contains("0777"),
        "{err}"
    );
    assert!(!l.pki.exists(), "the cert dir was created anyway");
    // Renewal and nodes refuse too.
    let (dir, l, _) = fresh();
    run_ok(&l.args(&["init"], FLAGS));
    reliability::set_mode(&l.pki, 0o775);
    let (code, err) = common::kpki_fail(l.args(&["certs", "renew", "all"], FLAGS));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("writable by group or others"), "{err}");
    reliability::set_mode(&l.pki, 0o755);
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    reliability::set_mode(&out, 0o777);
    let list = common::write_file(dir.path(), "nodes.txt", b"node-a\n");
    let (code, err) = common::kpki_fail([
        "nodes",
        "--cert-dir",
        &l.pki.display().to_string(),
        "--nodes",
        &list.display().to_string(),
        "--out-dir",
        &out.display().to_string(),
        "--apiserver-advertise-address",
        "10.0.0.10",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&out.display().to_string()) && err.contains("writable"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0);
}

// ------------------------------------------------------------------ CA keys

const CA_FILES: &[&str] = &[
    "ca.crt",
    "ca.key",
    "front-proxy-ca.crt",
    "front-proxy-ca.key",
    "etcd/ca.crt",
    "etcd/ca.key",
];

/// (bytes, inode, mtime) of each CA file: an atomic replacement with equal bytes still changes
/// the inode.
fn ca_state(pki: &Path) -> Vec<(Vec<u8>, u64, i64, i64)> {
    CA_FILES
        .iter()
        .map(|f| {
            let p = pki.join(f);
            let md = std::fs::metadata(&p).unwrap();
            (
                std::fs::read(&p).unwrap(),
                md.ino(),
                md.mtime(),
                md.mtime_nsec(),
            )
        })
        .collect()
}

/// CA keys made by openssl (not kpki) and present without certificates: init issues a
/// certificate for each existing key and leaves the key file itself untouched.
#[test]
fn existing_ca_keys_without_certificates_are_kept() {
    let (_dir, l, _) = fresh();
    std::fs::create_dir_all(l.pki.join("etcd")).unwrap();
    reliability::set_mode(&l.pki, 0o755);
    reliability::set_mode(&l.pki.join("etcd"), 0o755);
    let mut before = Vec::new();
    for ca in common::CAS {
        let key = l.pki.join(format!("{ca}.key"));
        let pem = common::tool_ok(
            "openssl",
            ["ecparam", "-name", "prime256v1", "-genkey", "-noout"],
            None,
        );
        std::fs::write(&key, &pem).unwrap();
        reliability::set_mode(&key, 0o600);
        let md = std::fs::metadata(&key).unwrap();
        before.push((key, pem, md.ino(), md.mtime_nsec()));
    }
    let out = common::kpki_ok(l.args(&["init"], FLAGS));
    assert_eq!(
        out.matches("CA key exists without a certificate").count(),
        3,
        "{out}"
    );
    for (key, pem, ino, mtime) in before {
        let md = std::fs::metadata(&key).unwrap();
        assert_eq!(std::fs::read(&key).unwrap(), pem, "{}", key.display());
        assert_eq!(
            (md.ino(), md.mtime_nsec()),
            (ino, mtime),
            "{} rewritten",
            key.display()
        );
        common::assert_key_matches(&key, &key.with_extension("crt"));
    }
    assert_complete(&mut Checker::default_tree(), &l, FLAGS);
}

/// No flag combination of init, renew or plan touches a CA file of an existing tree:
/// `--regenerate-drifted` with drifted inputs, another key algorithm, other validities, renewing
/// everything, or naming a CA for renewal.
#[test]
fn no_command_or_flag_replaces_an_existing_ca() {
    let (_dir, l, _) = fresh();
    run_ok(&l.args(&["init"], FLAGS));
    let before = ca_state(&l.pki);
    let drifted: &[&str] = &[
        "--node-name",
        "cp-2",
        "--apiserver-advertise-address",
        "10.0.0.99",
        "--encryption-algorithm",
        "ECDSA-P256",
    ];
    let runs: Vec<(Vec<&str>, &[&str], bool)> = vec![
        (vec!["init", "--regenerate-drifted"], drifted, true),
        (vec!["init"], FLAGS_RSA_LIKE, false),
        (
            vec!["init", "--regenerate-drifted", "--ca-validity", "1h"],
            FLAGS,
            true,
        ),
        (vec!["certs", "renew", "all"], FLAGS, true),
        // A node name that contradicts the tree is refused (identity never changes silently).
        (vec!["certs", "renew", "all", "--keep-sans"], drifted, false),
        (vec!["certs", "renew", "apiserver"], FLAGS, true),
        (vec!["certs", "renew", "ca"], FLAGS, false),
        (vec!["certs", "renew", "etcd-ca"], FLAGS, false),
        (
            vec!["init", "--dry-run", "--regenerate-drifted"],
            drifted,
            true,
        ),
    ];
    for (i, (cmd, flags, should_succeed)) in runs.into_iter().enumerate() {
        let o = common::kpki(l.args(&cmd, flags));
        assert_eq!(
            o.status.success(),
            should_succeed,
            "{cmd:?}: {}",
            stderr(&o)
        );
        assert!(
            ca_state(&l.pki) == before,
            "{cmd:?} {flags:?} touched a CA file"
        );
        if i == 0 {
            // The drifted regeneration did happen (the run was not a no-op).
            let f = common::facts(&l.pki.join("apiserver.crt"));
            assert!(f.dns_set().contains("cp-2"), "{:?}", f.dns_set());
        }
    }
}

const FLAGS_RSA_LIKE: &[&str] = reliability::FLAGS_RSA;

/// A CA key that appears while init runs (another writer, racing it) is never replaced: kpki
/// writes CA keys with a no-clobber rename, so whichever key lands first stays. The test places
/// its key with link(2), itself no-clobber, at random moments inside init's write window.
#[test]
fn a_ca_key_that_appears_mid_run_is_never_replaced() {
    let seed = reliability::seed();
    println!("KPKI_CRASH_SEED={seed}");
    let mut rng = Rng::new(seed ^ 0xca);
    let foreign = tempfile::tempdir().unwrap();
    let ours = foreign.path().join("ca.key");
    std::fs::write(
        &ours,
        common::tool_ok(
            "openssl",
            ["ecparam", "-name", "prime256v1", "-genkey", "-noout"],
            None,
        ),
    )
    .unwrap();
    reliability::set_mode(&ours, 0o600);
    let ours_bytes = std::fs::read(&ours).unwrap();
    let w = {
        let d = tempfile::tempdir().unwrap();
        reliability::measure_window(
            &Layout::new(d.path()).args(&["init"], FLAGS),
            &d.path().join("k"),
        )
    };
    let (mut we_first, mut kpki_first, mut refused) = (0, 0, 0);
    for trial in 0..12 {
        let (_dir, l, _) = fresh();
        std::fs::create_dir(&l.pki).unwrap();
        reliability::set_mode(&l.pki, 0o755);
        let target = l.pki.join("ca.key");
        // Mostly before the first write (kpki adopts our key, or finds it at its own write);
        // some after (kpki's key is first and our link fails).
        let d = rng.delay(w.first_write + Duration::from_millis(15));
        let child = reliability::kpki_cmd(&l.args(&["init"], FLAGS))
            .spawn()
            .unwrap();
        std::thread::sleep(d);
        let placed = std::fs::hard_link(&ours, &target).is_ok();
        let o = child.wait_with_output().unwrap();
        let now = std::fs::read(&target).unwrap();
        let ctx = format!("seed={seed} trial={trial} delay={d:?} placed={placed}");
        if placed {
            we_first += 1;
            assert_eq!(now, ours_bytes, "{ctx}: our CA key was replaced");
            if !o.status.success() {
                refused += 1;
                let err = String::from_utf8_lossy(&o.stderr);
                assert!(
                    err.contains("ca.key") && err.contains("exists already"),
                    "{ctx}: {err}"
                );
            }
        } else {
            kpki_first += 1;
            assert_ne!(now, ours_bytes, "{ctx}");
        }
        if o.status.success() {
            common::assert_key_matches(&target, &l.pki.join("ca.crt"));
        }
    }
    println!(
        "CA key race: our key first {we_first} (kpki refused {refused}, adopted {}), kpki first {kpki_first}",
        we_first - refused
    );
}
