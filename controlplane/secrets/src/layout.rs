//! Where each secret lives.

use std::path::{Path, PathBuf};

use rampart_ca::Service;

/// Mode of every directory in the secrets tree.
pub const DIR_MODE: u32 = 0o700;
/// Mode of every file in the secrets tree.
pub const FILE_MODE: u32 = 0o600;

/// The paths inside a secrets directory. Pure path arithmetic: nothing is touched on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// The layout rooted at `root` (the secrets directory).
    pub fn new(root: impl Into<PathBuf>) -> Layout {
        Layout { root: root.into() }
    }

    /// The secrets directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `ca/`.
    pub fn ca_dir(&self) -> PathBuf {
        self.root.join("ca")
    }

    /// `certs/`.
    pub fn certs_dir(&self) -> PathBuf {
        self.root.join("certs")
    }

    /// `ca/ca.pem`: the CA certificate (self-signed, or the external CA after install).
    pub fn ca_cert(&self) -> PathBuf {
        self.ca_dir().join("ca.pem")
    }

    /// `ca/ca.key`: the encrypted CA key (self-signed mode only).
    pub fn ca_key(&self) -> PathBuf {
        self.ca_dir().join("ca.key")
    }

    /// `certs/<svc>.pem`.
    pub fn service_cert(&self, service: Service) -> PathBuf {
        self.certs_dir().join(format!("{service}.pem"))
    }

    /// `certs/<svc>.key`.
    pub fn service_key(&self, service: Service) -> PathBuf {
        self.certs_dir().join(format!("{service}.key"))
    }

    /// `certs/<svc>.csr`.
    pub fn service_csr(&self, service: Service) -> PathBuf {
        self.certs_dir().join(format!("{service}.csr"))
    }

    /// `admin.argon2`: Argon2id PHC hash of the admin password.
    pub fn admin_hash(&self) -> PathBuf {
        self.root.join("admin.argon2")
    }

    /// `session.key`: the session-signing secret.
    pub fn session_key(&self) -> PathBuf {
        self.root.join("session.key")
    }

    /// `dbpass`: the database password.
    pub fn db_password(&self) -> PathBuf {
        self.root.join("dbpass")
    }

    /// `master.key`: the master key (KEK) for locally sealed secrets, 32 bytes in base64.
    pub fn master_key(&self) -> PathBuf {
        self.root.join("master.key")
    }

    /// `credential.key`: the HMAC key for machine-credential digests, 32 bytes in base64.
    pub fn credential_key(&self) -> PathBuf {
        self.root.join("credential.key")
    }

    /// Every 32-byte key file, in the order `init` writes them.
    pub fn key_files(&self) -> [PathBuf; 2] {
        [self.master_key(), self.credential_key()]
    }

    /// `<account>.auth`: a service account's credentials.
    pub fn auth_file(&self, account: ServiceAccount) -> PathBuf {
        self.root.join(account.file_name())
    }

    /// Every PKI path either mode may write, CA first.
    pub(crate) fn pki_paths(&self) -> Vec<PathBuf> {
        let mut paths = vec![self.ca_cert(), self.ca_key()];
        for service in Service::ALL {
            paths.push(self.service_cert(service));
            paths.push(self.service_key(service));
            paths.push(self.service_csr(service));
        }
        paths
    }
}

/// An internal MQTT service account, provisioned with a random password at init (SceneScape's
/// `*.auth` files).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServiceAccount {
    /// The scene controller.
    Controller,
    /// The web UI's client-side access.
    Browser,
    /// The camera calibration service.
    Calibration,
}

impl ServiceAccount {
    /// Every account, in the order files are written.
    pub const ALL: [ServiceAccount; 3] = [
        ServiceAccount::Controller,
        ServiceAccount::Browser,
        ServiceAccount::Calibration,
    ];

    /// The account's user name.
    pub fn user(self) -> &'static str {
        match self {
            ServiceAccount::Controller => "scenectrl",
            ServiceAccount::Browser => "webuser",
            ServiceAccount::Calibration => "calibration",
        }
    }

    /// The credentials file name.
    pub fn file_name(self) -> &'static str {
        match self {
            ServiceAccount::Controller => "controller.auth",
            ServiceAccount::Browser => "browser.auth",
            ServiceAccount::Calibration => "calibration.auth",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let layout = Layout::new("/s");
        assert_eq!(layout.ca_cert(), Path::new("/s/ca/ca.pem"));
        assert_eq!(layout.ca_key(), Path::new("/s/ca/ca.key"));
        assert_eq!(
            layout.service_cert(Service::ControlPlane),
            Path::new("/s/certs/controlplane.pem")
        );
        assert_eq!(
            layout.service_key(Service::Https),
            Path::new("/s/certs/https.key")
        );
        assert_eq!(
            layout.service_csr(Service::Mqtt),
            Path::new("/s/certs/mqtt.csr")
        );
        assert_eq!(layout.admin_hash(), Path::new("/s/admin.argon2"));
        assert_eq!(layout.session_key(), Path::new("/s/session.key"));
        assert_eq!(layout.db_password(), Path::new("/s/dbpass"));
        assert_eq!(layout.master_key(), Path::new("/s/master.key"));
        assert_eq!(layout.credential_key(), Path::new("/s/credential.key"));
        assert_eq!(
            layout.key_files(),
            [layout.master_key(), layout.credential_key()]
        );
        assert_eq!(
            layout.auth_file(ServiceAccount::Browser),
            Path::new("/s/browser.auth")
        );
        assert_eq!(layout.pki_paths().len(), 14);
    }
}
