//! Login hours, read in the tenant's time zone, with an injected clock (P5).

// A test fails by panicking: unwrap and expect are its assertions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::helpers::{Db, NEW_PASSWORD, Options, TestApp, error_fields, ok_json, problem};
use chrono::{DateTime, Datelike, TimeZone, Timelike, Utc};
use gatehouse_domain::clock::FixedClock;
use gatehouse_testkit::on_both_databases;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::Arc;

on_both_databases!(
    p5_login_hours_are_read_in_the_tenant_time_zone_and_refuse_only_the_right_password,
    p5_login_hours_round_trip_and_invalid_windows_are_refused,
);

const COMPANY: &str = "hours-clinic";
const WORKER: &str = "shift.worker";
const LA: chrono_tz::Tz = chrono_tz::America::Los_Angeles;

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).single().unwrap()
}

fn hours_path(user: &str) -> String {
    format!("/v1/tenants/{COMPANY}/users/{user}/login-hours")
}

/// A spawned app whose clock shows `at`, with a practice and a staff user; answers the
/// admin's and the staff user's tokens.
async fn setup(db: Db, at: DateTime<Utc>) -> (TestApp, Arc<FixedClock>, String, String) {
    let clock = Arc::new(FixedClock::new(at));
    let app = TestApp::spawn_with(
        db,
        Options {
            clock: Some(clock.clone()),
            ..Options::default()
        },
    )
    .await;
    let admin = app.practice(COMPANY).await;
    let staff = app.staff(COMPANY, &admin, WORKER).await;
    (app, clock, admin, staff)
}

/// The outcome of a sign-in with the worker's right password: `Ok(())` when a session
/// was granted, otherwise the problem code.
async fn worker_signs_in(app: &TestApp) -> Result<(), String> {
    let r = app.login(COMPANY, WORKER, NEW_PASSWORD).await;
    if r.status() == StatusCode::OK {
        let flow: Value = r.json().await.unwrap();
        assert_eq!(flow["status"], "authenticated", "{flow}");
        assert!(flow["session"]["token"].is_string());
        return Ok(());
    }
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], status.as_u16());
    Err(body["code"].as_str().unwrap().to_owned())
}

async fn p5_login_hours_are_read_in_the_tenant_time_zone_and_refuse_only_the_right_password(
    db: Db,
) {
    // Monday 16:00 UTC in January: 11:00 in New York (the default zone), 08:00 in Los Angeles.
    let start = utc(2027, 1, 4, 16, 0);
    assert_eq!(start.weekday(), chrono::Weekday::Mon);
    let (app, clock, admin, _staff) = setup(db, start).await;

    let monday = json!([{"weekday": "monday", "start": "09:00", "end": "17:00"}]);
    let put = ok_json(app.put(&hours_path(WORKER), Some(&admin), &monday).await).await;
    assert_eq!(put["items"], monday);
    // 11:00 in New York: inside the window.
    assert_eq!(worker_signs_in(&app).await, Ok(()));

    let r = app
        .patch(
            &format!("/v1/tenants/{COMPANY}/settings"),
            Some(&admin),
            &json!({"timezone": "America/Los_Angeles"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let got = ok_json(app.get(&hours_path(WORKER), Some(&admin)).await).await;
    assert_eq!(
        got,
        json!({"timezone": "America/Los_Angeles", "items": monday})
    );

    // Same instant, now 08:00 in the tenant's zone (though inside 09-17 in UTC): refused,
    // but only after the right password; a wrong one stays invalid_credentials.
    let local = app.now().with_timezone(&LA);
    assert_eq!((local.weekday(), local.hour()), (chrono::Weekday::Mon, 8));
    assert!((9..17).contains(&app.now().hour()));
    let r = app.login(COMPANY, WORKER, NEW_PASSWORD).await;
    problem(r, StatusCode::FORBIDDEN, "outside_login_hours").await;
    let r = app.login(COMPANY, WORKER, "Wrong-Password-123!").await;
    problem(r, StatusCode::UNAUTHORIZED, "invalid_credentials").await;

    // The refusal is audited with its reason, against the user.
    let events = ok_json(
        app.get(
            &format!("/v1/tenants/{COMPANY}/audit-events?action=signin.refused"),
            Some(&admin),
        )
        .await,
    )
    .await;
    let items = events["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{events}");
    assert_eq!(items[0]["details"]["reason"], "outside_login_hours");
    assert_eq!(items[0]["target"]["label"], WORKER);
    assert!(!events.to_string().contains(NEW_PASSWORD));

    // Monday 18:30 UTC is 10:30 in Los Angeles: allowed, although outside 09-17 in UTC.
    clock.set(utc(2027, 1, 4, 18, 30));
    assert!(!(9..17).contains(&app.now().hour()));
    assert_eq!(app.now().with_timezone(&LA).hour(), 10);
    assert_eq!(worker_signs_in(&app).await, Ok(()));

    // The end is exclusive, and Monday in Los Angeles runs into Tuesday in UTC.
    clock.set(utc(2027, 1, 5, 0, 59)); // Tuesday 00:59 UTC = Monday 16:59 LA
    assert_eq!(app.now().weekday(), chrono::Weekday::Tue);
    assert_eq!(worker_signs_in(&app).await, Ok(()));
    clock.set(utc(2027, 1, 5, 1, 0)); // Monday 17:00 LA
    assert_eq!(
        worker_signs_in(&app).await,
        Err("outside_login_hours".into())
    );
    // Tuesday 10:30 in Los Angeles: no window on Tuesday.
    clock.set(utc(2027, 1, 5, 18, 30));
    assert_eq!(
        worker_signs_in(&app).await,
        Err("outside_login_hours".into())
    );

    // The admin's session went idle meanwhile; sign in again (admins have no hours here).
    let admin = app
        .token(COMPANY, &format!("{COMPANY}-admin"), NEW_PASSWORD)
        .await;
    let events = ok_json(
        app.get(
            &format!("/v1/tenants/{COMPANY}/audit-events?action=signin.refused"),
            Some(&admin),
        )
        .await,
    )
    .await;
    let reasons: Vec<&Value> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["details"]["reason"])
        .collect();
    assert_eq!(reasons.len(), 3, "{events}");
    assert!(
        reasons.iter().all(|r| *r == "outside_login_hours"),
        "{events}"
    );

    // An empty list lifts the restriction.
    let put = ok_json(app.put(&hours_path(WORKER), Some(&admin), &json!([])).await).await;
    assert_eq!(put, json!({"timezone": "America/Los_Angeles", "items": []}));
    assert_eq!(worker_signs_in(&app).await, Ok(()));
    let got = ok_json(app.get(&hours_path(WORKER), Some(&admin)).await).await;
    assert_eq!(got["items"], json!([]));
}

async fn p5_login_hours_round_trip_and_invalid_windows_are_refused(db: Db) {
    let (app, _clock, admin, staff) = setup(db, utc(2027, 3, 1, 12, 0)).await;

    let got = ok_json(app.get(&hours_path(WORKER), Some(&admin)).await).await;
    assert_eq!(got, json!({"timezone": "America/New_York", "items": []}));

    // Several windows, given out of order and in mixed case; a night shift and 24:00.
    let windows = json!([
        {"weekday": "friday", "start": "22:00", "end": "06:00"},
        {"weekday": "Monday", "start": "13:00", "end": "18:00"},
        {"weekday": "monday", "start": "07:30", "end": "12:00"},
        {"weekday": "sunday", "start": "00:00", "end": "24:00"},
    ]);
    let put = ok_json(app.put(&hours_path(WORKER), Some(&admin), &windows).await).await;
    let stored = ok_json(app.get(&hours_path(WORKER), Some(&admin)).await).await;
    assert_eq!(put, stored, "PUT answers what GET then shows");
    assert_eq!(stored["timezone"], "America/New_York");
    let mut expected: Vec<(String, String, String)> = windows
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                w["weekday"].as_str().unwrap().to_lowercase(),
                w["start"].as_str().unwrap().to_owned(),
                w["end"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut shown: Vec<(String, String, String)> = stored["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                w["weekday"].as_str().unwrap().to_owned(),
                w["start"].as_str().unwrap().to_owned(),
                w["end"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    expected.sort();
    shown.sort();
    assert_eq!(shown, expected);
    // By username or by id, the same.
    let user = ok_json(
        app.get(
            &format!("/v1/tenants/{COMPANY}/users/{WORKER}"),
            Some(&admin),
        )
        .await,
    )
    .await;
    let by_id = ok_json(
        app.get(&hours_path(user["id"].as_str().unwrap()), Some(&admin))
            .await,
    )
    .await;
    assert_eq!(by_id, stored);
    // The change is audited against the user.
    let events = ok_json(
        app.get(
            &format!(
                "/v1/tenants/{COMPANY}/audit-events?action=user.updated&target_id={}",
                user["id"].as_str().unwrap()
            ),
            Some(&admin),
        )
        .await,
    )
    .await;
    assert!(!events["items"].as_array().unwrap().is_empty(), "{events}");

    // Invalid windows: each one named, nothing stored.
    let w = |day: &str, start: &str, end: &str| json!({"weekday": day, "start": start, "end": end});
    for (body, fields) in [
        (json!([w("funday", "09:00", "17:00")]), vec!["[0].weekday"]),
        (json!([w("monday", "9:00", "17:00")]), vec!["[0].start"]),
        (json!([w("monday", "24:00", "17:00")]), vec!["[0].start"]),
        (json!([w("monday", "09:00", "25:00")]), vec!["[0].end"]),
        (json!([w("monday", "09:00", "17:60")]), vec!["[0].end"]),
        (json!([w("monday", "10:00", "10:00")]), vec!["[0].end"]),
        (
            json!([
                w("monday", "09:00", "17:00"),
                w("tuesday", "nine", "17:00"),
                w("friday", "08:00", "8pm")
            ]),
            vec!["[1].start", "[2].end"],
        ),
    ] {
        let r = app.put(&hours_path(WORKER), Some(&admin), &body).await;
        let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        let expected: BTreeSet<String> = fields.iter().map(|f| f.to_string()).collect();
        assert_eq!(error_fields(&p), expected, "{body}");
    }
    // Too many windows, and bodies of the wrong shape.
    let many: Vec<Value> = (0..57).map(|_| w("monday", "09:00", "10:00")).collect();
    let r = app
        .put(&hours_path(WORKER), Some(&admin), &json!(many))
        .await;
    problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    for bad in [
        json!({"weekday": "monday", "start": "09:00", "end": "17:00"}),
        json!([{"weekday": "monday", "start": "09:00"}]),
        json!([{"weekday": "monday", "start": 9, "end": 17}]),
    ] {
        let r = app.put(&hours_path(WORKER), Some(&admin), &bad).await;
        problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    }
    assert_eq!(
        ok_json(app.get(&hours_path(WORKER), Some(&admin)).await).await,
        stored,
        "refused PUTs change nothing"
    );

    // Unknown users are 404; staff cannot read or set hours, even their own.
    let r = app
        .put(&hours_path("nobody"), Some(&admin), &json!([]))
        .await;
    problem(r, StatusCode::NOT_FOUND, "not_found").await;
    let r = app.put(&hours_path(WORKER), Some(&staff), &json!([])).await;
    problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    let r = app.get(&hours_path(WORKER), Some(&staff)).await;
    problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    assert_eq!(
        ok_json(app.get(&hours_path(WORKER), Some(&admin)).await).await,
        stored
    );
}
