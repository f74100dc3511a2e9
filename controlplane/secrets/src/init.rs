//! `init`: create every secret that does not exist yet.

use std::fmt;
use std::path::{Path, PathBuf};

use rampart_ca::Names;
use zeroize::Zeroizing;

use crate::error::SecretsError;
use crate::fsutil::{self, Placement};
use crate::generate;
use crate::layout::{Layout, ServiceAccount};
use crate::{auth, check};

/// Longest database password accepted from the caller, in bytes.
const MAX_DB_PASSWORD_LEN: usize = 1024;

/// What [`init`] should create. `Debug` leaves the database password out.
pub struct InitOptions {
    /// The secrets directory; created 0700 (with parents) if missing.
    pub secrets_dir: PathBuf,
    /// Names for the service certificates or CSRs.
    pub names: Names,
    /// Write per-service keys and CSRs for an external CA instead of a self-signed CA and
    /// certificates.
    pub csr: bool,
    /// Regenerate everything, replacing existing secrets (a new admin password is returned).
    ///
    /// Except `master.key` and `credential.key`: they protect data, not access (AMT passwords
    /// sealed in the database, the digests of every machine credential and API key), and
    /// replacing them would destroy that data. They are created when missing and otherwise
    /// always kept.
    pub force: bool,
    /// The database password to store (the guide's `DBPASS`); generated if `None`. Ignored if
    /// `dbpass` already exists and `force` is off.
    pub db_password: Option<Zeroizing<String>>,
}

/// What [`init`] did. `Debug` leaves the admin password out.
#[derive(Default)]
pub struct InitReport {
    /// The new admin password, only when `admin.argon2` was (re)generated. Show it once; it is
    /// stored nowhere.
    pub admin_password: Option<Zeroizing<String>>,
    /// Files written by this run.
    pub created: Vec<PathBuf>,
    /// Existing files left untouched.
    pub kept: Vec<PathBuf>,
}

impl fmt::Debug for InitOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InitOptions")
            .field("secrets_dir", &self.secrets_dir)
            .field("names", &self.names)
            .field("csr", &self.csr)
            .field("force", &self.force)
            .field(
                "db_password",
                &self.db_password.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl fmt::Debug for InitReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InitReport")
            .field(
                "admin_password",
                &self.admin_password.as_ref().map(|_| "<redacted>"),
            )
            .field("created", &self.created)
            .field("kept", &self.kept)
            .finish()
    }
}

/// Creates the secrets directory and every missing secret in it.
///
/// - An existing secret file is never overwritten unless `force` is set; it is listed in
///   [`InitReport::kept`].
/// - The PKI is all or nothing: if any CA or service key/certificate/CSR file exists, the whole
///   PKI is kept (the CA key's CERTPASS is gone, so it could not sign a replacement for just one
///   file). With `force` it is regenerated and files of the other mode are removed.
/// - An existing directory, or anything in it, that group or others can access makes `init`
///   refuse before writing anything.
pub fn init(opts: &InitOptions) -> Result<InitReport, SecretsError> {
    if let Some(password) = &opts.db_password {
        validate_db_password(password)?;
    }
    let layout = Layout::new(&opts.secrets_dir);
    if fsutil::exists(layout.root())? {
        check::check_private(layout.root())?;
    }
    fsutil::ensure_private_dir(layout.root())?;
    fsutil::ensure_private_dir(&layout.ca_dir())?;
    fsutil::ensure_private_dir(&layout.certs_dir())?;

    let mut report = InitReport::default();
    init_pki(&layout, opts, &mut report)?;
    init_admin(&layout, opts.force, &mut report)?;
    put(&layout.session_key(), opts.force, &mut report, || {
        let key = generate::session_key()?;
        Ok(Zeroizing::new(key.as_bytes().to_vec()))
    })?;
    for path in layout.key_files() {
        // Never forced: see `InitOptions::force`.
        put(&path, false, &mut report, || {
            let key = generate::key32()?;
            Ok(Zeroizing::new(key.as_bytes().to_vec()))
        })?;
    }
    put(&layout.db_password(), opts.force, &mut report, || {
        let password = match &opts.db_password {
            Some(given) => given.clone(),
            None => generate::db_password()?,
        };
        let mut bytes = Zeroizing::new(Vec::with_capacity(password.len() + 1));
        bytes.extend_from_slice(password.as_bytes());
        bytes.push(b'\n');
        Ok(bytes)
    })?;
    for account in ServiceAccount::ALL {
        put(&layout.auth_file(account), opts.force, &mut report, || {
            let password = generate::account_password()?;
            auth::to_json(account.user(), &password)
        })?;
    }
    Ok(report)
}

fn init_pki(
    layout: &Layout,
    opts: &InitOptions,
    report: &mut InitReport,
) -> Result<(), SecretsError> {
    let mut existing = Vec::new();
    for path in layout.pki_paths() {
        if fsutil::exists(&path)? {
            existing.push(path);
        }
    }
    if !existing.is_empty() && !opts.force {
        report.kept.extend(existing);
        return Ok(());
    }

    // Generate everything in memory before touching the disk.
    let files: Vec<(PathBuf, Zeroizing<Vec<u8>>)> = if opts.csr {
        rampart_ca::generate_csrs(&opts.names)?
            .into_iter()
            .flat_map(|item| {
                [
                    (
                        layout.service_key(item.service),
                        secret_bytes(&item.key_pem),
                    ),
                    (
                        layout.service_csr(item.service),
                        public_bytes(&item.csr_pem),
                    ),
                ]
            })
            .collect()
    } else {
        let pki = rampart_ca::generate_self_signed(&opts.names)?;
        let mut files = vec![
            (layout.ca_cert(), public_bytes(&pki.ca_cert_pem)),
            (layout.ca_key(), public_bytes(&pki.ca_key_pem)),
        ];
        for issued in &pki.services {
            files.push((
                layout.service_key(issued.service),
                secret_bytes(&issued.key_pem),
            ));
            files.push((
                layout.service_cert(issued.service),
                public_bytes(&issued.cert_pem),
            ));
        }
        files
    };

    let placement = Placement::forced(opts.force);
    let written = write_all_or_nothing(&files, placement)?;

    if opts.force {
        // Drop what the other mode left behind (e.g. old CSRs, or a CA that signed nothing of
        // the new keys), so the directory never mixes two PKIs.
        for path in layout.pki_paths() {
            if !written.contains(&path) {
                fsutil::remove_if_exists(&path)?;
            }
        }
    }
    report.created.extend(written);
    Ok(())
}

/// Stages every file, then puts them all in place. If placing one fails, files this call
/// already created are removed again (with [`Placement::CreateNew`]; replaced files cannot be
/// restored).
fn write_all_or_nothing(
    files: &[(PathBuf, Zeroizing<Vec<u8>>)],
    placement: Placement,
) -> Result<Vec<PathBuf>, SecretsError> {
    let mut staged: Vec<(PathBuf, &Path)> = Vec::with_capacity(files.len());
    for (path, contents) in files {
        match fsutil::stage_private(path, contents) {
            Ok(tmp) => staged.push((tmp, path)),
            Err(e) => {
                staged.iter().for_each(|(tmp, _)| fsutil::discard(tmp));
                return Err(e);
            }
        }
    }
    let mut written: Vec<PathBuf> = Vec::with_capacity(files.len());
    let mut pending = staged.into_iter();
    while let Some((tmp, path)) = pending.next() {
        if let Err(e) = fsutil::commit(&tmp, path, placement) {
            pending.for_each(|(tmp, _)| fsutil::discard(&tmp));
            if placement == Placement::CreateNew {
                for done in &written {
                    let _ = fsutil::remove_if_exists(done);
                }
            }
            return Err(e);
        }
        written.push(path.to_path_buf());
    }
    Ok(written)
}

/// The `admin` password: generated, stored only as its Argon2id PHC string, and returned in the
/// report so that the caller can print it once.
fn init_admin(layout: &Layout, force: bool, report: &mut InitReport) -> Result<(), SecretsError> {
    let mut generated = None;
    put(&layout.admin_hash(), force, report, || {
        let password = generate::admin_password()?;
        let mut phc = generate::hash_password(&password)?;
        phc.push('\n');
        generated = Some(password);
        Ok(Zeroizing::new(phc.into_bytes()))
    })?;
    report.admin_password = generated;
    Ok(())
}

/// Writes one independent secret unless it exists (and `force` is off).
fn put(
    path: &Path,
    force: bool,
    report: &mut InitReport,
    make: impl FnOnce() -> Result<Zeroizing<Vec<u8>>, SecretsError>,
) -> Result<(), SecretsError> {
    if !force && fsutil::exists(path)? {
        report.kept.push(path.to_owned());
        return Ok(());
    }
    let contents = make()?;
    let placement = Placement::forced(force);
    fsutil::write_private(path, &contents, placement)?;
    report.created.push(path.to_owned());
    Ok(())
}

fn validate_db_password(password: &str) -> Result<(), SecretsError> {
    if password.is_empty() {
        return Err(SecretsError::InvalidDbPassword {
            reason: "must not be empty",
        });
    }
    if password.len() > MAX_DB_PASSWORD_LEN {
        return Err(SecretsError::InvalidDbPassword {
            reason: "is longer than 1024 bytes",
        });
    }
    if password.chars().any(char::is_control) {
        return Err(SecretsError::InvalidDbPassword {
            reason: "must not contain control characters such as newlines",
        });
    }
    Ok(())
}

fn secret_bytes(text: &Zeroizing<String>) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(text.as_bytes().to_vec())
}

fn public_bytes(text: &str) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(text.as_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_redacts_passwords() {
        let opts = InitOptions {
            secrets_dir: PathBuf::from("/s"),
            names: Names::new("edge", None, []).unwrap(),
            csr: false,
            force: false,
            db_password: Some(Zeroizing::new("db-secret-value".to_owned())),
        };
        let report = InitReport {
            admin_password: Some(Zeroizing::new("admin-secret-value".to_owned())),
            ..InitReport::default()
        };
        let text = format!("{opts:?} {report:?}");
        assert!(!text.contains("secret-value"), "{text}");
        assert!(text.contains("<redacted>"), "{text}");
    }

    #[test]
    fn db_password_validation() {
        assert!(validate_db_password("s3cret").is_ok());
        for bad in ["", "line\nbreak", "tab\there"] {
            assert!(matches!(
                validate_db_password(bad),
                Err(SecretsError::InvalidDbPassword { .. })
            ));
        }
        assert!(validate_db_password(&"x".repeat(1025)).is_err());
    }
}
