//! Trusted networks (M8): tenant-wide ranges (no user) and ranges for one user.

use super::Mfa;
use crate::Result;
use crate::entities::{trusted_networks as tn, users};
use crate::error::StoreError;
use chrono::{DateTime, Utc};
use gatehouse_domain::Error as DomainError;
use gatehouse_domain::ids::UserId;
use gatehouse_domain::networks::{Cidr, any_contains};
use sea_orm::{ActiveValue::Set, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder};
use std::net::IpAddr;
use uuid::Uuid;

/// A trusted range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedNetwork {
    pub id: Uuid,
    pub cidr: Cidr,
    pub description: Option<String>,
    /// `None`: applies to everyone in the tenant.
    pub user_id: Option<Uuid>,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

fn to_network(r: tn::Model) -> Result<TrustedNetwork> {
    Ok(TrustedNetwork {
        cidr: Cidr::parse(&r.cidr)
            .map_err(|_| StoreError::Corrupt(format!("trusted network {}", r.id)))?,
        id: r.id,
        description: r.description,
        user_id: r.user_id,
        created_by: r.created_by,
        created_at: r.created_at,
    })
}

impl Mfa<'_> {
    /// Gives `user` (just created in `txn`) ranges of its own like `networks`, added by
    /// `created_by`.
    pub async fn copy_networks_to(
        &self,
        txn: &crate::WriteTxn,
        networks: &[TrustedNetwork],
        user: UserId,
        created_by: UserId,
    ) -> Result<()> {
        if networks.is_empty() {
            return Ok(());
        }
        let now = self.scope.inner.clock.now();
        tn::Entity::insert_many(networks.iter().map(|n| tn::ActiveModel {
            id: Set(Uuid::new_v4()),
            tenant_id: Set(self.scope.uuid()),
            user_id: Set(Some(user.0)),
            cidr: Set(n.cidr.to_string()),
            description: Set(n.description.clone()),
            created_by: Set(Some(created_by.0)),
            created_at: Set(now),
        }))
        .exec_without_returning(&**txn)
        .await?;
        Ok(())
    }

    /// Adds a range, tenant-wide or (with `user`) for one user of this tenant.
    pub async fn add_network(
        &self,
        cidr: Cidr,
        description: Option<String>,
        user: Option<UserId>,
        created_by: Option<UserId>,
    ) -> Result<TrustedNetwork> {
        let db = &self.scope.inner.db;
        if let Some(u) = user {
            let exists = users::Entity::find()
                .filter(users::Column::TenantId.eq(self.scope.uuid()))
                .filter(users::Column::Id.eq(u.0))
                .one(db)
                .await?
                .is_some();
            if !exists {
                return Err(DomainError::field("user_id", "no such user in this practice").into());
            }
        }
        let row = tn::ActiveModel {
            id: Set(Uuid::new_v4()),
            tenant_id: Set(self.scope.uuid()),
            user_id: Set(user.map(|u| u.0)),
            cidr: Set(cidr.to_string()),
            description: Set(description.map(|d| d.chars().take(200).collect())),
            created_by: Set(created_by.map(|u| u.0)),
            created_at: Set(self.scope.inner.clock.now()),
        };
        to_network(tn::Entity::insert(row).exec_with_returning(db).await?)
    }

    /// The tenant's ranges, oldest first.
    pub async fn networks(&self) -> Result<Vec<TrustedNetwork>> {
        tn::Entity::find()
            .filter(tn::Column::TenantId.eq(self.scope.uuid()))
            .order_by_asc(tn::Column::CreatedAt)
            .all(&self.scope.inner.db)
            .await?
            .into_iter()
            .map(to_network)
            .collect()
    }

    /// Removes a range of this tenant; `NotFound` otherwise.
    pub async fn remove_network(&self, id: Uuid) -> Result<TrustedNetwork> {
        let db = &self.scope.inner.db;
        let row = tn::Entity::find()
            .filter(tn::Column::TenantId.eq(self.scope.uuid()))
            .filter(tn::Column::Id.eq(id))
            .one(db)
            .await?
            .ok_or(DomainError::NotFound)?;
        tn::Entity::delete_many()
            .filter(tn::Column::TenantId.eq(self.scope.uuid()))
            .filter(tn::Column::Id.eq(id))
            .exec(db)
            .await?;
        to_network(row)
    }

    /// Whether the client address is in a tenant-wide range or one of this user's ranges.
    pub async fn from_trusted_network(&self, user: UserId, ip: Option<IpAddr>) -> Result<bool> {
        if ip.is_none() {
            return Ok(false);
        }
        let rows = tn::Entity::find()
            .filter(tn::Column::TenantId.eq(self.scope.uuid()))
            .filter(
                Condition::any()
                    .add(tn::Column::UserId.is_null())
                    .add(tn::Column::UserId.eq(user.0)),
            )
            .all(&self.scope.inner.db)
            .await?;
        let ranges: Vec<Cidr> = rows
            .into_iter()
            .filter_map(|r| Cidr::parse(&r.cidr).ok())
            .collect();
        Ok(any_contains(&ranges, ip))
    }
}
