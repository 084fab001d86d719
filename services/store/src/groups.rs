//! Groups of one tenant's users (T5): the repository (the administration use cases are
//! gatehouse-app's `admin::groups`).
//!
//! Every change takes the group's row first (an `UPDATE` of its `updated_at`), so within
//! the transaction the group cannot vanish under a membership insert, concurrent changes
//! of one group's members queue instead of racing, and on SQLite the transaction holds
//! the write lock from its first statement.

mod members;

pub use members::{MAX_USER_IDS, NewMembers};

use crate::entities::{group_members, groups};
use crate::error::StoreError;
use crate::records::{Group, Page, User};
use crate::scope::TenantScope;
use crate::users::UserFilter;
use crate::{Result, WriteTxn};
use gatehouse_domain::Error as DomainError;
use gatehouse_domain::audit::Target;
use gatehouse_domain::ids::GroupId;
use gatehouse_domain::names::GroupName;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect,
};
use std::collections::HashMap;
use uuid::Uuid;

/// The audit target for a group.
pub fn group_target(id: Uuid, name: &str) -> Target {
    Target {
        kind: "group",
        id: id.to_string(),
        label: Some(name.to_owned()),
    }
}

fn to_group(m: groups::Model, members: u64) -> Group {
    Group {
        id: GroupId(m.id),
        name: m.name,
        members,
        created_at: m.created_at,
    }
}

fn name_taken(name: &GroupName) -> StoreError {
    DomainError::Conflict(format!("a group named '{name}' already exists")).into()
}

/// One tenant's groups.
pub struct Groups<'a> {
    scope: TenantScope<'a>,
}

impl<'a> TenantScope<'a> {
    /// This tenant's groups.
    pub fn groups(self) -> Groups<'a> {
        Groups { scope: self }
    }
}

impl Groups<'_> {
    fn tenant_filter(&self) -> Condition {
        Condition::all().add(groups::Column::TenantId.eq(self.scope.uuid()))
    }

    fn members_filter(&self, group: GroupId) -> Condition {
        Condition::all()
            .add(group_members::Column::TenantId.eq(self.scope.uuid()))
            .add(group_members::Column::GroupId.eq(group.0))
    }

    async fn find_model<C: ConnectionTrait>(
        &self,
        conn: &C,
        id: GroupId,
    ) -> Result<Option<groups::Model>> {
        Ok(groups::Entity::find()
            .filter(self.tenant_filter().add(groups::Column::Id.eq(id.0)))
            .one(conn)
            .await?)
    }

    /// Takes the group's row for the rest of the transaction (see the module comment)
    /// and answers it; `NotFound` when this tenant has no such group.
    async fn take(&self, txn: &DatabaseTransaction, id: GroupId) -> Result<groups::Model> {
        let now = self.scope.inner.clock.now();
        let taken = groups::Entity::update_many()
            .col_expr(groups::Column::UpdatedAt, Expr::value(now))
            .filter(self.tenant_filter().add(groups::Column::Id.eq(id.0)))
            .exec(txn)
            .await?
            .rows_affected;
        if taken != 1 {
            return Err(DomainError::NotFound.into());
        }
        self.find_model(txn, id)
            .await?
            .ok_or_else(|| DomainError::NotFound.into())
    }

    /// Member counts of several groups of this tenant, by group id.
    async fn member_counts<C: ConnectionTrait>(
        &self,
        conn: &C,
        ids: &[Uuid],
    ) -> Result<HashMap<Uuid, u64>> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let rows: Vec<(Uuid, i64)> = group_members::Entity::find()
            .select_only()
            .column(group_members::Column::GroupId)
            .column_as(group_members::Column::UserId.count(), "n")
            .filter(group_members::Column::TenantId.eq(self.scope.uuid()))
            .filter(group_members::Column::GroupId.is_in(ids.iter().copied()))
            .group_by(group_members::Column::GroupId)
            .into_tuple()
            .all(conn)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(g, n)| (g, u64::try_from(n).unwrap_or(0)))
            .collect())
    }

    async fn with_count<C: ConnectionTrait>(&self, conn: &C, m: groups::Model) -> Result<Group> {
        let n = self
            .member_counts(conn, &[m.id])
            .await?
            .remove(&m.id)
            .unwrap_or(0);
        Ok(to_group(m, n))
    }

    /// Groups ordered by name (case-insensitively); the cursor is the last name of the
    /// previous page in lower case.
    pub async fn list(&self, limit: u64, cursor: Option<&str>) -> Result<Page<Group>> {
        let mut cond = self.tenant_filter();
        if let Some(c) = cursor {
            cond = cond.add(groups::Column::NameLower.gt(c));
        }
        let db = &self.scope.inner.db;
        let mut rows = groups::Entity::find()
            .filter(cond)
            .order_by_asc(groups::Column::NameLower)
            .limit(limit + 1)
            .all(db)
            .await?;
        let next_cursor = if rows.len() as u64 > limit {
            rows.truncate(limit as usize);
            rows.last().map(|r| r.name_lower.clone())
        } else {
            None
        };
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        let mut counts = self.member_counts(db, &ids).await?;
        let items = rows
            .into_iter()
            .map(|m| {
                let n = counts.remove(&m.id).unwrap_or(0);
                to_group(m, n)
            })
            .collect();
        Ok(Page { items, next_cursor })
    }

    /// The group's members, as the user list shows them (ordered by username, same cursor).
    pub async fn members(
        &self,
        id: GroupId,
        limit: u64,
        cursor: Option<&str>,
    ) -> Result<Page<User>> {
        self.find_model(&self.scope.inner.db, id)
            .await?
            .ok_or(DomainError::NotFound)?;
        let filter = UserFilter {
            group: Some(id),
            ..UserFilter::default()
        };
        self.scope.users().list(&filter, limit, cursor).await
    }
}

impl Groups<'_> {
    /// Stores a new group in `txn`; a name taken in any case is a `Conflict`.
    pub async fn insert(&self, txn: &WriteTxn, name: &GroupName) -> Result<Group> {
        let now = self.scope.inner.clock.now();
        let row = groups::ActiveModel {
            id: Set(Uuid::new_v4()),
            tenant_id: Set(self.scope.uuid()),
            name: Set(name.as_str().to_owned()),
            name_lower: Set(name.lower()),
            created_at: Set(now),
            updated_at: Set(now),
        };
        let m = groups::Entity::insert(row)
            .exec_with_returning(&**txn)
            .await
            .map_err(|e| {
                if StoreError::is_unique_violation(&e) {
                    name_taken(name)
                } else {
                    StoreError::from(e)
                }
            })?;
        Ok(to_group(m, 0))
    }

    /// Takes the group's row for the rest of `txn` (see the module comment) and answers
    /// the group; `NotFound` when this tenant has no such group.
    pub async fn take_in(&self, txn: &WriteTxn, id: GroupId) -> Result<Group> {
        let m = self.take(txn, id).await?;
        self.with_count(&**txn, m).await
    }

    /// Renames a group taken in `txn`; a name taken in any case is a `Conflict`.
    pub async fn rename(&self, txn: &WriteTxn, id: GroupId, name: &GroupName) -> Result<Group> {
        groups::Entity::update_many()
            .col_expr(groups::Column::Name, Expr::value(name.as_str()))
            .col_expr(groups::Column::NameLower, Expr::value(name.lower()))
            .filter(self.tenant_filter().add(groups::Column::Id.eq(id.0)))
            .exec(&**txn)
            .await
            .map_err(|e| {
                if StoreError::is_unique_violation(&e) {
                    name_taken(name)
                } else {
                    StoreError::from(e)
                }
            })?;
        let m = self
            .find_model(&**txn, id)
            .await?
            .ok_or(DomainError::NotFound)?;
        self.with_count(&**txn, m).await
    }

    /// Deletes a group taken in `txn` with its memberships; how many members it had.
    pub async fn delete(&self, txn: &WriteTxn, id: GroupId) -> Result<u64> {
        let members = group_members::Entity::delete_many()
            .filter(self.members_filter(id))
            .exec(&**txn)
            .await?
            .rows_affected;
        groups::Entity::delete_many()
            .filter(self.tenant_filter().add(groups::Column::Id.eq(id.0)))
            .exec(&**txn)
            .await?;
        Ok(members)
    }
}
