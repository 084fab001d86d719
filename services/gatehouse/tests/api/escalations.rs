//! Escalations over HTTP (S2): support asks, the practice (or, under the two-person rule,
//! a second support admin) decides, support executes once within the hour; every step in
//! the practice's log and the operator's.

// A test fails by panicking: unwrap and expect are its assertions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::helpers::{
    Db, NEW_PASSWORD, Options, SUPPORT_PASSWORD, SUPPORT_USER, TestApp, error_fields, ok_json,
    problem,
};
use chrono::{Duration, TimeZone, Utc};
use gatehouse_domain::clock::FixedClock;
use gatehouse_testkit::on_both_databases;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;

on_both_databases!(
    s2_a_sole_admin_who_lost_their_phone_signs_in_again_under_the_two_person_rule,
    s2_the_practice_decides_when_it_has_an_admin_and_execution_needs_its_approval,
    s2_approvals_lapse_after_an_hour_and_undecided_requests_expire,
    s2_requests_are_checked_and_other_tenants_see_nothing,
);

const TEMP: &str = "Temporary-Pass-1234!";

/// An operator account made by root and approved by a second support admin (S4).
async fn agent(app: &TestApp, root: &str, username: &str, role: &str) -> String {
    crate::operators::approved_operator(app, root, username, role)
        .await
        .0
}

async fn open(app: &TestApp, token: &str, company: &str, user: &str, action: &str) -> Value {
    let r = app
        .post(
            "/v1/escalations",
            Some(token),
            &json!({"company": company, "user_id": user, "action": action,
                    "reason": "Caller verified by callback to the practice's number on file.",
                    "ticket": "SUP-1042"}),
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap()
    );
    r.json().await.unwrap()
}

/// Waits (up to 10 s) for a notice to `to` after outbox line `mark`.
async fn notice_after(app: &TestApp, mark: usize, to: &str) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let found = app
            .outbox_lines()
            .into_iter()
            .skip(mark)
            .find(|l| l["to"] == to && l["purpose"] == "notice");
        if let Some(line) = found {
            return line;
        }
        assert!(std::time::Instant::now() < deadline, "no notice to {to}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A new session (sessions idle out while a test moves its clock by hours).
async fn sign_in(app: &TestApp, company: &str, user: &str, password: &str, email: &str) -> String {
    let mark = app.outbox_mark();
    let flow = ok_json(app.login(company, user, password).await).await;
    app.finish_mfa(&flow, email, mark).await
}

fn path(e: &Value, step: &str) -> String {
    format!("/v1/escalations/{}/{step}", e["id"].as_str().unwrap())
}

fn practice_path(e: &Value, step: &str) -> String {
    format!(
        "/v1/tenants/{}/escalations/{}/{step}",
        e["company"].as_str().unwrap(),
        e["id"].as_str().unwrap()
    )
}

async fn execute(app: &TestApp, token: &str, e: &Value, body: Value) -> reqwest::Response {
    app.post(&path(e, "execute"), Some(token), &body).await
}

/// The escalation's steps in a log, oldest first.
async fn steps(app: &TestApp, company: &str, token: &str, id: &str) -> Vec<String> {
    let log = ok_json(
        app.get(
            &format!("/v1/tenants/{company}/audit-events?limit=500"),
            Some(token),
        )
        .await,
    )
    .await;
    let mut out: Vec<String> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["details"]["escalation_id"] == id)
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    out.reverse();
    out
}

async fn s2_a_sole_admin_who_lost_their_phone_signs_in_again_under_the_two_person_rule(db: Db) {
    let app = TestApp::spawn(db).await;
    app.mfa_practice("phone-clinic").await;
    let root = app.support_token().await;
    let smith = agent(&app, &root, "agent.smith", "support_agent").await;
    let jones = agent(&app, &root, "agent.jones", "support_admin").await;
    let me_root = ok_json(app.get("/v1/me", Some(&root)).await).await;

    // The admin's second factor is gone: support asks to reset it.
    let e = open(
        &app,
        &smith,
        "phone-clinic",
        "phone-clinic-admin",
        "reset_mfa",
    )
    .await;
    assert_eq!(e["status"], "pending");
    assert_eq!(e["action"], "reset_mfa");
    assert_eq!(e["company"], "phone-clinic");
    assert_eq!(e["ticket"], "SUP-1042");
    assert!(e["decided_by"].is_null());
    let r = execute(&app, &smith, &e, json!({})).await;
    problem(r, StatusCode::CONFLICT, "escalation_not_approved").await;
    // An agent cannot approve; the practice has no other admin, so a support admin may.
    let r = app
        .post(&path(&e, "approve"), Some(&smith), &json!({}))
        .await;
    problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    // Nor the support admin who asked for one themselves.
    let own = open(&app, &jones, "phone-clinic", "phone-clinic-admin", "unlock").await;
    let r = app
        .post(&path(&own, "approve"), Some(&jones), &json!({}))
        .await;
    problem(r, StatusCode::FORBIDDEN, "forbidden").await;

    let approved = ok_json(
        app.post(&path(&e, "approve"), Some(&root), &json!({}))
            .await,
    )
    .await;
    assert_eq!(approved["status"], "approved");
    assert_eq!(approved["decided_by"], me_root["id"]);
    let r = app
        .post(&path(&e, "approve"), Some(&jones), &json!({}))
        .await;
    problem(r, StatusCode::CONFLICT, "conflict").await;

    let done = ok_json(execute(&app, &smith, &e, json!({})).await).await;
    assert_eq!(done["status"], "executed");
    assert!(done["executed_at"].is_string());
    let r = execute(&app, &smith, &e, json!({})).await;
    problem(r, StatusCode::CONFLICT, "escalation_not_approved").await;
    let seen = ok_json(
        app.get(
            &format!("/v1/escalations/{}", e["id"].as_str().unwrap()),
            Some(&smith),
        )
        .await,
    )
    .await;
    assert_eq!(seen["status"], "executed");

    // The admin signs in with their password and enrolls a new second factor.
    let flow = ok_json(
        app.login("phone-clinic", "phone-clinic-admin", NEW_PASSWORD)
            .await,
    )
    .await;
    assert_eq!(flow["status"], "mfa_enrollment_required", "{flow}");
    let admin = app
        .finish_mfa(&flow, "admin@phone-clinic.example.com", 0)
        .await;

    // Every step in the practice's log and in the operator's.
    let id = e["id"].as_str().unwrap();
    let expected = [
        "escalation.requested",
        "escalation.approved",
        "escalation.executed",
    ];
    assert_eq!(steps(&app, "phone-clinic", &admin, id).await, expected);
    assert_eq!(steps(&app, "operator", &root, id).await, expected);
    let log = ok_json(
        app.get(
            "/v1/tenants/phone-clinic/audit-events?action=mfa.reset",
            Some(&admin),
        )
        .await,
    )
    .await;
    let reset = &log["items"][0];
    assert_eq!(reset["actor"]["kind"], "support");
    assert_eq!(reset["actor"]["username"], "agent.smith");
    assert_eq!(reset["target"]["label"], "phone-clinic-admin");
    let approved_event = ok_json(
        app.get(
            "/v1/tenants/phone-clinic/audit-events?action=escalation.approved",
            Some(&admin),
        )
        .await,
    )
    .await;
    assert_eq!(
        approved_event["items"][0]["details"]["two_person_rule"],
        true
    );
    // The chains still verify.
    for (company, token) in [("phone-clinic", &admin), ("operator", &root)] {
        let v = ok_json(
            app.get(
                &format!("/v1/tenants/{company}/audit-events/verify"),
                Some(token),
            )
            .await,
        )
        .await;
        assert_eq!(v["ok"], true, "{company}: {v}");
    }
}

async fn s2_the_practice_decides_when_it_has_an_admin_and_execution_needs_its_approval(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.practice("desk-clinic").await;
    let staff = app.staff("desk-clinic", &admin, "sam").await;
    let root = app.support_token().await;
    let smith = agent(&app, &root, "agent.smith", "support_agent").await;
    for _ in 0..5 {
        app.login("desk-clinic", "sam", "Wrong-Password-000!").await;
    }
    let r = app.login("desk-clinic", "sam", NEW_PASSWORD).await;
    problem(r, StatusCode::LOCKED, "account_locked").await;

    let mark = app.outbox_mark();
    let e = open(&app, &smith, "desk-clinic", "sam", "unlock").await;
    // The practice's admin is told by email, through the delivery workers.
    let notice = notice_after(&app, mark, "admin@desk-clinic.example.com").await;
    assert_eq!(notice["purpose"], "notice");
    assert_eq!(notice["channel"], "email");
    let subject = notice["subject"].as_str().unwrap();
    assert!(
        subject.contains("unlock") && subject.contains("sam"),
        "{subject}"
    );
    let body = notice["body"].as_str().unwrap();
    for needle in [
        "agent.smith",
        "SUP-1042",
        e["id"].as_str().unwrap(),
        "approves",
    ] {
        assert!(body.contains(needle), "{needle} in {body}");
    }
    let admin_id = ok_json(app.get("/v1/me", Some(&admin)).await).await["id"].clone();
    // Recorded as a delivery of the admin's (masked), sent once the outbox has it.
    let deliveries_path = format!(
        "/v1/tenants/desk-clinic/users/{}/deliveries",
        admin_id.as_str().unwrap()
    );
    let mut deliveries = ok_json(app.get(&deliveries_path, Some(&admin)).await).await;
    for _ in 0..250 {
        if deliveries["items"][0]["status"] == "sent" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        deliveries = ok_json(app.get(&deliveries_path, Some(&admin)).await).await;
    }
    let d = &deliveries["items"][0];
    assert_eq!(d["purpose"], "notice");
    assert_eq!(d["status"], "sent");
    assert_ne!(d["to"], "admin@desk-clinic.example.com", "masked");
    // A duplicate while this one is open.
    let r = app
        .post(
            "/v1/escalations",
            Some(&smith),
            &json!({"company": "desk-clinic", "user_id": "sam", "action": "unlock",
                    "reason": "again", "ticket": "SUP-1043"}),
        )
        .await;
    problem(r, StatusCode::CONFLICT, "conflict").await;
    // The practice has an admin who can decide: support may not approve.
    let r = app
        .post(&path(&e, "approve"), Some(&root), &json!({}))
        .await;
    problem(r, StatusCode::CONFLICT, "conflict").await;

    // The practice sees it; staff do not.
    let list = ok_json(
        app.get("/v1/tenants/desk-clinic/escalations", Some(&admin))
            .await,
    )
    .await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(list["items"][0]["id"], e["id"]);
    let pending = ok_json(
        app.get(
            "/v1/tenants/desk-clinic/escalations?status=pending",
            Some(&admin),
        )
        .await,
    )
    .await;
    assert_eq!(pending["items"].as_array().unwrap().len(), 1);
    let r = app
        .get(
            "/v1/tenants/desk-clinic/escalations?status=maybe",
            Some(&admin),
        )
        .await;
    problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let r = app
        .get("/v1/tenants/desk-clinic/escalations", Some(&staff))
        .await;
    problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    let r = app
        .post(&practice_path(&e, "approve"), Some(&staff), &json!({}))
        .await;
    problem(r, StatusCode::FORBIDDEN, "forbidden").await;

    // Denied: it cannot run, nor be approved afterwards.
    let denied = ok_json(
        app.post(&practice_path(&e, "deny"), Some(&admin), &json!({}))
            .await,
    )
    .await;
    assert_eq!(denied["status"], "denied");
    let r = execute(&app, &smith, &e, json!({})).await;
    problem(r, StatusCode::CONFLICT, "escalation_not_approved").await;
    let r = app
        .post(&practice_path(&e, "approve"), Some(&admin), &json!({}))
        .await;
    problem(r, StatusCode::CONFLICT, "conflict").await;

    // Asked again and approved by the practice: the agent unlocks Sam, once.
    let e2 = open(&app, &smith, "desk-clinic", "sam", "unlock").await;
    let approved = ok_json(
        app.post(&practice_path(&e2, "approve"), Some(&admin), &json!({}))
            .await,
    )
    .await;
    assert_eq!(approved["status"], "approved");
    let r = execute(&app, &smith, &e2, json!({"temporary_password": TEMP})).await;
    problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let done = ok_json(execute(&app, &smith, &e2, json!({})).await).await;
    assert_eq!(done["status"], "executed");
    let r = app.login("desk-clinic", "sam", NEW_PASSWORD).await;
    assert_eq!(ok_json(r).await["status"], "authenticated");

    // A temporary password through an escalation: Sam must change it.
    let e3 = open(&app, &smith, "desk-clinic", "sam", "reset_password").await;
    ok_json(
        app.post(&practice_path(&e3, "approve"), Some(&admin), &json!({}))
            .await,
    )
    .await;
    let r = execute(&app, &smith, &e3, json!({})).await;
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(error_fields(&p), ["temporary_password".to_owned()].into());
    let r = execute(&app, &smith, &e3, json!({"temporary_password": "weak"})).await;
    problem(r, StatusCode::UNPROCESSABLE_ENTITY, "password_policy").await;
    // The refused tries did not use the approval up.
    let done = ok_json(execute(&app, &smith, &e3, json!({"temporary_password": TEMP})).await).await;
    assert_eq!(done["status"], "executed");
    let flow = ok_json(app.login("desk-clinic", "sam", TEMP).await).await;
    assert_eq!(flow["status"], "password_change_required");
    let log = ok_json(
        app.get(
            "/v1/tenants/desk-clinic/audit-events?action=password.reset",
            Some(&admin),
        )
        .await,
    )
    .await;
    assert_eq!(log["items"][0]["details"]["via"], "escalation");
    assert!(!log.to_string().contains(TEMP));

    // Nobody decides an escalation about themselves.
    let about_admin = open(
        &app,
        &smith,
        "desk-clinic",
        "desk-clinic-admin",
        "reset_mfa",
    )
    .await;
    let r = app
        .post(
            &practice_path(&about_admin, "approve"),
            Some(&admin),
            &json!({}),
        )
        .await;
    problem(r, StatusCode::FORBIDDEN, "forbidden").await;

    let id = e2["id"].as_str().unwrap();
    // The practice's log also links the unlock itself to the escalation.
    assert_eq!(
        steps(&app, "desk-clinic", &admin, id).await,
        [
            "escalation.requested",
            "escalation.approved",
            "user.unlocked",
            "escalation.executed"
        ]
    );
    assert_eq!(
        steps(&app, "operator", &root, id).await,
        [
            "escalation.requested",
            "escalation.approved",
            "escalation.executed"
        ]
    );
    let id = e["id"].as_str().unwrap();
    let expected = ["escalation.requested", "escalation.denied"];
    assert_eq!(steps(&app, "desk-clinic", &admin, id).await, expected);
    assert_eq!(steps(&app, "operator", &root, id).await, expected);
}

async fn s2_approvals_lapse_after_an_hour_and_undecided_requests_expire(db: Db) {
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
    let admin = app.practice("late-clinic").await;
    app.staff("late-clinic", &admin, "sam").await;
    let root = app.support_token().await;
    let smith = agent(&app, &root, "agent.smith", "support_agent").await;

    let mark = app.outbox_mark();
    let e = open(&app, &smith, "late-clinic", "sam", "unlock").await;
    notice_after(&app, mark, "admin@late-clinic.example.com").await;
    // Pretend its job was lost before the send (the row queued again, message sealed):
    // the re-enqueue finds it while it lives, and it ends failed after a day unsent.
    // The outbox line is written before the worker records the send, so the row is
    // rewritten only once it says sent (else the worker's own update would undo this).
    app.exec_once_ready(
        "UPDATE deliveries SET status = 'queued', payload_sealed = 'sealed-message', \
         claimed_until = NULL, provider_message_id = NULL \
         WHERE purpose = 'notice' AND status = 'sent'",
    )
    .await;
    let approved = ok_json(
        app.post(&practice_path(&e, "approve"), Some(&admin), &json!({}))
            .await,
    )
    .await;
    let window = chrono::DateTime::parse_from_rfc3339(approved["expires_at"].as_str().unwrap())
        .unwrap()
        - chrono::DateTime::parse_from_rfc3339(approved["decided_at"].as_str().unwrap()).unwrap();
    assert_eq!(window, Duration::hours(1));
    clock.advance(Duration::minutes(61));
    let lost = app
        .store
        .deliveries_to_requeue(Duration::seconds(60), 100)
        .await
        .unwrap();
    assert_eq!(lost.len(), 1, "the lost notice is queued again");
    assert_eq!(lost[0].sealed, "sealed-message");
    let smith_email = "agent.smith@operator.example.com";
    let smith = sign_in(&app, "operator", "agent.smith", NEW_PASSWORD, smith_email).await;
    let r = execute(&app, &smith, &e, json!({})).await;
    let p = problem(r, StatusCode::CONFLICT, "escalation_not_approved").await;
    assert!(p["detail"].as_str().unwrap().contains("expired"), "{p}");

    // Undecided for longer than the request's life: expired, and no longer decidable.
    let e2 = open(&app, &smith, "late-clinic", "sam", "reset_mfa").await;
    clock.advance(Duration::hours(73));
    // A day later the lost notice is not sent any more: it ends failed, saying why.
    assert!(
        app.store
            .deliveries_to_requeue(Duration::seconds(60), 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(app.store.fail_dead_deliveries(100).await.unwrap() >= 1);
    let admin_email = "admin@late-clinic.example.com";
    let admin = sign_in(
        &app,
        "late-clinic",
        "late-clinic-admin",
        NEW_PASSWORD,
        admin_email,
    )
    .await;
    // Deciding is a step-up action (M11); this admin has no second factor (policy off).
    app.step_up_with_password(&admin, NEW_PASSWORD).await;
    let root = sign_in(
        &app,
        "operator",
        SUPPORT_USER,
        SUPPORT_PASSWORD,
        "root@vendor.example.com",
    )
    .await;
    let smith = sign_in(&app, "operator", "agent.smith", NEW_PASSWORD, smith_email).await;
    let list = ok_json(
        app.get("/v1/tenants/late-clinic/escalations", Some(&admin))
            .await,
    )
    .await;
    let statuses: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["expired", "expired"]);
    let r = app
        .post(&practice_path(&e2, "approve"), Some(&admin), &json!({}))
        .await;
    problem(r, StatusCode::CONFLICT, "conflict").await;
    for x in [&e, &e2] {
        let id = x["id"].as_str().unwrap();
        let last = steps(&app, "late-clinic", &admin, id).await;
        assert_eq!(last.last().map(String::as_str), Some("escalation.expired"));
        let last = steps(&app, "operator", &root, id).await;
        assert_eq!(last.last().map(String::as_str), Some("escalation.expired"));
    }
    let admin_id = ok_json(app.get("/v1/me", Some(&admin)).await).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let notices = ok_json(
        app.get(
            &format!("/v1/tenants/late-clinic/users/{admin_id}/deliveries"),
            Some(&admin),
        )
        .await,
    )
    .await;
    // Newest first: the lost one is the oldest notice.
    let first = notices["items"]
        .as_array()
        .unwrap()
        .iter()
        .rfind(|d| d["purpose"] == "notice")
        .unwrap();
    assert_eq!(first["status"], "failed", "{notices}");
    assert_eq!(first["error"], "the notice could not be sent within a day");
    // An expired request no longer blocks a new one.
    open(&app, &smith, "late-clinic", "sam", "reset_mfa").await;
}

async fn s2_requests_are_checked_and_other_tenants_see_nothing(db: Db) {
    let app = TestApp::spawn(db).await;
    let a_admin = app.practice("esc-a").await;
    let b_admin = app.practice("esc-b").await;
    let a_staff = app.staff("esc-a", &a_admin, "sam").await;
    let root = app.support_token().await;
    let smith = agent(&app, &root, "agent.smith", "support_agent").await;

    let r = app
        .post(
            "/v1/escalations",
            Some(&smith),
            &json!({"company": "Not A Company!", "user_id": "", "action": "delete_everything",
                    "reason": "", "ticket": "x\u{7}"}),
        )
        .await;
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(
        error_fields(&p),
        ["action", "company", "reason", "ticket", "user_id"]
            .map(String::from)
            .into()
    );
    for (company, user, field) in [
        ("no-such-clinic", "sam", "company"),
        ("operator", "root.support", "company"),
        ("esc-a", "nobody", "user_id"),
    ] {
        let r = app
            .post(
                "/v1/escalations",
                Some(&smith),
                &json!({"company": company, "user_id": user, "action": "unlock",
                        "reason": "r", "ticket": "t"}),
            )
            .await;
        let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert_eq!(error_fields(&p), [field.to_owned()].into());
    }
    // Only support staff ask, read, approve and execute on the vendor side.
    let e = open(&app, &smith, "esc-a", "sam", "unlock").await;
    for token in [&a_admin, &a_staff] {
        let r = app
            .post(
                "/v1/escalations",
                Some(token),
                &json!({"company": "esc-a", "user_id": "sam", "action": "reset_mfa",
                        "reason": "r", "ticket": "t"}),
            )
            .await;
        problem(r, StatusCode::FORBIDDEN, "forbidden").await;
        let r = app
            .get(
                &format!("/v1/escalations/{}", e["id"].as_str().unwrap()),
                Some(token),
            )
            .await;
        problem(r, StatusCode::FORBIDDEN, "forbidden").await;
        let r = execute(&app, token, &e, json!({})).await;
        problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    }
    for missing in ["00000000-0000-0000-0000-000000000000", "nope"] {
        let r = app
            .get(&format!("/v1/escalations/{missing}"), Some(&smith))
            .await;
        problem(r, StatusCode::NOT_FOUND, "not_found").await;
        let r = app
            .post(
                &format!("/v1/tenants/esc-a/escalations/{missing}/approve"),
                Some(&a_admin),
                &json!({}),
            )
            .await;
        problem(r, StatusCode::NOT_FOUND, "not_found").await;
    }
    // Another practice's admin: 404 on A's escalation under either company, and an
    // empty list of their own.
    for p in [
        practice_path(&e, "approve"),
        practice_path(&e, "deny"),
        practice_path(&e, "approve").replace("/esc-a/", "/esc-b/"),
        practice_path(&e, "deny").replace("/esc-a/", "/esc-b/"),
        "/v1/tenants/esc-a/escalations".to_owned(),
    ] {
        let r = if p.ends_with("escalations") {
            app.get(&p, Some(&b_admin)).await
        } else {
            app.post(&p, Some(&b_admin), &json!({})).await
        };
        problem(r, StatusCode::NOT_FOUND, "not_found").await;
    }
    let b_list = ok_json(
        app.get("/v1/tenants/esc-b/escalations", Some(&b_admin))
            .await,
    )
    .await;
    assert!(b_list["items"].as_array().unwrap().is_empty());
    // Support reads an escalation by id, not the practice's list, and cannot decide for it.
    let r = app.get("/v1/tenants/esc-a/escalations", Some(&smith)).await;
    problem(r, StatusCode::NOT_FOUND, "not_found").await;
    let r = app
        .post(&practice_path(&e, "approve"), Some(&smith), &json!({}))
        .await;
    problem(r, StatusCode::NOT_FOUND, "not_found").await;
    let still = ok_json(
        app.get(
            &format!("/v1/escalations/{}", e["id"].as_str().unwrap()),
            Some(&smith),
        )
        .await,
    )
    .await;
    assert_eq!(still["status"], "pending");
}
