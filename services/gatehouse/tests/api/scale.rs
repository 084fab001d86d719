//! O3: scale data for the load tests, written in bulk (`gatehouse seed-scale`), on both
//! databases: the practices and users are real ones that sign in.

use crate::cli::{gatehouse, run, sqlite_url, text};
use crate::helpers::{Db, TestApp, ok_json};
use gatehouse_domain::settings::MfaPolicy;
use gatehouse_store::scale::ScaleSpec;
use gatehouse_testkit::on_both_databases;
use reqwest::StatusCode;
use sea_orm::ConnectionTrait;
use secrecy::SecretString;
use std::time::Duration;

on_both_databases!(
    o3_scale_data_practices_and_users_sign_in_and_a_second_run_is_refused,
    o3_scale_users_with_methods_get_codes_by_email_and_sms_or_enroll,
);

const PASSWORD: &str = "Load-Test-Pass-2026!";

async fn count(app: &TestApp, sql: &str) -> i64 {
    let row = app
        .raw
        .query_one_raw(sea_orm::Statement::from_string(
            app.raw.get_database_backend(),
            sql.to_owned(),
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

fn spec(prefix: &str, tenants: u32, users: u32) -> ScaleSpec {
    ScaleSpec {
        prefix: prefix.into(),
        tenants,
        users_per_tenant: users,
        password: SecretString::from(PASSWORD.to_owned()),
        mfa_policy: MfaPolicy::Off,
        mfa_methods: false,
    }
}

async fn o3_scale_data_practices_and_users_sign_in_and_a_second_run_is_refused(db: Db) {
    let app = TestApp::spawn(db).await;
    // 150 practices: two batches, the second one partial.
    let done = app.store.seed_scale(&spec("load", 150, 7)).await.unwrap();
    assert_eq!((done.tenants, done.users), (150, 1050));
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) AS n FROM tenants WHERE company LIKE 'load-%'"
        )
        .await,
        150
    );
    assert_eq!(
        count(&app, "SELECT COUNT(*) AS n FROM users u JOIN tenants t ON t.id = u.tenant_id WHERE t.company LIKE 'load-%'").await,
        1050
    );
    // The last user of the last practice signs in with the one password; the first user
    // of a practice is its admin and lists its users (tenant-scoped like any other).
    let flow = ok_json(app.login("load-00150", "user-0006", PASSWORD).await).await;
    assert_eq!(flow["status"], "authenticated", "{flow}");
    let admin = app.token("load-00001", "user-0000", PASSWORD).await;
    let users = ok_json(
        app.get("/v1/tenants/load-00001/users?limit=100", Some(&admin))
            .await,
    )
    .await;
    assert_eq!(users["items"].as_array().unwrap().len(), 7, "{users}");
    assert!(users["items"].as_array().unwrap().iter().all(|u| {
        u["email"]
            .as_str()
            .unwrap()
            .ends_with("@load-00001.example.com")
    }));
    let r = app.get("/v1/tenants/load-00002/users", Some(&admin)).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // Each practice's audit chain is intact (empty).
    let v = ok_json(
        app.get("/v1/tenants/load-00001/audit-events/verify", Some(&admin))
            .await,
    )
    .await;
    assert_eq!(v["ok"], true, "{v}");

    // A second run with the same prefix writes nothing; bad sizes and prefixes are refused.
    let again = app.store.seed_scale(&spec("load", 2, 1)).await;
    assert!(format!("{:?}", again.unwrap_err()).contains("load-00001"));
    for bad in [
        spec("other", 0, 1),
        spec("other", 1, 0),
        spec("Not A Prefix", 1, 1),
        spec("other", 100_001, 1),
    ] {
        assert!(app.store.seed_scale(&bad).await.is_err(), "{bad:?}");
    }
    assert_eq!(
        count(&app, "SELECT COUNT(*) AS n FROM tenants WHERE company LIKE 'load-%' OR company LIKE 'other-%'").await,
        150
    );
}

#[test]
fn o3_seed_scale_command_writes_the_data_once_and_needs_a_password() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = gatehouse(dir.path());
    c.env("GATEHOUSE_DATABASE_URL", sqlite_url(dir.path()))
        .env("GATEHOUSE_SCALE_PASSWORD", PASSWORD)
        .args([
            "seed-scale",
            "--tenants",
            "3",
            "--users-per-tenant",
            "4",
            "--prefix",
            "bench",
        ]);
    let out = run(c, Duration::from_secs(60));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(
        said.contains("wrote 3 practices (bench-00001 to bench-00003) and 12 users"),
        "{said}"
    );
    assert!(!said.contains(PASSWORD) && !text(&out.stderr).contains(PASSWORD));
    // Again: refused, naming the taken company id, exit non-zero.
    let mut c = gatehouse(dir.path());
    c.env("GATEHOUSE_DATABASE_URL", sqlite_url(dir.path()))
        .env("GATEHOUSE_SCALE_PASSWORD", PASSWORD)
        .args(["seed-scale", "--tenants", "3", "--prefix", "bench"]);
    let out = run(c, Duration::from_secs(60));
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("bench-00001"),
        "{}",
        text(&out.stderr)
    );
    // No password, no run.
    let mut c = gatehouse(dir.path());
    c.env("GATEHOUSE_DATABASE_URL", sqlite_url(dir.path()))
        .args(["seed-scale", "--tenants", "1", "--prefix", "none"]);
    let out = run(c, Duration::from_secs(60));
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("--password"),
        "{}",
        text(&out.stderr)
    );
}

/// With `mfa_methods`, users sign in with the second factor the load tests expect of
/// them: a code to their verified email or phone, or an authenticator enrollment.
async fn o3_scale_users_with_methods_get_codes_by_email_and_sms_or_enroll(db: Db) {
    use gatehouse_store::scale::{scale_email, scale_method, scale_phone};
    let app = TestApp::spawn(db).await;
    let mut s = spec("meth", 3, 4);
    s.mfa_policy = MfaPolicy::Require;
    s.mfa_methods = true;
    app.store.seed_scale(&s).await.unwrap();
    let method = |u| scale_method(u).as_str();
    assert_eq!(
        (method(0), method(1), method(2), method(3)),
        ("email", "email", "sms", "none")
    );
    // Every phone is distinct and a valid E.164 number, up to the largest sizes.
    let phones: std::collections::BTreeSet<String> = [1, 2, 99_999, 100_000]
        .into_iter()
        .flat_map(|n| [0, 1, 998, 999].map(move |u| scale_phone(n, u)))
        .collect();
    assert_eq!(phones.len(), 16);
    for p in &phones {
        let parsed = gatehouse_domain::ids::PhoneE164::parse(p).unwrap();
        assert_eq!(parsed.as_str(), p);
    }

    let mark = app.outbox_mark();
    let flow = ok_json(app.login("meth-00003", "user-0001", PASSWORD).await).await;
    assert_eq!(flow["status"], "mfa_required", "{flow}");
    assert_eq!(flow["mfa"]["code_sent"]["channel"], "email", "{flow}");
    app.code_after(mark, &scale_email("meth-00003", 1)).await;

    let mark = app.outbox_mark();
    let flow = ok_json(app.login("meth-00003", "user-0002", PASSWORD).await).await;
    assert_eq!(flow["mfa"]["code_sent"]["channel"], "sms", "{flow}");
    app.code_after(mark, &scale_phone(3, 2)).await;

    let flow = ok_json(app.login("meth-00002", "user-0003", PASSWORD).await).await;
    assert_eq!(flow["status"], "mfa_enrollment_required", "{flow}");
    let admin_email = scale_email("meth-00002", 0);
    let mark = app.outbox_mark();
    let flow = ok_json(app.login("meth-00002", "user-0000", PASSWORD).await).await;
    let admin = app.finish_mfa(&flow, &admin_email, mark).await;
    let user = ok_json(
        app.get("/v1/tenants/meth-00002/users?q=user-0002", Some(&admin))
            .await,
    )
    .await;
    let u = &user["items"][0];
    assert_eq!(u["phone"], scale_phone(2, 2), "{u}");
    assert_eq!(
        (u["email_verified"].as_bool(), u["phone_verified"].as_bool()),
        (Some(true), Some(true))
    );
}
