//! The power cut for the files written outside SQLite (photos): the interposer
//! `tests/src/powercut_preload.c` (built by `scripts/torture` beside the binaries,
//! `LD_PRELOAD`ed into `torture_phone` and `torture_relay` only) lets every write
//! reach the disk and keeps an undo journal of what was not synced; once the process
//! is dead, [`FileCut::cut`] replays it and puts back what a power cut would have
//! left. The model is in the C file's opening comment.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The file name of the interposer, beside the torture binaries.
pub const LIBRARY: &str = "libpowercut_preload.so";

/// What a name durably was.
#[derive(Debug)]
enum Durable {
    Absent,
    File(u64, u64),
    Dir,
}

/// What one cut put back, and what the process had synced.
#[derive(Debug, Default, Clone, Copy)]
pub struct Undone {
    /// Names put back as they durably were (an unsynced create, rename or unlink).
    pub names: u64,
    /// Files whose unsynced bytes were thrown away.
    pub files: u64,
    /// Syncs of files under the roots the process completed.
    pub file_syncs: u64,
    /// Syncs of directories (a root's parent included) it completed.
    pub dir_syncs: u64,
}

/// The cut of one process's photo folders.
#[derive(Debug)]
pub struct FileCut {
    library: PathBuf,
    journal: PathBuf,
    roots: Vec<PathBuf>,
}

impl FileCut {
    /// The cut of the folders `roots` (that may not exist yet), journalled in
    /// `journal` (on the same file system: durable files are kept by hard links).
    pub fn new(journal: &Path, roots: Vec<PathBuf>) -> Result<FileCut, String> {
        let library = super::super::sibling_binary(LIBRARY, "TORTURE_POWERCUT_LIB");
        if !library.is_file() {
            return Err(format!(
                "{} is missing (scripts/torture builds it)",
                library.display()
            ));
        }
        FileCut::with_library(library, journal, roots)
    }

    /// The same with the interposer at `library`.
    pub fn with_library(
        library: PathBuf,
        journal: &Path,
        roots: Vec<PathBuf>,
    ) -> Result<FileCut, String> {
        let cut = FileCut {
            library,
            journal: journal.to_owned(),
            roots,
        };
        cut.fresh_journal()?;
        Ok(cut)
    }

    /// The environment that puts a process's photo folders under the cut.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let roots: Vec<String> = self
            .roots
            .iter()
            .map(|r| r.to_string_lossy().into_owned())
            .collect();
        vec![
            ("LD_PRELOAD", self.library.to_string_lossy().into_owned()),
            ("POWERCUT_ROOTS", roots.join(":")),
            (
                "POWERCUT_JOURNAL",
                self.journal.to_string_lossy().into_owned(),
            ),
        ]
    }

    /// How long the journal is: it grows when the process changes a photo file.
    pub fn journal_len(&self) -> u64 {
        fs::metadata(self.journal.join("log")).map_or(0, |m| m.len())
    }

    fn fresh_journal(&self) -> Result<(), String> {
        match fs::remove_dir_all(&self.journal) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(format!("{}: {e}", self.journal.display()))
            }
            _ => {}
        }
        for d in ["data", "keep"] {
            fs::create_dir_all(self.journal.join(d))
                .map_err(|e| format!("{}: {e}", self.journal.display()))?;
        }
        Ok(())
    }

    /// With the process dead: throw away what it had not synced, and start a fresh
    /// journal for the next one.
    pub fn cut(&self) -> Result<Undone, String> {
        let log = match fs::read(self.journal.join("log")) {
            Ok(l) => l,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(format!("the journal: {e}")),
        };
        let text = String::from_utf8_lossy(&log);
        // A line is whole only with its newline (each is written by one write).
        let whole = text.rfind('\n').map_or("", |end| &text[..end]);
        let mut undone = Undone::default();
        let mut names: BTreeMap<PathBuf, Durable> = BTreeMap::new();
        let mut bytes: HashMap<(u64, u64), Option<PathBuf>> = HashMap::new();
        for line in whole.lines() {
            let (kind, rest) = line.split_once(' ').unwrap_or((line, ""));
            let mut words = rest.splitn(3, ' ');
            let mut id = || -> Result<(u64, u64), String> {
                let mut n = || {
                    words
                        .next()
                        .and_then(|w| w.parse::<u64>().ok())
                        .ok_or_else(|| format!("a bad journal line: {line}"))
                };
                Ok((n()?, n()?))
            };
            match kind {
                "N" => {
                    let (state, path) = rest
                        .split_once(' ')
                        .ok_or_else(|| format!("a bad journal line: {line}"))?;
                    let (durable, path) = match state {
                        "A" => (Durable::Absent, path),
                        "F" | "D" => {
                            let mut w = path.splitn(3, ' ');
                            let mut n = || {
                                w.next()
                                    .and_then(|x| x.parse::<u64>().ok())
                                    .ok_or_else(|| format!("a bad journal line: {line}"))
                            };
                            let (dev, ino) = (n()?, n()?);
                            let p = w
                                .next()
                                .ok_or_else(|| format!("a bad journal line: {line}"))?;
                            if state == "F" {
                                (Durable::File(dev, ino), p)
                            } else {
                                (Durable::Dir, p)
                            }
                        }
                        _ => return Err(format!("a bad journal line: {line}")),
                    };
                    // The first change since the directory's last sync says what
                    // the name durably is.
                    names.entry(PathBuf::from(path)).or_insert(durable);
                }
                "Z" => {
                    let dir = Path::new(rest);
                    names.retain(|p, _| p.parent() != Some(dir));
                    undone.dir_syncs += 1;
                }
                "A" => {
                    names.clear();
                    bytes.clear();
                }
                "S" => {
                    let key = id()?;
                    let copy = words
                        .next()
                        .ok_or_else(|| format!("a bad journal line: {line}"))?;
                    bytes
                        .entry(key)
                        .or_insert_with(|| Some(self.journal.join("data").join(copy)));
                }
                "E" => {
                    bytes.insert(id()?, None);
                }
                "Y" => {
                    bytes.remove(&id()?);
                    undone.file_syncs += 1;
                }
                "U" => return Err(format!("not modelled by the power cut: {rest}")),
                _ => return Err(format!("a bad journal line: {line}")),
            }
        }

        // Names first, shallow before deep: a folder that goes takes its content.
        let mut order: Vec<(&PathBuf, &Durable)> = names.iter().collect();
        order.sort_by_key(|(p, _)| p.components().count());
        for (path, durable) in order {
            if path.parent().is_some_and(|d| !d.is_dir()) {
                continue;
            }
            let now = fs::symlink_metadata(path).ok();
            let fail = |e: std::io::Error| format!("{}: {e}", path.display());
            let same = match (durable, &now) {
                (Durable::Absent, None) => true,
                (Durable::File(dev, ino), Some(m)) => m.dev() == *dev && m.ino() == *ino,
                (Durable::Dir, Some(m)) => m.is_dir(),
                _ => false,
            };
            if same {
                continue;
            }
            match &now {
                Some(m) if m.is_dir() => fs::remove_dir_all(path).map_err(fail)?,
                Some(_) => fs::remove_file(path).map_err(fail)?,
                None => {}
            }
            match durable {
                Durable::Absent => {}
                Durable::File(dev, ino) => {
                    let kept = self.journal.join("keep").join(format!("{dev}-{ino}"));
                    fs::hard_link(&kept, path).map_err(fail)?;
                }
                Durable::Dir => fs::create_dir(path).map_err(fail)?,
            }
            undone.names += 1;
        }

        // Then the bytes of every file the names now lead to.
        let mut seen = HashSet::new();
        let mut folders: Vec<PathBuf> = self.roots.iter().filter(|r| r.is_dir()).cloned().collect();
        while let Some(dir) = folders.pop() {
            let entries = fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            for entry in entries {
                let entry = entry.map_err(|e| format!("{}: {e}", dir.display()))?;
                let path = entry.path();
                let m =
                    fs::symlink_metadata(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                if m.is_dir() {
                    folders.push(path);
                    continue;
                }
                let key = (m.dev(), m.ino());
                let Some(durable) = bytes.get(&key) else {
                    continue;
                };
                if !seen.insert(key) {
                    continue;
                }
                let want = match durable {
                    Some(copy) => fs::read(copy).map_err(|e| format!("{}: {e}", copy.display()))?,
                    None => Vec::new(),
                };
                let fail = |e: std::io::Error| format!("{}: {e}", path.display());
                if fs::read(&path).map_err(fail)? != want {
                    // Through the same inode: its other names see the same bytes.
                    let mut f = fs::OpenOptions::new()
                        .write(true)
                        .truncate(true)
                        .open(&path)
                        .map_err(fail)?;
                    f.write_all(&want).map_err(fail)?;
                    undone.files += 1;
                }
            }
        }
        self.fresh_journal()?;
        Ok(undone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The model end to end: the interposer built with `cc`, a shell's file
    /// operations under it (`sync FILE` is an fsync of that file or folder), then
    /// the cut.
    #[test]
    fn a_cut_keeps_what_was_synced_and_nothing_else() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let lib = dir.path().join(LIBRARY);
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/powercut_preload.c");
        let built = std::process::Command::new("cc")
            .args(["-shared", "-fPIC", "-O2", "-U_FORTIFY_SOURCE", "-o"])
            .arg(&lib)
            .arg(&src)
            .args(["-ldl", "-lpthread"])
            .status()
            .expect("cc runs");
        assert!(built.success(), "the interposer builds");
        let root = dir.path().join("photos");
        let cut = FileCut::with_library(lib, &dir.path().join("journal"), vec![root.clone()])
            .expect("the journal is made");
        let script = r#"
            set -e
            mkdir -p "$R/aa" "$R/bb"; sync "$R/aa" "$R" "$R/.."
            printf synced > "$R/aa/kept"; sync "$R/aa/kept" "$R/aa"
            printf ' appended' >> "$R/aa/kept"
            printf unsynced > "$R/aa/empty"; sync "$R/aa"
            printf tmp > "$R/aa/.tmp"; sync "$R/aa/.tmp"; mv "$R/aa/.tmp" "$R/aa/renamed"
            printf back > "$R/bb/removed"; sync "$R/bb/removed" "$R/bb"; rm "$R/bb/removed"
            mkdir "$R/cc"; printf x > "$R/cc/f"; sync "$R/cc/f" "$R/cc"
        "#;
        let ran = std::process::Command::new("sh")
            .args(["-c", script])
            .env("R", &root)
            .envs(cut.env())
            .status()
            .expect("sh runs");
        assert!(ran.success(), "the file operations run");
        let undone = cut.cut().expect("the cut");
        let read = |p: &str| fs::read_to_string(root.join(p)).ok();
        assert_eq!(
            read("aa/kept").as_deref(),
            Some("synced"),
            "bytes synced stay, later ones go"
        );
        assert_eq!(
            read("aa/empty").as_deref(),
            Some(""),
            "a synced name without synced bytes is empty"
        );
        assert_eq!(
            read("aa/renamed"),
            None,
            "a rename is undone without its folder's sync"
        );
        assert_eq!(
            read("aa/.tmp"),
            None,
            "so is the creation of the temporary name"
        );
        assert_eq!(
            read("bb/removed").as_deref(),
            Some("back"),
            "an unlink is undone"
        );
        assert!(
            !root.join("cc").exists(),
            "a folder whose name was never synced goes, content and all"
        );
        // Put back: `renamed`, `removed`, `cc`; bytes: `kept`, `empty`.
        assert_eq!((undone.names, undone.files), (3, 2), "{undone:?}");
        assert_eq!((undone.file_syncs, undone.dir_syncs), (4, 7), "{undone:?}");
        // The journal starts afresh: a second cut changes nothing.
        let again = cut.cut().expect("a second cut");
        assert_eq!((again.names, again.files), (0, 0));
    }
}
