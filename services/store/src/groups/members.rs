//! Who belongs to a group: adding and removing members, one or many at once, in the
//! caller's transaction (T5).

use super::Groups;
use crate::entities::{group_members, users};
use crate::{Result, WriteTxn};
use gatehouse_domain::Error as DomainError;
use gatehouse_domain::ids::{GroupId, UserId};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use std::collections::HashSet;
use uuid::Uuid;

/// The most user ids one bulk add may name.
pub const MAX_USER_IDS: usize = 500;

/// Rows per insert statement: well under SQLite's and PostgreSQL's bind limits.
const INSERT_CHUNK: usize = 500;

/// Whom a bulk add puts into a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NewMembers {
    /// Every active user of the tenant ("assign all users", T5).
    AllActive,
    /// These users of the tenant, active or not.
    Users(Vec<Uuid>),
}

impl NewMembers {
    /// Reads the two forms of `POST .../members`: exactly one of `all: true` or `user_ids`.
    pub fn parse(all: Option<bool>, user_ids: Option<Vec<Uuid>>) -> Result<Self, DomainError> {
        match (all, user_ids) {
            (Some(true), None) => Ok(NewMembers::AllActive),
            (None, Some(ids)) if ids.len() > MAX_USER_IDS => Err(DomainError::field(
                "user_ids",
                format!("at most {MAX_USER_IDS} users per call"),
            )),
            (None, Some(ids)) => {
                let mut seen = HashSet::new();
                Ok(NewMembers::Users(
                    ids.into_iter().filter(|id| seen.insert(*id)).collect(),
                ))
            }
            (Some(false), None) => Err(DomainError::field(
                "all",
                "must be true; to add chosen users send user_ids instead",
            )),
            (Some(_), Some(_)) => Err(DomainError::field(
                "body",
                "send either \"all\": true or \"user_ids\", not both",
            )),
            (None, None) => Err(DomainError::field(
                "body",
                "send either \"all\": true or \"user_ids\"",
            )),
        }
    }
}

impl Groups<'_> {
    /// Ids of the group's members.
    async fn member_ids<C: ConnectionTrait>(&self, conn: &C, id: GroupId) -> Result<HashSet<Uuid>> {
        let ids: Vec<Uuid> = group_members::Entity::find()
            .select_only()
            .column(group_members::Column::UserId)
            .filter(self.members_filter(id))
            .into_tuple()
            .all(conn)
            .await?;
        Ok(ids.into_iter().collect())
    }

    /// Adds those of `users` (of this tenant) who are not members yet; answers them.
    async fn add_missing(
        &self,
        txn: &WriteTxn,
        id: GroupId,
        users: Vec<Uuid>,
    ) -> Result<Vec<Uuid>> {
        let existing = self.member_ids(&**txn, id).await?;
        let added: Vec<Uuid> = users
            .into_iter()
            .filter(|u| !existing.contains(u))
            .collect();
        let now = self.scope.inner.clock.now();
        for chunk in added.chunks(INSERT_CHUNK) {
            let rows = chunk.iter().map(|u| group_members::ActiveModel {
                group_id: Set(id.0),
                user_id: Set(*u),
                tenant_id: Set(self.scope.uuid()),
                added_at: Set(now),
            });
            group_members::Entity::insert_many(rows)
                .exec_without_returning(&**txn)
                .await?;
        }
        Ok(added)
    }

    /// Ids of the users a bulk add names, all of this tenant, in username order for
    /// `AllActive`; an id of no user of this tenant is a validation error on `user_ids`.
    async fn resolve<C: ConnectionTrait>(&self, conn: &C, who: NewMembers) -> Result<Vec<Uuid>> {
        let tenant = users::Column::TenantId.eq(self.scope.uuid());
        match who {
            NewMembers::AllActive => Ok(users::Entity::find()
                .select_only()
                .column(users::Column::Id)
                .filter(tenant)
                .filter(users::Column::Active.eq(true))
                .order_by_asc(users::Column::UsernameLower)
                .into_tuple()
                .all(conn)
                .await?),
            NewMembers::Users(ids) => {
                if ids.is_empty() {
                    return Ok(ids);
                }
                let found: HashSet<Uuid> = users::Entity::find()
                    .select_only()
                    .column(users::Column::Id)
                    .filter(tenant)
                    .filter(users::Column::Id.is_in(ids.iter().copied()))
                    .into_tuple::<Uuid>()
                    .all(conn)
                    .await?
                    .into_iter()
                    .collect();
                if let Some(missing) = ids.iter().find(|u| !found.contains(u)) {
                    // The same answer for a user of another practice as for no user at all.
                    return Err(DomainError::field(
                        "user_ids",
                        format!("no user {missing} in this practice"),
                    )
                    .into());
                }
                Ok(ids)
            }
        }
    }
}

impl Groups<'_> {
    /// Adds the user to a group taken in `txn`, unless a member already; whether added.
    pub async fn add_member(&self, txn: &WriteTxn, id: GroupId, user: UserId) -> Result<bool> {
        Ok(!self.add_missing(txn, id, vec![user.0]).await?.is_empty())
    }

    /// Removes the user from a group taken in `txn`; whether they were a member.
    pub async fn remove_member(&self, txn: &WriteTxn, id: GroupId, user: UserId) -> Result<bool> {
        let removed = group_members::Entity::delete_many()
            .filter(self.members_filter(id))
            .filter(group_members::Column::UserId.eq(user.0))
            .exec(&**txn)
            .await?
            .rows_affected;
        Ok(removed > 0)
    }

    /// Adds the users `who` names to a group taken in `txn`; those who were not members
    /// before. An id of no user of this tenant is a validation error on `user_ids`.
    pub async fn add_members(
        &self,
        txn: &WriteTxn,
        id: GroupId,
        who: NewMembers,
    ) -> Result<Vec<Uuid>> {
        let users = self.resolve(&**txn, who).await?;
        self.add_missing(txn, id, users).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t5_a_bulk_add_takes_exactly_one_form() {
        let id = Uuid::new_v4();
        assert_eq!(
            NewMembers::parse(Some(true), None),
            Ok(NewMembers::AllActive)
        );
        assert_eq!(
            NewMembers::parse(None, Some(vec![id, id])),
            Ok(NewMembers::Users(vec![id])),
            "duplicates count once"
        );
        let field = |r: Result<NewMembers, DomainError>| match r {
            Err(DomainError::Validation(v)) => v[0].field.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(field(NewMembers::parse(None, None)), "body");
        assert_eq!(field(NewMembers::parse(Some(true), Some(vec![id]))), "body");
        assert_eq!(field(NewMembers::parse(Some(false), None)), "all");
        assert_eq!(
            field(NewMembers::parse(None, Some(vec![id; MAX_USER_IDS + 1]))),
            "user_ids"
        );
    }
}
