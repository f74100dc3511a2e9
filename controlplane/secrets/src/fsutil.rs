//! Private files and directories: created with their final mode, written atomically.

use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io::{self, Read as _, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::error::SecretsError;
use crate::layout::{DIR_MODE, FILE_MODE};

/// Largest secret, key, certificate or CA bundle we read.
pub(crate) const READ_LIMIT: u64 = 1 << 20;

/// How [`write_private`] puts the new file in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Placement {
    /// Fail if the destination exists (hard link: atomic and never clobbers).
    CreateNew,
    /// Atomically replace whatever is there (rename).
    Replace,
}

impl Placement {
    /// `Replace` under `rampart init --force`, `CreateNew` otherwise.
    pub(crate) fn forced(force: bool) -> Self {
        if force {
            Self::Replace
        } else {
            Self::CreateNew
        }
    }
}

/// Whether anything (file, directory or symlink, even dangling) exists at `path`.
pub(crate) fn exists(path: &Path) -> Result<bool, SecretsError> {
    match fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(SecretsError::io("inspect", path)(e)),
    }
}

/// Makes sure `path` is a directory only its owner can access, creating it (mode 0700 from the
/// start) if needed. Parents are created like `mkdir -p`. An existing directory with group or
/// other bits is an error, never repaired. Returns whether it was created.
pub(crate) fn ensure_private_dir(path: &Path) -> Result<bool, SecretsError> {
    match fs::metadata(path) {
        Ok(meta) => {
            if !meta.is_dir() {
                return Err(SecretsError::NotADirectory {
                    path: path.to_owned(),
                });
            }
            let mode = meta.permissions().mode() & 0o7777;
            if mode & 0o077 != 0 {
                return Err(SecretsError::LoosePermissions {
                    path: path.to_owned(),
                    mode,
                });
            }
            Ok(false)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                fs::create_dir_all(parent).map_err(SecretsError::io("create", parent))?;
            }
            DirBuilder::new()
                .mode(DIR_MODE)
                .create(path)
                .map_err(SecretsError::io("create", path))?;
            // The umask can only have removed bits; restore the owner's. The directory was never
            // more open than 0700, so this is not a chmod-after-write race.
            let mode = fs::metadata(path)
                .map_err(SecretsError::io("inspect", path))?
                .permissions()
                .mode()
                & 0o7777;
            if mode != DIR_MODE {
                fs::set_permissions(path, Permissions::from_mode(DIR_MODE))
                    .map_err(SecretsError::io("set permissions on", path))?;
            }
            Ok(true)
        }
        Err(e) => Err(SecretsError::io("inspect", path)(e)),
    }
}

/// Writes `contents` to `path` with mode 0600: a temporary file in the same directory, created
/// 0600 with `O_EXCL`, written and fsynced, then linked or renamed into place and the
/// directory fsynced.
pub(crate) fn write_private(
    path: &Path,
    contents: &[u8],
    placement: Placement,
) -> Result<(), SecretsError> {
    let tmp = stage_private(path, contents)?;
    commit(&tmp, path, placement)
}

/// First half of [`write_private`]: writes the temporary file and returns its path.
pub(crate) fn stage_private(path: &Path, contents: &[u8]) -> Result<PathBuf, SecretsError> {
    let tmp = temp_path(path)?;
    let result = write_new_file(&tmp, contents);
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map(|()| tmp)
}

/// Second half of [`write_private`]: puts a staged file in place.
pub(crate) fn commit(tmp: &Path, path: &Path, placement: Placement) -> Result<(), SecretsError> {
    let result = match placement {
        Placement::CreateNew => fs::hard_link(tmp, path)
            .map_err(SecretsError::io("create", path))
            .and_then(|()| fs::remove_file(tmp).map_err(SecretsError::io("remove", tmp))),
        Placement::Replace => fs::rename(tmp, path).map_err(SecretsError::io("replace", path)),
    };
    if result.is_err() {
        let _ = fs::remove_file(tmp);
        return result;
    }
    sync_parent(path)
}

/// Removes a staged file that will not be committed.
pub(crate) fn discard(tmp: &Path) {
    let _ = fs::remove_file(tmp);
}

/// Removes `path` if it exists.
pub(crate) fn remove_if_exists(path: &Path) -> Result<bool, SecretsError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(SecretsError::io("remove", path)(e)),
    }
}

/// Reads at most [`READ_LIMIT`] bytes into a zeroizing buffer.
pub(crate) fn read_private(path: &Path) -> Result<Zeroizing<Vec<u8>>, SecretsError> {
    read_limited(path, false)
}

/// Like [`read_private`], and refuses a file that is not a regular file or that group or
/// others can access. The mode is checked on the opened descriptor, so the file read is the
/// file checked.
pub(crate) fn read_private_strict(path: &Path) -> Result<Zeroizing<Vec<u8>>, SecretsError> {
    read_limited(path, true)
}

fn read_limited(path: &Path, strict: bool) -> Result<Zeroizing<Vec<u8>>, SecretsError> {
    let file = File::open(path).map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            SecretsError::Missing {
                path: path.to_owned(),
            }
        } else {
            SecretsError::io("open", path)(e)
        }
    })?;
    let meta = file.metadata().map_err(SecretsError::io("inspect", path))?;
    if strict {
        if !meta.is_file() {
            return Err(SecretsError::io("read", path)(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a regular file",
            )));
        }
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(SecretsError::LoosePermissions {
                path: path.to_owned(),
                mode,
            });
        }
    }
    let len = meta.len();
    if len > READ_LIMIT {
        return Err(SecretsError::TooLarge {
            path: path.to_owned(),
            limit: READ_LIMIT,
        });
    }
    // Sized up front so the buffer is not reallocated (which would leave an unzeroized copy).
    let mut buf = Zeroizing::new(Vec::with_capacity(usize::try_from(len).unwrap_or(0) + 1));
    file.take(READ_LIMIT + 1)
        .read_to_end(&mut buf)
        .map_err(SecretsError::io("read", path))?;
    if buf.len() as u64 > READ_LIMIT {
        return Err(SecretsError::TooLarge {
            path: path.to_owned(),
            limit: READ_LIMIT,
        });
    }
    Ok(buf)
}

/// Reads a UTF-8 text file into a zeroizing string.
pub(crate) fn read_private_text(path: &Path) -> Result<Zeroizing<String>, SecretsError> {
    let mut bytes = read_private(path)?;
    match String::from_utf8(std::mem::take(&mut *bytes)) {
        Ok(text) => Ok(Zeroizing::new(text)),
        Err(e) => {
            drop(Zeroizing::new(e.into_bytes()));
            Err(SecretsError::NotText {
                path: path.to_owned(),
            })
        }
    }
}

fn write_new_file(tmp: &Path, contents: &[u8]) -> Result<(), SecretsError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(tmp)
        .map_err(SecretsError::io("create", tmp))?;
    // fchmod on our own descriptor: only restores owner bits a umask may have removed.
    file.set_permissions(Permissions::from_mode(FILE_MODE))
        .map_err(SecretsError::io("set permissions on", tmp))?;
    file.write_all(contents)
        .map_err(SecretsError::io("write", tmp))?;
    file.sync_all().map_err(SecretsError::io("sync", tmp))
}

fn temp_path(path: &Path) -> Result<PathBuf, SecretsError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let suffix = rampart_credentials::generate::random_bytes::<8>()?;
    let hex: String = suffix.iter().map(|b| format!("{b:02x}")).collect();
    Ok(path.with_file_name(format!(".{name}.tmp-{hex}")))
}

fn sync_parent(path: &Path) -> Result<(), SecretsError> {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    File::open(parent)
        .and_then(|dir| dir.sync_all())
        .map_err(SecretsError::io("sync", parent))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt as _;

    use super::*;

    #[test]
    fn files_are_created_0600_and_never_clobbered() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        write_private(&path, b"one", Placement::CreateNew).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o7777, 0o600);

        let err = write_private(&path, b"two", Placement::CreateNew).unwrap_err();
        assert!(
            matches!(err, SecretsError::Io { op: "create", .. }),
            "{err}"
        );
        assert_eq!(fs::read(&path).unwrap(), b"one");

        write_private(&path, b"three", Placement::Replace).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"three");
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o7777, 0o600);

        // No temporary files are left behind.
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn directories_are_created_0700_and_loose_ones_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/secrets");
        assert!(ensure_private_dir(&path).unwrap());
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o7777, 0o700);
        assert!(!ensure_private_dir(&path).unwrap());

        fs::set_permissions(&path, Permissions::from_mode(0o750)).unwrap();
        let err = ensure_private_dir(&path).unwrap_err();
        assert!(matches!(
            err,
            SecretsError::LoosePermissions { mode: 0o750, .. }
        ));
    }

    #[test]
    fn strict_reads_refuse_loose_files_and_directories() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        write_private(&path, b"k", Placement::CreateNew).unwrap();
        assert_eq!(&read_private_strict(&path).unwrap()[..], b"k");
        fs::set_permissions(&path, Permissions::from_mode(0o604)).unwrap();
        assert!(matches!(
            read_private_strict(&path),
            Err(SecretsError::LoosePermissions { mode: 0o604, .. })
        ));
        // The lenient reader (for certificates given by the operator) does not care.
        assert_eq!(&read_private(&path).unwrap()[..], b"k");
        assert!(matches!(
            read_private_strict(dir.path()),
            Err(SecretsError::Io { op: "read", .. })
        ));
    }

    #[test]
    fn oversized_reads_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        fs::write(&path, vec![b'x'; READ_LIMIT as usize + 1]).unwrap();
        assert!(matches!(
            read_private(&path),
            Err(SecretsError::TooLarge { .. })
        ));
        assert!(matches!(
            read_private(&dir.path().join("nope")),
            Err(SecretsError::Missing { .. })
        ));
    }
}
