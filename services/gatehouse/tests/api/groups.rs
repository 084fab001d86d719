//! A practice's groups: create, rename, delete, members, "assign all users" (T5).

// A test fails by panicking: unwrap and expect are its assertions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::helpers::{Db, NEW_PASSWORD, TestApp, error_fields, ok_json, problem};
use gatehouse_testkit::on_both_databases;
use reqwest::{Method, Response, StatusCode};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

on_both_databases!(
    t5_groups_are_created_listed_by_name_with_member_counts_renamed_and_deleted,
    t5_group_list_pages_by_name_with_cursor_without_overlap_or_gap,
    t5_invalid_names_answer_422_and_taken_names_409_in_any_case,
    t5_members_are_added_and_removed_by_id_or_username_idempotently,
    t5_assign_all_adds_only_active_users_and_counts_only_new_memberships,
    t5_bulk_add_takes_exactly_one_form_and_refuses_unknown_users_adding_nothing,
    t5_deleting_a_group_takes_it_off_its_users_and_their_sessions,
    t5_every_group_change_is_audited_with_the_group_as_target_and_no_secrets,
    t5_staff_gets_403_unknown_groups_404_and_wrong_methods_405,
    t1_another_practice_cannot_see_change_or_join_groups_or_users_across_tenants,
    s1_support_neither_reads_nor_changes_a_practice_s_groups,
);

const TEMP: &str = "Temporary-Pass-1234!";

fn groups_path(company: &str) -> String {
    format!("/v1/tenants/{company}/groups")
}

/// Creates a group, insisting on 201; answers the Group.
async fn create_group(app: &TestApp, admin: &str, company: &str, name: &str) -> Value {
    let r = app
        .post(&groups_path(company), Some(admin), &json!({"name": name}))
        .await;
    let status = r.status();
    let text = r.text().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{name} -> {text}");
    serde_json::from_str(&text).unwrap()
}

/// Creates a staff user (temporary password); answers the User.
async fn create_user(app: &TestApp, admin: &str, company: &str, username: &str) -> Value {
    let r = app
        .post(
            &format!("/v1/tenants/{company}/users"),
            Some(admin),
            &json!({"username": username, "first_name": "Sam", "last_name": "Staff",
                    "role": "staff", "password": TEMP}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    r.json().await.unwrap()
}

async fn list_groups(app: &TestApp, token: &str, company: &str, query: &str) -> Value {
    ok_json(
        app.get(&format!("{}?{query}", groups_path(company)), Some(token))
            .await,
    )
    .await
}

/// (name, members) of every group, in the list's order.
async fn group_summary(app: &TestApp, token: &str, company: &str) -> Vec<(String, u64)> {
    let page = list_groups(app, token, company, "limit=500").await;
    assert!(page["next_cursor"].is_null(), "{page}");
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["name"].as_str().unwrap().to_owned(),
                g["members"].as_u64().unwrap(),
            )
        })
        .collect()
}

async fn member_names(app: &TestApp, token: &str, company: &str, group: &str) -> Vec<String> {
    let page = ok_json(
        app.get(
            &format!("{}/{group}/members?limit=500", groups_path(company)),
            Some(token),
        )
        .await,
    )
    .await;
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap().to_owned())
        .collect()
}

/// Names of the groups a user belongs to, as GET user shows them.
async fn groups_of(app: &TestApp, admin: &str, company: &str, user: &str) -> Vec<String> {
    let u = ok_json(
        app.get(&format!("/v1/tenants/{company}/users/{user}"), Some(admin))
            .await,
    )
    .await;
    u["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap().to_owned())
        .collect()
}

async fn add_members(
    app: &TestApp,
    admin: &str,
    company: &str,
    group: &str,
    body: &Value,
) -> Response {
    app.post(
        &format!("{}/{group}/members", groups_path(company)),
        Some(admin),
        body,
    )
    .await
}

async fn added(app: &TestApp, admin: &str, company: &str, group: &str, body: &Value) -> u64 {
    let v = ok_json(add_members(app, admin, company, group, body).await).await;
    v["added"].as_u64().unwrap_or_else(|| panic!("{v}"))
}

async fn member_call(
    app: &TestApp,
    method: Method,
    admin: &str,
    company: &str,
    group: &str,
    user: &str,
) -> Response {
    app.client
        .request(
            method,
            app.url(&format!("{}/{group}/members/{user}", groups_path(company))),
        )
        .bearer_auth(admin)
        .send()
        .await
        .unwrap()
}

/// Audit events of one action, newest first.
async fn events(app: &TestApp, token: &str, company: &str, action: &str) -> Vec<Value> {
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

/// A support agent in the operator tenant; answers its token.
async fn support_agent(app: &TestApp, username: &str) -> String {
    let root = app.support_token().await;
    crate::operators::approved_operator(app, &root, username, "support_agent")
        .await
        .0
}

async fn t5_groups_are_created_listed_by_name_with_member_counts_renamed_and_deleted(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.practice("grp-clinic").await;
    let before = app.now();
    let nurses = create_group(&app, &admin, "grp-clinic", "  Nurses ").await;
    assert_eq!(nurses["name"], "Nurses", "trimmed: {nurses}");
    assert_eq!(nurses["members"], 0);
    uuid::Uuid::parse_str(nurses["id"].as_str().unwrap()).unwrap();
    let created_at: chrono::DateTime<chrono::Utc> =
        nurses["created_at"].as_str().unwrap().parse().unwrap();
    assert!(created_at >= before - chrono::Duration::seconds(1));
    let desk = create_group(&app, &admin, "grp-clinic", "front desk").await;
    create_group(&app, &admin, "grp-clinic", "Billing").await;
    let nurses_id = nurses["id"].as_str().unwrap();
    let desk_id = desk["id"].as_str().unwrap();

    for u in ["ann", "ben"] {
        create_user(&app, &admin, "grp-clinic", u).await;
        let r = member_call(&app, Method::PUT, &admin, "grp-clinic", nurses_id, u).await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
    }
    let r = member_call(&app, Method::PUT, &admin, "grp-clinic", desk_id, "ann").await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);

    // Ordered by name regardless of case, each with its member count, in the list shape.
    let page = list_groups(&app, &admin, "grp-clinic", "").await;
    assert!(page["next_cursor"].is_null());
    let first = page["items"][0].as_object().unwrap();
    let mut keys: Vec<&str> = first.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["created_at", "id", "members", "name"]);
    assert_eq!(
        group_summary(&app, &admin, "grp-clinic").await,
        [
            ("Billing".to_owned(), 0),
            ("front desk".to_owned(), 1),
            ("Nurses".to_owned(), 2)
        ]
    );

    // Rename: the group keeps its id, members and creation time; users see the new name.
    let renamed = ok_json(
        app.patch(
            &format!("{}/{desk_id}", groups_path("grp-clinic")),
            Some(&admin),
            &json!({"name": "Reception"}),
        )
        .await,
    )
    .await;
    assert_eq!(renamed["id"], desk["id"]);
    assert_eq!(renamed["name"], "Reception");
    assert_eq!(renamed["members"], 1);
    assert_eq!(renamed["created_at"], desk["created_at"]);
    assert_eq!(
        groups_of(&app, &admin, "grp-clinic", "ann").await,
        ["Nurses", "Reception"]
    );
    // A change of case only is a rename too.
    let recased = ok_json(
        app.patch(
            &format!("{}/{nurses_id}", groups_path("grp-clinic")),
            Some(&admin),
            &json!({"name": "NURSES"}),
        )
        .await,
    )
    .await;
    assert_eq!(recased["name"], "NURSES");
    assert_eq!(recased["members"], 2);

    // Delete: 204 with no body, gone from the list, and a second delete is 404.
    let path = format!("{}/{desk_id}", groups_path("grp-clinic"));
    let r = app
        .client
        .delete(app.url(&path))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(r.text().await.unwrap().is_empty());
    assert_eq!(
        group_summary(&app, &admin, "grp-clinic").await,
        [("Billing".to_owned(), 0), ("NURSES".to_owned(), 2)]
    );
    let r = app
        .client
        .delete(app.url(&path))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::NOT_FOUND, "not_found").await;
    let r = app
        .patch(&path, Some(&admin), &json!({"name": "Back"}))
        .await;
    problem(r, StatusCode::NOT_FOUND, "not_found").await;
    // Its name is free again.
    let again = create_group(&app, &admin, "grp-clinic", "Reception").await;
    assert_ne!(again["id"], desk["id"]);
    assert_eq!(again["members"], 0);
}

async fn t5_group_list_pages_by_name_with_cursor_without_overlap_or_gap(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.practice("page-clinic").await;
    let names = ["delta", "Alpha", "echo", "Charlie", "bravo"];
    for n in names {
        create_group(&app, &admin, "page-clinic", n).await;
    }
    let mut seen = Vec::new();
    let mut query = "limit=2".to_owned();
    let mut pages = 0;
    loop {
        let page = list_groups(&app, &admin, "page-clinic", &query).await;
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|g| g["name"].as_str().unwrap().to_owned()));
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(c) => query = format!("limit=2&cursor={}", urlencode(c)),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ["Alpha", "bravo", "Charlie", "delta", "echo"]);

    // A cursor that no list could have produced is a validation error, not a 500.
    let r = app
        .get(
            &format!("{}?cursor=%00bad", groups_path("page-clinic")),
            Some(&admin),
        )
        .await;
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(error_fields(&p), ["cursor".to_owned()].into());
    // A limit out of range is clamped, as on every list.
    let all = list_groups(&app, &admin, "page-clinic", "limit=100000").await;
    assert_eq!(all["items"].as_array().unwrap().len(), 5);
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn t5_invalid_names_answer_422_and_taken_names_409_in_any_case(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.practice("name-clinic").await;
    let nurses = create_group(&app, &admin, "name-clinic", "Nurses").await;
    let other = create_group(&app, &admin, "name-clinic", "Doctors").await;
    let nurses_path = format!(
        "{}/{}",
        groups_path("name-clinic"),
        nurses["id"].as_str().unwrap()
    );
    // 100 characters (multi-byte) is the most a name may have.
    let longest = "é".repeat(100);
    create_group(&app, &admin, "name-clinic", &longest).await;
    let before = group_summary(&app, &admin, "name-clinic").await;

    let too_long = "é".repeat(101);
    for name in [
        "",
        "   ",
        too_long.as_str(),
        "Night\nshift",
        "Tab\tbed",
        "nul\u{0}",
    ] {
        let body = json!({"name": name});
        let r = app
            .post(&groups_path("name-clinic"), Some(&admin), &body)
            .await;
        let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert_eq!(error_fields(&p), ["name".to_owned()].into(), "{name:?}");
        let r = app.patch(&nurses_path, Some(&admin), &body).await;
        let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert_eq!(error_fields(&p), ["name".to_owned()].into(), "{name:?}");
    }
    for body in [
        json!({}),
        json!({"name": 5}),
        json!({"name": "X", "colour": "red"}),
    ] {
        let r = app
            .post(&groups_path("name-clinic"), Some(&admin), &body)
            .await;
        problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        let r = app.patch(&nurses_path, Some(&admin), &body).await;
        problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    }

    // Taken in any case, trimmed or not: 409, on create and on rename.
    for name in ["nurses", "NURSES", " Nurses "] {
        let r = app
            .post(
                &groups_path("name-clinic"),
                Some(&admin),
                &json!({"name": name}),
            )
            .await;
        let p = problem(r, StatusCode::CONFLICT, "conflict").await;
        // The detail names the name asked for (trimmed).
        let detail = p["detail"].as_str().unwrap();
        assert!(detail.contains(&format!("'{}'", name.trim())), "{p}");
    }
    let r = app
        .patch(&nurses_path, Some(&admin), &json!({"name": "doctors"}))
        .await;
    problem(r, StatusCode::CONFLICT, "conflict").await;

    // Nothing was created or renamed.
    assert_eq!(group_summary(&app, &admin, "name-clinic").await, before);
    // Renaming a group to its own name answers it unchanged.
    let same = ok_json(
        app.patch(&nurses_path, Some(&admin), &json!({"name": "Nurses"}))
            .await,
    )
    .await;
    assert_eq!(same["id"], nurses["id"]);
    assert_eq!(same["name"], "Nurses");
    assert_ne!(other["id"], nurses["id"]);
    // Names are unique per practice only.
    let elsewhere = app.practice("name-other").await;
    create_group(&app, &elsewhere, "name-other", "NURSES").await;
}

async fn t5_members_are_added_and_removed_by_id_or_username_idempotently(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.practice("mem-clinic").await;
    let ann = create_user(&app, &admin, "mem-clinic", "ann").await;
    create_user(&app, &admin, "mem-clinic", "Ben").await;
    let g = create_group(&app, &admin, "mem-clinic", "Nurses").await;
    let gid = g["id"].as_str().unwrap();
    let ann_id = ann["id"].as_str().unwrap();

    // By id, then by username in another case; again: still 204 and nothing doubles.
    for user in [ann_id, "BEN", ann_id, "ben"] {
        let r = member_call(&app, Method::PUT, &admin, "mem-clinic", gid, user).await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT, "{user}");
        assert!(r.text().await.unwrap().is_empty());
    }
    assert_eq!(
        member_names(&app, &admin, "mem-clinic", gid).await,
        ["ann", "Ben"]
    );
    assert_eq!(
        group_summary(&app, &admin, "mem-clinic").await,
        [("Nurses".to_owned(), 2)]
    );
    // Members are whole Users, their groups and MFA status filled in.
    let page = ok_json(
        app.get(
            &format!("{}/{gid}/members", groups_path("mem-clinic")),
            Some(&admin),
        )
        .await,
    )
    .await;
    let first = &page["items"][0];
    assert_eq!(first["id"], ann["id"]);
    assert_eq!(first["company"], "mem-clinic");
    assert_eq!(first["groups"], json!([{"id": gid, "name": "Nurses"}]));
    assert_eq!(first["mfa"]["method"], "none");
    assert!(first.get("password_hash").is_none());
    assert_eq!(
        groups_of(&app, &admin, "mem-clinic", "ben").await,
        ["Nurses"]
    );
    // Members page by username like the user list.
    let p1 = ok_json(
        app.get(
            &format!("{}/{gid}/members?limit=1", groups_path("mem-clinic")),
            Some(&admin),
        )
        .await,
    )
    .await;
    assert_eq!(p1["items"].as_array().unwrap().len(), 1);
    assert_eq!(p1["next_cursor"], "ann");
    let p2 = ok_json(
        app.get(
            &format!(
                "{}/{gid}/members?limit=1&cursor=ann",
                groups_path("mem-clinic")
            ),
            Some(&admin),
        )
        .await,
    )
    .await;
    assert_eq!(p2["items"][0]["username"], "Ben");
    assert!(p2["next_cursor"].is_null());

    // Remove by username; again: 204, still not a member.
    for _ in 0..2 {
        let r = member_call(&app, Method::DELETE, &admin, "mem-clinic", gid, "ann").await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
    }
    assert_eq!(member_names(&app, &admin, "mem-clinic", gid).await, ["Ben"]);
    assert!(
        groups_of(&app, &admin, "mem-clinic", "ann")
            .await
            .is_empty()
    );

    // Unknown user, unknown group, malformed ids: 404, and nothing changes.
    let ghost = uuid::Uuid::new_v4().to_string();
    for (group, user) in [
        (gid, "nobody"),
        (gid, ghost.as_str()),
        (gid, "bad%20name"),
        (ghost.as_str(), "ben"),
        ("not-a-uuid", "ben"),
    ] {
        for method in [Method::PUT, Method::DELETE] {
            let r = member_call(&app, method.clone(), &admin, "mem-clinic", group, user).await;
            problem(r, StatusCode::NOT_FOUND, "not_found").await;
        }
    }
    for group in [ghost.as_str(), "not-a-uuid"] {
        let r = app
            .get(
                &format!("{}/{group}/members", groups_path("mem-clinic")),
                Some(&admin),
            )
            .await;
        problem(r, StatusCode::NOT_FOUND, "not_found").await;
    }
    assert_eq!(member_names(&app, &admin, "mem-clinic", gid).await, ["Ben"]);

    // Two adds and one removal happened; the repeats recorded nothing.
    let changes = events(&app, &admin, "mem-clinic", "group.members_changed").await;
    let details: Vec<&Value> = changes.iter().rev().map(|e| &e["details"]).collect();
    let ben_id = p2["items"][0]["id"].as_str().unwrap();
    assert_eq!(
        details,
        [
            &json!({"added": 1, "user_ids": [ann_id]}),
            &json!({"added": 1, "user_ids": [ben_id]}),
            &json!({"removed": 1, "user_ids": [ann_id]}),
        ]
    );
}

async fn t5_assign_all_adds_only_active_users_and_counts_only_new_memberships(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.practice("all-clinic").await;
    for u in ["ann", "ben", "cat", "dan"] {
        create_user(&app, &admin, "all-clinic", u).await;
    }
    app.exec("UPDATE users SET active = FALSE WHERE username_lower = 'dan'")
        .await;
    let g = create_group(&app, &admin, "all-clinic", "Everyone").await;
    let gid = g["id"].as_str().unwrap();
    let r = member_call(&app, Method::PUT, &admin, "all-clinic", gid, "ben").await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);

    // Every active user who was not a member yet: the admin, ann and cat (not dan).
    let all = json!({"all": true});
    assert_eq!(added(&app, &admin, "all-clinic", gid, &all).await, 3);
    assert_eq!(
        member_names(&app, &admin, "all-clinic", gid).await,
        ["all-clinic-admin", "ann", "ben", "cat"]
    );
    // Again: nobody new.
    assert_eq!(added(&app, &admin, "all-clinic", gid, &all).await, 0);
    assert!(
        groups_of(&app, &admin, "all-clinic", "dan")
            .await
            .is_empty()
    );

    // By id: only the users not yet members count; inactive users may be named.
    let users = ok_json(
        app.get("/v1/tenants/all-clinic/users?limit=500", Some(&admin))
            .await,
    )
    .await;
    let id_of = |name: &str| {
        users["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["username"] == name)
            .unwrap()["id"]
            .clone()
    };
    let other = create_group(&app, &admin, "all-clinic", "Some").await;
    let oid = other["id"].as_str().unwrap();
    let body = json!({"user_ids": [id_of("ann"), id_of("dan")]});
    assert_eq!(added(&app, &admin, "all-clinic", oid, &body).await, 2);
    let body = json!({"user_ids": [id_of("ann"), id_of("ben"), id_of("ben"), id_of("dan")]});
    assert_eq!(added(&app, &admin, "all-clinic", oid, &body).await, 1);
    assert_eq!(
        added(&app, &admin, "all-clinic", oid, &json!({"user_ids": []})).await,
        0
    );
    assert_eq!(
        member_names(&app, &admin, "all-clinic", oid).await,
        ["ann", "ben", "dan"]
    );
    assert_eq!(groups_of(&app, &admin, "all-clinic", "dan").await, ["Some"]);
    assert_eq!(
        group_summary(&app, &admin, "all-clinic").await,
        [("Everyone".to_owned(), 4), ("Some".to_owned(), 3)]
    );

    // One event per call that added someone, naming who.
    let changes = events(&app, &admin, "all-clinic", "group.members_changed").await;
    assert_eq!(changes.len(), 4, "{changes:#?}");
    let all_event = &changes[2]["details"];
    assert_eq!(all_event["added"], 3);
    assert_eq!(all_event["all"], true);
    assert_eq!(all_event["user_ids"].as_array().unwrap().len(), 3);
    assert!(
        !all_event["user_ids"]
            .as_array()
            .unwrap()
            .contains(&id_of("dan"))
    );
    assert_eq!(changes[0]["details"]["user_ids"], json!([id_of("ben")]));
    assert_eq!(changes[0]["details"]["all"], false);
}

async fn t5_bulk_add_takes_exactly_one_form_and_refuses_unknown_users_adding_nothing(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.practice("bulk-clinic").await;
    let ann = create_user(&app, &admin, "bulk-clinic", "ann").await;
    let other_admin = app.practice("bulk-other").await;
    let stranger = create_user(&app, &other_admin, "bulk-other", "zed").await;
    let g = create_group(&app, &admin, "bulk-clinic", "Nurses").await;
    let gid = g["id"].as_str().unwrap();

    let cases = [
        (json!({}), "body"),
        (json!({"all": true, "user_ids": [ann["id"]]}), "body"),
        (json!({"all": false}), "all"),
        (
            json!({"user_ids": [ann["id"], uuid::Uuid::new_v4()]}),
            "user_ids",
        ),
        // Another practice's user is no user here.
        (json!({"user_ids": [ann["id"], stranger["id"]]}), "user_ids"),
        (json!({"user_ids": ["ann"]}), "body"),
        (json!({"users": [ann["id"]]}), "body"),
        (
            json!({"user_ids": (0..501).map(|_| uuid::Uuid::new_v4()).collect::<Vec<_>>()}),
            "user_ids",
        ),
    ];
    for (body, field) in cases {
        let r = add_members(&app, &admin, "bulk-clinic", gid, &body).await;
        let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert_eq!(error_fields(&p), [field.to_owned()].into(), "{body}");
        if field == "user_ids" && body["user_ids"].as_array().unwrap().len() == 2 {
            let unknown = body["user_ids"][1].as_str().unwrap();
            assert!(
                p["errors"][0]["message"]
                    .as_str()
                    .unwrap()
                    .contains(unknown),
                "{p}"
            );
        }
    }
    // Nothing was added, not even ann, who was valid.
    assert!(
        member_names(&app, &admin, "bulk-clinic", gid)
            .await
            .is_empty()
    );
    assert!(
        events(&app, &admin, "bulk-clinic", "group.members_changed")
            .await
            .is_empty()
    );
    assert!(
        groups_of(&app, &other_admin, "bulk-other", "zed")
            .await
            .is_empty()
    );
    // An unknown or malformed group is 404 before the body is looked at.
    for group in [uuid::Uuid::new_v4().to_string(), "nope".to_owned()] {
        let r = add_members(&app, &admin, "bulk-clinic", &group, &json!({"all": true})).await;
        problem(r, StatusCode::NOT_FOUND, "not_found").await;
    }
}

async fn t5_deleting_a_group_takes_it_off_its_users_and_their_sessions(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.practice("del-clinic").await;
    let staff = app.staff("del-clinic", &admin, "sam").await;
    let keep = create_group(&app, &admin, "del-clinic", "Keep").await;
    let gone = create_group(&app, &admin, "del-clinic", "Gone").await;
    let all = json!({"all": true});
    for g in [&keep, &gone] {
        assert_eq!(
            added(&app, &admin, "del-clinic", g["id"].as_str().unwrap(), &all).await,
            2
        );
    }
    // Seen at once, also through the (cached) session of the member.
    let session = ok_json(app.get("/v1/auth/session", Some(&staff)).await).await;
    let names: Vec<&str> = session["user"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Gone", "Keep"]);

    let path = format!(
        "{}/{}",
        groups_path("del-clinic"),
        gone["id"].as_str().unwrap()
    );
    let r = app
        .client
        .delete(app.url(&path))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);

    for user in ["sam", "del-clinic-admin"] {
        assert_eq!(groups_of(&app, &admin, "del-clinic", user).await, ["Keep"]);
    }
    let me = ok_json(app.get("/v1/me", Some(&staff)).await).await;
    assert_eq!(me["groups"], json!([{"id": keep["id"], "name": "Keep"}]));
    let session = ok_json(app.get("/v1/auth/session", Some(&staff)).await).await;
    assert_eq!(session["user"]["groups"], me["groups"]);
    // The users remain; the memberships went with the group.
    let users = ok_json(app.get("/v1/tenants/del-clinic/users", Some(&admin)).await).await;
    assert_eq!(users["items"].as_array().unwrap().len(), 2);
    // Only Keep's two memberships are left in the table.
    let row = app
        .raw
        .query_one_raw(sea_orm::Statement::from_string(
            app.raw.get_database_backend(),
            "SELECT COUNT(*) AS n FROM group_members",
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.try_get::<i64>("", "n").unwrap(), 2);
    assert_eq!(
        group_summary(&app, &admin, "del-clinic").await,
        [("Keep".to_owned(), 2)]
    );
    let deleted = events(&app, &admin, "del-clinic", "group.deleted").await;
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0]["details"], json!({"members": 2}));
}

async fn t5_every_group_change_is_audited_with_the_group_as_target_and_no_secrets(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.practice("aud-clinic").await;
    let admin_user = ok_json(app.get("/v1/me", Some(&admin)).await).await;
    let ann = create_user(&app, &admin, "aud-clinic", "ann").await;
    let g = create_group(&app, &admin, "aud-clinic", "Nurses").await;
    let gid = g["id"].as_str().unwrap();
    let r = member_call(&app, Method::PUT, &admin, "aud-clinic", gid, "ann").await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = member_call(&app, Method::DELETE, &admin, "aud-clinic", gid, "ann").await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        added(&app, &admin, "aud-clinic", gid, &json!({"all": true})).await,
        2
    );
    let r = app
        .patch(
            &format!("{}/{gid}", groups_path("aud-clinic")),
            Some(&admin),
            &json!({"name": "Nursing"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = app
        .client
        .delete(app.url(&format!("{}/{gid}", groups_path("aud-clinic"))))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);

    let expect = [
        ("group.created", "Nurses", 1),
        ("group.members_changed", "Nurses", 3),
        ("group.updated", "Nursing", 1),
        ("group.deleted", "Nursing", 1),
    ];
    for (action, label, count) in expect {
        let found = events(&app, &admin, "aud-clinic", action).await;
        assert_eq!(found.len(), count, "{action}: {found:#?}");
        for e in &found {
            assert_eq!(e["action"], action);
            assert_eq!(e["target"]["kind"], "group", "{e}");
            assert_eq!(e["target"]["id"], gid, "{e}");
            assert_eq!(e["target"]["label"], label, "{e}");
            assert_eq!(e["actor"]["kind"], "user");
            assert_eq!(e["actor"]["id"], admin_user["id"]);
            assert_eq!(e["actor"]["username"], "aud-clinic-admin");
            // Nothing secret rides along: no token, no password, no hash of either.
            let text = e.to_string();
            for secret in [
                admin.as_str(),
                NEW_PASSWORD,
                TEMP,
                "password",
                "token",
                "$argon2",
            ] {
                assert!(!text.contains(secret), "{action} leaks {secret}: {text}");
            }
        }
    }
    let created = &events(&app, &admin, "aud-clinic", "group.created").await[0];
    assert_eq!(created["details"], json!({"name": "Nurses"}));
    let updated = &events(&app, &admin, "aud-clinic", "group.updated").await[0];
    assert_eq!(
        updated["details"],
        json!({"name": {"from": "Nurses", "to": "Nursing"}})
    );
    let changes = events(&app, &admin, "aud-clinic", "group.members_changed").await;
    assert_eq!(
        changes[2]["details"],
        json!({"added": 1, "user_ids": [ann["id"]]})
    );
    assert_eq!(
        changes[1]["details"],
        json!({"removed": 1, "user_ids": [ann["id"]]})
    );
    assert_eq!(changes[0]["details"]["added"], 2);
    // Filtering by the group's id finds all of its history, and the chain still verifies.
    let by_target = ok_json(
        app.get(
            &format!("/v1/tenants/aud-clinic/audit-events?target_id={gid}"),
            Some(&admin),
        )
        .await,
    )
    .await;
    assert_eq!(by_target["items"].as_array().unwrap().len(), 6);
    let v = ok_json(
        app.get("/v1/tenants/aud-clinic/audit-events/verify", Some(&admin))
            .await,
    )
    .await;
    assert_eq!(v["ok"], true);
}

async fn t5_staff_gets_403_unknown_groups_404_and_wrong_methods_405(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.practice("role-clinic").await;
    let staff = app.staff("role-clinic", &admin, "sam").await;
    let g = create_group(&app, &admin, "role-clinic", "Nurses").await;
    let gid = g["id"].as_str().unwrap();
    let base = groups_path("role-clinic");
    let member = format!("{base}/{gid}/members/sam");
    let calls = [
        (Method::GET, base.clone(), Value::Null),
        (Method::POST, base.clone(), json!({"name": "Staff room"})),
        (
            Method::PATCH,
            format!("{base}/{gid}"),
            json!({"name": "Mine"}),
        ),
        (Method::DELETE, format!("{base}/{gid}"), Value::Null),
        (Method::GET, format!("{base}/{gid}/members"), Value::Null),
        (
            Method::POST,
            format!("{base}/{gid}/members"),
            json!({"all": true}),
        ),
        (Method::PUT, member.clone(), Value::Null),
        (Method::DELETE, member.clone(), Value::Null),
    ];
    for (method, path, body) in &calls {
        let r = app
            .send_json(method.clone(), path, Some(&staff), body)
            .await;
        problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    }
    assert_eq!(
        group_summary(&app, &admin, "role-clinic").await,
        [("Nurses".to_owned(), 0)]
    );

    // Paths of a group that does not exist, and group ids that are not UUIDs: 404.
    for group in [
        uuid::Uuid::new_v4().to_string(),
        "nurses".to_owned(),
        "1".to_owned(),
    ] {
        let r = app
            .patch(
                &format!("{base}/{group}"),
                Some(&admin),
                &json!({"name": "X"}),
            )
            .await;
        problem(r, StatusCode::NOT_FOUND, "not_found").await;
        let r = app
            .client
            .delete(app.url(&format!("{base}/{group}")))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        problem(r, StatusCode::NOT_FOUND, "not_found").await;
    }

    let wrong = [
        (Method::DELETE, base.clone(), "GET, POST"),
        (Method::PUT, base.clone(), "GET, POST"),
        (Method::GET, format!("{base}/{gid}"), "PATCH, DELETE"),
        (Method::POST, format!("{base}/{gid}"), "PATCH, DELETE"),
        (Method::PUT, format!("{base}/{gid}/members"), "GET, POST"),
        (Method::DELETE, format!("{base}/{gid}/members"), "GET, POST"),
        (Method::GET, member.clone(), "PUT, DELETE"),
        (Method::POST, member.clone(), "PUT, DELETE"),
    ];
    for (method, path, allow) in wrong {
        let r = app
            .send_json(method.clone(), &path, Some(&admin), &json!({"name": "X"}))
            .await;
        assert_eq!(r.headers()["allow"], allow, "{method} {path}");
        problem(r, StatusCode::METHOD_NOT_ALLOWED, "method_not_supported").await;
    }
    // Nothing changed through any of it.
    assert_eq!(
        group_summary(&app, &admin, "role-clinic").await,
        [("Nurses".to_owned(), 0)]
    );
}

async fn t1_another_practice_cannot_see_change_or_join_groups_or_users_across_tenants(db: Db) {
    let app = TestApp::spawn(db).await;
    let a_admin = app.practice("gx-a").await;
    let b_admin = app.practice("gx-b").await;
    let bob = create_user(&app, &b_admin, "gx-b", "bob").await;
    let bob_id = bob["id"].as_str().unwrap();
    let b_group = create_group(&app, &b_admin, "gx-b", "Nurses").await;
    let bg = b_group["id"].as_str().unwrap();
    let r = member_call(&app, Method::PUT, &b_admin, "gx-b", bg, "bob").await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let a_group = create_group(&app, &a_admin, "gx-a", "Nurses").await;
    let ag = a_group["id"].as_str().unwrap();
    let b_before = (
        list_groups(&app, &b_admin, "gx-b", "").await,
        member_names(&app, &b_admin, "gx-b", bg).await,
        events(&app, &b_admin, "gx-b", "group.members_changed").await,
    );

    // B's paths under B's company, and B's group id under A's own company: all 404.
    let mut calls = Vec::new();
    for company in ["gx-b", "gx-a"] {
        let base = groups_path(company);
        calls.extend([
            (
                Method::PATCH,
                format!("{base}/{bg}"),
                json!({"name": "Mine"}),
            ),
            (Method::DELETE, format!("{base}/{bg}"), Value::Null),
            (Method::GET, format!("{base}/{bg}/members"), Value::Null),
            (
                Method::POST,
                format!("{base}/{bg}/members"),
                json!({"all": true}),
            ),
            (Method::PUT, format!("{base}/{bg}/members/bob"), Value::Null),
            (
                Method::PUT,
                format!("{base}/{bg}/members/{bob_id}"),
                Value::Null,
            ),
            (
                Method::DELETE,
                format!("{base}/{bg}/members/{bob_id}"),
                Value::Null,
            ),
        ]);
    }
    let base = groups_path("gx-b");
    calls.extend([
        (Method::GET, base.clone(), Value::Null),
        (Method::POST, base.clone(), json!({"name": "Planted"})),
    ]);
    for (method, path, body) in &calls {
        let r = app
            .send_json(method.clone(), path, Some(&a_admin), body)
            .await;
        problem(r, StatusCode::NOT_FOUND, "not_found").await;
    }

    // Adding B's user to A's own group: by id or name in the path 404, by id in a body 422.
    for user in [bob_id, "bob"] {
        let r = member_call(&app, Method::PUT, &a_admin, "gx-a", ag, user).await;
        problem(r, StatusCode::NOT_FOUND, "not_found").await;
        let r = member_call(&app, Method::DELETE, &a_admin, "gx-a", ag, user).await;
        problem(r, StatusCode::NOT_FOUND, "not_found").await;
    }
    let r = add_members(&app, &a_admin, "gx-a", ag, &json!({"user_ids": [bob_id]})).await;
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(error_fields(&p), ["user_ids".to_owned()].into());
    // "All" in A means A's users only.
    assert_eq!(
        added(&app, &a_admin, "gx-a", ag, &json!({"all": true})).await,
        1
    );
    assert_eq!(
        member_names(&app, &a_admin, "gx-a", ag).await,
        ["gx-a-admin"]
    );

    // B is exactly as it was: groups, members, bob's groups, no new membership events.
    let b_after = (
        list_groups(&app, &b_admin, "gx-b", "").await,
        member_names(&app, &b_admin, "gx-b", bg).await,
        events(&app, &b_admin, "gx-b", "group.members_changed").await,
    );
    assert_eq!(b_before, b_after);
    assert_eq!(groups_of(&app, &b_admin, "gx-b", "bob").await, ["Nurses"]);
    // A sees only its own group.
    assert_eq!(
        group_summary(&app, &a_admin, "gx-a").await,
        [("Nurses".to_owned(), 1)]
    );
}

async fn s1_support_neither_reads_nor_changes_a_practice_s_groups(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.practice("sup-clinic").await;
    create_user(&app, &admin, "sup-clinic", "ann").await;
    let g = create_group(&app, &admin, "sup-clinic", "Nurses").await;
    let gid = g["id"].as_str().unwrap();
    assert_eq!(
        added(&app, &admin, "sup-clinic", gid, &json!({"all": true})).await,
        2
    );
    let agent = support_agent(&app, "agent.grey").await;
    let root = app.support_token().await;

    // Groups are not among what support may read of a practice (api.md: users, user,
    // devices, deliveries and audit events, "nothing else there"): hidden like any other
    // tenant's resource, and nothing is recorded as read.
    let base = groups_path("sup-clinic");
    let members_path = format!("{base}/{gid}/members");
    let reads_before = events(&app, &admin, "sup-clinic", "support.read")
        .await
        .len();
    for token in [&agent, &root] {
        for path in [&base, &members_path] {
            let r = app.get(path, Some(token)).await;
            problem(r, StatusCode::NOT_FOUND, "not_found").await;
        }
    }
    assert_eq!(
        events(&app, &admin, "sup-clinic", "support.read")
            .await
            .len(),
        reads_before
    );

    // Writes by support, agent or admin, answer 404 and change nothing.
    let before = (
        list_groups(&app, &admin, "sup-clinic", "").await,
        member_names(&app, &admin, "sup-clinic", gid).await,
    );
    let writes = [
        (Method::POST, base.clone(), json!({"name": "Vendor"})),
        (
            Method::PATCH,
            format!("{base}/{gid}"),
            json!({"name": "Vendor"}),
        ),
        (Method::DELETE, format!("{base}/{gid}"), Value::Null),
        (Method::POST, members_path.clone(), json!({"all": true})),
        (Method::PUT, format!("{members_path}/ann"), Value::Null),
        (Method::DELETE, format!("{members_path}/ann"), Value::Null),
    ];
    for token in [&agent, &root] {
        for (method, path, body) in &writes {
            let r = app.send_json(method.clone(), path, Some(token), body).await;
            problem(r, StatusCode::NOT_FOUND, "not_found").await;
        }
    }
    let after = (
        list_groups(&app, &admin, "sup-clinic", "").await,
        member_names(&app, &admin, "sup-clinic", gid).await,
    );
    assert_eq!(before, after);
    for action in [
        "group.created",
        "group.updated",
        "group.deleted",
        "group.members_changed",
    ] {
        assert!(
            events(&app, &admin, "sup-clinic", action)
                .await
                .iter()
                .all(|e| e["actor"]["kind"] == "user"),
            "{action}"
        );
    }
}
