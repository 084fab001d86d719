//! The vendor's support staff finding a user across practices (S1). Unlike a practice's
//! own reads, this one is not reached through a [`crate::scope::TenantScope`]: it is
//! audited instead (by gatehouse-app's `support`), with a `support.read` in the log of
//! every practice whose users it answers, so each practice sees who from the vendor
//! looked.

use crate::entities::users;
use crate::records::{Page, Tenant, User};
use crate::sql::stmt;
use crate::{Result, Store, StoreError};
use gatehouse_domain::Error as DomainError;
use gatehouse_domain::lookup::UserLookup;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QuerySelect, Statement,
    Value,
};
use std::collections::HashMap;
use uuid::Uuid;

/// A user found across practices, with the practice it belongs to.
#[derive(Debug, Clone)]
pub struct TenantUser {
    pub tenant: Tenant,
    pub user: User,
}

/// The least string greater than every string that starts with `prefix`, in code point
/// order (which is UTF-8 byte order: SQLite's `BINARY`, PostgreSQL's `"C"`): its last
/// character moved one on. `None` when every character is the last one there is.
fn past_prefix(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        // Surrogates are not characters: after U+D7FF comes U+E000.
        let next = match u32::from(last) {
            0xD7FF => Some('\u{E000}'),
            n => char::from_u32(n + 1),
        };
        if let Some(c) = next {
            chars.push(c);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// `text%` for LIKE, the text's own wildcards taken literally (usernames may hold `_`).
fn starting_with(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len() + 1);
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped.push('%');
    escaped
}

/// Numbered parameters of a hand-written statement.
#[derive(Default)]
struct Params(Vec<Value>);

impl Params {
    fn add(&mut self, v: impl Into<Value>) -> String {
        self.0.push(v.into());
        format!("${}", self.0.len())
    }
}

/// The search as one statement answering the ids of the page (and one more), in order.
///
/// Each way of matching is a subquery of its own that an index answers, each bounded by
/// the page: the start of a username (`idx_users_username_search`, already in order), an
/// email address from its local part and `@` on (`idx_users_email_search`), a number by
/// its last four digits (`idx_users_phone_tail`); the union is ordered and bounded once
/// more. What the second and third read is bounded by the users who share an address's
/// local part or a number's last digits, not by the size of the deployment. Both databases
/// compare bytes (PostgreSQL's `"C"` collation, SQLite's `BINARY`), so a prefix is a
/// range of an index and the order is the same on both. The migration that makes the
/// indexes (`m20261206_000010_support_search`) writes the same expressions.
pub fn search_statement(
    backend: DbBackend,
    lookup: &UserLookup,
    after: Option<(&str, Uuid)>,
    limit: u64,
) -> Statement {
    let c = match backend {
        DbBackend::Postgres => " COLLATE \"C\"",
        _ => "",
    };
    let mut p = Params::default();
    let take = p.add(i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX));
    let after = after
        .map(|(name, id)| {
            let (name, id) = (p.add(name), p.add(id));
            format!(
                " AND (username_lower{c} > {name} OR (username_lower{c} = {name} AND id > {id}))"
            )
        })
        .unwrap_or_default();
    let text = lookup.text();
    let starts = |p: &mut Params, col: &str| match past_prefix(text) {
        Some(end) => format!("{col}{c} >= {} AND {col}{c} < {}", p.add(text), p.add(end)),
        None => format!(
            "{col}{c} >= {} AND {col} LIKE {} ESCAPE '\\'",
            p.add(text),
            p.add(starting_with(text))
        ),
    };
    let mut ways = vec![starts(&mut p, "username_lower")];
    if lookup.finds_email() {
        ways.push(starts(&mut p, "lower(email)"));
    }
    let tail = "substr(phone, length(phone) - 3)";
    let mut numbers = Vec::new();
    if let Some(digits) = lookup.phone_tail() {
        let last4 = &digits[digits.len() - 4..];
        numbers.push(format!(
            "({tail} = {} AND phone LIKE {})",
            p.add(last4),
            p.add(format!("%{digits}"))
        ));
    }
    if let Some(phone) = lookup.phone() {
        let whole = phone.as_str();
        let last4 = &whole[whole.len().saturating_sub(4)..];
        numbers.push(format!(
            "({tail} = {} AND phone = {})",
            p.add(last4),
            p.add(whole)
        ));
    }
    if !numbers.is_empty() {
        ways.push(numbers.join(" OR "));
    }
    let union = ways
        .iter()
        .enumerate()
        .map(|(i, way)| {
            // The first way reads the username index in order and stops at the page. The
            // others must read their own index, then sort what it found: ordered by a
            // bare `username_lower`, a planner may instead walk the whole username index
            // hoping to meet matches early (seen: 3 s at 500,000 users).
            let order = if i == 0 {
                "username_lower"
            } else {
                "(username_lower || '')"
            };
            format!(
                "SELECT id, username_lower FROM (SELECT id, username_lower FROM users \
                 WHERE {way}{after} ORDER BY {order}{c}, id LIMIT {take}) AS w{i}"
            )
        })
        .collect::<Vec<_>>()
        .join(" UNION ");
    stmt(
        backend,
        &format!("SELECT id FROM ({union}) AS found ORDER BY username_lower{c}, id LIMIT {take}"),
        p.0,
    )
}

impl Store {
    /// Users of every practice matching `lookup`, ordered by username (then id); the
    /// cursor is the id of the previous page's last user. The caller audits the read in
    /// each practice answered (gatehouse-app's `support`).
    pub async fn find_users_everywhere(
        &self,
        lookup: &UserLookup,
        limit: u64,
        cursor: Option<Uuid>,
    ) -> Result<Page<TenantUser>> {
        use users::Column as C;
        let db = &self.inner.db;
        let after = match cursor {
            Some(last) => {
                let name: String = users::Entity::find_by_id(last)
                    .select_only()
                    .column(C::UsernameLower)
                    .into_tuple()
                    .one(db)
                    .await?
                    .ok_or_else(|| DomainError::field("cursor", "not a cursor of this list"))?;
                Some((name, last))
            }
            None => None,
        };
        let found = db
            .query_all_raw(search_statement(
                db.get_database_backend(),
                lookup,
                after.as_ref().map(|(name, id)| (name.as_str(), *id)),
                limit,
            ))
            .await?
            .iter()
            .map(|r| r.try_get::<Uuid>("", "id"))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let mut rows = if found.is_empty() {
            Vec::new()
        } else {
            users::Entity::find()
                .filter(C::Id.is_in(found.clone()))
                .all(db)
                .await?
        };
        // The statement's order, which the rows' own fetch does not keep.
        let place: HashMap<Uuid, usize> =
            found.iter().enumerate().map(|(i, id)| (*id, i)).collect();
        rows.sort_by_key(|r| place.get(&r.id).copied().unwrap_or(usize::MAX));
        let next_cursor = if rows.len() as u64 > limit {
            rows.truncate(limit as usize);
            rows.last().map(|r| r.id.to_string())
        } else {
            None
        };
        // The page's practices, and its users' groups and MFA status, each found under
        // its own practice: three statements at once, however many practices the page
        // spans.
        let mut practices: Vec<Uuid> = rows.iter().map(|r| r.tenant_id).collect();
        practices.sort_unstable();
        practices.dedup();
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        let (tenants, mut groups, mut mfa) = tokio::try_join!(
            self.tenants_by_id(practices.iter().copied()),
            crate::users::groups_in(db, &practices, &ids),
            crate::users::mfa_in(db, &practices, &ids),
        )?;

        let items = rows
            .into_iter()
            .map(|m| {
                let tenant = tenants
                    .get(&m.tenant_id)
                    .cloned()
                    .ok_or_else(|| StoreError::Corrupt(format!("user {}: tenant", m.id)))?;
                let id = m.id;
                let mut user = User::from_model(m)?;
                user.groups = groups.remove(&id).unwrap_or_default();
                let (totp, left) = mfa.remove(&id).unwrap_or_default();
                user.totp_enrolled = totp;
                user.recovery_codes_remaining = left;
                Ok(TenantUser { tenant, user })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Page { items, next_cursor })
    }
}
