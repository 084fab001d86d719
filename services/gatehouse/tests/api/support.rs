//! The vendor's support desk (S1, S3, D3, D4, D5): a user's deliveries, finding users and
//! deliveries across practices (each read audited in the practice's own log), a number's
//! opt-out state, lifting a suppression, and suspending and reactivating a practice.

use crate::helpers::{
    Db, NEW_PASSWORD, Options, SUPPORT_USER, TestApp, error_fields, ok_json, problem,
};
use crate::isolation::{create_user, support_agent};
use futures_util::future::join_all;
use gatehouse_domain::ids::{EmailAddress, PhoneE164};
use gatehouse_store::optouts::OptOutSource;
use gatehouse_testkit::on_both_databases;
use reqwest::{Method, StatusCode};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

on_both_databases!(
    d5_a_users_deliveries_are_newest_first_masked_paged_and_support_reads_are_audited,
    s1_support_finds_users_by_username_email_and_phone_across_practices_and_each_is_audited,
    s1_searches_at_once_over_the_same_practices_leave_each_read_once_in_every_chain,
    s1_support_finds_deliveries_to_a_destination_across_practices_masked_and_audited,
    d3_support_reads_a_numbers_opt_out_state,
    d4_support_lifts_a_suppression_and_the_operator_log_records_it_masked,
    s1_vendor_support_paths_refuse_practice_users_and_wrong_methods,
    s3_suspension_ends_sessions_at_once_refuses_sign_in_and_reactivation_restores_it,
    s3_only_a_support_admin_suspends_and_never_the_operator_tenant,
    s3_suspension_through_one_process_ends_sessions_cached_in_another,
);

const TEMP_PASSWORD: &str = "Temporary-Pass-1234!";

/// Events of a tenant's log with this action, newest first (read by `token`).
async fn events(app: &TestApp, company: &str, token: &str, action: &str) -> Vec<Value> {
    let page = ok_json(
        app.get(
            &format!("/v1/tenants/{company}/audit-events?action={action}&limit=500"),
            Some(token),
        )
        .await,
    )
    .await;
    page["items"].as_array().unwrap().clone()
}

fn items(page: &Value) -> &Vec<Value> {
    page["items"].as_array().unwrap()
}

/// Waits (up to 10 s) until every delivery of a user has left the queue (the workers send
/// them in the background); answers the list as the practice reads it.
async fn settled_deliveries(app: &TestApp, company: &str, user: &str, token: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let page = ok_json(
            app.get(
                &format!("/v1/tenants/{company}/users/{user}/deliveries"),
                Some(token),
            )
            .await,
        )
        .await;
        if items(&page).iter().all(|d| d["status"] != "queued") {
            return page;
        }
        assert!(Instant::now() < deadline, "still queued: {page}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A practice user with email and phone, as the practice admin creates them.
async fn user_with_contacts(
    app: &TestApp,
    company: &str,
    admin: &str,
    username: &str,
    email: &str,
    phone: &str,
) -> Value {
    let r = app
        .post(
            &format!("/v1/tenants/{company}/users"),
            Some(admin),
            &json!({"username": username, "first_name": "Jo", "last_name": "User", "role": "staff",
                    "email": email, "phone": phone, "password": TEMP_PASSWORD}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    r.json().await.unwrap()
}

/// A staff user of an MFA-requiring practice who changes the temporary password and
/// enrolls email codes at `email`: one delivery to it. Returns the user's token.
async fn enrolled_at(app: &TestApp, company: &str, admin: &str, user: &str, email: &str) -> String {
    create_user(app, company, admin, user, "staff").await;
    let flow = ok_json(app.login(company, user, TEMP_PASSWORD).await).await;
    let id = flow["flow_id"].as_str().unwrap();
    let flow = ok_json(
        app.post(
            &format!("/v1/auth/flows/{id}/password"),
            None,
            &json!({"new_password": NEW_PASSWORD}),
        )
        .await,
    )
    .await;
    assert_eq!(flow["status"], "mfa_enrollment_required", "{flow}");
    app.finish_mfa(&flow, email, 0).await
}

async fn d5_a_users_deliveries_are_newest_first_masked_paged_and_support_reads_are_audited(db: Db) {
    let app = TestApp::spawn(db).await;
    // The admin enrolled email codes: one delivery (enroll). A second sign-in sends one more.
    let admin = app.mfa_practice("dl-a").await;
    let email = "admin@dl-a.example.com";
    let mark = app.outbox_mark();
    let flow = ok_json(app.login("dl-a", "dl-a-admin", NEW_PASSWORD).await).await;
    assert_eq!(flow["status"], "mfa_required", "{flow}");
    app.code_after(mark, email).await;
    let me = ok_json(app.get("/v1/me", Some(&admin)).await).await;
    let admin_id = me["id"].as_str().unwrap();

    let base = "/v1/tenants/dl-a/users/dl-a-admin/deliveries";
    settled_deliveries(&app, "dl-a", "dl-a-admin", &admin).await;
    let r = app.get(base, Some(&admin)).await;
    let text = r.text().await.unwrap();
    let page: Value = serde_json::from_str(&text).unwrap();
    assert!(page["next_cursor"].is_null(), "{page}");
    let list = items(&page);
    assert_eq!(list.len(), 2, "{page}");
    // Newest first: the sign-in code after the enrollment's.
    assert_eq!(list[0]["purpose"], "sign_in");
    assert_eq!(list[1]["purpose"], "enroll");
    for d in list {
        assert_eq!(d["channel"], "email");
        assert_eq!(d["to"], "a•••@dl-a.example.com");
        assert!(d["id"].is_string() && d["created_at"].is_string() && d["updated_at"].is_string());
        assert!(d["attempts"].is_u64(), "{d}");
        for field in ["status", "provider_message_id", "error"] {
            assert!(d.get(field).is_some(), "{field} in {d}");
        }
    }
    // Both codes reached the outbox provider (a code that was used is `delivered`).
    for d in list {
        assert!(d["status"] == "sent" || d["status"] == "delivered", "{d}");
        assert!(d["provider_message_id"].is_string(), "{d}");
        assert!(d["error"].is_null(), "{d}");
        assert_eq!(d["attempts"], 1, "{d}");
    }
    // Never the full destination, nor a code.
    assert!(!text.to_lowercase().contains(email), "{text}");

    // By UUID as by username; paged one at a time.
    let by_id = ok_json(
        app.get(
            &format!("/v1/tenants/dl-a/users/{admin_id}/deliveries"),
            Some(&admin),
        )
        .await,
    )
    .await;
    assert_eq!(by_id, page);
    let first = ok_json(app.get(&format!("{base}?limit=1"), Some(&admin)).await).await;
    assert_eq!(items(&first).len(), 1);
    assert_eq!(items(&first)[0], list[0]);
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = ok_json(
        app.get(&format!("{base}?limit=1&cursor={cursor}"), Some(&admin))
            .await,
    )
    .await;
    assert_eq!(items(&second)[0], list[1]);
    assert!(second["next_cursor"].is_null(), "{second}");

    // Refusals: a cursor not of this list, an unknown user.
    let r = app
        .get(&format!("{base}?cursor=not-a-cursor"), Some(&admin))
        .await;
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert!(error_fields(&p).contains("cursor"), "{p}");
    let r = app
        .get(
            &format!("{base}?cursor={}", uuid::Uuid::new_v4()),
            Some(&admin),
        )
        .await;
    problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let r = app
        .get("/v1/tenants/dl-a/users/nobody/deliveries", Some(&admin))
        .await;
    problem(r, StatusCode::NOT_FOUND, "not_found").await;
    let r = app.post(base, Some(&admin), &json!({})).await;
    problem(r, StatusCode::METHOD_NOT_ALLOWED, "method_not_supported").await;

    // A support agent reads the same list; the practice's log shows that read.
    let root = app.support_token().await;
    let (agent, agent_id) = support_agent(&app, &root, "agent.dee").await;
    let seen = ok_json(app.get(base, Some(&agent)).await).await;
    assert_eq!(seen, page);
    let reads = events(&app, "dl-a", &admin, "support.read").await;
    assert_eq!(reads.len(), 1, "{reads:?}");
    assert_eq!(reads[0]["actor"]["id"], agent_id.as_str());
    assert_eq!(reads[0]["actor"]["kind"], "support");
    assert_eq!(reads[0]["details"]["path"], base);
    assert_eq!(reads[0]["details"]["role"], "support_agent");
}

async fn s1_support_finds_users_by_username_email_and_phone_across_practices_and_each_is_audited(
    db: Db,
) {
    let app = TestApp::spawn(db).await;
    let a = app.practice("find-a").await;
    let b = app.practice("find-b").await;
    let c = app.practice("find-c").await;
    let jane = user_with_contacts(
        &app,
        "find-a",
        &a,
        "jane_doe",
        "Jane.Doe@Shared.example.com",
        "+12025550147",
    )
    .await;
    let jean = user_with_contacts(
        &app,
        "find-b",
        &b,
        "jane.smith",
        "js@find-b.example.com",
        "+12025550199",
    )
    .await;
    let bob = user_with_contacts(
        &app,
        "find-b",
        &b,
        "bob",
        "bob@find-b.example.com",
        "+1 202 555 0147",
    )
    .await;
    user_with_contacts(
        &app,
        "find-c",
        &c,
        "carl",
        "carl@find-c.example.com",
        "+12025550100",
    )
    .await;
    let root = app.support_token().await;
    let (agent, agent_id) = support_agent(&app, &root, "agent.finder").await;
    let search = |q: &str| format!("/v1/support/users?q={}", urlencode(q));
    let names = |page: &Value| -> Vec<(String, String)> {
        items(page)
            .iter()
            .map(|u| {
                (
                    u["company"].as_str().unwrap().to_owned(),
                    u["username"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let pair = |c: &str, u: &str| (c.to_owned(), u.to_owned());

    // By part of a username, across practices, ordered by username; each a full User.
    let page = ok_json(app.get(&search("jane"), Some(&agent)).await).await;
    assert_eq!(
        names(&page),
        [pair("find-b", "jane.smith"), pair("find-a", "jane_doe")]
    );
    assert_eq!(items(&page)[0], jean);
    assert_eq!(items(&page)[1]["id"], jane["id"]);
    assert!(page["next_cursor"].is_null());
    // `_` is a character here, not a wildcard.
    let page = ok_json(app.get(&search("jane_"), Some(&agent)).await).await;
    assert_eq!(names(&page), [pair("find-a", "jane_doe")]);
    // The start of a value, not its middle: what an index finds, whatever the practice's
    // size (the middle of a name, an address's domain, a number's first digits).
    for q in [
        "ane_doe",
        "shared.example.com",
        "@find-b",
        "+1202555",
        "Jane.D",
    ] {
        let page = ok_json(app.get(&search(q), Some(&agent)).await).await;
        assert_eq!(names(&page), Vec::<(String, String)>::new(), "{q}");
    }

    // By email, whatever its case.
    let page = ok_json(
        app.get(&search("JANE.DOE@shared.EXAMPLE.com"), Some(&agent))
            .await,
    )
    .await;
    assert_eq!(names(&page), [pair("find-a", "jane_doe")]);
    let page = ok_json(app.get(&search("Jane.Doe@"), Some(&agent)).await).await;
    assert_eq!(names(&page), [pair("find-a", "jane_doe")]);

    // By phone, in any notation (stored E.164), and by some of its digits.
    let page = ok_json(app.get(&search("(202) 555-0147"), Some(&agent)).await).await;
    assert_eq!(
        names(&page),
        [pair("find-b", "bob"), pair("find-a", "jane_doe")]
    );
    assert_eq!(items(&page)[0], bob);
    let page = ok_json(app.get(&search("555-0199"), Some(&agent)).await).await;
    assert_eq!(names(&page), [pair("find-b", "jane.smith")]);
    let page = ok_json(app.get(&search("0100"), Some(&agent)).await).await;
    assert_eq!(names(&page), [pair("find-c", "carl")]);

    // Bounded and paged.
    let first = ok_json(
        app.get(&format!("{}&limit=1", search("jane")), Some(&agent))
            .await,
    )
    .await;
    assert_eq!(names(&first), [pair("find-b", "jane.smith")]);
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = ok_json(
        app.get(
            &format!("{}&limit=1&cursor={cursor}", search("jane")),
            Some(&root),
        )
        .await,
    )
    .await;
    assert_eq!(names(&second), [pair("find-a", "jane_doe")]);
    assert!(second["next_cursor"].is_null());

    // Each practice whose users were answered saw the read, the number masked, and only
    // those reads (the searches that answered nobody were recorded nowhere).
    let reads_a = events(&app, "find-a", &a, "support.read").await;
    let reads_b = events(&app, "find-b", &b, "support.read").await;
    let reads_c = events(&app, "find-c", &c, "support.read").await;
    for e in reads_a.iter().chain(&reads_b).chain(&reads_c) {
        assert_eq!(e["details"]["path"], "/v1/support/users");
        assert_eq!(e["actor"]["kind"], "support");
    }
    let queries = |reads: &[Value]| -> Vec<(String, String)> {
        reads
            .iter()
            .rev()
            .map(|e| {
                (
                    e["actor"]["username"].as_str().unwrap().to_owned(),
                    e["details"]["query"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let by = |who: &str, q: &str| (who.to_owned(), q.to_owned());
    let agent_name = "agent.finder";
    assert_eq!(
        queries(&reads_a),
        [
            by(agent_name, "q=jane"),
            by(agent_name, "q=jane_"),
            by(agent_name, "q=j•••@shared.example.com"),
            by(agent_name, "q=jane.doe@"),
            by(agent_name, "q=•••-•••-0147"),
            by(SUPPORT_USER, "q=jane"),
        ]
    );
    assert_eq!(
        queries(&reads_b),
        [
            by(agent_name, "q=jane"),
            by(agent_name, "q=•••-•••-0147"),
            by(agent_name, "q=•••-•••-0199"),
            by(agent_name, "q=jane"),
        ]
    );
    assert_eq!(queries(&reads_c), [by(agent_name, "q=0100")]);
    assert_eq!(reads_b[0]["actor"]["id"], agent_id.as_str());
    let log_a = ok_json(
        app.get("/v1/tenants/find-a/audit-events?limit=500", Some(&a))
            .await,
    )
    .await
    .to_string();
    assert!(!log_a.contains("2025550147"), "the number in the log");

    // q shorter than three characters, or missing: 422 on q.
    for path in [
        search("ab"),
        search("  ab "),
        "/v1/support/users".to_owned(),
    ] {
        let r = app.get(&path, Some(&agent)).await;
        let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert!(error_fields(&p).contains("q"), "{p}");
    }
    let r = app
        .get(&format!("{}&cursor=nope", search("jane")), Some(&agent))
        .await;
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert!(error_fields(&p).contains("cursor"), "{p}");
}

async fn s1_support_finds_deliveries_to_a_destination_across_practices_masked_and_audited(db: Db) {
    let app = TestApp::spawn(db).await;
    let a = app.mfa_practice("dd-a").await;
    let b = app.mfa_practice("dd-b").await;
    let c = app.mfa_practice("dd-c").await;
    // The same mailbox enrolled by a user of each of two practices.
    let shared = "shared.box@example.com";
    enrolled_at(&app, "dd-a", &a, "amy", shared).await;
    enrolled_at(&app, "dd-b", &b, "ben", shared).await;
    settled_deliveries(&app, "dd-a", "amy", &a).await;
    settled_deliveries(&app, "dd-b", "ben", &b).await;
    let amy = ok_json(app.get("/v1/tenants/dd-a/users/amy", Some(&a)).await).await;
    let ben = ok_json(app.get("/v1/tenants/dd-b/users/ben", Some(&b)).await).await;
    let root = app.support_token().await;
    let (agent, agent_id) = support_agent(&app, &root, "agent.mail").await;

    // Found whatever the address's case; newest first, each with its practice and user.
    let path = "/v1/support/deliveries?destination=Shared.Box@EXAMPLE.com";
    let r = app.get(path, Some(&agent)).await;
    let text = r.text().await.unwrap();
    let page: Value = serde_json::from_str(&text).unwrap();
    let list = items(&page);
    assert_eq!(list.len(), 2, "{page}");
    assert_eq!(list[0]["company"], "dd-b");
    assert_eq!(list[0]["user_id"], ben["id"]);
    assert_eq!(list[1]["company"], "dd-a");
    assert_eq!(list[1]["user_id"], amy["id"]);
    for d in list {
        assert_eq!(d["to"], "s•••@example.com");
        assert_eq!(d["channel"], "email");
        assert_eq!(d["purpose"], "enroll");
        assert!(d["status"] == "sent" || d["status"] == "delivered", "{d}");
    }
    assert!(page["next_cursor"].is_null());
    assert!(!text.to_lowercase().contains(shared), "{text}");
    // The same record a practice reads, plus where it belongs.
    let amys = ok_json(
        app.get("/v1/tenants/dd-a/users/amy/deliveries", Some(&a))
            .await,
    )
    .await;
    let mut plain = list[1].clone();
    plain.as_object_mut().unwrap().remove("company");
    plain.as_object_mut().unwrap().remove("user_id");
    assert_eq!(items(&amys)[0], plain);

    // Paged.
    let first = ok_json(app.get(&format!("{path}&limit=1"), Some(&root)).await).await;
    assert_eq!(items(&first)[0], list[0]);
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = ok_json(
        app.get(&format!("{path}&limit=1&cursor={cursor}"), Some(&root))
            .await,
    )
    .await;
    assert_eq!(items(&second)[0], list[1]);
    assert!(second["next_cursor"].is_null());

    // A destination nobody was sent to: nothing, and no practice is told of a read.
    let page = ok_json(
        app.get(
            "/v1/support/deliveries?destination=%2B12025550111",
            Some(&agent),
        )
        .await,
    )
    .await;
    assert_eq!(page["items"], json!([]));

    // dd-a and dd-b each saw the reads that answered their deliveries, the address
    // masked; dd-c none.
    for (company, token) in [("dd-a", &a), ("dd-b", &b)] {
        let reads = events(&app, company, token, "support.read").await;
        let seen: Vec<(&str, &str, &str)> = reads
            .iter()
            .rev()
            .map(|e| {
                (
                    e["actor"]["username"].as_str().unwrap(),
                    e["details"]["path"].as_str().unwrap(),
                    e["details"]["query"].as_str().unwrap(),
                )
            })
            .collect();
        // The agent's full list, then the support admin's page holding this practice's.
        let q = "destination=s•••@example.com";
        let p = "/v1/support/deliveries";
        assert_eq!(
            seen,
            [("agent.mail", p, q), (SUPPORT_USER, p, q)],
            "{company}"
        );
        assert_eq!(reads.last().unwrap()["actor"]["id"], agent_id.as_str());
    }
    assert_eq!(
        events(&app, "dd-c", &c, "support.read").await,
        Vec::<Value>::new()
    );

    // Neither an email address nor a phone number, or missing: 422 on destination.
    for bad in [
        "/v1/support/deliveries?destination=not-an-address",
        "/v1/support/deliveries?destination=jane%40",
        "/v1/support/deliveries",
    ] {
        let r = app.get(bad, Some(&agent)).await;
        let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert!(error_fields(&p).contains("destination"), "{bad}: {p}");
    }
}

async fn d3_support_reads_a_numbers_opt_out_state(db: Db) {
    let app = TestApp::spawn(db).await;
    let root = app.support_token().await;
    let (agent, _) = support_agent(&app, &root, "agent.sms").await;
    let phone = PhoneE164::parse("+12025550147").unwrap();
    app.store
        .set_phone_opted_out(&phone, true, OptOutSource::Inbound)
        .await
        .unwrap();
    let since = app
        .store
        .phone_opt_out(&phone)
        .await
        .unwrap()
        .unwrap()
        .since;

    for path in [
        "/v1/support/phone-opt-outs/+12025550147",
        "/v1/support/phone-opt-outs/%2B12025550147",
        "/v1/support/phone-opt-outs/(202)%20555-0147",
    ] {
        let v = ok_json(app.get(path, Some(&agent)).await).await;
        assert_eq!(v["phone"], "+12025550147", "{path}");
        assert_eq!(v["opted_out"], true);
        let at: chrono::DateTime<chrono::Utc> = serde_json::from_value(v["since"].clone()).unwrap();
        assert_eq!(at, since);
        assert_eq!(v["source"], "inbound");
    }
    // START: no longer opted out, since when it changed.
    app.store
        .set_phone_opted_out(&phone, false, OptOutSource::Inbound)
        .await
        .unwrap();
    let v = ok_json(
        app.get("/v1/support/phone-opt-outs/+12025550147", Some(&root))
            .await,
    )
    .await;
    assert_eq!(v["opted_out"], false);
    assert!(v["since"].is_string());
    // A number never seen is not opted out.
    let v = ok_json(
        app.get("/v1/support/phone-opt-outs/+12025550188", Some(&agent))
            .await,
    )
    .await;
    assert_eq!(
        v,
        json!({"phone": "+12025550188", "opted_out": false, "since": null, "source": null})
    );
    for bad in ["not-a-number", "12", "%2B1%20555"] {
        let r = app
            .get(&format!("/v1/support/phone-opt-outs/{bad}"), Some(&agent))
            .await;
        problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    }
}

async fn d4_support_lifts_a_suppression_and_the_operator_log_records_it_masked(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.practice("sup-clinic").await;
    let root = app.support_token().await;
    let (agent, agent_id) = support_agent(&app, &root, "agent.bounce").await;
    let email = EmailAddress::parse("Mary.Major@Bounce.example.com").unwrap();
    app.store
        .suppress_email(&email, "bounce", Some("550 5.1.1 mailbox unknown"))
        .await
        .unwrap();
    let path = "/v1/support/email-suppressions/mary.major@bounce.example.com";

    // A practice admin may not lift it.
    let r = app
        .send_json(Method::DELETE, path, Some(&admin), &json!({}))
        .await;
    problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    assert!(app.store.is_email_suppressed(&email).await.unwrap());

    // Support may (either role), whatever the address's case.
    let r = app
        .send_json(Method::DELETE, path, Some(&agent), &json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(r.text().await.unwrap().is_empty());
    assert!(!app.store.is_email_suppressed(&email).await.unwrap());
    // No longer suppressed: 404.
    let r = app
        .send_json(Method::DELETE, path, Some(&root), &json!({}))
        .await;
    problem(r, StatusCode::NOT_FOUND, "not_found").await;
    // Not an email address: 422.
    let r = app
        .send_json(
            Method::DELETE,
            "/v1/support/email-suppressions/not-an-address",
            Some(&agent),
            &json!({}),
        )
        .await;
    problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;

    // The operator's log records who lifted which address, masked; the practice's does not.
    let lifted = events(&app, "operator", &root, "email_suppression.lifted").await;
    assert_eq!(lifted.len(), 1, "{lifted:?}");
    assert_eq!(lifted[0]["actor"]["id"], agent_id.as_str());
    assert_eq!(lifted[0]["actor"]["kind"], "support");
    assert_eq!(lifted[0]["details"]["email"], "m•••@bounce.example.com");
    assert_eq!(lifted[0]["details"]["reason"], "bounce");
    assert_eq!(lifted[0]["target"]["id"], "m•••@bounce.example.com");
    assert!(!lifted[0].to_string().to_lowercase().contains("mary.major"));
    assert_eq!(
        events(&app, "sup-clinic", &admin, "email_suppression.lifted").await,
        Vec::<Value>::new()
    );
    let v = ok_json(
        app.get("/v1/tenants/operator/audit-events/verify", Some(&root))
            .await,
    )
    .await;
    assert_eq!(v["ok"], true);
}

async fn s1_vendor_support_paths_refuse_practice_users_and_wrong_methods(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.practice("nosy-clinic").await;
    let staff = app.staff("nosy-clinic", &admin, "sam").await;
    let support = app.support_token().await;
    let reads = [
        "/v1/support/users?q=sam",
        "/v1/support/deliveries?destination=sam@nosy-clinic.example.com",
        "/v1/support/phone-opt-outs/+12025550147",
    ];
    for token in [&admin, &staff] {
        for path in reads {
            let r = app.get(path, Some(token)).await;
            problem(r, StatusCode::FORBIDDEN, "forbidden").await;
        }
        let r = app
            .send_json(
                Method::DELETE,
                "/v1/support/email-suppressions/x@y.example.com",
                Some(token),
                &json!({}),
            )
            .await;
        problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    }
    for path in reads {
        let r = app.get(path, None).await;
        problem(r, StatusCode::UNAUTHORIZED, "unauthenticated").await;
        let r = app.post(path, Some(&support), &json!({})).await;
        let p = problem(r, StatusCode::METHOD_NOT_ALLOWED, "method_not_supported").await;
        assert!(p["detail"].is_string());
    }
    let r = app
        .get(
            "/v1/support/email-suppressions/x@y.example.com",
            Some(&support),
        )
        .await;
    problem(r, StatusCode::METHOD_NOT_ALLOWED, "method_not_supported").await;
    // Nobody's search of the practice was recorded (all were refused).
    assert_eq!(
        events(&app, "nosy-clinic", &admin, "support.read").await,
        Vec::<Value>::new()
    );
}

/// Signs in at `company` as `user`; answers the refusal's problem, or the session token.
async fn sign_in(app: &TestApp, company: &str, user: &str) -> Result<String, Value> {
    let r = app.login(company, user, NEW_PASSWORD).await;
    if r.status() == StatusCode::OK {
        let flow: Value = r.json().await.unwrap();
        assert_eq!(flow["status"], "authenticated", "{flow}");
        return Ok(flow["session"]["token"].as_str().unwrap().to_owned());
    }
    Err(problem(r, StatusCode::FORBIDDEN, "tenant_suspended").await)
}

async fn s3_suspension_ends_sessions_at_once_refuses_sign_in_and_reactivation_restores_it(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.practice("sus-a").await;
    let staff = app.staff("sus-a", &admin, "sam").await;
    let other = app.practice("sus-b").await;
    let root = app.support_token().await;
    // Both sessions are live and cached.
    for t in [&admin, &staff, &other] {
        assert_eq!(
            app.get("/v1/auth/session", Some(t)).await.status(),
            StatusCode::OK
        );
    }

    let t = ok_json(
        app.post("/v1/tenants/sus-a/suspend", Some(&root), &json!({}))
            .await,
    )
    .await;
    assert_eq!(t["company"], "sus-a");
    assert_eq!(t["status"], "suspended");
    // Every session of the practice ends at once; another practice's does not.
    for t in [&admin, &staff] {
        let r = app.get("/v1/auth/session", Some(t)).await;
        problem(r, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    }
    assert_eq!(
        app.get("/v1/auth/session", Some(&other)).await.status(),
        StatusCode::OK
    );
    // Revoked in the database too, not only forgotten by the cache.
    let live: i64 = app
        .raw
        .query_one_raw(sea_orm::Statement::from_string(
            app.raw.get_database_backend(),
            "SELECT COUNT(*) AS n FROM sessions s JOIN tenants t ON t.id = s.tenant_id \
             WHERE t.company = 'sus-a' AND s.revoked_at IS NULL"
                .to_owned(),
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get("", "n")
        .unwrap();
    assert_eq!(live, 0);
    // Nobody signs in; a second suspension conflicts.
    let p = sign_in(&app, "sus-a", "sam").await.unwrap_err();
    assert_eq!(p["code"], "tenant_suspended");
    sign_in(&app, "sus-a", "sus-a-admin").await.unwrap_err();
    let r = app
        .post("/v1/tenants/sus-a/suspend", Some(&root), &json!({}))
        .await;
    problem(r, StatusCode::CONFLICT, "conflict").await;
    // Support still sees the practice, as suspended.
    let seen = ok_json(app.get("/v1/tenants/sus-a", Some(&root)).await).await;
    assert_eq!(seen["status"], "suspended");

    let t = ok_json(
        app.post("/v1/tenants/sus-a/reactivate", Some(&root), &json!({}))
            .await,
    )
    .await;
    assert_eq!(t["status"], "active");
    let r = app
        .post("/v1/tenants/sus-a/reactivate", Some(&root), &json!({}))
        .await;
    problem(r, StatusCode::CONFLICT, "conflict").await;
    // Sign-in works again; the sessions ended by the suspension stay ended.
    let fresh = sign_in(&app, "sus-a", "sam").await.unwrap();
    assert_eq!(
        app.get("/v1/auth/session", Some(&fresh)).await.status(),
        StatusCode::OK
    );
    let r = app.get("/v1/auth/session", Some(&staff)).await;
    problem(r, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let admin = sign_in(&app, "sus-a", "sus-a-admin").await.unwrap();

    // Both logs record both changes, by the support admin.
    for (company, token) in [("sus-a", &admin), ("operator", &root)] {
        for (action, status, ended) in [
            ("tenant.suspended", "suspended", 2),
            ("tenant.reactivated", "active", 0),
        ] {
            let e = events(&app, company, token, action).await;
            assert_eq!(e.len(), 1, "{company} {action}: {e:?}");
            assert_eq!(e[0]["actor"]["username"], SUPPORT_USER);
            assert_eq!(e[0]["actor"]["kind"], "support");
            assert_eq!(e[0]["target"]["kind"], "tenant");
            assert_eq!(e[0]["target"]["label"], "sus-a");
            assert_eq!(e[0]["details"]["status"], status);
            assert_eq!(e[0]["details"]["sessions_ended"], ended);
        }
    }
    // The refused sign-ins are in the practice's log as well.
    let refused = events(&app, "sus-a", &admin, "signin.refused").await;
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert!(
        events(&app, "sus-b", &other, "tenant.suspended")
            .await
            .is_empty()
    );
}

async fn s3_only_a_support_admin_suspends_and_never_the_operator_tenant(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.practice("own-clinic").await;
    let root = app.support_token().await;
    let (agent, _) = support_agent(&app, &root, "agent.nope").await;
    for token in [&agent, &admin] {
        for action in ["suspend", "reactivate"] {
            let r = app
                .post(
                    &format!("/v1/tenants/own-clinic/{action}"),
                    Some(token),
                    &json!({}),
                )
                .await;
            problem(r, StatusCode::FORBIDDEN, "forbidden").await;
        }
    }
    assert_eq!(
        app.get("/v1/auth/session", Some(&admin)).await.status(),
        StatusCode::OK
    );
    for action in ["suspend", "reactivate"] {
        let r = app
            .post(
                &format!("/v1/tenants/no-such-clinic/{action}"),
                Some(&root),
                &json!({}),
            )
            .await;
        problem(r, StatusCode::NOT_FOUND, "not_found").await;
        let r = app
            .post(
                &format!("/v1/tenants/Not%20A%20Company/{action}"),
                Some(&root),
                &json!({}),
            )
            .await;
        problem(r, StatusCode::NOT_FOUND, "not_found").await;
        // The operator tenant: its own staff would be locked out.
        let r = app
            .post(
                &format!("/v1/tenants/operator/{action}"),
                Some(&root),
                &json!({}),
            )
            .await;
        problem(r, StatusCode::CONFLICT, "conflict").await;
        let r = app
            .get(&format!("/v1/tenants/own-clinic/{action}"), Some(&root))
            .await;
        problem(r, StatusCode::METHOD_NOT_ALLOWED, "method_not_supported").await;
    }
    // Nothing changed: the practice is active, the support session lives.
    let t = ok_json(app.get("/v1/tenants/own-clinic", Some(&admin)).await).await;
    assert_eq!(t["status"], "active");
    assert_eq!(
        app.get("/v1/auth/session", Some(&root)).await.status(),
        StatusCode::OK
    );
    assert!(
        events(&app, "own-clinic", &admin, "tenant.suspended")
            .await
            .is_empty()
    );
}

async fn s3_suspension_through_one_process_ends_sessions_cached_in_another(db: Db) {
    let opts = || Options {
        redis: true,
        ..Options::default()
    };
    let a = TestApp::spawn_with(db, opts()).await;
    let b = a.sibling(opts()).await;
    let admin = a.practice("far-clinic").await;
    let staff = a.staff("far-clinic", &admin, "sam").await;
    // Process b has both sessions cached.
    for t in [&admin, &staff] {
        assert_eq!(
            b.get("/v1/auth/session", Some(t)).await.status(),
            StatusCode::OK
        );
    }
    let root = a.support_token().await;
    let r = a
        .post("/v1/tenants/far-clinic/suspend", Some(&root), &json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    // Refused by b within moments, not when its cache entries expire a minute later.
    let start = Instant::now();
    for t in [&admin, &staff] {
        loop {
            let r = b.get("/v1/auth/session", Some(t)).await;
            if r.status() == StatusCode::UNAUTHORIZED {
                break;
            }
            assert_eq!(r.status(), StatusCode::OK);
            assert!(
                start.elapsed() < Duration::from_secs(2),
                "process b still accepts a suspended practice's session"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Percent-encodes a query value.
fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Two agents searching at once for terms that answer the same practices, while those
/// practices' admins write to their own logs: a search locks no practice's chain head
/// (its reads wait aside, `audit::keep_aside_in`), yet every read reaches every chain
/// exactly once, in the background when nobody reads the log, and at once when someone
/// does; each chain still verifies.
async fn s1_searches_at_once_over_the_same_practices_leave_each_read_once_in_every_chain(db: Db) {
    let app = TestApp::spawn(db).await;
    let practices = ["burst-a", "burst-b", "burst-c"];
    let mut admins = Vec::new();
    for company in practices {
        let admin = app.practice(company).await;
        create_user(&app, company, &admin, "nurse.kim", "staff").await;
        create_user(&app, company, &admin, "nurse.lee", "staff").await;
        admins.push(admin);
    }
    let root = app.support_token().await;
    let (agent, _) = support_agent(&app, &root, "agent.burst").await;

    // 24 searches, 12 per agent, beside 6 users created in the same practices.
    const SEARCHES: usize = 24;
    let app_ref = &app;
    let searches = (0..SEARCHES).map(|i| {
        let (token, q) = if i % 2 == 0 {
            (&agent, "nurse")
        } else {
            (&root, "nurse.")
        };
        async move {
            let page = ok_json(
                app_ref
                    .get(&format!("/v1/support/users?q={q}"), Some(token))
                    .await,
            )
            .await;
            assert_eq!(items(&page).len(), 6, "{page}");
        }
    });
    let writes = practices.iter().zip(&admins).flat_map(|(company, admin)| {
        (0..2).map(move |i| async move {
            create_user(app_ref, company, admin, &format!("clerk{i}"), "staff").await;
        })
    });
    let (_, _) = tokio::join!(join_all(searches), join_all(writes));

    // Nobody has read a log yet: the background chainer empties the inbox by itself.
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.store.audit_events_waiting().await.unwrap() > 0 {
        assert!(Instant::now() < deadline, "reads still wait to be chained");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for (company, admin) in practices.iter().zip(&admins) {
        let reads = events(&app, company, admin, "support.read").await;
        let ids: std::collections::BTreeSet<&str> =
            reads.iter().map(|e| e["id"].as_str().unwrap()).collect();
        assert_eq!((reads.len(), ids.len()), (SEARCHES, SEARCHES), "{company}");
        let created = events(&app, company, admin, "user.created").await;
        // The admin, the two nurses and the two clerks.
        assert_eq!(created.len(), 5, "{company}");
        let v = ok_json(
            app.get(
                &format!("/v1/tenants/{company}/audit-events/verify"),
                Some(admin),
            )
            .await,
        )
        .await;
        assert_eq!(v["ok"], true, "{company}: {v}");
    }

    // On PostgreSQL, a search answers while another transaction holds a practice's chain
    // head, as an append does (see `AuditLog::append_in`): the search locks none. (On
    // SQLite one writer at a time is the rule.)
    if app.db == Db::Postgres {
        use sea_orm::TransactionTrait;
        let holder = app.raw.begin().await.unwrap();
        let held = holder
            .execute_unprepared(
                "UPDATE tenants SET audit_head_seq = audit_head_seq WHERE company = 'burst-b'",
            )
            .await
            .unwrap();
        assert_eq!(held.rows_affected(), 1);
        let search = app.get("/v1/support/users?q=nurse.lee", Some(&agent));
        let answered = tokio::time::timeout(Duration::from_secs(5), search)
            .await
            .expect("a search waited for a practice's chain head");
        assert_eq!(items(&ok_json(answered).await).len(), 3);
        holder.rollback().await.unwrap();
    }

    // Read right after a search, the log already holds it, newest first.
    let page = ok_json(app.get("/v1/support/users?q=nurse.kim", Some(&agent)).await).await;
    assert_eq!(items(&page).len(), 3, "{page}");
    for (company, admin) in practices.iter().zip(&admins) {
        let log = ok_json(
            app.get(
                &format!("/v1/tenants/{company}/audit-events?limit=1"),
                Some(admin),
            )
            .await,
        )
        .await;
        let newest = &items(&log)[0];
        assert_eq!(newest["action"], "support.read", "{company}: {log}");
        assert_eq!(
            newest["details"]["query"], "q=nurse.kim",
            "{company}: {log}"
        );
    }
    assert_eq!(app.store.audit_events_waiting().await.unwrap(), 0);
}
