//! Bounds on what kpki reads, spawns and computes, so no input can make it balloon, hang or
//! overflow: a size cap for every file it reads, a cap on `--jobs`, and the range of instants a
//! certificate can be issued at.

use std::io::Read;
use std::path::Path;

use time::{Duration, OffsetDateTime};

use crate::error::{Error, Result};

/// Certificates, keys, public keys and CSRs: a PEM certificate is a few KB; the largest CA
/// certificate kpki has met in the wild is a few hundred KB.
pub const MAX_PEM: u64 = 1 << 20;

/// Kubeconfigs (several clusters, users and embedded certificates fit easily).
pub const MAX_KUBECONFIG: u64 = 4 << 20;

/// The spec (`--spec`); the default one is 12 KB.
pub const MAX_SPEC: u64 = 1 << 20;

/// The kubeadm config (`--config`).
pub const MAX_CONFIG: u64 = 4 << 20;

/// A static Pod manifest, the kubelet configuration, and each certificate, key or CA bundle
/// their flags name (kubeadm's are a few KiB; a 50 MB "manifest" is refused unread).
pub const MAX_NODE_FILE: u64 = 1 << 20;

/// Entries of the manifests directory looked at; more is not a kubeadm node.
pub const MAX_MANIFESTS_DIR_ENTRIES: usize = 4096;

/// Key-generation threads per core at most (`--jobs`): more threads than cores only add
/// scheduling, and tens of thousands of them exhaust the machine.
pub const JOBS_PER_CORE: usize = 4;

/// The largest `--jobs` on this machine: [`JOBS_PER_CORE`] times its cores.
pub fn max_jobs() -> usize {
    JOBS_PER_CORE * cores()
}

/// The cores this process may use, asked once: the standard library reads the cgroup files
/// (a dozen system calls) each time it is asked.
pub fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Refuses a `--jobs` above [`max_jobs`] (0 means one thread per core).
pub fn check_jobs(jobs: usize) -> Result<()> {
    let max = max_jobs();
    if jobs > max {
        return Err(Error::input(
            "--jobs",
            format!(
                "{jobs} is more than {max} ({JOBS_PER_CORE} per core on this machine); key generation gets no faster with more threads"
            ),
        ));
    }
    Ok(())
}

/// What [`crate::inputs::BACKDATE`] subtracts from "now" for a NotBefore.
fn backdate() -> Duration {
    crate::inputs::BACKDATE
}

/// Refuses an instant no certificate can be issued at: NotBefore (`now` minus the back-dating)
/// must be 1970 or later, and NotAfter (`now` plus the longest validity) must fit in the year
/// 9999, the limits of X.509's time encodings as kpki writes them. The error names `--now`, the
/// only way such an instant reaches kpki.
pub fn check_now(now: OffsetDateTime, longest_validity: Duration) -> Result<()> {
    let fmt = crate::assess::fmt_time;
    let earliest = OffsetDateTime::UNIX_EPOCH + backdate();
    if now < earliest {
        return Err(Error::input(
            "--now",
            format!(
                "{} is too early: certificates start 5 minutes before now, and X.509 times as kpki writes them start in 1970",
                fmt(now)
            ),
        ));
    }
    let last = time::macros::datetime!(9999-12-31 23:59:59 UTC);
    if now.checked_add(longest_validity).is_none_or(|t| t > last) {
        return Err(Error::input(
            "--now",
            format!(
                "{} plus the validity ({}) is past the year 9999, the last instant a certificate can hold",
                fmt(now),
                crate::inputs::duration::format_go_duration(longest_validity)
            ),
        ));
    }
    Ok(())
}

/// Reads at most `cap` bytes of `path`; a larger file is an error that names the cap (nothing
/// beyond `cap + 1` bytes is read, so `/dev/zero` or a 3 GiB file costs `cap` of memory).
/// `Ok(None)` when the file does not exist. Regular files only unless `streams` (a spec or config
/// may come from a pipe); the file is opened non-blocking and checked on the descriptor, so a
/// FIFO swapped in after a check cannot hang the reader.
pub fn read_capped(path: &Path, cap: u64, streams: bool) -> Result<Option<Vec<u8>>> {
    Ok(read_capped_with_mode(path, cap, streams)?.map(|(b, _)| b))
}

/// [`read_capped`], with the file's mode bits from the same `fstat` (one stat per file read,
/// not two).
pub fn read_capped_with_mode(
    path: &Path,
    cap: u64,
    streams: bool,
) -> Result<Option<(Vec<u8>, u32)>> {
    use std::os::unix::fs::MetadataExt;
    use std::os::unix::fs::OpenOptionsExt;
    let f = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(if streams {
            0
        } else {
            rustix::fs::OFlags::NONBLOCK.bits() as i32
        })
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
    };
    let m = f.metadata().map_err(|e| Error::io(path, e))?;
    if m.is_dir() {
        return Err(Error::file(path, "is a directory, expected a file"));
    }
    if !m.is_file() && !streams {
        return Err(Error::file(
            path,
            "is not a regular file (a FIFO, socket or device), expected a file",
        ));
    }
    let too_big = |size: Option<u64>| {
        Error::file(
            path,
            format!(
                "is larger than {} ({}); not a file kpki reads",
                human(cap),
                size.map_or_else(|| "or endless".to_string(), |s| format!("{} bytes", s))
            ),
        )
    };
    if m.is_file() && m.len() > cap {
        return Err(too_big(Some(m.len())));
    }
    // Sized from the stat so a small file is read in one call (plus the one that sees its end),
    // not in a doubling series of reads from 32 bytes.
    let hint = if m.is_file() { m.len().min(cap) + 1 } else { 0 };
    let mut buf = Vec::with_capacity(hint as usize);
    f.take(cap + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Error::io(path, e))?;
    if buf.len() as u64 > cap {
        return Err(too_big(None));
    }
    Ok(Some((buf, m.mode() & 0o7777)))
}

/// `1 MiB`, `4 MiB`, `512 KiB`.
pub fn human(n: u64) -> String {
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 10 && n.is_multiple_of(1 << 10) {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_and_ranges() {
        let d = tempfile::tempdir().expect("tmp");
        let p = d.path().join("big");
        std::fs::write(&p, vec![b'x'; 2048]).expect("write");
        assert!(read_capped(&p, 4096, false).expect("read").is_some());
        let e = read_capped(&p, 1024, false).expect_err("cap");
        assert!(e.to_string().contains("larger than 1 KiB"), "{e}");
        let e = read_capped(Path::new("/dev/zero"), 1024, true).expect_err("endless");
        assert!(e.to_string().contains("larger than 1 KiB"), "{e}");
        assert!(read_capped(Path::new("/dev/zero"), 1024, false).is_err());
        assert!(read_capped(&d.path().join("nope"), 1, false)
            .expect("missing")
            .is_none());
        assert!(check_jobs(0).is_ok() && check_jobs(max_jobs()).is_ok());
        assert!(check_jobs(100_000).is_err());
        let ten_years = Duration::hours(87600);
        assert!(check_now(OffsetDateTime::now_utc(), ten_years).is_ok());
        let late = time::macros::datetime!(9999-12-31 00:00:00 UTC);
        assert!(check_now(late, ten_years)
            .expect_err("late")
            .to_string()
            .starts_with("--now: "));
        let early = time::macros::datetime!(1949-12-31 00:00:00 UTC);
        assert!(check_now(early, ten_years).is_err());
        assert!(check_now(OffsetDateTime::UNIX_EPOCH, ten_years).is_err());
    }
}
