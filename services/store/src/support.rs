//! The vendor's support staff finding a user across practices (S1). Unlike a practice's
//! own reads, this one is not reached through a [`crate::scope::TenantScope`]: it is
//! audited instead, with a `support.read` in the log of every practice whose users it
//! answers, so each practice sees who from the vendor looked.

use crate::entities::users;
use crate::records::{Page, Principal, Tenant, User};
use crate::{RequestMeta, Result, Store, StoreError};
use gatehouse_domain::Error as DomainError;
use gatehouse_domain::ids::TenantId;
use gatehouse_domain::lookup::UserLookup;
use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr};
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use std::collections::BTreeMap;
use uuid::Uuid;

/// A user found across practices, with the practice it belongs to.
#[derive(Debug, Clone)]
pub struct TenantUser {
    pub tenant: Tenant,
    pub user: User,
}

/// `%text%` for LIKE, the text's own wildcards taken literally (usernames may hold `_`).
fn contains(text: &str) -> LikeExpr {
    let mut escaped = String::with_capacity(text.len() + 2);
    escaped.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped.push('%');
    LikeExpr::new(escaped).escape('\\')
}

/// Users whose username, email address or phone number matches the lookup.
fn matching(lookup: &UserLookup) -> Condition {
    use users::Column as C;
    let mut any = Condition::any()
        .add(Expr::col(C::UsernameLower).like(contains(lookup.text())))
        .add(Expr::expr(Func::lower(Expr::col(C::Email))).like(contains(lookup.text())));
    if let Some(phone) = lookup.phone() {
        any = any.add(C::Phone.eq(phone.as_str()));
    }
    if let Some(digits) = lookup.digits() {
        any = any.add(Expr::col(C::Phone).like(contains(digits)));
    }
    any
}

impl Store {
    /// Users of every practice matching `lookup`, ordered by username (then id); the
    /// cursor is the id of the previous page's last user. Audited in each practice whose
    /// users are answered, with the search term masked when it is an address or number.
    pub async fn support_find_users(
        &self,
        actor: &Principal,
        lookup: &UserLookup,
        limit: u64,
        cursor: Option<Uuid>,
        path: &str,
        meta: &RequestMeta,
    ) -> Result<Page<TenantUser>> {
        use users::Column as C;
        let db = &self.inner.db;
        let mut cond = Condition::all().add(matching(lookup));
        if let Some(last) = cursor {
            let name: String = users::Entity::find_by_id(last)
                .select_only()
                .column(C::UsernameLower)
                .into_tuple()
                .one(db)
                .await?
                .ok_or_else(|| DomainError::field("cursor", "not a cursor of this list"))?;
            cond = cond.add(
                Condition::any().add(C::UsernameLower.gt(name.clone())).add(
                    Condition::all()
                        .add(C::UsernameLower.eq(name))
                        .add(C::Id.gt(last)),
                ),
            );
        }
        let mut rows = users::Entity::find()
            .filter(cond)
            .order_by_asc(C::UsernameLower)
            .order_by_asc(C::Id)
            .limit(limit + 1)
            .all(db)
            .await?;
        let next_cursor = if rows.len() as u64 > limit {
            rows.truncate(limit as usize);
            rows.last().map(|r| r.id.to_string())
        } else {
            None
        };
        let tenants = self.tenants_by_id(rows.iter().map(|r| r.tenant_id)).await?;

        // Groups and MFA status come from each practice's own repository.
        let mut by_tenant: BTreeMap<Uuid, Vec<Uuid>> = BTreeMap::new();
        for r in &rows {
            by_tenant.entry(r.tenant_id).or_default().push(r.id);
        }
        let mut groups = std::collections::HashMap::new();
        let mut mfa = std::collections::HashMap::new();
        for (tenant, ids) in &by_tenant {
            let repo = self.tenant(TenantId(*tenant)).users();
            groups.extend(repo.groups_of(db, ids).await?);
            mfa.extend(repo.mfa_of(db, ids).await?);
        }

        let query = format!("q={}", lookup.for_audit());
        let mut shown: Vec<&Tenant> = tenants.values().collect();
        shown.sort_by(|a, b| a.company.as_str().cmp(b.company.as_str()));
        for tenant in shown {
            self.record_support_read(actor, tenant, path, &query, meta)
                .await?;
        }

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
