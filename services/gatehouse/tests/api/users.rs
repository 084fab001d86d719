//! A practice's users: create, look up, list, filter, page (T3, P2, P3).

// A test fails by panicking: unwrap and expect are its assertions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::helpers::{Db, NEW_PASSWORD, TestApp, error_fields, ok_json, problem};
use gatehouse_testkit::on_both_databases;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeSet;

on_both_databases!(
    t3_create_user_answers_201_with_the_full_user_shape_and_is_found_by_id_and_username,
    t3_username_differing_only_in_case_is_a_conflict_within_one_practice,
    t3_every_invalid_field_is_named_at_once_and_nothing_is_created,
    p2_password_breaking_the_practice_policy_answers_password_policy,
    t3_phone_numbers_are_normalised_to_e164,
    t3_list_filters_by_active_locked_and_q_over_every_text_field,
    t3_list_pages_by_username_with_cursor_without_overlap_or_gap,
    p3_created_user_must_change_the_temporary_password_at_first_sign_in,
    p3_require_password_change_marks_every_user_and_each_changes_at_the_next_sign_in,
);

const TEMP: &str = "Temporary-Pass-1234!";

fn users_path(company: &str) -> String {
    format!("/v1/tenants/{company}/users")
}

async fn create(app: &TestApp, admin: &str, company: &str, body: &Value) -> Response {
    app.post(&users_path(company), Some(admin), body).await
}

/// Creates a user and returns the answer, insisting on 201.
async fn created(app: &TestApp, admin: &str, company: &str, body: &Value) -> Value {
    let r = create(app, admin, company, body).await;
    let status = r.status();
    let text = r.text().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{body} -> {text}");
    serde_json::from_str(&text).unwrap()
}

fn staff_body(username: &str) -> Value {
    json!({"username": username, "first_name": "Sam", "last_name": "Staff",
           "role": "staff", "password": TEMP})
}

fn usernames(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap_or_else(|| panic!("items: {list}"))
        .iter()
        .map(|u| u["username"].as_str().unwrap().to_owned())
        .collect()
}

async fn list(app: &TestApp, admin: &str, company: &str, query: &str) -> Value {
    ok_json(
        app.get(&format!("{}?{query}", users_path(company)), Some(admin))
            .await,
    )
    .await
}

async fn t3_create_user_answers_201_with_the_full_user_shape_and_is_found_by_id_and_username(
    db: Db,
) {
    let app = TestApp::spawn(db).await;
    let admin = app.practice("shape-clinic").await;
    let before = app.now();
    let u = created(
        &app,
        &admin,
        "shape-clinic",
        &json!({"username": "JDoe", "first_name": "Jane", "last_name": "Doe",
                "email": "jane.doe@example.com", "phone": "+1 202 456 1414",
                "role": "staff", "password": TEMP}),
    )
    .await;

    // Every field of api.md's User is present.
    for key in [
        "id",
        "company",
        "username",
        "first_name",
        "last_name",
        "email",
        "email_verified",
        "phone",
        "phone_verified",
        "role",
        "active",
        "locked",
        "must_change_password",
        "groups",
        "mfa",
        "created_at",
        "last_login_at",
    ] {
        assert!(u.get(key).is_some(), "missing {key}: {u}");
    }
    let id = uuid::Uuid::parse_str(u["id"].as_str().unwrap()).expect("id is a UUID");
    assert_eq!(u["company"], "shape-clinic");
    assert_eq!(
        u["username"], "JDoe",
        "the username keeps the case it was given in"
    );
    assert_eq!(u["first_name"], "Jane");
    assert_eq!(u["last_name"], "Doe");
    assert_eq!(u["email"], "jane.doe@example.com");
    assert_eq!(u["email_verified"], false);
    assert_eq!(u["phone"], "+12024561414");
    assert_eq!(u["phone_verified"], false);
    assert_eq!(u["role"], "staff");
    assert_eq!(u["active"], true);
    assert_eq!(u["locked"], false);
    assert_eq!(u["must_change_password"], true, "the password is temporary");
    assert_eq!(u["groups"], json!([]));
    assert_eq!(u["mfa"]["method"], "none");
    assert_eq!(u["mfa"]["enrollment"], "next_login");
    assert_eq!(u["mfa"]["totp_enrolled"], false);
    assert_eq!(u["mfa"]["recovery_codes_remaining"], 0);
    assert!(u["mfa"]["pending"].is_boolean(), "{u}");
    assert!(u["last_login_at"].is_null());
    let created_at = chrono::DateTime::parse_from_rfc3339(u["created_at"].as_str().unwrap())
        .expect("created_at is RFC 3339");
    assert!(
        created_at >= before - chrono::Duration::seconds(5),
        "created_at {created_at} is about now ({before})"
    );

    // The same user, by UUID and by username in any case.
    for path in [id.to_string(), "JDoe".into(), "jdoe".into(), "JDOE".into()] {
        let got = ok_json(
            app.get(
                &format!("/v1/tenants/shape-clinic/users/{path}"),
                Some(&admin),
            )
            .await,
        )
        .await;
        assert_eq!(got, u, "GET .../users/{path}");
    }
    // Unknown users are 404, by name and by id.
    let r = app
        .get("/v1/tenants/shape-clinic/users/nobody", Some(&admin))
        .await;
    problem(r, StatusCode::NOT_FOUND, "not_found").await;
    let r = app
        .get(
            &format!("/v1/tenants/shape-clinic/users/{}", uuid::Uuid::new_v4()),
            Some(&admin),
        )
        .await;
    problem(r, StatusCode::NOT_FOUND, "not_found").await;

    // The creation is audited with the new user as target.
    let events = ok_json(
        app.get(
            "/v1/tenants/shape-clinic/audit-events?action=user.created",
            Some(&admin),
        )
        .await,
    )
    .await;
    let mine: Vec<&Value> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["target"]["id"] == id.to_string())
        .collect();
    assert_eq!(mine.len(), 1, "{events}");
    assert_eq!(mine[0]["target"]["label"], "JDoe");
    assert_eq!(mine[0]["actor"]["username"], "shape-clinic-admin");
    // The temporary password never appears in the log.
    assert!(!events.to_string().contains(TEMP));
}

async fn t3_username_differing_only_in_case_is_a_conflict_within_one_practice(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.practice("dup-clinic").await;
    let first = created(&app, &admin, "dup-clinic", &staff_body("mwhite")).await;

    let mut again = staff_body("MWhite");
    again["first_name"] = json!("Other");
    let r = create(&app, &admin, "dup-clinic", &again).await;
    problem(r, StatusCode::CONFLICT, "conflict").await;

    // Still exactly one such user, and it is the first one, unchanged.
    let l = list(&app, &admin, "dup-clinic", "q=mwhite").await;
    assert_eq!(usernames(&l), ["mwhite"]);
    assert_eq!(l["items"][0]["id"], first["id"]);
    assert_eq!(l["items"][0]["first_name"], "Sam");

    // Usernames are unique per practice only: another practice may use it.
    let other = app.practice("dup-other").await;
    let u = created(&app, &other, "dup-other", &staff_body("MWhite")).await;
    assert_ne!(u["id"], first["id"]);
    assert_eq!(u["company"], "dup-other");
}

async fn t3_every_invalid_field_is_named_at_once_and_nothing_is_created(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.practice("bad-clinic").await;
    let before = usernames(&list(&app, &admin, "bad-clinic", "").await);

    let r = create(
        &app,
        &admin,
        "bad-clinic",
        &json!({"username": "valid.name", "first_name": "   ", "last_name": "",
                "email": "not-an-email", "phone": "12", "role": "superuser",
                "password": TEMP}),
    )
    .await;
    let body = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let fields = error_fields(&body);
    for f in ["first_name", "last_name", "email", "phone", "role"] {
        assert!(fields.contains(f), "{f} not reported: {body}");
    }
    assert!(!fields.contains("username"), "{body}");
    for e in body["errors"].as_array().unwrap() {
        assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{e}");
    }

    // Each alone is refused too, naming just that field.
    let cases = [
        ("email", json!("jane@@example")),
        ("email", json!("jane@localhost")),
        ("phone", json!("call me maybe")),
        ("phone", json!("+1 555")),
        ("first_name", json!("")),
        ("last_name", json!(" \t ")),
        ("role", json!("owner")),
        ("username", json!("has space")),
    ];
    for (field, value) in cases {
        let mut b = staff_body("single.bad");
        b[field] = value.clone();
        let r = create(&app, &admin, "bad-clinic", &b).await;
        let body = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert_eq!(
            error_fields(&body),
            BTreeSet::from([field.to_owned()]),
            "{field}={value}: {body}"
        );
    }

    // A support role belongs to the operator tenant only.
    for role in ["support_admin", "support_agent"] {
        let mut b = staff_body("wannabe.support");
        b["role"] = json!(role);
        let r = create(&app, &admin, "bad-clinic", &b).await;
        let body = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert_eq!(
            error_fields(&body),
            BTreeSet::from(["role".to_owned()]),
            "{body}"
        );
    }

    // Nothing was created by any refused request.
    assert_eq!(
        usernames(&list(&app, &admin, "bad-clinic", "").await),
        before
    );
    let r = app
        .get(
            "/v1/tenants/bad-clinic/audit-events?action=user.created",
            Some(&admin),
        )
        .await;
    let events = ok_json(r).await;
    assert_eq!(
        events["items"].as_array().unwrap().len(),
        1,
        "only the admin: {events}"
    );
}

async fn p2_password_breaking_the_practice_policy_answers_password_policy(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.practice("pw-clinic").await;
    let before = usernames(&list(&app, &admin, "pw-clinic", "").await);

    let mut b = staff_body("weak.pw");
    b["password"] = json!("short");
    let r = create(&app, &admin, "pw-clinic", &b).await;
    let body = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "password_policy").await;
    let rules: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["rule"].as_str())
        .collect();
    assert_eq!(
        rules,
        [
            "min_length",
            "require_upper",
            "require_digit",
            "require_special"
        ]
    );
    assert!(
        body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["field"] == "password"),
        "{body}"
    );

    // A password holding the username breaks the policy as well.
    let mut b = staff_body("harbor");
    b["password"] = json!("My-Harbor-Pass-123!");
    let r = create(&app, &admin, "pw-clinic", &b).await;
    let body = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "password_policy").await;
    let rules: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["rule"].as_str())
        .collect();
    assert_eq!(rules, ["contains_username"]);

    assert_eq!(
        usernames(&list(&app, &admin, "pw-clinic", "").await),
        before
    );
}

async fn t3_phone_numbers_are_normalised_to_e164(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.practice("phone-clinic").await;
    let cases = [
        ("p1", "(202) 456-1414", "+12024561414"),
        ("p2", "202.456.1111", "+12024561111"),
        ("p3", " +1 202-456-1212 ", "+12024561212"),
        ("p4", "1 (212) 736 3100", "+12127363100"),
    ];
    for (username, input, e164) in cases {
        let mut b = staff_body(username);
        b["phone"] = json!(input);
        let u = created(&app, &admin, "phone-clinic", &b).await;
        assert_eq!(u["phone"], e164, "{input}");
        // Stored so, not only shown so.
        let got = ok_json(
            app.get(
                &format!("/v1/tenants/phone-clinic/users/{username}"),
                Some(&admin),
            )
            .await,
        )
        .await;
        assert_eq!(got["phone"], e164);
    }
}

/// A user of the list fixture, as the test knows it.
struct Fixture {
    username: &'static str,
    first: &'static str,
    last: &'static str,
    email: Option<&'static str>,
    phone: Option<&'static str>,
}

impl Fixture {
    /// Whether a case-insensitive search for `q` should find this user.
    fn matches(&self, q: &str) -> bool {
        let q = q.to_lowercase();
        [
            Some(self.username),
            Some(self.first),
            Some(self.last),
            self.email,
            self.phone,
        ]
        .into_iter()
        .flatten()
        .any(|v| v.to_lowercase().contains(&q))
    }
}

async fn t3_list_filters_by_active_locked_and_q_over_every_text_field(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.practice("lst-clinic").await;
    let fixtures = [
        Fixture {
            username: "lst-clinic-admin",
            first: "Ada",
            last: "Admin",
            email: Some("admin@lst-clinic.example.com"),
            phone: None,
        },
        Fixture {
            username: "mq.one",
            first: "Marisol",
            last: "Byrne",
            email: Some("mb@north.example.com"),
            phone: None,
        },
        Fixture {
            username: "tv.two",
            first: "Tobias",
            last: "Quintero",
            email: None,
            phone: Some("+12024561414"),
        },
        Fixture {
            username: "ek.three",
            first: "Elena",
            last: "Kovac",
            email: Some("e.kovac@Harbor-Post.example.org"),
            phone: None,
        },
        Fixture {
            username: "Zeta.Four",
            first: "Rui",
            last: "Sato",
            email: Some("rui@north.example.com"),
            phone: Some("+12024561111"),
        },
    ];
    for f in &fixtures[1..] {
        created(
            &app,
            &admin,
            "lst-clinic",
            &json!({"username": f.username, "first_name": f.first, "last_name": f.last,
                    "email": f.email, "phone": f.phone, "role": "staff", "password": TEMP}),
        )
        .await;
    }
    let sorted = |mut v: Vec<&Fixture>| {
        v.sort_by_key(|f| f.username.to_lowercase());
        v.into_iter()
            .map(|f| f.username.to_owned())
            .collect::<Vec<_>>()
    };

    // Lock tv.two through the API (one wrong password at threshold 1) and deactivate
    // ek.three in the database (deactivation has no route yet).
    let r = app
        .patch(
            "/v1/tenants/lst-clinic/settings",
            Some(&admin),
            &json!({"lockout_threshold": 1}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = app
        .login("lst-clinic", "tv.two", "Wrong-Password-123!")
        .await;
    problem(r, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    app.exec("UPDATE users SET active = FALSE WHERE username_lower = 'ek.three'")
        .await;
    let locked = ["tv.two"];
    let inactive = ["ek.three"];

    let all = list(&app, &admin, "lst-clinic", "").await;
    assert_eq!(usernames(&all), sorted(fixtures.iter().collect()));
    assert!(all["next_cursor"].is_null());
    for u in all["items"].as_array().unwrap() {
        let name = u["username"].as_str().unwrap();
        assert_eq!(u["locked"], locked.contains(&name), "{u}");
        assert_eq!(u["active"], !inactive.contains(&name), "{u}");
    }

    let pick =
        |pred: &dyn Fn(&Fixture) -> bool| sorted(fixtures.iter().filter(|f| pred(f)).collect());
    let is_locked = |f: &Fixture| locked.contains(&f.username);
    let is_active = |f: &Fixture| !inactive.contains(&f.username);

    for (query, expected) in [
        ("locked=true", pick(&|f| is_locked(f))),
        ("locked=false", pick(&|f| !is_locked(f))),
        ("active=false", pick(&|f| !is_active(f))),
        ("active=true", pick(&|f| is_active(f))),
        (
            "active=true&locked=false",
            pick(&|f| is_active(f) && !is_locked(f)),
        ),
        (
            "active=false&locked=true",
            pick(&|f| !is_active(f) && is_locked(f)),
        ),
    ] {
        let l = list(&app, &admin, "lst-clinic", query).await;
        assert_eq!(usernames(&l), expected, "?{query}");
    }

    // q looks at username, first and last name, email and phone, ignoring case.
    for q in [
        "MARISOL",        // first name
        "quintero",       // last name
        "harbor-post",    // email (stored with a lower-cased domain)
        "NORTH.example",  // two emails
        "4561414",        // phone
        "zeta",           // username, stored in mixed case
        "Admin",          // the admin's names and username
        "nobody-matches", // nothing
    ] {
        let expected = pick(&|f| f.matches(q));
        let l = list(
            &app,
            &admin,
            "lst-clinic",
            &format!("q={}", q.replace('+', "%2B")),
        )
        .await;
        assert_eq!(usernames(&l), expected, "?q={q}");
    }
    assert!(
        fixtures
            .iter()
            .filter(|f| f.matches("north.example"))
            .count()
            >= 2
    );
    // q combines with the flags.
    let l = list(&app, &admin, "lst-clinic", "q=o&active=true&locked=false").await;
    assert_eq!(
        usernames(&l),
        pick(&|f| f.matches("o") && is_active(f) && !is_locked(f))
    );
    // A bad flag is a validation error naming it.
    let r = app
        .get("/v1/tenants/lst-clinic/users?active=maybe", Some(&admin))
        .await;
    let body = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(error_fields(&body), BTreeSet::from(["active".to_owned()]));
}

async fn t3_list_pages_by_username_with_cursor_without_overlap_or_gap(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.practice("page-clinic").await;
    let names = ["zoe", "Bob", "amy", "Mia", "carl", "Dana", "eve"];
    for n in names {
        created(&app, &admin, "page-clinic", &staff_body(n)).await;
    }
    let mut expected: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    expected.push("page-clinic-admin".into());
    expected.sort_by_key(|n| n.to_lowercase());

    for limit in [1usize, 3, 4, 7, 8] {
        let mut seen: Vec<String> = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let mut q = format!("limit={limit}");
            if let Some(c) = &cursor {
                q.push_str(&format!("&cursor={}", urlencode(c)));
            }
            let page = list(&app, &admin, "page-clinic", &q).await;
            let got = usernames(&page);
            pages += 1;
            assert!(got.len() <= limit, "limit {limit}: {got:?}");
            for n in &got {
                assert!(!seen.contains(n), "limit {limit}: {n} on two pages");
            }
            seen.extend(got.iter().cloned());
            match page["next_cursor"].as_str() {
                Some(c) => {
                    assert_eq!(got.len(), limit, "only full pages have a next page");
                    cursor = Some(c.to_owned());
                }
                None => {
                    assert!(page["next_cursor"].is_null(), "{page}");
                    break;
                }
            }
            assert!(pages <= expected.len() + 1, "paging does not end");
        }
        assert_eq!(
            seen, expected,
            "limit {limit}: ordered by username, all covered"
        );
        assert_eq!(pages, expected.len().div_ceil(limit), "limit {limit}");
    }

    // One page holding everything has no next page.
    let all = list(
        &app,
        &admin,
        "page-clinic",
        &format!("limit={}", expected.len()),
    )
    .await;
    assert_eq!(usernames(&all), expected);
    assert!(all["next_cursor"].is_null());
}

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

async fn p3_created_user_must_change_the_temporary_password_at_first_sign_in(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.practice("first-clinic").await;
    let u = created(&app, &admin, "first-clinic", &staff_body("newbie")).await;
    assert_eq!(u["must_change_password"], true);

    let r = app.login("first-clinic", "newbie", TEMP).await;
    let flow = ok_json(r).await;
    assert_eq!(flow["status"], "password_change_required", "{flow}");
    assert!(flow.get("session").is_none(), "{flow}");
    let id = flow["flow_id"].as_str().unwrap();
    let r = app
        .post(
            &format!("/v1/auth/flows/{id}/password"),
            None,
            &json!({"new_password": NEW_PASSWORD}),
        )
        .await;
    let flow = ok_json(r).await;
    assert_eq!(flow["status"], "authenticated", "{flow}");
    let token = flow["session"]["token"].as_str().unwrap().to_owned();

    let me = ok_json(app.get("/v1/me", Some(&token)).await).await;
    assert_eq!(me["id"], u["id"]);
    assert_eq!(me["must_change_password"], false);

    let after = ok_json(
        app.get("/v1/tenants/first-clinic/users/newbie", Some(&admin))
            .await,
    )
    .await;
    assert_eq!(after["must_change_password"], false);
    assert!(after["last_login_at"].is_string(), "{after}");

    // The temporary password is spent; the new one signs straight in.
    let r = app.login("first-clinic", "newbie", TEMP).await;
    problem(r, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    app.token("first-clinic", "newbie", NEW_PASSWORD).await;

    let events = ok_json(
        app.get(
            &format!(
                "/v1/tenants/first-clinic/audit-events?action=password.changed&target_id={}",
                u["id"].as_str().unwrap()
            ),
            Some(&admin),
        )
        .await,
    )
    .await;
    let mine: Vec<&Value> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["target"]["id"] == u["id"])
        .collect();
    assert_eq!(mine.len(), 1, "{events}");
}

async fn p3_require_password_change_marks_every_user_and_each_changes_at_the_next_sign_in(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.practice("moving-clinic").await;
    let staff = app.staff("moving-clinic", &admin, "ria").await;
    app.staff("moving-clinic", &admin, "tom").await;
    // Another practice is untouched.
    let other = app.practice("staying-clinic").await;
    app.staff("staying-clinic", &other, "zoe").await;

    let path = "/v1/tenants/moving-clinic/users/require-password-change";
    let r = app.post(path, Some(&staff), &json!({})).await;
    problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    let r = ok_json(app.post(path, Some(&admin), &json!({})).await).await;
    assert_eq!(r, json!({"count": 3}), "the admin and both staff");
    // Already marked: a second call marks nobody new.
    let r = ok_json(app.post(path, Some(&admin), &json!({})).await).await;
    assert_eq!(r["count"], 0);

    let listed = ok_json(app.get(&users_path("moving-clinic"), Some(&admin)).await).await;
    let items = listed["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert!(
        items.iter().all(|u| u["must_change_password"] == true),
        "{listed}"
    );
    let others = ok_json(app.get(&users_path("staying-clinic"), Some(&other)).await).await;
    assert!(
        others["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u["must_change_password"] == false),
        "{others}"
    );
    // Sessions go on; the next sign-in asks for a new password first.
    let r = app.get("/v1/auth/session", Some(&staff)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let flow = ok_json(app.login("moving-clinic", "tom", NEW_PASSWORD).await).await;
    assert_eq!(flow["status"], "password_change_required", "{flow}");

    // One event says who did it and how many.
    let events = ok_json(
        app.get(
            "/v1/tenants/moving-clinic/audit-events?action=user.updated",
            Some(&admin),
        )
        .await,
    )
    .await;
    let bulk: Vec<&Value> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["details"]["must_change_password"] == true)
        .collect();
    assert_eq!(bulk.len(), 2, "{events}");
    assert_eq!(
        bulk.iter()
            .map(|e| e["details"]["users"].as_u64().unwrap())
            .sum::<u64>(),
        3
    );
    assert_eq!(bulk[0]["target"]["kind"], "tenant");
}
