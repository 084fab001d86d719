//! Operator accounts (S4): no single support account satisfies the two-person rule alone.
//! A new operator account, or a support role given to an account, stays inactive and
//! `pending_approval` until a *different* support admin approves it after step-up.

// A test fails by panicking: unwrap and expect are its assertions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::helpers::{
    Db, NEW_PASSWORD, Options, SUPPORT_PASSWORD, SUPPORT_USER, TestApp, ok_json, problem,
};
use chrono::{Duration, TimeZone, Utc};
use gatehouse_domain::clock::FixedClock;
use gatehouse_testkit::on_both_databases;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;

on_both_databases!(
    s4_a_new_support_admin_is_pending_until_a_different_support_admin_approves_it,
    s4_approving_needs_step_up,
    s4_promoting_an_agent_to_support_admin_suspends_it_until_approved,
    s4_one_support_admin_alone_cannot_get_an_escalation_approved_by_a_second_account,
    s4_the_deployments_own_operator_approves_the_second_support_admin_on_the_server,
);

const TEMP: &str = "Temporary-Pass-1234!";
const SECOND: &str = "second.admin";

fn user_path(username: &str) -> String {
    format!("/v1/tenants/operator/users/{username}")
}

/// `root` creates an operator account; answers the 201 body.
async fn create(app: &TestApp, root: &str, username: &str, role: &str) -> Value {
    let r = app
        .post(
            "/v1/tenants/operator/users",
            Some(root),
            &json!({"username": username, "first_name": "Sam", "last_name": "Support",
                    "email": format!("{username}@operator.example.com"),
                    "role": role, "password": TEMP}),
        )
        .await;
    let status = r.status();
    let body = r.text().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// A second support admin, approved long ago by someone else: root creates it (pending)
/// and the fixture sets the row as an approval leaves it. Answers a fresh session, so its
/// step-up is current; later calls sign in again.
pub(crate) async fn second_admin(app: &TestApp, root: &str) -> String {
    let known = app.get(&user_path(SECOND), Some(root)).await.status() == StatusCode::OK;
    if !known {
        create(app, root, SECOND, "support_admin").await;
        app.exec(
            "UPDATE users SET active = TRUE, pending_approval = FALSE, \
             approval_requested_by = NULL WHERE username_lower = 'second.admin'",
        )
        .await;
        return app
            .finish_password_change("operator", SECOND, TEMP, NEW_PASSWORD)
            .await;
    }
    let mark = app.outbox_mark();
    let flow = ok_json(app.login("operator", SECOND, NEW_PASSWORD).await).await;
    app.finish_mfa(&flow, "second.admin@operator.example.com", mark)
        .await
}

/// `root` creates an operator account and a second support admin approves it; answers
/// the account's session after its password change and MFA enrollment.
pub(crate) async fn approved_operator(
    app: &TestApp,
    root: &str,
    username: &str,
    role: &str,
) -> (String, String) {
    let user = create(app, root, username, role).await;
    let id = user["id"].as_str().unwrap().to_owned();
    let second = second_admin(app, root).await;
    let approved = ok_json(
        app.post(
            &format!("{}/approve", user_path(&id)),
            Some(&second),
            &json!({}),
        )
        .await,
    )
    .await;
    assert_eq!(approved["active"], true, "{approved}");
    let token = app
        .finish_password_change("operator", username, TEMP, NEW_PASSWORD)
        .await;
    (token, id)
}

/// The operator log's events with this action about `target`, newest first.
async fn events_about(app: &TestApp, token: &str, action: &str, target: &str) -> Vec<Value> {
    let page = ok_json(
        app.get(
            &format!("/v1/tenants/operator/audit-events?action={action}&limit=500"),
            Some(token),
        )
        .await,
    )
    .await;
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["target"]["id"] == target)
        .cloned()
        .collect()
}

async fn user(app: &TestApp, token: &str, username: &str) -> Value {
    ok_json(app.get(&user_path(username), Some(token)).await).await
}

async fn s4_a_new_support_admin_is_pending_until_a_different_support_admin_approves_it(db: Db) {
    let app = TestApp::spawn(db).await;
    let root = app.support_token().await;
    let root_id = ok_json(app.get("/v1/me", Some(&root)).await).await["id"].clone();

    // Created by one admin: inactive and pending, so it cannot sign in.
    let new = create(&app, &root, "admin.two", "support_admin").await;
    let id = new["id"].as_str().unwrap().to_owned();
    assert_eq!(new["active"], false, "{new}");
    assert_eq!(new["pending_approval"], true, "{new}");
    assert_eq!(new["role"], "support_admin");
    let seen = user(&app, &root, "admin.two").await;
    assert_eq!(
        (seen["active"].clone(), seen["pending_approval"].clone()),
        (json!(false), json!(true))
    );
    let r = app.login("operator", "admin.two", TEMP).await;
    problem(r, StatusCode::FORBIDDEN, "account_inactive").await;

    // Its creator cannot approve it, even with a fresh second factor; nothing changes.
    let approve = format!("{}/approve", user_path(&id));
    let r = app.post(&approve, Some(&root), &json!({})).await;
    problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    let seen = user(&app, &root, "admin.two").await;
    assert_eq!(
        (seen["active"].clone(), seen["pending_approval"].clone()),
        (json!(false), json!(true))
    );
    // Nor can it switch the account on by the back door of `active`.
    let r = app
        .patch(
            &user_path("admin.two"),
            Some(&root),
            &json!({"active": true}),
        )
        .await;
    problem(r, StatusCode::CONFLICT, "conflict").await;
    assert_eq!(user(&app, &root, "admin.two").await["active"], false);
    assert!(
        events_about(&app, &root, "user.approved", &id)
            .await
            .is_empty()
    );

    // A different support admin approves it: active, and it signs in.
    let second = second_admin(&app, &root).await;
    let second_id = ok_json(app.get("/v1/me", Some(&second)).await).await["id"].clone();
    let approved = ok_json(app.post(&approve, Some(&second), &json!({})).await).await;
    assert_eq!(approved["id"], id.as_str());
    assert_eq!(approved["active"], true, "{approved}");
    assert_eq!(approved["pending_approval"], false, "{approved}");
    assert_eq!(approved["role"], "support_admin");
    let two = app
        .finish_password_change("operator", "admin.two", TEMP, NEW_PASSWORD)
        .await;
    let me = ok_json(app.get("/v1/me", Some(&two)).await).await;
    assert_eq!(
        (me["role"].clone(), me["active"].clone()),
        (json!("support_admin"), json!(true))
    );
    // Approving again is not a second approval.
    let r = app.post(&approve, Some(&second), &json!({})).await;
    problem(r, StatusCode::CONFLICT, "conflict").await;

    // Both steps in the operator's log, each with its own actor.
    let created = events_about(&app, &root, "user.created", &id).await;
    assert_eq!(created.len(), 1, "{created:?}");
    assert_eq!(created[0]["actor"]["id"], root_id);
    assert_eq!(created[0]["details"]["pending_approval"], true);
    let approvals = events_about(&app, &root, "user.approved", &id).await;
    assert_eq!(approvals.len(), 1, "{approvals:?}");
    assert_eq!(approvals[0]["actor"]["id"], second_id);
    assert_eq!(approvals[0]["actor"]["kind"], "support");
    assert_eq!(approvals[0]["details"]["requested_by"], root_id);
    assert_eq!(approvals[0]["details"]["role"], "support_admin");
    let v = ok_json(
        app.get("/v1/tenants/operator/audit-events/verify", Some(&root))
            .await,
    )
    .await;
    assert_eq!(v["ok"], true);
}

async fn s4_approving_needs_step_up(db: Db) {
    let clock = Arc::new(FixedClock::new(
        Utc.with_ymd_and_hms(2026, 11, 24, 9, 0, 0).unwrap(),
    ));
    let app = TestApp::spawn_with(
        db,
        Options {
            clock: Some(clock.clone()),
            ..Options::default()
        },
    )
    .await;
    let root = app.support_token().await;
    let second = second_admin(&app, &root).await;
    let agent = create(&app, &root, "agent.kay", "support_agent").await;
    assert_eq!(agent["pending_approval"], true, "{agent}");
    let approve = format!("{}/approve", user_path(agent["id"].as_str().unwrap()));

    // 16 minutes after the second admin's code: step-up first, and nothing changes.
    clock.advance(Duration::minutes(16));
    let r = app.post(&approve, Some(&second), &json!({})).await;
    problem(r, StatusCode::FORBIDDEN, "step_up_required").await;
    let seen = user(&app, &root, "agent.kay").await;
    assert_eq!(
        (seen["active"].clone(), seen["pending_approval"].clone()),
        (json!(false), json!(true))
    );

    // A fresh code: the approval goes through.
    let second = second_admin(&app, &root).await;
    let approved = ok_json(app.post(&approve, Some(&second), &json!({})).await).await;
    assert_eq!(
        (
            approved["active"].clone(),
            approved["pending_approval"].clone()
        ),
        (json!(true), json!(false))
    );
    let token = app
        .finish_password_change("operator", "agent.kay", TEMP, NEW_PASSWORD)
        .await;
    assert_eq!(
        ok_json(app.get("/v1/me", Some(&token)).await).await["role"],
        "support_agent"
    );
}

async fn s4_promoting_an_agent_to_support_admin_suspends_it_until_approved(db: Db) {
    let app = TestApp::spawn(db).await;
    let root = app.support_token().await;
    let root_id = ok_json(app.get("/v1/me", Some(&root)).await).await["id"].clone();
    let (agent, agent_id) = approved_operator(&app, &root, "agent.pat", "support_agent").await;
    assert_eq!(
        ok_json(app.get("/v1/me", Some(&agent)).await).await["active"],
        true
    );

    // Root promotes the agent: the role is set but sleeps until someone else approves it;
    // the agent's session ends and the new role grants nothing meanwhile.
    let promoted = ok_json(
        app.patch(
            &user_path("agent.pat"),
            Some(&root),
            &json!({"role": "support_admin"}),
        )
        .await,
    )
    .await;
    assert_eq!(promoted["role"], "support_admin");
    assert_eq!(promoted["active"], false, "{promoted}");
    assert_eq!(promoted["pending_approval"], true, "{promoted}");
    let r = app.get("/v1/me", Some(&agent)).await;
    problem(r, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let r = app.login("operator", "agent.pat", NEW_PASSWORD).await;
    problem(r, StatusCode::FORBIDDEN, "account_inactive").await;
    let updated = events_about(&app, &root, "user.updated", &agent_id).await;
    assert_eq!(updated[0]["actor"]["id"], root_id);
    assert_eq!(
        updated[0]["details"]["pending_approval"], true,
        "{updated:?}"
    );

    // The promoter cannot approve; the second admin can, and the account is back.
    let approve = format!("{}/approve", user_path(&agent_id));
    let r = app.post(&approve, Some(&root), &json!({})).await;
    problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    assert_eq!(user(&app, &root, "agent.pat").await["active"], false);
    let second = second_admin(&app, &root).await;
    let approved = ok_json(app.post(&approve, Some(&second), &json!({})).await).await;
    assert_eq!(
        (
            approved["active"].clone(),
            approved["pending_approval"].clone()
        ),
        (json!(true), json!(false))
    );
    assert_eq!(approved["role"], "support_admin");
    let mark = app.outbox_mark();
    let flow = ok_json(app.login("operator", "agent.pat", NEW_PASSWORD).await).await;
    let pat = app
        .finish_mfa(&flow, "agent.pat@operator.example.com", mark)
        .await;
    assert_eq!(
        ok_json(app.get("/v1/me", Some(&pat)).await).await["role"],
        "support_admin"
    );

    // Back to agent takes nothing away from anyone else: no approval needed.
    let demoted = ok_json(
        app.patch(
            &user_path("agent.pat"),
            Some(&root),
            &json!({"role": "support_agent"}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (
            demoted["active"].clone(),
            demoted["pending_approval"].clone()
        ),
        (json!(true), json!(false))
    );
}

/// The attack of finding 5: one support admin alone opens an escalation for a practice
/// whose sole admin is locked out, makes itself a second support admin (new or copied)
/// and approves with it. Every way to the second account ends at an inactive account.
async fn s4_one_support_admin_alone_cannot_get_an_escalation_approved_by_a_second_account(db: Db) {
    let app = TestApp::spawn(db).await;
    app.practice("lone-clinic").await;
    let root = app.support_token().await;
    let e: Value = {
        let r = app
            .post(
                "/v1/escalations",
                Some(&root),
                &json!({"company": "lone-clinic", "user_id": "lone-clinic-admin",
                        "action": "reset_password", "reason": "Says they forgot it.",
                        "ticket": "SUP-6666"}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        r.json().await.unwrap()
    };
    let approve_e = format!("/v1/escalations/{}/approve", e["id"].as_str().unwrap());
    // Root cannot approve its own request (two-person rule).
    let r = app.post(&approve_e, Some(&root), &json!({})).await;
    problem(r, StatusCode::FORBIDDEN, "forbidden").await;

    // A second support admin of its own making cannot sign in...
    let accomplice = create(&app, &root, "accomplice", "support_admin").await;
    assert_eq!(accomplice["active"], false, "{accomplice}");
    let r = app.login("operator", "accomplice", TEMP).await;
    problem(r, StatusCode::FORBIDDEN, "account_inactive").await;
    // ...nor a copy of root itself...
    let r = app
        .post(
            &format!("{}/copy", user_path(SUPPORT_USER)),
            Some(&root),
            &json!({"username": "root.copy", "first_name": "Root", "last_name": "Copy",
                    "email": "root.copy@operator.example.com", "password": TEMP}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let copy: Value = r.json().await.unwrap();
    assert_eq!(
        (copy["active"].clone(), copy["pending_approval"].clone()),
        (json!(false), json!(true))
    );
    assert_eq!(copy["role"], "support_admin");
    let r = app.login("operator", "root.copy", TEMP).await;
    problem(r, StatusCode::FORBIDDEN, "account_inactive").await;
    // ...and root cannot approve or reactivate either of them.
    for (who, id) in [
        ("accomplice", &accomplice["id"]),
        ("root.copy", &copy["id"]),
    ] {
        let r = app
            .post(
                &format!("{}/approve", user_path(id.as_str().unwrap())),
                Some(&root),
                &json!({}),
            )
            .await;
        problem(r, StatusCode::FORBIDDEN, "forbidden").await;
        let r = app
            .patch(&user_path(who), Some(&root), &json!({"active": true}))
            .await;
        problem(r, StatusCode::CONFLICT, "conflict").await;
        assert_eq!(user(&app, &root, who).await["active"], false);
    }
    // Root's own password still works: the refusals above are not about the password.
    assert_eq!(
        app.login("operator", SUPPORT_USER, SUPPORT_PASSWORD)
            .await
            .status(),
        StatusCode::OK
    );

    // The escalation is still pending: nobody but root was ever involved.
    let now = ok_json(
        app.get(
            &format!("/v1/escalations/{}", e["id"].as_str().unwrap()),
            Some(&root),
        )
        .await,
    )
    .await;
    assert_eq!(now["status"], "pending");
    assert!(now["decided_by"].is_null());
}

/// Bootstrap makes one support admin, and one support admin cannot approve an account they
/// created: the second one is approved on the server, by whoever runs the deployment.
async fn s4_the_deployments_own_operator_approves_the_second_support_admin_on_the_server(db: Db) {
    let app = TestApp::spawn(db).await;
    let root = app.support_token().await;
    let new = create(&app, &root, "admin.two", "support_admin").await;
    let id = new["id"].as_str().unwrap().to_owned();
    let approve = |username: &str| {
        let dir = tempfile::tempdir().unwrap();
        let mut c = crate::cli::gatehouse(dir.path());
        c.env("GATEHOUSE_DATABASE_URL", &app.db_url)
            .env("GATEHOUSE_SECRET_KEY", app.keyring.current().to_base64())
            .args(["approve-operator", "--username", username]);
        crate::cli::run(c, std::time::Duration::from_secs(30))
    };
    let out = approve("admin.two");
    assert!(
        out.status.success(),
        "{}\n{}",
        crate::cli::text(&out.stdout),
        crate::cli::text(&out.stderr)
    );
    assert!(crate::cli::text(&out.stdout).contains("admin.two"));
    let seen = user(&app, &root, "admin.two").await;
    assert_eq!(
        (seen["active"].clone(), seen["pending_approval"].clone()),
        (json!(true), json!(false))
    );
    let approved = events_about(&app, &root, "user.approved", &id).await;
    assert_eq!(approved.len(), 1);
    assert_eq!(approved[0]["actor"]["kind"], "system");
    assert_eq!(approved[0]["details"]["via"], "server");
    // It signs in (and, the operator tenant requiring MFA, enrolls).
    let r = app.login("operator", "admin.two", TEMP).await;
    assert_eq!(r.status(), StatusCode::OK);
    // Nothing waits any more: a second run changes nothing and says so.
    let out = approve("admin.two");
    assert!(!out.status.success());
    assert_eq!(
        events_about(&app, &root, "user.approved", &id).await.len(),
        1
    );
    // An unknown account is refused too.
    assert!(!approve("nobody.here").status.success());
}
