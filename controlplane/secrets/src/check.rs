//! The permission check: nothing in the secrets directory may be reachable by group or others.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use crate::error::SecretsError;

/// Deepest directory nesting walked; the layout itself is two levels deep.
const MAX_DEPTH: usize = 16;

/// Checks that `secrets_dir` exists, is a directory, and that neither it nor anything below it
/// grants any permission to group or others (`mode & 0o077 == 0`). Symbolic links inside must
/// resolve to somewhere inside the directory. The first offending path is reported with its
/// octal mode.
///
/// The directory itself may be reached through a symbolic link (e.g. `/etc/rampart/secrets`
/// pointing at a data volume); the check applies to its target.
pub fn check_private(secrets_dir: &Path) -> Result<(), SecretsError> {
    let meta = fs::metadata(secrets_dir).map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            SecretsError::Missing {
                path: secrets_dir.to_owned(),
            }
        } else {
            SecretsError::io("inspect", secrets_dir)(e)
        }
    })?;
    if !meta.is_dir() {
        return Err(SecretsError::NotADirectory {
            path: secrets_dir.to_owned(),
        });
    }
    check_mode(secrets_dir, meta.permissions().mode())?;
    let root = fs::canonicalize(secrets_dir).map_err(SecretsError::io("resolve", secrets_dir))?;
    walk(secrets_dir, &root, 0)
}

fn walk(dir: &Path, root: &Path, depth: usize) -> Result<(), SecretsError> {
    let entries = fs::read_dir(dir).map_err(SecretsError::io("list", dir))?;
    for entry in entries {
        let entry = entry.map_err(SecretsError::io("list", dir))?;
        let path = entry.path();
        let meta = fs::symlink_metadata(&path).map_err(SecretsError::io("inspect", &path))?;
        if meta.file_type().is_symlink() {
            // A link's own mode is always 0777 and meaningless; what matters is where it goes.
            // Its target, being inside the directory, is checked on its own.
            match fs::canonicalize(&path) {
                Ok(target) if target.starts_with(root) => continue,
                _ => return Err(SecretsError::SymlinkEscapes { path }),
            }
        }
        check_mode(&path, meta.permissions().mode())?;
        if meta.is_dir() && depth < MAX_DEPTH {
            walk(&path, root, depth + 1)?;
        }
    }
    Ok(())
}

fn check_mode(path: &Path, mode: u32) -> Result<(), SecretsError> {
    if mode & 0o077 != 0 {
        return Err(SecretsError::LoosePermissions {
            path: path.to_owned(),
            mode: mode & 0o7777,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::fs::Permissions;
    use std::os::unix::fs::symlink;

    use super::*;

    fn private_tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), Permissions::from_mode(0o700)).unwrap();
        let sub = dir.path().join("certs");
        fs::create_dir(&sub).unwrap();
        fs::set_permissions(&sub, Permissions::from_mode(0o700)).unwrap();
        let file = sub.join("https.key");
        fs::write(&file, b"k").unwrap();
        fs::set_permissions(&file, Permissions::from_mode(0o600)).unwrap();
        dir
    }

    #[test]
    fn private_tree_passes() {
        let dir = private_tree();
        check_private(dir.path()).unwrap();
    }

    #[test]
    fn missing_directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = check_private(&dir.path().join("nope")).unwrap_err();
        assert!(matches!(err, SecretsError::Missing { .. }));
    }

    #[test]
    fn symlinks_inside_are_fine_and_escaping_ones_are_not() {
        let dir = private_tree();
        symlink("certs/https.key", dir.path().join("alias")).unwrap();
        check_private(dir.path()).unwrap();

        symlink("/etc/passwd", dir.path().join("certs/escape")).unwrap();
        let err = check_private(dir.path()).unwrap_err();
        assert!(
            matches!(&err, SecretsError::SymlinkEscapes { path } if path.ends_with("certs/escape"))
        );
        fs::remove_file(dir.path().join("certs/escape")).unwrap();

        symlink("does-not-exist", dir.path().join("dangling")).unwrap();
        assert!(matches!(
            check_private(dir.path()),
            Err(SecretsError::SymlinkEscapes { .. })
        ));
    }

    #[test]
    fn group_readable_file_deep_inside_is_named() {
        let dir = private_tree();
        let file = dir.path().join("certs/https.key");
        fs::set_permissions(&file, Permissions::from_mode(0o640)).unwrap();
        let err = check_private(dir.path()).unwrap_err();
        assert!(
            matches!(&err, SecretsError::LoosePermissions { path, mode: 0o640 } if *path == file)
        );
        assert!(err.to_string().contains("0640"), "{err}");
    }
}
