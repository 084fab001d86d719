//! The OpenID Connect provider (I1, I2) over HTTP, as an attacker would try it: codes and
//! refresh tokens raced by concurrent requests, clients limited to other practices, a
//! registry only support admins (with step-up) can change, secrets that never reach the
//! database or the audit log, redirects only ever to registered addresses. The whole
//! exchange with stock relying parties (authlib, openid-client) in Chromium is in
//! `services/web/tests/browser/test_oidc_*.py`.

use crate::browser::{Browser, alert, audit_count, rows};
use crate::helpers::{Db, NEW_PASSWORD, TestApp, ok_json, problem};
use crate::mfa_flow::spawn_fixed;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gatehouse_testkit::on_both_databases;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

on_both_databases!(
    i2_only_stepped_up_support_admins_change_clients_and_secrets_are_shown_once,
    i1_authorize_never_redirects_to_an_unregistered_address,
    i1_a_code_raced_by_concurrent_exchanges_is_spent_once_and_the_replay_revokes_it,
    i1_a_refresh_token_raced_or_reused_revokes_its_family_and_sign_out_ends_the_rest,
    i2_a_client_limited_to_one_practice_denies_the_users_of_another,
    i1_signing_keys_rotate_and_stay_published_while_their_tokens_live,
    i1_requests_codes_and_tokens_are_swept_once_nobody_can_use_them,
    i1_single_sign_on_gives_way_to_max_age_acr_values_prompt_and_another_practice,
);

const REDIRECT: &str = "https://ehr.example.com/callback";

/// A registered client: its id and, for a confidential one, its secret.
struct Registered {
    id: String,
    secret: Option<String>,
}

async fn register(app: &TestApp, body: Value) -> Registered {
    let support = app.support_token().await;
    let r = app.post("/v1/oidc/clients", Some(&support), &body).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let c: Value = r.json().await.unwrap();
    Registered {
        id: c["client_id"].as_str().unwrap().to_owned(),
        secret: c["client_secret"].as_str().map(str::to_owned),
    }
}

async fn confidential(app: &TestApp, companies: Value) -> Registered {
    register(
        app,
        json!({"name": "Charts EHR", "type": "confidential", "redirect_uris": [REDIRECT],
               "post_logout_redirect_uris": ["https://ehr.example.com/bye"], "companies": companies}),
    )
    .await
}

/// The body of a 201.
async fn json_created(r: reqwest::Response) -> Value {
    assert_eq!(r.status(), StatusCode::CREATED);
    r.json().await.unwrap()
}

/// A PKCE pair (RFC 7636): a verifier and its S256 challenge.
fn pkce() -> (String, String) {
    let mut raw = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut raw);
    let verifier = URL_SAFE_NO_PAD.encode(raw);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

fn authorize_path(client: &str, challenge: &str, extra: &[(&str, &str)]) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("response_type", "code")
        .append_pair("client_id", client)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("scope", "openid profile email offline_access")
        .append_pair("state", "st-1")
        .append_pair("nonce", "n-1")
        .append_pair("code_challenge", challenge)
        .append_pair("code_challenge_method", "S256");
    for (k, v) in extra {
        q.append_pair(k, v);
    }
    format!("/oauth2/authorize?{}", q.finish())
}

/// The query of a URL as a map.
fn query_of(url: &str) -> HashMap<String, String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The address the "back to the application" page moves on to.
fn refresh_target(html: &str) -> String {
    let at = html.find("content=\"0;url=").expect("a refresh") + "content=\"0;url=".len();
    let end = at + html[at..].find('"').unwrap();
    html[at..end]
        .replace("&#38;", "&")
        .replace("&amp;", "&")
        .replace("&#39;", "'")
}

/// Signs in on the pages for an authorization request (unless the browser's session
/// answers it) and answers where the browser is sent back to (the client's redirect URI
/// with `code` or `error`).
async fn sign_in_for(
    b: &mut Browser<'_>,
    path: &str,
    (company, username, password): (&str, &str, &str),
) -> String {
    let s = b.get(path).await;
    assert_eq!(s.status, StatusCode::SEE_OTHER, "{}", s.html);
    let to = s.headers["location"].to_str().unwrap().to_owned();
    if to != "/signin" {
        // Single sign-on: the browser's session answered at once.
        return to;
    }
    b.follow(&s).await;
    let s = b
        .post(
            "/signin",
            &[
                ("company", company),
                ("username", username),
                ("password", password),
            ],
        )
        .await;
    assert_eq!(s.status, StatusCode::SEE_OTHER, "{}", s.html);
    assert_eq!(s.headers["location"], "/oauth2/resume");
    let s = b.follow(&s).await;
    assert_eq!(s.status, StatusCode::OK, "{}", s.html);
    assert_eq!(s.headers["cache-control"], "no-store");
    refresh_target(&s.html)
}

/// `POST /oauth2/token` as a confidential client (Basic).
async fn token(app: &TestApp, c: &Registered, form: &[(&str, &str)]) -> reqwest::Response {
    app.client
        .post(app.url("/oauth2/token"))
        .basic_auth(&c.id, c.secret.as_deref())
        .form(form)
        .send()
        .await
        .unwrap()
}

async fn exchange(app: &TestApp, c: &Registered, code: &str, verifier: &str) -> reqwest::Response {
    token(
        app,
        c,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ],
    )
    .await
}

async fn oauth_error(r: reqwest::Response, status: StatusCode, code: &str) {
    let got = r.status();
    assert_eq!(r.headers()["cache-control"], "no-store");
    let body: Value = r.json().await.unwrap();
    assert_eq!(got, status, "{body}");
    assert_eq!(body["error"], code, "{body}");
}

async fn userinfo(app: &TestApp, access: &str) -> reqwest::Response {
    app.client
        .get(app.url("/oauth2/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
}

/// The claims of a JWT, read without checking it (the stock clients check).
fn claims(jwt: &str) -> (Value, Value) {
    let mut parts = jwt.split('.');
    let head = URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap();
    let body = URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap();
    (
        serde_json::from_slice(&head).unwrap(),
        serde_json::from_slice(&body).unwrap(),
    )
}

/// How many audit events of `action` the database holds.
async fn events(app: &TestApp, action: &str) -> Vec<Value> {
    use sea_orm::ConnectionTrait;
    let rows = app
        .raw
        .query_all_raw(sea_orm::Statement::from_string(
            app.raw.get_database_backend(),
            format!("SELECT details FROM audit_events WHERE action = '{action}'"),
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|r| serde_json::from_str(&r.try_get::<String>("", "details").unwrap()).unwrap())
        .collect()
}

/// Every text column of the provider's tables and the audit log, concatenated.
async fn stored_text(app: &TestApp) -> String {
    use sea_orm::ConnectionTrait;
    let mut all = String::new();
    for sql in [
        "SELECT client_id || ' ' || COALESCE(secret_hash, '') || ' ' || COALESCE(previous_secret_hash, '') AS t FROM oidc_clients",
        "SELECT code_hash || ' ' || COALESCE(nonce, '') AS t FROM oidc_codes",
        "SELECT token_hash AS t FROM oidc_tokens",
        "SELECT sealed_private || ' ' || public_jwk AS t FROM oidc_keys",
        "SELECT details AS t FROM audit_events",
    ] {
        for r in app
            .raw
            .query_all_raw(sea_orm::Statement::from_string(
                app.raw.get_database_backend(),
                sql,
            ))
            .await
            .unwrap()
        {
            all.push_str(&r.try_get::<String>("", "t").unwrap());
            all.push('\n');
        }
    }
    all
}

/// I2: the registry is the support admins'; a change needs a second factor from the last
/// 15 minutes; a secret is in the answer that made it and nowhere else.
async fn i2_only_stepped_up_support_admins_change_clients_and_secrets_are_shown_once(db: Db) {
    let (app, clock) = spawn_fixed(db).await;
    let admin = app.practice("north").await;
    let body = json!({"name": "Charts EHR", "type": "confidential", "redirect_uris": [REDIRECT]});
    let r = app.post("/v1/oidc/clients", Some(&admin), &body).await;
    problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    let r = app.get("/v1/oidc/clients", Some(&admin)).await;
    problem(r, StatusCode::FORBIDDEN, "forbidden").await;

    let support = app.support_token().await;
    for (bad, field) in [
        (
            json!({"name": "x", "type": "public", "redirect_uris": ["http://ehr.example.com/cb"]}),
            "redirect_uris[0]",
        ),
        (
            json!({"name": "x", "type": "public", "redirect_uris": ["https://ehr.example.com/cb#f"]}),
            "redirect_uris[0]",
        ),
        (
            json!({"name": "x", "type": "public", "redirect_uris": []}),
            "redirect_uris",
        ),
        (
            json!({"name": "x", "type": "public", "redirect_uris": [REDIRECT], "companies": ["nowhere"]}),
            "companies[0]",
        ),
        (
            json!({"name": "", "type": "public", "redirect_uris": [REDIRECT]}),
            "name",
        ),
    ] {
        let r = app.post("/v1/oidc/clients", Some(&support), &bad).await;
        let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert!(
            crate::helpers::error_fields(&p).contains(field),
            "{field}: {p}"
        );
    }

    let r = app
        .post(
            "/v1/oidc/clients",
            Some(&support),
            &json!({"name": "Charts EHR", "type": "confidential", "redirect_uris": [REDIRECT],
                    "companies": ["North"]}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let made: Value = r.json().await.unwrap();
    let id = made["client_id"].as_str().unwrap().to_owned();
    let secret = made["client_secret"].as_str().unwrap().to_owned();
    assert!(secret.len() >= 43, "256 bits");
    assert_eq!(made["companies"], json!(["north"]));
    let shown = ok_json(
        app.get(&format!("/v1/oidc/clients/{id}"), Some(&support))
            .await,
    )
    .await;
    assert!(shown.get("client_secret").is_none(), "{shown}");
    let listed = ok_json(app.get("/v1/oidc/clients", Some(&support)).await).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    let created = events(&app, "oidc_client.created").await;
    assert_eq!(created.len(), 1);
    assert_eq!(created[0]["client_id"], id.as_str());
    assert!(
        !stored_text(&app).await.contains(&secret),
        "the secret is stored"
    );

    // A public client has no secret to rotate.
    let public: Value = json_created(
        app.post(
            "/v1/oidc/clients",
            Some(&support),
            &json!({"name": "Tablet app", "type": "public", "redirect_uris": ["http://127.0.0.1:7000/cb"]}),
        )
        .await,
    )
    .await;
    assert!(public.get("client_secret").is_none());
    let r = app
        .post(
            &format!(
                "/v1/oidc/clients/{}/secret",
                public["client_id"].as_str().unwrap()
            ),
            Some(&support),
            &json!({}),
        )
        .await;
    problem(r, StatusCode::CONFLICT, "conflict").await;

    // Rotation with a grace period: both secrets work until it ends, then only the new.
    let r = app
        .post(
            &format!("/v1/oidc/clients/{id}/secret"),
            Some(&support),
            &json!({"grace_period_seconds": 300}),
        )
        .await;
    let rotated = ok_json(r).await;
    let new_secret = rotated["client_secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, secret);
    let introspect = |s: String| {
        let app = &app;
        let id = id.clone();
        async move {
            app.client
                .post(app.url("/oauth2/introspect"))
                .basic_auth(&id, Some(s))
                .form(&[("token", "nothing-of-ours")])
                .send()
                .await
                .unwrap()
        }
    };
    for s in [secret.clone(), new_secret.clone()] {
        let r = introspect(s).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.json::<Value>().await.unwrap(), json!({"active": false}));
    }
    clock.advance(chrono::Duration::seconds(301));
    oauth_error(
        introspect(secret.clone()).await,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
    )
    .await;
    assert_eq!(
        introspect(new_secret.clone()).await.status(),
        StatusCode::OK
    );

    // Sixteen minutes after the support admin's second factor, changes need it again.
    clock.advance(chrono::Duration::minutes(16));
    let r = app
        .patch(
            &format!("/v1/oidc/clients/{id}"),
            Some(&support),
            &json!({"name": "Renamed"}),
        )
        .await;
    problem(r, StatusCode::FORBIDDEN, "step_up_required").await;
    let r = app
        .send_json(
            reqwest::Method::DELETE,
            &format!("/v1/oidc/clients/{id}"),
            Some(&support),
            &Value::Null,
        )
        .await;
    problem(r, StatusCode::FORBIDDEN, "step_up_required").await;
    // Reads do not.
    assert_eq!(
        app.get(&format!("/v1/oidc/clients/{id}"), Some(&support))
            .await
            .status(),
        StatusCode::OK
    );
    let fresh = {
        let mark = app.outbox_mark();
        let flow = ok_json(
            app.login(
                "operator",
                crate::helpers::SUPPORT_USER,
                crate::helpers::SUPPORT_PASSWORD,
            )
            .await,
        )
        .await;
        app.finish_mfa(&flow, "root@vendor.example.com", mark).await
    };
    let r = app
        .patch(
            &format!("/v1/oidc/clients/{id}"),
            Some(&fresh),
            &json!({"name": "Renamed", "companies": null}),
        )
        .await;
    let changed = ok_json(r).await;
    assert_eq!(changed["name"], "Renamed");
    assert_eq!(changed["companies"], Value::Null);
    let r = app
        .send_json(
            reqwest::Method::DELETE,
            &format!("/v1/oidc/clients/{id}"),
            Some(&fresh),
            &Value::Null,
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = app
        .get(&format!("/v1/oidc/clients/{id}"), Some(&fresh))
        .await;
    problem(r, StatusCode::NOT_FOUND, "not_found").await;
    oauth_error(
        introspect(new_secret).await,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
    )
    .await;
    for action in [
        "oidc_client.updated",
        "oidc_client.deleted",
        "oidc_client.secret_rotated",
    ] {
        assert_eq!(events(&app, action).await.len(), 1, "{action}");
    }
}

/// oidc.md: an unknown client or an unregistered redirect URI is refused on our page,
/// never by a redirect; every other error goes back with `error`, `state` and `iss`.
async fn i1_authorize_never_redirects_to_an_unregistered_address(db: Db) {
    let app = TestApp::spawn(db).await;
    let c = confidential(&app, Value::Null).await;
    let (_, challenge) = pkce();
    let mut b = Browser::new(&app);
    let good = authorize_path(&c.id, &challenge, &[]);
    for bad in [
        good.replace(&c.id, "nobody"),
        good.replace("callback", "callback%2F..%2Fevil"),
        good.replace("callback", "callback%3Fx%3D1"),
        good.replace(
            "https%3A%2F%2Fehr.example.com",
            "https%3A%2F%2Fevil.example",
        ),
        good.replace("&redirect_uri=https%3A%2F%2Fehr.example.com%2Fcallback", ""),
    ] {
        let s = b.get(&bad).await;
        assert_eq!(s.status, StatusCode::BAD_REQUEST, "{bad}: {}", s.html);
        assert!(!s.headers.contains_key("location"), "{bad}");
        assert!(alert(&s.html).is_some(), "{bad}");
        assert!(!s.html.contains("evil"), "the page echoes the address");
        assert!(
            s.headers["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'")
        );
    }
    let iss = app.public_origin.clone();
    for (path, error) in [
        (
            good.replace("code_challenge_method=S256", "code_challenge_method=plain"),
            "invalid_request",
        ),
        (good.replace("&code_challenge=", "&x="), "invalid_request"),
        (
            good.replace("response_type=code", "response_type=token"),
            "unsupported_response_type",
        ),
        (good.replace("scope=openid+", "scope="), "invalid_scope"),
        (format!("{good}&prompt=none"), "login_required"),
        (format!("{good}&max_age=soon"), "invalid_request"),
    ] {
        let s = b.get(&path).await;
        assert_eq!(s.status, StatusCode::SEE_OTHER, "{path}");
        let to = s.headers["location"].to_str().unwrap();
        assert!(to.starts_with(&format!("{REDIRECT}?")), "{to}");
        let q = query_of(to);
        assert_eq!(q["error"], error, "{path}");
        assert_eq!(q["state"], "st-1");
        assert_eq!(q["iss"], iss);
        assert!(!q.contains_key("code"));
    }
}

/// Signs the practice admin of `north` (password only) in for client `c`; answers the
/// code and the verifier.
async fn code_for(b: &mut Browser<'_>, c: &Registered, extra: &[(&str, &str)]) -> (String, String) {
    let (verifier, challenge) = pkce();
    let path = authorize_path(&c.id, &challenge, extra);
    let back = sign_in_for(b, &path, ("north", "north-admin", NEW_PASSWORD)).await;
    let q = query_of(&back);
    assert_eq!(q.get("state").map(String::as_str), Some("st-1"), "{back}");
    assert_eq!(q["iss"], b.app.public_origin);
    (q["code"].clone(), verifier)
}

/// A code is spent by the first of eight concurrent exchanges; the other seven are
/// refused, and a second use revokes what the first issued (oidc.md). Nothing of the
/// code or the tokens is stored in the clear.
async fn i1_a_code_raced_by_concurrent_exchanges_is_spent_once_and_the_replay_revokes_it(db: Db) {
    let app = TestApp::spawn(db).await;
    app.practice("north").await;
    let c = confidential(&app, Value::Null).await;
    let mut b = Browser::new(&app);
    let (code, verifier) = code_for(&mut b, &c, &[]).await;

    // The wrong verifier spends the code too.
    let (code2, _) = code_for(&mut b, &c, &[]).await;
    oauth_error(
        exchange(&app, &c, &code2, &pkce().0).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;

    let race = (0..8).map(|_| exchange(&app, &c, &code, &verifier));
    let answers = futures_util::future::join_all(race).await;
    let mut won = Vec::new();
    let mut refused = 0;
    for r in answers {
        match r.status() {
            StatusCode::OK => won.push(r.json::<Value>().await.unwrap()),
            StatusCode::BAD_REQUEST => {
                assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_grant");
                refused += 1;
            }
            other => panic!("{other}"),
        }
    }
    assert_eq!((won.len(), refused), (1, 7));
    let t = &won[0];
    assert_eq!(t["token_type"], "Bearer");
    let (head, id) = claims(t["id_token"].as_str().unwrap());
    assert_eq!(head["alg"], "ES256");
    assert_eq!(id["aud"], c.id.as_str());
    assert_eq!(id["nonce"], "n-1");
    assert_eq!(id["company"], "north");
    assert_eq!(id["amr"], json!(["pwd"]));
    assert_eq!(id["acr"], "urn:gatehouse:acr:pwd");
    // The replays revoked the winner's tokens.
    let access = t["access_token"].as_str().unwrap();
    assert_eq!(
        userinfo(&app, access).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let refresh = t["refresh_token"].as_str().unwrap();
    oauth_error(
        token(
            &app,
            &c,
            &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
    let replays = events(&app, "oidc.replay_detected").await;
    assert!(!replays.is_empty());
    assert!(
        replays.iter().any(|e| e["revoked"].as_u64() == Some(2)),
        "{replays:?}"
    );

    // Another client cannot use a code issued to this one, nor this one without its secret.
    let other = confidential(&app, Value::Null).await;
    let (code3, verifier3) = code_for(&mut b, &c, &[]).await;
    oauth_error(
        exchange(&app, &other, &code3, &verifier3).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
    let (code4, verifier4) = code_for(&mut b, &c, &[]).await;
    let thief = Registered {
        id: c.id.clone(),
        secret: Some("guessed".into()),
    };
    oauth_error(
        exchange(&app, &thief, &code4, &verifier4).await,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
    )
    .await;
    let t = ok_json(exchange(&app, &c, &code4, &verifier4).await).await;

    let stored = stored_text(&app).await;
    for secret in [
        code.as_str(),
        code4.as_str(),
        t["access_token"].as_str().unwrap(),
        t["refresh_token"].as_str().unwrap(),
        c.secret.as_deref().unwrap(),
    ] {
        assert!(!stored.contains(secret), "stored in the clear: {secret}");
    }
}

/// Refresh tokens rotate; of concurrent uses of one only one can win and the others
/// revoke the family (the winner's new token too); signing out ends what is left.
async fn i1_a_refresh_token_raced_or_reused_revokes_its_family_and_sign_out_ends_the_rest(db: Db) {
    let app = TestApp::spawn(db).await;
    app.practice("north").await;
    let c = confidential(&app, Value::Null).await;
    let mut b = Browser::new(&app);
    let (code, verifier) = code_for(&mut b, &c, &[]).await;
    let t = ok_json(exchange(&app, &c, &code, &verifier).await).await;
    let first = t["refresh_token"].as_str().unwrap().to_owned();

    let refresh = |rt: String| {
        let app = &app;
        let c = &c;
        async move {
            token(
                app,
                c,
                &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
            )
            .await
        }
    };
    let t2 = ok_json(refresh(first.clone()).await).await;
    let second = t2["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second, first);
    let (_, id2) = claims(t2["id_token"].as_str().unwrap());
    assert!(
        id2.get("nonce").is_none(),
        "no nonce on a refreshed ID token"
    );
    let info = ok_json(userinfo(&app, t2["access_token"].as_str().unwrap()).await).await;
    assert_eq!(info["sub"], id2["sub"]);
    assert_eq!(info["preferred_username"], "north-admin");
    assert_eq!(info["company"], "north");

    // Four at once with the same token: at most one wins, and the family is gone after.
    let answers = futures_util::future::join_all((0..4).map(|_| refresh(second.clone()))).await;
    let mut newest = Vec::new();
    for r in answers {
        if r.status() == StatusCode::OK {
            newest.push(
                r.json::<Value>().await.unwrap()["refresh_token"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
        } else {
            oauth_error(r, StatusCode::BAD_REQUEST, "invalid_grant").await;
        }
    }
    assert!(newest.len() <= 1, "{newest:?}");
    for rt in newest.into_iter().chain([first, second]) {
        oauth_error(refresh(rt).await, StatusCode::BAD_REQUEST, "invalid_grant").await;
    }
    assert!(!events(&app, "oidc.replay_detected").await.is_empty());

    // A new family from the same browser session (single sign-on: no page at all).
    let (verifier, challenge) = pkce();
    let s = b.get(&authorize_path(&c.id, &challenge, &[])).await;
    assert_eq!(s.status, StatusCode::SEE_OTHER);
    let q = query_of(s.headers["location"].to_str().unwrap());
    let t3 = ok_json(exchange(&app, &c, &q["code"], &verifier).await).await;
    let (_, id3) = claims(t3["id_token"].as_str().unwrap());
    assert_eq!(id3["sid"], id2["sid"], "the same browser session");
    assert_eq!(id3["auth_time"], id2["auth_time"]);
    let authorized = events(&app, "oidc.authorized").await;
    assert_eq!(authorized.last().unwrap()["sso"], true);

    // Signing out on the API with the browser's session ends the tokens of every client.
    let session = b.jar["__Host-gatehouse"].clone();
    let before = audit_count(&app).await;
    let r = app
        .post("/v1/auth/logout", Some(&session), &json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(audit_count(&app).await > before);
    assert_eq!(
        userinfo(&app, t3["access_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    oauth_error(
        refresh(t3["refresh_token"].as_str().unwrap().to_owned()).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
    // And the next request of any client must sign in again.
    let (_, challenge) = pkce();
    let s = b
        .get(&authorize_path(&c.id, &challenge, &[("prompt", "none")]))
        .await;
    assert_eq!(
        query_of(s.headers["location"].to_str().unwrap())["error"],
        "login_required"
    );
}

/// I2: a client limited to `north` never gets a code for a user of `south`; the refusal
/// is the protocol's `access_denied`, in `south`'s own audit log.
async fn i2_a_client_limited_to_one_practice_denies_the_users_of_another(db: Db) {
    let app = TestApp::spawn(db).await;
    app.practice("north").await;
    app.practice("south").await;
    let c = confidential(&app, json!(["north"])).await;
    let mut b = Browser::new(&app);
    let (_, challenge) = pkce();
    let path = authorize_path(&c.id, &challenge, &[("company", "south")]);
    let s = b.get(&path).await;
    let s = b.follow(&s).await;
    assert_eq!(
        crate::browser::field_value(&s.html, "company").as_deref(),
        Some("south"),
        "the company parameter fills the page"
    );
    let back = sign_in_for(&mut b, &path, ("south", "south-admin", NEW_PASSWORD)).await;
    let q = query_of(&back);
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["state"], "st-1");
    assert!(!q.contains_key("code"));
    let denied = events(&app, "oidc.denied").await;
    assert_eq!(denied.len(), 1);
    assert_eq!(denied[0]["client_id"], c.id.as_str());
    // The same browser, now signed in to south, asks again: denied without a page.
    let s = b.get(&path).await;
    assert_eq!(
        query_of(s.headers["location"].to_str().unwrap())["error"],
        "access_denied"
    );
    // A user of north (another browser) gets a code.
    let mut nb = Browser::new(&app);
    let (code, verifier) = code_for(&mut nb, &c, &[]).await;
    let t = ok_json(exchange(&app, &c, &code, &verifier).await).await;
    assert_eq!(
        claims(t["id_token"].as_str().unwrap()).1["company"],
        "north"
    );
}

/// oidc.md "Keys": the first key is made at start; a rotation publishes the new key at
/// once and signs with it only after `publish_for`; the old key stays published (an ID
/// token it signed still names a logout) until its tokens have expired.
async fn i1_signing_keys_rotate_and_stay_published_while_their_tokens_live(db: Db) {
    let app = TestApp::spawn(db).await;
    app.practice("north").await;
    let c = confidential(&app, Value::Null).await;
    let kids = |jwks: Value| -> Vec<String> {
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| {
                assert_eq!(k["kty"], "EC");
                assert_eq!(k["crv"], "P-256");
                assert!(k.get("d").is_none(), "a private part is published");
                k["kid"].as_str().unwrap().to_owned()
            })
            .collect()
    };
    let first = kids(ok_json(app.get("/oauth2/jwks", None).await).await);
    assert_eq!(first.len(), 1);
    let mut b = Browser::new(&app);
    let (code, verifier) = code_for(&mut b, &c, &[]).await;
    let old = ok_json(exchange(&app, &c, &code, &verifier).await).await;
    let old_id = old["id_token"].as_str().unwrap().to_owned();
    assert_eq!(claims(&old_id).0["kid"], first[0].as_str());

    // Published for a day before it signs: the ID tokens keep the old key.
    let pending = app
        .app
        .oidc("")
        .rotate_key(chrono::Duration::hours(24))
        .await
        .unwrap();
    let both = kids(ok_json(app.get("/oauth2/jwks", None).await).await);
    assert_eq!(both, vec![first[0].clone(), pending.clone()]);
    let (code, verifier) = code_for(&mut b, &c, &[]).await;
    let t = ok_json(exchange(&app, &c, &code, &verifier).await).await;
    assert_eq!(
        claims(t["id_token"].as_str().unwrap()).0["kid"],
        first[0].as_str()
    );

    // Signing at once: the new key signs, the old ones stay published.
    let now = app
        .app
        .oidc("")
        .rotate_key(chrono::Duration::zero())
        .await
        .unwrap();
    let all = kids(ok_json(app.get("/oauth2/jwks", None).await).await);
    assert_eq!(all.len(), 3);
    assert!(all.contains(&first[0]) && all.contains(&now));
    let (code, verifier) = code_for(&mut b, &c, &[]).await;
    let t = ok_json(exchange(&app, &c, &code, &verifier).await).await;
    assert_eq!(
        claims(t["id_token"].as_str().unwrap()).0["kid"],
        now.as_str()
    );

    // An ID token signed by the old key still names a logout.
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("id_token_hint", &old_id)
        .append_pair("post_logout_redirect_uri", "https://ehr.example.com/bye")
        .append_pair("state", "bye-1");
    let s = b.get(&format!("/oauth2/logout?{}", q.finish())).await;
    assert_eq!(s.status, StatusCode::SEE_OTHER, "{}", s.html);
    assert_eq!(
        s.headers["location"],
        "https://ehr.example.com/bye?state=bye-1"
    );
    assert!(!b.has("__Host-gatehouse"), "the browser session ended");
    assert_eq!(
        userinfo(&app, t["access_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    // A forged hint (another key) is refused on our page.
    let forged = format!("{}x", &old_id[..old_id.len() - 1]);
    let s = b
        .get(&format!(
            "/oauth2/logout?id_token_hint={forged}&post_logout_redirect_uri=https%3A%2F%2Fehr.example.com%2Fbye"
        ))
        .await;
    assert_eq!(s.status, StatusCode::BAD_REQUEST);
    assert!(!s.headers.contains_key("location"));
    // Nothing of a key's private half is in the database unsealed.
    let sealed = stored_text(&app).await;
    assert!(sealed.contains("v1."), "sealed with the secret key");
    assert!(!sealed.contains("\"d\""), "a private JWK member is stored");
}

/// `serve` sweeps the provider's tables: a request, a code, a token goes once nobody can
/// use it any more, and not before (a spent refresh token stays while its family may
/// live, so that its reuse is still recognised).
async fn i1_requests_codes_and_tokens_are_swept_once_nobody_can_use_them(db: Db) {
    let (app, clock) = spawn_fixed(db).await;
    app.practice("north").await;
    let c = confidential(&app, Value::Null).await;
    let mut b = Browser::new(&app);
    let (code, verifier) = code_for(&mut b, &c, &[]).await;
    let t = ok_json(exchange(&app, &c, &code, &verifier).await).await;
    // A code never exchanged, and a request nobody signs in for.
    code_for(&mut b, &c, &[]).await;
    let (_, challenge) = pkce();
    let s = Browser::new(&app)
        .get(&authorize_path(&c.id, &challenge, &[]))
        .await;
    assert_eq!(s.headers["location"], "/signin");
    let sweep = || async { app.app.oidc("").sweep().await.unwrap() };
    assert_eq!(
        (
            rows(&app, "oidc_requests").await,
            rows(&app, "oidc_codes").await,
            rows(&app, "oidc_tokens").await
        ),
        (1, 2, 2)
    );
    assert_eq!(sweep().await, 0, "everything is still live");

    clock.advance(chrono::Duration::seconds(61));
    assert_eq!(sweep().await, 2, "the codes lived 60 s");
    let refresh = t["refresh_token"].as_str().unwrap();
    let refreshed = ok_json(
        token(
            &app,
            &c,
            &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        )
        .await,
    )
    .await;
    clock.advance(chrono::Duration::minutes(30));
    assert_eq!(sweep().await, 1, "the request waited 30 minutes");
    assert_eq!(
        rows(&app, "oidc_tokens").await,
        4,
        "spent and expired tokens are kept a day"
    );
    // The spent refresh token is still recognised: its reuse ends the family.
    oauth_error(
        token(
            &app,
            &c,
            &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
    oauth_error(
        token(
            &app,
            &c,
            &[
                ("grant_type", "refresh_token"),
                (
                    "refresh_token",
                    refreshed["refresh_token"].as_str().unwrap(),
                ),
            ],
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;

    // A day after the family's end (the session's 12 hours), nothing is left.
    clock.advance(chrono::Duration::hours(12) + chrono::Duration::days(1));
    assert_eq!(sweep().await, 4);
    assert_eq!(
        (
            rows(&app, "oidc_requests").await,
            rows(&app, "oidc_codes").await,
            rows(&app, "oidc_tokens").await
        ),
        (0, 0, 0)
    );
}

/// oidc.md "Browser session and single sign-on": the session answers a second request
/// without a page, unless the request asks for more than it proved: a `max_age` that has
/// passed, a second factor (`acr_values`), `prompt=login`, or another practice.
async fn i1_single_sign_on_gives_way_to_max_age_acr_values_prompt_and_another_practice(db: Db) {
    let (app, clock) = spawn_fixed(db).await;
    app.practice("north").await;
    let c = confidential(&app, Value::Null).await;
    let mut b = Browser::new(&app);
    let (code, verifier) = code_for(&mut b, &c, &[]).await;
    let first = ok_json(exchange(&app, &c, &code, &verifier).await).await;
    let auth_time = claims(first["id_token"].as_str().unwrap()).1["auth_time"].clone();
    clock.advance(chrono::Duration::minutes(10));

    let (_, challenge) = pkce();
    let asks_again = [
        vec![("max_age", "300")],
        vec![("acr_values", "urn:gatehouse:acr:mfa")],
        vec![("prompt", "login")],
        vec![("company", "south")],
    ];
    for extra in &asks_again {
        let s = b.get(&authorize_path(&c.id, &challenge, extra)).await;
        assert_eq!(s.headers["location"], "/signin", "{extra:?}");
        // ... and the sign-in page then asks, though the browser has a session.
        let page = b.follow(&s).await;
        assert!(page.html.contains(">Password</label>"), "{extra:?}");
    }
    let answers = [
        vec![("max_age", "3600")],
        vec![("acr_values", "urn:gatehouse:acr:pwd")],
        vec![("company", "North")],
        vec![("login_hint", "north/north-admin")],
    ];
    for extra in &answers {
        let (verifier, challenge) = pkce();
        let s = b.get(&authorize_path(&c.id, &challenge, extra)).await;
        let to = s.headers["location"].to_str().unwrap().to_owned();
        assert!(to.starts_with(REDIRECT), "{extra:?}: {to}");
        let t = ok_json(exchange(&app, &c, &query_of(&to)["code"], &verifier).await).await;
        assert_eq!(
            claims(t["id_token"].as_str().unwrap()).1["auth_time"],
            auth_time
        );
    }
    // max_age=300 signed in again: the new ID token's auth_time is the new sign-in's, and
    // the session the browser held before is over (one browser, one session).
    let old_session = b.jar["__Host-gatehouse"].clone();
    assert_eq!(
        app.get("/v1/auth/session", Some(&old_session))
            .await
            .status(),
        StatusCode::OK
    );
    let (verifier, challenge) = pkce();
    let path = authorize_path(&c.id, &challenge, &[("max_age", "300")]);
    let back = sign_in_for(&mut b, &path, ("north", "north-admin", NEW_PASSWORD)).await;
    let t = ok_json(exchange(&app, &c, &query_of(&back)["code"], &verifier).await).await;
    let again = claims(t["id_token"].as_str().unwrap()).1["auth_time"]
        .as_i64()
        .unwrap();
    assert_eq!(again - auth_time.as_i64().unwrap(), 600);
    assert_ne!(b.jar["__Host-gatehouse"], old_session);
    assert_eq!(
        app.get("/v1/auth/session", Some(&old_session))
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let new_session = b.jar["__Host-gatehouse"].clone();
    assert_eq!(
        app.get("/v1/auth/session", Some(&new_session))
            .await
            .status(),
        StatusCode::OK
    );
}
