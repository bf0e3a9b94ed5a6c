//! `kpki certs upload-bundle` / `download-bundle`: kubeadm's encrypted kubeadm-certs Secret.

use std::io::Read;
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use kpki::bundle::{CertificateKey, Owner};
use kpki::InputArgs;

use crate::{run_ctx, Cli, Fail};

/// Where the tree is (the bundle's files are named by the spec, the external-etcd ones by the
/// config).
#[derive(Args, Clone, Default)]
#[command(next_help_heading = crate::flags::INPUTS_HEADING)]
pub struct TreeFlags {
    /// Certificate directory (default: the config's certificatesDir, else /etc/kubernetes/pki).
    #[arg(long = "cert-dir", visible_alias = "out", value_name = "DIR")]
    cert_dir: Option<PathBuf>,
    /// kubeadm config file: certificatesDir, and etcd.external.caFile/certFile/keyFile, which
    /// travel as external-etcd-ca.crt, external-etcd.crt and external-etcd.key.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

/// The certificate key, from the command line or (out of the process list) from a file.
#[derive(Args, Clone, Default)]
pub struct KeyFlags {
    /// The certificate key: 64 hex characters (32 bytes), kubeadm's --certificate-key.
    #[arg(long, value_name = "HEX", conflicts_with = "certificate_key_file")]
    certificate_key: Option<String>,
    /// Read the certificate key from FILE (`-`: standard input); keeps it out of the process list.
    #[arg(long, value_name = "FILE")]
    certificate_key_file: Option<PathBuf>,
}

/// Output formats of `upload-bundle`.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BundleOutput {
    /// One YAML document (a v1 List).
    Yaml,
    /// The same List as JSON.
    Json,
}

/// `kpki certs upload-bundle`.
#[derive(Args)]
pub struct UploadBundleCmd {
    #[command(flatten)]
    key: KeyFlags,
    /// Output format: yaml (one v1 List) or json (the same List).
    #[arg(
        short = 'o',
        long = "output",
        value_name = "FORMAT",
        value_enum,
        default_value = "yaml",
        hide_possible_values = true
    )]
    output: BundleOutput,
    /// Second step of the two-step apply: the ID of the token the first step created
    /// (bootstrap-token-<ID>); with --owner-uid, the bundle is tied to it and expires with it.
    #[arg(long, value_name = "ID", requires = "owner_uid")]
    token_id: Option<String>,
    /// Second step: that token Secret's metadata.uid, as the server assigned it.
    #[arg(long, value_name = "UID", requires = "token_id")]
    owner_uid: Option<String>,
    #[command(flatten)]
    tree: TreeFlags,
}

/// `kpki certs download-bundle`.
#[derive(Args)]
pub struct DownloadBundleCmd {
    #[command(flatten)]
    key: KeyFlags,
    /// The Secret as `kubectl get secret -n kube-system kubeadm-certs -o yaml` (or `-o json`)
    /// prints it, or upload-bundle's output; `-`: standard input.
    #[arg(long, value_name = "FILE", required = true)]
    from: PathBuf,
    #[command(flatten)]
    tree: TreeFlags,
    #[command(flatten)]
    pub(crate) write: crate::flags::WriteFlags,
}

fn is_stdin(p: &Path) -> bool {
    p.as_os_str() == "-"
}

/// The API server stores at most 1 MiB per Secret; `kubectl get -o yaml` of one stays far below
/// this. A bigger input (or `/dev/zero`) is refused instead of read into memory.
const MAX_SECRET_TEXT: u64 = 8 << 20;
/// A certificate key file holds 64 hex digits and white space.
const MAX_KEY_TEXT: u64 = 4096;

/// Reads at most `limit` bytes of text from `r`; more is an error.
fn read_limited(r: impl Read, limit: u64) -> std::io::Result<String> {
    let mut text = String::new();
    r.take(limit + 1).read_to_string(&mut text)?;
    if text.len() as u64 > limit {
        return Err(std::io::Error::other(format!(
            "larger than {limit} bytes; not what kpki expects here"
        )));
    }
    Ok(text)
}

fn read_key(flags: &KeyFlags) -> Result<Option<CertificateKey>, Fail> {
    if let Some(hex) = &flags.certificate_key {
        return Ok(Some(CertificateKey::from_hex(hex, "--certificate-key")?));
    }
    let Some(path) = &flags.certificate_key_file else {
        return Ok(None);
    };
    let res = if is_stdin(path) {
        read_limited(std::io::stdin(), MAX_KEY_TEXT)
    } else {
        std::fs::File::open(path).and_then(|f| read_limited(f, MAX_KEY_TEXT))
    };
    let text = res.map_err(|e| {
        Fail(
            2,
            format!("--certificate-key-file: {}: {e}", path.display()),
        )
    })?;
    let field = format!("--certificate-key-file {}", path.display());
    Ok(Some(CertificateKey::from_hex(&text, &field)?))
}

/// The tree the flags name (node name and address do not matter for the bundle's files).
fn tree(cli: &Cli, tree: &TreeFlags) -> Result<kpki::Kpki, Fail> {
    let mut args = InputArgs::default();
    args.cert_dir = tree.cert_dir.clone();
    args.config = tree.config.clone();
    let mut k = kpki::Kpki::for_names(cli.spec.as_deref(), &args)?;
    k.lock_timeout = crate::lock_timeout(cli)?;
    k.allow_insecure_dir = cli.allow_insecure_dir;
    Ok(k)
}

/// Runs `kpki certs upload-bundle`.
pub fn upload(cli: &Cli, cmd: &UploadBundleCmd) -> Result<(), Fail> {
    let run = run_ctx(cli)?;
    let owner = match (&cmd.token_id, &cmd.owner_uid) {
        (Some(id), Some(uid)) => Some(Owner::new(id, uid)?),
        _ => None,
    };
    let given = read_key(&cmd.key)?;
    let kpki = tree(cli, &cmd.tree)?;
    let generated = given.is_none();
    let key = match given {
        Some(k) => k,
        None => CertificateKey::generate(&run)?,
    };
    let up = kpki.upload_bundle(&key, owner.as_ref(), &run)?;
    let text = match cmd.output {
        BundleOutput::Yaml => up.objects.to_yaml()?,
        BundleOutput::Json => up.objects.to_json()?,
    };
    out!("{text}");
    if generated {
        // stdout carries the objects; the key goes to the terminal (kubeadm prints it on stdout).
        eprintln!("[upload-certs] Using certificate key:\n{}", key.to_hex());
    }
    if let Some(t) = &up.token {
        let mut again = String::from("kpki certs upload-bundle");
        if let Some(d) = &cmd.tree.cert_dir {
            again.push_str(&format!(" --cert-dir {}", d.display()));
        }
        if let Some(c) = &cmd.tree.config {
            again.push_str(&format!(" --config {}", c.display()));
        }
        eprintln!(
            "[upload-certs] After kubectl apply, tie the bundle to its 2-hour token bootstrap-token-{id} so that it is deleted with it:\n  \
             {again} --certificate-key-file KEYFILE --token-id {id} --owner-uid \"$(kubectl -n kube-system get secret bootstrap-token-{id} -o jsonpath='{{.metadata.uid}}')\" | kubectl apply -f -",
            id = t.id
        );
    }
    Ok(())
}

/// Runs `kpki certs download-bundle`.
pub fn download(cli: &Cli, cmd: &DownloadBundleCmd) -> Result<(), Fail> {
    if is_stdin(&cmd.from)
        && cmd
            .key
            .certificate_key_file
            .as_deref()
            .is_some_and(is_stdin)
    {
        return Err(Fail(
            2,
            "--from - and --certificate-key-file - cannot both read standard input".into(),
        ));
    }
    let key = read_key(&cmd.key)?.ok_or_else(|| {
        Fail(
            2,
            "--certificate-key or --certificate-key-file is required (the key upload-bundle or kubeadm printed)".into(),
        )
    })?;
    let (origin, text) = if is_stdin(&cmd.from) {
        let t = read_limited(std::io::stdin(), MAX_SECRET_TEXT)
            .map_err(|e| Fail(2, format!("--from -: cannot read standard input: {e}")))?;
        ("<stdin>".to_string(), t)
    } else {
        let t = std::fs::File::open(&cmd.from)
            .and_then(|f| read_limited(f, MAX_SECRET_TEXT))
            .map_err(|e| Fail(2, format!("{}: cannot read: {e}", cmd.from.display())))?;
        (cmd.from.display().to_string(), t)
    };
    let run = run_ctx(cli)?;
    let kpki = tree(cli, &cmd.tree)?;
    let installed = kpki.download_bundle(&origin, &text, &key, &run)?;
    let layout = kpki.bundle_layout()?;
    for i in &installed {
        if i.written {
            outln!("[download-certs] wrote {}", i.path.display());
        } else {
            outln!("[download-certs] kept {} (identical)", i.path.display());
        }
    }
    for slot in &layout.slots {
        if !installed.iter().any(|i| i.data_key == slot.data_key) {
            outln!(
                "[download-certs] {} is empty in the Secret: not written",
                slot.data_key
            );
        }
    }
    Ok(())
}
