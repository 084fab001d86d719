//! Clients (I2): registered, changed and removed by a support admin after step-up, and
//! read by support admins. A confidential client's secret is shown once, when made or
//! rotated; only its hash is kept. Each change is in the operator's audit log.

use super::{Oidc, new_secret};
use crate::{Principal, RequestMeta, Result};
use gatehouse_domain::audit::details::{Details, OidcClientFacts};
use gatehouse_domain::audit::{Actor, Target};
use gatehouse_domain::ids::CompanyId;
use gatehouse_domain::ids::TenantId;
use gatehouse_domain::oidc::{ClientKind, check_redirect_uri};
use gatehouse_domain::role::Role;
use gatehouse_domain::{Error as DomainError, FieldError};
use gatehouse_store::audit::{actor_of, event};
use gatehouse_store::oidc::Client;
use secrecy::SecretString;

/// `POST /v1/oidc/clients` as submitted.
#[derive(Debug, Clone)]
pub struct ClientInput {
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub kind: ClientKind,
    pub companies: Option<Vec<String>>,
    /// Only for the demo's own clients (`serve --demo`); a registration gets a random id.
    pub client_id: Option<String>,
}

/// `PATCH /v1/oidc/clients/{client_id}`: what is given changes.
#[derive(Debug, Clone, Default)]
pub struct ClientPatch {
    pub name: Option<String>,
    pub redirect_uris: Option<Vec<String>>,
    pub post_logout_redirect_uris: Option<Vec<String>>,
    /// `Some(None)`: every practice again.
    pub companies: Option<Option<Vec<String>>>,
}

/// A client with its new secret (confidential clients), shown this once.
#[derive(Debug)]
pub struct IssuedClient {
    pub client: Client,
    pub client_secret: Option<SecretString>,
}

const MAX_URIS: usize = 20;

fn check_uris(field: &str, uris: &[String], at_least_one: bool, errors: &mut Vec<FieldError>) {
    if at_least_one && uris.is_empty() {
        errors.push(FieldError::new(field, "at least one URI is required"));
    }
    if uris.len() > MAX_URIS {
        errors.push(FieldError::new(field, format!("at most {MAX_URIS} URIs")));
    }
    for (i, u) in uris.iter().enumerate() {
        if let Err(why) = check_redirect_uri(u) {
            errors.push(FieldError::new(&format!("{field}[{i}]"), why));
        } else if uris[..i].contains(u) {
            errors.push(FieldError::new(&format!("{field}[{i}]"), "listed twice"));
        }
    }
}

fn check_name(name: &str, errors: &mut Vec<FieldError>) {
    let n = name.trim();
    if n.is_empty() || n.chars().count() > 100 || n.chars().any(char::is_control) {
        errors.push(FieldError::new(
            "name",
            "must be 1 to 100 characters, without control characters",
        ));
    }
}

fn facts(c: &Client) -> OidcClientFacts {
    OidcClientFacts {
        client_id: c.client_id.clone(),
        name: c.name.clone(),
        kind: c.kind.as_str(),
        redirect_uris: c.redirect_uris.clone(),
        post_logout_redirect_uris: c.post_logout_redirect_uris.clone(),
        companies: c.companies.clone(),
    }
}

fn target(c: &Client) -> Option<Target> {
    Some(Target {
        kind: "oidc_client",
        id: c.client_id.clone(),
        label: Some(c.name.clone()),
    })
}

impl Oidc<'_> {
    /// Support admins of the operator tenant only.
    fn support_admin(&self, actor: &Principal) -> Result<()> {
        if actor.user.role != Role::SupportAdmin || !actor.tenant.is_operator {
            return Err(DomainError::Forbidden(
                "Only a support admin manages OpenID Connect clients.".into(),
            )
            .into());
        }
        Ok(())
    }

    /// A change: a support admin, with a second factor proven in the last 15 minutes.
    fn support_admin_stepped_up(&self, actor: &Principal) -> Result<()> {
        self.support_admin(actor)?;
        crate::require_step_up(self.store, actor)
    }

    /// The practices named, checked to exist, as stored (lower case, sorted, once each).
    async fn companies(
        &self,
        companies: Option<Vec<String>>,
        errors: &mut Vec<FieldError>,
    ) -> Result<Option<Vec<String>>> {
        let Some(list) = companies else {
            return Ok(None);
        };
        // Counted before any is looked up: a list is read one practice at a time.
        if list.len() > 1000 {
            errors.push(FieldError::new("companies", "at most 1000 practices"));
            return Ok(None);
        }
        let mut out = Vec::new();
        for (i, c) in list.iter().enumerate() {
            let field = format!("companies[{i}]");
            match CompanyId::parse(c) {
                Ok(id) => {
                    if self.store.find_tenant(&id).await?.is_none() {
                        errors.push(FieldError::new(&field, "no such practice"));
                    } else {
                        out.push(id.to_string());
                    }
                }
                Err(_) => errors.push(FieldError::new(&field, "not a company id")),
            }
        }
        out.sort();
        out.dedup();
        Ok(Some(out))
    }

    /// `POST /v1/oidc/clients`.
    pub async fn create_client(
        &self,
        actor: &Principal,
        input: ClientInput,
        meta: &RequestMeta,
    ) -> Result<IssuedClient> {
        self.support_admin_stepped_up(actor)?;
        self.register(Some(actor), input, meta).await
    }

    /// The demo's clients (`serve --demo`), registered by the system.
    pub async fn seed_demo_client(&self, input: ClientInput) -> Result<IssuedClient> {
        if let Some(id) = &input.client_id
            && let Some(existing) = self.store.oidc().client(id).await?
        {
            // Kept from an earlier run: a new secret, so the demo can print it.
            return match existing.kind {
                ClientKind::Confidential => {
                    self.new_secret(None, id, 0, &RequestMeta::default()).await
                }
                ClientKind::Public => Ok(IssuedClient {
                    client: existing,
                    client_secret: None,
                }),
            };
        }
        self.register(None, input, &RequestMeta::default()).await
    }

    async fn register(
        &self,
        actor: Option<&Principal>,
        input: ClientInput,
        meta: &RequestMeta,
    ) -> Result<IssuedClient> {
        let mut errors = Vec::new();
        check_name(&input.name, &mut errors);
        check_uris("redirect_uris", &input.redirect_uris, true, &mut errors);
        check_uris(
            "post_logout_redirect_uris",
            &input.post_logout_redirect_uris,
            false,
            &mut errors,
        );
        let companies = self.companies(input.companies, &mut errors).await?;
        if !errors.is_empty() {
            return Err(DomainError::Validation(errors).into());
        }
        let (secret, hash) = match input.kind {
            ClientKind::Confidential => {
                let (s, h) = new_secret();
                (Some(s), Some(h))
            }
            ClientKind::Public => (None, None),
        };
        let now = self.store.clock().now();
        let auditor = self.auditor(actor).await?;
        let client = Client {
            id: uuid::Uuid::new_v4(),
            client_id: input
                .client_id
                .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string()),
            name: input.name.trim().to_owned(),
            kind: input.kind,
            redirect_uris: input.redirect_uris,
            post_logout_redirect_uris: input.post_logout_redirect_uris,
            companies,
            secret_hash: hash,
            previous_secret_hash: None,
            previous_secret_until: None,
            created_at: now,
            updated_at: now,
        };
        let txn = self.store.begin_write().await?;
        self.store.oidc().insert_client(&*txn, &client).await?;
        self.audit_operator(
            &txn,
            &auditor,
            &client,
            Details::OidcClientCreated(facts(&client)),
            meta,
        )
        .await?;
        txn.commit().await?;
        Ok(IssuedClient {
            client,
            client_secret: secret,
        })
    }

    /// Who an event of the operator's log names, and that log: the support admin's, or
    /// the system's (the demo). Found before the write transaction begins.
    async fn auditor(&self, actor: Option<&Principal>) -> Result<(TenantId, Actor)> {
        Ok(match actor {
            Some(a) => (a.tenant.id, actor_of(a)),
            None => (self.store.operator_tenant_id().await?, Actor::system()),
        })
    }

    /// An event in the operator's log.
    async fn audit_operator(
        &self,
        txn: &gatehouse_store::WriteTxn,
        (tenant, who): &(TenantId, Actor),
        client: &Client,
        details: Details,
        meta: &RequestMeta,
    ) -> Result<()> {
        self.store
            .tenant(*tenant)
            .audit()
            .append_in(txn, event(who.clone(), target(client), meta, details))
            .await
    }

    /// `GET /v1/oidc/clients`.
    pub async fn clients(&self, actor: &Principal) -> Result<Vec<Client>> {
        self.support_admin(actor)?;
        self.store.oidc().clients().await
    }

    /// `GET /v1/oidc/clients/{client_id}`.
    pub async fn client(&self, actor: &Principal, client_id: &str) -> Result<Client> {
        self.support_admin(actor)?;
        self.store
            .oidc()
            .client(client_id)
            .await?
            .ok_or_else(|| DomainError::NotFound.into())
    }

    /// `PATCH /v1/oidc/clients/{client_id}`.
    pub async fn update_client(
        &self,
        actor: &Principal,
        client_id: &str,
        patch: ClientPatch,
        meta: &RequestMeta,
    ) -> Result<Client> {
        self.support_admin_stepped_up(actor)?;
        let auditor = self.auditor(Some(actor)).await?;
        let mut errors = Vec::new();
        if let Some(n) = &patch.name {
            check_name(n, &mut errors);
        }
        if let Some(u) = &patch.redirect_uris {
            check_uris("redirect_uris", u, true, &mut errors);
        }
        if let Some(u) = &patch.post_logout_redirect_uris {
            check_uris("post_logout_redirect_uris", u, false, &mut errors);
        }
        let companies = match patch.companies {
            Some(c) => Some(self.companies(c, &mut errors).await?),
            None => None,
        };
        if !errors.is_empty() {
            return Err(DomainError::Validation(errors).into());
        }
        let txn = self.store.begin_write().await?;
        let mut c = self
            .store
            .oidc()
            .client_in(&*txn, client_id)
            .await?
            .ok_or(DomainError::NotFound)?;
        if let Some(n) = patch.name {
            c.name = n.trim().to_owned();
        }
        if let Some(u) = patch.redirect_uris {
            c.redirect_uris = u;
        }
        if let Some(u) = patch.post_logout_redirect_uris {
            c.post_logout_redirect_uris = u;
        }
        if let Some(co) = companies {
            c.companies = co;
        }
        c.updated_at = self.store.clock().now();
        self.store.oidc().save_client(&*txn, &c).await?;
        self.audit_operator(
            &txn,
            &auditor,
            &c,
            Details::OidcClientUpdated(facts(&c)),
            meta,
        )
        .await?;
        txn.commit().await?;
        Ok(c)
    }

    /// `DELETE /v1/oidc/clients/{client_id}`: the client, its codes and tokens go.
    pub async fn delete_client(
        &self,
        actor: &Principal,
        client_id: &str,
        meta: &RequestMeta,
    ) -> Result<()> {
        self.support_admin_stepped_up(actor)?;
        let auditor = self.auditor(Some(actor)).await?;
        let txn = self.store.begin_write().await?;
        let c = self
            .store
            .oidc()
            .client_in(&*txn, client_id)
            .await?
            .ok_or(DomainError::NotFound)?;
        self.store.oidc().delete_client(&*txn, client_id).await?;
        let details = Details::OidcClientDeleted {
            client_id: c.client_id.clone(),
            name: c.name.clone(),
        };
        self.audit_operator(&txn, &auditor, &c, details, meta)
            .await?;
        txn.commit().await?;
        Ok(())
    }

    /// `POST /v1/oidc/clients/{client_id}/secret`: a new secret, shown once; the old one
    /// keeps working for `grace_seconds` (0: not at all).
    pub async fn rotate_secret(
        &self,
        actor: &Principal,
        client_id: &str,
        grace_seconds: i64,
        meta: &RequestMeta,
    ) -> Result<IssuedClient> {
        self.support_admin_stepped_up(actor)?;
        self.new_secret(Some(actor), client_id, grace_seconds, meta)
            .await
    }

    async fn new_secret(
        &self,
        actor: Option<&Principal>,
        client_id: &str,
        grace_seconds: i64,
        meta: &RequestMeta,
    ) -> Result<IssuedClient> {
        if !(0..=30 * 86_400).contains(&grace_seconds) {
            return Err(DomainError::field(
                "grace_period_seconds",
                "must be 0 to 2592000 (30 days)",
            )
            .into());
        }
        let auditor = self.auditor(actor).await?;
        let txn = self.store.begin_write().await?;
        let mut c = self
            .store
            .oidc()
            .client_in(&*txn, client_id)
            .await?
            .ok_or(DomainError::NotFound)?;
        if c.kind == ClientKind::Public {
            return Err(DomainError::Conflict("A public client has no secret.".into()).into());
        }
        let now = self.store.clock().now();
        let (secret, hash) = new_secret();
        let until = (grace_seconds > 0).then(|| now + chrono::Duration::seconds(grace_seconds));
        c.previous_secret_hash = until.and(c.secret_hash.take());
        c.previous_secret_until = until;
        c.secret_hash = Some(hash);
        c.updated_at = now;
        self.store.oidc().save_client(&*txn, &c).await?;
        let details = Details::OidcClientSecretRotated {
            client_id: c.client_id.clone(),
            previous_until: until,
        };
        self.audit_operator(&txn, &auditor, &c, details, meta)
            .await?;
        txn.commit().await?;
        Ok(IssuedClient {
            client: c,
            client_secret: Some(secret),
        })
    }
}
