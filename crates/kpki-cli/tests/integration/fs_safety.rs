//! File-system safety: exact modes whatever the umask (keys 0600 from the moment the file is
//! created), no writes through symbolic links, no writes into directories others can write to
//! (unless `--allow-insecure-dir`), and an existing CA key is never replaced by any command,
//! flag or race.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::util::reliability::{self, assert_complete, run_ok, Checker, Layout, Rng};
use crate::util::{self, ok, serial, set_mode, stderr, strings, Kpki, INPUTS, INPUTS_RSA, KPKI};

/// Runs kpki with umask 000, set in the child's own shell: the test process's umask is shared by
/// every test running beside this one and is never changed. Optionally under strace.
fn kpki_umask0(args: &[String], strace_to: Option<&Path>) -> Output {
    let mut c = Command::new("sh");
    c.args(["-c", "umask 000; exec \"$@\"", "sh"]);
    if let Some(t) = strace_to {
        c.args([
            "strace",
            "-f",
            "-qq",
            "-e",
            "trace=openat,fchmod,write,close",
            "-o",
        ])
        .arg(t);
    }
    let what = format!("kpki {args:?} (umask 000)");
    ok(
        c.arg(KPKI)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap(),
        &what,
    )
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
    kpki_umask0(&l.args(&["init"], INPUTS), None);
    kpki_umask0(&l.args(&["certs", "renew", "all"], INPUTS), None);
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    set_mode(&out, 0o755);
    let list = util::write_file(dir.path(), "nodes.txt", b"node-a,10.1.0.1\nnode-b\n");
    kpki_umask0(&l.nodes_args(&list, &out), None);
    let snap = util::snapshot(dir.path());
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
    assert_complete(&mut Checker::default_tree(), &l, INPUTS);
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
    kpki_umask0(&l.args(&["init"], INPUTS), Some(&trace));
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
    set_mode(link.parent().unwrap(), 0o755);
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
        set_mode(&l.pki, 0o755);
        let target = outside.join("stolen");
        symlink(&target, &l.k.join(at));
        let before = util::snapshot(dir.path());
        let (code, err) = util::kpki_fail(l.args(&["init"], INPUTS));
        assert_eq!(code, 2, "{at}: {err}");
        assert_eq!(err.lines().count(), 1, "{at}: {err}");
        assert!(
            err.contains(&l.k.join(at).display().to_string()),
            "{at}: {err}"
        );
        assert!(!target.exists(), "{at}: kpki wrote through the link");
        let after = util::snapshot(dir.path());
        assert!(
            util::changed(&before, &after).is_empty(),
            "{at}: {:?}",
            util::changed(&before, &after)
        );
    }
}

/// A renewal that finds a link at a key path it must replace refuses, leaves the link and its
/// target alone, and writes nothing at all (not even backups or a staged certificate).
#[test]
fn renewal_refuses_a_symlinked_key_before_writing_anything() {
    let (dir, l, outside) = fresh();
    run_ok(&l.args(&["init"], INPUTS));
    let key = l.pki.join("apiserver.key");
    let real = outside.join("apiserver.key");
    std::fs::rename(&key, &real).unwrap();
    std::os::unix::fs::symlink(&real, &key).unwrap();
    let target_before = std::fs::read(&real).unwrap();
    let before = util::snapshot(dir.path());
    let (code, err) = util::kpki_fail(l.args(&["certs", "renew", "all"], INPUTS));
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
    let after = util::snapshot(dir.path());
    let changed = util::changed(&before, &after);
    assert!(
        changed.is_empty(),
        "the refused renewal still wrote: {changed:?}"
    );
}

/// `kpki nodes` refuses a link at a node's key path and leaves its target alone.
#[test]
fn nodes_refuses_a_symlinked_key() {
    let (dir, l, outside) = fresh();
    run_ok(&l.args(&["init"], INPUTS));
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    set_mode(&out, 0o755);
    let target = outside.join("node-key");
    std::fs::write(&target, b"not yours\n").unwrap();
    symlink(&target, &out.join("node-a/kubelet.key"));
    let list = util::write_file(dir.path(), "nodes.txt", b"node-a\n");
    let o = util::kpki(l.nodes_args(&list, &out));
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
        set_mode(&l.pki, 0o755);
        set_mode(&d, *mode);
        let before = util::snapshot(dir.path());
        let o = util::kpki(l.args(&["init"], INPUTS));
        let after = util::snapshot(dir.path());
        assert_eq!(o.status.code(), Some(2), "{what}: {}", stderr(&o));
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 1, "{what}: {err}");
        assert!(err.contains(&d.display().to_string()), "{what}: {err}");
        assert!(err.contains("writable by group or others"), "{what}: {err}");
        assert!(err.contains("--allow-insecure-dir"), "{what}: {err}");
        assert!(util::changed(&before, &after).is_empty(), "{what}: wrote");
        let mut args = vec!["--allow-insecure-dir".to_string()];
        args.extend(l.args(&["init"], INPUTS));
        util::kpki_ok(&args);
        assert_eq!(
            util::mode(&d),
            *mode,
            "{what}: kpki changed the directory's mode"
        );
    }
    // Missing cert dir under an open parent: the parent is named.
    let (_dir, l, _) = fresh();
    set_mode(&l.k, 0o777);
    let (code, err) = util::kpki_fail(l.args(&["init"], INPUTS));
    assert_eq!(code, 2);
    assert!(
        err.contains(&l.k.display().to_string()) && err.contains("0777"),
        "{err}"
    );
    assert!(!l.pki.exists(), "the cert dir was created anyway");
    // Renewal and nodes refuse too.
    let (dir, l, _) = fresh();
    run_ok(&l.args(&["init"], INPUTS));
    set_mode(&l.pki, 0o775);
    let (code, err) = util::kpki_fail(l.args(&["certs", "renew", "all"], INPUTS));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("writable by group or others"), "{err}");
    set_mode(&l.pki, 0o755);
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    set_mode(&out, 0o777);
    let list = util::write_file(dir.path(), "nodes.txt", b"node-a\n");
    let (code, err) = Kpki::nodes(&l.pki, &list, &out)
        .args(["--apiserver-advertise-address", "10.0.0.10"])
        .fail();
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
    set_mode(&l.pki, 0o755);
    set_mode(&l.pki.join("etcd"), 0o755);
    let mut before = Vec::new();
    for ca in util::CAS {
        let key = l.pki.join(format!("{ca}.key"));
        let pem = util::tool_ok(
            "openssl",
            ["ecparam", "-name", "prime256v1", "-genkey", "-noout"],
            None,
        );
        std::fs::write(&key, &pem).unwrap();
        set_mode(&key, 0o600);
        let md = std::fs::metadata(&key).unwrap();
        before.push((key, pem, md.ino(), md.mtime_nsec()));
    }
    let out = util::kpki_ok(l.args(&["init"], INPUTS));
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
        util::assert_key_matches(&key, &key.with_extension("crt"));
    }
    assert_complete(&mut Checker::default_tree(), &l, INPUTS);
}

/// No flag combination of init, renew or plan touches a CA file of an existing tree:
/// `--regenerate-drifted` with drifted inputs, another key algorithm, other validities, renewing
/// everything, or naming a CA for renewal.
#[test]
fn no_command_or_flag_replaces_an_existing_ca() {
    let (_dir, l, _) = fresh();
    run_ok(&l.args(&["init"], INPUTS));
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
        (vec!["init"], INPUTS_RSA, false),
        (
            vec!["init", "--regenerate-drifted", "--ca-validity", "1h"],
            INPUTS,
            true,
        ),
        (vec!["certs", "renew", "all"], INPUTS, true),
        // A node name that contradicts the tree is refused (identity never changes silently).
        (vec!["certs", "renew", "all", "--keep-sans"], drifted, false),
        (vec!["certs", "renew", "apiserver"], INPUTS, true),
        (vec!["certs", "renew", "ca"], INPUTS, false),
        (vec!["certs", "renew", "etcd-ca"], INPUTS, false),
        (
            vec!["init", "--dry-run", "--regenerate-drifted"],
            drifted,
            true,
        ),
    ];
    for (i, (cmd, flags, should_succeed)) in runs.into_iter().enumerate() {
        let o = util::kpki(l.args(&cmd, flags));
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
            let f = util::facts(&l.pki.join("apiserver.crt"));
            assert!(f.dns_set().contains("cp-2"), "{:?}", f.dns_set());
        }
    }
}

/// A CA key that appears while init runs (another writer, racing it) is never replaced: kpki
/// writes CA keys with a no-clobber rename, so whichever key lands first stays. The test places
/// its key with link(2), itself no-clobber, at random moments inside init's write window.
#[test]
fn a_ca_key_that_appears_mid_run_is_never_replaced() {
    let _serial = serial(); // a race timed against a calibrated run
    let seed = util::seed();
    println!("KPKI_CRASH_SEED={seed}");
    let mut rng = Rng::new(seed ^ 0xca);
    let foreign = tempfile::tempdir().unwrap();
    let ours = foreign.path().join("ca.key");
    std::fs::write(
        &ours,
        util::tool_ok(
            "openssl",
            ["ecparam", "-name", "prime256v1", "-genkey", "-noout"],
            None,
        ),
    )
    .unwrap();
    set_mode(&ours, 0o600);
    let ours_bytes = std::fs::read(&ours).unwrap();
    let w = {
        let d = tempfile::tempdir().unwrap();
        reliability::measure_window(
            &Layout::new(d.path()).args(&["init"], INPUTS),
            &d.path().join("k"),
        )
    };
    let (mut we_first, mut kpki_first, mut refused) = (0, 0, 0);
    for trial in 0..12 {
        let (_dir, l, _) = fresh();
        std::fs::create_dir(&l.pki).unwrap();
        set_mode(&l.pki, 0o755);
        let target = l.pki.join("ca.key");
        // Mostly before the first write (kpki adopts our key, or finds it at its own write);
        // some after (kpki's key is first and our link fails).
        let d = rng.delay(w.first_write + Duration::from_millis(15));
        let child = reliability::kpki_cmd(&l.args(&["init"], INPUTS))
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
            util::assert_key_matches(&target, &l.pki.join("ca.crt"));
        }
    }
    println!(
        "CA key race: our key first {we_first} (kpki refused {refused}, adopted {}), kpki first {kpki_first}",
        we_first - refused
    );
}

// ------------------------------------------------------------------ issue 11

fn snap_eq(root: &Path, before: &BTreeMap<String, util::Node>, what: &str) {
    let after = util::snapshot(root);
    let changed = util::changed(before, &after);
    let touched = util::touched(before, &after);
    assert!(
        changed.is_empty() && touched.is_empty(),
        "{what}: changed {changed:?}, rewritten {touched:?}"
    );
}

/// `kubeconfig user --out` and `kubeconfig bootstrap --out` go through the one path check: a CA
/// key, another entry's file, an existing key file, a link or a directory others can write to
/// are refused (exit 2, one line, nothing changed); a new file is written
/// 0600 and kubectl reads it.
#[test]
fn out_files_go_through_the_path_check() {
    let (dir, l, outside) = fresh();
    run_ok(&l.args(&["init"], INPUTS));
    let root = dir.path();
    let pki = l.pki.display().to_string();
    std::fs::write(
        outside.join("foreign.key"),
        std::fs::read(l.pki.join("apiserver.key")).unwrap(),
    )
    .unwrap();
    let open = root.join("open");
    std::fs::create_dir(&open).unwrap();
    set_mode(&open, 0o777);
    symlink(&outside.join("target.conf"), &l.k.join("link.conf"));
    let cmds: [Vec<String>; 2] = [
        strings(&[
            "kubeconfig",
            "user",
            "--client-name",
            "alice",
            "--cert-dir",
            &pki,
            "--apiserver-advertise-address",
            "10.0.0.10",
        ]),
        strings(&[
            "kubeconfig",
            "bootstrap",
            "--token",
            "abcdef.0123456789abcdef",
            "--cert-dir",
            &pki,
            "--apiserver-advertise-address",
            "10.0.0.10",
        ]),
    ];
    let refused: Vec<(PathBuf, &str)> = vec![
        (l.pki.join("ca.key"), "key of CA ca"),
        (l.pki.join("etcd/ca.key"), "key of CA etcd-ca"),
        (l.k.join("admin.conf"), "file of entry admin.conf"),
        (l.pki.join("apiserver.crt"), "file of entry apiserver"),
        (outside.join("foreign.key"), "holds a private key"),
        (l.k.join("link.conf"), "symbolic link"),
        (open.join("x.conf"), "writable by group or others"),
    ];
    for cmd in &cmds {
        for (target, why) in &refused {
            let before = util::snapshot(root);
            let mut args = cmd.clone();
            args.extend(strings(&["--out", &target.display().to_string()]));
            let (code, err) = util::kpki_fail(&args);
            assert_eq!(code, 2, "{args:?}: {err}");
            assert_eq!(err.lines().count(), 1, "{err}");
            assert!(err.contains(why), "{}: {err}", target.display());
            snap_eq(
                root,
                &before,
                &format!("{} --out {}", cmd[1], target.display()),
            );
        }
        let target = l.k.join(format!("{}-new.conf", cmd[1]));
        let mut args = cmd.clone();
        args.extend(strings(&["--out", &target.display().to_string()]));
        util::kpki_ok(&args);
        assert_eq!(util::mode(&target), 0o600);
        util::kubeconfig_json(&target);
    }
}

/// Runs a python script (PyYAML, an independent YAML reader/writer) with arguments.
fn python(script: &str, args: &[&str]) -> String {
    let mut a = vec!["-c", script];
    a.extend_from_slice(args);
    String::from_utf8(util::tool_ok("python3", &a, None)).unwrap()
}

/// Moves a kubeconfig's client certificate and key out of the file into `cert` and `key` (one
/// file when equal), referenced by `cert_ref` / `key_ref` as written.
fn credentials_to_files(conf: &Path, cert: &Path, key: &Path, cert_ref: &str, key_ref: &str) {
    python(
        "import base64, sys, yaml
p, cert, key, cref, kref = sys.argv[1:6]
c = yaml.safe_load(open(p))
u = c['users'][0]['user']
crt = base64.b64decode(u.pop('client-certificate-data'))
k = base64.b64decode(u.pop('client-key-data'))
if cert == key:
    open(cert, 'wb').write(crt + k)
else:
    open(cert, 'wb').write(crt)
    open(key, 'wb').write(k)
u['client-certificate'] = cref
u['client-key'] = kref
yaml.safe_dump(c, open(p, 'w'))
",
        &[
            &conf.display().to_string(),
            &cert.display().to_string(),
            &key.display().to_string(),
            cert_ref,
            key_ref,
        ],
    );
    set_mode(cert, if cert == key { 0o600 } else { 0o644 });
    set_mode(key, 0o600);
}

/// Kubeconfigs that reference their client certificate and key by path (a kubeadm node after
/// kubelet-finalize, or an operator's layout): `certs renew` renews files inside the tree's
/// directories in place (new key and certificate, backups, the kubeconfig itself unchanged),
/// one file holding both as well; files outside the tree, and the kubelet's own rotated
/// `kubelet-client-current.pem`, are left alone. init and verify accept all of them.
#[test]
fn kubeconfig_credentials_kept_as_files_are_renewed_in_place() {
    let (dir, l, outside) = fresh();
    run_ok(&l.args(&["init"], INPUTS));
    let root = dir.path();
    // admin.conf: two files in the kubeconfig dir, one relative and one absolute reference.
    let (a_crt, a_key) = (l.k.join("admin-client.crt"), l.k.join("admin-client.key"));
    credentials_to_files(
        &l.k.join("admin.conf"),
        &a_crt,
        &a_key,
        "admin-client.crt",
        &a_key.display().to_string(),
    );
    // scheduler.conf: one file holding both, in the cert dir.
    let s_pem = l.pki.join("scheduler-client.pem");
    credentials_to_files(
        &l.k.join("scheduler.conf"),
        &s_pem,
        &s_pem,
        "pki/scheduler-client.pem",
        "pki/scheduler-client.pem",
    );
    // controller-manager.conf: files outside the tree.
    let (c_crt, c_key) = (outside.join("cm.crt"), outside.join("cm.key"));
    credentials_to_files(
        &l.k.join("controller-manager.conf"),
        &c_crt,
        &c_key,
        &c_crt.display().to_string(),
        &c_key.display().to_string(),
    );
    // kubelet.conf: the kubelet's rotated file, even if it sits in the kubeconfig dir.
    let k_pem = l.k.join("kubelet-client-current.pem");
    credentials_to_files(
        &l.k.join("kubelet.conf"),
        &k_pem,
        &k_pem,
        "kubelet-client-current.pem",
        "kubelet-client-current.pem",
    );

    let init = util::kpki_ok(l.args(&["init"], INPUTS));
    assert!(init.contains("[certs] 0 file(s) written"), "{init}");
    assert!(init.contains("[kubeconfig] 0 file(s) written"), "{init}");
    let v = util::kpki(l.args(&["verify"], INPUTS));
    assert_eq!(v.status.code(), Some(0), "{}", stderr(&v));

    let before = util::snapshot(root);
    let out = util::kpki_ok(l.args(
        &[
            "certs",
            "renew",
            "admin.conf",
            "scheduler.conf",
            "controller-manager.conf",
            "kubelet.conf",
        ],
        INPUTS,
    ));
    assert!(out.contains("admin.conf renewed"), "{out}");
    assert!(out.contains("scheduler.conf renewed"), "{out}");
    assert!(
        !out.contains("controller-manager.conf renewed") && !out.contains("kubelet.conf renewed"),
        "{out}"
    );
    let after = util::snapshot(root);
    let changed = util::changed(&before, &after);
    let rel = |p: &Path| p.strip_prefix(root).unwrap().display().to_string();
    // The kubeconfigs themselves are untouched; so are the files outside the tree and the
    // kubelet's.
    for name in [
        "admin.conf",
        "scheduler.conf",
        "controller-manager.conf",
        "kubelet.conf",
    ] {
        assert!(
            !changed.contains(&format!("k/{name}")),
            "{name} rewritten: {changed:?}"
        );
    }
    for p in [&c_crt, &c_key, &k_pem] {
        assert!(!changed.contains(&rel(p)), "{} changed", p.display());
    }
    // The in-tree files are new, match, chain to the CA, and were backed up.
    for p in [&a_crt, &a_key, &s_pem] {
        assert!(
            changed.contains(&rel(p)),
            "{} not renewed: {changed:?}",
            p.display()
        );
        let old = &before[&rel(p)].bytes;
        let backup = after
            .iter()
            .find(|(k, n)| k.starts_with(&format!("{}.bak-", rel(p))) && &n.bytes == old)
            .unwrap_or_else(|| panic!("no backup of {}: {changed:?}", p.display()));
        assert_eq!(backup.1.mode, before[&rel(p)].mode, "{}", backup.0);
    }
    util::assert_key_matches(&a_key, &a_crt);
    util::assert_key_matches(&s_pem, &s_pem);
    util::assert_verifies(&l.pki.join("ca.crt"), &a_crt, "sslclient");
    assert_eq!(util::mode(&a_key), 0o600);
    assert_eq!(util::mode(&s_pem), 0o600);
    assert!(
        !changed.iter().any(|p| p.ends_with(".kpki-new")),
        "{changed:?}"
    );
    let v = util::kpki(l.args(&["verify"], INPUTS));
    assert_eq!(
        v.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&v.stdout)
    );

    // An interrupted in-place renewal (new key swapped in, new certificate still staged as
    // `<cert>.kpki-new`, the old certificate under the final name) is rolled forward by the next
    // run, as for a leaf pair.
    let staged = l.k.join("admin-client.crt.kpki-new");
    std::fs::rename(&a_crt, &staged).unwrap();
    std::fs::write(&a_crt, &before[&rel(&a_crt)].bytes).unwrap();
    set_mode(&a_crt, 0o644);
    let new_cert = std::fs::read(&staged).unwrap();
    util::kpki_ok(l.args(&["init"], INPUTS));
    assert!(!staged.exists(), "the staged certificate is still there");
    assert_eq!(std::fs::read(&a_crt).unwrap(), new_cert);
    util::assert_key_matches(&a_key, &a_crt);
}

/// Renewing a kubeconfig changes its certificate, key and CA data and nothing else: a cluster's
/// `proxy-url` and `extensions`, a context's `namespace` and `extensions`, a user's `as`,
/// `as-groups` and `exec`, `preferences`, top-level `extensions` and a field kpki does not know
/// are all still there, as PyYAML reads them.
#[test]
fn renewing_a_kubeconfig_keeps_what_kpki_does_not_model() {
    let (_dir, l, _) = fresh();
    run_ok(&l.args(&["init"], INPUTS));
    let conf = l.k.join("admin.conf");
    python(
        "import sys, yaml
p = sys.argv[1]
c = yaml.safe_load(open(p))
c['clusters'][0]['cluster']['proxy-url'] = 'socks5://proxy.example:1080'
c['clusters'][0]['cluster']['extensions'] = [{'name': 'x.example/ext', 'extension': {'k': 'v', 'n': 3}}]
c['contexts'][0]['context']['namespace'] = 'kube-system'
c['contexts'][0]['context']['extensions'] = [{'name': 'ctx', 'extension': {'on': True}}]
u = c['users'][0]['user']
u['as'] = 'someone'
u['as-groups'] = ['g1', 'g2']
u['exec'] = {'apiVersion': 'client.authentication.k8s.io/v1', 'command': 'helper', 'args': ['--x', 'on'], 'interactiveMode': 'IfAvailable', 'provideClusterInfo': False}
c['preferences'] = {'colors': True, 'extensions': [{'name': 'p', 'extension': {'a': 1}}]}
c['extensions'] = [{'name': 'top', 'extension': {'z': [1, 2]}}]
c['x-kpki-future-field'] = {'kept': 'yes'}
yaml.safe_dump(c, open(p, 'w'))
",
        &[&conf.display().to_string()],
    );
    let dump = "import json, sys, yaml
c = yaml.safe_load(open(sys.argv[1]))
data = {}
data['ca'] = c['clusters'][0]['cluster'].pop('certificate-authority-data')
data['cert'] = c['users'][0]['user'].pop('client-certificate-data')
data['key'] = c['users'][0]['user'].pop('client-key-data')
print(json.dumps([c, data], sort_keys=True))
";
    let before: serde_json::Value =
        serde_json::from_str(&python(dump, &[&conf.display().to_string()])).unwrap();
    util::kpki_ok(l.args(&["certs", "renew", "admin.conf"], INPUTS));
    let after: serde_json::Value =
        serde_json::from_str(&python(dump, &[&conf.display().to_string()])).unwrap();
    assert_eq!(
        before[0], after[0],
        "renewal changed more than the credentials"
    );
    assert_eq!(before[1]["ca"], after[1]["ca"]);
    assert_ne!(before[1]["cert"], after[1]["cert"]);
    assert_ne!(before[1]["key"], after[1]["key"]);
    // kubectl still reads it, and the new pair verifies.
    let f = util::kubeconfig_facts(&conf);
    let scratch = tempfile::tempdir().unwrap();
    let crt = util::write_file(scratch.path(), "c.crt", &f.cert_pem);
    let key = util::write_file(scratch.path(), "c.key", &f.key_pem);
    util::assert_key_matches(&key, &crt);
    util::assert_verifies(&l.pki.join("ca.crt"), &crt, "sslclient");
    assert_eq!(util::mode(&conf), 0o600);
}

/// A cert dir owned by another user, and a group/other-writable parent without the sticky bit
/// above an existing tree, are refused (exit 2, one line naming the directory, nothing written):
/// whoever owns or can write them can swap the tree's files mid-run. A sticky parent (like /tmp)
/// is accepted; `--allow-insecure-dir` lifts the check. (The ownership case needs root.)
#[test]
fn directories_owned_by_others_and_open_parents_are_refused() {
    let is_root = String::from_utf8_lossy(&util::tool("id", ["-u"], None).stdout).trim() == "0";
    if is_root {
        let (dir, l, _) = fresh();
        run_ok(&l.args(&["init"], INPUTS));
        std::fs::remove_file(l.pki.join("apiserver.crt")).unwrap();
        util::tool_ok("chown", ["4242:4242", &l.pki.display().to_string()], None);
        let before = util::snapshot(dir.path());
        let (code, err) = util::kpki_fail(l.args(&["init"], INPUTS));
        assert_eq!(code, 2, "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains(&l.pki.display().to_string()) && err.contains("owned by uid 4242"),
            "{err}"
        );
        snap_eq(dir.path(), &before, "cert dir owned by another user");
        let (code, err) = util::kpki_fail(l.args(&["certs", "renew", "all"], INPUTS));
        assert!(code == 2 && err.contains("owned by uid 4242"), "{err}");
        let mut args = vec!["--allow-insecure-dir".to_string()];
        args.extend(l.args(&["init"], INPUTS));
        util::kpki_ok(&args);
    } else {
        println!("not root: the ownership case needs chown");
    }
    for (mode, refused) in [(0o777, true), (0o775, true), (0o1777, false)] {
        let dir = tempfile::tempdir().unwrap();
        let parent = dir.path().join("parent");
        std::fs::create_dir(&parent).unwrap();
        let l = Layout::new(&parent);
        run_ok(&l.args(&["init"], INPUTS));
        std::fs::remove_file(l.pki.join("apiserver.crt")).unwrap();
        set_mode(&parent, mode);
        let before = util::snapshot(dir.path());
        let args = l.args(&["init"], INPUTS);
        let o = util::kpki(&args);
        if refused {
            let err = stderr(&o);
            assert_eq!(o.status.code(), Some(2), "{mode:o}: {err}");
            assert_eq!(err.lines().count(), 1, "{err}");
            assert!(
                err.contains(&parent.display().to_string())
                    && err.contains("writable by group or others"),
                "{mode:o}: {err}"
            );
            snap_eq(dir.path(), &before, &format!("parent {mode:o}"));
        } else {
            ok(o, &format!("kpki {args:?} (parent {mode:o})"));
            assert!(l.pki.join("apiserver.crt").exists());
        }
    }
}

/// `certs download-bundle` into a cert dir whose `etcd` directory is a link elsewhere: exit 2
/// naming the link, nothing written on either side (the bundle's files go through the same path
/// check as every other write).
#[test]
fn download_bundle_never_writes_through_a_linked_directory() {
    let (dir, l, outside) = fresh();
    std::fs::create_dir(&l.pki).unwrap();
    set_mode(&l.pki, 0o755);
    let target = outside.join("etcd");
    std::fs::create_dir(&target).unwrap();
    symlink(&target, &l.pki.join("etcd"));
    let capture = util::fixture().join("upload-certs");
    let key = std::fs::read_to_string(capture.join("certificate-key.txt")).unwrap();
    let before = util::snapshot(dir.path());
    let (code, err) = util::kpki_fail([
        "certs",
        "download-bundle",
        "--certificate-key",
        key.trim(),
        "--from",
        &capture
            .join("kubeadm-certs.secret.yaml")
            .display()
            .to_string(),
        "--cert-dir",
        &l.pki.display().to_string(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&l.pki.join("etcd").display().to_string()) && err.contains("symbolic link"),
        "{err}"
    );
    snap_eq(
        dir.path(),
        &before,
        "download-bundle through a linked pki/etcd",
    );
    assert_eq!(std::fs::read_dir(&target).unwrap().count(), 0);
}

/// A directory of the tree that is a symbolic link (`pki/etcd` -> elsewhere) is never written
/// through: a fresh init and a renewal exit 2 naming the link, and nothing is written on either
/// side of it. Reading through it is fine: a complete tree behind such a link is reused.
#[test]
fn linked_directories_are_never_written_through() {
    let (dir, l, outside) = fresh();
    std::fs::create_dir(&l.pki).unwrap();
    set_mode(&l.pki, 0o755);
    let target = outside.join("etcd");
    std::fs::create_dir(&target).unwrap();
    symlink(&target, &l.pki.join("etcd"));
    let before = util::snapshot(dir.path());
    let (code, err) = util::kpki_fail(l.args(&["init"], INPUTS));
    assert_eq!(code, 2, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&l.pki.join("etcd").display().to_string()) && err.contains("symbolic link"),
        "{err}"
    );
    snap_eq(dir.path(), &before, "fresh init through a linked pki/etcd");
    assert_eq!(std::fs::read_dir(&target).unwrap().count(), 0);

    let (dir, l, outside) = fresh();
    run_ok(&l.args(&["init"], INPUTS));
    let target = outside.join("etcd");
    std::fs::rename(l.pki.join("etcd"), &target).unwrap();
    symlink(&target, &l.pki.join("etcd"));
    let out = util::kpki_ok(l.args(&["init"], INPUTS));
    assert!(out.contains("[certs] 0 file(s) written"), "{out}");
    assert!(out.contains("[kubeconfig] 0 file(s) written"), "{out}");
    let before = util::snapshot(dir.path());
    let (code, err) = util::kpki_fail(l.args(&["certs", "renew", "all"], INPUTS));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("symbolic link") && err.contains("pki/etcd"),
        "{err}"
    );
    snap_eq(dir.path(), &before, "renewal through a linked pki/etcd");
}
