//! The [`Store`] implementation shared by both backends.
//!
//! Every query is written once, in the SQL both PostgreSQL and SQLite accept, with `$n`
//! placeholders (the SQLite backend rewrites them to `?n`). A backend only supplies
//! transactions ([`Backend::read`], [`Backend::write`]), a [`Conn`] that runs statements inside
//! one, and the change-event plumbing. All user data is bound as parameters; the only text ever
//! formatted into SQL is placeholder numbers.

use std::collections::{BTreeSet, HashMap, HashSet};

use crossbeam_channel::Receiver;

use crate::row::{Param, Reader, Row};
use crate::{
    Access, Account, AccountKind, AccountUpdate, AclRule, AclSubject, ApiKey, AuditEvent,
    AuditQuery, ConnectionEvent, ConnectionReport, ConnectionsRecorded, Credential, Device,
    DeviceConnection, DeviceQuery, DeviceUpdate, Millis, NewAccount, NewAclRule, NewApiKey,
    NewDevice, Outcome, PolicyData, Result, Role, Scope, Session, Store, StoreError,
};

/// Statements inside one transaction.
pub(crate) trait Conn {
    /// Runs a statement that returns no rows; the number of rows it changed.
    fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64>;
    /// Runs a statement and collects its rows.
    fn query(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>>;
    /// Runs several statements without parameters (migrations).
    fn batch(&mut self, sql: &str) -> Result<()>;
    /// Announces a new policy generation once this transaction commits.
    fn announce(&mut self, generation: u64) -> Result<()>;

    /// The first row, if any.
    fn query_opt(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Option<Row>> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    /// The first row; `NotFound` if there is none.
    fn query_one(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Row> {
        self.query_opt(sql, params)?.ok_or(StoreError::NotFound)
    }
}

/// What a database backend provides to [`SqlStore`].
pub(crate) trait Backend: Send + Sync + std::fmt::Debug + 'static {
    /// `"postgres"` or `"sqlite"`.
    const NAME: &'static str;
    /// Runs `f` in a read-only transaction that sees one consistent snapshot.
    fn read<R>(&self, f: impl FnOnce(&mut dyn Conn) -> Result<R>) -> Result<R>;
    /// Runs `f` in a read-write transaction and commits it if `f` succeeds.
    fn write<R>(&self, f: impl FnOnce(&mut dyn Conn) -> Result<R>) -> Result<R>;
    /// Checks the database answers.
    fn ping(&self) -> Result<()>;
    /// A new receiver of policy generations.
    fn changes(&self) -> Receiver<u64>;
}

/// The store over a backend.
#[derive(Debug)]
pub(crate) struct SqlStore<B> {
    backend: B,
}

impl<B: Backend> SqlStore<B> {
    pub(crate) fn new(backend: B) -> SqlStore<B> {
        SqlStore { backend }
    }
}

// === columns and decoders ===

const ACCOUNT_COLS: &str =
    "id, name, kind, role, disabled, password_hash, secret_digest, created_at, updated_at";
const ACL_COLS: &str = "id, subject_kind, subject_user, subject_role, topic, access, created_at";
const KEY_COLS: &str = "id, key_id, name, scope, digest, created_by, created_at, expires_at, \
                        last_used_at, revoked_at";
const DEVICE_COLS: &str = "d.guid, d.hostname, d.friendly_name, d.tenant_id, d.dns_suffix, \
                           d.mps_username, d.mps_digest, d.amt_password, d.device_info, \
                           d.created_at, d.updated_at, d.connected, d.node, d.last_connected, \
                           d.last_seen, d.last_disconnected";
const SESSION_COLS: &str = "token_digest, csrf_digest, account, created_at, expires_at";
const AUDIT_COLS: &str = "id, time, actor, source, action, object, outcome, detail";

fn account(row: Row) -> Result<Account> {
    let mut r = Reader::new(row, "accounts");
    let id = r.int("id")?;
    let name = r.text("name")?;
    let kind = r.parsed("kind", AccountKind::parse)?;
    let role = r.opt_parsed("role", Role::parse)?;
    let disabled = r.bool("disabled")?;
    let hash = r.opt_text("password_hash")?;
    let digest = r.opt_digest("secret_digest")?;
    let credential = match (hash, digest) {
        (Some(h), None) => Credential::Argon2(h),
        (None, Some(d)) => Credential::Digest(d),
        _ => return Err(r.bad("password_hash", "not exactly one credential")),
    };
    Ok(Account {
        id,
        name,
        kind,
        role,
        disabled,
        credential,
        created_at: r.int("created_at")?,
        updated_at: r.int("updated_at")?,
    })
}

fn acl(row: Row) -> Result<AclRule> {
    let mut r = Reader::new(row, "acl_rules");
    let id = r.int("id")?;
    let kind = r.text("subject_kind")?;
    let user = r.opt_text("subject_user")?;
    let role = r.opt_parsed("subject_role", Role::parse)?;
    let subject = match (kind.as_str(), user, role) {
        ("user", Some(u), None) => AclSubject::User(u),
        ("role", None, Some(role)) => AclSubject::Role(role),
        _ => return Err(r.bad("subject_kind", "inconsistent subject")),
    };
    Ok(AclRule {
        id,
        subject,
        topic: r.text("topic")?,
        access: r.parsed("access", Access::parse)?,
        created_at: r.int("created_at")?,
    })
}

fn api_key(row: Row) -> Result<ApiKey> {
    let mut r = Reader::new(row, "api_keys");
    Ok(ApiKey {
        id: r.int("id")?,
        key_id: r.text("key_id")?,
        name: r.text("name")?,
        scope: r.parsed("scope", Scope::parse)?,
        digest: r.digest("digest")?,
        created_by: r.text("created_by")?,
        created_at: r.int("created_at")?,
        expires_at: r.opt_int("expires_at")?,
        last_used_at: r.opt_int("last_used_at")?,
        revoked_at: r.opt_int("revoked_at")?,
    })
}

/// A device without its tags (they come from `device_tags`).
fn device(row: Row) -> Result<Device> {
    let mut r = Reader::new(row, "devices");
    Ok(Device {
        guid: r.text("guid")?,
        hostname: r.opt_text("hostname")?,
        friendly_name: r.opt_text("friendly_name")?,
        tags: Vec::new(),
        tenant_id: r.text("tenant_id")?,
        dns_suffix: r.opt_text("dns_suffix")?,
        mps_username: r.text("mps_username")?,
        mps_digest: r.opt_digest("mps_digest")?,
        amt_password: r.opt_blob("amt_password")?,
        device_info: r.opt_text("device_info")?,
        created_at: r.int("created_at")?,
        updated_at: r.int("updated_at")?,
        connection: DeviceConnection {
            connected: r.bool("connected")?,
            node: r.opt_text("node")?,
            last_connected: r.opt_int("last_connected")?,
            last_seen: r.opt_int("last_seen")?,
            last_disconnected: r.opt_int("last_disconnected")?,
        },
    })
}

fn session(row: Row) -> Result<Session> {
    let mut r = Reader::new(row, "sessions");
    Ok(Session {
        token_digest: r.digest("token_digest")?,
        csrf_digest: r.digest("csrf_digest")?,
        account: r.text("account")?,
        created_at: r.int("created_at")?,
        expires_at: r.int("expires_at")?,
    })
}

fn audit(row: Row) -> Result<AuditEvent> {
    let mut r = Reader::new(row, "audit");
    Ok(AuditEvent {
        id: r.int("id")?,
        time: r.int("time")?,
        actor: r.text("actor")?,
        source: r.opt_text("source")?,
        action: r.text("action")?,
        object: r.opt_text("object")?,
        outcome: r.parsed("outcome", Outcome::parse)?,
        detail: r.opt_text("detail")?,
    })
}

fn decode_all<T>(rows: Vec<Row>, f: fn(Row) -> Result<T>) -> Result<Vec<T>> {
    rows.into_iter().map(f).collect()
}

fn count(row: Row, table: &'static str) -> Result<u64> {
    Reader::new(row, table).uint("count")
}

/// The two credential columns for a credential.
fn credential_params(c: &Credential) -> (Param<'_>, Param<'_>) {
    match c {
        Credential::Argon2(h) => (Param::Text(h), Param::Null),
        Credential::Digest(d) => (Param::Null, Param::Blob(d)),
    }
}

fn no_rows_is_not_found(changed: u64) -> Result<()> {
    if changed == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

/// Builds a statement with a growing list of parameters and `$n` placeholders.
#[derive(Debug, Default)]
struct Builder<'a> {
    params: Vec<Param<'a>>,
}

impl<'a> Builder<'a> {
    /// Binds `p` and returns its placeholder.
    fn bind(&mut self, p: impl Into<Param<'a>>) -> String {
        self.params.push(p.into());
        format!("${}", self.params.len())
    }
}

// === generation ===

fn generation(c: &mut dyn Conn) -> Result<u64> {
    let row = c.query_one("SELECT generation FROM meta WHERE id = 1", &[])?;
    Reader::new(row, "meta").uint("generation")
}

/// Bumps the policy generation in the current transaction and announces it on commit.
fn bump(c: &mut dyn Conn) -> Result<u64> {
    let row = c.query_one(
        "UPDATE meta SET generation = generation + 1 WHERE id = 1 RETURNING generation",
        &[],
    )?;
    let g = Reader::new(row, "meta").uint("generation")?;
    c.announce(g)?;
    Ok(g)
}

// === device connections ===

/// Devices per statement when recording connections (three parameters each).
const CONNECTION_CHUNK: usize = 500;

/// Applies a run of connects, or of disconnects, with distinct GUIDs in one statement; returns
/// the rows it changed. The GUIDs, times and node are bound; the SQL holds only placeholders.
fn apply_connection_run(c: &mut dyn Conn, node: &str, run: &[&ConnectionEvent]) -> Result<u64> {
    let Some(first) = run.first() else {
        return Ok(0);
    };
    let mut b = Builder::default();
    let head = if first.connected {
        format!(
            "UPDATE devices SET connected = {}, node = {}, last_connected = v.column2, ",
            b.bind(true),
            b.bind(node)
        )
    } else {
        format!(
            "UPDATE devices SET connected = {}, last_disconnected = v.column2, ",
            b.bind(false)
        )
    };
    // Only the node that holds the device may record its disconnect.
    let only_here = if first.connected {
        String::new()
    } else {
        format!(" AND devices.node = {}", b.bind(node))
    };
    // Columns of a VALUES list are column1, column2, ... on both databases; the casts give
    // PostgreSQL the parameters' types.
    let rows = run
        .iter()
        .map(|e| {
            format!(
                "(CAST({} AS TEXT), CAST({} AS BIGINT), CAST({} AS BIGINT))",
                b.bind(e.guid.as_str()),
                b.bind(e.at),
                b.bind(e.last_seen)
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "{head}last_seen = CASE WHEN devices.last_seen IS NULL OR devices.last_seen < v.column3 \
         THEN v.column3 ELSE devices.last_seen END \
         FROM (VALUES {rows}) AS v WHERE devices.guid = v.column1{only_here}"
    );
    c.execute(&sql, &b.params)
}

// === reads used by several methods ===

fn get_account(c: &mut dyn Conn, name: &str) -> Result<Account> {
    let sql = format!("SELECT {ACCOUNT_COLS} FROM accounts WHERE name = $1");
    account(c.query_one(&sql, &[name.into()])?)
}

fn get_api_key_by_id(c: &mut dyn Conn, id: i64) -> Result<ApiKey> {
    let sql = format!("SELECT {KEY_COLS} FROM api_keys WHERE id = $1");
    api_key(c.query_one(&sql, &[id.into()])?)
}

fn get_device(c: &mut dyn Conn, guid: &str) -> Result<Device> {
    let sql = format!("SELECT {DEVICE_COLS} FROM devices d WHERE d.guid = $1");
    let mut d = device(c.query_one(&sql, &[guid.into()])?)?;
    d.tags = tags_of(c, guid)?;
    Ok(d)
}

fn tags_of(c: &mut dyn Conn, guid: &str) -> Result<Vec<String>> {
    let rows = c.query(
        "SELECT tag FROM device_tags WHERE guid = $1 ORDER BY pos",
        &[guid.into()],
    )?;
    rows.into_iter()
        .map(|r| Reader::new(r, "device_tags").text("tag"))
        .collect()
}

/// Fills in the tags of `devices` with one query per chunk of GUIDs.
fn fill_tags(c: &mut dyn Conn, devices: &mut [Device]) -> Result<()> {
    const CHUNK: usize = 500;
    let mut by_guid: HashMap<String, Vec<String>> = HashMap::new();
    for chunk in devices.chunks(CHUNK) {
        let mut b = Builder::default();
        let list: Vec<String> = chunk.iter().map(|d| b.bind(d.guid.as_str())).collect();
        let sql = format!(
            "SELECT guid, tag FROM device_tags WHERE guid IN ({}) ORDER BY guid, pos",
            list.join(", ")
        );
        for row in c.query(&sql, &b.params)? {
            let mut r = Reader::new(row, "device_tags");
            let guid = r.text("guid")?;
            let tag = r.text("tag")?;
            by_guid.entry(guid).or_default().push(tag);
        }
    }
    for d in devices {
        d.tags = by_guid.remove(&d.guid).unwrap_or_default();
    }
    Ok(())
}

fn all_devices(c: &mut dyn Conn) -> Result<Vec<Device>> {
    let sql = format!("SELECT {DEVICE_COLS} FROM devices d ORDER BY d.guid");
    let mut devices = decode_all(c.query(&sql, &[])?, device)?;
    let mut by_guid: HashMap<String, Vec<String>> = HashMap::new();
    for row in c.query("SELECT guid, tag FROM device_tags ORDER BY guid, pos", &[])? {
        let mut r = Reader::new(row, "device_tags");
        let guid = r.text("guid")?;
        let tag = r.text("tag")?;
        by_guid.entry(guid).or_default().push(tag);
    }
    for d in &mut devices {
        d.tags = by_guid.remove(&d.guid).unwrap_or_default();
    }
    Ok(devices)
}

/// Replaces a device's tags, keeping their order and dropping repeats.
fn set_tags(c: &mut dyn Conn, guid: &str, tags: &[String]) -> Result<()> {
    c.execute("DELETE FROM device_tags WHERE guid = $1", &[guid.into()])?;
    let mut seen = BTreeSet::new();
    let mut pos: i64 = 0;
    for tag in tags {
        if !seen.insert(tag.as_str()) {
            continue;
        }
        c.execute(
            "INSERT INTO device_tags (guid, pos, tag) VALUES ($1, $2, $3)",
            &[guid.into(), pos.into(), tag.into()],
        )?;
        pos += 1;
    }
    Ok(())
}

/// The `WHERE` clause (possibly empty) for a device query.
fn device_filter<'a>(q: &'a DeviceQuery, b: &mut Builder<'a>) -> String {
    let mut conds = Vec::new();
    if let Some(h) = &q.hostname {
        conds.push(format!("d.hostname = {}", b.bind(h)));
    }
    if let Some(f) = &q.friendly_name {
        conds.push(format!("d.friendly_name = {}", b.bind(f)));
    }
    if let Some(t) = &q.tenant_id {
        conds.push(format!("d.tenant_id = {}", b.bind(t)));
    }
    if let Some(connected) = q.connected {
        conds.push(format!("d.connected = {}", b.bind(connected)));
    }
    let tags: BTreeSet<&str> = q.tags.iter().map(String::as_str).collect();
    if !tags.is_empty() {
        let list: Vec<String> = tags.iter().map(|t| b.bind(*t)).collect();
        let list = list.join(", ");
        if q.tags_all {
            // (guid, tag) is unique, so counting matches counts distinct tags.
            let n = i64::try_from(tags.len()).unwrap_or(i64::MAX);
            conds.push(format!(
                "(SELECT COUNT(*) FROM device_tags t WHERE t.guid = d.guid AND t.tag IN ({list})) \
                 = {}",
                b.bind(n)
            ));
        } else {
            conds.push(format!(
                "EXISTS (SELECT 1 FROM device_tags t WHERE t.guid = d.guid AND t.tag IN ({list}))"
            ));
        }
    }
    if conds.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conds.join(" AND "))
    }
}

// === impl Store ===

impl<B: Backend> Store for SqlStore<B> {
    fn backend(&self) -> &'static str {
        B::NAME
    }

    fn ping(&self) -> Result<()> {
        self.backend.ping()
    }

    fn generation(&self) -> Result<u64> {
        self.backend.read(generation)
    }

    fn changes(&self) -> Receiver<u64> {
        self.backend.changes()
    }

    fn policy_data(&self, now: Millis) -> Result<PolicyData> {
        self.backend.read(|c| {
            let generation = generation(c)?;
            let sql = format!("SELECT {ACCOUNT_COLS} FROM accounts ORDER BY name");
            let accounts = decode_all(c.query(&sql, &[])?, account)?;
            let sql = format!("SELECT {ACL_COLS} FROM acl_rules ORDER BY id");
            let acls = decode_all(c.query(&sql, &[])?, acl)?;
            let sql = format!(
                "SELECT {KEY_COLS} FROM api_keys \
                 WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $1) \
                 ORDER BY id"
            );
            let api_keys = decode_all(c.query(&sql, &[now.into()])?, api_key)?;
            let devices = all_devices(c)?;
            Ok(PolicyData {
                generation,
                accounts,
                acls,
                api_keys,
                devices,
            })
        })
    }

    // --- accounts ---

    fn create_account(&self, new: &NewAccount, now: Millis) -> Result<Account> {
        self.backend.write(|c| {
            let (hash, digest) = credential_params(&new.credential);
            let sql = format!(
                "INSERT INTO accounts (name, kind, role, disabled, password_hash, secret_digest, \
                 created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7) \
                 RETURNING {ACCOUNT_COLS}"
            );
            let row = c.query_one(
                &sql,
                &[
                    new.name.as_str().into(),
                    new.kind.as_str().into(),
                    new.role.map(Role::as_str).into(),
                    false.into(),
                    hash,
                    digest,
                    now.into(),
                ],
            )?;
            let a = account(row)?;
            bump(c)?;
            Ok(a)
        })
    }

    fn account(&self, name: &str) -> Result<Account> {
        self.backend.read(|c| get_account(c, name))
    }

    fn list_accounts(&self) -> Result<Vec<Account>> {
        self.backend.read(|c| {
            let sql = format!("SELECT {ACCOUNT_COLS} FROM accounts ORDER BY name");
            decode_all(c.query(&sql, &[])?, account)
        })
    }

    fn update_account(&self, name: &str, update: &AccountUpdate, now: Millis) -> Result<Account> {
        self.backend.write(|c| {
            let mut b = Builder::default();
            let mut sets = vec![format!("updated_at = {}", b.bind(now))];
            if let Some(role) = update.role {
                sets.push(format!("role = {}", b.bind(role.as_str())));
            }
            if let Some(disabled) = update.disabled {
                sets.push(format!("disabled = {}", b.bind(disabled)));
            }
            if let Some(cred) = &update.credential {
                let (hash, digest) = credential_params(cred);
                sets.push(format!("password_hash = {}", b.bind(hash)));
                sets.push(format!("secret_digest = {}", b.bind(digest)));
            }
            let sql = format!(
                "UPDATE accounts SET {} WHERE name = {} RETURNING {ACCOUNT_COLS}",
                sets.join(", "),
                b.bind(name)
            );
            let a = account(c.query_one(&sql, &b.params)?)?;
            bump(c)?;
            Ok(a)
        })
    }

    fn delete_account(&self, name: &str) -> Result<()> {
        self.backend.write(|c| {
            // ACL rules and sessions go with it (ON DELETE CASCADE).
            no_rows_is_not_found(
                c.execute("DELETE FROM accounts WHERE name = $1", &[name.into()])?,
            )?;
            bump(c)?;
            Ok(())
        })
    }

    // --- ACLs ---

    fn add_acl(&self, new: &NewAclRule, now: Millis) -> Result<AclRule> {
        self.backend.write(|c| {
            let (kind, user, role) = match &new.subject {
                AclSubject::User(u) => {
                    // NotFound for an unknown account (the foreign key would say so too).
                    c.query_one("SELECT id FROM accounts WHERE name = $1", &[u.into()])?;
                    ("user", Param::Text(u), Param::Null)
                }
                AclSubject::Role(r) => ("role", Param::Null, Param::Text(r.as_str())),
            };
            let sql = format!(
                "INSERT INTO acl_rules (subject_kind, subject_user, subject_role, topic, access, \
                 created_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING {ACL_COLS}"
            );
            let row = c.query_one(
                &sql,
                &[
                    kind.into(),
                    user,
                    role,
                    new.topic.as_str().into(),
                    new.access.as_str().into(),
                    now.into(),
                ],
            )?;
            let rule = acl(row)?;
            bump(c)?;
            Ok(rule)
        })
    }

    fn list_acls(&self) -> Result<Vec<AclRule>> {
        self.backend.read(|c| {
            let sql = format!("SELECT {ACL_COLS} FROM acl_rules ORDER BY id");
            decode_all(c.query(&sql, &[])?, acl)
        })
    }

    fn delete_acl(&self, id: i64) -> Result<()> {
        self.backend.write(|c| {
            no_rows_is_not_found(c.execute("DELETE FROM acl_rules WHERE id = $1", &[id.into()])?)?;
            bump(c)?;
            Ok(())
        })
    }

    // --- API keys ---

    fn create_api_key(&self, new: &NewApiKey, now: Millis) -> Result<ApiKey> {
        self.backend.write(|c| {
            let sql = format!(
                "INSERT INTO api_keys (key_id, name, scope, digest, created_by, created_at, \
                 expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {KEY_COLS}"
            );
            let row = c.query_one(
                &sql,
                &[
                    new.key_id.as_str().into(),
                    new.name.as_str().into(),
                    new.scope.as_str().into(),
                    (&new.digest).into(),
                    new.created_by.as_str().into(),
                    now.into(),
                    new.expires_at.into(),
                ],
            )?;
            let key = api_key(row)?;
            bump(c)?;
            Ok(key)
        })
    }

    fn api_key(&self, key_id: &str) -> Result<ApiKey> {
        self.backend.read(|c| {
            let sql = format!("SELECT {KEY_COLS} FROM api_keys WHERE key_id = $1");
            api_key(c.query_one(&sql, &[key_id.into()])?)
        })
    }

    fn list_api_keys(&self) -> Result<Vec<ApiKey>> {
        self.backend.read(|c| {
            let sql = format!("SELECT {KEY_COLS} FROM api_keys ORDER BY id");
            decode_all(c.query(&sql, &[])?, api_key)
        })
    }

    fn revoke_api_key(&self, id: i64, now: Millis) -> Result<ApiKey> {
        self.backend.write(|c| {
            let changed = c.execute(
                "UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
                &[id.into(), now.into()],
            )?;
            // A second revocation keeps the first time and changes nothing the data plane
            // sees, so only the first one bumps the generation.
            if changed > 0 {
                bump(c)?;
            }
            get_api_key_by_id(c, id)
        })
    }

    fn touch_api_key(&self, key_id: &str, now: Millis) -> Result<()> {
        self.backend.write(|c| {
            // Never moves backwards (uses are recorded coalesced, possibly out of order).
            let changed = c.execute(
                "UPDATE api_keys SET last_used_at = $2 \
                 WHERE key_id = $1 AND (last_used_at IS NULL OR last_used_at < $2)",
                &[key_id.into(), now.into()],
            )?;
            if changed == 0 {
                c.query_one(
                    "SELECT id FROM api_keys WHERE key_id = $1",
                    &[key_id.into()],
                )?;
            }
            Ok(())
        })
    }

    // --- devices ---

    fn create_device(&self, new: &NewDevice, now: Millis) -> Result<Device> {
        self.backend.write(|c| {
            c.execute(
                "INSERT INTO devices (guid, hostname, friendly_name, tenant_id, dns_suffix, \
                 mps_username, mps_digest, device_info, created_at, updated_at, connected) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10)",
                &[
                    new.guid.as_str().into(),
                    new.hostname.as_deref().into(),
                    new.friendly_name.as_deref().into(),
                    new.tenant_id.as_str().into(),
                    new.dns_suffix.as_deref().into(),
                    new.mps_username.as_str().into(),
                    new.mps_digest.as_ref().into(),
                    new.device_info.as_deref().into(),
                    now.into(),
                    false.into(),
                ],
            )?;
            set_tags(c, &new.guid, &new.tags)?;
            bump(c)?;
            get_device(c, &new.guid)
        })
    }

    fn device(&self, guid: &str) -> Result<Device> {
        self.backend.read(|c| get_device(c, guid))
    }

    fn list_devices(&self, query: &DeviceQuery) -> Result<(Vec<Device>, u64)> {
        self.backend.read(|c| {
            let mut b = Builder::default();
            let filter = device_filter(query, &mut b);
            let sql = format!("SELECT COUNT(*) FROM devices d{filter}");
            let total = count(c.query_one(&sql, &b.params)?, "devices")?;
            if query.top == 0 || u64::from(query.skip) >= total {
                return Ok((Vec::new(), total));
            }
            let sql = format!(
                "SELECT {DEVICE_COLS} FROM devices d{filter} ORDER BY d.guid LIMIT {} OFFSET {}",
                b.bind(i64::from(query.top)),
                b.bind(i64::from(query.skip))
            );
            let mut devices = decode_all(c.query(&sql, &b.params)?, device)?;
            fill_tags(c, &mut devices)?;
            Ok((devices, total))
        })
    }

    fn device_tags(&self) -> Result<Vec<String>> {
        self.backend.read(|c| {
            let rows = c.query("SELECT DISTINCT tag FROM device_tags ORDER BY tag", &[])?;
            rows.into_iter()
                .map(|r| Reader::new(r, "device_tags").text("tag"))
                .collect()
        })
    }

    fn update_device(&self, guid: &str, update: &DeviceUpdate, now: Millis) -> Result<Device> {
        self.backend.write(|c| {
            let mut b = Builder::default();
            let mut sets = vec![format!("updated_at = {}", b.bind(now))];
            if let Some(v) = &update.hostname {
                sets.push(format!("hostname = {}", b.bind(v.as_deref())));
            }
            if let Some(v) = &update.friendly_name {
                sets.push(format!("friendly_name = {}", b.bind(v.as_deref())));
            }
            if let Some(v) = &update.tenant_id {
                sets.push(format!("tenant_id = {}", b.bind(v.as_str())));
            }
            if let Some(v) = &update.dns_suffix {
                sets.push(format!("dns_suffix = {}", b.bind(v.as_deref())));
            }
            if let Some(v) = &update.mps_username {
                sets.push(format!("mps_username = {}", b.bind(v.as_str())));
            }
            if let Some(v) = &update.mps_digest {
                sets.push(format!("mps_digest = {}", b.bind(v.as_ref())));
            }
            if let Some(v) = &update.amt_password {
                sets.push(format!("amt_password = {}", b.bind(v.as_deref())));
            }
            if let Some(v) = &update.device_info {
                sets.push(format!("device_info = {}", b.bind(v.as_deref())));
            }
            let sql = format!(
                "UPDATE devices SET {} WHERE guid = {}",
                sets.join(", "),
                b.bind(guid)
            );
            no_rows_is_not_found(c.execute(&sql, &b.params)?)?;
            if let Some(tags) = &update.tags {
                set_tags(c, guid, tags)?;
            }
            bump(c)?;
            get_device(c, guid)
        })
    }

    fn delete_device(&self, guid: &str) -> Result<()> {
        self.backend.write(|c| {
            // Its tags go with it (ON DELETE CASCADE).
            no_rows_is_not_found(
                c.execute("DELETE FROM devices WHERE guid = $1", &[guid.into()])?,
            )?;
            bump(c)?;
            Ok(())
        })
    }

    fn set_device_connection(&self, guid: &str, conn: &DeviceConnection) -> Result<()> {
        self.backend.write(|c| {
            let changed = c.execute(
                "UPDATE devices SET connected = $2, node = $3, last_connected = $4, \
                 last_seen = $5, last_disconnected = $6 WHERE guid = $1",
                &[
                    guid.into(),
                    conn.connected.into(),
                    conn.node.as_deref().into(),
                    conn.last_connected.into(),
                    conn.last_seen.into(),
                    conn.last_disconnected.into(),
                ],
            )?;
            no_rows_is_not_found(changed)
        })
    }

    fn record_connections(
        &self,
        report: &ConnectionReport,
        now: Millis,
    ) -> Result<ConnectionsRecorded> {
        self.backend.write(|c| {
            let mut out = ConnectionsRecorded::default();
            // Runs of events of one kind with distinct GUIDs become one statement each; a
            // repeated GUID starts a new run, so events apply in their order.
            let mut run: Vec<&ConnectionEvent> = Vec::new();
            let mut in_run: HashSet<&str> = HashSet::new();
            for e in &report.events {
                let breaks = run.first().is_some_and(|f| f.connected != e.connected)
                    || in_run.contains(e.guid.as_str())
                    || run.len() >= CONNECTION_CHUNK;
                if breaks {
                    out.updated += apply_connection_run(c, &report.node, &run)?;
                    run.clear();
                    in_run.clear();
                }
                run.push(e);
                in_run.insert(&e.guid);
            }
            out.updated += apply_connection_run(c, &report.node, &run)?;
            if report.full {
                let listed: HashSet<&str> = report
                    .events
                    .iter()
                    .filter(|e| e.connected)
                    .map(|e| e.guid.as_str())
                    .collect();
                let rows = c.query(
                    "SELECT guid FROM devices WHERE node = $1 AND connected = $2",
                    &[report.node.as_str().into(), true.into()],
                )?;
                let mut gone = Vec::new();
                for row in rows {
                    let guid = Reader::new(row, "devices").text("guid")?;
                    if !listed.contains(guid.as_str()) {
                        gone.push(guid);
                    }
                }
                for chunk in gone.chunks(CONNECTION_CHUNK) {
                    let mut b = Builder::default();
                    let sql = format!(
                        "UPDATE devices SET connected = {}, last_disconnected = {} \
                         WHERE node = {} AND connected = {} AND guid IN ({})",
                        b.bind(false),
                        b.bind(now),
                        b.bind(report.node.as_str()),
                        b.bind(true),
                        chunk
                            .iter()
                            .map(|g| b.bind(g.as_str()))
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                    out.reconciled += c.execute(&sql, &b.params)?;
                }
            }
            Ok(out)
        })
    }

    fn disconnect_devices(&self, node: Option<&str>, now: Millis) -> Result<u64> {
        self.backend.write(|c| match node {
            Some(node) => c.execute(
                "UPDATE devices SET connected = $1, last_disconnected = $2 \
                 WHERE connected = $3 AND node = $4",
                &[false.into(), now.into(), true.into(), node.into()],
            ),
            None => c.execute(
                "UPDATE devices SET connected = $1, last_disconnected = $2 WHERE connected = $3",
                &[false.into(), now.into(), true.into()],
            ),
        })
    }

    // --- sessions ---

    fn create_session(&self, s: &Session) -> Result<()> {
        self.backend.write(|c| {
            // An unknown account fails the foreign key: NotFound.
            c.execute(
                "INSERT INTO sessions (token_digest, csrf_digest, account, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5)",
                &[
                    (&s.token_digest).into(),
                    (&s.csrf_digest).into(),
                    s.account.as_str().into(),
                    s.created_at.into(),
                    s.expires_at.into(),
                ],
            )?;
            Ok(())
        })
    }

    fn session(&self, token_digest: &[u8; 32]) -> Result<Session> {
        self.backend.read(|c| {
            let sql = format!("SELECT {SESSION_COLS} FROM sessions WHERE token_digest = $1");
            session(c.query_one(&sql, &[token_digest.into()])?)
        })
    }

    fn delete_session(&self, token_digest: &[u8; 32]) -> Result<()> {
        self.backend.write(|c| {
            no_rows_is_not_found(c.execute(
                "DELETE FROM sessions WHERE token_digest = $1",
                &[token_digest.into()],
            )?)
        })
    }

    fn purge_sessions(&self, now: Millis) -> Result<u64> {
        // A session is unusable from `expires_at` on, so one expiring exactly now goes too.
        self.backend
            .write(|c| c.execute("DELETE FROM sessions WHERE expires_at <= $1", &[now.into()]))
    }

    // --- audit ---

    fn append_audit(&self, e: &AuditEvent) -> Result<AuditEvent> {
        self.backend.write(|c| {
            let sql = format!(
                "INSERT INTO audit (time, actor, source, action, object, outcome, detail) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {AUDIT_COLS}"
            );
            let row = c.query_one(
                &sql,
                &[
                    e.time.into(),
                    e.actor.as_str().into(),
                    e.source.as_deref().into(),
                    e.action.as_str().into(),
                    e.object.as_deref().into(),
                    e.outcome.as_str().into(),
                    e.detail.as_deref().into(),
                ],
            )?;
            audit(row)
        })
    }

    fn list_audit(&self, q: &AuditQuery) -> Result<Vec<AuditEvent>> {
        if q.limit == 0 {
            return Ok(Vec::new());
        }
        self.backend.read(|c| {
            let mut b = Builder::default();
            let mut conds = Vec::new();
            if let Some(id) = q.before_id {
                conds.push(format!("id < {}", b.bind(id)));
            }
            if let Some(actor) = &q.actor {
                conds.push(format!("actor = {}", b.bind(actor)));
            }
            if let Some(action) = &q.action {
                conds.push(format!("action = {}", b.bind(action)));
            }
            let filter = if conds.is_empty() {
                String::new()
            } else {
                format!(" WHERE {}", conds.join(" AND "))
            };
            let sql = format!(
                "SELECT {AUDIT_COLS} FROM audit{filter} ORDER BY id DESC LIMIT {}",
                b.bind(i64::from(q.limit))
            );
            decode_all(c.query(&sql, &b.params)?, audit)
        })
    }
}
