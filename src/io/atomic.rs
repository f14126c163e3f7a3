//! Atomic file writing: write to a temporary file in the destination folder,
//! flush, then rename, so a crash or error never leaves a half-written output.

use crate::{Error, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".into());
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Writes a file atomically; `fill` streams the content into a buffered writer.
pub fn write_with(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<u64> {
    stage_with(path, fill)?.commit()
}

/// A complete file under a temporary name next to its destination: renamed
/// into place by [`Staged::commit`], removed if dropped uncommitted. Lets a
/// run prepare an output while other work goes on and publish it only if
/// all of that succeeds.
#[must_use = "a staged file is removed unless committed"]
pub struct Staged {
    tmp: PathBuf,
    path: PathBuf,
    len: u64,
    committed: bool,
}

impl Staged {
    /// Renames the file into place; returns its length in bytes.
    pub fn commit(mut self) -> Result<u64> {
        std::fs::rename(&self.tmp, &self.path)
            .map_err(|e| Error::io("cannot write", &self.path, e))?;
        self.committed = true;
        Ok(self.len)
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Writes the content of `path` to its temporary name, flushed to disk
/// (see [`Staged`]).
pub fn stage_with(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<Staged> {
    let tmp = temp_path(path);
    let result = (|| -> std::io::Result<u64> {
        let file = std::fs::File::create(&tmp)?;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
        fill(&mut w)?;
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok(file.metadata()?.len())
    })();
    match result {
        Ok(len) => Ok(Staged {
            tmp,
            path: path.to_path_buf(),
            len,
            committed: false,
        }),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(Error::io("cannot write", path, e))
        }
    }
}

/// Writes bytes atomically.
pub fn write_bytes(path: &Path, bytes: &[u8]) -> Result<u64> {
    write_with(path, |w| w.write_all(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.bin");
        assert_eq!(write_bytes(&p, b"hello").unwrap(), 5);
        assert_eq!(std::fs::read(&p).unwrap(), b"hello");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn failed_fill_keeps_old_file_and_removes_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.bin");
        write_bytes(&p, b"old").unwrap();
        let r = write_with(&p, |w| {
            w.write_all(b"partial")?;
            Err(std::io::Error::other("boom"))
        });
        assert!(r.is_err());
        assert_eq!(std::fs::read(&p).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_staged_file_appears_only_when_committed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.bin");
        std::fs::write(&p, b"old").unwrap();
        let s = stage_with(&p, |w| w.write_all(b"new")).unwrap();
        // Staged: the old file is untouched.
        assert_eq!(std::fs::read(&p).unwrap(), b"old");
        assert_eq!(s.commit().unwrap(), 3);
        assert_eq!(std::fs::read(&p).unwrap(), b"new");
        // Dropped uncommitted: no trace, the file keeps its content.
        drop(stage_with(&p, |w| w.write_all(b"newer")).unwrap());
        assert_eq!(std::fs::read(&p).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
