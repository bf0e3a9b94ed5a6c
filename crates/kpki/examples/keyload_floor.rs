//! The key-loading floor of reading a tree, for `scripts/bench.sh` (issue 17).
//!
//! `kpki verify` must load every private key of the tree and check it (aws-lc's constant-time
//! `RSA_check_key` for RSA: n = p·q, d·e ≡ 1 mod p−1 and q−1, the CRT values; about 2.5 M
//! instructions per RSA-2048 key), since a key that fails those checks is refused by the
//! components that load it. This program does only that, whole process: it reads the `*.key`
//! files under CERT_DIR and the client keys embedded in the `*.conf` files of KUBECONFIG_DIR,
//! then loads them as kpki does (`PrivateKey::from_pem`) on two threads. No verify of the tree
//! can take less, whatever else it skips.
//!
//! Usage: `keyload_floor CERT_DIR KUBECONFIG_DIR`. Prints the number of keys loaded.

use std::path::{Path, PathBuf};

use kpki::internal::kubeconfig::Kubeconfig;
use kpki::internal::x509::keys::PrivateKey;

fn key_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            key_files(&p, out)?;
        } else if p.extension().is_some_and(|x| x == "key") {
            out.push(p);
        }
    }
    Ok(())
}

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let (Some(certs), Some(confs)) = (args.next(), args.next()) else {
        return Err("usage: keyload_floor CERT_DIR KUBECONFIG_DIR".into());
    };
    let mut files = Vec::new();
    key_files(Path::new(&certs), &mut files).map_err(|e| format!("{certs}: {e}"))?;
    let mut pems: Vec<String> = files
        .iter()
        .map(|p| std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display())))
        .collect::<Result<_, _>>()?;
    for e in std::fs::read_dir(&confs).map_err(|e| format!("{confs}: {e}"))? {
        let p = e.map_err(|e| e.to_string())?.path();
        if p.extension().is_none_or(|x| x != "conf") {
            continue;
        }
        let text = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        let kc = Kubeconfig::from_yaml(&text).map_err(|e| format!("{}: {e}", p.display()))?;
        if let Some(k) = kc.current()?.client_key_pem {
            pems.push(String::from_utf8(k).map_err(|e| e.to_string())?);
        }
    }
    let (a, b) = pems.split_at(pems.len() / 2);
    let load = |part: &[String]| -> Result<usize, String> {
        for pem in part {
            std::hint::black_box(PrivateKey::from_pem(pem)?);
        }
        Ok(part.len())
    };
    let n = std::thread::scope(|s| -> Result<usize, String> {
        let other = s.spawn(|| load(b));
        let mine = load(a)?;
        Ok(mine + other.join().map_err(|_| "a loader panicked")??)
    })?;
    println!("keys={n}");
    Ok(())
}
