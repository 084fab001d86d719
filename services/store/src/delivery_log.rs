//! What admins and support read of deliveries (D5): "why didn't my code arrive?".
//!
//! A delivery is shown with its destination masked. The full destination is not stored
//! with it, only a keyed hash, by which support finds the deliveries to an address;
//! provider errors are shown with any address in them masked too.

use crate::deliveries::{Deliveries, destination_mac};
use crate::entities::{deliveries as dl, tenants};
use crate::error::StoreError;
use crate::records::{Page, Tenant};
use crate::scope::UserRef;
use crate::{Result, Store};
use chrono::{DateTime, Utc};
use gatehouse_domain::Error as DomainError;
use gatehouse_domain::delivery::{DeliveryStatus, redact_destinations};
use gatehouse_domain::ids::TenantId;
use gatehouse_domain::lookup::DestinationLookup;
use gatehouse_domain::mfa::codes::{Channel, Purpose};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use std::collections::HashMap;
use uuid::Uuid;

/// One delivery as admins and support see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    pub id: Uuid,
    pub tenant_id: TenantId,
    pub user_id: Option<Uuid>,
    pub channel: Channel,
    /// The destination, masked (api.md).
    pub to_masked: String,
    pub purpose: Purpose,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub provider_message_id: Option<String>,
    /// Why it failed or was refused, with any address in it masked.
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl TryFrom<dl::Model> for DeliveryRecord {
    type Error = StoreError;

    fn try_from(m: dl::Model) -> Result<Self> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("delivery {}: {what}", m.id));
        Ok(DeliveryRecord {
            id: m.id,
            tenant_id: TenantId(m.tenant_id),
            user_id: m.user_id,
            channel: Channel::parse(&m.channel).ok_or_else(|| corrupt("channel"))?,
            purpose: Purpose::parse(&m.purpose).ok_or_else(|| corrupt("purpose"))?,
            status: DeliveryStatus::parse(&m.status).ok_or_else(|| corrupt("status"))?,
            attempts: u32::try_from(m.attempts).unwrap_or(0),
            error: m.error.as_deref().map(redact_destinations),
            to_masked: m.destination_masked,
            provider_message_id: m.provider_message_id,
            created_at: m.created_at,
            updated_at: m.updated_at,
        })
    }
}

/// A delivery found across practices, with the practice it belongs to.
#[derive(Debug, Clone)]
pub struct TenantDelivery {
    pub tenant: Tenant,
    pub delivery: DeliveryRecord,
}

fn not_a_cursor() -> StoreError {
    DomainError::field("cursor", "not a cursor of this list").into()
}

/// One page of the deliveries matching `list`, newest first. The cursor is the id of the
/// previous page's last delivery, which must itself match `list`.
async fn newest_first<C: ConnectionTrait>(
    conn: &C,
    list: Condition,
    limit: u64,
    cursor: Option<Uuid>,
) -> Result<Page<DeliveryRecord>> {
    let mut cond = list.clone();
    if let Some(last) = cursor {
        let at: DateTime<Utc> = dl::Entity::find()
            .select_only()
            .column(dl::Column::CreatedAt)
            .filter(list)
            .filter(dl::Column::Id.eq(last))
            .into_tuple()
            .one(conn)
            .await?
            .ok_or_else(not_a_cursor)?;
        cond = cond.add(
            Condition::any().add(dl::Column::CreatedAt.lt(at)).add(
                Condition::all()
                    .add(dl::Column::CreatedAt.eq(at))
                    .add(dl::Column::Id.lt(last)),
            ),
        );
    }
    let mut rows = dl::Entity::find()
        .filter(cond)
        .order_by_desc(dl::Column::CreatedAt)
        .order_by_desc(dl::Column::Id)
        .limit(limit + 1)
        .all(conn)
        .await?;
    let next_cursor = if rows.len() as u64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|r| r.id.to_string())
    } else {
        None
    };
    let items = rows
        .into_iter()
        .map(DeliveryRecord::try_from)
        .collect::<Result<Vec<_>>>()?;
    Ok(Page { items, next_cursor })
}

impl Deliveries<'_> {
    /// A user's deliveries, newest first (`NotFound` for a user not of this tenant).
    pub async fn for_user(
        &self,
        user: &UserRef,
        limit: u64,
        cursor: Option<Uuid>,
    ) -> Result<Page<DeliveryRecord>> {
        let db = &self.scope.inner.db;
        let u = self
            .scope
            .users()
            .find_model(db, user)
            .await?
            .ok_or(DomainError::NotFound)?;
        let list = Condition::all()
            .add(dl::Column::TenantId.eq(self.scope.uuid()))
            .add(dl::Column::UserId.eq(u.id));
        newest_first(db, list, limit, cursor).await
    }
}

impl Store {
    /// The tenants of `ids`, by id.
    pub(crate) async fn tenants_by_id(
        &self,
        ids: impl IntoIterator<Item = Uuid>,
    ) -> Result<HashMap<Uuid, Tenant>> {
        let mut ids: Vec<Uuid> = ids.into_iter().collect();
        ids.sort();
        ids.dedup();
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        tenants::Entity::find()
            .filter(tenants::Column::Id.is_in(ids))
            .all(&self.inner.db)
            .await?
            .into_iter()
            .map(|m| Tenant::try_from(m).map(|t| (t.id.0, t)))
            .collect()
    }

    /// Deliveries to a destination across practices, newest first, for support (S1, D5).
    /// The caller audits the read in each practice answered (gatehouse-app's `support`).
    pub async fn deliveries_to_everywhere(
        &self,
        destination: &DestinationLookup,
        limit: u64,
        cursor: Option<Uuid>,
    ) -> Result<Page<TenantDelivery>> {
        // Rows written before a key rotation carry the hash under the key of their time.
        let hashes: Vec<String> = self
            .inner
            .config
            .keyring
            .keys()
            .map(|k| destination_mac(k, destination.full()))
            .collect();
        let list = Condition::all().add(dl::Column::DestinationHash.is_in(hashes));
        let page = newest_first(&self.inner.db, list, limit, cursor).await?;
        let tenants = self
            .tenants_by_id(page.items.iter().map(|d| d.tenant_id.0))
            .await?;
        let items = page
            .items
            .into_iter()
            .map(|delivery| {
                let tenant = tenants.get(&delivery.tenant_id.0).cloned().ok_or_else(|| {
                    StoreError::Corrupt(format!("delivery {}: tenant", delivery.id))
                })?;
                Ok(TenantDelivery { tenant, delivery })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Page {
            items,
            next_cursor: page.next_cursor,
        })
    }
}
