//! `verify` over arbitrary file contents: a complete ECDSA-P256 tree is made once per process
//! with `Kpki::init`; each input picks one of its files (first byte; files are numbered in path
//! order) and replaces its contents (the rest), then the file's entry and its CA are observed
//! (`disk::observe`) and audited (`verify::verify`) as `kpki verify` does, and the file is
//! restored. The verifier must report findings, never panic.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use kpki::inputs::InputArgs;
use kpki::internal::model::resolve::Entry;
use kpki::Kpki;
use libfuzzer_sys::fuzz_target;
use time::OffsetDateTime;

struct Tree {
    now: OffsetDateTime,
    /// Every file of the tree with its original contents and the entries audited with it.
    files: Vec<(PathBuf, Vec<u8>, kpki::internal::model::resolve::Desired)>,
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
        let mut args = InputArgs::for_cert_dir(dir.join("pki"));
        args.kubeconfig_dir = Some(dir.clone());
        args.node_name = Some("cp-1".into());
        args.advertise_address = Some([10, 0, 0, 10].into());
        args.key_algorithm = Some(kpki::KeyAlgorithm::EcdsaP256);
        let kpki = Kpki::new(None, &args).expect("resolve the default spec");
        let run = kpki::Run::now();
        kpki.init(&kpki::plan::Options::default(), &run, kpki::Mode::Apply)
            .expect("kpki init of the fuzz tree");
        // Each file belongs to one entry; it is audited together with that entry's CA (or, for
        // a CA file, with the first certificate the CA signs), so one execution observes and
        // verifies 2 entries instead of 19 (about 20x faster; the checks that span entries are
        // all CA -> certificate).
        let desired = &kpki.desired;
        let sub = |names: &[&str]| kpki::internal::model::resolve::Desired {
            entries: desired
                .entries
                .iter()
                .filter(|e| names.contains(&e.name()))
                .cloned()
                .collect(),
            ..desired.clone()
        };
        let signed_by = |ca: &str| {
            desired.entries.iter().find_map(|e| match e {
                Entry::Leaf(c) if c.ca.as_deref() == Some(ca) => Some(c.name.clone()),
                Entry::Kubeconfig(k) if k.ca == ca => Some(k.name.clone()),
                _ => None,
            })
        };
        let mut files: Vec<(PathBuf, Vec<u8>, kpki::internal::model::resolve::Desired)> = Vec::new();
        let mut add = |path: &PathBuf, names: &[&str]| {
            let data = std::fs::read(path).expect("read a file of the fuzz tree");
            files.push((path.clone(), data, sub(names)));
        };
        for e in &desired.entries {
            match e {
                Entry::Ca(c) => {
                    let leaf = signed_by(&c.name).unwrap_or_default();
                    add(&c.cert_path, &[&c.name, &leaf]);
                    add(&c.key_path, &[&c.name, &leaf]);
                }
                Entry::Leaf(c) => {
                    let ca = c.ca.clone().unwrap_or_default();
                    add(&c.cert_path, &[&ca, &c.name]);
                    add(&c.key_path, &[&ca, &c.name]);
                }
                Entry::KeyPair(k) => {
                    add(&k.key_path, &[&k.name]);
                    add(&k.pub_path, &[&k.name]);
                }
                Entry::Kubeconfig(k) => add(&k.path, &[&k.ca, &k.name]),
            }
        }
        // Sorted, so the first byte of a seed (`scripts/fuzz-seeds.sh`) names the same file
        // in every process.
        files.sort_by(|a, b| a.0.cmp(&b.0));
        Tree {
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
    let (path, original, desired) = &t.files[usize::from(which) % t.files.len()];
    std::fs::write(path, contents).expect("write the fuzzed file");
    let disk = kpki::internal::disk::observe(desired);
    let report = kpki::internal::views::verify::verify(desired, &disk, t.now, &kpki::internal::views::verify::Options::default());
    let _ = kpki::internal::views::verify::render_text(&report);
    let _ = report.to_json();
    std::fs::write(path, original).expect("restore the fuzzed file");
});
