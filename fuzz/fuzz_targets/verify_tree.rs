//! `verify` over arbitrary file contents: a complete ECDSA-P256 tree is made once per process
//! with `Kpki::init`; each input picks one of its files (first byte) and replaces its contents
//! (the rest), then the tree is observed (`disk::observe`) and audited (`verify::verify`) as
//! `kpki verify` does, and the file is restored. Files are numbered in path order. The verifier
//! must report findings, never panic.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use kpki::inputs::InputArgs;
use kpki::resolve::Entry;
use kpki::Kpki;
use libfuzzer_sys::fuzz_target;
use time::OffsetDateTime;

struct Tree {
    kpki: Kpki,
    now: OffsetDateTime,
    /// Every file of the tree with its original contents.
    files: Vec<(PathBuf, Vec<u8>)>,
}

const PREFIX: &str = "kpki-fuzz-verify-";

/// Removes trees left behind by earlier fuzz processes (libFuzzer exits without running
/// destructors, so the tree of a finished process stays on disk).
fn remove_stale(base: &std::path::Path) {
    let Ok(rd) = std::fs::read_dir(base) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(pid) = name.strip_prefix(PREFIX) {
            if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}

fn tree() -> &'static Tree {
    static TREE: OnceLock<Tree> = OnceLock::new();
    TREE.get_or_init(|| {
        // tmpfs when there is one: every execution reads the whole tree.
        let shm = std::path::Path::new("/dev/shm");
        let base = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        remove_stale(&base);
        let dir = base.join(format!("{PREFIX}{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).expect("create the fuzz tree directory");
        let args = InputArgs {
            cert_dir: Some(dir.join("pki")),
            kubeconfig_dir: Some(dir.clone()),
            node_name: Some("cp-1".into()),
            advertise_address: Some("10.0.0.10".into()),
            encryption_algorithm: Some("ECDSA-P256".into()),
            ..Default::default()
        };
        let kpki = Kpki::new(None, &args).expect("resolve the default spec");
        let run = kpki::Run::now();
        kpki.init(&kpki::plan::Options::default(), &run, false)
            .expect("kpki init of the fuzz tree");
        let mut paths = Vec::new();
        for e in &kpki.desired.entries {
            match e {
                Entry::Ca(c) | Entry::Leaf(c) => {
                    paths.push(c.cert_path.clone());
                    paths.push(c.key_path.clone());
                }
                Entry::KeyPair(k) => {
                    paths.push(k.key_path.clone());
                    paths.push(k.pub_path.clone());
                }
                Entry::Kubeconfig(k) => paths.push(k.path.clone()),
            }
        }
        // Sorted, so the first byte of a seed (`scripts/fuzz-seeds.sh`) names the same file
        // in every process.
        paths.sort();
        let files = paths
            .into_iter()
            .map(|p| {
                let data = std::fs::read(&p).expect("read a file of the fuzz tree");
                (p, data)
            })
            .collect();
        Tree {
            kpki,
            now: run.now,
            files,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let t = tree();
    let Some((&which, contents)) = data.split_first() else {
        return;
    };
    let (path, original) = &t.files[usize::from(which) % t.files.len()];
    std::fs::write(path, contents).expect("write the fuzzed file");
    let desired = &t.kpki.desired;
    let disk = kpki::disk::observe(desired);
    let report = kpki::verify::verify(desired, &disk, t.now, &kpki::verify::Options::default());
    let _ = kpki::verify::render_text(&report);
    let _ = report.to_json();
    std::fs::write(path, original).expect("restore the fuzzed file");
});
