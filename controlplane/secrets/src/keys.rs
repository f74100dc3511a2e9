//! The 32-byte key files: `master.key` (the key-encryption key for locally sealed secrets,
//! `rampart_credentials::Kek`) and `credential.key` (the HMAC key for machine-credential
//! digests). Both hold 32 random bytes in standard base64 and a newline.

use std::io;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

use crate::check;
use crate::error::SecretsError;
use crate::fsutil::{self, Placement};
use crate::generate::{self, KEY_LEN};
use crate::layout::Layout;

/// Reads a 32-byte key file such as [`Layout::master_key`] or [`Layout::credential_key`].
///
/// The file must be a regular file that group and others cannot access (checked on the opened
/// file), and hold standard base64 of exactly 32 bytes; surrounding whitespace (the trailing
/// newline) is ignored. Errors name the path and the problem, never the content.
pub fn read_key32(path: &Path) -> Result<Zeroizing<[u8; KEY_LEN]>, SecretsError> {
    let bytes = fsutil::read_private_strict(path)?;
    let invalid = |reason| SecretsError::InvalidKey {
        path: path.to_owned(),
        reason,
    };
    let text = bytes.trim_ascii();
    // Room for a little more than a key, so "too long" is told apart from "not base64".
    let mut decoded = Zeroizing::new([0u8; 2 * KEY_LEN]);
    let len = STANDARD
        .decode_slice(text, &mut decoded[..])
        .map_err(|e| match e {
            base64::DecodeSliceError::OutputSliceTooSmall => invalid("longer than 32 bytes"),
            base64::DecodeSliceError::DecodeError(_) => invalid("not standard base64"),
        })?;
    if len != KEY_LEN {
        return Err(invalid(if len < KEY_LEN {
            "shorter than 32 bytes"
        } else {
            "longer than 32 bytes"
        }));
    }
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    key.copy_from_slice(&decoded[..KEY_LEN]);
    Ok(key)
}

/// Creates the key files an installation initialised before they existed is missing, so that
/// it can still start. Never overwrites an existing file (even an invalid one: that is for
/// [`read_key32`] to report). Returns the files created.
///
/// The secrets directory must exist and pass [`check_private`](crate::check_private).
pub fn ensure_keys(layout: &Layout) -> Result<Vec<PathBuf>, SecretsError> {
    check::check_private(layout.root())?;
    let mut created = Vec::new();
    for path in layout.key_files() {
        if fsutil::exists(&path)? {
            continue;
        }
        let key = generate::key32()?;
        match fsutil::write_private(&path, key.as_bytes(), Placement::CreateNew) {
            Ok(()) => created.push(path),
            // Another process created it between our check and our link: keep theirs.
            Err(SecretsError::Io { source, .. })
                if source.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Ok(created)
}

#[cfg(test)]
mod tests {
    use std::fs::{self, Permissions};
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn private_dir() -> (tempfile::TempDir, Layout) {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("secrets");
        fsutil::ensure_private_dir(&root).unwrap();
        (tmp, Layout::new(root))
    }

    #[test]
    fn ensure_keys_creates_only_what_is_missing() {
        let (_tmp, layout) = private_dir();
        let created = ensure_keys(&layout).unwrap();
        assert_eq!(created, layout.key_files().to_vec());
        for path in layout.key_files() {
            assert_eq!(
                fs::metadata(&path).unwrap().permissions().mode() & 0o7777,
                0o600
            );
            read_key32(&path).unwrap();
        }
        let master = fs::read(layout.master_key()).unwrap();
        assert!(ensure_keys(&layout).unwrap().is_empty());
        assert_eq!(fs::read(layout.master_key()).unwrap(), master);

        fs::remove_file(layout.credential_key()).unwrap();
        assert_eq!(ensure_keys(&layout).unwrap(), vec![layout.credential_key()]);
        assert_eq!(fs::read(layout.master_key()).unwrap(), master);
        assert_ne!(
            *read_key32(&layout.master_key()).unwrap(),
            *read_key32(&layout.credential_key()).unwrap()
        );
    }

    #[test]
    fn ensure_keys_refuses_a_loose_or_missing_directory() {
        let (_tmp, layout) = private_dir();
        fs::set_permissions(layout.root(), Permissions::from_mode(0o750)).unwrap();
        assert!(matches!(
            ensure_keys(&layout),
            Err(SecretsError::LoosePermissions { mode: 0o750, .. })
        ));
        assert!(!layout.master_key().exists());
        assert!(matches!(
            ensure_keys(&Layout::new(layout.root().join("nope"))),
            Err(SecretsError::Missing { .. })
        ));
    }

    #[test]
    fn read_key32_checks_mode_and_content() {
        let (_tmp, layout) = private_dir();
        let path = layout.master_key();
        let write = |text: &str| {
            let _ = fs::remove_file(&path);
            fsutil::write_private(&path, text.as_bytes(), Placement::CreateNew).unwrap();
        };

        write(&format!("{}\n", STANDARD.encode([7u8; 32])));
        assert_eq!(*read_key32(&path).unwrap(), [7u8; 32]);
        write(&format!("  {}  \r\n", STANDARD.encode([8u8; 32])));
        assert_eq!(*read_key32(&path).unwrap(), [8u8; 32]);

        for (text, reason) in [
            (String::new(), "shorter than 32 bytes"),
            (STANDARD.encode([1u8; 31]), "shorter than 32 bytes"),
            (STANDARD.encode([1u8; 33]), "longer than 32 bytes"),
            (STANDARD.encode([1u8; 200]), "longer than 32 bytes"),
            ("not base64 at all!".to_owned(), "not standard base64"),
            (
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([0xfbu8; 32]),
                "not standard base64",
            ),
        ] {
            write(&text);
            let err = read_key32(&path).unwrap_err();
            assert!(
                matches!(&err, SecretsError::InvalidKey { reason: r, .. } if *r == reason),
                "{text:?}: {err}"
            );
            if !text.is_empty() {
                assert!(!err.to_string().contains(&text), "{err}");
            }
        }

        write(&STANDARD.encode([7u8; 32]));
        fs::set_permissions(&path, Permissions::from_mode(0o640)).unwrap();
        assert!(matches!(
            read_key32(&path),
            Err(SecretsError::LoosePermissions { mode: 0o640, .. })
        ));
        assert!(matches!(
            read_key32(&layout.credential_key()),
            Err(SecretsError::Missing { .. })
        ));
    }
}
