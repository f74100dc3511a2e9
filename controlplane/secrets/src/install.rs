//! `certs install`: put certificates signed by an external CA in place of the pending CSRs.

use std::path::{Path, PathBuf};

use rampart_ca::{ExternalCa, PendingService, Service};
use time::OffsetDateTime;

use crate::check;
use crate::error::SecretsError;
use crate::fsutil::{self, Placement};
use crate::layout::Layout;

/// Installs certificates signed by an external CA.
///
/// Loads every pending service key (`certs/<svc>.key`, with its `certs/<svc>.csr`), checks the
/// CA bundle at `ca_pem`, then checks each file in `certs` with [`ExternalCa::verify`]: it must
/// carry one pending key's public key, be signed by the CA, be valid now, not be a CA and
/// contain the DNS name its CSR asked for. Only if every file passes are `certs/<svc>.pem` and
/// `ca/ca.pem` written (atomically, 0600, replacing what was there). Returns the services that
/// got a certificate and where it was written.
///
/// A certificate whose key is not pending here (for example, for a service whose key file is
/// absent) is an error, as is a second certificate for the same service.
pub fn install_certs(
    secrets_dir: &Path,
    ca_pem: &Path,
    certs: &[PathBuf],
) -> Result<Vec<(Service, PathBuf)>, SecretsError> {
    check::check_private(secrets_dir)?;
    let layout = Layout::new(secrets_dir);
    let now = OffsetDateTime::now_utc();

    let pending = load_pending(&layout)?;

    let ca_text = fsutil::read_private_text(ca_pem)?;
    let ca = ExternalCa::from_pem(&ca_text, now).map_err(|source| SecretsError::Certificate {
        path: ca_pem.to_owned(),
        source,
    })?;

    let mut verified: Vec<(rampart_ca::VerifiedCert, &Path)> = Vec::with_capacity(certs.len());
    for path in certs {
        let text = fsutil::read_private_text(path)?;
        let cert = ca
            .verify(&text, &pending, now)
            .map_err(|source| SecretsError::Certificate {
                path: path.clone(),
                source,
            })?;
        if let Some((_, first)) = verified.iter().find(|(v, _)| v.service == cert.service) {
            return Err(SecretsError::DuplicateCertificate {
                service: cert.service,
                first: first.to_path_buf(),
                second: path.clone(),
            });
        }
        verified.push((cert, path));
    }

    // Stage everything, then rename into place: a failure before the first rename changes
    // nothing.
    let mut files: Vec<(PathBuf, &[u8])> = verified
        .iter()
        .map(|(cert, _)| (layout.service_cert(cert.service), cert.cert_pem.as_bytes()))
        .collect();
    files.push((layout.ca_cert(), ca.bundle_pem().as_bytes()));

    let mut staged = Vec::with_capacity(files.len());
    for (path, contents) in &files {
        match fsutil::stage_private(path, contents) {
            Ok(tmp) => staged.push((tmp, path)),
            Err(e) => {
                staged.iter().for_each(|(tmp, _)| fsutil::discard(tmp));
                return Err(e);
            }
        }
    }
    let mut remaining = staged.into_iter();
    while let Some((tmp, path)) = remaining.next() {
        if let Err(e) = fsutil::commit(&tmp, path, Placement::Replace) {
            remaining.for_each(|(tmp, _)| fsutil::discard(&tmp));
            return Err(e);
        }
    }

    Ok(verified
        .iter()
        .map(|(cert, _)| (cert.service, layout.service_cert(cert.service)))
        .collect())
}

/// Every service with a key in `certs/`, with the DNS name its CSR requested.
fn load_pending(layout: &Layout) -> Result<Vec<PendingService>, SecretsError> {
    let mut pending = Vec::new();
    for service in Service::ALL {
        let key_path = layout.service_key(service);
        if !fsutil::exists(&key_path)? {
            continue;
        }
        let csr_path = layout.service_csr(service);
        if !fsutil::exists(&csr_path)? {
            return Err(SecretsError::MissingCsr {
                service,
                path: csr_path,
            });
        }
        let key = fsutil::read_private_text(&key_path)?;
        let csr = fsutil::read_private_text(&csr_path)?;
        let loaded = PendingService::from_pem(service, &key, &csr).map_err(|source| {
            SecretsError::Certificate {
                path: csr_path.clone(),
                source,
            }
        })?;
        pending.push(loaded);
    }
    if pending.is_empty() {
        return Err(SecretsError::NoPendingKeys {
            path: layout.certs_dir(),
        });
    }
    Ok(pending)
}
