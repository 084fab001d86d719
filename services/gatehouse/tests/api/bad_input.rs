//! Bad input of every kind answers a 4xx problem+json, never a 500, and changes nothing.

use crate::helpers::{Db, NEW_PASSWORD, TestApp, ok_json, problem};
use gatehouse_testkit::on_both_databases;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

on_both_databases!(
    bad_input_malformed_json_answers_422_and_changes_nothing,
    bad_input_wrong_json_types_answer_422,
    bad_input_missing_required_fields_answer_422_and_create_nothing,
    bad_input_body_over_64_kib_answers_413,
    bad_input_non_json_content_type_answers_415,
    bad_input_invalid_path_ids_and_unknown_flows_answer_404,
    bad_input_unknown_route_answers_404_and_wrong_method_405,
    bad_input_unknown_settings_fields_answer_422_and_change_nothing,
    bad_input_invalid_setting_values_are_reported_all_at_once,
    bad_input_bad_query_values_answer_422,
    bad_input_empty_or_garbage_bearer_token_answers_401,
    bad_input_nul_bytes_in_text_never_cause_a_server_error,
);

const TEMP_PASSWORD: &str = "Temporary-Pass-1234!";

/// Sends a raw body with the given content type (none when `None`).
async fn raw(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    content_type: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> Response {
    let mut r = app.client.request(method, app.url(path)).body(body);
    if let Some(ct) = content_type {
        r = r.header(CONTENT_TYPE, ct);
    }
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    r.send().await.unwrap()
}

/// The field names of a problem's `errors`.
fn fields(body: &Value) -> Vec<String> {
    let mut f: Vec<String> = body["errors"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e["field"].as_str())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    f.sort();
    f
}

/// A practice with a staff user `bob` (temporary password); returns the admin's token.
async fn clinic(app: &TestApp, company: &str) -> String {
    let admin = app.practice(company).await;
    let r = app
        .post(
            &format!("/v1/tenants/{company}/users"),
            Some(&admin),
            &json!({"username": "bob", "first_name": "Bob", "last_name": "Builder",
                    "role": "staff", "password": TEMP_PASSWORD}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    admin
}

/// What must not change: the tenant, its users, bob's hours, the number of audit events.
async fn state(app: &TestApp, company: &str, admin: &str) -> Value {
    let t = format!("/v1/tenants/{company}");
    let v = ok_json(
        app.get(&format!("{t}/audit-events/verify"), Some(admin))
            .await,
    )
    .await;
    assert_eq!(v["ok"], true);
    json!({
        "tenant": ok_json(app.get(&t, Some(admin)).await).await,
        "users": ok_json(app.get(&format!("{t}/users"), Some(admin)).await).await,
        "hours": ok_json(app.get(&format!("{t}/users/bob/login-hours"), Some(admin)).await).await,
        "events": v["events"],
    })
}

async fn bad_input_malformed_json_answers_422_and_changes_nothing(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = clinic(&app, "json-clinic").await;
    let flow = app.login("json-clinic", "bob", TEMP_PASSWORD).await;
    let flow = ok_json(flow).await;
    assert_eq!(flow["status"], "password_change_required");
    let flow_id = flow["flow_id"].as_str().unwrap().to_owned();
    let before = state(&app, "json-clinic", &admin).await;

    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let bodies = [
        "",
        "{",
        "{\"company\": \"json-clinic\", \"username\": \"bob\",",
        "{'company': 'json-clinic'}",
        "not json at all",
        "{\"a\": 1} trailing",
        "\u{feff}{}",
        deep.as_str(),
    ];
    let targets = [
        (Method::POST, "/v1/auth/login".to_owned(), None),
        (
            Method::POST,
            format!("/v1/auth/flows/{flow_id}/password"),
            None,
        ),
        (
            Method::POST,
            "/v1/tenants/json-clinic/users".to_owned(),
            Some(admin.as_str()),
        ),
        (
            Method::PATCH,
            "/v1/tenants/json-clinic/settings".to_owned(),
            Some(admin.as_str()),
        ),
        (
            Method::PUT,
            "/v1/tenants/json-clinic/users/bob/login-hours".to_owned(),
            Some(admin.as_str()),
        ),
        (
            Method::POST,
            "/v1/me/password".to_owned(),
            Some(admin.as_str()),
        ),
    ];
    for (method, path, token) in &targets {
        for body in bodies {
            let r = raw(
                &app,
                method.clone(),
                path,
                *token,
                Some("application/json"),
                body.to_owned(),
            )
            .await;
            let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
            assert_eq!(fields(&p), ["body"], "{method} {path} {body:.40}: {p}");
        }
    }

    // The flow is still at its step (a bad body did not consume it), and nothing else moved.
    assert_eq!(before, state(&app, "json-clinic", &admin).await);
    let r = app
        .post(
            &format!("/v1/auth/flows/{flow_id}/password"),
            None,
            &json!({"new_password": NEW_PASSWORD}),
        )
        .await;
    assert_eq!(ok_json(r).await["status"], "authenticated");
}

async fn bad_input_wrong_json_types_answer_422(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = clinic(&app, "types-clinic").await;
    let before = state(&app, "types-clinic", &admin).await;
    let cases: Vec<(Method, &str, Value)> = vec![
        (
            Method::POST,
            "/v1/auth/login",
            json!({"company": "types-clinic", "username": "bob", "password": 12345678}),
        ),
        (
            Method::POST,
            "/v1/auth/login",
            json!({"company": ["types-clinic"], "username": "bob", "password": "x"}),
        ),
        (
            Method::POST,
            "/v1/auth/login",
            json!({"company": "types-clinic", "username": null, "password": "x"}),
        ),
        (
            Method::POST,
            "/v1/auth/login",
            json!(["types-clinic", "bob", TEMP_PASSWORD]),
        ),
        (Method::POST, "/v1/auth/login", json!("types-clinic")),
        (
            Method::POST,
            "/v1/tenants/types-clinic/users",
            json!({"username": "carl", "first_name": "Carl", "last_name": "C", "role": "staff",
                   "password": TEMP_PASSWORD, "groups": ["not-a-uuid"]}),
        ),
        (
            Method::POST,
            "/v1/tenants/types-clinic/users",
            json!({"username": 7, "first_name": "Carl", "last_name": "C", "role": "staff", "password": TEMP_PASSWORD}),
        ),
        (
            Method::PATCH,
            "/v1/tenants/types-clinic/settings",
            json!({"code_ttl_seconds": "300"}),
        ),
        (
            Method::PATCH,
            "/v1/tenants/types-clinic/settings",
            json!({"lockout_threshold": -1}),
        ),
        (
            Method::PATCH,
            "/v1/tenants/types-clinic/settings",
            json!({"lockout_threshold": 4_294_967_296_u64}),
        ),
        (
            Method::PATCH,
            "/v1/tenants/types-clinic/settings",
            json!({"code_ttl_seconds": 120.5}),
        ),
        (
            Method::PATCH,
            "/v1/tenants/types-clinic/settings",
            json!({"self_service_mfa": "yes"}),
        ),
        (
            Method::PATCH,
            "/v1/tenants/types-clinic/settings",
            json!({"mfa_policy": "sometimes"}),
        ),
        (
            Method::PATCH,
            "/v1/tenants/types-clinic/settings",
            json!({"allowed_methods": "sms"}),
        ),
        (
            Method::PATCH,
            "/v1/tenants/types-clinic/settings",
            json!({"allowed_methods": ["pigeon"]}),
        ),
        (
            Method::PATCH,
            "/v1/tenants/types-clinic/settings",
            json!({"password_policy": 12}),
        ),
        (
            Method::PATCH,
            "/v1/tenants/types-clinic/settings",
            json!([{"lockout_threshold": 3}]),
        ),
        (
            Method::PUT,
            "/v1/tenants/types-clinic/users/bob/login-hours",
            json!({"weekday": "monday", "start": "09:00", "end": "17:00"}),
        ),
        (
            Method::PUT,
            "/v1/tenants/types-clinic/users/bob/login-hours",
            json!([{"weekday": 1, "start": 900, "end": 1700}]),
        ),
        (
            Method::POST,
            "/v1/me/password",
            json!({"current_password": 1, "new_password": true}),
        ),
    ];
    for (method, path, body) in cases {
        let token = (path != "/v1/auth/login").then_some(admin.as_str());
        let r = app.send_json(method.clone(), path, token, &body).await;
        let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert!(!fields(&p).is_empty(), "{method} {path} {body}: {p}");
    }
    // A key given twice is refused too.
    let r = raw(
        &app,
        Method::PATCH,
        "/v1/tenants/types-clinic/settings",
        Some(&admin),
        Some("application/json"),
        r#"{"lockout_threshold": 3, "lockout_threshold": 4}"#,
    )
    .await;
    problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;

    let after = state(&app, "types-clinic", &admin).await;
    assert_eq!(before, after);
    let r = app
        .get("/v1/tenants/types-clinic/users/carl", Some(&admin))
        .await;
    problem(r, StatusCode::NOT_FOUND, "not_found").await;
}

async fn bad_input_missing_required_fields_answer_422_and_create_nothing(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = clinic(&app, "missing-clinic").await;
    let support = app.support_token().await;
    let before = state(&app, "missing-clinic", &admin).await;
    let full_user = json!({"username": "carl", "first_name": "Carl", "last_name": "Cole",
                           "role": "staff", "password": TEMP_PASSWORD});
    for drop in ["username", "first_name", "last_name", "role", "password"] {
        let mut body = full_user.clone();
        body.as_object_mut().unwrap().remove(drop);
        let r = app
            .post("/v1/tenants/missing-clinic/users", Some(&admin), &body)
            .await;
        let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert!(p["errors"].to_string().contains(drop), "{drop}: {p}");
    }
    for drop in ["company", "username", "password"] {
        let mut body =
            json!({"company": "missing-clinic", "username": "bob", "password": TEMP_PASSWORD});
        body.as_object_mut().unwrap().remove(drop);
        let r = app.post("/v1/auth/login", None, &body).await;
        let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert!(p["errors"].to_string().contains(drop), "{drop}: {p}");
    }
    for body in [
        json!({}),
        json!({"admin": {"username": "x"}}),
        json!({"company": "new-clinic", "name": "New"}),
    ] {
        let r = app.post("/v1/tenants", Some(&support), &body).await;
        problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    }
    let r = app
        .post(
            "/v1/me/password",
            Some(&admin),
            &json!({"new_password": "Another-Pass-55!x"}),
        )
        .await;
    problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let r = app.post("/v1/auth/login", None, &json!({})).await;
    problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;

    let after = state(&app, "missing-clinic", &admin).await;
    assert_eq!(before, after);
    let r = app
        .get("/v1/tenants/missing-clinic/users/carl", Some(&admin))
        .await;
    problem(r, StatusCode::NOT_FOUND, "not_found").await;
    let tenants = ok_json(app.get("/v1/tenants", Some(&support)).await).await;
    assert!(!tenants.to_string().contains("new-clinic"));
    // The admin's password did not change either.
    app.token("missing-clinic", "missing-clinic-admin", NEW_PASSWORD)
        .await;
}

async fn bad_input_body_over_64_kib_answers_413(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = clinic(&app, "big-clinic").await;
    let before = state(&app, "big-clinic", &admin).await;
    let login = |filler: usize| {
        serde_json::to_string(
            &json!({"company": "big-clinic", "username": "x".repeat(filler), "password": "y"}),
        )
        .unwrap()
    };
    // Just under the limit is read (and refused on its merits)...
    let body = login(64 * 1024 - 100);
    assert!(body.len() <= 64 * 1024);
    let r = raw(
        &app,
        Method::POST,
        "/v1/auth/login",
        None,
        Some("application/json"),
        body,
    )
    .await;
    problem(r, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    // ...just over it and far over it are not.
    for filler in [64 * 1024, 1024 * 1024] {
        let body = login(filler);
        assert!(body.len() > 64 * 1024);
        let r = raw(
            &app,
            Method::POST,
            "/v1/auth/login",
            None,
            Some("application/json"),
            body,
        )
        .await;
        problem(r, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    }
    let huge_hours: Vec<Value> = (0..3000)
        .map(|_| json!({"weekday": "monday", "start": "09:00", "end": "17:00"}))
        .collect();
    let r = app
        .put(
            "/v1/tenants/big-clinic/users/bob/login-hours",
            Some(&admin),
            &json!(huge_hours),
        )
        .await;
    problem(r, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    let r = app
        .post(
            "/v1/tenants/big-clinic/users",
            Some(&admin),
            &json!({"username": "carl", "first_name": "C".repeat(70_000), "last_name": "C",
                    "role": "staff", "password": TEMP_PASSWORD}),
        )
        .await;
    problem(r, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    assert_eq!(before, state(&app, "big-clinic", &admin).await);
}

async fn bad_input_non_json_content_type_answers_415(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = clinic(&app, "type-clinic").await;
    let before = state(&app, "type-clinic", &admin).await;
    let login = json!({"company": "type-clinic", "username": "type-clinic-admin", "password": NEW_PASSWORD}).to_string();
    for ct in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        Some("application/xml"),
        Some("not a media type"),
        None,
    ] {
        let r = raw(
            &app,
            Method::POST,
            "/v1/auth/login",
            None,
            ct,
            login.clone(),
        )
        .await;
        problem(
            r,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        )
        .await;
        let r = raw(
            &app,
            Method::PATCH,
            "/v1/tenants/type-clinic/settings",
            Some(&admin),
            ct,
            r#"{"lockout_threshold": 3}"#,
        )
        .await;
        problem(
            r,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        )
        .await;
        let r = raw(
            &app,
            Method::POST,
            "/v1/tenants/type-clinic/users",
            Some(&admin),
            ct,
            json!({"username": "carl", "first_name": "Carl", "last_name": "C", "role": "staff",
                   "password": TEMP_PASSWORD})
            .to_string(),
        )
        .await;
        problem(
            r,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        )
        .await;
    }
    assert_eq!(before, state(&app, "type-clinic", &admin).await);
    // The same bodies as JSON (with a charset parameter) are accepted.
    let r = raw(
        &app,
        Method::POST,
        "/v1/auth/login",
        None,
        Some("application/json; charset=utf-8"),
        login,
    )
    .await;
    assert_eq!(ok_json(r).await["status"], "authenticated");
    let r = raw(
        &app,
        Method::PATCH,
        "/v1/tenants/type-clinic/settings",
        Some(&admin),
        Some("application/json"),
        r#"{"lockout_threshold": 3}"#,
    )
    .await;
    assert_eq!(ok_json(r).await["settings"]["lockout_threshold"], 3);
}

async fn bad_input_invalid_path_ids_and_unknown_flows_answer_404(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = clinic(&app, "path-clinic").await;
    let before = state(&app, "path-clinic", &admin).await;
    let hours = json!([{"weekday": "monday", "start": "09:00", "end": "17:00"}]);
    let long = "a".repeat(41);
    for company in [
        "Not_Valid!",
        "a",
        long.as_str(),
        "path%20clinic",
        "%FF%FE",
        "path-clinic%00",
    ] {
        let t = format!("/v1/tenants/{company}");
        let r = app.get(&t, Some(&admin)).await;
        problem(r, StatusCode::NOT_FOUND, "not_found").await;
        let r = app.get(&format!("{t}/users"), Some(&admin)).await;
        problem(r, StatusCode::NOT_FOUND, "not_found").await;
        let r = app.get(&format!("{t}/audit-events"), Some(&admin)).await;
        problem(r, StatusCode::NOT_FOUND, "not_found").await;
        let r = app
            .patch(
                &format!("{t}/settings"),
                Some(&admin),
                &json!({"lockout_threshold": 3}),
            )
            .await;
        problem(r, StatusCode::NOT_FOUND, "not_found").await;
        let r = app
            .put(&format!("{t}/users/bob/login-hours"), Some(&admin), &hours)
            .await;
        problem(r, StatusCode::NOT_FOUND, "not_found").await;
    }
    // A user segment that is neither a UUID nor a possible username, or an unknown UUID.
    let too_long = "b".repeat(65);
    for user in [
        "bob!",
        "%FF",
        "not%20a%20user",
        "00000000-0000-0000-0000-000000000000",
        &too_long,
    ] {
        let r = app
            .get(
                &format!("/v1/tenants/path-clinic/users/{user}"),
                Some(&admin),
            )
            .await;
        problem(r, StatusCode::NOT_FOUND, "not_found").await;
        let r = app
            .put(
                &format!("/v1/tenants/path-clinic/users/{user}/login-hours"),
                Some(&admin),
                &hours,
            )
            .await;
        problem(r, StatusCode::NOT_FOUND, "not_found").await;
    }
    // Flow ids: not a UUID, or a UUID no flow has.
    let (unknown, nil) = (
        uuid::Uuid::new_v4().to_string(),
        uuid::Uuid::nil().to_string(),
    );
    for flow in ["not-a-uuid", "12345", "%FF", &unknown, &nil] {
        let r = app
            .post(
                &format!("/v1/auth/flows/{flow}/password"),
                None,
                &json!({"new_password": NEW_PASSWORD}),
            )
            .await;
        problem(r, StatusCode::NOT_FOUND, "not_found").await;
    }
    assert_eq!(before, state(&app, "path-clinic", &admin).await);
}

async fn bad_input_unknown_route_answers_404_and_wrong_method_405(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = clinic(&app, "route-clinic").await;
    let before = state(&app, "route-clinic", &admin).await;
    // `/` is the pages' front door: people who open the bare address get the sign-in page.
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(app.url("/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/signin");
    for path in [
        "/v1",
        "/v1/nope",
        "/v2/auth/login",
        "/v1/tenants/route-clinic/unknown",
        "/v1/tenants/route-clinic/users/bob/unknown",
        "/v1/tenants/route-clinic/settings/extra",
        "/v1/auth/flows",
    ] {
        for token in [None, Some(admin.as_str())] {
            let r = app.get(path, token).await;
            problem(r, StatusCode::NOT_FOUND, "not_found").await;
            let r = app.post(path, token, &json!({})).await;
            problem(r, StatusCode::NOT_FOUND, "not_found").await;
        }
    }
    let cases = [
        (Method::GET, "/v1/auth/login"),
        (Method::DELETE, "/v1/auth/login"),
        (Method::PUT, "/v1/auth/session"),
        (Method::GET, "/v1/auth/logout"),
        (Method::DELETE, "/v1/me"),
        (Method::GET, "/v1/me/password"),
        (Method::DELETE, "/v1/tenants"),
        (Method::DELETE, "/v1/tenants/route-clinic"),
        (Method::PUT, "/v1/tenants/route-clinic/settings"),
        (Method::GET, "/v1/tenants/route-clinic/settings"),
        (Method::DELETE, "/v1/tenants/route-clinic/users"),
        (Method::DELETE, "/v1/tenants/route-clinic/users/bob"),
        (
            Method::POST,
            "/v1/tenants/route-clinic/users/bob/login-hours",
        ),
        (
            Method::DELETE,
            "/v1/tenants/route-clinic/users/bob/login-hours",
        ),
        (Method::POST, "/v1/tenants/route-clinic/audit-events"),
        (Method::DELETE, "/v1/tenants/route-clinic/audit-events"),
        (Method::POST, "/v1/tenants/route-clinic/audit-events/verify"),
        (
            Method::GET,
            "/v1/auth/flows/00000000-0000-0000-0000-000000000000/password",
        ),
    ];
    for (method, path) in cases {
        let r = app
            .send_json(
                method.clone(),
                path,
                Some(&admin),
                &json!({"lockout_threshold": 3}),
            )
            .await;
        // RFC 9110: a 405 names the methods the path does support.
        let allow = r.headers()["allow"].to_str().unwrap().to_owned();
        assert!(
            !allow.is_empty() && !allow.contains(method.as_str()),
            "{method} {path}: {allow}"
        );
        problem(r, StatusCode::METHOD_NOT_ALLOWED, "method_not_supported").await;
    }
    let r = app
        .client
        .delete(app.url("/v1/tenants"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["allow"], "GET, POST");
    // bob, the settings and the log are all still there.
    assert_eq!(before, state(&app, "route-clinic", &admin).await);
}

async fn bad_input_unknown_settings_fields_answer_422_and_change_nothing(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = clinic(&app, "unknown-clinic").await;
    let before = state(&app, "unknown-clinic", &admin).await;
    for body in [
        json!({"favourite_colour": "red"}),
        json!({"lockout_threshold": 3, "favourite_colour": "red"}),
        json!({"lockout_threshold": 3, "Lockout_Threshold": 4}),
        json!({"password_policy": {"min_length": 14, "max_length": 20}}),
        json!({"mfa_policy": "off", "name": "Renamed clinic"}),
        json!({"status": "suspended"}),
    ] {
        let r = app
            .patch("/v1/tenants/unknown-clinic/settings", Some(&admin), &body)
            .await;
        let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert!(!fields(&p).is_empty(), "{body}: {p}");
    }
    let after = state(&app, "unknown-clinic", &admin).await;
    assert_eq!(before, after);
    assert_eq!(after["tenant"]["settings"]["lockout_threshold"], 5);
    // `off`: the fixture of `practice()`, unchanged by the refused patches.
    assert_eq!(after["tenant"]["settings"]["mfa_policy"], "off");
    assert_eq!(
        after["tenant"]["settings"]["password_policy"]["min_length"],
        12
    );
    assert_eq!(after["tenant"]["status"], "active");
    let log = ok_json(
        app.get(
            "/v1/tenants/unknown-clinic/audit-events?action=tenant.settings_changed",
            Some(&admin),
        )
        .await,
    )
    .await;
    // Only the fixture's own change (by support, before the admin signed in).
    let by: Vec<&Value> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["actor"]["username"])
        .collect();
    assert_eq!(by, [&json!(crate::helpers::SUPPORT_USER)], "{log}");
}

async fn bad_input_invalid_setting_values_are_reported_all_at_once(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = clinic(&app, "values-clinic").await;
    let before = state(&app, "values-clinic", &admin).await;
    let r = app
        .patch(
            "/v1/tenants/values-clinic/settings",
            Some(&admin),
            &json!({
                "mfa_policy": "off",
                "allowed_methods": [],
                "code_ttl_seconds": 59,
                "remember_device_hours": 721,
                "lockout_threshold": 0,
                "timezone": "Mars/Olympus_Mons",
                "password_policy": {"min_length": 7, "require_upper": false},
                "self_service_mfa": false,
                "sms_country_codes": ["1", "0044"],
                "sms_daily_limit": 1_000_001
            }),
        )
        .await;
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(
        fields(&p),
        [
            "allowed_methods",
            "code_ttl_seconds",
            "lockout_threshold",
            "password_policy.min_length",
            "remember_device_hours",
            "sms_country_codes",
            "sms_daily_limit",
            "timezone",
        ],
        "{p}"
    );
    assert!(
        p["errors"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["message"].as_str().is_some_and(|m| !m.is_empty()))
    );
    let r = app
        .patch(
            "/v1/tenants/values-clinic/settings",
            Some(&admin),
            &json!({"allowed_methods": ["sms", "sms"], "code_ttl_seconds": 901, "timezone": ""}),
        )
        .await;
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(
        fields(&p),
        ["allowed_methods", "code_ttl_seconds", "timezone"],
        "{p}"
    );

    // Nothing was applied, not even the valid fields next to the bad ones.
    let after = state(&app, "values-clinic", &admin).await;
    assert_eq!(before, after);
    let s = &after["tenant"]["settings"];
    assert_eq!(s["mfa_policy"], "off", "the fixture's value, unchanged");
    assert_eq!(s["self_service_mfa"], true);
    assert_eq!(s["password_policy"]["require_upper"], true);

    // The edges of the ranges are accepted.
    let r = app
        .patch(
            "/v1/tenants/values-clinic/settings",
            Some(&admin),
            &json!({"code_ttl_seconds": 60, "remember_device_hours": 720, "lockout_threshold": 1,
                    "password_policy": {"min_length": 8}, "sms_country_codes": ["1", "44", "358"]}),
        )
        .await;
    let t = ok_json(r).await;
    assert_eq!(t["settings"]["code_ttl_seconds"], 60);
    assert_eq!(t["settings"]["remember_device_hours"], 720);
    assert_eq!(t["settings"]["password_policy"]["min_length"], 8);
}

async fn bad_input_bad_query_values_answer_422(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = clinic(&app, "query-clinic").await;
    let support = app.support_token().await;
    let cases: Vec<(&str, Vec<&str>)> = vec![
        (
            "/v1/tenants/query-clinic/users?active=maybe",
            vec!["active"],
        ),
        ("/v1/tenants/query-clinic/users?locked=nah", vec!["locked"]),
        (
            "/v1/tenants/query-clinic/users?active=maybe&locked=2",
            vec!["active", "locked"],
        ),
        (
            "/v1/tenants/query-clinic/users?active=TRUE%20OR%201%3D1",
            vec!["active"],
        ),
        ("/v1/tenants/query-clinic/users?limit=abc", vec![]),
        ("/v1/tenants/query-clinic/users?limit=-1", vec![]),
        (
            "/v1/tenants/query-clinic/users?limit=99999999999999999999999",
            vec![],
        ),
        (
            "/v1/tenants/query-clinic/audit-events?since=yesterday",
            vec!["since"],
        ),
        (
            "/v1/tenants/query-clinic/audit-events?until=2024-13-45T99:00:00Z",
            vec!["until"],
        ),
        (
            "/v1/tenants/query-clinic/audit-events?since=yesterday&until=tomorrow",
            vec!["since", "until"],
        ),
        (
            "/v1/tenants/query-clinic/audit-events?since=2024-01-01",
            vec!["since"],
        ),
        (
            "/v1/tenants/query-clinic/audit-events?actor_id=bob",
            vec!["actor_id"],
        ),
        (
            "/v1/tenants/query-clinic/audit-events?actor_id=bob&since=now",
            vec!["actor_id", "since"],
        ),
        (
            "/v1/tenants/query-clinic/audit-events?cursor=abc",
            vec!["cursor"],
        ),
        ("/v1/tenants/query-clinic/audit-events?limit=abc", vec![]),
        ("/v1/tenants/query-clinic/audit-events?limit=1.5", vec![]),
    ];
    for (path, expected) in cases {
        let r = app.get(path, Some(&admin)).await;
        let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        if !expected.is_empty() {
            assert_eq!(fields(&p), expected, "{path}: {p}");
        }
    }
    let r = app.get("/v1/tenants?limit=abc", Some(&support)).await;
    problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;

    // Good values of the same parameters are answered.
    let users = ok_json(
        app.get(
            "/v1/tenants/query-clinic/users?active=true&locked=false&limit=1",
            Some(&admin),
        )
        .await,
    )
    .await;
    assert_eq!(users["items"].as_array().unwrap().len(), 1);
    assert!(users["next_cursor"].is_string());
    let users = ok_json(
        app.get("/v1/tenants/query-clinic/users?active=false", Some(&admin))
            .await,
    )
    .await;
    assert_eq!(users["items"], json!([]));
    let events = ok_json(
        app.get(
            "/v1/tenants/query-clinic/audit-events?since=2000-01-01T00:00:00Z&until=2999-01-01T00:00:00%2B02:00&limit=2",
            Some(&admin),
        )
        .await,
    )
    .await;
    assert_eq!(events["items"].as_array().unwrap().len(), 2);
}

async fn bad_input_empty_or_garbage_bearer_token_answers_401(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.practice("token-clinic").await;
    let headers: Vec<HeaderValue> = vec![
        HeaderValue::from_static("Bearer"),
        HeaderValue::from_static("Bearer "),
        HeaderValue::from_static("Bearer    "),
        HeaderValue::from_static("Bearer garbage"),
        HeaderValue::from_static("Bearer null"),
        HeaderValue::from_str(&format!("Bearer {admin}x")).unwrap(),
        HeaderValue::from_str(&format!("Bearer {}", &admin[..admin.len() - 1])).unwrap(),
        HeaderValue::from_str(&format!("Bearer {}", "A".repeat(10_000))).unwrap(),
        HeaderValue::from_str(&format!("Basic {admin}")).unwrap(),
        HeaderValue::from_str(&format!("Token {admin}")).unwrap(),
        HeaderValue::from_str(&admin).unwrap(),
        HeaderValue::from_bytes(b"Bearer \xff\xfe\xfd").unwrap(),
        HeaderValue::from_static(""),
    ];
    for path in [
        "/v1/me",
        "/v1/auth/session",
        "/v1/tenants/token-clinic/users",
        "/v1/tenants",
    ] {
        for h in &headers {
            let r = app
                .client
                .get(app.url(path))
                .header(AUTHORIZATION, h.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(
                r.headers()
                    .get("www-authenticate")
                    .and_then(|v| v.to_str().ok()),
                Some("Bearer"),
                "{path} {h:?}"
            );
            problem(r, StatusCode::UNAUTHORIZED, "unauthenticated").await;
        }
    }
    // A garbage token cannot change anything either.
    let r = app
        .client
        .patch(app.url("/v1/tenants/token-clinic/settings"))
        .header(AUTHORIZATION, "Bearer garbage")
        .json(&json!({"lockout_threshold": 3}))
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    // The real token works, whatever the case of the scheme.
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let r = app
            .client
            .get(app.url("/v1/tenants/token-clinic"))
            .header(AUTHORIZATION, format!("{scheme} {admin}"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            ok_json(r).await["settings"]["lockout_threshold"],
            5,
            "{scheme}"
        );
    }
}

/// What is wrong with an answer to bad input, if anything: it must be a 4xx problem+json
/// whose `status` matches, or a 2xx list (with no items when `filter`: no stored text can
/// hold a NUL byte, so a filter containing one matches nothing).
async fn refused_or_listed(r: Response, filter: bool) -> Option<String> {
    let status = r.status();
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = r.text().await.unwrap();
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let fine = if status.is_client_error() {
        ct == "application/problem+json"
            && body["status"] == status.as_u16()
            && body["code"].is_string()
    } else {
        status.is_success() && body["items"].is_array() && (!filter || body["items"] == json!([]))
    };
    (!fine).then(|| format!("{status} {text:.300}"))
}

async fn bad_input_nul_bytes_in_text_never_cause_a_server_error(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = clinic(&app, "nul-clinic").await;
    let support = app.support_token().await;
    let before = state(&app, "nul-clinic", &admin).await;

    // Query text: refused, or answered (a filter with a NUL byte matching nothing).
    let mut wrong = Vec::new();
    for (path, token, filter) in [
        ("/v1/tenants/nul-clinic/users?q=%00", &admin, true),
        ("/v1/tenants/nul-clinic/users?q=bob%00", &admin, true),
        ("/v1/tenants/nul-clinic/users?cursor=%00", &admin, false),
        (
            "/v1/tenants/nul-clinic/audit-events?action=%00",
            &admin,
            true,
        ),
        (
            "/v1/tenants/nul-clinic/audit-events?action=signin.failed%00",
            &admin,
            true,
        ),
        (
            "/v1/tenants/nul-clinic/audit-events?target_id=%00",
            &admin,
            true,
        ),
        (
            "/v1/tenants/nul-clinic/audit-events?cursor=%00",
            &admin,
            false,
        ),
        ("/v1/tenants?cursor=%00", &support, false),
    ] {
        if let Some(why) = refused_or_listed(app.get(path, Some(token)).await, filter).await {
            wrong.push(format!("GET {path} -> {why}"));
        }
    }

    // Bodies: refused on their merits.
    let r = app.login("nul-clinic\u{0}", "bob", TEMP_PASSWORD).await;
    problem(r, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let r = app.login("nul-clinic", "bob\u{0}", TEMP_PASSWORD).await;
    problem(r, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let r = app
        .login("nul-clinic", "bob", "Temporary-Pass-1234!\u{0}")
        .await;
    problem(r, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    // A wrong password for a real user is a failed sign-in, and is audited as one.
    let mut before = before;
    before["events"] = json!(before["events"].as_u64().unwrap() + 1);
    let r = app
        .post(
            "/v1/tenants/nul-clinic/users",
            Some(&admin),
            &json!({"username": "carl", "first_name": "Ca\u{0}rl", "last_name": "C\u{0}",
                    "email": "carl\u{0}@example.com", "phone": "+1555\u{0}", "role": "staff\u{0}",
                    "password": TEMP_PASSWORD}),
        )
        .await;
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(
        fields(&p),
        ["email", "first_name", "last_name", "phone", "role"],
        "{p}"
    );
    let r = app
        .patch(
            "/v1/tenants/nul-clinic/settings",
            Some(&admin),
            &json!({"timezone": "UTC\u{0}"}),
        )
        .await;
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(fields(&p), ["timezone"]);
    let r = app
        .put(
            "/v1/tenants/nul-clinic/users/bob/login-hours",
            Some(&admin),
            &json!([{"weekday": "monday\u{0}", "start": "09:00\u{0}", "end": "17:00"}]),
        )
        .await;
    problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let r = app
        .post(
            "/v1/tenants",
            Some(&support),
            &json!({"company": "nul-two", "name": "Nul\u{0}Clinic",
                    "admin": {"username": "nul-admin", "first_name": "N", "last_name": "A",
                              "email": "a@nul.example.com", "password": TEMP_PASSWORD}}),
        )
        .await;
    problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;

    assert_eq!(before, state(&app, "nul-clinic", &admin).await);
    assert!(wrong.is_empty(), "{wrong:#?}");
}
