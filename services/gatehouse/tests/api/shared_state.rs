//! Several API processes behind one load balancer agree through Redis: an address over
//! its failed-sign-in limit is refused by all of them, and a session ended through one
//! is refused by the others at once, not when their cache entry expires a minute later.

use crate::helpers::{Db, NEW_PASSWORD, Options, TestApp, problem};
use gatehouse_testkit::on_both_databases;
use reqwest::StatusCode;
use serde_json::json;
use std::time::{Duration, Instant};

/// Two processes of one deployment, sharing Redis, each limiting failures to 3 a minute.
async fn two_processes(db: Db) -> (TestApp, TestApp) {
    let opts = || Options {
        login_rate_per_ip_per_minute: 3,
        redis: true,
        ..Options::default()
    };
    let a = TestApp::spawn_with(db, opts()).await;
    let b = a.sibling(opts()).await;
    (a, b)
}

async fn login_from(app: &TestApp, ip: &str, password: &str) -> reqwest::Response {
    app.client
        .post(app.url("/v1/auth/login"))
        .header("x-forwarded-for", ip)
        .json(&json!({"company": "shared-clinic", "username": "frontdesk", "password": password}))
        .send()
        .await
        .unwrap()
}

/// Polls `GET /v1/auth/session` at `app` until it answers 401; answers how long it took.
async fn refused_within(app: &TestApp, token: &str, bound: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let r = app.get("/v1/auth/session", Some(token)).await;
        if r.status() == StatusCode::UNAUTHORIZED {
            return start.elapsed();
        }
        assert_eq!(r.status(), StatusCode::OK);
        assert!(
            start.elapsed() < bound,
            "the other process still accepts the ended session after {bound:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn p4_failures_counted_at_one_process_refuse_the_address_at_every_process(db: Db) {
    let (a, b) = two_processes(db).await;
    let admin = a.practice("shared-clinic").await;
    a.staff("shared-clinic", &admin, "frontdesk").await;

    let attacker = "198.51.100.23";
    for _ in 0..3 {
        let r = login_from(&a, attacker, "Wrong-Password-123!").await;
        problem(r, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    }
    // Process b saw none of those failures, yet refuses the address, before any check
    // of the (right) password.
    let r = login_from(&b, attacker, NEW_PASSWORD).await;
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    problem(r, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;

    // Another address is unaffected at either process.
    let r = login_from(&b, "198.51.100.24", NEW_PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);

    // Failures spread over both processes add up.
    let spread = "198.51.100.25";
    for app in [&a, &b, &a] {
        let r = login_from(app, spread, "Wrong-Password-123!").await;
        problem(r, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    }
    let r = login_from(&b, spread, NEW_PASSWORD).await;
    problem(r, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
}

async fn s_a_session_ended_at_one_process_is_refused_by_another_at_once(db: Db) {
    let (a, b) = two_processes(db).await;
    let admin = a.practice("shared-clinic").await;
    a.staff("shared-clinic", &admin, "frontdesk").await;

    // Logout at a: b had the session cached.
    let token = a.token("shared-clinic", "frontdesk", NEW_PASSWORD).await;
    let r = b.get("/v1/auth/session", Some(&token)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = a.post("/v1/auth/logout", Some(&token), &json!({})).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    refused_within(&b, &token, Duration::from_secs(2)).await;

    // A password change at a ends the user's other sessions, cached at b too.
    let other = a.token("shared-clinic", "frontdesk", NEW_PASSWORD).await;
    let current = a.token("shared-clinic", "frontdesk", NEW_PASSWORD).await;
    let r = b.get("/v1/auth/session", Some(&other)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = a
        .post(
            "/v1/me/password",
            Some(&current),
            &json!({"current_password": NEW_PASSWORD, "new_password": "Copper-Orchard-Lantern-58!"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    refused_within(&b, &other, Duration::from_secs(2)).await;
}

on_both_databases!(
    p4_failures_counted_at_one_process_refuse_the_address_at_every_process,
    s_a_session_ended_at_one_process_is_refused_by_another_at_once,
);
