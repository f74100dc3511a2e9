//! First start: the accounts `rampart init` prepared.
//!
//! When the store has no account at all, the control plane creates, as SceneScape's init does:
//! - `admin`, a human admin whose Argon2id hash is the one `rampart init` wrote (the password
//!   was shown once then and is never read again);
//! - the three service accounts of the `*.auth` files (`scenectrl`, `webuser`, `calibration`),
//!   their generated passwords stored as keyed digests, with default ACLs on SceneScape's
//!   `scenescape/#` tree: the scene controller and calibration service read and write it, the
//!   browser account reads it.
//!
//! A store that already has accounts is not re-populated, so an operator's later changes
//! (deleting `webuser`, tightening an ACL) are never undone by a restart. One thing is synced at
//! every start: a service account that still exists gets the secret its `*.auth` file holds now
//! (after `rampart init --force` rotated it), so the file and the broker never disagree.

use rampart_policy::cred;
use rampart_secrets::{Layout, ServiceAccount, read_auth_file};
use rampart_store::{
    Access, AccountKind, AclSubject, Credential, NewAccount, NewAclRule, Role, Store,
};

use crate::Error;

/// The default ACL of each service account.
pub fn default_acl(account: ServiceAccount) -> (&'static str, Access) {
    match account {
        ServiceAccount::Controller => ("scenescape/#", Access::Readwrite),
        ServiceAccount::Browser => ("scenescape/#", Access::Read),
        ServiceAccount::Calibration => ("scenescape/#", Access::Readwrite),
    }
}

/// Creates the initial accounts if the store has none. Returns the names created.
pub fn bootstrap(
    store: &dyn Store,
    layout: &Layout,
    credential_key: &[u8; 32],
    now: i64,
) -> Result<Vec<String>, Error> {
    let existing = store.list_accounts().map_err(Error::Store)?;
    if !existing.is_empty() {
        sync_service_secrets(store, layout, credential_key, &existing, now)?;
        return Ok(Vec::new());
    }
    let mut created = Vec::new();
    let phc = std::fs::read_to_string(layout.admin_hash()).map_err(|source| Error::Io {
        context: format!("reading {}", layout.admin_hash().display()),
        source,
    })?;
    store
        .create_account(
            &NewAccount {
                name: rampart_secrets::ADMIN_USER.to_owned(),
                kind: AccountKind::Human,
                role: Some(Role::Admin),
                credential: Credential::Argon2(phc.trim().to_owned()),
            },
            now,
        )
        .map_err(Error::Store)?;
    created.push(rampart_secrets::ADMIN_USER.to_owned());
    for account in ServiceAccount::ALL {
        let path = layout.auth_file(account);
        let (user, password) = read_auth_file(&path)?;
        let digest = cred::digest(credential_key, cred::DOMAIN_ACCOUNT, password.as_bytes());
        store
            .create_account(
                &NewAccount {
                    name: user.clone(),
                    kind: AccountKind::Service,
                    role: None,
                    credential: Credential::Digest(digest),
                },
                now,
            )
            .map_err(Error::Store)?;
        let (topic, access) = default_acl(account);
        store
            .add_acl(
                &NewAclRule {
                    subject: AclSubject::User(user.clone()),
                    topic: topic.to_owned(),
                    access,
                },
                now,
            )
            .map_err(Error::Store)?;
        created.push(user);
    }
    Ok(created)
}

/// Updates the digest of every existing service account whose `*.auth` file changed.
fn sync_service_secrets(
    store: &dyn Store,
    layout: &Layout,
    credential_key: &[u8; 32],
    existing: &[rampart_store::Account],
    now: i64,
) -> Result<(), Error> {
    for account in ServiceAccount::ALL {
        let path = layout.auth_file(account);
        if !path.exists() {
            continue;
        }
        let (user, password) = read_auth_file(&path)?;
        let digest = cred::digest(credential_key, cred::DOMAIN_ACCOUNT, password.as_bytes());
        let Some(current) = existing.iter().find(|a| a.name == user) else {
            continue;
        };
        if current.kind != AccountKind::Service || current.credential == Credential::Digest(digest)
        {
            continue;
        }
        store
            .update_account(
                &user,
                &rampart_store::AccountUpdate {
                    credential: Some(Credential::Digest(digest)),
                    ..Default::default()
                },
                now,
            )
            .map_err(Error::Store)?;
        tracing::info!(message = "Service account secret synced from its file.", account = %user);
    }
    Ok(())
}
