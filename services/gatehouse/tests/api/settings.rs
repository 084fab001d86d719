//! A tenant and its settings (T1, M2, P2).

// A test fails by panicking: unwrap and expect are its assertions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::helpers::{Db, TestApp, error_fields, ok_json, problem};
use gatehouse_testkit::on_both_databases;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeSet;

on_both_databases!(
    t1_tenant_shows_the_contract_defaults,
    t1_patch_changes_only_the_named_fields_visible_on_get_and_audited,
    t1_out_of_range_settings_are_each_reported_and_nothing_changes,
    m2_operator_tenant_cannot_set_mfa_policy_other_than_require,
    p2_stricter_password_policy_applies_to_the_next_creation_and_forced_change,
);

const TEMP: &str = "Temporary-Pass-1234!";

async fn tenant(app: &TestApp, token: &str, company: &str) -> Value {
    ok_json(
        app.get(&format!("/v1/tenants/{company}"), Some(token))
            .await,
    )
    .await
}

async fn patch(app: &TestApp, token: &str, company: &str, body: &Value) -> Response {
    app.patch(
        &format!("/v1/tenants/{company}/settings"),
        Some(token),
        body,
    )
    .await
}

async fn settings_events(app: &TestApp, token: &str, company: &str) -> Vec<Value> {
    let events = ok_json(
        app.get(
            &format!("/v1/tenants/{company}/audit-events?action=tenant.settings_changed"),
            Some(token),
        )
        .await,
    )
    .await;
    events["items"].as_array().unwrap().clone()
}

/// Merges `patch` into `base` the way a settings PATCH should (objects field by field).
fn merged(base: &Value, patch: &Value) -> Value {
    let mut out = base.clone();
    for (k, v) in patch.as_object().unwrap() {
        if v.is_object() {
            out[k] = merged(&base[k], v);
        } else {
            out[k] = v.clone();
        }
    }
    out
}

async fn t1_tenant_shows_the_contract_defaults(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.mfa_practice("def-clinic").await;
    let t = tenant(&app, &admin, "def-clinic").await;
    assert_eq!(t["company"], "def-clinic");
    assert_eq!(t["name"], "def-clinic clinic");
    assert_eq!(t["timezone"], "America/New_York");
    assert_eq!(t["status"], "active");
    let s = &t["settings"];
    assert_eq!(s["mfa_policy"], "require");
    assert_eq!(s["allowed_methods"], json!(["email", "sms", "totp"]));
    assert_eq!(s["code_ttl_seconds"], 300);
    assert_eq!(s["remember_device_hours"], 18);
    assert_eq!(s["lockout_threshold"], 5);
    assert_eq!(s["timezone"], "America/New_York");
    assert_eq!(
        s["password_policy"],
        json!({"min_length": 12, "require_upper": true, "require_lower": true,
               "require_digit": true, "require_special": true})
    );
    assert!(s["self_service_mfa"].is_boolean(), "{s}");
    assert_eq!(s["sms_country_codes"], json!(["1"]));
    assert_eq!(s["sms_daily_limit"], 500);

    // The vendor's support staff read the same document; a staff user may not.
    let support = app.support_token().await;
    assert_eq!(tenant(&app, &support, "def-clinic").await["settings"], *s);
    let staff = app.staff("def-clinic", &admin, "def.staff").await;
    let r = app.get("/v1/tenants/def-clinic", Some(&staff)).await;
    problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    // Another practice's admin does not even learn it exists.
    let other = app.practice("def-other").await;
    let r = app.get("/v1/tenants/def-clinic", Some(&other)).await;
    problem(r, StatusCode::NOT_FOUND, "not_found").await;
}

async fn t1_patch_changes_only_the_named_fields_visible_on_get_and_audited(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.practice("pat-clinic").await;
    let before = tenant(&app, &admin, "pat-clinic").await;
    let events_before = settings_events(&app, &admin, "pat-clinic").await.len();

    let change = json!({"code_ttl_seconds": 600, "password_policy": {"require_special": false}});
    let r = patch(&app, &admin, "pat-clinic", &change).await;
    let answered = ok_json(r).await;
    let expected = merged(&before["settings"], &change);
    assert_ne!(expected, before["settings"]);
    assert_eq!(
        answered["settings"], expected,
        "PATCH answers the updated tenant"
    );
    assert_eq!(answered["timezone"], before["timezone"]);
    let got = tenant(&app, &admin, "pat-clinic").await;
    assert_eq!(
        got["settings"], expected,
        "GET shows the change and nothing else"
    );

    let events = settings_events(&app, &admin, "pat-clinic").await;
    assert_eq!(events.len(), events_before + 1, "{events:?}");
    let e = &events[0];
    assert_eq!(e["actor"]["username"], "pat-clinic-admin");
    let details = e["details"].to_string();
    for field in ["code_ttl_seconds", "password_policy"] {
        assert!(details.contains(field), "{field} not in {details}");
    }
    assert!(!details.contains("sms_daily_limit"), "{details}");

    // Every other setting, in one PATCH; the earlier change stays.
    let change2 = json!({
        "mfa_policy": "suggest", "allowed_methods": ["totp", "email"],
        "remember_device_hours": 0, "lockout_threshold": 7, "timezone": "America/Chicago",
        "self_service_mfa": !before["settings"]["self_service_mfa"].as_bool().unwrap(),
        "sms_country_codes": ["1", "44"], "sms_daily_limit": 0,
        "password_policy": {"min_length": 14, "require_digit": false}
    });
    let answered = ok_json(patch(&app, &admin, "pat-clinic", &change2).await).await;
    let expected2 = merged(&expected, &change2);
    assert_eq!(answered["settings"], expected2);
    assert_eq!(expected2["code_ttl_seconds"], 600);
    assert_eq!(expected2["password_policy"]["require_special"], false);
    assert_eq!(expected2["password_policy"]["require_upper"], true);
    let got = tenant(&app, &admin, "pat-clinic").await;
    assert_eq!(got["settings"], expected2);
    assert_eq!(
        got["timezone"], "America/Chicago",
        "the tenant's own timezone moves too"
    );
    assert_eq!(
        settings_events(&app, &admin, "pat-clinic").await.len(),
        events_before + 2
    );

    // Only a practice admin of the tenant may patch.
    let staff = app.staff("pat-clinic", &admin, "pat.staff").await;
    let r = patch(
        &app,
        &staff,
        "pat-clinic",
        &json!({"code_ttl_seconds": 120}),
    )
    .await;
    problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    let support = app.support_token().await;
    let r = patch(
        &app,
        &support,
        "pat-clinic",
        &json!({"code_ttl_seconds": 120}),
    )
    .await;
    assert!(r.status().is_client_error(), "{}", r.status());
    assert_eq!(
        tenant(&app, &admin, "pat-clinic").await["settings"],
        expected2
    );
}

async fn t1_out_of_range_settings_are_each_reported_and_nothing_changes(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.practice("rng-clinic").await;
    let before = tenant(&app, &admin, "rng-clinic").await;
    let events_before = settings_events(&app, &admin, "rng-clinic").await.len();

    let r = patch(
        &app,
        &admin,
        "rng-clinic",
        &json!({"code_ttl_seconds": 59, "remember_device_hours": 721, "lockout_threshold": 0,
                "timezone": "Mars/Olympus_Mons", "allowed_methods": [],
                "password_policy": {"min_length": 0}, "sms_country_codes": ["+1"],
                "mfa_policy": "require"}),
    )
    .await;
    let body = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let fields = error_fields(&body);
    for f in [
        "code_ttl_seconds",
        "remember_device_hours",
        "lockout_threshold",
        "timezone",
        "allowed_methods",
        "password_policy.min_length",
        "sms_country_codes",
    ] {
        assert!(fields.contains(f), "{f} not reported: {body}");
    }
    assert!(!fields.contains("mfa_policy"), "{body}");
    assert_eq!(
        tenant(&app, &admin, "rng-clinic").await,
        before,
        "a refused patch changes nothing"
    );
    assert_eq!(
        settings_events(&app, &admin, "rng-clinic").await.len(),
        events_before
    );

    // Each bound, one at a time: just outside is refused, the edge is accepted.
    for (field, bad, edge) in [
        ("code_ttl_seconds", 59, 60),
        ("code_ttl_seconds", 901, 900),
        ("remember_device_hours", 721, 720),
    ] {
        let prior = tenant(&app, &admin, "rng-clinic").await;
        let r = patch(&app, &admin, "rng-clinic", &json!({field: bad})).await;
        let body = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert_eq!(
            error_fields(&body),
            BTreeSet::from([field.to_owned()]),
            "{body}"
        );
        let t = tenant(&app, &admin, "rng-clinic").await;
        assert_eq!(t, prior, "refused {field}={bad} changed something");
        let t = ok_json(patch(&app, &admin, "rng-clinic", &json!({field: edge})).await).await;
        assert_eq!(t["settings"][field], edge);
    }
    // remember_device_hours 0 (never remember) is allowed.
    let t = ok_json(
        patch(
            &app,
            &admin,
            "rng-clinic",
            &json!({"remember_device_hours": 0}),
        )
        .await,
    )
    .await;
    assert_eq!(t["settings"]["remember_device_hours"], 0);
    let accepted = settings_events(&app, &admin, "rng-clinic").await.len();
    assert_eq!(
        accepted,
        events_before + 4,
        "only accepted patches are audited"
    );

    // Wrong types, unknown values and unknown fields are 422, never 500, and change nothing.
    let now = tenant(&app, &admin, "rng-clinic").await;
    for bad in [
        json!({"mfa_policy": "sometimes"}),
        json!({"allowed_methods": ["carrier_pigeon"]}),
        json!({"code_ttl_seconds": -1}),
        json!({"code_ttl_seconds": "300"}),
        json!({"lockout_threshold": 1.5}),
        json!({"mfa_polcy": "off"}),
        json!({"password_policy": {"min_lenght": 20}}),
    ] {
        let r = patch(&app, &admin, "rng-clinic", &bad).await;
        problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    }
    assert_eq!(tenant(&app, &admin, "rng-clinic").await, now);
    assert_eq!(
        settings_events(&app, &admin, "rng-clinic").await.len(),
        accepted
    );
}

async fn m2_operator_tenant_cannot_set_mfa_policy_other_than_require(db: Db) {
    let app = TestApp::spawn(db).await;
    let support = app.support_token().await;
    let before = tenant(&app, &support, "operator").await;
    assert_eq!(before["settings"]["mfa_policy"], "require");

    for policy in ["off", "suggest"] {
        let r = patch(&app, &support, "operator", &json!({"mfa_policy": policy})).await;
        let body = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert_eq!(
            error_fields(&body),
            BTreeSet::from(["mfa_policy".to_owned()]),
            "{body}"
        );
    }
    // Refused together with a valid field: nothing of the patch is applied.
    let r = patch(
        &app,
        &support,
        "operator",
        &json!({"mfa_policy": "off", "code_ttl_seconds": 120}),
    )
    .await;
    problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(tenant(&app, &support, "operator").await, before);

    // Other operator settings, and "require" itself, are accepted.
    let t = ok_json(
        patch(
            &app,
            &support,
            "operator",
            &json!({"mfa_policy": "require", "code_ttl_seconds": 120}),
        )
        .await,
    )
    .await;
    assert_eq!(t["settings"]["mfa_policy"], "require");
    assert_eq!(t["settings"]["code_ttl_seconds"], 120);
    let events = settings_events(&app, &support, "operator").await;
    assert_eq!(events.len(), 1, "{events:?}");

    // A practice may turn MFA off.
    let admin = app.practice("m2-clinic").await;
    let t = ok_json(patch(&app, &admin, "m2-clinic", &json!({"mfa_policy": "off"})).await).await;
    assert_eq!(t["settings"]["mfa_policy"], "off");
    assert_eq!(
        tenant(&app, &support, "operator").await["settings"]["mfa_policy"],
        "require"
    );
}

async fn p2_stricter_password_policy_applies_to_the_next_creation_and_forced_change(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.practice("pol-clinic").await;
    // 14 characters: meets the default policy (12), not a policy of 16.
    let medium = "Maple-Cove-71!";
    let long = "Maple-Cove-Harbor-71!";
    assert!(medium.chars().count() >= 12 && medium.chars().count() < 16);
    let user = |name: &str, password: &str| {
        json!({"username": name, "first_name": "Pat", "last_name": "Policy",
               "role": "staff", "password": password})
    };

    // Under the default policy the medium password is fine for a new user.
    let r = app
        .post(
            "/v1/tenants/pol-clinic/users",
            Some(&admin),
            &user("early.bird", TEMP),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = app
        .post(
            "/v1/tenants/pol-clinic/users",
            Some(&admin),
            &user("medium.ok", medium),
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap()
    );

    let t = ok_json(
        patch(
            &app,
            &admin,
            "pol-clinic",
            &json!({"password_policy": {"min_length": 16}}),
        )
        .await,
    )
    .await;
    assert_eq!(t["settings"]["password_policy"]["min_length"], 16);

    // The forced change of a user created before the change follows the new policy.
    let r = app.login("pol-clinic", "early.bird", TEMP).await;
    let flow = ok_json(r).await;
    assert_eq!(flow["status"], "password_change_required", "{flow}");
    let id = flow["flow_id"].as_str().unwrap();
    let r = app
        .post(
            &format!("/v1/auth/flows/{id}/password"),
            None,
            &json!({"new_password": medium}),
        )
        .await;
    let body = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "password_policy").await;
    let rules: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["rule"].as_str())
        .collect();
    assert_eq!(rules, ["min_length"], "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("16"),
        "{body}"
    );
    let r = app
        .post(
            &format!("/v1/auth/flows/{id}/password"),
            None,
            &json!({"new_password": long}),
        )
        .await;
    let flow = ok_json(r).await;
    assert_eq!(flow["status"], "authenticated", "{flow}");
    app.token("pol-clinic", "early.bird", long).await;

    // The next creation follows it too; a long enough password is still accepted.
    let r = app
        .post(
            "/v1/tenants/pol-clinic/users",
            Some(&admin),
            &user("late.bird", long),
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap()
    );
    let r = app
        .post(
            "/v1/tenants/pol-clinic/users",
            Some(&admin),
            &user("too.short", medium),
        )
        .await;
    let body = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "password_policy").await;
    let rules: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["rule"].as_str())
        .collect();
    assert_eq!(rules, ["min_length"], "{body}");
    let r = app
        .get("/v1/tenants/pol-clinic/users/too.short", Some(&admin))
        .await;
    problem(r, StatusCode::NOT_FOUND, "not_found").await;
}
