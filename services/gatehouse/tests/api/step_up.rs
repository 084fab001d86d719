//! Step-up (M11) as an attacker with a session but no second factor in it tries to get
//! around it: a session from a trusted network, an admin who removes their own factor,
//! a password where a second factor exists. Every action api.md lists asks for it.

use crate::helpers::{Db, NEW_PASSWORD, TestApp, ok_json, problem};
use crate::mfa_flow::{actions, create_staff, email_of};
use gatehouse_testkit::on_both_databases;
use reqwest::StatusCode;
use serde_json::{Value, json};

on_both_databases!(
    m11_a_session_without_a_second_factor_is_asked_for_one_by_every_sensitive_action,
    m11_removing_ones_own_factor_does_not_remove_the_step_up,
    m11_the_password_steps_up_only_where_the_policy_is_off_and_counts_when_wrong,
);

/// A session of the practice admin from a trusted network: signed in without a code.
async fn trusted_network_session(app: &TestApp, company: &str, admin: &str) -> String {
    let r = app
        .post(
            &format!("/v1/tenants/{company}/trusted-networks"),
            Some(admin),
            &json!({"cidr": "198.51.100.0/24", "description": "front desk"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = app
        .client
        .post(app.url("/v1/auth/login"))
        .header("x-forwarded-for", "198.51.100.20")
        .json(
            &json!({"company": company, "username": format!("{company}-admin"),
                      "password": NEW_PASSWORD}),
        )
        .send()
        .await
        .unwrap();
    let flow = ok_json(r).await;
    assert_eq!(flow["status"], "authenticated", "{flow}");
    let token = flow["session"]["token"].as_str().unwrap().to_owned();
    let session = ok_json(app.get("/v1/auth/session", Some(&token)).await).await;
    assert!(session["mfa_verified_at"].is_null(), "{session}");
    token
}

async fn m11_a_session_without_a_second_factor_is_asked_for_one_by_every_sensitive_action(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.mfa_practice("gate-clinic").await;
    create_staff(&app, "gate-clinic", &admin, "sam", None).await;
    let weak = trusted_network_session(&app, "gate-clinic", &admin).await;
    let me = ok_json(app.get("/v1/me", Some(&weak)).await).await;
    let me_id = me["id"].as_str().unwrap();

    let base = "/v1/tenants/gate-clinic";
    let attempts: Vec<(&str, String, Value)> = vec![
        ("POST", format!("{base}/users/sam/unlock"), json!({})),
        (
            "POST",
            format!("{base}/users/sam/password"),
            json!({"temporary_password": "Temporary-Pass-5678!"}),
        ),
        (
            "PUT",
            format!("{base}/users/sam/mfa"),
            json!({"method": "email", "enrollment": "prompt"}),
        ),
        ("DELETE", format!("{base}/users/sam/mfa"), json!({})),
        (
            "PATCH",
            format!("{base}/users/sam"),
            json!({"role": "practice_admin"}),
        ),
        (
            "POST",
            format!("{base}/users"),
            json!({"username": "mallory", "first_name": "Mal", "last_name": "Lory",
                   "role": "practice_admin", "password": "Temporary-Pass-1234!"}),
        ),
        (
            "POST",
            format!("{base}/users/{me_id}/copy"),
            json!({"username": "sam2", "first_name": "Sam", "last_name": "Two",
                   "password": "Temporary-Pass-1234!"}),
        ),
        (
            "PATCH",
            format!("{base}/users/{me_id}"),
            json!({"email": "attacker@evil.example.com"}),
        ),
        (
            "POST",
            format!("{base}/trusted-networks"),
            json!({"cidr": "203.0.113.0/24"}),
        ),
        (
            "PATCH",
            format!("{base}/settings"),
            json!({"mfa_policy": "off"}),
        ),
        (
            "PATCH",
            format!("{base}/settings"),
            json!({"lockout_threshold": 100}),
        ),
        (
            "PATCH",
            format!("{base}/settings"),
            json!({"allowed_methods": ["email"]}),
        ),
        (
            "PATCH",
            format!("{base}/settings"),
            json!({"remember_device_hours": 720}),
        ),
        (
            "PATCH",
            format!("{base}/settings"),
            json!({"password_policy": {"min_length": 8}}),
        ),
    ];
    let before = actions(&app, "gate-clinic", &admin).await.len();
    for (method, path, body) in &attempts {
        let r = app
            .send_json(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                path,
                Some(&weak),
                body,
            )
            .await;
        let status = r.status();
        let text = r.text().await.unwrap();
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {text}");
        let p: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(p["code"], "step_up_required", "{method} {path}: {text}");
    }
    // Nothing changed: no new audit event but the reads.
    let after = actions(&app, "gate-clinic", &admin).await;
    assert_eq!(
        after
            .iter()
            .take(after.len() - before)
            .filter(|e| e["action"] != "support.read")
            .count(),
        0,
        "{:?}",
        &after[..after.len() - before]
    );
    let sam = ok_json(app.get(&format!("{base}/users/sam"), Some(&admin)).await).await;
    assert_eq!(sam["role"], "staff");
    assert_eq!(
        ok_json(
            app.get(&format!("{base}/users/{me_id}"), Some(&admin))
                .await
        )
        .await["email"],
        "admin@gate-clinic.example.com"
    );

    // What grants nothing needs no step-up: a staff user, a name, a harmless setting.
    let r = app
        .post(
            &format!("{base}/users"),
            Some(&weak),
            &json!({"username": "newbie", "first_name": "New", "last_name": "Bie",
                    "role": "staff", "password": "Temporary-Pass-1234!"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = app
        .patch(
            &format!("{base}/settings"),
            Some(&weak),
            &json!({"code_ttl_seconds": 120}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);

    // With a code proven in the session, the same actions go through.
    let admin_email = email_of("gate-clinic", "admin");
    let mark = app.outbox_mark();
    let r = app
        .post(
            "/v1/me/step-up/code",
            Some(&weak),
            &json!({"channel": "email"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let code = app.code_after(mark, &admin_email).await;
    let r = app
        .post(
            "/v1/me/step-up",
            Some(&weak),
            &json!({"method": "code", "code": code}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = app
        .patch(
            &format!("{base}/users/sam"),
            Some(&weak),
            &json!({"role": "practice_admin"}),
        )
        .await;
    assert_eq!(ok_json(r).await["role"], "practice_admin");
}

async fn m11_removing_ones_own_factor_does_not_remove_the_step_up(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.mfa_practice("strip-clinic").await;
    create_staff(&app, "strip-clinic", &admin, "sam", None).await;
    let weak = trusted_network_session(&app, "strip-clinic", &admin).await;
    let me = ok_json(app.get("/v1/me", Some(&weak)).await).await;
    let me_id = me["id"].as_str().unwrap();
    // The admin's only factor is their email: changing it through the admin path is
    // itself a step-up action, and so is everything after it.
    let r = app
        .patch(
            &format!("/v1/tenants/strip-clinic/users/{me_id}"),
            Some(&weak),
            &json!({"email": "other@strip-clinic.example.com"}),
        )
        .await;
    problem(r, StatusCode::FORBIDDEN, "step_up_required").await;
    // Even with no usable factor left (an admin of another session removed it), the
    // step-up is still due, and the password is no way around it where MFA is required.
    let r = app
        .patch(
            &format!("/v1/tenants/strip-clinic/users/{me_id}"),
            Some(&admin),
            &json!({"email": "other@strip-clinic.example.com"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let me = ok_json(app.get("/v1/me", Some(&weak)).await).await;
    assert_eq!(me["email_verified"], false);
    let r = app
        .post(
            "/v1/tenants/strip-clinic/users",
            Some(&weak),
            &json!({"username": "mallory", "first_name": "Mal", "last_name": "Lory",
                    "role": "practice_admin", "password": "Temporary-Pass-1234!"}),
        )
        .await;
    problem(r, StatusCode::FORBIDDEN, "step_up_required").await;
    let r = app
        .post(
            "/v1/me/step-up",
            Some(&weak),
            &json!({"method": "password", "code": NEW_PASSWORD}),
        )
        .await;
    problem(r, StatusCode::CONFLICT, "method_not_allowed").await;
    let r = app
        .post(
            "/v1/tenants/strip-clinic/users/sam/unlock",
            Some(&weak),
            &json!({}),
        )
        .await;
    problem(r, StatusCode::FORBIDDEN, "step_up_required").await;
}

async fn m11_the_password_steps_up_only_where_the_policy_is_off_and_counts_when_wrong(db: Db) {
    let app = TestApp::spawn(db).await;
    // `practice` is a practice with the policy off whose admin has no second factor.
    let admin = app.practice("off-clinic").await;
    let fresh = app
        .token("off-clinic", "off-clinic-admin", NEW_PASSWORD)
        .await;
    let r = app
        .post(
            "/v1/tenants/off-clinic/users/off-clinic-admin/unlock",
            Some(&fresh),
            &json!({}),
        )
        .await;
    problem(r, StatusCode::FORBIDDEN, "step_up_required").await;
    // A wrong password is counted like a failed sign-in.
    let r = app
        .post(
            "/v1/me/step-up",
            Some(&fresh),
            &json!({"method": "password", "code": "Wrong-Password-000!"}),
        )
        .await;
    problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let events = actions(&app, "off-clinic", &admin).await;
    assert!(
        events.iter().any(|e| e["action"] == "signin.failed"
            && e["details"]["reason"] == "wrong_step_up_password"),
        "{events:?}"
    );
    let r = app
        .post(
            "/v1/me/step-up",
            Some(&fresh),
            &json!({"method": "password", "code": NEW_PASSWORD}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let session = ok_json(app.get("/v1/auth/session", Some(&fresh)).await).await;
    assert!(!session["mfa_verified_at"].is_null());
    let r = app
        .post(
            "/v1/tenants/off-clinic/users",
            Some(&fresh),
            &json!({"username": "second-admin", "first_name": "Sec", "last_name": "Ond",
                    "role": "practice_admin", "password": "Temporary-Pass-1234!"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    // Five wrong step-up passwords lock the user like five wrong sign-ins.
    for _ in 0..4 {
        let r = app
            .post(
                "/v1/me/step-up",
                Some(&fresh),
                &json!({"method": "password", "code": "Wrong-Password-000!"}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
    let r = app
        .login("off-clinic", "off-clinic-admin", NEW_PASSWORD)
        .await;
    problem(r, StatusCode::LOCKED, "account_locked").await;
}
