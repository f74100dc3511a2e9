//! The semantic rules a snapshot must follow, checked by both [`super::encode`] and
//! [`super::decode`].

use std::collections::HashSet;

use super::{AccountKind, Problem, Snapshot, SnapshotError, Subject, Table};
use crate::acl::valid_topic_filter;
use crate::cred::valid_key_id;

/// Longest account name, MPS user name or tenant id, in bytes.
pub const MAX_NAME_LEN: usize = 256;
/// Most accounts in one snapshot.
pub const MAX_ACCOUNTS: usize = 1_000_000;
/// Most ACL rules in one snapshot.
pub const MAX_ACLS: usize = 1_000_000;
/// Most API keys in one snapshot.
pub const MAX_API_KEYS: usize = 1_000_000;
/// Most devices in one snapshot.
pub const MAX_DEVICES: usize = 1_000_000;

/// Whether `s` is a valid account or MPS user name: 1 to [`MAX_NAME_LEN`] bytes, no control
/// characters (C0, DEL, C1).
pub fn valid_name(s: &str) -> bool {
    !s.is_empty() && valid_tenant_id(s)
}

/// Whether `s` is a valid tenant id: like [`valid_name`] but may be empty.
pub fn valid_tenant_id(s: &str) -> bool {
    s.len() <= MAX_NAME_LEN && !s.chars().any(char::is_control)
}

fn invalid(table: Table, index: usize, problem: Problem) -> SnapshotError {
    SnapshotError::Invalid {
        table,
        index,
        problem,
    }
}

fn bounded(table: Table, len: usize, max: usize) -> Result<(), SnapshotError> {
    if len > max {
        return Err(invalid(table, max, Problem::TooMany));
    }
    Ok(())
}

pub(super) fn validate(s: &Snapshot) -> Result<(), SnapshotError> {
    bounded(Table::Accounts, s.accounts.len(), MAX_ACCOUNTS)?;
    bounded(Table::Acls, s.acls.len(), MAX_ACLS)?;
    bounded(Table::ApiKeys, s.api_keys.len(), MAX_API_KEYS)?;
    bounded(Table::Devices, s.devices.len(), MAX_DEVICES)?;

    let mut prev: Option<&str> = None;
    for (i, a) in s.accounts.iter().enumerate() {
        if !valid_name(&a.name) {
            return Err(invalid(Table::Accounts, i, Problem::Name));
        }
        if let Some(prev) = prev {
            if prev == a.name {
                return Err(invalid(Table::Accounts, i, Problem::Duplicate));
            }
            if prev > a.name.as_str() {
                return Err(invalid(Table::Accounts, i, Problem::Unsorted));
            }
        }
        if a.kind == AccountKind::Service && a.role.is_some() {
            return Err(invalid(Table::Accounts, i, Problem::ServiceWithRole));
        }
        prev = Some(&a.name);
    }

    for (i, rule) in s.acls.iter().enumerate() {
        if !valid_topic_filter(&rule.topic) {
            return Err(invalid(Table::Acls, i, Problem::Topic));
        }
        if let Subject::User(name) = &rule.subject {
            // Accounts are sorted (checked above).
            if s.accounts
                .binary_search_by(|a| a.name.as_str().cmp(name))
                .is_err()
            {
                return Err(invalid(Table::Acls, i, Problem::UnknownAccount));
            }
        }
    }

    let mut ids = HashSet::with_capacity(s.api_keys.len());
    for (i, k) in s.api_keys.iter().enumerate() {
        if !valid_key_id(&k.key_id) {
            return Err(invalid(Table::ApiKeys, i, Problem::KeyId));
        }
        if !ids.insert(k.key_id.as_str()) {
            return Err(invalid(Table::ApiKeys, i, Problem::Duplicate));
        }
    }

    let mut guids = HashSet::with_capacity(s.devices.len());
    for (i, d) in s.devices.iter().enumerate() {
        if !guids.insert(d.guid) {
            return Err(invalid(Table::Devices, i, Problem::Duplicate));
        }
        if !valid_name(&d.mps_username) {
            return Err(invalid(Table::Devices, i, Problem::MpsUsername));
        }
        if !valid_tenant_id(&d.tenant_id) {
            return Err(invalid(Table::Devices, i, Problem::TenantId));
        }
    }
    Ok(())
}
