//! In-process figures for docs/benchmarks.md (`cargo bench -p kpki --bench pki`).
//!
//! * `tree/*`: a whole control-plane tree (3 CAs, 7 leaves, sa, 5 kubeconfigs) into a fresh dir;
//! * `verify/*`: `kpki::internal::views::verify` of such a tree (resolve, read, check);
//! * `sign/*`: one leaf certificate signed by a CA (key made beforehand);
//! * `keygen/*`: one key, and the 16 keys of a tree generated one after another (the key-generation
//!   floor is that time divided by the cores);
//! * `bulk/*`: 1,000 nodes of `kpki nodes`, ECDSA-P256, with and without serving certificates
//!   (50 in smoke-test mode).
//!
//! `cargo test --all-targets` runs each benchmark once as a smoke test; the RSA-heavy ones only
//! run under `cargo bench` (`--bench` on the command line) to keep that cheap.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, SamplingMode};
use kpki::inputs::{InputArgs, Inputs};
use kpki::internal::ops::nodes::{NoProgress, NodeIssuer, NodeReader};
use kpki::internal::x509::issue::{issue, Issuance, Issuer, Profile};
use kpki::internal::x509::keys::{KeyAlgorithm, PrivateKey};
use kpki::{Kpki, Run};

/// The 16 keys of a default tree: 3 CAs, 7 leaves, sa, 5 kubeconfigs.
const TREE_KEYS: usize = 16;

fn measuring() -> bool {
    std::env::args().any(|a| a == "--bench")
}

fn args(dir: &Path, alg: KeyAlgorithm) -> InputArgs {
    let mut a = InputArgs::for_cert_dir(dir.join("pki"));
    a.node_name = Some("cp-1".into());
    a.advertise_address = Some([10, 0, 0, 10].into());
    a.control_plane_endpoint = Some("k8s.example.internal:6443".into());
    a.key_algorithm = Some(alg);
    a
}

fn init_tree(dir: &Path, alg: KeyAlgorithm) -> Kpki {
    let kpki = Kpki::new(None, &args(dir, alg)).expect("inputs");
    kpki.init(&Default::default(), &Run::now(), kpki::Mode::Apply)
        .expect("init");
    kpki
}

fn algorithms() -> Vec<KeyAlgorithm> {
    if measuring() {
        vec![KeyAlgorithm::EcdsaP256, KeyAlgorithm::Rsa2048]
    } else {
        vec![KeyAlgorithm::EcdsaP256]
    }
}

fn tree(c: &mut Criterion) {
    let mut g = c.benchmark_group("tree");
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1));
    for alg in algorithms() {
        g.measurement_time(Duration::from_secs(if alg.is_ec() { 3 } else { 15 }));
        g.bench_function(alg.name(), |b| {
            b.iter_batched(
                || tempfile::tempdir().expect("tmp"),
                |dir| {
                    init_tree(dir.path(), alg);
                    dir
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

fn verify(c: &mut Criterion) {
    let mut g = c.benchmark_group("verify");
    g.sample_size(20).measurement_time(Duration::from_secs(3));
    for alg in algorithms() {
        let dir = tempfile::tempdir().expect("tmp");
        let kpki = init_tree(dir.path(), alg);
        let spec = kpki.spec.clone();
        let a = args(dir.path(), alg);
        g.bench_function(alg.name(), |b| {
            b.iter(|| {
                // What `kpki verify` does after parsing its flags.
                let inputs = Inputs::from_args(&a).expect("inputs");
                let desired =
                    kpki::internal::model::resolve::resolve(&spec, &inputs).expect("resolve");
                let disk = kpki::internal::disk::observe(&desired);
                let report = kpki::internal::views::verify::verify(
                    &desired,
                    &disk,
                    time::OffsetDateTime::now_utc(),
                    &Default::default(),
                );
                assert!(!report.has_errors());
                black_box(report)
            })
        });
    }
    g.finish();
}

fn sign(c: &mut Criterion) {
    let mut g = c.benchmark_group("sign");
    for alg in algorithms() {
        let ca_key = PrivateKey::generate(alg).expect("key");
        let leaf_key = PrivateKey::generate(alg).expect("key");
        let now = time::OffsetDateTime::now_utc();
        let when = Issuance {
            not_before: now,
            not_after: now + Duration::from_secs(3600),
            serial: 42,
        };
        let ca_profile = Profile {
            cn: "kubernetes".into(),
            orgs: vec![],
            dns: vec!["kubernetes".into()],
            ips: vec![],
            key_usages: vec!["digital_signature".into(), "key_cert_sign".into()],
            ext_key_usages: vec![],
            is_ca: true,
        };
        let ca_der = issue(&ca_profile, &ca_key, None, when).expect("ca");
        let leaf = Profile {
            cn: "kube-apiserver".into(),
            orgs: vec![],
            dns: vec![
                "kubernetes".into(),
                "kubernetes.default".into(),
                "cp-1".into(),
            ],
            ips: vec![
                "10.96.0.1".parse().expect("ip"),
                "10.0.0.10".parse().expect("ip"),
            ],
            key_usages: vec!["digital_signature".into(), "key_encipherment".into()],
            ext_key_usages: vec!["server_auth".into()],
            is_ca: false,
        };
        g.bench_function(format!("leaf/{}", alg.name()), |b| {
            b.iter(|| {
                let issuer = Issuer {
                    cert_der: &ca_der,
                    key: &ca_key,
                };
                black_box(issue(&leaf, &leaf_key, Some(issuer), when).expect("leaf"))
            })
        });
    }
    g.finish();
}

fn keygen(c: &mut Criterion) {
    let mut g = c.benchmark_group("keygen");
    g.sampling_mode(SamplingMode::Flat);
    for alg in algorithms() {
        if alg.is_ec() {
            g.sample_size(50).measurement_time(Duration::from_secs(2));
        } else {
            g.sample_size(30).measurement_time(Duration::from_secs(10));
        }
        g.bench_function(format!("one/{}", alg.name()), |b| {
            b.iter(|| black_box(PrivateKey::generate(alg).expect("key")))
        });
        if !alg.is_ec() {
            g.sample_size(10).measurement_time(Duration::from_secs(20));
        }
        // One thread, one key after another: the CPU time all keys of a tree cost.
        g.bench_function(format!("tree-{TREE_KEYS}-serial/{}", alg.name()), |b| {
            b.iter(|| {
                for _ in 0..TREE_KEYS {
                    black_box(PrivateKey::generate(alg).expect("key"));
                }
            })
        });
    }
    g.finish();
}

fn bulk(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tmp");
    let kpki = init_tree(dir.path(), KeyAlgorithm::EcdsaP256);
    let inputs = kpki.desired.inputs.clone();
    // `cargo test` runs this once as a smoke test: keep that small.
    let n = if measuring() { 1000 } else { 50 };
    let list: String = (0..n)
        .map(|i| format!("node-{i:04},10.1.{}.{}\n", i / 250, i % 250 + 1))
        .collect();
    // Outputs are kept until the group is done: right after a mass delete, ext4 skips the freed
    // inodes when allocating new ones, which would charge the cleanup to the next iteration.
    let mut kept = Vec::new();
    let mut g = c.benchmark_group("bulk");
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    for serving in [false, true] {
        let name = if serving {
            format!("{n}-nodes-serving/ECDSA-P256")
        } else {
            format!("{n}-nodes/ECDSA-P256")
        };
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let out = tempfile::tempdir_in(dir.path()).expect("tmp");
                    let issuer = NodeIssuer::new(&kpki.spec, inputs.clone(), out.path(), serving)
                        .expect("issuer");
                    let mut reader = NodeReader::new(list.as_bytes());
                    let start = Instant::now();
                    let s = issuer
                        .issue_all(&mut reader, &Run::now(), &NoProgress)
                        .expect("bulk");
                    total += start.elapsed();
                    assert_eq!(s.issued, n);
                    kept.push(out);
                }
                total
            })
        });
    }
    g.finish();
    drop(kept);
}

criterion_group!(benches, tree, verify, sign, keygen, bulk);
criterion_main!(benches);
