//! The second factor over HTTP (M1-M12): enrollment and verification in the sign-in flow
//! with codes read from the outbox the in-process workers write, authenticator codes
//! computed by an independent TOTP, remembered devices, trusted networks, recovery codes,
//! policies, reset, step-up, and no secret left in any table.

use crate::helpers::{
    Db, NEW_PASSWORD, Options, TestApp, base32_decode, independent_totp, ok_json, problem,
};
use chrono::{Duration, TimeZone, Utc};
use gatehouse_domain::clock::{Clock, FixedClock};
use gatehouse_testkit::on_both_databases;
use reqwest::StatusCode;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use std::sync::Arc;

on_both_databases!(
    m5_authenticator_enrolls_signs_in_refuses_replays_and_one_of_two_concurrent_wins,
    m6_a_recovery_code_works_exactly_once,
    m4_sms_enrollment_and_sign_in_with_codes_from_the_outbox,
    m4_wrong_codes_count_down_then_exhaust_and_resends_are_throttled_and_kill_the_old_code,
    m4_codes_expire_after_the_tenant_lifetime_and_the_sixth_send_is_refused,
    m7_a_remembered_device_skips_the_code_for_its_user_only_until_revoked,
    m8_trusted_networks_skip_the_code_tenant_wide_or_per_user,
    m8_forwarded_for_is_ignored_from_untrusted_peers,
    m2_suggest_lets_skip_require_gives_no_session_and_reset_forces_enrollment,
    m11_sensitive_changes_need_a_recent_second_factor,
    m10_contacts_are_used_only_after_proof,
    m4_no_code_secret_or_token_in_any_table,
);

pub(crate) fn fixed_clock() -> Arc<FixedClock> {
    Arc::new(FixedClock::new(
        Utc.with_ymd_and_hms(2026, 11, 24, 9, 0, 0).unwrap(),
    ))
}

pub(crate) async fn spawn_fixed(db: Db) -> (TestApp, Arc<FixedClock>) {
    let clock = fixed_clock();
    let app = TestApp::spawn_with(
        db,
        Options {
            clock: Some(clock.clone()),
            ..Options::default()
        },
    )
    .await;
    (app, clock)
}

pub(crate) fn unix(clock: &FixedClock) -> u64 {
    clock.now().timestamp() as u64
}

pub(crate) fn email_of(company: &str, user: &str) -> String {
    format!("{user}@{company}.example.com")
}

/// Creates a staff user (temporary password, own email, optional phone).
pub(crate) async fn create_staff(
    app: &TestApp,
    company: &str,
    admin: &str,
    user: &str,
    phone: Option<&str>,
) {
    let mut body = json!({"username": user, "first_name": "Sam", "last_name": "Staff",
        "role": "staff", "password": "Temporary-Pass-1234!", "email": email_of(company, user)});
    if let Some(p) = phone {
        body["phone"] = json!(p);
    }
    let r = app
        .post(&format!("/v1/tenants/{company}/users"), Some(admin), &body)
        .await;
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap()
    );
}

/// The first sign-in of a new user up to the step after the password change.
pub(crate) async fn after_password_change(app: &TestApp, company: &str, user: &str) -> Value {
    let flow = ok_json(app.login(company, user, "Temporary-Pass-1234!").await).await;
    assert_eq!(flow["status"], "password_change_required", "{flow}");
    let id = flow["flow_id"].as_str().unwrap();
    ok_json(
        app.post(
            &format!("/v1/auth/flows/{id}/password"),
            None,
            &json!({"new_password": NEW_PASSWORD}),
        )
        .await,
    )
    .await
}

/// A sign-in, optionally from another client address (X-Forwarded-For through the
/// trusted local proxy) and with a remembered device token.
pub(crate) async fn sign_in(
    app: &TestApp,
    company: &str,
    user: &str,
    from: Option<&str>,
    device: Option<&str>,
) -> Value {
    let mut body = json!({"company": company, "username": user, "password": NEW_PASSWORD});
    if let Some(d) = device {
        body["device_token"] = json!(d);
    }
    let mut req = app.client.post(app.url("/v1/auth/login")).json(&body);
    if let Some(ip) = from {
        req = req.header("x-forwarded-for", ip);
    }
    ok_json(req.send().await.unwrap()).await
}

pub(crate) fn flow_path(flow: &Value, step: &str) -> String {
    format!(
        "/v1/auth/flows/{}/{step}",
        flow["flow_id"].as_str().unwrap()
    )
}

pub(crate) async fn verify(
    app: &TestApp,
    flow: &Value,
    method: &str,
    code: &str,
) -> reqwest::Response {
    app.post(
        &flow_path(flow, "verify"),
        None,
        &json!({"method": method, "code": code}),
    )
    .await
}

/// Enrolls an authenticator in a flow at an enrollment step; answers the secret and
/// the authenticated flow (with its recovery codes).
pub(crate) async fn enroll_totp(
    app: &TestApp,
    clock: &FixedClock,
    flow: &Value,
) -> (Vec<u8>, Value) {
    let e = ok_json(
        app.post(
            &flow_path(flow, "enroll/totp"),
            None,
            &json!({"label": "Front desk PC"}),
        )
        .await,
    )
    .await;
    let secret = base32_decode(e["secret"].as_str().unwrap());
    let code = independent_totp(&secret, unix(clock));
    let done = ok_json(
        app.post(
            &flow_path(flow, "enroll/totp/confirm"),
            None,
            &json!({"code": code}),
        )
        .await,
    )
    .await;
    (secret, done)
}

pub(crate) async fn me(app: &TestApp, token: &str) -> Value {
    ok_json(app.get("/v1/me", Some(token)).await).await
}

pub(crate) async fn actions(app: &TestApp, company: &str, admin: &str) -> Vec<Value> {
    let log = ok_json(
        app.get(
            &format!("/v1/tenants/{company}/audit-events?limit=500"),
            Some(admin),
        )
        .await,
    )
    .await;
    log["items"].as_array().unwrap().clone()
}

pub(crate) fn has_action(events: &[Value], action: &str) -> bool {
    events.iter().any(|e| e["action"] == action)
}

/// Patches a practice's settings as its admin.
async fn set_settings(app: &TestApp, company: &str, admin: &str, patch: Value) {
    let path = format!("/v1/tenants/{company}/settings");
    ok_json(app.patch(&path, Some(admin), &patch).await).await;
}

/// Asks for a (new) code in a sign-in flow.
async fn resend(app: &TestApp, flow: &Value, channel: &str) -> reqwest::Response {
    app.post(&flow_path(flow, "code"), None, &json!({"channel": channel}))
        .await
}

/// `POST /v1/me/step-up` with `body`.
async fn step_up(app: &TestApp, token: &str, body: Value) -> reqwest::Response {
    app.post("/v1/me/step-up", Some(token), &body).await
}

async fn m5_authenticator_enrolls_signs_in_refuses_replays_and_one_of_two_concurrent_wins(db: Db) {
    let (app, clock) = spawn_fixed(db).await;
    let admin = app.mfa_practice("totp-clinic").await;
    create_staff(&app, "totp-clinic", &admin, "tina", None).await;
    let flow = after_password_change(&app, "totp-clinic", "tina").await;
    // The default policy requires MFA: no session without enrolling.
    assert_eq!(flow["status"], "mfa_enrollment_required", "{flow}");
    assert!(flow.get("session").is_none());
    let methods: Vec<&str> = flow["mfa"]["methods"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(methods.contains(&"totp"), "{flow}");

    let e = ok_json(
        app.post(
            &flow_path(&flow, "enroll/totp"),
            None,
            &json!({"label": "Tina at the desk"}),
        )
        .await,
    )
    .await;
    let secret_b32 = e["secret"].as_str().unwrap();
    let secret = base32_decode(secret_b32);
    assert!(secret.len() >= 20, "at least 160 bits");
    let uri = e["otpauth_uri"].as_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/"), "{uri}");
    assert!(uri.contains(&format!("secret={secret_b32}")), "{uri}");
    assert!(uri.contains("issuer=totp-clinic%20clinic"), "{uri}");
    assert!(uri.contains("Tina%20at%20the%20desk"), "{uri}");
    let png = base64_decode(e["qr_png"].as_str().unwrap());
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");

    // A wrong code counts; the right one (computed independently) completes enrollment.
    let right = independent_totp(&secret, unix(&clock));
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    let r = app
        .post(
            &flow_path(&flow, "enroll/totp/confirm"),
            None,
            &json!({"code": wrong}),
        )
        .await;
    let p = problem(r, StatusCode::BAD_REQUEST, "mfa_code_invalid").await;
    assert_eq!(p["attempts_remaining"], 4);
    let done = ok_json(
        app.post(
            &flow_path(&flow, "enroll/totp/confirm"),
            None,
            &json!({"code": right}),
        )
        .await,
    )
    .await;
    assert_eq!(done["status"], "authenticated", "{done}");
    assert_eq!(done["recovery_codes"].as_array().unwrap().len(), 5);
    let token = done["session"]["token"].as_str().unwrap();
    let session = ok_json(app.get("/v1/auth/session", Some(token)).await).await;
    assert!(
        session["mfa_verified_at"].is_string(),
        "enrollment proves a factor"
    );
    let tina = me(&app, token).await;
    assert_eq!(tina["mfa"]["method"], "totp");
    assert_eq!(tina["mfa"]["totp_enrolled"], true);
    assert_eq!(tina["mfa"]["recovery_codes_remaining"], 5);
    assert_eq!(tina["mfa"]["pending"], false);

    // Next sign-in: the authenticator is asked for; no code is sent.
    let flow = sign_in(&app, "totp-clinic", "tina", None, None).await;
    assert_eq!(flow["status"], "mfa_required", "{flow}");
    assert_eq!(flow["mfa"]["preferred"], "totp");
    assert_eq!(flow["mfa"]["methods"], json!(["totp", "recovery_code"]));
    assert!(flow["mfa"]["code_sent"].is_null());
    // The step accepted at enrollment is never accepted again.
    let r = verify(&app, &flow, "totp", &right).await;
    problem(r, StatusCode::BAD_REQUEST, "mfa_code_invalid").await;
    // Email is not one of Tina's methods.
    let r = app
        .post(
            &flow_path(&flow, "code"),
            None,
            &json!({"channel": "email"}),
        )
        .await;
    problem(r, StatusCode::CONFLICT, "destination_unverified").await;

    // The next step's code, sent twice at once on two flows: exactly one wins.
    clock.advance(Duration::seconds(30));
    let next = independent_totp(&secret, unix(&clock));
    let other = sign_in(&app, "totp-clinic", "tina", None, None).await;
    let (a, b) = tokio::join!(
        verify(&app, &flow, "totp", &next),
        verify(&app, &other, "totp", &next)
    );
    let mut statuses = [a.status(), b.status()];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::BAD_REQUEST]);

    // A later step signs in again.
    clock.advance(Duration::seconds(30));
    let third = sign_in(&app, "totp-clinic", "tina", None, None).await;
    let done = ok_json(
        verify(
            &app,
            &third,
            "totp",
            &independent_totp(&secret, unix(&clock)),
        )
        .await,
    )
    .await;
    assert_eq!(done["status"], "authenticated");

    let events = actions(&app, "totp-clinic", &admin).await;
    for a in ["mfa.enrolled", "mfa.verified", "mfa.failed"] {
        assert!(has_action(&events, a), "{a} audited");
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

async fn m6_a_recovery_code_works_exactly_once(db: Db) {
    let (app, clock) = spawn_fixed(db).await;
    let admin = app.mfa_practice("rc-clinic").await;
    create_staff(&app, "rc-clinic", &admin, "rita", None).await;
    let flow = after_password_change(&app, "rc-clinic", "rita").await;
    let (_, done) = enroll_totp(&app, &clock, &flow).await;
    let codes: Vec<String> = done["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();

    let flow = sign_in(&app, "rc-clinic", "rita", None, None).await;
    let done = ok_json(verify(&app, &flow, "recovery_code", &codes[2]).await).await;
    assert_eq!(done["status"], "authenticated");
    let token = done["session"]["token"].as_str().unwrap();
    assert_eq!(me(&app, token).await["mfa"]["recovery_codes_remaining"], 4);

    let again = sign_in(&app, "rc-clinic", "rita", None, None).await;
    let r = verify(&app, &again, "recovery_code", &codes[2]).await;
    let p = problem(r, StatusCode::BAD_REQUEST, "mfa_code_invalid").await;
    assert_eq!(p["attempts_remaining"], 4);
    // Another unused code still works in the same flow.
    let done = ok_json(verify(&app, &again, "recovery_code", &codes[0]).await).await;
    assert_eq!(done["status"], "authenticated");
    let events = actions(&app, "rc-clinic", &admin).await;
    assert!(has_action(&events, "recovery_code.used"));
}

async fn m4_sms_enrollment_and_sign_in_with_codes_from_the_outbox(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.mfa_practice("sms-clinic").await;
    create_staff(&app, "sms-clinic", &admin, "sam", Some("+1 202 555 0147")).await;
    let flow = after_password_change(&app, "sms-clinic", "sam").await;
    // The phone is set but not proven (M10): enrollment is offered, no code is sent.
    assert_eq!(flow["status"], "mfa_enrollment_required", "{flow}");
    assert!(flow["mfa"]["code_sent"].is_null());

    let mark = app.outbox_mark();
    let r = app
        .post(&flow_path(&flow, "enroll/sms"), None, &json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let sent: Value = r.json().await.unwrap();
    assert_eq!(sent["channel"], "sms");
    assert_eq!(sent["to"], "•••-•••-0147");
    let code = app.code_after(mark, "+12025550147").await;
    let line = app.outbox_lines().pop().unwrap();
    assert_eq!(line["channel"], "sms");
    assert_eq!(line["company"], "sms-clinic");
    assert_eq!(line["purpose"], "enroll");
    assert!(line["delivery_id"].is_string() && line["at"].is_string());
    assert!(line["body"].as_str().unwrap().len() <= 160);

    let done = ok_json(
        app.post(
            &flow_path(&flow, "enroll/sms/confirm"),
            None,
            &json!({"code": code}),
        )
        .await,
    )
    .await;
    assert_eq!(done["status"], "authenticated", "{done}");
    let token = done["session"]["token"].as_str().unwrap();
    let sam = me(&app, token).await;
    assert_eq!(sam["phone_verified"], true);
    assert_eq!(sam["mfa"]["method"], "sms");
    assert_eq!(sam["mfa"]["pending"], false);

    // Next sign-in: the code goes out on entering mfa_required.
    let mark = app.outbox_mark();
    let flow = sign_in(&app, "sms-clinic", "sam", None, None).await;
    assert_eq!(flow["status"], "mfa_required", "{flow}");
    assert_eq!(flow["mfa"]["preferred"], "sms");
    assert_eq!(flow["mfa"]["code_sent"]["channel"], "sms");
    assert_eq!(flow["mfa"]["code_sent"]["to"], "•••-•••-0147");
    let code = app.code_after(mark, "+12025550147").await;
    let done = ok_json(verify(&app, &flow, "code", &code).await).await;
    assert_eq!(done["status"], "authenticated");
    // Single use: the same code in the same (finished) flow is refused.
    let r = verify(&app, &flow, "code", &code).await;
    problem(r, StatusCode::GONE, "flow_expired").await;

    // The SMS deliveries were recorded as sent (the one whose code was used as delivered:
    // the use proves it arrived) and keep no sealed message.
    let rows = app
        .raw
        .query_all_raw(sea_orm::Statement::from_string(
            app.raw.get_database_backend(),
            "SELECT status, payload_sealed FROM deliveries WHERE channel = 'sms'",
        ))
        .await
        .unwrap();
    assert!(rows.len() >= 2);
    let statuses: Vec<String> = rows
        .iter()
        .map(|r| r.try_get::<String>("", "status").unwrap())
        .collect();
    assert!(statuses.iter().any(|s| s == "delivered"), "{statuses:?}");
    for r in rows {
        let status = r.try_get::<String>("", "status").unwrap();
        assert!(status == "sent" || status == "delivered", "{status}");
        assert!(
            r.try_get::<Option<String>>("", "payload_sealed")
                .unwrap()
                .is_none()
        );
    }
    let events = actions(&app, "sms-clinic", &admin).await;
    for a in [
        "mfa.code_sent",
        "contact.verified",
        "mfa.enrolled",
        "mfa.verified",
    ] {
        assert!(has_action(&events, a), "{a} audited");
    }
}

async fn m4_wrong_codes_count_down_then_exhaust_and_resends_are_throttled_and_kill_the_old_code(
    db: Db,
) {
    let (app, clock) = spawn_fixed(db).await;
    let admin = app.mfa_practice("code-clinic").await;
    create_staff(&app, "code-clinic", &admin, "eve", None).await;
    let eve = email_of("code-clinic", "eve");
    let flow = after_password_change(&app, "code-clinic", "eve").await;
    app.finish_mfa(&flow, &eve, 0).await;

    let mark = app.outbox_mark();
    let flow = sign_in(&app, "code-clinic", "eve", None, None).await;
    assert_eq!(flow["mfa"]["code_sent"]["channel"], "email", "{flow}");
    let code = app.code_after(mark, &eve).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for left in [4, 3, 2, 1] {
        let p = problem(
            verify(&app, &flow, "code", wrong).await,
            StatusCode::BAD_REQUEST,
            "mfa_code_invalid",
        )
        .await;
        assert_eq!(p["attempts_remaining"], left);
    }
    problem(
        verify(&app, &flow, "code", wrong).await,
        StatusCode::TOO_MANY_REQUESTS,
        "mfa_code_exhausted",
    )
    .await;
    // Dead after 5 wrong tries, even for the right code.
    problem(
        verify(&app, &flow, "code", &code).await,
        StatusCode::TOO_MANY_REQUESTS,
        "mfa_code_exhausted",
    )
    .await;

    // A resend within 30 s of the last code of this flow is refused with Retry-After.
    let r = resend(&app, &flow, "email").await;
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&retry), "{retry}");
    problem(r, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;

    clock.advance(Duration::seconds(31));
    let mark = app.outbox_mark();
    let r = resend(&app, &flow, "email").await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let fresh = app.code_after(mark, &eve).await;
    // The old code died with the new one (unless both are the same 6 digits by chance).
    if fresh != code {
        problem(
            verify(&app, &flow, "code", &code).await,
            StatusCode::BAD_REQUEST,
            "mfa_code_invalid",
        )
        .await;
    }
    let done = ok_json(verify(&app, &flow, "code", &fresh).await).await;
    assert_eq!(done["status"], "authenticated");
    let events = actions(&app, "code-clinic", &admin).await;
    for a in ["mfa.failed", "mfa.exhausted", "mfa.code_refused"] {
        assert!(has_action(&events, a), "{a} audited");
    }
}

async fn m4_codes_expire_after_the_tenant_lifetime_and_the_sixth_send_is_refused(db: Db) {
    let (app, clock) = spawn_fixed(db).await;
    let admin = app.mfa_practice("ttl-clinic").await;
    set_settings(&app, "ttl-clinic", &admin, json!({"code_ttl_seconds": 60})).await;
    create_staff(&app, "ttl-clinic", &admin, "tom", None).await;
    let tom = email_of("ttl-clinic", "tom");
    let flow = after_password_change(&app, "ttl-clinic", "tom").await;
    app.finish_mfa(&flow, &tom, 0).await; // send 1 (enrollment)

    let mark = app.outbox_mark();
    let flow = sign_in(&app, "ttl-clinic", "tom", None, None).await; // send 2
    let code = app.code_after(mark, &tom).await;
    clock.advance(Duration::seconds(61));
    problem(
        verify(&app, &flow, "code", &code).await,
        StatusCode::GONE,
        "mfa_code_expired",
    )
    .await;

    // Per user at most 5 sends per 15 minutes, across flows: sends 3, 4, 5 pass, the
    // sixth automatic send is refused and the flow says why.
    for _ in 0..3 {
        let f = sign_in(&app, "ttl-clinic", "tom", None, None).await;
        assert_eq!(f["mfa"]["code_sent"]["channel"], "email", "{f}");
    }
    let f = sign_in(&app, "ttl-clinic", "tom", None, None).await;
    assert_eq!(f["status"], "mfa_required");
    assert!(f["mfa"]["code_sent"].is_null(), "{f}");
    assert_eq!(f["mfa"]["code_error"]["code"], "rate_limited", "{f}");
    assert_eq!(f["mfa"]["code_error"]["status"], 429);
}

async fn m7_a_remembered_device_skips_the_code_for_its_user_only_until_revoked(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.mfa_practice("device-clinic").await;
    for u in ["ann", "bob"] {
        create_staff(&app, "device-clinic", &admin, u, None).await;
        let flow = after_password_change(&app, "device-clinic", u).await;
        app.finish_mfa(&flow, &email_of("device-clinic", u), 0)
            .await;
    }
    let ann = email_of("device-clinic", "ann");
    let mark = app.outbox_mark();
    let flow = sign_in(&app, "device-clinic", "ann", None, None).await;
    let code = app.code_after(mark, &ann).await;
    let done = ok_json(
        app.post(
            &flow_path(&flow, "verify"),
            None,
            &json!({"method": "code", "code": code, "remember_device": true}),
        )
        .await,
    )
    .await;
    let device = done["device_token"]
        .as_str()
        .expect("device token")
        .to_owned();
    let token = done["session"]["token"].as_str().unwrap().to_owned();

    // Ann on this device: no code.
    let f = sign_in(&app, "device-clinic", "ann", None, Some(&device)).await;
    assert_eq!(f["status"], "authenticated", "{f}");
    let session = ok_json(
        app.get("/v1/auth/session", f["session"]["token"].as_str())
            .await,
    )
    .await;
    assert!(
        session["mfa_verified_at"].is_null(),
        "a bypass proves no factor"
    );
    // Bob on the same shared computer still needs his own code.
    let mark = app.outbox_mark();
    let f = sign_in(&app, "device-clinic", "bob", None, Some(&device)).await;
    assert_eq!(f["status"], "mfa_required", "{f}");
    // His code is out before the next sign-in, so the two are not confused below.
    app.code_after(mark, &email_of("device-clinic", "bob"))
        .await;

    // Ann lists and revokes it; then the code is asked again.
    let list = ok_json(app.get("/v1/me/devices", Some(&token)).await).await;
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    let id = items[0]["id"].as_str().unwrap();
    // Bob cannot revoke Ann's device.
    let bob_token = {
        let mark = app.outbox_mark();
        let f = sign_in(&app, "device-clinic", "bob", None, None).await;
        app.finish_mfa(&f, &email_of("device-clinic", "bob"), mark)
            .await
    };
    let r = app
        .send_json(
            reqwest::Method::DELETE,
            &format!("/v1/me/devices/{id}"),
            Some(&bob_token),
            &json!({}),
        )
        .await;
    problem(r, StatusCode::NOT_FOUND, "not_found").await;
    let r = app
        .send_json(
            reqwest::Method::DELETE,
            &format!("/v1/me/devices/{id}"),
            Some(&token),
            &json!({}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let f = sign_in(&app, "device-clinic", "ann", None, Some(&device)).await;
    assert_eq!(f["status"], "mfa_required", "{f}");

    let events = actions(&app, "device-clinic", &admin).await;
    for a in ["device.remembered", "device.revoked"] {
        assert!(has_action(&events, a), "{a} audited");
    }
    let bypass = events
        .iter()
        .find(|e| e["action"] == "mfa.bypassed")
        .expect("bypass audited");
    assert_eq!(bypass["details"]["via"], "remembered_device");
}

async fn add_network(app: &TestApp, company: &str, admin: &str, body: Value) -> Value {
    let r = app
        .post(
            &format!("/v1/tenants/{company}/trusted-networks"),
            Some(admin),
            &body,
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

async fn m8_trusted_networks_skip_the_code_tenant_wide_or_per_user(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.mfa_practice("net-clinic").await;
    for u in ["ann", "bob"] {
        create_staff(&app, "net-clinic", &admin, u, None).await;
        let flow = after_password_change(&app, "net-clinic", u).await;
        app.finish_mfa(&flow, &email_of("net-clinic", u), 0).await;
    }
    let bob_id = ok_json(
        app.get("/v1/tenants/net-clinic/users/bob", Some(&admin))
            .await,
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Tenant-wide office range.
    let office = add_network(
        &app,
        "net-clinic",
        &admin,
        json!({"cidr": "198.51.100.0/24", "description": "Front office"}),
    )
    .await;
    assert_eq!(office["cidr"], "198.51.100.0/24");
    assert!(office["user_id"].is_null());
    for u in ["ann", "bob"] {
        let f = sign_in(&app, "net-clinic", u, Some("198.51.100.23"), None).await;
        assert_eq!(f["status"], "authenticated", "{u}: {f}");
    }
    let f = sign_in(&app, "net-clinic", "ann", Some("192.0.2.50"), None).await;
    assert_eq!(f["status"], "mfa_required");

    // Bob's home address, for Bob only; IPv6 too.
    add_network(
        &app,
        "net-clinic",
        &admin,
        json!({"cidr": "2001:db8:77::/48", "user_id": bob_id}),
    )
    .await;
    let f = sign_in(&app, "net-clinic", "bob", Some("2001:db8:77::9"), None).await;
    assert_eq!(f["status"], "authenticated", "{f}");
    let f = sign_in(&app, "net-clinic", "ann", Some("2001:db8:77::9"), None).await;
    assert_eq!(f["status"], "mfa_required", "{f}");

    // "My current IP", then removal ends the skip.
    let r = app
        .client
        .post(app.url("/v1/tenants/net-clinic/trusted-networks"))
        .bearer_auth(&admin)
        .header("x-forwarded-for", "203.0.113.77")
        .json(&json!({"my_ip": true}))
        .send()
        .await
        .unwrap();
    let mine: Value = r.json().await.unwrap();
    assert_eq!(mine["cidr"], "203.0.113.77/32", "{mine}");
    let list = ok_json(
        app.get("/v1/tenants/net-clinic/trusted-networks", Some(&admin))
            .await,
    )
    .await;
    assert_eq!(list["items"].as_array().unwrap().len(), 3);
    let r = app
        .send_json(
            reqwest::Method::DELETE,
            &format!(
                "/v1/tenants/net-clinic/trusted-networks/{}",
                office["id"].as_str().unwrap()
            ),
            Some(&admin),
            &json!({}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let f = sign_in(&app, "net-clinic", "ann", Some("198.51.100.23"), None).await;
    assert_eq!(f["status"], "mfa_required");

    // Bad input answers 422.
    let r = app
        .post(
            "/v1/tenants/net-clinic/trusted-networks",
            Some(&admin),
            &json!({"cidr": "10.0.0.0/4"}),
        )
        .await;
    problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;

    let events = actions(&app, "net-clinic", &admin).await;
    for a in ["network.added", "network.removed"] {
        assert!(has_action(&events, a), "{a} audited");
    }
    let bypass = events
        .iter()
        .find(|e| e["action"] == "mfa.bypassed")
        .expect("bypass audited");
    assert_eq!(bypass["details"]["via"], "trusted_network");
}

async fn m8_forwarded_for_is_ignored_from_untrusted_peers(db: Db) {
    let app = TestApp::spawn_with(
        db,
        Options {
            untrusted_local_proxy: true,
            ..Options::default()
        },
    )
    .await;
    let admin = app.mfa_practice("xff-clinic").await;
    create_staff(&app, "xff-clinic", &admin, "ann", None).await;
    let flow = after_password_change(&app, "xff-clinic", "ann").await;
    app.finish_mfa(&flow, &email_of("xff-clinic", "ann"), 0)
        .await;
    add_network(
        &app,
        "xff-clinic",
        &admin,
        json!({"cidr": "198.51.100.0/24"}),
    )
    .await;
    // The peer (127.0.0.1) is not a trusted proxy: its X-Forwarded-For is not believed.
    let f = sign_in(&app, "xff-clinic", "ann", Some("198.51.100.23"), None).await;
    assert_eq!(f["status"], "mfa_required", "{f}");
    // The socket address itself is what counts.
    add_network(&app, "xff-clinic", &admin, json!({"cidr": "127.0.0.1/32"})).await;
    let f = sign_in(&app, "xff-clinic", "ann", Some("192.0.2.1"), None).await;
    assert_eq!(f["status"], "authenticated", "{f}");
}

async fn m2_suggest_lets_skip_require_gives_no_session_and_reset_forces_enrollment(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.mfa_practice("policy-clinic").await;
    create_staff(&app, "policy-clinic", &admin, "ann", None).await;
    create_staff(&app, "policy-clinic", &admin, "bob", None).await;

    // require: no session without enrollment, and no skipping.
    let flow = after_password_change(&app, "policy-clinic", "ann").await;
    assert_eq!(flow["status"], "mfa_enrollment_required");
    assert!(flow.get("session").is_none());
    let r = app.post(&flow_path(&flow, "skip"), None, &json!({})).await;
    problem(r, StatusCode::CONFLICT, "conflict").await;

    // suggest: Bob may skip and gets a session.
    set_settings(
        &app,
        "policy-clinic",
        &admin,
        json!({"mfa_policy": "suggest"}),
    )
    .await;
    let flow = after_password_change(&app, "policy-clinic", "bob").await;
    assert_eq!(flow["status"], "mfa_enrollment_suggested", "{flow}");
    let done = ok_json(app.post(&flow_path(&flow, "skip"), None, &json!({})).await).await;
    assert_eq!(done["status"], "authenticated");

    // Back to require; Ann enrolls email; the admin resets her MFA: she enrolls again.
    set_settings(
        &app,
        "policy-clinic",
        &admin,
        json!({"mfa_policy": "require"}),
    )
    .await;
    let flow = sign_in(&app, "policy-clinic", "ann", None, None).await;
    app.finish_mfa(&flow, &email_of("policy-clinic", "ann"), 0)
        .await;
    let ann = ok_json(
        app.get("/v1/tenants/policy-clinic/users/ann", Some(&admin))
            .await,
    )
    .await;
    assert_eq!(ann["mfa"]["method"], "email");
    assert_eq!(ann["mfa"]["pending"], false);
    let r = app
        .send_json(
            reqwest::Method::DELETE,
            "/v1/tenants/policy-clinic/users/ann/mfa",
            Some(&admin),
            &json!({}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let ann = ok_json(
        app.get("/v1/tenants/policy-clinic/users/ann", Some(&admin))
            .await,
    )
    .await;
    assert_eq!(ann["mfa"]["enrollment"], "require");
    assert_eq!(ann["mfa"]["pending"], true);
    let flow = sign_in(&app, "policy-clinic", "ann", None, None).await;
    assert_eq!(flow["status"], "mfa_enrollment_required", "{flow}");

    // An admin sets Bob's method; a method the practice does not allow is refused.
    let bob = ok_json(
        app.put(
            "/v1/tenants/policy-clinic/users/bob/mfa",
            Some(&admin),
            &json!({"method": "totp", "enrollment": "require"}),
        )
        .await,
    )
    .await;
    assert_eq!(bob["mfa"]["method"], "totp");
    assert_eq!(bob["mfa"]["pending"], true);
    set_settings(
        &app,
        "policy-clinic",
        &admin,
        json!({"allowed_methods": ["email", "totp"]}),
    )
    .await;
    // Refused, each with the fields it names: a method the practice does not allow, and
    // wrong values, every wrong field at once (M3), whatever its wrong type.
    let refused = [
        (
            json!({"method": "sms", "enrollment": "prompt"}),
            StatusCode::CONFLICT,
            "method_not_allowed",
            &[][..],
        ),
        (
            json!({"method": "fax", "enrollment": "soon"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            &["enrollment", "method"][..],
        ),
        (
            json!({"method": 5, "enrollment": "prompt"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            &["method"][..],
        ),
        (
            json!({"method": "email", "enrollment": null}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            &["enrollment"][..],
        ),
    ];
    for (body, status, code, fields) in refused {
        let r = app
            .put(
                "/v1/tenants/policy-clinic/users/bob/mfa",
                Some(&admin),
                &body,
            )
            .await;
        let p = problem(r, status, code).await;
        if !fields.is_empty() {
            let named: Vec<String> = crate::helpers::error_fields(&p).into_iter().collect();
            assert_eq!(named, fields, "{body}");
        }
    }
    let bob = ok_json(
        app.get("/v1/tenants/policy-clinic/users/bob", Some(&admin))
            .await,
    )
    .await;
    assert_eq!(bob["mfa"]["method"], "totp", "nothing refused was applied");

    let events = actions(&app, "policy-clinic", &admin).await;
    for a in ["mfa.skipped", "mfa.reset"] {
        assert!(has_action(&events, a), "{a} audited");
    }
}

async fn m11_sensitive_changes_need_a_recent_second_factor(db: Db) {
    let (app, clock) = spawn_fixed(db).await;
    let admin = app.mfa_practice("step-clinic").await;
    create_staff(&app, "step-clinic", &admin, "tina", None).await;
    let flow = after_password_change(&app, "step-clinic", "tina").await;
    let (secret, done) = enroll_totp(&app, &clock, &flow).await;
    let token = done["session"]["token"].as_str().unwrap().to_owned();

    // Within 15 minutes of the enrollment: allowed.
    let r = app
        .post("/v1/me/recovery-codes", Some(&token), &json!({}))
        .await;
    let fresh = ok_json(r).await;
    assert_eq!(fresh["recovery_codes"].as_array().unwrap().len(), 5);

    // Later: every credential action, the user's own or an admin's, asks for a step-up
    // first, and changes nothing.
    clock.advance(Duration::minutes(16));
    let sensitive = [
        ("/v1/me/recovery-codes", &token, json!({})),
        (
            "/v1/tenants/step-clinic/users/tina/password",
            &admin,
            json!({"temporary_password": "Temporary-Pass-5678!"}),
        ),
    ];
    for (path, who, body) in &sensitive {
        let r = app.post(path, Some(who.as_str()), body).await;
        problem(r, StatusCode::FORBIDDEN, "step_up_required").await;
    }
    let r = app
        .put(
            "/v1/tenants/step-clinic/users/tina/mfa",
            Some(&admin),
            &json!({"method": "email", "enrollment": "prompt"}),
        )
        .await;
    problem(r, StatusCode::FORBIDDEN, "step_up_required").await;
    let tina = ok_json(
        app.get("/v1/tenants/step-clinic/users/tina", Some(&admin))
            .await,
    )
    .await;
    assert_eq!(tina["mfa"]["method"], "totp", "{tina}");

    // A wrong code does not step up; the authenticator's current code does.
    let now = independent_totp(&secret, unix(&clock));
    let wrong = if now == "000000" { "111111" } else { "000000" };
    let r = step_up(&app, &token, json!({"method": "totp", "code": wrong})).await;
    problem(r, StatusCode::BAD_REQUEST, "mfa_code_invalid").await;
    let r = step_up(&app, &token, json!({"method": "totp", "code": now})).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = app
        .post("/v1/me/recovery-codes", Some(&token), &json!({}))
        .await;
    ok_json(r).await;

    // The admin steps up with an email code.
    let admin_email = "admin@step-clinic.example.com";
    let mark = app.outbox_mark();
    let r = app
        .post(
            "/v1/me/step-up/code",
            Some(&admin),
            &json!({"channel": "email"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let code = app.code_after(mark, admin_email).await;
    let r = step_up(&app, &admin, json!({"method": "code", "code": code})).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let session = ok_json(app.get("/v1/auth/session", Some(&admin)).await).await;
    assert_eq!(
        session["mfa_verified_at"].as_str().unwrap(),
        clock
            .now()
            .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
    );
    let r = app
        .put(
            "/v1/tenants/step-clinic/users/tina/mfa",
            Some(&admin),
            &json!({"method": "email", "enrollment": "prompt"}),
        )
        .await;
    ok_json(r).await;
    let events = actions(&app, "step-clinic", &admin).await;
    assert!(has_action(&events, "recovery_codes.regenerated"));
}

async fn m10_contacts_are_used_only_after_proof(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.mfa_practice("contact-clinic").await;
    create_staff(&app, "contact-clinic", &admin, "ann", None).await;
    let flow = after_password_change(&app, "contact-clinic", "ann").await;
    let token = app
        .finish_mfa(&flow, &email_of("contact-clinic", "ann"), 0)
        .await;

    // No proven phone: SMS step-up codes are refused.
    let r = app
        .post(
            "/v1/me/step-up/code",
            Some(&token),
            &json!({"channel": "sms"}),
        )
        .await;
    problem(r, StatusCode::CONFLICT, "no_destination").await;

    let mark = app.outbox_mark();
    let r = app
        .post(
            "/v1/me/contacts/phone",
            Some(&token),
            &json!({"value": "+1 (202) 555-0188"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let code = app.code_after(mark, "+12025550188").await;
    let r = app
        .post(
            "/v1/me/contacts/phone/verify",
            Some(&token),
            &json!({"code": "12"}),
        )
        .await;
    problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let ann = ok_json(
        app.post(
            "/v1/me/contacts/phone/verify",
            Some(&token),
            &json!({"code": code}),
        )
        .await,
    )
    .await;
    assert_eq!(ann["phone"], "+12025550188");
    assert_eq!(ann["phone_verified"], true);
    // Now she may make SMS her method.
    let ann = ok_json(
        app.put("/v1/me/mfa", Some(&token), &json!({"method": "sms"}))
            .await,
    )
    .await;
    assert_eq!(ann["mfa"]["method"], "sms");
    let mark = app.outbox_mark();
    let f = sign_in(&app, "contact-clinic", "ann", None, None).await;
    assert_eq!(f["mfa"]["code_sent"]["channel"], "sms", "{f}");
    app.code_after(mark, "+12025550188").await;
    let r = app
        .post("/v1/me/contacts/fax", Some(&token), &json!({"value": "x"}))
        .await;
    problem(r, StatusCode::NOT_FOUND, "not_found").await;
}

/// Every row of every table, as text.
async fn dump_all_tables(app: &TestApp) -> Vec<String> {
    let backend = app.raw.get_database_backend();
    let q = |sql: String| sea_orm::Statement::from_string(backend, sql);
    let tables: Vec<String> = match app.db {
        Db::Sqlite => app
            .raw
            .query_all_raw(q("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'".into()))
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.try_get::<String>("", "name").unwrap())
            .collect(),
        Db::Postgres => app
            .raw
            .query_all_raw(q("SELECT table_name::text AS name FROM information_schema.tables WHERE table_schema = current_schema()".into()))
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.try_get::<String>("", "name").unwrap())
            .collect(),
    };
    assert!(tables.len() >= 15, "{tables:?}");
    let mut out = Vec::new();
    for t in tables {
        let sql = match app.db {
            Db::Postgres => format!("SELECT row_to_json(x)::text AS j FROM \"{t}\" x"),
            Db::Sqlite => {
                let cols: Vec<String> = app
                    .raw
                    .query_all_raw(q(format!("SELECT name FROM pragma_table_info('{t}')")))
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|r| r.try_get::<String>("", "name").unwrap())
                    .collect();
                // UUIDs are BLOBs on SQLite: shown as hex.
                let pairs: Vec<String> = cols
                    .iter()
                    .map(|c| {
                        format!("'{c}', CASE typeof(\"{c}\") WHEN 'blob' THEN hex(\"{c}\") ELSE \"{c}\" END")
                    })
                    .collect();
                format!("SELECT json_object({}) AS j FROM \"{t}\"", pairs.join(", "))
            }
        };
        for r in app.raw.query_all_raw(q(sql)).await.unwrap() {
            out.push(r.try_get::<String>("", "j").unwrap());
        }
    }
    out
}

async fn m4_no_code_secret_or_token_in_any_table(db: Db) {
    let (app, clock) = spawn_fixed(db).await;
    let admin = app.mfa_practice("scan-clinic").await;
    let mut secrets: Vec<String> = vec![admin.clone(), app.support_token().await];
    let mut codes: Vec<String> = Vec::new();

    // Email codes: enrollment and sign-in, with a remembered device.
    create_staff(&app, "scan-clinic", &admin, "ann", None).await;
    let ann = email_of("scan-clinic", "ann");
    let flow = after_password_change(&app, "scan-clinic", "ann").await;
    let mark = app.outbox_mark();
    app.post(&flow_path(&flow, "enroll/email"), None, &json!({}))
        .await;
    let code = app.code_after(mark, &ann).await;
    codes.push(code.clone());
    let done = ok_json(
        app.post(
            &flow_path(&flow, "enroll/email/confirm"),
            None,
            &json!({"code": code}),
        )
        .await,
    )
    .await;
    secrets.push(done["session"]["token"].as_str().unwrap().to_owned());
    let mark = app.outbox_mark();
    let flow = sign_in(&app, "scan-clinic", "ann", None, None).await;
    let code = app.code_after(mark, &ann).await;
    codes.push(code.clone());
    let done = ok_json(
        app.post(
            &flow_path(&flow, "verify"),
            None,
            &json!({"method": "code", "code": code, "remember_device": true}),
        )
        .await,
    )
    .await;
    secrets.push(done["device_token"].as_str().unwrap().to_owned());
    secrets.push(done["session"]["token"].as_str().unwrap().to_owned());

    // An authenticator and its recovery codes; one recovery code used.
    create_staff(&app, "scan-clinic", &admin, "tina", None).await;
    let flow = after_password_change(&app, "scan-clinic", "tina").await;
    let e = ok_json(
        app.post(&flow_path(&flow, "enroll/totp"), None, &json!({}))
            .await,
    )
    .await;
    let secret_b32 = e["secret"].as_str().unwrap().to_owned();
    let code = independent_totp(&base32_decode(&secret_b32), unix(&clock));
    codes.push(code.clone());
    let done = ok_json(
        app.post(
            &flow_path(&flow, "enroll/totp/confirm"),
            None,
            &json!({"code": code}),
        )
        .await,
    )
    .await;
    let recovery: Vec<String> = done["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    let flow = sign_in(&app, "scan-clinic", "tina", None, None).await;
    ok_json(verify(&app, &flow, "recovery_code", &recovery[0]).await).await;
    secrets.push(secret_b32.clone());
    secrets.push(hex_of(&base32_decode(&secret_b32)));
    secrets.extend(recovery.iter().cloned());
    secrets.extend(recovery.iter().map(|c| c.replace('-', "")));
    secrets.push(NEW_PASSWORD.to_owned());

    let rows = dump_all_tables(&app).await;
    let text = rows.join("\n");
    assert!(text.contains("scan-clinic"), "the dump has the data");
    for s in &secrets {
        assert!(s.len() >= 8);
        assert!(!text.contains(s.as_str()), "a secret is stored in clear");
    }
    // A code is 6 digits: look for it as a whole token, not inside longer numbers.
    for row in &rows {
        for token in row.split(|c: char| !c.is_ascii_alphanumeric()) {
            assert!(
                !codes.iter().any(|c| c == token),
                "a code is stored in clear: {row}"
            );
        }
    }
}

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
