//! Reading stored content files. pantry records each access itself (the file's atime, set by
//! `evict::touch`, orders eviction) and leaves the mtime as the commit left it, so a change of the
//! file afterwards shows; its own reads therefore use `O_NOATIME`, so that the kernel's relatime
//! updates never reorder eviction. Blocking code: callers run it on the blocking pool.

use std::{
    fs::File,
    io::{self, Read},
    os::unix::fs::OpenOptionsExt,
    path::Path,
    time::UNIX_EPOCH,
};

use crate::registry::digest::Digest;

/// The `O_NOATIME` open flag (Linux only).
#[cfg(target_os = "linux")]
const NOATIME: i32 = nix::fcntl::OFlag::O_NOATIME.bits();

/// Opens a content file for reading without updating its access time (falling back to a plain
/// open where the flag is not allowed: a file pantry does not own).
pub fn open(path: &Path) -> io::Result<File> {
    match std::fs::OpenOptions::new().read(true).custom_flags(NOATIME).open(path) {
        Err(error) if error.kind() == io::ErrorKind::PermissionDenied => File::open(path),
        opened => opened,
    }
}

/// The whole content of a file (see [`open`]).
pub fn read(path: &Path) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    open(path)?.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Whether the file at `path` hashes to `digest` (reads it whole).
pub fn matches(path: &Path, digest: &Digest) -> io::Result<bool> {
    let mut verifier = digest.verifier();
    let mut reader = open(path)?;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            return Ok(verifier.finish().is_ok());
        }
        verifier.update(&buf[..n]);
    }
}

/// A file's modification time in nanoseconds since the epoch (0 if unknown).
pub fn mtime_ns(meta: &std::fs::Metadata) -> u64 {
    meta.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos() as u64)
}
