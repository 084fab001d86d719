//! Sends refused before any provider (D3, D4, D7): opted-out numbers, suppressed
//! addresses, countries a practice does not text, its daily SMS budget, and the
//! per-destination limit. Each refusal says why, is recorded for support, and the flow
//! offers the user's other methods.

use crate::helpers::{Db, NEW_PASSWORD, OPT_IN_NUMBER, TestApp, ok_json, problem};
use gatehouse_domain::ids::{EmailAddress, PhoneE164};
use gatehouse_domain::sender::{SenderNumber, SmsNumbers};
use gatehouse_store::optouts::OptOutSource;
use gatehouse_testkit::on_both_databases;
use reqwest::StatusCode;
use serde_json::{Value, json};

on_both_databases!(
    d3_an_opted_out_number_gets_no_code_and_start_lets_it_receive_again,
    d4_a_suppressed_address_gets_no_code_until_support_lifts_it,
    d7_countries_and_the_daily_budget_limit_sms,
    d7_one_destination_gets_at_most_ten_codes_an_hour,
    d3_the_opted_out_answer_names_a_short_code_as_configured,
);

const PHONE: &str = "+12025550147";

/// A staff user who enrolled SMS (`phone`) and, with `email`, also proved an email address.
async fn sms_user(app: &TestApp, company: &str, admin: &str, user: &str, phone: &str) -> String {
    let r = app
        .post(
            &format!("/v1/tenants/{company}/users"),
            Some(admin),
            &json!({"username": user, "first_name": "Sam", "last_name": "Staff", "role": "staff",
                    "phone": phone, "email": format!("{user}@{company}.example.com"),
                    "password": "Temporary-Pass-1234!"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let flow = ok_json(app.login(company, user, "Temporary-Pass-1234!").await).await;
    let id = flow["flow_id"].as_str().unwrap().to_owned();
    ok_json(
        app.post(
            &format!("/v1/auth/flows/{id}/password"),
            None,
            &json!({"new_password": NEW_PASSWORD}),
        )
        .await,
    )
    .await;
    let mark = app.outbox_mark();
    let r = app
        .post(&format!("/v1/auth/flows/{id}/enroll/sms"), None, &json!({}))
        .await;
    assert_eq!(
        r.status(),
        StatusCode::ACCEPTED,
        "{}",
        r.text().await.unwrap()
    );
    let code = app.code_after(mark, phone).await;
    let done = ok_json(
        app.post(
            &format!("/v1/auth/flows/{id}/enroll/sms/confirm"),
            None,
            &json!({"code": code}),
        )
        .await,
    )
    .await;
    done["session"]["token"].as_str().unwrap().to_owned()
}

async fn sign_in(app: &TestApp, company: &str, user: &str) -> Value {
    ok_json(app.login(company, user, NEW_PASSWORD).await).await
}

async fn statuses(app: &TestApp, company: &str) -> Vec<String> {
    let rows = app
        .raw
        .query_all_raw(sea_orm::Statement::from_string(
            app.raw.get_database_backend(),
            format!(
                "SELECT d.status AS s FROM deliveries d JOIN tenants t ON t.id = d.tenant_id \
                 WHERE t.company = '{company}' ORDER BY d.created_at"
            ),
        ))
        .await
        .unwrap();
    rows.into_iter()
        .map(|r| r.try_get::<String>("", "s").unwrap())
        .collect()
}

use sea_orm::ConnectionTrait;

async fn d3_an_opted_out_number_gets_no_code_and_start_lets_it_receive_again(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.mfa_practice("stop-clinic").await;
    let token = sms_user(&app, "stop-clinic", &admin, "sam", PHONE).await;
    // Sam also proves an email address, so there is another method to offer.
    let mark = app.outbox_mark();
    let email = "sam.home@example.com";
    let r = app
        .post(
            "/v1/me/contacts/email",
            Some(&token),
            &json!({"value": email}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let code = app.code_after(mark, email).await;
    ok_json(
        app.post(
            "/v1/me/contacts/email/verify",
            Some(&token),
            &json!({"code": code}),
        )
        .await,
    )
    .await;

    let phone = PhoneE164::parse(PHONE).unwrap();
    assert!(
        app.store
            .set_phone_opted_out(&phone, true, OptOutSource::Inbound)
            .await
            .unwrap()
    );
    assert!(
        !app.store
            .set_phone_opted_out(&phone, true, OptOutSource::Inbound)
            .await
            .unwrap()
    );

    let mark = app.outbox_mark();
    let flow = sign_in(&app, "stop-clinic", "sam").await;
    assert_eq!(flow["status"], "mfa_required");
    assert!(flow["mfa"]["code_sent"].is_null(), "{flow}");
    let err = &flow["mfa"]["code_error"];
    assert_eq!(err["code"], "phone_opted_out", "{flow}");
    assert_eq!(err["status"], 409);
    let detail = err["detail"].as_str().unwrap();
    assert!(
        detail.contains("START") && detail.contains(OPT_IN_NUMBER),
        "{detail}"
    );
    assert!(detail.contains("cannot override"), "{detail}");
    // SMS is not offered; email is.
    assert_eq!(flow["mfa"]["methods"], json!(["email"]), "{flow}");
    assert_eq!(flow["mfa"]["preferred"], "email");
    let id = flow["flow_id"].as_str().unwrap();
    let r = app
        .post(
            &format!("/v1/auth/flows/{id}/code"),
            None,
            &json!({"channel": "sms"}),
        )
        .await;
    problem(r, StatusCode::CONFLICT, "phone_opted_out").await;
    // Nothing went to the number; the refusals are on record and did not use the throttle.
    let r = app
        .post(
            &format!("/v1/auth/flows/{id}/code"),
            None,
            &json!({"channel": "email"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let code = app.code_after(mark, email).await;
    assert!(
        app.outbox_lines()
            .iter()
            .skip(mark)
            .all(|l| l["to"] != PHONE)
    );
    let done = ok_json(
        app.post(
            &format!("/v1/auth/flows/{id}/verify"),
            None,
            &json!({"method": "code", "code": code}),
        )
        .await,
    )
    .await;
    assert_eq!(done["status"], "authenticated");
    let st = statuses(&app, "stop-clinic").await;
    assert_eq!(st.iter().filter(|s| *s == "opted_out").count(), 2, "{st:?}");

    // START: texts flow again.
    assert!(
        app.store
            .set_phone_opted_out(&phone, false, OptOutSource::Inbound)
            .await
            .unwrap()
    );
    let opt = app.store.phone_opt_out(&phone).await.unwrap().unwrap();
    assert!(!opt.opted_out);
    let mark = app.outbox_mark();
    let flow = sign_in(&app, "stop-clinic", "sam").await;
    assert_eq!(flow["mfa"]["code_sent"]["channel"], "sms", "{flow}");
    app.code_after(mark, PHONE).await;

    let log = ok_json(
        app.get(
            "/v1/tenants/stop-clinic/audit-events?action=mfa.code_refused",
            Some(&admin),
        )
        .await,
    )
    .await;
    let reasons: Vec<&str> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["details"]["reason"].as_str())
        .collect();
    assert_eq!(reasons, ["phone_opted_out", "phone_opted_out"]);
}

async fn d4_a_suppressed_address_gets_no_code_until_support_lifts_it(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.mfa_practice("bounce-clinic").await;
    let addr = "carl@bounce-clinic.example.com";
    let r = app
        .post(
            "/v1/tenants/bounce-clinic/users",
            Some(&admin),
            &json!({"username": "carl", "first_name": "Carl", "last_name": "Staff", "role": "staff",
                    "email": addr, "password": "Temporary-Pass-1234!"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    app.finish_password_change(
        "bounce-clinic",
        "carl",
        "Temporary-Pass-1234!",
        NEW_PASSWORD,
    )
    .await;
    let email = EmailAddress::parse("Carl@Bounce-Clinic.example.com").unwrap();
    assert!(
        app.store
            .suppress_email(&email, "bounce", Some("550 5.1.1 mailbox unknown"))
            .await
            .unwrap()
    );
    assert!(
        !app.store
            .suppress_email(&email, "complaint", None)
            .await
            .unwrap()
    );
    assert_eq!(
        app.store
            .email_suppression(&email)
            .await
            .unwrap()
            .unwrap()
            .reason,
        "bounce",
        "the first reason stays"
    );

    let flow = sign_in(&app, "bounce-clinic", "carl").await;
    assert_eq!(
        flow["mfa"]["code_error"]["code"], "email_suppressed",
        "{flow}"
    );
    assert!(flow["mfa"]["code_sent"].is_null());
    let id = flow["flow_id"].as_str().unwrap();
    let r = app
        .post(
            &format!("/v1/auth/flows/{id}/code"),
            None,
            &json!({"channel": "email"}),
        )
        .await;
    problem(r, StatusCode::CONFLICT, "email_suppressed").await;
    assert!(
        app.outbox_lines()
            .iter()
            .all(|l| l["to"] != addr || l["purpose"] == "enroll")
    );

    assert!(app.store.lift_email_suppression(&email).await.unwrap());
    assert!(!app.store.lift_email_suppression(&email).await.unwrap());
    let mark = app.outbox_mark();
    let flow = sign_in(&app, "bounce-clinic", "carl").await;
    assert_eq!(flow["mfa"]["code_sent"]["channel"], "email", "{flow}");
    app.code_after(mark, addr).await;
}

async fn d7_countries_and_the_daily_budget_limit_sms(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.mfa_practice("cost-clinic").await;
    // A UK number is refused while the practice texts only +1.
    let r = app
        .post(
            "/v1/tenants/cost-clinic/users",
            Some(&admin),
            &json!({"username": "uma", "first_name": "Uma", "last_name": "Staff", "role": "staff",
                    "email": "uma@cost-clinic.example.com", "password": "Temporary-Pass-1234!"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let flow = ok_json(
        app.login("cost-clinic", "uma", "Temporary-Pass-1234!")
            .await,
    )
    .await;
    let id = flow["flow_id"].as_str().unwrap().to_owned();
    ok_json(
        app.post(
            &format!("/v1/auth/flows/{id}/password"),
            None,
            &json!({"new_password": NEW_PASSWORD}),
        )
        .await,
    )
    .await;
    let uk = "+447911123456";
    let r = app
        .post(
            &format!("/v1/auth/flows/{id}/enroll/sms"),
            None,
            &json!({"destination": uk}),
        )
        .await;
    let p = problem(r, StatusCode::CONFLICT, "sms_country_blocked").await;
    assert!(p["detail"].as_str().unwrap().contains("+44"), "{p}");
    ok_json(
        app.patch(
            "/v1/tenants/cost-clinic/settings",
            Some(&admin),
            &json!({"sms_country_codes": ["1", "44"], "sms_daily_limit": 2}),
        )
        .await,
    )
    .await;
    let mark = app.outbox_mark();
    let r = app
        .post(
            &format!("/v1/auth/flows/{id}/enroll/sms"),
            None,
            &json!({"destination": uk}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED); // SMS 1 of 2 today
    let code = app.code_after(mark, uk).await;
    ok_json(
        app.post(
            &format!("/v1/auth/flows/{id}/enroll/sms/confirm"),
            None,
            &json!({"code": code}),
        )
        .await,
    )
    .await;
    let flow = sign_in(&app, "cost-clinic", "uma").await; // SMS 2 of 2
    assert_eq!(flow["mfa"]["code_sent"]["channel"], "sms", "{flow}");
    let flow = sign_in(&app, "cost-clinic", "uma").await;
    assert_eq!(
        flow["mfa"]["code_error"]["code"], "sms_budget_exceeded",
        "{flow}"
    );
    let detail = flow["mfa"]["code_error"]["detail"].as_str().unwrap();
    assert!(
        detail.contains("email") && detail.contains("authenticator"),
        "{detail}"
    );
    assert!(
        !flow["mfa"]["methods"]
            .as_array()
            .unwrap()
            .contains(&json!("sms"))
    );
}

async fn d7_one_destination_gets_at_most_ten_codes_an_hour(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.mfa_practice("flood-clinic").await;
    // Two users on one number: five codes each (the per-user limit) make ten.
    for u in ["ann", "bob"] {
        sms_user(&app, "flood-clinic", &admin, u, PHONE).await;
        for _ in 0..4 {
            let mark = app.outbox_mark();
            let f = sign_in(&app, "flood-clinic", u).await;
            assert_eq!(f["mfa"]["code_sent"]["channel"], "sms", "{f}");
            app.code_after(mark, PHONE).await;
        }
    }
    // A third user's first code to the same number is refused: the number has had ten.
    let r = app
        .post(
            "/v1/tenants/flood-clinic/users",
            Some(&admin),
            &json!({"username": "cy", "first_name": "Cy", "last_name": "Staff", "role": "staff",
                    "phone": PHONE, "password": "Temporary-Pass-1234!"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let flow = ok_json(
        app.login("flood-clinic", "cy", "Temporary-Pass-1234!")
            .await,
    )
    .await;
    let id = flow["flow_id"].as_str().unwrap().to_owned();
    ok_json(
        app.post(
            &format!("/v1/auth/flows/{id}/password"),
            None,
            &json!({"new_password": NEW_PASSWORD}),
        )
        .await,
    )
    .await;
    let r = app
        .post(&format!("/v1/auth/flows/{id}/enroll/sms"), None, &json!({}))
        .await;
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry > 30 && retry <= 3600, "{retry}");
    problem(r, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    // Another number is not affected.
    let r = app
        .post(
            &format!("/v1/auth/flows/{id}/enroll/sms"),
            None,
            &json!({"destination": "+12025550188"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
}

/// The seeds' practices tell users to text START to the short code `501-20`: the answer
/// names it in that form, whatever AWS writes.
async fn d3_the_opted_out_answer_names_a_short_code_as_configured(db: Db) {
    let app = TestApp::spawn_with(
        db,
        crate::helpers::Options {
            sms_numbers: Some(SmsNumbers {
                origination: Some(SenderNumber::parse("+18005550100").unwrap()),
                opt_in: Some(SenderNumber::parse("501-20").unwrap()),
            }),
            ..Default::default()
        },
    )
    .await;
    let admin = app.mfa_practice("short-clinic").await;
    sms_user(&app, "short-clinic", &admin, "sam", PHONE).await;
    app.store
        .set_phone_opted_out(
            &PhoneE164::parse(PHONE).unwrap(),
            true,
            OptOutSource::Inbound,
        )
        .await
        .unwrap();
    let flow = sign_in(&app, "short-clinic", "sam").await;
    let err = &flow["mfa"]["code_error"];
    assert_eq!(err["code"], "phone_opted_out", "{flow}");
    let detail = err["detail"].as_str().unwrap();
    assert!(detail.contains("text START to 501-20 "), "{detail}");
    assert_eq!(
        statuses(&app, "short-clinic")
            .await
            .last()
            .map(String::as_str),
        Some("opted_out")
    );
}
