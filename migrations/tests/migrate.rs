//! Applies, checks and rolls back the schema on real SQLite and PostgreSQL
//! databases.

use std::error::Error;

use gatehouse_migration::sea_orm::sea_query::{Expr, Query};
use gatehouse_migration::sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbErr, SqlErr};
use gatehouse_migration::{Migrator, MigratorTrait, SchemaManager};
use uuid::Uuid;

type TestResult = Result<(), Box<dyn Error>>;

const TABLES: [&str; 16] = [
    "tenants",
    "users",
    "groups",
    "group_members",
    "sign_in_flows",
    "sessions",
    "login_hours",
    "audit_events",
    "audit_inbox",
    "totp_credentials",
    "recovery_codes",
    "mfa_challenges",
    "deliveries",
    "remembered_devices",
    "trusted_networks",
    "escalations",
];

const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

async fn assert_tables(db: &DatabaseConnection, expected: bool) -> TestResult {
    let manager = SchemaManager::new(db);
    for table in TABLES {
        let present = manager.has_table(table).await?;
        if present != expected {
            return Err(format!("table {table}: present={present}, expected {expected}").into());
        }
    }
    Ok(())
}

async fn insert_tenant(db: &DatabaseConnection, id: Uuid, company: &str) -> Result<(), DbErr> {
    let stmt = Query::insert()
        .into_table("tenants")
        .columns([
            "id",
            "company",
            "name",
            "timezone",
            "status",
            "settings",
            "is_operator",
            "audit_head_seq",
            "audit_head_hash",
            "created_at",
            "updated_at",
        ])
        .values([
            id.into(),
            company.into(),
            company.into(),
            "UTC".into(),
            "active".into(),
            "{}".into(),
            false.into(),
            0i64.into(),
            "0".repeat(64).into(),
            Expr::current_timestamp(),
            Expr::current_timestamp(),
        ])
        .map_err(|e| DbErr::Custom(e.to_string()))?
        .to_owned();
    db.execute(&stmt).await.map(|_| ())
}

async fn insert_user(
    db: &DatabaseConnection,
    tenant_id: Uuid,
    username: &str,
) -> Result<Uuid, DbErr> {
    let id = Uuid::new_v4();
    let text = |s: &str| -> Expr { s.into() };
    let stmt = Query::insert()
        .into_table("users")
        .columns([
            "id",
            "tenant_id",
            "username",
            "username_lower",
            "first_name",
            "last_name",
            "email_verified",
            "phone_verified",
            "role",
            "active",
            "locked",
            "must_change_password",
            "password_hash",
            "failed_logins",
            "mfa_method",
            "mfa_enrollment",
            "created_at",
            "updated_at",
        ])
        .values([
            id.into(),
            tenant_id.into(),
            text(username),
            text(&username.to_lowercase()),
            text("Test"),
            text("User"),
            false.into(),
            false.into(),
            text("user"),
            true.into(),
            false.into(),
            false.into(),
            text("not-a-real-hash"),
            0i32.into(),
            text("none"),
            text("{}"),
            Expr::current_timestamp(),
            Expr::current_timestamp(),
        ])
        .map_err(|e| DbErr::Custom(e.to_string()))?
        .to_owned();
    db.execute(&stmt).await.map(|_| id)
}

async fn insert_recovery_code(
    db: &DatabaseConnection,
    tenant_id: Uuid,
    user_id: Uuid,
    code_hash: &str,
) -> Result<(), DbErr> {
    let stmt = Query::insert()
        .into_table("recovery_codes")
        .columns(["id", "tenant_id", "user_id", "code_hash", "created_at"])
        .values([
            Uuid::new_v4().into(),
            tenant_id.into(),
            user_id.into(),
            code_hash.into(),
            Expr::current_timestamp(),
        ])
        .map_err(|e| DbErr::Custom(e.to_string()))?
        .to_owned();
    db.execute(&stmt).await.map(|_| ())
}

async fn assert_recovery_code_unique_per_user(db: &DatabaseConnection) -> TestResult {
    let tenant = Uuid::new_v4();
    insert_tenant(db, tenant, "initech").await?;
    let bob = insert_user(db, tenant, "bob").await?;
    let carol = insert_user(db, tenant, "carol").await?;

    insert_recovery_code(db, tenant, bob, "hash-1").await?;
    match insert_recovery_code(db, tenant, bob, "hash-1").await {
        Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {}
        Err(e) => {
            return Err(format!("duplicate recovery code failed for the wrong reason: {e}").into());
        }
        Ok(()) => return Err("duplicate (user_id, code_hash) was accepted".into()),
    }
    // The uniqueness is per user: another user may hold the same hash, and
    // the same user may hold other hashes.
    insert_recovery_code(db, tenant, carol, "hash-1").await?;
    insert_recovery_code(db, tenant, bob, "hash-2").await?;
    Ok(())
}

async fn assert_username_unique_per_tenant(db: &DatabaseConnection) -> TestResult {
    let acme = Uuid::new_v4();
    let globex = Uuid::new_v4();
    insert_tenant(db, acme, "acme").await?;
    insert_tenant(db, globex, "globex").await?;

    insert_user(db, acme, "alice").await?;
    match insert_user(db, acme, "ALICE").await {
        Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {}
        Err(e) => {
            return Err(format!("duplicate username failed for the wrong reason: {e}").into());
        }
        Ok(_) => return Err("duplicate (tenant_id, username_lower) was accepted".into()),
    }
    // The uniqueness is per tenant, not global.
    insert_user(db, globex, "alice").await?;
    Ok(())
}

async fn up_enforce_down_up(db: &DatabaseConnection) -> TestResult {
    Migrator::up(db, None).await?;
    assert_tables(db, true).await?;
    assert_username_unique_per_tenant(db).await?;
    assert_recovery_code_unique_per_user(db).await?;

    Migrator::down(db, None).await?;
    assert_tables(db, false).await?;

    Migrator::up(db, None).await?;
    assert_tables(db, true).await?;
    Ok(())
}

#[tokio::test]
async fn sqlite_schema_applies_enforces_unique_username_and_rolls_back() -> TestResult {
    let dir = tempfile::tempdir()?;
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("gatehouse.db").display()
    );
    let db = Database::connect(&url).await?;
    let result = up_enforce_down_up(&db).await;
    db.close().await?;
    result
}

/// Swaps the database name in a PostgreSQL URL, keeping any query string.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}

#[tokio::test]
async fn postgres_schema_applies_enforces_unique_username_and_rolls_back() -> TestResult {
    let admin_url = std::env::var("GATEHOUSE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
    let name = format!("gh_mig_{}", Uuid::new_v4().simple());

    let admin = Database::connect(&admin_url).await?;
    admin
        .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
        .await?;

    // Always drop the scratch database, even when the checks fail.
    let result = async {
        let db = Database::connect(&with_database(&admin_url, &name)).await?;
        let result = up_enforce_down_up(&db).await;
        db.close().await?;
        result
    }
    .await;

    let dropped = admin
        .execute_unprepared(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
        .await;
    admin.close().await?;
    result?;
    dropped?;
    Ok(())
}
