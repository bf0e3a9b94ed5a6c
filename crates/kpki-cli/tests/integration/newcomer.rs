//! The first ten minutes (issue 18): a newcomer goes from the README to init, verify,
//! check-expiration, plan and renew without a surprise. One test per item of the issue, and
//! `docs/getting-started.md` executed as written.
//!
//! Every command that could touch a tree names one under a temporary directory; the only
//! commands run without `--cert-dir` read (`check-expiration`, help).

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use time::format_description::well_known::Rfc3339;

const KPKI: &str = env!("CARGO_BIN_EXE_kpki");
const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../fixtures/kubeadm-v1.28.4-rsa"
);
/// Right after the fixture's kubeadm wrote its tree (see tests/check_expiration.rs).
const KUBEADM_RAN_AT: &str = "2026-11-28T08:43:50Z";
/// The instant every command of the walk-through and of the init-based tests runs at.
const NOW: &str = "2026-06-01T12:00:00Z";

fn kpki<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    Command::new(KPKI).args(args).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8(b.to_vec()).unwrap()
}

/// Runs kpki, requires exit 0; (stdout, stderr).
fn ok<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> (String, String) {
    let out = kpki(args);
    let shown: Vec<_> = args.iter().map(|a| a.as_ref().to_owned()).collect();
    assert!(
        out.status.success(),
        "kpki {shown:?}: exit {:?}\n{}{}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    );
    (text(&out.stdout), text(&out.stderr))
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A fresh tree for node `demo` under `dir/pki` (kubeconfigs in `dir`), as the README builds it.
fn readme_tree(dir: &Path) -> PathBuf {
    let pki = dir.join("pki");
    ok(&[
        "init",
        "--out",
        s(&pki),
        "--node-name",
        "demo",
        "--apiserver-advertise-address",
        "10.0.0.10",
        "--now",
        NOW,
    ]);
    pki
}

/// The names in the `Commands:` section of a help text (without `help`).
fn commands_of(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| *n != "help")
        .map(str::to_string)
        .collect()
}

fn help_of(path: &[&str]) -> String {
    let mut a: Vec<&str> = path.to_vec();
    a.push("--help");
    ok(&a).0
}

/// Every leaf command (`["certs", "renew"]`, ...), read from the help texts themselves.
fn leaf_commands() -> Vec<Vec<String>> {
    fn walk(path: Vec<String>, out: &mut Vec<Vec<String>>) {
        let p: Vec<&str> = path.iter().map(String::as_str).collect();
        let subs = commands_of(&help_of(&p));
        if subs.is_empty() {
            out.push(path);
        } else {
            for sub in subs {
                let mut q = path.clone();
                q.push(sub);
                walk(q, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(Vec::new(), &mut out);
    out
}

/// The option lines of a help text (`--name` first on the line), with the description below.
fn options_of(help: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = help.lines().collect();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let t = l.trim_start();
        if l.starts_with("  ") && !l.starts_with("          ") && t.starts_with('-') {
            let name = t
                .split([' ', ','])
                .find(|w| w.starts_with("--"))
                .unwrap_or(t)
                .to_string();
            let desc = lines.get(i + 1).map(|d| d.to_string()).unwrap_or_default();
            out.push((name, desc));
        }
    }
    out
}

// ------------------------------------------------------------------ item 1

/// `kpki`, and each command group without its subcommand, print the usage and the list of
/// commands (on stderr, exit 2, as clap does), not a one-line `error:`.
#[test]
fn groups_without_a_subcommand_print_usage_and_commands() {
    for group in [vec![], vec!["certs"], vec!["kubeconfig"], vec!["token"]] {
        let out = kpki(&group[..]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{group:?}: {err}");
        assert!(out.stdout.is_empty(), "{group:?}");
        assert!(!err.starts_with("error:"), "{group:?}: {err}");
        let usage = format!("Usage: kpki {}", group.join(" "));
        assert!(err.contains(usage.trim_end()), "{group:?}: {err}");
        // The same list of commands `--help` prints.
        let listed = commands_of(&err);
        assert!(!listed.is_empty(), "{group:?}: {err}");
        assert_eq!(listed, commands_of(&help_of(&group)), "{group:?}");
    }
    let root = commands_of(&text(&kpki::<&str>(&[]).stderr));
    for c in ["init", "verify", "plan", "certs", "kubeconfig", "tree"] {
        assert!(root.iter().any(|r| r == c), "{c} not in {root:?}");
    }
    let certs = commands_of(&text(&kpki(&["certs"]).stderr));
    assert_eq!(
        certs,
        [
            "check-expiration",
            "renew",
            "generate-csr",
            "certificate-key",
            "upload-bundle",
            "download-bundle"
        ]
    );
    // A missing required argument is still one line, and now names the argument.
    let out = kpki(&["kubeconfig", "user"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("error: ") && err.contains("--client-name"),
        "{err}"
    );
}

// ------------------------------------------------------------------ item 2

/// No help text repeats itself: a group's description does not list the commands its help
/// lists below it, and no help has the same line twice.
#[test]
fn about_texts_do_not_repeat_the_command_list() {
    let words = |s: &str| -> BTreeSet<String> {
        s.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .filter(|w| !w.is_empty())
            .map(str::to_string)
            .collect()
    };
    let root = help_of(&[]);
    for group in ["certs", "kubeconfig", "token"] {
        let help = help_of(&[group]);
        let subs: BTreeSet<String> = commands_of(&help).into_iter().collect();
        let about = help.lines().next().unwrap();
        let row = root
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{group} ")))
            .unwrap();
        for (what, line) in [("about", about), ("kpki --help row", row)] {
            let repeated: Vec<_> = words(line).intersection(&subs).cloned().collect();
            assert!(
                repeated.is_empty(),
                "{group} {what} repeats {repeated:?}: {line}"
            );
        }
    }
    for path in std::iter::once(Vec::new()).chain(leaf_commands()) {
        let p: Vec<&str> = path.iter().map(String::as_str).collect();
        let help = help_of(&p);
        let mut seen = BTreeSet::new();
        for l in help.lines().filter(|l| !l.trim().is_empty()) {
            assert!(seen.insert(l), "kpki {p:?} --help repeats {l:?}");
        }
    }
}

// ------------------------------------------------------------------ item 3

/// `init` prints kubeadm's `[kubeconfig] Using kubeconfig folder "<dir>"` before the first
/// kubeconfig, and counts kubeconfigs apart from certificates and keys; the counts are the files
/// the directories hold.
#[test]
fn init_names_the_kubeconfig_folder_and_counts_kubeconfigs_apart() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    let kc = dir.path().join("kc");
    let args = [
        "init",
        "--cert-dir",
        s(&pki),
        "--kubeconfig-dir",
        s(&kc),
        "--node-name",
        "demo",
        "--apiserver-advertise-address",
        "10.0.0.10",
        "--now",
        NOW,
    ];
    // --dry-run names the folder too, and counts nothing.
    let mut dry = args.to_vec();
    dry.push("--dry-run");
    let (out, _) = ok(&dry);
    let folder = format!("[kubeconfig] Using kubeconfig folder \"{}\"", s(&kc));
    assert!(out.lines().any(|l| l == folder), "{out}");
    assert!(!out.contains("file(s) written"), "{out}");
    assert!(!pki.exists() && !kc.exists());

    let (out, _) = ok(&args);
    let lines: Vec<&str> = out.lines().collect();
    let at = lines.iter().position(|l| *l == folder).unwrap();
    assert_eq!(lines.iter().filter(|l| **l == folder).count(), 1, "{out}");
    // After every certificate line, before every kubeconfig line.
    assert!(lines[..at].iter().all(|l| !l.starts_with("[kubeconfig]")));
    assert!(lines[at + 1] == "[kubeconfig] Generating \"admin.conf\" (not present)");
    let files = |d: &Path| -> usize {
        fn walk(d: &Path) -> usize {
            fs::read_dir(d)
                .unwrap()
                .map(|e| e.unwrap())
                .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                .map(|e| {
                    if e.file_type().unwrap().is_dir() {
                        walk(&e.path())
                    } else {
                        1
                    }
                })
                .sum()
        }
        walk(d)
    };
    assert_eq!((files(&pki), files(&kc)), (22, 5));
    assert!(lines.contains(&"[certs] 22 file(s) written"), "{out}");
    assert!(lines.contains(&"[kubeconfig] 5 file(s) written"), "{out}");
    let (again, _) = ok(&args);
    assert!(again.contains("[certs] 0 file(s) written\n[kubeconfig] 0 file(s) written\n"));
}

// ------------------------------------------------------------------ item 4

/// The README's top keeps its two commands, then points at the walk-through and tells what the
/// next commands need; and that claim holds: on the tree the first command builds, `verify`
/// and `check-expiration` need nothing but `--cert-dir`.
#[test]
fn readme_tells_the_next_steps_and_they_work() {
    let readme = fs::read_to_string(format!("{ROOT}/README.md")).unwrap();
    let top = "# kpki\n\n```sh\ncargo run --release -p kpki-cli -- init --out ./pki --node-name demo --apiserver-advertise-address 10.0.0.10\nbash scripts/test.sh\n```\n\n";
    assert!(
        readme.starts_with(top),
        "the README's first two commands changed"
    );
    let next = readme[top.len()..].split("\n\n").next().unwrap();
    assert!(
        next.contains("[docs/getting-started.md](docs/getting-started.md)"),
        "{next}"
    );
    assert!(readme.contains("`kpki verify --cert-dir ./pki`"));
    assert!(readme.contains("`kpki certs check-expiration --cert-dir ./pki`"));

    let dir = tempfile::tempdir().unwrap();
    let pki = readme_tree(dir.path());
    let (out, _) = ok(&["verify", "--cert-dir", s(&pki), "--now", NOW]);
    assert!(
        out.starts_with("OK: 0 error(s), 0 warning(s), 0 info; 16 entries checked"),
        "{out}"
    );
    let (out, _) = ok(&[
        "certs",
        "check-expiration",
        "--cert-dir",
        s(&pki),
        "--now",
        NOW,
    ]);
    assert!(!out.contains("MISSING"), "{out}");
}

// ------------------------------------------------------------------ item 5

/// check-expiration says on stderr which folders it read (stdout stays kubeadm's table or a
/// clean JSON document); when every file is missing it says so, and still exits 0 as kubeadm.
#[test]
fn check_expiration_names_its_folders_and_says_when_all_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let pki = readme_tree(dir.path());
    let line = |cert: &str, kc: &str| {
        format!(
            "[check-expiration] Read certificates from \"{cert}\" and kubeconfigs from \"{kc}\""
        )
    };
    let (out, err) = ok(&[
        "certs",
        "check-expiration",
        "--cert-dir",
        s(&pki),
        "--now",
        NOW,
    ]);
    assert_eq!(err, format!("{}\n", line(s(&pki), s(dir.path()))));
    assert!(out.starts_with("CERTIFICATE "), "{out}");
    let (json, err) = ok(&[
        "certs",
        "check-expiration",
        "--cert-dir",
        s(&pki),
        "-o",
        "json",
        "--now",
        NOW,
    ]);
    assert!(err.starts_with("[check-expiration] Read "), "{err}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["certificates"].as_array().unwrap().len(), 11);

    // An empty folder: every row missing, a warning, exit 0.
    let empty = dir.path().join("nothing/pki");
    let (out, err) = ok(&[
        "certs",
        "check-expiration",
        "--cert-dir",
        s(&empty),
        "--now",
        NOW,
    ]);
    let rows: Vec<&str> = out
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with("CERTIFICATE"))
        .collect();
    assert_eq!(rows.len(), 14, "{out}");
    assert!(rows.iter().all(|r| r.starts_with("!MISSING! ")), "{out}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert_eq!(lines[0], line(s(&empty), s(&dir.path().join("nothing"))));
    assert!(lines[1].contains("WARNING: all 14 certificates and kubeconfigs are missing"));
    assert!(lines[1].contains("--cert-dir"));
    assert!(lines[1].contains("exit status stays 0, as kubeadm's"));
    assert!(!empty.exists() && !dir.path().join("nothing").exists());

    // No flags at all: kubeadm's folders, named (read only: nothing is written anywhere).
    let out = kpki(&["certs", "check-expiration", "--now", NOW]);
    let err = text(&out.stderr);
    assert!(
        err.starts_with(&line("/etc/kubernetes/pki", "/etc/kubernetes")),
        "{err}"
    );
}

// ------------------------------------------------------------------ item 6

/// kubeadm's output for the fixture tree, without the annotation lines.
fn kubeadm_check_expiration() -> String {
    let t = fs::read_to_string(format!("{FIXTURE}/check-expiration.txt")).unwrap();
    t.lines()
        .filter(|l| !l.starts_with("# "))
        .map(|l| format!("{l}\n"))
        .collect()
}

fn fixture_check_expiration(extra: &[&str]) -> Output {
    let mut a = vec![
        "certs".to_string(),
        "check-expiration".into(),
        "--config".into(),
        format!("{FIXTURE}/kubeadm-config.yaml"),
        "--cert-dir".into(),
        format!("{FIXTURE}/pki"),
        "--kubeconfig-dir".into(),
        format!("{FIXTURE}/kubeconfig"),
        "--now".into(),
        KUBEADM_RAN_AT.into(),
    ];
    a.extend(extra.iter().map(|s| s.to_string()));
    kpki(&a)
}

/// The default rows are exactly what the real kubeadm v1.28.4 printed for its own tree (no
/// kubelet.conf row, although the fixture's kubelet.conf embeds a certificate);
/// `--with-kubelet-conf` adds that one row; the old `--kubeadm-rows` still gives the default.
#[test]
fn check_expiration_default_rows_are_kubeadms() {
    let want = kubeadm_check_expiration();
    assert!(!want.contains("kubelet.conf"));
    let out = fixture_check_expiration(&[]);
    assert!(out.status.success());
    assert_eq!(text(&out.stdout), want);
    let old = fixture_check_expiration(&["--kubeadm-rows"]);
    assert_eq!(text(&old.stdout), want);

    let with = text(&fixture_check_expiration(&["--with-kubelet-conf"]).stdout);
    let added: Vec<&str> = with.lines().filter(|l| !want.contains(*l)).collect();
    assert_eq!(added.len(), 1, "{with}");
    assert!(added[0].starts_with("kubelet.conf "), "{with}");
    assert_eq!(with.lines().count(), want.lines().count() + 1);

    let both = fixture_check_expiration(&["--with-kubelet-conf", "--kubeadm-rows"]);
    assert_eq!(both.status.code(), Some(2));

    let help = help_of(&["certs", "check-expiration"]);
    assert!(help.contains("--with-kubelet-conf"), "{help}");
    assert!(!help.contains("--kubeadm-rows"), "{help}");
    let compat = fs::read_to_string(format!("{ROOT}/docs/compatibility.md")).unwrap();
    assert!(compat.contains("--with-kubelet-conf") && !compat.contains("--kubeadm-rows"));
}

// ------------------------------------------------------------------ item 7

/// plan's help says it shows what `init --regenerate-drifted` would do, and that is what it
/// shows: after a changed SAN plan says `regenerate` where plain init refuses and
/// `init --regenerate-drifted --dry-run` would re-issue.
#[test]
fn plan_help_says_what_plan_shows() {
    let help = help_of(&["plan"]);
    assert!(help
        .lines()
        .next()
        .unwrap()
        .contains("init --regenerate-drifted"));
    assert!(!help.contains("init/renew"), "{help}");
    let root = help_of(&[]);
    let row = root
        .lines()
        .find(|l| l.trim_start().starts_with("plan "))
        .unwrap();
    assert!(row.contains("init --regenerate-drifted"), "{row}");

    let dir = tempfile::tempdir().unwrap();
    let pki = readme_tree(dir.path());
    let flags = [
        "--cert-dir",
        s(&pki),
        "--apiserver-cert-extra-sans",
        "k8s.example.com",
        "--now",
        NOW,
    ];
    let (plan, _) = ok(&[&["plan"][..], &flags].concat());
    let action = |entry: &str| {
        plan.lines()
            .find(|l| l.split_whitespace().next() == Some(entry))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap()
            .to_string()
    };
    assert_eq!(action("apiserver"), "regenerate", "{plan}");
    assert_eq!(action("etcd-server"), "reuse", "{plan}");
    let refused = kpki(&[&["init"][..], &flags].concat());
    assert_eq!(refused.status.code(), Some(2));
    let (dry, _) = ok(&[&["init", "--regenerate-drifted", "--dry-run"][..], &flags].concat());
    let reissued: Vec<&str> = dry
        .lines()
        .filter(|l| l.contains("Would re-issue"))
        .collect();
    assert_eq!(reissued.len(), 1, "{dry}");
    assert!(reissued[0].starts_with("[certs] Would re-issue \"apiserver\""));
}

// ------------------------------------------------------------------ item 8

const WRITE_ONLY: [&str; 3] = ["--jobs", "--lock-timeout", "--allow-insecure-dir"];

/// Read-only commands neither list nor accept the writing flags; writing commands list them
/// under one heading; `--jobs` has one default, in words; `init --help` gives the `--cert-dir`
/// default; every leaf command's help has one layout (`-h` = `--help`, each option's
/// description on the next line, the same headings).
#[test]
fn help_offers_each_command_only_its_flags_in_one_layout() {
    let writers_with_jobs = [
        "init",
        "certs renew",
        "certs generate-csr",
        "nodes",
        "ca rotate prepare",
        "ca rotate trust",
        "ca rotate issue",
        "ca rotate finish",
        "ca rotate abort",
    ];
    let writers = [
        "certs download-bundle",
        "kubeconfig user",
        "kubeconfig bootstrap",
    ];
    let leaves = leaf_commands();
    assert!(leaves.len() >= 16, "{leaves:?}");
    for path in &leaves {
        let name = path.join(" ");
        let p: Vec<&str> = path.iter().map(String::as_str).collect();
        let help = help_of(&p);
        let short = ok(&[&p[..], &["-h"]].concat()).0;
        assert_eq!(help, short, "kpki {name}: -h and --help differ");
        let opts = options_of(&help);
        let has = |f: &str| opts.iter().any(|(n, _)| n == f);
        let want: &[&str] = if writers_with_jobs.contains(&name.as_str()) {
            &WRITE_ONLY
        } else if writers.contains(&name.as_str()) {
            &WRITE_ONLY[1..]
        } else {
            &[]
        };
        for f in WRITE_ONLY {
            assert_eq!(has(f), want.contains(&f), "kpki {name} --help and {f}");
        }
        if !want.is_empty() {
            let writing = help.split("\nWriting:\n").nth(1).unwrap_or_default();
            for f in want {
                assert!(writing.contains(f), "kpki {name}: {f} not under Writing:");
            }
        }
        // One layout: headings from one set, every option's description on its own line.
        for l in help
            .lines()
            .filter(|l| l.ends_with(':') && !l.starts_with(' '))
        {
            assert!(
                [
                    "Arguments:",
                    "Options:",
                    "Cluster inputs (kubeadm's flags):",
                    "Writing:",
                    "Commands:"
                ]
                .contains(&l),
                "kpki {name}: heading {l:?}"
            );
        }
        for (opt, desc) in &opts {
            assert!(
                desc.starts_with("          ") && !desc.trim().is_empty(),
                "kpki {name}: {opt} has no description line below it"
            );
            assert!(
                !(desc.contains("(default") && desc.contains("[default:")),
                "kpki {name}: {opt} gives two defaults: {desc}"
            );
        }
    }
    let init = help_of(&["init"]);
    let cert_dir = options_of(&init)
        .into_iter()
        .find(|(n, _)| n == "--cert-dir")
        .unwrap()
        .1;
    assert!(cert_dir.contains("default: ") && cert_dir.contains("/etc/kubernetes/pki"));
    let jobs = options_of(&init)
        .into_iter()
        .find(|(n, _)| n == "--jobs")
        .unwrap()
        .1;
    assert!(jobs.contains("(default: one per core"), "{jobs}");
    assert!(!jobs.contains("[default"), "{jobs}");

    // Not accepted by read-only commands, after the subcommand (clap) or before it (kpki).
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    for flag in [
        &["--jobs", "2"][..],
        &["--lock-timeout", "5s"],
        &["--allow-insecure-dir"],
    ] {
        for cmd in [
            &["verify"][..],
            &["plan"],
            &["tree"],
            &["certs", "check-expiration"],
            &["ca", "rotate", "status"],
        ] {
            let after = kpki(&[cmd, flag, &["--cert-dir", s(&pki)]].concat());
            let before = kpki(&[flag, cmd, &["--cert-dir", s(&pki)]].concat());
            for (how, out) in [("after", after), ("before", before)] {
                let err = text(&out.stderr);
                assert_eq!(out.status.code(), Some(2), "{flag:?} {how} {cmd:?}: {err}");
                assert_eq!(err.lines().count(), 1, "{err}");
                assert!(err.starts_with("error: ") && err.contains(flag[0]), "{err}");
            }
        }
    }
    assert!(!pki.exists());
    // Taken by the writing commands, in either place, and checked.
    let bad = kpki(&["init", "--cert-dir", s(&pki), "--jobs", "100000"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("--jobs"));
    let bad = kpki(&["init", "--cert-dir", s(&pki), "--lock-timeout", "5"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("--lock-timeout"));
    assert!(!pki.exists());
}

// ------------------------------------------------------------------ item 9

/// The README names every package and Python module scripts/test.sh installs, and warns about
/// the first command's release build.
#[test]
fn readme_lists_what_the_test_command_installs() {
    let script = fs::read_to_string(format!("{ROOT}/scripts/test.sh")).unwrap();
    let readme = fs::read_to_string(format!("{ROOT}/README.md")).unwrap();
    let mut installed = Vec::new();
    for l in script.lines() {
        for marker in ["need+=(", "lean+=("] {
            if let Some(rest) = l.split(marker).nth(1) {
                installed.push(rest.split(')').next().unwrap().to_string());
            }
        }
        if let Some(rest) = l.split("pip install -q ").nth(1) {
            installed.push(rest.split_whitespace().next().unwrap().to_string());
        }
    }
    assert!(installed.len() >= 16, "{installed:?}");
    assert!(installed.iter().any(|p| p == "strace"));
    for p in &installed {
        assert!(
            readme.contains(&format!("`{p}`")),
            "README does not list {p}, which scripts/test.sh installs"
        );
    }
    assert!(readme.contains("release mode") && readme.contains("several minutes"));
}

// ------------------------------------------------------------------ item 10

/// `.ci/run` says when each step started, in a form that does not read like a duration.
#[test]
fn ci_step_lines_say_when_each_step_started() {
    let ci = fs::read_to_string(format!("{ROOT}/.ci/run")).unwrap();
    let step = ci.lines().find(|l| l.starts_with("step() {")).unwrap();
    let script = format!("start=$(( $(date +%s) - 7 ))\n{step}\nstep cargo clippy\n");
    let out = Command::new("bash").args(["-c", &script]).output().unwrap();
    let line = text(&out.stdout);
    assert!(
        line == "== cargo clippy (started at +7s)\n"
            || line == "== cargo clippy (started at +8s)\n",
        "{line:?}"
    );
}

// ------------------------------------------------------------------ docs/getting-started.md

/// One command of the walk-through and what the page says it prints.
struct Step {
    line: usize,
    argv: Vec<String>,
    expected: Vec<String>,
    exit: i32,
}

/// The ```console blocks: `$ ` starts a command, the lines below are its output, a last line
/// `(exit status N)` its exit status.
fn console_steps(doc: &str) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    let mut in_block = false;
    for (i, l) in doc.lines().enumerate() {
        if !in_block {
            in_block = l == "```console";
            continue;
        }
        if l.starts_with("```") {
            in_block = false;
        } else if let Some(cmd) = l.strip_prefix("$ ") {
            assert!(
                !cmd.contains(['\'', '"', '|', '>', '<', '&', ';', '$', '`', '\\']),
                "line {}: keep commands to plain words: {cmd}",
                i + 1
            );
            steps.push(Step {
                line: i + 1,
                argv: cmd.split_whitespace().map(str::to_string).collect(),
                expected: Vec::new(),
                exit: 0,
            });
        } else {
            let step = steps.last_mut().expect("output before any command");
            step.expected.push(l.to_string());
        }
    }
    for step in &mut steps {
        if let Some(code) = step
            .expected
            .last()
            .and_then(|l| l.strip_prefix("(exit status "))
            .and_then(|l| l.strip_suffix(')'))
        {
            step.exit = code.parse().unwrap();
            step.expected.pop();
        }
    }
    steps
}

/// `pattern` at the start of `s`: `9` a digit, `A` an upper-case letter, `a` a lower-case
/// letter, anything else itself. The matched length.
fn match_at(s: &[u8], pattern: &str) -> Option<usize> {
    let p = pattern.as_bytes();
    if s.len() < p.len() {
        return None;
    }
    let ok = p.iter().zip(s).all(|(p, c)| match p {
        b'9' => c.is_ascii_digit(),
        b'A' => c.is_ascii_uppercase(),
        b'a' => c.is_ascii_lowercase(),
        p => p == c,
    });
    ok.then_some(p.len())
}

/// Output with what differs from run to run replaced: RFC 3339 instants, kubeadm's dates, the
/// UTC stamps of backup names; trailing blanks dropped (kubeadm's table pads its last column).
fn normalise(line: &str) -> String {
    let b = line.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    while i < b.len() {
        if let Some(n) = match_at(&b[i..], "9999-99-99T99:99:99") {
            let mut j = i + n;
            if b.get(j) == Some(&b'.') {
                j += 1;
                while b.get(j).is_some_and(u8::is_ascii_digit) {
                    j += 1;
                }
            }
            if b.get(j) == Some(&b'Z') {
                out.push_str("<time>");
                i = j + 1;
                continue;
            }
        }
        if let Some(n) = match_at(&b[i..], "Aaa 99, 9999 99:99 UTC") {
            out.push_str("<date>");
            i += n;
            continue;
        }
        if let Some(n) = match_at(&b[i..], "99999999T999999Z") {
            out.push_str("<stamp>");
            i += n;
            continue;
        }
        let c = line[i..].chars().next().unwrap();
        out.push(c);
        i += c.len_utf8();
    }
    out.trim_end().to_string()
}

#[test]
fn normalise_replaces_times_dates_and_stamps_only() {
    assert_eq!(
        normalise("a 2026-12-03T22:36:11.434551068Z b 2027-12-03T22:36:10Z  "),
        "a <time> b <time>"
    );
    assert_eq!(
        normalise("ca    Nov 30, 2036 22:36 UTC   9y   no      "),
        "ca    <date>   9y   no"
    );
    assert_eq!(
        normalise("apiserver.key.bak-20261203T223611Z"),
        "apiserver.key.bak-<stamp>"
    );
    assert_eq!(normalise("2026-12-03 and 364d"), "2026-12-03 and 364d");
}

/// docs/getting-started.md runs as written: each command (kpki being the binary under test,
/// with `--now` pinned, one second later for each command; `ls` and `openssl` from PATH) in one temporary directory, its output
/// (stdout and stderr, in the order written) equal to the page's, times and dates aside.
#[test]
fn getting_started_runs_as_written() {
    let doc = fs::read_to_string(format!("{ROOT}/docs/getting-started.md")).unwrap();
    let steps = console_steps(&doc);
    let kinds: Vec<String> = steps
        .iter()
        .filter(|s| s.argv[0] == "kpki")
        .map(|s| {
            s.argv[1..]
                .iter()
                .take_while(|a| !a.starts_with('-'))
                .cloned()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    for k in [
        "init",
        "verify",
        "certs check-expiration",
        "plan",
        "certs renew apiserver",
    ] {
        assert!(
            kinds.iter().any(|x| x == k),
            "the walk-through lost `kpki {k}`: {kinds:?}"
        );
    }
    assert!(kinds.last().unwrap() == "verify");

    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path().join("demo");
    fs::create_dir(&cwd).unwrap();
    let before_etc = Path::new("/etc/kubernetes").exists();
    let mut clock = time::OffsetDateTime::parse(NOW, &Rfc3339).unwrap();
    for step in &steps {
        let (program, mut args) = match step.argv[0].as_str() {
            "kpki" => {
                // Never the default /etc/kubernetes: every kpki command names its tree.
                assert!(
                    step.argv.iter().any(|a| a == "--cert-dir" || a == "--out"),
                    "line {}: a kpki command without --cert-dir/--out",
                    step.line
                );
                (KPKI.to_string(), step.argv[1..].to_vec())
            }
            "ls" | "openssl" => (step.argv[0].clone(), step.argv[1..].to_vec()),
            other => panic!("line {}: the test does not run {other}", step.line),
        };
        if program == KPKI {
            // The clock is pinned and moves one second per command, as a reader's would.
            clock += time::Duration::SECOND;
            args.extend(["--now".to_string(), clock.format(&Rfc3339).unwrap()]);
        }
        // One file for both streams: the order is the order written, as on a terminal.
        let log = dir.path().join("out.log");
        let f = fs::File::create(&log).unwrap();
        let status = Command::new(&program)
            .args(&args)
            .current_dir(&cwd)
            .env("LC_ALL", "C")
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .status()
            .unwrap();
        let got: Vec<String> = fs::read_to_string(&log)
            .unwrap()
            .lines()
            .map(normalise)
            .collect();
        let want: Vec<String> = step.expected.iter().map(|l| normalise(l)).collect();
        assert_eq!(
            status.code(),
            Some(step.exit),
            "docs/getting-started.md line {}: {}\n{}",
            step.line,
            step.argv.join(" "),
            got.join("\n")
        );
        if got != want {
            let first = got
                .iter()
                .zip(&want)
                .position(|(g, w)| g != w)
                .unwrap_or(got.len().min(want.len()));
            panic!(
                "docs/getting-started.md line {}: `{}` printed (normalised):\n{}\n\nthe page says:\n{}\n\nfirst difference at output line {}",
                step.line,
                step.argv.join(" "),
                got.join("\n"),
                want.join("\n"),
                first + 1
            );
        }
    }
    // Everything stayed in the temporary directory.
    assert_eq!(Path::new("/etc/kubernetes").exists(), before_etc);
    assert!(cwd.join("admin.conf").exists() && cwd.join("pki/ca.key").exists());
}
