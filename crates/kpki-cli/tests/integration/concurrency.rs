//! Concurrent runs: two kpki processes on one cert dir cannot interleave writes. The second
//! waits up to `--lock-timeout` for the first (an flock on the cert dir) or fails with exit 2
//! and one line naming the directory; whatever the interleaving, the tree ends consistent.

use std::fs::File;
use std::path::Path;
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use crate::util::reliability::{assert_complete, kpki_cmd, run_ok, Checker, Layout};
use crate::util::{self, serial, set_mode, stderr, INPUTS};

fn spawn(args: &[String]) -> Child {
    let mut c = kpki_cmd(args);
    c.stdout(Stdio::piped());
    c.spawn().unwrap()
}

fn finish(c: Child) -> Output {
    c.wait_with_output().unwrap()
}

fn with_timeout(t: &str, args: Vec<String>) -> Vec<String> {
    let mut v = vec!["--lock-timeout".to_string(), t.to_string()];
    v.extend(args);
    v
}

/// The one line a kpki that could not get the lock prints.
fn assert_lock_message(o: &Output, pki: &Path) {
    assert_eq!(o.status.code(), Some(2), "{}", stderr(o));
    let e = stderr(o);
    assert_eq!(e.lines().count(), 1, "not one line: {e:?}");
    assert!(e.starts_with("error: "), "{e}");
    assert!(e.contains(&pki.display().to_string()), "no directory: {e}");
    assert!(e.contains("another kpki process"), "{e}");
    assert!(e.contains("--lock-timeout"), "{e}");
}

/// The test itself holds the same flock kpki takes, so the timing is exact: `--lock-timeout 0s`
/// fails at once and writes nothing; a timeout longer than the hold waits and then succeeds; a
/// shorter one fails after waiting about that long.
#[test]
fn a_held_lock_makes_kpki_wait_or_fail_cleanly() {
    let _serial = serial(); // wall-clock bounds on lock waits
    let dir = tempfile::tempdir().unwrap();
    let l = Layout::new(dir.path());
    std::fs::create_dir(&l.pki).unwrap();
    set_mode(&l.pki, 0o755);
    let init = l.args(&["init"], INPUTS);

    let holder = File::open(&l.pki).unwrap();
    holder.lock().unwrap();
    let before = util::snapshot(dir.path());
    let start = Instant::now();
    let o = finish(spawn(&with_timeout("0s", init.clone())));
    assert_lock_message(&o, &l.pki);
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "0s waited {:?}",
        start.elapsed()
    );
    assert_eq!(
        util::changed(&before, &util::snapshot(dir.path())),
        Default::default(),
        "a locked-out run wrote"
    );

    let start = Instant::now();
    let o = finish(spawn(&with_timeout("400ms", init.clone())));
    let waited = start.elapsed();
    assert_lock_message(&o, &l.pki);
    assert!(
        waited >= Duration::from_millis(400),
        "gave up after {waited:?}"
    );
    assert!(stderr(&o).contains("waited 0.4s"), "{}", stderr(&o));

    // Release after 600 ms while a run with a 20 s timeout waits.
    let start = Instant::now();
    let child = spawn(&with_timeout("20s", init.clone()));
    std::thread::sleep(Duration::from_millis(600));
    assert!(
        util::files(&l.k).is_empty(),
        "wrote while the lock was held: {:?}",
        util::files(&l.k)
    );
    holder.unlock().unwrap();
    let o = finish(child);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(start.elapsed() >= Duration::from_millis(600));
    assert_complete(&mut Checker::default_tree(), &l, INPUTS);
}

/// Two `kpki init` started together with `--lock-timeout 0s`: one builds the tree, the other
/// fails with exit 2 and the lock message. (If the first happens to finish before the second
/// takes the lock both succeed; the pair is retried until the race is seen.)
#[test]
fn two_inits_with_zero_timeout_one_fails_cleanly() {
    let _serial = serial(); // a race between two processes
    let mut raced = false;
    for attempt in 0..6 {
        let dir = tempfile::tempdir().unwrap();
        let l = Layout::new(dir.path());
        let args = with_timeout("0s", l.args(&["init"], INPUTS));
        let (a, b) = (spawn(&args), spawn(&args));
        let (a, b) = (finish(a), finish(b));
        let failed: Vec<&Output> = [&a, &b]
            .into_iter()
            .filter(|o| !o.status.success())
            .collect();
        assert!(
            failed.len() < 2,
            "both failed: {} / {}",
            stderr(&a),
            stderr(&b)
        );
        for f in &failed {
            assert_lock_message(f, &l.pki);
        }
        assert_complete(&mut Checker::default_tree(), &l, INPUTS);
        if failed.len() == 1 {
            raced = true;
            println!(
                "attempt {attempt}: one run locked out: {}",
                stderr(failed[0]).trim()
            );
            break;
        }
    }
    assert!(raced, "the two runs never overlapped in 6 attempts");
}

/// With a generous timeout, concurrent inits all succeed: one writes everything, the others wait
/// and then find a complete tree and write nothing.
#[test]
fn concurrent_inits_wait_and_all_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let l = Layout::new(dir.path());
    let args = with_timeout("60s", l.args(&["init"], INPUTS));
    let kids: Vec<Child> = (0..3).map(|_| spawn(&args)).collect();
    let outs: Vec<Output> = kids.into_iter().map(finish).collect();
    let mut written = Vec::new();
    for o in &outs {
        assert!(o.status.success(), "{}", stderr(o));
        let text = String::from_utf8_lossy(&o.stdout).into_owned();
        // Certificates and keys, then kubeconfigs: one count each.
        let n: usize = ["[certs] ", "[kubeconfig] "]
            .iter()
            .map(|p| {
                text.lines()
                    .find_map(|l| l.strip_prefix(p)?.strip_suffix(" file(s) written"))
                    .unwrap_or_else(|| panic!("no {p}count in {text}"))
                    .parse::<usize>()
                    .unwrap()
            })
            .sum();
        written.push(n.to_string());
    }
    written.sort();
    assert_eq!(written, ["0", "0", "27"], "files written per run");
    assert_complete(&mut Checker::default_tree(), &l, INPUTS);
}

/// Renewals and inits running at the same time on one tree (two renewals usually inside the same
/// second, so their backups would share a name) all succeed and leave a consistent tree: every
/// key matches its certificate, every backup pair matches, CA files untouched.
#[test]
fn concurrent_renewals_and_inits_leave_a_consistent_tree() {
    let dir = tempfile::tempdir().unwrap();
    let l = Layout::new(dir.path());
    run_ok(&l.args(&["init"], INPUTS));
    let cas: Vec<Vec<u8>> = util::CAS
        .iter()
        .flat_map(|c| [format!("{c}.crt"), format!("{c}.key")])
        .map(|f| std::fs::read(l.pki.join(f)).unwrap())
        .collect();
    let renew = with_timeout("60s", l.args(&["certs", "renew", "all"], INPUTS));
    let init = with_timeout("60s", l.args(&["init"], INPUTS));
    let mut chk = Checker::default_tree();
    for round in 0..3 {
        let kids = vec![spawn(&renew), spawn(&init), spawn(&renew)];
        for o in kids.into_iter().map(finish) {
            assert!(o.status.success(), "round {round}: {}", stderr(&o));
        }
        let scan = assert_complete(&mut chk, &l, INPUTS);
        // Each renewal backs up the 7 leaf pairs (14 files) and 4 kubeconfigs (`renew all`
        // leaves kubelet.conf to the kubelet, as kubeadm does).
        assert_eq!(
            scan.backups.len(),
            18 * 2 * (round + 1),
            "{:?}",
            scan.backups
        );
    }
    let after: Vec<Vec<u8>> = util::CAS
        .iter()
        .flat_map(|c| [format!("{c}.crt"), format!("{c}.key")])
        .map(|f| std::fs::read(l.pki.join(f)).unwrap())
        .collect();
    assert_eq!(cas, after, "a CA file changed");
}

/// Two `kpki nodes` issuing the same nodes into one output directory at the same time (it once
/// took no lock there; it now waits for the directory's lock): both succeed, and every node ends
/// with a key that matches its certificate and a kubeconfig whose embedded pair matches.
#[test]
fn concurrent_nodes_runs_leave_matching_pairs() {
    let _serial = serial(); // a race whose loser waits under the default 10s --lock-timeout
    let base = tempfile::tempdir().unwrap();
    let l = Layout::new(base.path());
    run_ok(&l.args(&["init"], INPUTS));
    let ca = l.pki.join("ca.crt");
    let names: Vec<String> = (0..12).map(|i| format!("node-{i}")).collect();
    let list = util::write_file(
        base.path(),
        "nodes.txt",
        names
            .iter()
            .enumerate()
            .map(|(i, n)| format!("{n},10.3.0.{}\n", i + 1))
            .collect::<String>()
            .as_bytes(),
    );
    let mut chk = Checker::default();
    chk.kubeconfig_ca = Some(ca.display().to_string());
    for n in &names {
        chk.issuers
            .insert(format!("{n}/kubelet.crt"), Some(ca.display().to_string()));
    }
    let mut problems = Vec::new();
    let mut failures = Vec::new();
    for round in 0..util::env_count("KPKI_NODES_ROUNDS", 6) {
        let out = base.path().join(format!("out{round}"));
        std::fs::create_dir(&out).unwrap();
        set_mode(&out, 0o755);
        let args = l.nodes_args(&list, &out);
        let (a, b) = (spawn(&args), spawn(&args));
        for o in [finish(a), finish(b)] {
            if !o.status.success() {
                failures.push(format!("round {round}: {}", stderr(&o).trim()));
            }
        }
        match chk.scan(&out) {
            Ok(s) if s.mismatches.is_empty() => {}
            Ok(s) => problems.push(format!("round {round}: mismatched {:?}", s.mismatches)),
            Err(e) => problems.push(format!("round {round}: {}", e.join("; "))),
        }
    }
    assert!(
        problems.is_empty() && failures.is_empty(),
        "concurrent `kpki nodes` on one output dir:\n  problems: {problems:#?}\n  failed runs: {failures:#?}"
    );
}
