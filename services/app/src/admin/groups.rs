//! Groups of a practice's users (T5): create, rename, delete, and who belongs to them.
//! Every change takes the group's row first, so concurrent changes of one group queue
//! (see `gatehouse_store::groups`). Sessions carry their user's groups: a change of
//! membership drops the cached sessions it concerns.

use super::Admin;
use crate::{Principal, RequestMeta, Result, Tenant};
use gatehouse_domain::Error as DomainError;
use gatehouse_domain::audit::Details;
use gatehouse_domain::audit::details::Change;
use gatehouse_domain::ids::GroupId;
use gatehouse_domain::names::GroupName;
use gatehouse_store::Group;
use gatehouse_store::audit::{actor_of, event};
use gatehouse_store::groups::group_target;
use gatehouse_store::scope::UserRef;

pub use gatehouse_store::groups::{MAX_USER_IDS, NewMembers};

impl Admin<'_> {
    /// `POST .../groups` (T5); a name taken in any case is a `Conflict`.
    pub async fn create_group(
        &self,
        actor: &Principal,
        tenant: &Tenant,
        name: GroupName,
        meta: &RequestMeta,
    ) -> Result<Group> {
        let scope = self.store.tenant(tenant.id);
        let txn = self.store.begin_write().await?;
        let g = scope.groups().insert(&txn, &name).await?;
        scope
            .audit()
            .append_in(
                &txn,
                event(
                    actor_of(actor),
                    Some(group_target(g.id.0, &g.name)),
                    meta,
                    Details::GroupCreated {
                        name: g.name.clone(),
                    },
                ),
            )
            .await?;
        txn.commit().await?;
        Ok(g)
    }

    /// `PATCH .../groups/{group_id}`: renames a group; the same rules as a new name.
    /// Renaming to the current name changes nothing and records nothing.
    pub async fn rename_group(
        &self,
        actor: &Principal,
        tenant: &Tenant,
        id: GroupId,
        name: GroupName,
        meta: &RequestMeta,
    ) -> Result<Group> {
        let scope = self.store.tenant(tenant.id);
        let groups = scope.groups();
        let txn = self.store.begin_write().await?;
        let old = groups.take_in(&txn, id).await?;
        if old.name == name.as_str() {
            txn.commit().await?;
            return Ok(old);
        }
        let g = groups.rename(&txn, id, &name).await?;
        scope
            .audit()
            .append_in(
                &txn,
                event(
                    actor_of(actor),
                    Some(group_target(old.id.0, name.as_str())),
                    meta,
                    Details::GroupUpdated {
                        name: Change {
                            from: old.name.clone(),
                            to: name.as_str().to_owned(),
                        },
                    },
                ),
            )
            .await?;
        txn.commit().await?;
        // Sessions carry their user's groups by name.
        self.store.forget_tenant_sessions(tenant.id);
        Ok(g)
    }

    /// `DELETE .../groups/{group_id}`: deletes a group and its memberships.
    pub async fn delete_group(
        &self,
        actor: &Principal,
        tenant: &Tenant,
        id: GroupId,
        meta: &RequestMeta,
    ) -> Result<()> {
        let scope = self.store.tenant(tenant.id);
        let txn = self.store.begin_write().await?;
        let g = scope.groups().take_in(&txn, id).await?;
        let members = scope.groups().delete(&txn, id).await?;
        scope
            .audit()
            .append_in(
                &txn,
                event(
                    actor_of(actor),
                    Some(group_target(g.id.0, &g.name)),
                    meta,
                    Details::GroupDeleted { members },
                ),
            )
            .await?;
        txn.commit().await?;
        if members > 0 {
            self.store.forget_tenant_sessions(tenant.id);
        }
        Ok(())
    }

    /// `PUT .../groups/{group_id}/members/{user_id}`: adds one user (by id or username);
    /// a member already is left as is.
    pub async fn add_group_member(
        &self,
        actor: &Principal,
        tenant: &Tenant,
        id: GroupId,
        user: &UserRef,
        meta: &RequestMeta,
    ) -> Result<()> {
        self.change_member(actor, (tenant, id), user, meta, true)
            .await
    }

    /// `DELETE .../groups/{group_id}/members/{user_id}`: removes one user (by id or
    /// username); a non-member is left as is.
    pub async fn remove_group_member(
        &self,
        actor: &Principal,
        tenant: &Tenant,
        id: GroupId,
        user: &UserRef,
        meta: &RequestMeta,
    ) -> Result<()> {
        self.change_member(actor, (tenant, id), user, meta, false)
            .await
    }

    /// Puts one user into a group (`add`) or takes them out; audits only a real change.
    async fn change_member(
        &self,
        actor: &Principal,
        (tenant, id): (&Tenant, GroupId),
        user: &UserRef,
        meta: &RequestMeta,
        add: bool,
    ) -> Result<()> {
        let scope = self.store.tenant(tenant.id);
        let txn = self.store.begin_write().await?;
        let g = scope.groups().take_in(&txn, id).await?;
        let u = scope
            .users()
            .id_in(&txn, user)
            .await?
            .ok_or(DomainError::NotFound)?;
        let changed = if add {
            scope.groups().add_member(&txn, id, u).await?
        } else {
            scope.groups().remove_member(&txn, id, u).await?
        };
        if changed {
            scope
                .audit()
                .append_in(
                    &txn,
                    event(
                        actor_of(actor),
                        Some(group_target(g.id.0, &g.name)),
                        meta,
                        Details::GroupMembersChanged {
                            added: add.then_some(1),
                            removed: (!add).then_some(1),
                            all: None,
                            user_ids: vec![u.0],
                        },
                    ),
                )
                .await?;
        }
        txn.commit().await?;
        if changed {
            // Sessions carry their user's groups.
            self.store.forget_user_sessions(u);
        }
        Ok(())
    }

    /// `POST .../groups/{group_id}/members`: adds many users at once; answers how many
    /// were not members before. Either all of it happens or, when a named user is not of
    /// this tenant, none.
    pub async fn add_group_members(
        &self,
        actor: &Principal,
        tenant: &Tenant,
        id: GroupId,
        who: NewMembers,
        meta: &RequestMeta,
    ) -> Result<u64> {
        let scope = self.store.tenant(tenant.id);
        let all = who == NewMembers::AllActive;
        let txn = self.store.begin_write().await?;
        let g = scope.groups().take_in(&txn, id).await?;
        let added = scope.groups().add_members(&txn, id, who).await?;
        if !added.is_empty() {
            scope
                .audit()
                .append_in(
                    &txn,
                    event(
                        actor_of(actor),
                        Some(group_target(g.id.0, &g.name)),
                        meta,
                        Details::GroupMembersChanged {
                            added: Some(added.len() as u64),
                            removed: None,
                            all: Some(all),
                            user_ids: added.clone(),
                        },
                    ),
                )
                .await?;
        }
        txn.commit().await?;
        if !added.is_empty() {
            // Sessions carry their user's groups; many users changed.
            self.store.forget_tenant_sessions(tenant.id);
        }
        Ok(added.len() as u64)
    }
}
