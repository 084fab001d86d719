//! The hash-chained audit log (A1): verification, tamper detection, concurrency, filters.

use crate::helpers::{Db, NEW_PASSWORD, TestApp, ok_json, problem};
use chrono::{DateTime, FixedOffset, Utc};
use futures_util::future::join_all;
use gatehouse_testkit::on_both_databases;
use reqwest::StatusCode;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashSet};

on_both_databases!(
    a1_chain_verifies_and_counts_exactly_the_listed_events,
    a1_altered_details_or_action_is_reported_at_that_seq,
    a1_deleted_event_breaks_the_chain_at_the_next_seq,
    a1_removing_the_newest_events_is_detected,
    a1_unknown_username_is_not_written_to_the_log,
    a1_concurrent_sign_ins_do_not_fork_the_chain,
    a1_filters_select_exactly_the_matching_events,
    a1_cursor_pagination_walks_newest_first_without_gaps_or_overlap,
    a1_no_event_holds_a_password_session_token_or_hash,
);

const TEMP_PASSWORD: &str = "Temporary-Pass-1234!";
const WRONG_PASSWORD: &str = "Wrong-Password-123!";
const UNKNOWN_USER_PASSWORD: &str = "Guessing-Game-Pass-41!";
const BOB_PASSWORD: &str = "Quiet-Meadow-River-58!";
const BOB_NEXT_PASSWORD: &str = "Amber-Falcon-Summit-27?";
const BOB_WRONG_CURRENT: &str = "Not-The-Current-One-66!";

/// Percent-encodes a query value.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The pages of `GET .../audit-events?{query}` at `limit` per page, following `next_cursor`.
async fn pages(
    app: &TestApp,
    company: &str,
    token: &str,
    query: &str,
    limit: usize,
) -> Vec<Vec<Value>> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/v1/tenants/{company}/audit-events?limit={limit}");
        if !query.is_empty() {
            path.push('&');
            path.push_str(query);
        }
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={}", enc(c)));
        }
        let page = ok_json(app.get(&path, Some(token)).await).await;
        let items = page["items"].as_array().unwrap().clone();
        assert!(items.len() <= limit, "{path}: {} items", items.len());
        out.push(items);
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
        assert!(out.len() <= 1000, "pagination does not end");
    }
    out
}

/// Every event matching `query`, newest first, in one page.
async fn events(app: &TestApp, company: &str, token: &str, query: &str) -> Vec<Value> {
    let p = pages(app, company, token, query, 500).await;
    assert_eq!(p.len(), 1, "fits one page");
    p.into_iter().flatten().collect()
}

async fn verify(app: &TestApp, company: &str, token: &str) -> Value {
    ok_json(
        app.get(
            &format!("/v1/tenants/{company}/audit-events/verify"),
            Some(token),
        )
        .await,
    )
    .await
}

/// The fields of a verify answer this test is about (the contract allows more fields).
fn verdict(v: &Value) -> Value {
    let mut out = json!({"ok": v["ok"], "events": v["events"]});
    if !v["first_bad_seq"].is_null() {
        out["first_bad_seq"] = v["first_bad_seq"].clone();
    }
    out
}

fn seq(e: &Value) -> i64 {
    e["seq"].as_i64().unwrap()
}

fn ids(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["id"].as_str().unwrap()).collect()
}

fn tenant_of(company: &str) -> String {
    format!("(SELECT id FROM tenants WHERE company = '{company}')")
}

/// A tenant with a bit of history. Returns the admin's token and id, bob's id and token.
struct Busy {
    admin: String,
    admin_id: String,
    bob_id: String,
    tokens: Vec<String>,
}

async fn busy_tenant(app: &TestApp, company: &str) -> Busy {
    let admin = app.practice(company).await;
    let admin_id = ok_json(app.get("/v1/me", Some(&admin)).await).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .post(
            &format!("/v1/tenants/{company}/users"),
            Some(&admin),
            &json!({"username": "bob", "first_name": "Bob", "last_name": "Builder",
                    "role": "staff", "password": TEMP_PASSWORD}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let bob: Value = r.json().await.unwrap();
    let bob_id = bob["id"].as_str().unwrap().to_owned();
    let r = app
        .patch(
            &format!("/v1/tenants/{company}/settings"),
            Some(&admin),
            &json!({"lockout_threshold": 7, "code_ttl_seconds": 120}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = app.login(company, "bob", WRONG_PASSWORD).await;
    problem(r, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let r = app.login(company, "nobody", UNKNOWN_USER_PASSWORD).await;
    problem(r, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let bob_token = app
        .finish_password_change(company, "bob", TEMP_PASSWORD, BOB_PASSWORD)
        .await;
    let r = app
        .put(
            &format!("/v1/tenants/{company}/users/bob/login-hours"),
            Some(&admin),
            &json!([]),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = app
        .post(
            "/v1/me/password",
            Some(&bob_token),
            &json!({"current_password": BOB_WRONG_CURRENT, "new_password": BOB_NEXT_PASSWORD}),
        )
        .await;
    assert!(r.status().is_client_error(), "{}", r.status());
    let r = app
        .post(
            "/v1/me/password",
            Some(&bob_token),
            &json!({"current_password": BOB_PASSWORD, "new_password": BOB_NEXT_PASSWORD}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let bob_again = app.token(company, "bob", BOB_NEXT_PASSWORD).await;
    Busy {
        admin,
        admin_id,
        bob_id,
        tokens: vec![bob_token, bob_again],
    }
}

async fn a1_chain_verifies_and_counts_exactly_the_listed_events(db: Db) {
    let app = TestApp::spawn(db).await;
    let busy = busy_tenant(&app, "chain-clinic").await;
    let all = events(&app, "chain-clinic", &busy.admin, "").await;
    let n = all.len();
    assert!(n >= 10, "a few actions were logged: {n}");
    let v = verify(&app, "chain-clinic", &busy.admin).await;
    assert_eq!(verdict(&v), json!({"ok": true, "events": n}));

    // Newest first, seqs n..1, each event linked to the one before it.
    let seqs: Vec<i64> = all.iter().map(seq).collect();
    assert_eq!(seqs, (1..=n as i64).rev().collect::<Vec<_>>());
    for w in all.windows(2) {
        assert_eq!(
            w[0]["prev_hash"],
            w[1]["hash"],
            "{} -> {}",
            seq(&w[1]),
            seq(&w[0])
        );
    }
    assert_eq!(all[n - 1]["prev_hash"], "0".repeat(64));
    let hashes: HashSet<&str> = all.iter().map(|e| e["hash"].as_str().unwrap()).collect();
    assert_eq!(hashes.len(), n);

    // The actions that happened are all there.
    let actions: BTreeSet<&str> = all.iter().filter_map(|e| e["action"].as_str()).collect();
    for a in [
        "tenant.created",
        "user.created",
        "tenant.settings_changed",
        "signin.failed",
        "signin.succeeded",
        "password.changed",
    ] {
        assert!(actions.contains(a), "{a} missing from {actions:?}");
    }

    // Each tenant has its own chain: the operator's verifies on its own.
    let support = app.support_token().await;
    let op = events(&app, "operator", &support, "").await;
    let v = verify(&app, "operator", &support).await;
    assert_eq!(verdict(&v), json!({"ok": true, "events": op.len()}));
}

async fn a1_altered_details_or_action_is_reported_at_that_seq(db: Db) {
    let app = TestApp::spawn(db).await;
    let busy = busy_tenant(&app, "tamper-clinic").await;
    let other = app.practice("bystander-clinic").await;
    let all = events(&app, "tamper-clinic", &busy.admin, "").await;
    let n = all.len();
    let settings_event = all
        .iter()
        .find(|e| e["action"] == "tenant.settings_changed")
        .unwrap();
    let k = seq(settings_event);
    let failed = all
        .iter()
        .filter(|e| e["action"] == "signin.failed")
        .map(seq)
        .max()
        .unwrap();
    assert!(k < failed && failed < n as i64, "{k} {failed} {n}");
    let tenant = tenant_of("tamper-clinic");

    // Rewrite one event's details: verification fails exactly there.
    app.exec(&format!(
        "UPDATE audit_events SET details = '{{\"changed\":[\"nothing\"]}}' WHERE tenant_id = {tenant} AND seq = {k}"
    ))
    .await;
    let listed = events(
        &app,
        "tamper-clinic",
        &busy.admin,
        "action=tenant.settings_changed",
    )
    .await;
    assert_eq!(
        listed[0]["details"],
        json!({"changed": ["nothing"]}),
        "the row was altered"
    );
    let v = verify(&app, "tamper-clinic", &busy.admin).await;
    assert_eq!(
        verdict(&v),
        json!({"ok": false, "events": n, "first_bad_seq": k})
    );

    // Restoring the original content restores the chain (it is the content that is checked).
    let original = settings_event["details"].to_string().replace('\'', "''");
    app.exec(&format!(
        "UPDATE audit_events SET details = '{original}' WHERE tenant_id = {tenant} AND seq = {k}"
    ))
    .await;
    let v = verify(&app, "tamper-clinic", &busy.admin).await;
    assert_eq!(verdict(&v), json!({"ok": true, "events": n}));

    // Rewrite a later event's action: a failed sign-in passed off as a success.
    app.exec(&format!(
        "UPDATE audit_events SET action = 'signin.succeeded' WHERE tenant_id = {tenant} AND seq = {failed}"
    ))
    .await;
    let v = verify(&app, "tamper-clinic", &busy.admin).await;
    assert_eq!(
        verdict(&v),
        json!({"ok": false, "events": n, "first_bad_seq": failed})
    );

    // With two altered rows, the first one is reported.
    app.exec(&format!(
        "UPDATE audit_events SET details = '{{}}' WHERE tenant_id = {tenant} AND seq = {k}"
    ))
    .await;
    let v = verify(&app, "tamper-clinic", &busy.admin).await;
    assert_eq!(
        verdict(&v),
        json!({"ok": false, "events": n, "first_bad_seq": k})
    );

    // Support sees the same verdict; another tenant's chain is unaffected.
    let support = app.support_token().await;
    let v = verify(&app, "tamper-clinic", &support).await;
    assert_eq!(v["ok"], false);
    assert_eq!(v["first_bad_seq"], k);
    let v = verify(&app, "bystander-clinic", &other).await;
    assert_eq!(v["ok"], true);
}

async fn a1_deleted_event_breaks_the_chain_at_the_next_seq(db: Db) {
    let app = TestApp::spawn(db).await;
    let busy = busy_tenant(&app, "delete-clinic").await;
    let all = events(&app, "delete-clinic", &busy.admin, "").await;
    let n = all.len() as i64;
    // Remove the record of the failed sign-in for bob.
    let victim = all
        .iter()
        .find(|e| e["action"] == "signin.failed" && e["target"]["id"] == busy.bob_id.as_str())
        .unwrap();
    let k = seq(victim);
    assert!(k > 1 && k < n);
    app.exec(&format!(
        "DELETE FROM audit_events WHERE tenant_id = {} AND seq = {k}",
        tenant_of("delete-clinic")
    ))
    .await;
    let after = events(&app, "delete-clinic", &busy.admin, "").await;
    assert_eq!(after.len() as i64, n - 1);
    assert!(after.iter().all(|e| e["id"] != victim["id"]));
    let v = verify(&app, "delete-clinic", &busy.admin).await;
    assert_eq!(
        verdict(&v),
        json!({"ok": false, "events": n - 1, "first_bad_seq": k + 1})
    );

    // Removing the very first event breaks the chain at its start.
    app.exec(&format!(
        "DELETE FROM audit_events WHERE tenant_id = {} AND seq = 1",
        tenant_of("delete-clinic")
    ))
    .await;
    let v = verify(&app, "delete-clinic", &busy.admin).await;
    assert_eq!(
        verdict(&v),
        json!({"ok": false, "events": n - 2, "first_bad_seq": 2})
    );
}

async fn a1_removing_the_newest_events_is_detected(db: Db) {
    let app = TestApp::spawn(db).await;
    let busy = busy_tenant(&app, "tail-clinic").await;
    let all = events(&app, "tail-clinic", &busy.admin, "").await;
    let n = all.len() as i64;
    let v = verify(&app, "tail-clinic", &busy.admin).await;
    assert_eq!(verdict(&v), json!({"ok": true, "events": n}));
    // Cover one's tracks by removing the two newest events: the chain that remains is
    // internally consistent, but no longer ends where the tenant's head says it does.
    app.exec(&format!(
        "DELETE FROM audit_events WHERE tenant_id = {} AND seq > {}",
        tenant_of("tail-clinic"),
        n - 2
    ))
    .await;
    let v = verify(&app, "tail-clinic", &busy.admin).await;
    assert_eq!(
        verdict(&v),
        json!({"ok": false, "events": n - 2, "first_bad_seq": n - 1})
    );
}

async fn a1_unknown_username_is_not_written_to_the_log(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.practice("typo-clinic").await;
    // Staff sometimes type their password into the user ID box.
    let r = app
        .login("typo-clinic", "Summer-Garden-2026", "whatever")
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let failed = events(&app, "typo-clinic", &admin, "action=signin.failed").await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["details"]["reason"], "unknown_user");
    let all = events(&app, "typo-clinic", &admin, "").await;
    assert!(
        !serde_json::to_string(&all)
            .unwrap()
            .contains("Summer-Garden-2026")
    );
}

async fn a1_concurrent_sign_ins_do_not_fork_the_chain(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.practice("rush-clinic").await;
    let r = app
        .patch(
            "/v1/tenants/rush-clinic/settings",
            Some(&admin),
            &json!({"lockout_threshold": 100}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let users = ["ann", "ben", "cat", "rush-clinic-admin"];
    for u in &users[..3] {
        app.staff("rush-clinic", &admin, u).await;
    }
    let before = verify(&app, "rush-clinic", &admin).await;
    assert_eq!(before["ok"], true);
    let before_n = before["events"].as_i64().unwrap();

    // 20 sign-ins at once: each user gets both right and wrong passwords.
    let attempts = (0..20).map(|i| {
        let user = users[(i / 2) % users.len()];
        let password = if i % 2 == 0 {
            NEW_PASSWORD
        } else {
            WRONG_PASSWORD
        };
        app.login("rush-clinic", user, password)
    });
    let results = join_all(attempts).await;
    let mut flow_ids = BTreeSet::new();
    let mut failures = 0;
    for (i, r) in results.into_iter().enumerate() {
        if i % 2 == 0 {
            let flow = ok_json(r).await;
            assert_eq!(flow["status"], "authenticated", "{flow}");
            flow_ids.insert(flow["flow_id"].as_str().unwrap().to_owned());
        } else {
            problem(r, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
            failures += 1;
        }
    }
    assert_eq!((flow_ids.len(), failures), (10, 10));

    // One event per attempt, one unbroken chain.
    let n = before_n + 20;
    let v = verify(&app, "rush-clinic", &admin).await;
    assert_eq!(verdict(&v), json!({"ok": true, "events": n}));
    let listed: Vec<Value> = pages(&app, "rush-clinic", &admin, "", 7)
        .await
        .into_iter()
        .flatten()
        .collect();
    let seqs: Vec<i64> = listed.iter().map(seq).collect();
    assert_eq!(
        seqs,
        (1..=n).rev().collect::<Vec<_>>(),
        "exactly 1..=N, newest first"
    );
    for w in listed.windows(2) {
        assert_eq!(w[0]["prev_hash"], w[1]["hash"]);
    }
    let late: Vec<&Value> = listed.iter().filter(|e| seq(e) > before_n).collect();
    let succeeded: BTreeSet<String> = late
        .iter()
        .filter(|e| e["action"] == "signin.succeeded")
        .map(|e| e["details"]["flow_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(succeeded, flow_ids, "one signin.succeeded per session");
    let failed = late
        .iter()
        .filter(|e| e["action"] == "signin.failed")
        .count();
    assert_eq!(failed, 10);
}

async fn a1_filters_select_exactly_the_matching_events(db: Db) {
    let app = TestApp::spawn(db).await;
    let busy = busy_tenant(&app, "filter-clinic").await;
    let all = events(&app, "filter-clinic", &busy.admin, "").await;
    let pick =
        |f: &dyn Fn(&Value) -> bool| all.iter().filter(|e| f(e)).cloned().collect::<Vec<Value>>();

    for action in [
        "user.created",
        "signin.failed",
        "signin.succeeded",
        "tenant.settings_changed",
    ] {
        let got = events(
            &app,
            "filter-clinic",
            &busy.admin,
            &format!("action={action}"),
        )
        .await;
        let want = pick(&|e| e["action"] == action);
        assert!(!want.is_empty(), "{action}");
        assert_eq!(ids(&got), ids(&want), "action={action}");
    }
    let got = events(&app, "filter-clinic", &busy.admin, "action=no.such_action").await;
    assert!(got.is_empty());

    let by_admin = events(
        &app,
        "filter-clinic",
        &busy.admin,
        &format!("actor_id={}", busy.admin_id),
    )
    .await;
    let want = pick(&|e| e["actor"]["id"] == busy.admin_id.as_str());
    assert!(!want.is_empty() && want.len() < all.len());
    assert_eq!(ids(&by_admin), ids(&want));
    assert!(
        by_admin
            .iter()
            .any(|e| e["action"] == "tenant.settings_changed")
    );

    let by_bob = events(
        &app,
        "filter-clinic",
        &busy.admin,
        &format!("actor_id={}", busy.bob_id),
    )
    .await;
    let want = pick(&|e| e["actor"]["id"] == busy.bob_id.as_str());
    assert!(!want.is_empty());
    assert_eq!(ids(&by_bob), ids(&want));

    let on_bob = events(
        &app,
        "filter-clinic",
        &busy.admin,
        &format!("target_id={}", busy.bob_id),
    )
    .await;
    let want = pick(&|e| e["target"]["id"] == busy.bob_id.as_str());
    assert!(want.iter().any(|e| e["action"] == "user.created"));
    assert!(want.iter().any(|e| e["action"] == "signin.failed"));
    assert_eq!(ids(&on_bob), ids(&want));

    let both = events(
        &app,
        "filter-clinic",
        &busy.admin,
        &format!("action=signin.failed&target_id={}", busy.bob_id),
    )
    .await;
    let want =
        pick(&|e| e["action"] == "signin.failed" && e["target"]["id"] == busy.bob_id.as_str());
    // The wrong password at sign-in, and the wrong current password of a change (P4).
    assert_eq!(want.len(), 2);
    assert_eq!(ids(&both), ids(&want));

    // since is inclusive, until exclusive; any RFC 3339 offset names the same instant.
    let at = |e: &Value| e["at"].as_str().unwrap().parse::<DateTime<Utc>>().unwrap();
    let mut asc = all.clone();
    asc.reverse();
    let lo = at(&asc[asc.len() / 3]);
    let hi = at(&asc[2 * asc.len() / 3]);
    assert!(lo < hi);
    let plus_two = FixedOffset::east_opt(2 * 3600).unwrap();
    let cases: Vec<(String, Vec<Value>)> = vec![
        (
            format!("since={}", enc(&lo.to_rfc3339())),
            pick(&|e| at(e) >= lo),
        ),
        (
            format!("until={}", enc(&lo.to_rfc3339())),
            pick(&|e| at(e) < lo),
        ),
        (
            format!(
                "since={}&until={}",
                enc(&lo.to_rfc3339()),
                enc(&hi.to_rfc3339())
            ),
            pick(&|e| at(e) >= lo && at(e) < hi),
        ),
        (
            format!(
                "since={}&until={}",
                enc(&lo.with_timezone(&plus_two).to_rfc3339()),
                enc(&hi.with_timezone(&plus_two).to_rfc3339())
            ),
            pick(&|e| at(e) >= lo && at(e) < hi),
        ),
        (
            format!("since={}&action=signin.succeeded", enc(&lo.to_rfc3339())),
            pick(&|e| at(e) >= lo && e["action"] == "signin.succeeded"),
        ),
    ];
    for (query, want) in cases {
        assert!(!want.is_empty(), "{query}");
        let got = events(&app, "filter-clinic", &busy.admin, &query).await;
        assert_eq!(ids(&got), ids(&want), "{query}");
    }
    let future = (Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    let got = events(
        &app,
        "filter-clinic",
        &busy.admin,
        &format!("since={}", enc(&future)),
    )
    .await;
    assert!(got.is_empty());
}

async fn a1_cursor_pagination_walks_newest_first_without_gaps_or_overlap(db: Db) {
    let app = TestApp::spawn(db).await;
    let busy = busy_tenant(&app, "page-clinic").await;
    let all = events(&app, "page-clinic", &busy.admin, "").await;
    assert!(all.len() > 7);

    for limit in [1, 3, all.len() - 1, all.len()] {
        let p = pages(&app, "page-clinic", &busy.admin, "", limit).await;
        assert_eq!(p.len(), all.len().div_ceil(limit), "limit={limit}");
        assert!(p[..p.len() - 1].iter().all(|page| page.len() == limit));
        let flat: Vec<Value> = p.into_iter().flatten().collect();
        assert_eq!(ids(&flat), ids(&all), "limit={limit}");
    }
    // The default page size is 50: one page holds all of these.
    let page = ok_json(
        app.get("/v1/tenants/page-clinic/audit-events", Some(&busy.admin))
            .await,
    )
    .await;
    assert_eq!(ids(page["items"].as_array().unwrap()), ids(&all));
    assert!(page["next_cursor"].is_null());

    // Filters and cursors combine.
    let want: Vec<Value> = all
        .iter()
        .filter(|e| e["action"] == "signin.succeeded")
        .cloned()
        .collect();
    assert!(want.len() >= 3);
    let p = pages(
        &app,
        "page-clinic",
        &busy.admin,
        "action=signin.succeeded",
        1,
    )
    .await;
    assert_eq!(p.len(), want.len());
    let flat: Vec<Value> = p.into_iter().flatten().collect();
    assert_eq!(ids(&flat), ids(&want));

    // A cursor taken before new events keeps walking the older ones only.
    let first = ok_json(
        app.get(
            "/v1/tenants/page-clinic/audit-events?limit=2",
            Some(&busy.admin),
        )
        .await,
    )
    .await;
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    let r = app.login("page-clinic", "bob", WRONG_PASSWORD).await;
    problem(r, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let rest = ok_json(
        app.get(
            &format!(
                "/v1/tenants/page-clinic/audit-events?limit=500&cursor={}",
                enc(&cursor)
            ),
            Some(&busy.admin),
        )
        .await,
    )
    .await;
    assert_eq!(ids(rest["items"].as_array().unwrap()), ids(&all[2..]));
}

async fn a1_no_event_holds_a_password_session_token_or_hash(db: Db) {
    let app = TestApp::spawn(db).await;
    let busy = busy_tenant(&app, "secret-clinic").await;
    let support = app.support_token().await;
    let mut logs = events(&app, "secret-clinic", &busy.admin, "").await;
    logs.extend(events(&app, "operator", &support, "").await);
    let text = serde_json::to_string(&logs).unwrap();
    assert!(text.contains("signin.failed") && text.contains("password.changed"));

    let mut secrets: Vec<String> = [
        TEMP_PASSWORD,
        NEW_PASSWORD,
        WRONG_PASSWORD,
        UNKNOWN_USER_PASSWORD,
        BOB_PASSWORD,
        BOB_NEXT_PASSWORD,
        BOB_WRONG_CURRENT,
        crate::helpers::SUPPORT_PASSWORD,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    secrets.push(busy.admin.clone());
    secrets.push(support.clone());
    secrets.extend(busy.tokens.iter().cloned());
    // What the database keeps instead of them must not leak either.
    for sql in [
        "SELECT token_hash AS h FROM sessions",
        "SELECT password_hash AS h FROM users",
    ] {
        let rows = app
            .raw
            .query_all_raw(sea_orm::Statement::from_string(
                app.raw.get_database_backend(),
                sql,
            ))
            .await
            .unwrap();
        assert!(!rows.is_empty(), "{sql}");
        for row in rows {
            secrets.push(row.try_get::<String>("", "h").unwrap());
        }
    }
    for s in &secrets {
        assert!(s.len() >= 12);
        assert!(
            !text.contains(s.as_str()),
            "an audit event contains a secret"
        );
    }
    assert!(!text.contains("$argon2"), "no password hash in any event");
}
