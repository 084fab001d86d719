//! Tenant isolation, roles and the vendor's audited read access (T1, T2, S1).

use crate::helpers::{Db, NEW_PASSWORD, SUPPORT_USER, TestApp, ok_json, problem};
use gatehouse_testkit::on_both_databases;
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

on_both_databases!(
    t1_admin_of_a_gets_404_on_every_path_of_b_and_b_is_unchanged,
    t1_user_ids_and_usernames_of_b_under_a_own_path_answer_404,
    t2_staff_gets_403_on_own_admin_paths_and_404_on_other_tenants,
    t2_practice_admin_and_staff_get_403_on_vendor_tenant_list_and_create,
    s1_support_reads_of_b_succeed_and_each_is_audited_in_b_log,
    s1_support_cannot_change_b_settings_users_or_login_hours,
    t1_unauthenticated_requests_get_401_with_bearer_challenge,
);

const TEMP_PASSWORD: &str = "Temporary-Pass-1234!";

/// Sends `body` as JSON unless the method is GET.
async fn call(
    app: &TestApp,
    method: &Method,
    path: &str,
    token: Option<&str>,
    body: &Value,
) -> Response {
    if *method == Method::GET {
        app.get(path, token).await
    } else {
        app.send_json(method.clone(), path, token, body).await
    }
}

/// Creates a user (temporary password) and returns the User.
pub(crate) async fn create_user(
    app: &TestApp,
    company: &str,
    admin: &str,
    username: &str,
    role: &str,
) -> Value {
    let r = app
        .post(
            &format!("/v1/tenants/{company}/users"),
            Some(admin),
            &json!({"username": username, "first_name": "Bob", "last_name": "Builder",
                    "role": role, "password": TEMP_PASSWORD}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    r.json().await.unwrap()
}

/// Creates a group and returns its id.
async fn create_group(app: &TestApp, company: &str, admin: &str, name: &str) -> String {
    let r = app
        .post(
            &format!("/v1/tenants/{company}/groups"),
            Some(admin),
            &json!({"name": name}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let g: Value = r.json().await.unwrap();
    g["id"].as_str().unwrap().to_owned()
}

/// Every tenant-scoped path that exists, with a body that would succeed for the tenant's admin.
fn admin_paths(
    company: &str,
    user_id: &str,
    username: &str,
    group_id: &str,
) -> Vec<(Method, String, Value)> {
    let t = format!("/v1/tenants/{company}");
    let g = format!("{t}/groups/{group_id}");
    let hours = json!([{"weekday": "monday", "start": "00:00", "end": "00:01"}]);
    vec![
        (Method::GET, t.clone(), Value::Null),
        (
            Method::PATCH,
            format!("{t}/settings"),
            json!({"lockout_threshold": 3, "mfa_policy": "off"}),
        ),
        (Method::GET, format!("{t}/users"), Value::Null),
        (
            Method::POST,
            format!("{t}/users"),
            json!({"username": "mallory", "first_name": "Mal", "last_name": "Lory",
                   "role": "practice_admin", "password": TEMP_PASSWORD}),
        ),
        (
            Method::POST,
            format!("{t}/users/require-password-change"),
            json!({}),
        ),
        (Method::GET, format!("{t}/users/{user_id}"), Value::Null),
        (Method::GET, format!("{t}/users/{username}"), Value::Null),
        (
            Method::GET,
            format!("{t}/users/{user_id}/login-hours"),
            Value::Null,
        ),
        (
            Method::GET,
            format!("{t}/users/{username}/login-hours"),
            Value::Null,
        ),
        (
            Method::PUT,
            format!("{t}/users/{user_id}/login-hours"),
            hours.clone(),
        ),
        (
            Method::PUT,
            format!("{t}/users/{username}/login-hours"),
            hours,
        ),
        (
            Method::PATCH,
            format!("{t}/users/{user_id}"),
            json!({"first_name": "Mallory"}),
        ),
        (
            Method::POST,
            format!("{t}/users/{username}/copy"),
            json!({"username": "mallory-copy", "first_name": "Mal", "last_name": "Lory",
                   "password": TEMP_PASSWORD}),
        ),
        (
            Method::POST,
            format!("{t}/users/{user_id}/unlock"),
            json!({}),
        ),
        (
            Method::POST,
            format!("{t}/users/{username}/password"),
            json!({"temporary_password": TEMP_PASSWORD}),
        ),
        (
            Method::GET,
            format!("{t}/users/{user_id}/deliveries"),
            Value::Null,
        ),
        (
            Method::GET,
            format!("{t}/users/{username}/deliveries"),
            Value::Null,
        ),
        (Method::GET, format!("{t}/audit-events"), Value::Null),
        (
            Method::GET,
            format!("{t}/audit-events?action=user.created"),
            Value::Null,
        ),
        (Method::GET, format!("{t}/audit-events/verify"), Value::Null),
        (Method::GET, format!("{t}/groups"), Value::Null),
        (
            Method::POST,
            format!("{t}/groups"),
            json!({"name": "Planted"}),
        ),
        (Method::PATCH, g.clone(), json!({"name": "Renamed"})),
        (Method::GET, format!("{g}/members"), Value::Null),
        (Method::POST, format!("{g}/members"), json!({"all": true})),
        (
            Method::POST,
            format!("{g}/members"),
            json!({"user_ids": [user_id]}),
        ),
        (Method::PUT, format!("{g}/members/{user_id}"), Value::Null),
        (Method::PUT, format!("{g}/members/{username}"), Value::Null),
        (
            Method::DELETE,
            format!("{g}/members/{user_id}"),
            Value::Null,
        ),
        (
            Method::DELETE,
            format!("{g}/members/{username}"),
            Value::Null,
        ),
        (Method::DELETE, g, Value::Null),
    ]
}

/// Every audit event of a tenant, newest first.
async fn all_events(app: &TestApp, company: &str, token: &str) -> Vec<Value> {
    let page = ok_json(
        app.get(
            &format!("/v1/tenants/{company}/audit-events?limit=500"),
            Some(token),
        )
        .await,
    )
    .await;
    assert!(page["next_cursor"].is_null(), "fits one page: {page}");
    page["items"].as_array().unwrap().clone()
}

/// What the tenant's own admin sees of the tenant: settings, users (with their groups), a
/// user's hours, the groups (with member counts), the log.
async fn snapshot(app: &TestApp, company: &str, admin: &str, username: &str) -> Value {
    let t = format!("/v1/tenants/{company}");
    json!({
        "tenant": ok_json(app.get(&t, Some(admin)).await).await,
        "users": ok_json(app.get(&format!("{t}/users"), Some(admin)).await).await,
        "hours": ok_json(app.get(&format!("{t}/users/{username}/login-hours"), Some(admin)).await).await,
        "groups": ok_json(app.get(&format!("{t}/groups"), Some(admin)).await).await,
        "audit": all_events(app, company, admin).await,
    })
}

async fn t1_admin_of_a_gets_404_on_every_path_of_b_and_b_is_unchanged(db: Db) {
    let app = TestApp::spawn(db).await;
    let a_admin = app.practice("iso-a").await;
    let b_admin = app.practice("iso-b").await;
    let bob = create_user(&app, "iso-b", &b_admin, "bob", "staff").await;
    let bob_id = bob["id"].as_str().unwrap();
    let group = create_group(&app, "iso-b", &b_admin, "Nurses").await;
    let r = app
        .put(
            &format!("/v1/tenants/iso-b/groups/{group}/members/bob"),
            Some(&b_admin),
            &Value::Null,
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let before = snapshot(&app, "iso-b", &b_admin, "bob").await;
    assert_eq!(before["tenant"]["settings"]["lockout_threshold"], 5);
    assert_eq!(before["groups"]["items"][0]["members"], 1);

    let paths = admin_paths("iso-b", bob_id, "bob", &group);
    // The B admin's own user, by id and by name, too.
    let b_admin_user = ok_json(app.get("/v1/me", Some(&b_admin)).await).await;
    let b_admin_id = b_admin_user["id"].as_str().unwrap();
    let paths = paths
        .into_iter()
        .chain(
            admin_paths("iso-b", b_admin_id, "iso-b-admin", &group)
                .into_iter()
                .skip(4),
        )
        .collect::<Vec<_>>();
    for (method, path, body) in &paths {
        let r = call(&app, method, path, Some(&a_admin), body).await;
        let seen = problem(r, StatusCode::NOT_FOUND, "not_found").await;
        // Indistinguishable from a company that does not exist: B's existence does not leak.
        let ghost = path.replace("/iso-b", "/no-such-clinic");
        let r = call(&app, method, &ghost, Some(&a_admin), body).await;
        let absent = problem(r, StatusCode::NOT_FOUND, "not_found").await;
        assert_eq!(seen, absent, "{method} {path}");
    }

    // Nothing of B changed: settings, users (no mallory), hours, and not even its audit log.
    let after = snapshot(&app, "iso-b", &b_admin, "bob").await;
    assert_eq!(before, after);
    let r = app
        .get("/v1/tenants/iso-b/users/mallory", Some(&b_admin))
        .await;
    problem(r, StatusCode::NOT_FOUND, "not_found").await;
    let r = app
        .get("/v1/tenants/iso-b/audit-events/verify", Some(&b_admin))
        .await;
    let v = ok_json(r).await;
    assert_eq!(v["ok"], true);
    assert_eq!(v["events"], before["audit"].as_array().unwrap().len());

    // And A's own admin paths still work for A (the 404s were not a general failure).
    let r = app.get("/v1/tenants/iso-a/users", Some(&a_admin)).await;
    let users = ok_json(r).await;
    let names: Vec<&str> = users["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|u| u["username"].as_str())
        .collect();
    assert_eq!(names, ["iso-a-admin"]);
}

async fn t1_user_ids_and_usernames_of_b_under_a_own_path_answer_404(db: Db) {
    let app = TestApp::spawn(db).await;
    let a_admin = app.practice("own-a").await;
    let b_admin = app.practice("own-b").await;
    let bob = create_user(&app, "own-b", &b_admin, "bob", "staff").await;
    let bob_id = bob["id"].as_str().unwrap();
    let b_admin_id = ok_json(app.get("/v1/me", Some(&b_admin)).await).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = snapshot(&app, "own-b", &b_admin, "bob").await;

    let hours = json!([{"weekday": "tuesday", "start": "01:00", "end": "02:00"}]);
    for id in [bob_id, b_admin_id.as_str(), "bob", "own-b-admin"] {
        let base = format!("/v1/tenants/own-a/users/{id}");
        let r = app.get(&base, Some(&a_admin)).await;
        problem(r, StatusCode::NOT_FOUND, "not_found").await;
        let r = app
            .get(&format!("{base}/login-hours"), Some(&a_admin))
            .await;
        problem(r, StatusCode::NOT_FOUND, "not_found").await;
        let r = app
            .put(&format!("{base}/login-hours"), Some(&a_admin), &hours)
            .await;
        problem(r, StatusCode::NOT_FOUND, "not_found").await;
    }

    // B's users have no login hours now, and B's log is untouched.
    let after = snapshot(&app, "own-b", &b_admin, "bob").await;
    assert_eq!(before, after);
    assert_eq!(after["hours"]["items"], json!([]));
    let r = app
        .get(
            &format!("/v1/tenants/own-b/users/{b_admin_id}/login-hours"),
            Some(&b_admin),
        )
        .await;
    assert_eq!(ok_json(r).await["items"], json!([]));
    // The same user id does resolve under its own tenant.
    let r = app
        .get(&format!("/v1/tenants/own-b/users/{bob_id}"), Some(&b_admin))
        .await;
    assert_eq!(ok_json(r).await["username"], "bob");
}

async fn t2_staff_gets_403_on_own_admin_paths_and_404_on_other_tenants(db: Db) {
    let app = TestApp::spawn(db).await;
    let a_admin = app.practice("staff-a").await;
    let b_admin = app.practice("staff-b").await;
    let staff = app.staff("staff-a", &a_admin, "sam").await;
    let sam_id = ok_json(app.get("/v1/me", Some(&staff)).await).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let group_a = create_group(&app, "staff-a", &a_admin, "Nurses").await;
    let group_b = create_group(&app, "staff-b", &b_admin, "Nurses").await;
    let before_a = snapshot(&app, "staff-a", &a_admin, "sam").await;
    let before_b = snapshot(&app, "staff-b", &b_admin, "staff-b-admin").await;

    for (method, path, body) in admin_paths("staff-a", &sam_id, "sam", &group_a) {
        let r = call(&app, &method, &path, Some(&staff), &body).await;
        problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    }
    for (method, path, body) in admin_paths("staff-b", &sam_id, "staff-b-admin", &group_b) {
        let r = call(&app, &method, &path, Some(&staff), &body).await;
        problem(r, StatusCode::NOT_FOUND, "not_found").await;
    }

    assert_eq!(before_a, snapshot(&app, "staff-a", &a_admin, "sam").await);
    assert_eq!(
        before_b,
        snapshot(&app, "staff-b", &b_admin, "staff-b-admin").await
    );
    // Staff still has a working session for their own account.
    let me = ok_json(app.get("/v1/me", Some(&staff)).await).await;
    assert_eq!(me["role"], "staff");
}

async fn t2_practice_admin_and_staff_get_403_on_vendor_tenant_list_and_create(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.practice("vendor-a").await;
    let staff = app.staff("vendor-a", &admin, "sam").await;
    let new_tenant = json!({
        "company": "evil-clinic", "name": "Evil clinic",
        "admin": {"username": "evil", "first_name": "Eve", "last_name": "Il",
                  "email": "eve@evil.example.com", "password": TEMP_PASSWORD}
    });
    for token in [&admin, &staff] {
        let r = app.get("/v1/tenants", Some(token)).await;
        problem(r, StatusCode::FORBIDDEN, "forbidden").await;
        let r = app.post("/v1/tenants", Some(token), &new_tenant).await;
        problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    }

    // No tenant was created.
    let support = app.support_token().await;
    let list = ok_json(app.get("/v1/tenants", Some(&support)).await).await;
    let companies: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["company"].as_str())
        .collect();
    assert_eq!(companies, ["operator", "vendor-a"]);
    let r = app.login("evil-clinic", "evil", TEMP_PASSWORD).await;
    problem(r, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
}

/// A support agent in the operator tenant; returns (token, user id).
pub(crate) async fn support_agent(app: &TestApp, root: &str, username: &str) -> (String, String) {
    // S4: root's new account waits for a second support admin's approval.
    crate::operators::approved_operator(app, root, username, "support_agent").await
}

async fn s1_support_reads_of_b_succeed_and_each_is_audited_in_b_log(db: Db) {
    let app = TestApp::spawn(db).await;
    let a_admin = app.practice("read-a").await;
    let b_admin = app.practice("read-b").await;
    let bob = create_user(&app, "read-b", &b_admin, "bob", "staff").await;
    let bob_id = bob["id"].as_str().unwrap();
    let root = app.support_token().await;
    let (agent, agent_id) = support_agent(&app, &root, "agent.smith").await;
    let baseline = all_events(&app, "read-b", &b_admin).await.len();

    // Each read answers what B's admin sees.
    let users_b = ok_json(app.get("/v1/tenants/read-b/users", Some(&b_admin)).await).await;
    let users_s = ok_json(app.get("/v1/tenants/read-b/users", Some(&agent)).await).await;
    assert_eq!(users_b, users_s);
    let paths = [
        format!("/v1/tenants/read-b/users/{bob_id}"),
        "/v1/tenants/read-b/users/bob".to_owned(),
        "/v1/tenants/read-b/audit-events".to_owned(),
        "/v1/tenants/read-b/audit-events/verify".to_owned(),
    ];
    let bob_seen = ok_json(app.get(&paths[0], Some(&agent)).await).await;
    assert_eq!(bob_seen["id"], bob["id"]);
    assert_eq!(bob_seen["company"], "read-b");
    let bob_by_name = ok_json(app.get(&paths[1], Some(&agent)).await).await;
    assert_eq!(bob_by_name, bob_seen);
    let log = ok_json(app.get(&paths[2], Some(&agent)).await).await;
    // The read is recorded before the data is answered: the agent sees its own read first.
    assert_eq!(log["items"][0]["action"], "support.read");
    assert_eq!(log["items"][0]["actor"]["id"], agent_id.as_str());
    assert!(
        log["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "user.created")
    );
    let verify = ok_json(app.get(&paths[3], Some(&agent)).await).await;
    assert_eq!(verify["ok"], true);

    // The support_admin may read too.
    let root_log = ok_json(
        app.get(
            "/v1/tenants/read-b/audit-events?action=support.read",
            Some(&root),
        )
        .await,
    )
    .await;
    assert_eq!(root_log["items"][0]["actor"]["username"], SUPPORT_USER);
    // What support searched for is part of the record.
    assert_eq!(
        root_log["items"][0]["details"]["query"],
        "action=support.read"
    );

    // B's log shows every read: who (kind support), as what role, and which path, in order.
    let reads = ok_json(
        app.get(
            "/v1/tenants/read-b/audit-events?action=support.read",
            Some(&b_admin),
        )
        .await,
    )
    .await;
    let mut reads = reads["items"].as_array().unwrap().clone();
    reads.reverse();
    let expected: Vec<(&str, &str, &str)> = std::iter::once("/v1/tenants/read-b/users")
        .chain(paths.iter().map(String::as_str))
        .map(|p| ("agent.smith", "support_agent", p))
        .chain(std::iter::once((
            SUPPORT_USER,
            "support_admin",
            "/v1/tenants/read-b/audit-events",
        )))
        .collect();
    let got: Vec<(&str, &str, &str)> = reads
        .iter()
        .map(|e| {
            assert_eq!(e["actor"]["kind"], "support", "{e}");
            assert_eq!(e["target"]["kind"], "tenant", "{e}");
            assert_eq!(e["target"]["label"], "read-b", "{e}");
            (
                e["actor"]["username"].as_str().unwrap(),
                e["details"]["role"].as_str().unwrap(),
                e["details"]["path"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, expected);
    assert!(
        reads[..5]
            .iter()
            .all(|e| e["actor"]["id"] == agent_id.as_str())
    );
    assert_eq!(
        all_events(&app, "read-b", &b_admin).await.len(),
        baseline + expected.len()
    );

    // Only B's log records them; B's own admin reads are not support reads.
    let r = app
        .get(
            "/v1/tenants/read-a/audit-events?action=support.read",
            Some(&a_admin),
        )
        .await;
    assert_eq!(ok_json(r).await["items"], json!([]));
    let v = ok_json(
        app.get("/v1/tenants/read-b/audit-events/verify", Some(&b_admin))
            .await,
    )
    .await;
    assert_eq!(v["ok"], true);
    assert_eq!(v["events"], baseline + expected.len());
}

async fn s1_support_cannot_change_b_settings_users_or_login_hours(db: Db) {
    let app = TestApp::spawn(db).await;
    let b_admin = app.practice("write-b").await;
    let bob = create_user(&app, "write-b", &b_admin, "bob", "staff").await;
    let bob_id = bob["id"].as_str().unwrap();
    let group = create_group(&app, "write-b", &b_admin, "Nurses").await;
    let root = app.support_token().await;
    let (agent, _) = support_agent(&app, &root, "agent.jones").await;
    let before = snapshot(&app, "write-b", &b_admin, "bob").await;
    let seq_before = before["audit"][0]["seq"].as_i64().unwrap();

    for token in [&agent, &root] {
        for (method, path, body) in admin_paths("write-b", bob_id, "bob", &group) {
            // Reads of the tenant, its users and its audit events are S1's audited
            // exception; every other path of B (its groups included) is hidden from support.
            let readable = method == Method::GET
                && (path.contains("/audit-events")
                    || path.ends_with("/deliveries")
                    || path.ends_with("/users")
                    || path.ends_with(bob_id)
                    || path.ends_with("/bob")
                    || path == "/v1/tenants/write-b");
            if readable {
                continue;
            }
            let r = call(&app, &method, &path, Some(token), &body).await;
            problem(r, StatusCode::NOT_FOUND, "not_found").await;
        }
    }
    // Creating a practice is for support admins only.
    let r = app
        .post(
            "/v1/tenants",
            Some(&agent),
            &json!({"company": "agent-made", "name": "Agent made",
                    "admin": {"username": "x-admin", "first_name": "X", "last_name": "Y",
                              "email": "x@agent-made.example.com", "password": TEMP_PASSWORD}}),
        )
        .await;
    problem(r, StatusCode::FORBIDDEN, "forbidden").await;

    let after = snapshot(&app, "write-b", &b_admin, "bob").await;
    assert_eq!(before["tenant"], after["tenant"]);
    assert_eq!(before["users"], after["users"]);
    assert_eq!(before["hours"], after["hours"]);
    assert_eq!(before["groups"], after["groups"]);
    assert_eq!(after["tenant"]["settings"]["lockout_threshold"], 5);
    assert_eq!(
        after["tenant"]["settings"]["mfa_policy"], "off",
        "the fixture value, unchanged"
    );
    // The log gained nothing but (possibly) support reads: no settings change, no user created.
    let new_actions: Vec<&str> = after["audit"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["seq"].as_i64().unwrap() > seq_before)
        .filter_map(|e| e["action"].as_str())
        .filter(|a| *a != "support.read")
        .collect();
    assert_eq!(new_actions, Vec::<&str>::new());
    let r = app.get("/v1/tenants", Some(&agent)).await;
    let list = ok_json(r).await;
    assert!(!list.to_string().contains("agent-made"));
}

async fn t1_unauthenticated_requests_get_401_with_bearer_challenge(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.practice("anon-a").await;
    let admin_id = ok_json(app.get("/v1/me", Some(&admin)).await).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let group = create_group(&app, "anon-a", &admin, "Nurses").await;
    let before = snapshot(&app, "anon-a", &admin, "anon-a-admin").await;
    // A second session of the same admin, ended: its token is as good as none.
    let ended = app.token("anon-a", "anon-a-admin", NEW_PASSWORD).await;
    let r = app.post("/v1/auth/logout", Some(&ended), &json!({})).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let before_seq = ok_json(
        app.get("/v1/tenants/anon-a/audit-events?limit=1", Some(&admin))
            .await,
    )
    .await["items"][0]["seq"]
        .as_i64()
        .unwrap();

    let mut paths = vec![
        (Method::GET, "/v1/me".to_owned(), Value::Null),
        (Method::GET, "/v1/auth/session".to_owned(), Value::Null),
        (Method::POST, "/v1/auth/logout".to_owned(), json!({})),
        (
            Method::POST,
            "/v1/me/password".to_owned(),
            json!({"current_password": NEW_PASSWORD, "new_password": "Another-Pass-55!x"}),
        ),
        (Method::GET, "/v1/tenants".to_owned(), Value::Null),
        (
            Method::POST,
            "/v1/tenants".to_owned(),
            json!({"company": "anon-made", "name": "Anon", "admin": {"username": "x", "first_name": "X",
                   "last_name": "Y", "email": "x@anon.example.com", "password": TEMP_PASSWORD}}),
        ),
    ];
    paths.extend(admin_paths("anon-a", &admin_id, "anon-a-admin", &group));
    paths.extend(admin_paths(
        "no-such-clinic",
        &admin_id,
        "anon-a-admin",
        &group,
    ));
    for (method, path, body) in &paths {
        for token in [None, Some(ended.as_str())] {
            let r = call(&app, method, path, token, body).await;
            assert_eq!(
                r.headers()
                    .get("www-authenticate")
                    .and_then(|v| v.to_str().ok()),
                Some("Bearer"),
                "{method} {path}"
            );
            problem(r, StatusCode::UNAUTHORIZED, "unauthenticated").await;
        }
    }

    // Nothing changed: settings, users, hours; the only new events are the second sign-in
    // and its logout.
    let after = snapshot(&app, "anon-a", &admin, "anon-a-admin").await;
    assert_eq!(before["tenant"], after["tenant"]);
    assert_eq!(after["users"]["items"].as_array().unwrap().len(), 1);
    assert_eq!(before["hours"], after["hours"]);
    assert_eq!(before["groups"], after["groups"]);
    let late: Vec<&Value> = after["audit"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["seq"].as_i64().unwrap() > before_seq)
        .collect();
    assert_eq!(
        late,
        Vec::<&Value>::new(),
        "no audit events from refused requests"
    );
    // The password was not changed by the unauthenticated request.
    app.token("anon-a", "anon-a-admin", NEW_PASSWORD).await;
}
