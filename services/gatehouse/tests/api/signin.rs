//! Password sign-in, forced password change, sessions (P1-P4, T3).

use crate::helpers::{Db, NEW_PASSWORD, Options, TestApp, problem};
use gatehouse_testkit::on_both_databases;
use reqwest::StatusCode;
use serde_json::{Value, json};

on_both_databases!(
    p3_temporary_password_forces_change_then_session_me_and_logout,
    p4_unknown_company_unknown_user_and_wrong_password_answer_identically,
    p4_lockout_at_threshold_refuses_even_the_right_password,
    p4_per_ip_attempt_limit_answers_429_with_retry_after,
    p4_successful_sign_ins_from_one_address_are_not_limited,
    t3_inactive_user_and_suspended_tenant_are_refused_after_the_right_password,
    p1_outdated_hash_is_rehashed_on_successful_sign_in,
);

async fn p3_temporary_password_forces_change_then_session_me_and_logout(db: Db) {
    let app = TestApp::spawn(db).await;
    let support = app.support_token().await;
    let (admin, temp) = app.provision(&support, "north-clinic").await;
    // This test is about the password step; the MFA steps after it are in mfa_flow.
    app.set_mfa_policy("north-clinic", "off").await;

    let r = app.login("north-clinic", &admin, &temp).await;
    assert_eq!(r.status(), StatusCode::OK);
    let flow: Value = r.json().await.unwrap();
    assert_eq!(flow["status"], "password_change_required");
    assert!(
        flow.get("session").is_none(),
        "no session before the change: {flow}"
    );
    let id = flow["flow_id"].as_str().unwrap();

    // Every broken rule is listed by name, all at once.
    let r = app
        .post(
            &format!("/v1/auth/flows/{id}/password"),
            None,
            &json!({"new_password": "short"}),
        )
        .await;
    let body = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "password_policy").await;
    let rules: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["rule"].as_str())
        .collect();
    assert_eq!(
        rules,
        [
            "min_length",
            "require_upper",
            "require_digit",
            "require_special"
        ]
    );

    // Reusing the temporary password is refused too.
    let r = app
        .post(
            &format!("/v1/auth/flows/{id}/password"),
            None,
            &json!({"new_password": temp}),
        )
        .await;
    let body = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "password_policy").await;
    assert_eq!(body["errors"][0]["rule"], "reused");

    let r = app
        .post(
            &format!("/v1/auth/flows/{id}/password"),
            None,
            &json!({"new_password": NEW_PASSWORD}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let flow: Value = r.json().await.unwrap();
    assert_eq!(flow["status"], "authenticated");
    let token = flow["session"]["token"].as_str().unwrap().to_owned();
    assert!(token.len() >= 43, "256-bit token");

    // The finished flow cannot mint another session.
    let r = app
        .post(
            &format!("/v1/auth/flows/{id}/password"),
            None,
            &json!({"new_password": "Another-Pass-55!x"}),
        )
        .await;
    problem(r, StatusCode::GONE, "flow_expired").await;

    let r = app.get("/v1/auth/session", Some(&token)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let s: Value = r.json().await.unwrap();
    assert_eq!(s["user"]["username"], admin);
    assert_eq!(s["user"]["must_change_password"], false);
    assert_eq!(s["tenant"]["company"], "north-clinic");

    let r = app.get("/v1/me", Some(&token)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let me: Value = r.json().await.unwrap();
    assert_eq!(me["role"], "practice_admin");
    assert!(me["last_login_at"].is_string());

    // The old (temporary) password no longer works; the new one does.
    let r = app.login("north-clinic", &admin, &temp).await;
    problem(r, StatusCode::UNAUTHORIZED, "invalid_credentials").await;

    let r = app.post("/v1/auth/logout", Some(&token), &json!({})).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = app.get("/v1/auth/session", Some(&token)).await;
    problem(r, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let r = app.get("/v1/me", Some(&token)).await;
    problem(r, StatusCode::UNAUTHORIZED, "unauthenticated").await;

    // Only the token's hash is stored.
    let rows = app
        .raw
        .query_all_raw(sea_orm::Statement::from_string(
            app.raw.get_database_backend(),
            "SELECT token_hash FROM sessions",
        ))
        .await
        .unwrap();
    assert!(!rows.is_empty());
    for row in rows {
        let h: String = row.try_get("", "token_hash").unwrap();
        assert_ne!(h, token);
        assert_eq!(h.len(), 64);
    }
}

use sea_orm::ConnectionTrait;

async fn p4_unknown_company_unknown_user_and_wrong_password_answer_identically(db: Db) {
    let app = TestApp::spawn(db).await;
    app.practice("east-clinic").await;
    let mut bodies = Vec::new();
    for (company, user, pw) in [
        ("no-such-clinic", "east-clinic-admin", NEW_PASSWORD),
        ("east-clinic", "nobody", NEW_PASSWORD),
        ("east-clinic", "east-clinic-admin", "Wrong-Password-123!"),
        ("Not A Company!", "x", "y"),
    ] {
        let r = app.login(company, user, pw).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let headers = r.headers().clone();
        assert_eq!(headers["content-type"], "application/problem+json");
        bodies.push(r.bytes().await.unwrap());
    }
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "bodies differ: {bodies:?}"
    );
}

async fn p4_lockout_at_threshold_refuses_even_the_right_password(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.practice("west-clinic").await;
    let r = app
        .patch(
            "/v1/tenants/west-clinic/settings",
            Some(&admin),
            &json!({"lockout_threshold": 3}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    app.staff("west-clinic", &admin, "jdoe").await;

    for _ in 0..3 {
        let r = app
            .login("west-clinic", "jdoe", "Wrong-Password-123!")
            .await;
        problem(r, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    }
    let r = app.login("west-clinic", "jdoe", NEW_PASSWORD).await;
    problem(r, StatusCode::LOCKED, "account_locked").await;

    let r = app
        .get("/v1/tenants/west-clinic/users/jdoe", Some(&admin))
        .await;
    let u: Value = r.json().await.unwrap();
    assert_eq!(u["locked"], true);

    let r = app
        .get(
            "/v1/tenants/west-clinic/audit-events?action=user.locked",
            Some(&admin),
        )
        .await;
    let events: Value = r.json().await.unwrap();
    assert_eq!(events["items"].as_array().unwrap().len(), 1, "{events}");
    assert_eq!(events["items"][0]["target"]["label"], "jdoe");
    let r = app
        .get(
            "/v1/tenants/west-clinic/audit-events?action=signin.failed",
            Some(&admin),
        )
        .await;
    let events: Value = r.json().await.unwrap();
    assert_eq!(events["items"].as_array().unwrap().len(), 3);
    // Audit details never hold the attempted password.
    assert!(!events.to_string().contains("Wrong-Password-123!"));
}

async fn p4_per_ip_attempt_limit_answers_429_with_retry_after(db: Db) {
    let app = TestApp::spawn_with(
        db,
        Options {
            login_rate_per_ip_per_minute: 3,
            ..Options::default()
        },
    )
    .await;
    for _ in 0..3 {
        let r = app.login("nowhere", "nobody", "x").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let r = app.login("nowhere", "nobody", "x").await;
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    problem(r, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;

    // Even the right password is refused while the address is over its limit.
    let r = app.login("nowhere", "nobody", "x").await;
    problem(r, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;

    // A client behind our trusted proxy (127.0.0.1) is counted by its own address.
    let r = app
        .client
        .post(app.url("/v1/auth/login"))
        .header("x-forwarded-for", "203.0.113.7")
        .json(&json!({"company": "nowhere", "username": "nobody", "password": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

async fn p4_successful_sign_ins_from_one_address_are_not_limited(db: Db) {
    // A clinic's front desk: many staff, one public address, all signing in at opening time.
    let app = TestApp::spawn_with(
        db,
        Options {
            login_rate_per_ip_per_minute: 3,
            ..Options::default()
        },
    )
    .await;
    let admin = app.practice("busy-clinic").await;
    app.staff("busy-clinic", &admin, "frontdesk").await;
    for _ in 0..8 {
        app.token("busy-clinic", "frontdesk", NEW_PASSWORD).await;
    }
    // Failures still count: the third reaches the limit, then the address waits.
    for _ in 0..3 {
        let r = app
            .login("busy-clinic", "frontdesk", "Wrong-Password-123!")
            .await;
        problem(r, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    }
    let r = app.login("busy-clinic", "frontdesk", NEW_PASSWORD).await;
    problem(r, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
}

async fn t3_inactive_user_and_suspended_tenant_are_refused_after_the_right_password(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.practice("south-clinic").await;
    let staff_token = app.staff("south-clinic", &admin, "mary").await;

    app.exec("UPDATE users SET active = FALSE WHERE username_lower = 'mary'")
        .await;
    let r = app
        .login("south-clinic", "mary", "Wrong-Password-123!")
        .await;
    problem(r, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let r = app.login("south-clinic", "mary", NEW_PASSWORD).await;
    problem(r, StatusCode::FORBIDDEN, "account_inactive").await;
    assert!(!staff_token.is_empty());

    app.exec("UPDATE tenants SET status = 'suspended' WHERE company = 'south-clinic'")
        .await;
    let r = app
        .login("south-clinic", "south-clinic-admin", "Wrong-Password-123!")
        .await;
    problem(r, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let r = app
        .login("south-clinic", "south-clinic-admin", NEW_PASSWORD)
        .await;
    problem(r, StatusCode::FORBIDDEN, "tenant_suspended").await;
}

async fn p1_outdated_hash_is_rehashed_on_successful_sign_in(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.practice("hash-clinic").await;
    app.staff("hash-clinic", &admin, "oldhash").await;
    // A hash made with weaker, older parameters (t=1, 8 MiB).
    let weak = {
        use argon2::password_hash::{PasswordHasher, SaltString};
        let params = argon2::Params::new(8192, 1, 1, None).unwrap();
        let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        a.hash_password(NEW_PASSWORD.as_bytes(), &salt)
            .unwrap()
            .to_string()
    };
    app.exec(&format!(
        "UPDATE users SET password_hash = '{weak}' WHERE username_lower = 'oldhash'"
    ))
    .await;
    app.token("hash-clinic", "oldhash", NEW_PASSWORD).await;
    let row = app
        .raw
        .query_one_raw(sea_orm::Statement::from_string(
            app.raw.get_database_backend(),
            "SELECT password_hash FROM users WHERE username_lower = 'oldhash'",
        ))
        .await
        .unwrap()
        .unwrap();
    let h: String = row.try_get("", "password_hash").unwrap();
    assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
    // And it still verifies.
    app.token("hash-clinic", "oldhash", NEW_PASSWORD).await;
}
