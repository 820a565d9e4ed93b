//! Canary scans: values no other test writes, looked for in every byte of every
//! file under a folder (databases, their WAL and SHM, photos, logs), to show that
//! what was erased is nowhere on disk.

use std::path::{Path, PathBuf};

/// Every file under `root`, however deep.
pub fn files_under(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_owned()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                dirs.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

/// Whether `needle` occurs in `hay`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Every (file, index into `canaries`) where a canary occurs in a file under
/// `root`, each file read whole. Panics if there is no file to scan: a scan of
/// nothing proves nothing.
pub fn scan(root: &Path, canaries: &[&[u8]]) -> Vec<(PathBuf, usize)> {
    let files = files_under(root);
    assert!(
        !files.is_empty(),
        "nothing to scan under {}",
        root.display()
    );
    let mut found = Vec::new();
    for file in files {
        // An unreadable file would hide what it holds: the scan fails instead.
        let bytes = std::fs::read(&file)
            .unwrap_or_else(|e| panic!("{} cannot be scanned: {e}", file.display()));
        for (i, canary) in canaries.iter().enumerate() {
            if contains(&bytes, canary) {
                found.push((file.clone(), i));
            }
        }
    }
    found
}

/// Every file under `root` whose whole content has one of the SHA-256 digests
/// `hex` (lowercase hex, as photos are named): a photo kept under any name. A
/// slice of a photo is no canary: synthetic photos share runs of JPEG bytes.
pub fn copies(root: &Path, hex: &[&str]) -> Vec<PathBuf> {
    use sha2::{Digest, Sha256};
    files_under(root)
        .into_iter()
        .filter(|file| {
            let bytes = std::fs::read(file)
                .unwrap_or_else(|e| panic!("{} cannot be scanned: {e}", file.display()));
            let digest: String = Sha256::digest(&bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            hex.contains(&digest.as_str())
        })
        .collect()
}
