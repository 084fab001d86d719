//! A practice admin's actions on one user over HTTP: edit, deactivate and reactivate,
//! unlock, temporary password, copy (T3, T4, P3, P4), and step-up on the credential
//! actions (M11).

// A test fails by panicking: unwrap and expect are its assertions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::helpers::{Db, NEW_PASSWORD, Options, TestApp, error_fields, ok_json, problem};
use chrono::{Duration, TimeZone, Utc};
use gatehouse_domain::clock::FixedClock;
use gatehouse_testkit::on_both_databases;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;

on_both_databases!(
    t3_patch_changes_names_role_and_contacts_and_a_new_contact_is_verified_again,
    t3_patch_refusals_validation_not_found_forbidden_and_own_role_or_active,
    t3_deactivation_ends_a_live_session_and_a_remembered_device_at_once,
    p4_unlock_lets_a_locked_out_user_sign_in_again,
    p3_admin_reset_sets_a_temporary_password_and_ends_sessions,
    t4_copy_user_copies_exactly_what_t4_names_and_nothing_else,
    m11_unlock_password_reset_mfa_reset_and_role_change_need_step_up,
);

const TEMP: &str = "Temporary-Pass-1234!";
const OTHER_TEMP: &str = "Another-Temp-5678!";

fn user_path(company: &str, user: &str) -> String {
    format!("/v1/tenants/{company}/users/{user}")
}

async fn create(app: &TestApp, company: &str, admin: &str, body: Value) -> Value {
    let r = app
        .post(&format!("/v1/tenants/{company}/users"), Some(admin), &body)
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    r.json().await.unwrap()
}

fn staff_body(username: &str) -> Value {
    json!({"username": username, "first_name": "Sam", "last_name": "Staff",
           "email": format!("{username}@clinic.example.com"), "phone": "+12025550100",
           "role": "staff", "password": TEMP})
}

async fn events(app: &TestApp, company: &str, admin: &str, action: &str) -> Vec<Value> {
    let log = ok_json(
        app.get(
            &format!("/v1/tenants/{company}/audit-events?action={action}&limit=500"),
            Some(admin),
        )
        .await,
    )
    .await;
    log["items"].as_array().unwrap().clone()
}

async fn delete(app: &TestApp, path: &str, token: &str) -> reqwest::Response {
    app.send_json(Method::DELETE, path, Some(token), &json!({}))
        .await
}

async fn t3_patch_changes_names_role_and_contacts_and_a_new_contact_is_verified_again(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.practice("edit-clinic").await;
    let sam = create(&app, "edit-clinic", &admin, staff_body("sam")).await;
    let id = sam["id"].as_str().unwrap();
    app.exec(
        "UPDATE users SET email_verified = TRUE, phone_verified = TRUE WHERE username = 'sam'",
    )
    .await;

    // The same address in another case is no change: the proof stays.
    let same = ok_json(
        app.patch(
            &user_path("edit-clinic", id),
            Some(&admin),
            &json!({"email": "SAM@clinic.example.com"}),
        )
        .await,
    )
    .await;
    assert_eq!(same["email_verified"], true);
    assert!(
        events(&app, "edit-clinic", &admin, "user.updated")
            .await
            .is_empty()
    );

    let after = ok_json(
        app.patch(
            &user_path("edit-clinic", "sam"),
            Some(&admin),
            &json!({"first_name": "Samantha", "last_name": "Smith",
                    "email": "samantha@clinic.example.com", "phone": "(202) 555-0199",
                    "role": "practice_admin"}),
        )
        .await,
    )
    .await;
    assert_eq!(after["first_name"], "Samantha");
    assert_eq!(after["last_name"], "Smith");
    assert_eq!(after["email"], "samantha@clinic.example.com");
    assert_eq!(
        after["email_verified"], false,
        "a new address is proven again"
    );
    assert_eq!(after["phone"], "+12025550199");
    assert_eq!(after["phone_verified"], false);
    assert_eq!(after["role"], "practice_admin");
    assert_eq!(after["active"], true);
    // GET agrees.
    let got = ok_json(app.get(&user_path("edit-clinic", id), Some(&admin)).await).await;
    assert_eq!(got, after);

    // The new admin administers the practice.
    let sam_token = app
        .finish_password_change("edit-clinic", "sam", TEMP, NEW_PASSWORD)
        .await;
    let r = app
        .get("/v1/tenants/edit-clinic/users", Some(&sam_token))
        .await;
    assert_eq!(r.status(), StatusCode::OK);

    // null removes a contact.
    let cleared = ok_json(
        app.patch(
            &user_path("edit-clinic", id),
            Some(&admin),
            &json!({"phone": null}),
        )
        .await,
    )
    .await;
    assert!(cleared["phone"].is_null());
    assert_eq!(cleared["email"], "samantha@clinic.example.com");

    let updated = events(&app, "edit-clinic", &admin, "user.updated").await;
    assert_eq!(updated.len(), 2, "{updated:?}");
    let big = &updated[1];
    assert_eq!(big["target"]["id"], id);
    assert_eq!(
        big["details"]["role"],
        json!({"from": "staff", "to": "practice_admin"})
    );
    assert_eq!(big["details"]["reverification"], true);
    let text = big.to_string();
    assert!(
        !text.contains("samantha@"),
        "no contact values in the log: {text}"
    );
}

async fn t3_patch_refusals_validation_not_found_forbidden_and_own_role_or_active(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.practice("refuse-clinic").await;
    let sam = create(&app, "refuse-clinic", &admin, staff_body("sam")).await;
    let path = user_path("refuse-clinic", "sam");

    let r = app
        .patch(
            &path,
            Some(&admin),
            &json!({"first_name": "", "email": "not-an-email", "phone": "12",
                    "role": "overlord"}),
        )
        .await;
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(
        error_fields(&p),
        ["email", "first_name", "phone", "role"]
            .map(String::from)
            .into()
    );
    // A support role does not belong in a practice.
    let r = app
        .patch(&path, Some(&admin), &json!({"role": "support_admin"}))
        .await;
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(error_fields(&p), ["role".to_owned()].into());
    let r = app
        .patch(&path, Some(&admin), &json!({"username": "renamed"}))
        .await;
    problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let r = app
        .patch(&path, Some(&admin), &json!({"active": "no"}))
        .await;
    problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    // Nothing changed.
    let now = ok_json(app.get(&path, Some(&admin)).await).await;
    assert_eq!(now, sam);

    let r = app
        .patch(
            &user_path("refuse-clinic", "nobody"),
            Some(&admin),
            &json!({"first_name": "X"}),
        )
        .await;
    problem(r, StatusCode::NOT_FOUND, "not_found").await;
    for bad in ["00000000-0000-0000-0000-000000000000", "not%20a%20user"] {
        let r = app
            .patch(
                &user_path("refuse-clinic", bad),
                Some(&admin),
                &json!({"first_name": "X"}),
            )
            .await;
        problem(r, StatusCode::NOT_FOUND, "not_found").await;
    }
    let r = app
        .send_json(Method::PUT, &path, Some(&admin), &json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.headers()["allow"], "GET, PATCH");

    // Staff may not edit, not even themselves.
    let staff = app.staff("refuse-clinic", &admin, "tom").await;
    for p in [&path, &user_path("refuse-clinic", "tom")] {
        let r = app
            .patch(p, Some(&staff), &json!({"first_name": "Tommy"}))
            .await;
        problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    }

    // The admin cannot demote or deactivate themselves (the practice keeps its admin).
    let me = ok_json(app.get("/v1/me", Some(&admin)).await).await;
    let own = user_path("refuse-clinic", me["id"].as_str().unwrap());
    for body in [json!({"role": "staff"}), json!({"active": false})] {
        let r = app.patch(&own, Some(&admin), &body).await;
        problem(r, StatusCode::CONFLICT, "conflict").await;
    }
    // Their own names are theirs to fix.
    let renamed = ok_json(
        app.patch(&own, Some(&admin), &json!({"first_name": "Alexandra"}))
            .await,
    )
    .await;
    assert_eq!(renamed["first_name"], "Alexandra");
    assert_eq!(renamed["role"], "practice_admin");
    assert_eq!(renamed["active"], true);
}

async fn t3_deactivation_ends_a_live_session_and_a_remembered_device_at_once(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.mfa_practice("off-clinic").await;
    let email = "ann@off-clinic.example.com";
    create(
        &app,
        "off-clinic",
        &admin,
        json!({"username": "ann", "first_name": "Ann", "last_name": "Lee", "email": email,
               "role": "staff", "password": TEMP}),
    )
    .await;
    // Ann's first sign-in: new password, email enrollment, this computer remembered.
    let flow = ok_json(app.login("off-clinic", "ann", TEMP).await).await;
    let id = flow["flow_id"].as_str().unwrap().to_owned();
    let flow = ok_json(
        app.post(
            &format!("/v1/auth/flows/{id}/password"),
            None,
            &json!({"new_password": NEW_PASSWORD}),
        )
        .await,
    )
    .await;
    app.finish_mfa(&flow, email, 0).await;
    let mark = app.outbox_mark();
    let flow = ok_json(app.login("off-clinic", "ann", NEW_PASSWORD).await).await;
    assert_eq!(flow["status"], "mfa_required", "{flow}");
    let code = app.code_after(mark, email).await;
    let done = ok_json(
        app.post(
            &format!(
                "/v1/auth/flows/{id}/verify",
                id = flow["flow_id"].as_str().unwrap()
            ),
            None,
            &json!({"method": "code", "code": code, "remember_device": true}),
        )
        .await,
    )
    .await;
    let device = done["device_token"].as_str().unwrap().to_owned();
    let token = done["session"]["token"].as_str().unwrap().to_owned();
    // Session checked (and cached) before the change.
    assert_eq!(
        app.get("/v1/auth/session", Some(&token)).await.status(),
        StatusCode::OK
    );

    let off = ok_json(
        app.patch(
            &user_path("off-clinic", "ann"),
            Some(&admin),
            &json!({"active": false}),
        )
        .await,
    )
    .await;
    assert_eq!(off["active"], false);
    let r = app.get("/v1/auth/session", Some(&token)).await;
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "the session ended at once"
    );
    let login = app
        .client
        .post(app.url("/v1/auth/login"))
        .json(&json!({"company": "off-clinic", "username": "ann",
                      "password": NEW_PASSWORD, "device_token": device}))
        .send()
        .await
        .unwrap();
    problem(login, StatusCode::FORBIDDEN, "account_inactive").await;
    let inactive = ok_json(
        app.get("/v1/tenants/off-clinic/users?active=false", Some(&admin))
            .await,
    )
    .await;
    assert_eq!(inactive["items"].as_array().unwrap().len(), 1);
    assert_eq!(inactive["items"][0]["username"], "ann");

    let on = ok_json(
        app.patch(
            &user_path("off-clinic", "ann"),
            Some(&admin),
            &json!({"active": true}),
        )
        .await,
    )
    .await;
    assert_eq!(on["active"], true);
    // Back in, but the remembered device is gone: the code is asked again.
    let again = ok_json(
        app.client
            .post(app.url("/v1/auth/login"))
            .json(&json!({"company": "off-clinic", "username": "ann",
                          "password": NEW_PASSWORD, "device_token": device}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(again["status"], "mfa_required", "{again}");
    let r = app.get("/v1/auth/session", Some(&token)).await;
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "old sessions stay ended"
    );

    let off_events = events(&app, "off-clinic", &admin, "user.deactivated").await;
    assert_eq!(off_events.len(), 1);
    // Her enrollment sign-in and the remembered one.
    assert_eq!(off_events[0]["details"]["sessions_ended"], 2);
    assert_eq!(off_events[0]["details"]["devices_revoked"], 1);
    assert_eq!(
        events(&app, "off-clinic", &admin, "user.reactivated")
            .await
            .len(),
        1
    );
    // Repeating a state is no change and no event.
    app.patch(
        &user_path("off-clinic", "ann"),
        Some(&admin),
        &json!({"active": true}),
    )
    .await;
    assert_eq!(
        events(&app, "off-clinic", &admin, "user.reactivated")
            .await
            .len(),
        1
    );
}

async fn p4_unlock_lets_a_locked_out_user_sign_in_again(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.practice("lock-clinic").await;
    app.staff("lock-clinic", &admin, "sam").await;
    for _ in 0..5 {
        let r = app.login("lock-clinic", "sam", "Wrong-Password-000!").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let r = app.login("lock-clinic", "sam", NEW_PASSWORD).await;
    problem(r, StatusCode::LOCKED, "account_locked").await;
    let locked = ok_json(
        app.get("/v1/tenants/lock-clinic/users?locked=true", Some(&admin))
            .await,
    )
    .await;
    assert_eq!(locked["items"][0]["username"], "sam");

    let r = app
        .post(
            &format!("{}/unlock", user_path("lock-clinic", "sam")),
            Some(&admin),
            &json!({}),
        )
        .await;
    let user = ok_json(r).await;
    assert_eq!(user["locked"], false);
    let r = app.login("lock-clinic", "sam", NEW_PASSWORD).await;
    assert_eq!(ok_json(r).await["status"], "authenticated");

    let unlocked = events(&app, "lock-clinic", &admin, "user.unlocked").await;
    assert_eq!(unlocked.len(), 1);
    assert_eq!(unlocked[0]["details"]["failed_logins"], 5);
    // Unlocking a user who is not locked answers the user and records nothing.
    let r = app
        .post(
            &format!("{}/unlock", user_path("lock-clinic", "sam")),
            Some(&admin),
            &json!({}),
        )
        .await;
    assert_eq!(ok_json(r).await["locked"], false);
    assert_eq!(
        events(&app, "lock-clinic", &admin, "user.unlocked")
            .await
            .len(),
        1
    );
    let r = app
        .post(
            &format!("{}/unlock", user_path("lock-clinic", "ghost")),
            Some(&admin),
            &json!({}),
        )
        .await;
    problem(r, StatusCode::NOT_FOUND, "not_found").await;
    let r = app
        .get(
            &format!("{}/unlock", user_path("lock-clinic", "sam")),
            Some(&admin),
        )
        .await;
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
}

async fn p3_admin_reset_sets_a_temporary_password_and_ends_sessions(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.practice("reset-clinic").await;
    let token = app.staff("reset-clinic", &admin, "sam").await;
    let path = format!("{}/password", user_path("reset-clinic", "sam"));

    let r = app
        .post(&path, Some(&admin), &json!({"temporary_password": "short"}))
        .await;
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "password_policy").await;
    assert_eq!(error_fields(&p), ["temporary_password".to_owned()].into());
    let r = app
        .post(
            &path,
            Some(&admin),
            &json!({"temporary_password": "Sam-Is-Here-12345!"}),
        )
        .await;
    problem(r, StatusCode::UNPROCESSABLE_ENTITY, "password_policy").await;
    let r = app.post(&path, Some(&admin), &json!({})).await;
    problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    // Nothing happened yet: the session lives.
    assert_eq!(
        app.get("/v1/auth/session", Some(&token)).await.status(),
        StatusCode::OK
    );

    let r = app
        .post(
            &path,
            Some(&admin),
            &json!({"temporary_password": OTHER_TEMP}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.get("/v1/auth/session", Some(&token)).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let r = app.login("reset-clinic", "sam", NEW_PASSWORD).await;
    problem(r, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let flow = ok_json(app.login("reset-clinic", "sam", OTHER_TEMP).await).await;
    assert_eq!(flow["status"], "password_change_required", "{flow}");
    let user = ok_json(
        app.get(&user_path("reset-clinic", "sam"), Some(&admin))
            .await,
    )
    .await;
    assert_eq!(user["must_change_password"], true);
    app.finish_password_change("reset-clinic", "sam", OTHER_TEMP, "Brand-New-Pass-2026!")
        .await;

    let reset = events(&app, "reset-clinic", &admin, "password.reset").await;
    assert_eq!(reset.len(), 1);
    assert_eq!(reset[0]["details"]["via"], "admin_reset");
    assert_eq!(reset[0]["details"]["sessions_ended"], 1);
    assert!(!reset[0].to_string().contains(OTHER_TEMP));

    let staff = app.staff("reset-clinic", &admin, "tom").await;
    let r = app
        .post(
            &path,
            Some(&staff),
            &json!({"temporary_password": OTHER_TEMP}),
        )
        .await;
    problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    let r = app
        .post(
            &format!("{}/password", user_path("reset-clinic", "ghost")),
            Some(&admin),
            &json!({"temporary_password": OTHER_TEMP}),
        )
        .await;
    problem(r, StatusCode::NOT_FOUND, "not_found").await;
}

async fn t4_copy_user_copies_exactly_what_t4_names_and_nothing_else(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.practice("copy-clinic").await;
    // Two groups.
    let mut group_ids = Vec::new();
    for name in ["Front desk", "Billing"] {
        let r = app
            .post(
                "/v1/tenants/copy-clinic/groups",
                Some(&admin),
                &json!({"name": name}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        group_ids.push(r.json::<Value>().await.unwrap()["id"].clone());
    }
    let mut body = staff_body("nina");
    body["groups"] = json!(group_ids);
    let nina = create(&app, "copy-clinic", &admin, body).await;
    let nina_id = nina["id"].as_str().unwrap();
    // Her setup: method and enrollment, login hours, a per-user trusted network, and what
    // must stay hers: proven contacts and a recovery code.
    let r = app
        .put(
            &format!("{}/mfa", user_path("copy-clinic", "nina")),
            Some(&admin),
            &json!({"method": "sms", "enrollment": "prompt"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let hours = json!([{"weekday": "monday", "start": "08:00", "end": "17:30"},
                       {"weekday": "friday", "start": "07:00", "end": "12:00"}]);
    let r = app
        .put(
            &format!("{}/login-hours", user_path("copy-clinic", "nina")),
            Some(&admin),
            &hours,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = app
        .post(
            "/v1/tenants/copy-clinic/trusted-networks",
            Some(&admin),
            &json!({"cidr": "203.0.113.0/24", "description": "Nina's home office",
                    "user_id": nina_id}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = app
        .post(
            "/v1/tenants/copy-clinic/trusted-networks",
            Some(&admin),
            &json!({"cidr": "198.51.100.0/24", "description": "Office"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    app.exec(
        "UPDATE users SET email_verified = TRUE, phone_verified = TRUE WHERE username = 'nina'",
    )
    .await;
    // A recovery code (its id borrowed from her user id: any unique id will do here).
    app.exec(
        "INSERT INTO recovery_codes (id, tenant_id, user_id, code_hash, created_at) \
         SELECT id, tenant_id, id, 'not-a-real-hash', created_at FROM users WHERE username = 'nina'",
    )
    .await;
    let nina = ok_json(
        app.get(&user_path("copy-clinic", "nina"), Some(&admin))
            .await,
    )
    .await;
    assert_eq!(nina["mfa"]["recovery_codes_remaining"], 1);

    let path = format!("{}/copy", user_path("copy-clinic", "nina"));
    let r = app
        .post(
            &path,
            Some(&admin),
            &json!({"username": "olga", "first_name": "Olga", "last_name": "Ortiz",
                    "email": "olga@clinic.example.com", "phone": "+12025550123",
                    "password": TEMP}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let olga: Value = r.json().await.unwrap();

    // Her own: id, username, names, contacts (unproven), temporary password.
    assert_ne!(olga["id"], nina["id"]);
    assert_eq!(olga["username"], "olga");
    assert_eq!(olga["first_name"], "Olga");
    assert_eq!(olga["last_name"], "Ortiz");
    assert_eq!(olga["email"], "olga@clinic.example.com");
    assert_eq!(olga["email_verified"], false);
    assert_eq!(olga["phone"], "+12025550123");
    assert_eq!(olga["phone_verified"], false);
    assert_eq!(olga["must_change_password"], true);
    assert_eq!(olga["active"], true);
    assert_eq!(olga["locked"], false);
    assert!(olga["last_login_at"].is_null());
    // Copied: role, groups, MFA method and enrollment mode.
    assert_eq!(olga["role"], nina["role"]);
    assert_eq!(olga["groups"], nina["groups"]);
    assert_eq!(olga["groups"].as_array().unwrap().len(), 2);
    assert_eq!(olga["mfa"]["method"], "sms");
    assert_eq!(olga["mfa"]["enrollment"], "prompt");
    // Not copied: credentials.
    assert_eq!(olga["mfa"]["totp_enrolled"], false);
    assert_eq!(olga["mfa"]["recovery_codes_remaining"], 0);
    let devices = ok_json(
        app.get(
            &format!("{}/devices", user_path("copy-clinic", "olga")),
            Some(&admin),
        )
        .await,
    )
    .await;
    assert!(devices["items"].as_array().unwrap().is_empty());
    // Copied: login hours, and the per-user network (not the tenant-wide one).
    let olga_hours = ok_json(
        app.get(
            &format!("{}/login-hours", user_path("copy-clinic", "olga")),
            Some(&admin),
        )
        .await,
    )
    .await;
    assert_eq!(olga_hours["items"], hours);
    let networks = ok_json(
        app.get("/v1/tenants/copy-clinic/trusted-networks", Some(&admin))
            .await,
    )
    .await;
    let olga_id = olga["id"].as_str().unwrap();
    let hers: Vec<&Value> = networks["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["user_id"] == olga_id)
        .collect();
    assert_eq!(hers.len(), 1, "{networks}");
    assert_eq!(hers[0]["cidr"], "203.0.113.0/24");
    assert_eq!(hers[0]["description"], "Nina's home office");
    assert_eq!(networks["items"].as_array().unwrap().len(), 3);
    // The source is untouched, and the copy signs in with its own temporary password.
    let nina_after = ok_json(
        app.get(&user_path("copy-clinic", "nina"), Some(&admin))
            .await,
    )
    .await;
    assert_eq!(nina_after, nina);
    // The copy signs in with its own temporary password, under the same login hours as
    // the source: at any time of day both answer alike (a password change, or outside
    // their hours).
    let olga_signs_in = app.login("copy-clinic", "olga", TEMP).await;
    let nina_signs_in = app.login("copy-clinic", "nina", TEMP).await;
    assert_eq!(olga_signs_in.status(), nina_signs_in.status());
    let (o, n): (Value, Value) = (
        olga_signs_in.json().await.unwrap(),
        nina_signs_in.json().await.unwrap(),
    );
    assert_eq!(o["status"], n["status"]);
    assert_eq!(o["code"], n["code"]);

    let copied = events(&app, "copy-clinic", &admin, "user.copied").await;
    assert_eq!(copied.len(), 1);
    assert_eq!(copied[0]["target"]["id"], olga_id);
    assert_eq!(copied[0]["details"]["from"]["id"], nina_id);
    assert_eq!(copied[0]["details"]["groups"], 2);
    assert_eq!(copied[0]["details"]["login_hours"], 2);
    assert_eq!(copied[0]["details"]["trusted_networks"], 1);

    // Refusals: taken username, invalid fields all at once, unknown source, staff.
    let r = app
        .post(
            &path,
            Some(&admin),
            &json!({"username": "OLGA", "first_name": "O", "last_name": "O",
                    "password": TEMP}),
        )
        .await;
    problem(r, StatusCode::CONFLICT, "conflict").await;
    let r = app
        .post(
            &path,
            Some(&admin),
            &json!({"username": "bad name!", "first_name": "", "last_name": "O",
                    "email": "nope", "password": TEMP}),
        )
        .await;
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(
        error_fields(&p),
        ["email", "first_name", "username"].map(String::from).into()
    );
    let r = app
        .post(
            &path,
            Some(&admin),
            &json!({"username": "pete", "first_name": "P", "last_name": "Q",
                    "password": "weak"}),
        )
        .await;
    problem(r, StatusCode::UNPROCESSABLE_ENTITY, "password_policy").await;
    let r = app
        .post(
            &format!("{}/copy", user_path("copy-clinic", "ghost")),
            Some(&admin),
            &json!({"username": "pete", "first_name": "P", "last_name": "Q",
                    "password": TEMP}),
        )
        .await;
    problem(r, StatusCode::NOT_FOUND, "not_found").await;
    let staff = app.staff("copy-clinic", &admin, "tom").await;
    let r = app
        .post(
            &path,
            Some(&staff),
            &json!({"username": "pete", "first_name": "P", "last_name": "Q",
                    "password": TEMP}),
        )
        .await;
    problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    let list = ok_json(
        app.get("/v1/tenants/copy-clinic/users?q=pete", Some(&admin))
            .await,
    )
    .await;
    assert!(list["items"].as_array().unwrap().is_empty());
}

async fn m11_unlock_password_reset_mfa_reset_and_role_change_need_step_up(db: Db) {
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
    let admin = app.mfa_practice("step-clinic").await;
    create(&app, "step-clinic", &admin, staff_body("sam")).await;
    let sam = user_path("step-clinic", "sam");

    // 16 minutes after the admin's second factor: every credential action asks for step-up.
    clock.advance(Duration::minutes(16));
    let r = app
        .post(&format!("{sam}/unlock"), Some(&admin), &json!({}))
        .await;
    problem(r, StatusCode::FORBIDDEN, "step_up_required").await;
    let r = app
        .post(
            &format!("{sam}/password"),
            Some(&admin),
            &json!({"temporary_password": OTHER_TEMP}),
        )
        .await;
    problem(r, StatusCode::FORBIDDEN, "step_up_required").await;
    let r = delete(&app, &format!("{sam}/mfa"), &admin).await;
    problem(r, StatusCode::FORBIDDEN, "step_up_required").await;
    let r = app
        .patch(&sam, Some(&admin), &json!({"role": "practice_admin"}))
        .await;
    problem(r, StatusCode::FORBIDDEN, "step_up_required").await;
    // Not credential actions: names and deactivation go on without it.
    let r = app
        .patch(&sam, Some(&admin), &json!({"first_name": "Samuel"}))
        .await;
    assert_eq!(ok_json(r).await["role"], "staff");
    // Nothing of the refused actions happened.
    let flow = ok_json(app.login("step-clinic", "sam", TEMP).await).await;
    assert_eq!(flow["status"], "password_change_required");

    // A fresh code from the admin's email: all four go through.
    let mark = app.outbox_mark();
    let r = app
        .post(
            "/v1/me/step-up/code",
            Some(&admin),
            &json!({"channel": "email"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let code = app.code_after(mark, "admin@step-clinic.example.com").await;
    let r = app
        .post(
            "/v1/me/step-up",
            Some(&admin),
            &json!({"method": "code", "code": code}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = app
        .post(&format!("{sam}/unlock"), Some(&admin), &json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = app
        .post(
            &format!("{sam}/password"),
            Some(&admin),
            &json!({"temporary_password": OTHER_TEMP}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = delete(&app, &format!("{sam}/mfa"), &admin).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = app
        .patch(&sam, Some(&admin), &json!({"role": "practice_admin"}))
        .await;
    assert_eq!(ok_json(r).await["role"], "practice_admin");
}
