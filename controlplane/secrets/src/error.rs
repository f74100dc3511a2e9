//! The secrets directory's error type. Messages name paths and modes, never secret values.

use std::io;
use std::path::PathBuf;

use rampart_ca::{CaError, Service};
use rampart_credentials::{PasswordError, RandomError};

/// Everything that can go wrong with the secrets directory.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretsError {
    /// A file-system operation failed.
    #[error("cannot {op} {path}: {source}")]
    Io {
        /// What we tried: "create", "read", "rename", ...
        op: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The secrets directory (or a required file in it) does not exist.
    #[error("{path} does not exist")]
    Missing {
        /// The missing path.
        path: PathBuf,
    },
    /// A path that must be a directory is something else.
    #[error("{path} is not a directory")]
    NotADirectory {
        /// The offending path.
        path: PathBuf,
    },
    /// A directory or file is accessible by group or others.
    #[error(
        "{path} has mode {mode:04o}; group and others must have no access (directories 0700, files 0600)"
    )]
    LoosePermissions {
        /// The offending path.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A symbolic link inside the secrets directory points outside it, or nowhere.
    #[error("{path} is a symbolic link that leaves the secrets directory or dangles")]
    SymlinkEscapes {
        /// The link.
        path: PathBuf,
    },
    /// A file is larger than a secret or certificate can reasonably be.
    #[error("{path} is larger than {limit} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit in bytes.
        limit: u64,
    },
    /// A file that must be UTF-8 text is not.
    #[error("{path} is not UTF-8 text")]
    NotText {
        /// The file.
        path: PathBuf,
    },
    /// The operating system's random number generator failed.
    #[error(transparent)]
    Random(#[from] RandomError),
    /// Hashing the admin password failed.
    #[error("hashing the admin password failed: {0}")]
    PasswordHash(PasswordError),
    /// A key file (`master.key`, `credential.key`) is not standard base64 of 32 bytes.
    #[error("{path} is not a valid key file: {reason}")]
    InvalidKey {
        /// The key file.
        path: PathBuf,
        /// What is wrong, without quoting the content.
        reason: &'static str,
    },

    /// The database password given by the caller cannot be stored.
    #[error("the database password {reason}")]
    InvalidDbPassword {
        /// Why it was rejected.
        reason: &'static str,
    },
    /// Generating or checking PKI material failed.
    #[error(transparent)]
    Ca(#[from] CaError),
    /// A certificate file given to `install_certs` was rejected.
    #[error("{path}: {source}")]
    Certificate {
        /// The certificate or CA file.
        path: PathBuf,
        /// Why it was rejected.
        #[source]
        source: CaError,
    },
    /// A service has a pending key but no CSR, so the expected names are unknown.
    #[error("{service} has a pending key but no CSR at {path}; run init in CSR mode first")]
    MissingCsr {
        /// The service.
        service: Service,
        /// Where the CSR should be.
        path: PathBuf,
    },
    /// No service key is pending, so there is nothing to install certificates for.
    #[error("no service keys in {path}; run init in CSR mode first")]
    NoPendingKeys {
        /// The certs directory.
        path: PathBuf,
    },
    /// Two certificate files were given for the same service.
    #[error("{first} and {second} are both certificates for {service}")]
    DuplicateCertificate {
        /// The service.
        service: Service,
        /// The first file.
        first: PathBuf,
        /// The second file.
        second: PathBuf,
    },
    /// Encoding a value as JSON failed (cannot happen for the strings we write).
    #[error("could not encode {what} as JSON")]
    Json {
        /// What was being encoded.
        what: &'static str,
    },
    /// An auth file is not `{"user": "...", "password": "..."}`.
    #[error("{path} is not a valid auth file: {reason} at line {line}, column {column}")]
    AuthFile {
        /// The file.
        path: PathBuf,
        /// What is wrong, without quoting the content.
        reason: &'static str,
        /// 1-based line of the problem.
        line: usize,
        /// 1-based column of the problem.
        column: usize,
    },
}

impl SecretsError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| SecretsError::Io { op, path, source }
    }
}
