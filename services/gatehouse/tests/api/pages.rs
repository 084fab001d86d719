//! The sign-in pages (W1, W2) and their browser security, driven over HTTP the way a
//! browser without JavaScript drives them: form posts, cookies, redirects by hand.
//! The real browser (Chromium) runs the same steps in `tests/browser/`.

use crate::browser::{Browser, alert, audit_count, field_value};
use crate::helpers::{Db, NEW_PASSWORD, Options, TestApp, base32_decode, independent_totp};
use gatehouse_domain::clock::FixedClock;
use gatehouse_testkit::on_both_databases;
use reqwest::StatusCode;
use std::sync::Arc;

on_both_databases!(
    w1_first_sign_in_changes_the_password_enrolls_email_and_signs_out,
    w1_authenticator_enrollment_shows_a_key_that_an_independent_totp_reads,
    w1_refusals_are_words_and_the_same_for_unknown_company_user_and_password,
    w1_remember_this_computer_is_per_user_on_a_shared_browser,
    w2_my_account_asks_step_up_in_place_then_changes_contact_method_and_computers,
    csrf_cross_site_posts_and_foreign_tokens_change_nothing,
    every_page_carries_the_security_headers,
);

/// The first 6-digit code in the newest outbox message to `to`.
async fn code_to(app: &TestApp, mark: usize, to: &str) -> String {
    app.code_after(mark, to).await
}

/// W1.1-W1.3, W1.5, W1.7 and W2's sign out: a new admin's first sign-in, on the pages.
async fn w1_first_sign_in_changes_the_password_enrolls_email_and_signs_out(db: Db) {
    let app = TestApp::spawn(db).await;
    let support = app.support_token().await;
    let (admin, temp) = app.provision(&support, "north-clinic").await;
    let mut b = Browser::new(&app);

    let s = b.get("/signin?company=north-clinic").await;
    assert_eq!(s.status, StatusCode::OK);
    assert_eq!(
        field_value(&s.html, "company").as_deref(),
        Some("north-clinic")
    );
    for label in ["Company", "User ID", "Password"] {
        assert!(s.html.contains(&format!(">{label}</label>")), "{label}");
    }

    let s = b
        .post(
            "/signin",
            &[
                ("company", "north-clinic"),
                ("username", &admin),
                ("password", &temp),
            ],
        )
        .await;
    assert_eq!(s.status, StatusCode::OK, "{}", s.html);
    assert!(s.html.contains("Change your password"), "{}", s.html);
    assert!(
        s.html.contains("At least 12 characters"),
        "the rules come first"
    );
    assert!(b.has("__Host-gatehouse-flow"));
    assert!(!b.has("__Host-gatehouse"), "no session before the change");

    // The two fields differ: nothing changes, the reason is said.
    let s = b
        .post(
            "/signin/password",
            &[
                ("new_password", NEW_PASSWORD),
                ("confirm_password", "Another-One-2026!"),
            ],
        )
        .await;
    assert_eq!(s.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        alert(&s.html).as_deref(),
        Some("The two new passwords are not the same.")
    );
    // A weak password: every broken rule is named.
    let s = b
        .post(
            "/signin/password",
            &[("new_password", "short"), ("confirm_password", "short")],
        )
        .await;
    assert_eq!(s.status, StatusCode::UNPROCESSABLE_ENTITY);
    let a = alert(&s.html).unwrap();
    assert!(
        a.contains("at least 12 characters") && a.contains("digit"),
        "{a}"
    );

    let s = b
        .post(
            "/signin/password",
            &[
                ("new_password", NEW_PASSWORD),
                ("confirm_password", NEW_PASSWORD),
            ],
        )
        .await;
    assert_eq!(s.status, StatusCode::OK, "{}", s.html);
    assert!(s.html.contains("Set up a second factor"), "{}", s.html);
    for label in ["Authenticator app", "Email", "Text message"] {
        assert!(
            s.html.contains(&format!(">{label}</button>")),
            "{label}: {}",
            s.html
        );
    }

    let s = b.post("/signin/enroll", &[("method", "email")]).await;
    assert!(s.html.contains(">Email address</label>"), "{}", s.html);
    let mark = app.outbox_mark();
    let email = "admin@north-clinic.example.com";
    let s = b
        .post(
            "/signin/enroll/contact",
            &[("channel", "email"), ("destination", email)],
        )
        .await;
    assert_eq!(s.status, StatusCode::ACCEPTED, "{}", s.html);
    let code = code_to(&app, mark, email).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let s = b
        .post(
            "/signin/enroll/contact/confirm",
            &[("channel", "email"), ("code", wrong)],
        )
        .await;
    assert_eq!(s.status, StatusCode::BAD_REQUEST);
    assert!(alert(&s.html).unwrap().contains("tries left"), "{}", s.html);
    let s = b
        .post(
            "/signin/enroll/contact/confirm",
            &[("channel", "email"), ("code", &code)],
        )
        .await;
    assert_eq!(s.status, StatusCode::SEE_OTHER, "{}", s.html);
    assert!(b.has("__Host-gatehouse"), "the session cookie is set");
    assert!(!b.has("__Host-gatehouse-flow"), "the flow is over");
    let session = b.jar["__Host-gatehouse"].clone();

    let s = b.follow(&s).await;
    assert_eq!(s.status, StatusCode::OK);
    assert!(s.html.contains("<h1>My account</h1>"), "{}", s.html);
    assert!(s.html.contains("Email codes"));
    // It is the API's own session.
    let r = app.get("/v1/auth/session", Some(&session)).await;
    assert_eq!(r.status(), StatusCode::OK);

    let s = b.post("/signout", &[]).await;
    assert_eq!(s.status, StatusCode::OK);
    assert!(s.html.contains("You are signed out."));
    assert!(!b.has("__Host-gatehouse"));
    let r = app.get("/v1/auth/session", Some(&session)).await;
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "signing out ends the session"
    );
    let s = b.get("/account").await;
    assert_eq!(s.status, StatusCode::SEE_OTHER);
}

/// W1.5-W1.6: the QR page's manual key works in an authenticator written here; the
/// recovery codes are shown once, never cached.
async fn w1_authenticator_enrollment_shows_a_key_that_an_independent_totp_reads(db: Db) {
    let app = TestApp::spawn(db).await;
    let support = app.support_token().await;
    let (admin, temp) = app.provision(&support, "east-clinic").await;
    let mut b = Browser::new(&app);
    b.get("/signin").await;
    b.post(
        "/signin",
        &[
            ("company", "east-clinic"),
            ("username", &admin),
            ("password", &temp),
        ],
    )
    .await;
    b.post(
        "/signin/password",
        &[
            ("new_password", NEW_PASSWORD),
            ("confirm_password", NEW_PASSWORD),
        ],
    )
    .await;
    let s = b.post("/signin/enroll", &[("method", "totp")]).await;
    assert_eq!(
        field_value(&s.html, "label").as_deref(),
        Some(admin.as_str())
    );
    let s = b
        .post("/signin/enroll/totp", &[("label", "Front desk phone")])
        .await;
    assert_eq!(s.status, StatusCode::OK, "{}", s.html);
    assert_eq!(s.headers["cache-control"], "no-store");
    assert!(
        s.html
            .contains("alt=\"QR code for your authenticator app\"")
    );
    assert!(s.html.contains("src=\"data:image/png;base64,"));
    let at = s
        .html
        .find("aria-label=\"Manual entry key\"")
        .expect("the key");
    let start = at + s.html[at..].find("<code>").unwrap() + "<code>".len();
    let end = start + s.html[start..].find("</code>").unwrap();
    let key = s.html[start..end].to_owned();
    let secret = base32_decode(&key);
    let code = independent_totp(&secret, app.now().timestamp() as u64);

    let s = b
        .post("/signin/enroll/totp/confirm", &[("code", &code)])
        .await;
    assert_eq!(s.status, StatusCode::OK, "{}", s.html);
    assert_eq!(s.headers["cache-control"], "no-store");
    assert!(s.html.contains("aria-label=\"Recovery codes\""));
    let codes = s.html.matches("<li><code>").count();
    assert_eq!(codes, 5, "{}", s.html);
    assert!(s.html.contains(">Download</a>") && s.html.contains(">Print</button>"));
    assert!(b.has("__Host-gatehouse"));
    let s = b.post("/signin/continue", &[("saved", "on")]).await;
    let s = b.follow(&s).await;
    assert!(s.html.contains("Authenticator app"), "{}", s.html);
    assert!(
        s.html.contains("<dd>5</dd>"),
        "5 recovery codes left: {}",
        s.html
    );
    // Drawn once: the page is not there to come back to.
    let s = b.get("/signin").await;
    assert_eq!(s.status, StatusCode::SEE_OTHER, "signed in: to my account");
}

/// W1.1: the same words whatever was wrong; a lock, login hours and a suspended
/// practice each say what to do.
async fn w1_refusals_are_words_and_the_same_for_unknown_company_user_and_password(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.practice("west-clinic").await;
    let mut b = Browser::new(&app);
    b.get("/signin").await;
    let mut seen = Vec::new();
    for (company, user, pw) in [
        ("nowhere-clinic", "west-clinic-admin", NEW_PASSWORD),
        ("west-clinic", "nobody", NEW_PASSWORD),
        ("west-clinic", "west-clinic-admin", "Wrong-Password-99!"),
    ] {
        let s = b
            .post(
                "/signin",
                &[("company", company), ("username", user), ("password", pw)],
            )
            .await;
        assert_eq!(s.status, StatusCode::UNAUTHORIZED);
        assert!(!b.has("__Host-gatehouse-flow"));
        seen.push(alert(&s.html).expect("an alert"));
    }
    assert!(seen.iter().all(|a| *a == seen[0]), "{seen:?}");
    assert_eq!(
        seen[0],
        "The company, user ID or password is not right. Check them and try again."
    );

    // Login hours: when, in the practice's time zone (New York, the default): one
    // window on a day that is not today there.
    app.staff("west-clinic", &admin, "worker").await;
    let day = (app.now().with_timezone(&chrono_tz::America::New_York) + chrono::Duration::days(2))
        .format("%A")
        .to_string();
    let r = app
        .put(
            "/v1/tenants/west-clinic/users/worker/login-hours",
            Some(&admin),
            &serde_json::json!([{"weekday": day.to_lowercase(), "start": "09:00", "end": "10:00"}]),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let s = b
        .post(
            "/signin",
            &[
                ("company", "west-clinic"),
                ("username", "worker"),
                ("password", NEW_PASSWORD),
            ],
        )
        .await;
    assert_eq!(s.status, StatusCode::FORBIDDEN);
    let a = alert(&s.html).unwrap();
    assert!(a.contains(&format!("{day} 09:00 to 10:00")), "{a}");
    assert!(a.contains("America/New_York"), "{a}");
    assert!(a.contains("time zone"), "{a}");
}

/// "Remember this computer" remembers it for the user who ticked it, not for the next
/// person on the same browser.
async fn w1_remember_this_computer_is_per_user_on_a_shared_browser(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.mfa_practice("south-clinic").await;
    // Two staff; each replaces the temporary password and enrolls email codes (API).
    for who in ["amy", "ben"] {
        let temp = "Temporary-Pass-1234!";
        let r = app
            .post(
                "/v1/tenants/south-clinic/users",
                Some(&admin),
                &serde_json::json!({"username": who, "first_name": who, "last_name": "Staff",
                    "role": "staff", "password": temp}),
            )
            .await;
        assert_eq!(
            r.status(),
            StatusCode::CREATED,
            "{}",
            r.text().await.unwrap()
        );
        app.finish_password_change("south-clinic", who, temp, NEW_PASSWORD)
            .await;
    }
    let mut b = Browser::new(&app);
    // Signs `who` in on the shared browser; answers whether a code was asked.
    async fn sign_in(b: &mut Browser<'_>, who: &str, remember: bool) -> bool {
        b.get("/signin").await;
        let mark = b.app.outbox_mark();
        let s = b
            .post(
                "/signin",
                &[
                    ("company", "south-clinic"),
                    ("username", who),
                    ("password", NEW_PASSWORD),
                ],
            )
            .await;
        if s.status == StatusCode::SEE_OTHER {
            let s = b.follow(&s).await;
            assert!(s.html.contains("My account"), "{}", s.html);
            b.post("/signout", &[]).await;
            return false;
        }
        let s = {
            assert!(s.html.contains("Remember this computer for"), "{}", s.html);
            assert!(s.html.contains("Time Left"), "{}", s.html);
            // Drawn again (a reload), the step still shows the open code's countdown.
            let again = b.get("/signin").await;
            assert!(again.html.contains("Time Left"), "{}", again.html);
            assert!(again.html.contains("by email to"), "{}", again.html);
            let to = format!("{who}@south-clinic.example.com");
            let code = b.app.code_after(mark, &to).await;
            let mut fields = vec![
                ("method", "code"),
                ("channel", "email"),
                ("code", code.as_str()),
            ];
            if remember {
                fields.push(("remember", "on"));
            }
            b.post("/signin/verify", &fields).await
        };
        assert_eq!(s.status, StatusCode::SEE_OTHER, "{}", s.html);
        b.follow(&s).await;
        b.post("/signout", &[]).await;
        true
    }
    // Each is asked a code; amy ticks "remember".
    assert!(sign_in(&mut b, "ben", false).await);
    assert!(sign_in(&mut b, "amy", true).await);
    assert!(!sign_in(&mut b, "amy", false).await, "amy is remembered");
    assert!(sign_in(&mut b, "ben", false).await, "ben is not");
    assert!(!sign_in(&mut b, "amy", false).await, "amy still is");
}

/// W2: a change that needs a recent second factor asks for it on the page itself; then
/// a new mobile number is proven, becomes the method, and remembered computers go.
async fn w2_my_account_asks_step_up_in_place_then_changes_contact_method_and_computers(db: Db) {
    let clock = Arc::new(FixedClock::new(chrono::Utc::now()));
    let opts = Options {
        clock: Some(clock.clone()),
        ..Options::default()
    };
    let app = TestApp::spawn_with(db, opts).await;
    app.mfa_practice("acct-clinic").await;
    let email = "admin@acct-clinic.example.com";
    let mut b = Browser::new(&app);
    b.get("/signin").await;
    let mark = app.outbox_mark();
    let who = [
        ("company", "acct-clinic"),
        ("username", "acct-clinic-admin"),
        ("password", NEW_PASSWORD),
    ];
    b.post("/signin", &who).await;
    let code = app.code_after(mark, email).await;
    let s = b
        .post(
            "/signin/verify",
            &[
                ("method", "code"),
                ("channel", "email"),
                ("code", &code),
                ("remember", "on"),
            ],
        )
        .await;
    let s = b.follow(&s).await;
    assert!(s.html.contains("Email codes"), "{}", s.html);
    assert!(
        s.html.contains(">Forget</button>"),
        "one remembered computer: {}",
        s.html
    );

    // 16 minutes later the sign-in's second factor no longer counts for changes.
    clock.advance(chrono::Duration::minutes(16));
    let phone = "+12025550188";
    let s = b
        .post("/account/contact", &[("channel", "sms"), ("value", phone)])
        .await;
    assert_eq!(s.status, StatusCode::FORBIDDEN, "{}", s.html);
    assert!(s.html.contains("Confirm it's you"), "{}", s.html);
    assert!(
        alert(&s.html)
            .unwrap()
            .contains("then make the change again")
    );
    let mark = app.outbox_mark();
    let s = b
        .post("/account/step-up/code", &[("channel", "email")])
        .await;
    assert_eq!(s.status, StatusCode::ACCEPTED, "{}", s.html);
    let code = app.code_after(mark, email).await;
    let s = b
        .post("/account/step-up", &[("method", "code"), ("code", &code)])
        .await;
    assert_eq!(s.status, StatusCode::OK, "{}", s.html);
    assert!(s.html.contains("role=\"status\""), "{}", s.html);

    // Codes of one session are 30 s apart: the step-up code was one.
    clock.advance(chrono::Duration::seconds(31));
    let mark = app.outbox_mark();
    let s = b
        .post("/account/contact", &[("channel", "sms"), ("value", phone)])
        .await;
    assert_eq!(s.status, StatusCode::ACCEPTED, "{}", s.html);
    let code = app.code_after(mark, phone).await;
    let s = b
        .post(
            "/account/contact/verify",
            &[("channel", "sms"), ("code", &code)],
        )
        .await;
    assert!(
        s.html.contains("The new address is verified."),
        "{}",
        s.html
    );
    assert!(
        s.html.contains(">Use text message codes</button>"),
        "{}",
        s.html
    );
    let s = b.post("/account/method", &[("method", "sms")]).await;
    assert!(s.html.contains("<dd>Text message codes</dd>"), "{}", s.html);

    let s = b
        .post("/account/devices/forget", &[("device", "all")])
        .await;
    assert!(
        s.html.contains("No computer skips the second factor"),
        "{}",
        s.html
    );

    // The password: a wrong current one is refused, the right one changes it.
    let s = b
        .post(
            "/account/password",
            &[
                ("current_password", "Not-The-Password-1!"),
                ("new_password", "Quiet-Harbor-Lamp-55!"),
                ("confirm_password", "Quiet-Harbor-Lamp-55!"),
            ],
        )
        .await;
    assert_eq!(s.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", s.html);
    let s = b
        .post(
            "/account/password",
            &[
                ("current_password", NEW_PASSWORD),
                ("new_password", "Quiet-Harbor-Lamp-55!"),
                ("confirm_password", "Quiet-Harbor-Lamp-55!"),
            ],
        )
        .await;
    assert!(s.html.contains("Your password is changed."), "{}", s.html);
    // This browser's session goes on; the next sign-in asks a text message code.
    assert_eq!(b.get("/account").await.status, StatusCode::OK);
    b.post("/signout", &[]).await;
    b.get("/signin").await;
    let mark = app.outbox_mark();
    let s = b
        .post(
            "/signin",
            &[
                ("company", "acct-clinic"),
                ("username", "acct-clinic-admin"),
                ("password", "Quiet-Harbor-Lamp-55!"),
            ],
        )
        .await;
    assert!(s.html.contains("by text message"), "{}", s.html);
    app.code_after(mark, phone).await;
}

/// A post from another site, or with a token this browser was not given, is refused
/// with 403 and changes nothing (no flow, no failed attempt counted).
async fn csrf_cross_site_posts_and_foreign_tokens_change_nothing(db: Db) {
    let app = TestApp::spawn(db).await;
    app.practice("csrf-clinic").await;
    let mut victim = Browser::new(&app);
    victim.get("/signin").await;
    let token = field_value(&victim.html, "csrf").unwrap();
    let wrong = [
        ("company", "csrf-clinic"),
        ("username", "csrf-clinic-admin"),
        ("password", "Wrong-Password-99!"),
    ];
    let audit_before = audit_count(&app).await;

    // The victim's own cookies and token, but posted from another origin.
    let mut form = vec![("csrf", token.as_str())];
    form.extend_from_slice(&wrong);
    let s = victim
        .post_raw("/signin", &form, Some("https://evil.example"))
        .await;
    assert_eq!(s.status, StatusCode::FORBIDDEN);
    // No Origin and no Sec-Fetch-Site at all.
    let s = victim.post_raw("/signin", &form, None).await;
    assert_eq!(s.status, StatusCode::FORBIDDEN);
    // Sec-Fetch-Site says cross-site, whatever Origin claims.
    let r = victim
        .client
        .post(app.url("/signin"))
        .header("cookie", victim.cookie_header())
        .header("origin", &app.public_origin)
        .header("sec-fetch-site", "cross-site")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Our origin, but the attacker's own token (from the attacker's browser).
    let mut attacker = Browser::new(&app);
    attacker.get("/signin").await;
    let theirs = field_value(&attacker.html, "csrf").unwrap();
    assert_ne!(theirs, token);
    let mut form = vec![("csrf", theirs.as_str())];
    form.extend_from_slice(&wrong);
    let origin = app.public_origin.clone();
    let s = victim.post_raw("/signin", &form, Some(&origin)).await;
    assert_eq!(s.status, StatusCode::FORBIDDEN);
    assert!(!victim.has("__Host-gatehouse-flow"));
    assert_eq!(
        audit_count(&app).await,
        audit_before,
        "nothing was audited: nothing happened"
    );
    // The same post with the browser's own token and origin is heard (and refused on
    // its merits).
    let mut form = vec![("csrf", token.as_str())];
    form.extend_from_slice(&wrong);
    let s = victim.post_raw("/signin", &form, Some(&origin)).await;
    assert_eq!(s.status, StatusCode::UNAUTHORIZED);
}

/// CSP (no inline script, never framed), nosniff, no referrer, no-store: on the pages,
/// the refusals and the redirects alike. Assets are cached for good.
async fn every_page_carries_the_security_headers(db: Db) {
    let app = TestApp::spawn(db).await;
    let mut b = Browser::new(&app);
    let mut seen = vec![
        b.get("/signin").await,
        b.get("/account").await,
        b.get("/").await,
    ];
    seen.push(
        b.post_raw("/signin", &[("csrf", "x")], Some("https://evil.example"))
            .await,
    );
    for s in &seen {
        let csp = s.headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(csp.contains("default-src 'self'"), "{csp}");
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
            "{csp}"
        );
        assert_eq!(s.headers["x-frame-options"], "DENY");
        assert_eq!(s.headers["x-content-type-options"], "nosniff");
        assert_eq!(s.headers["referrer-policy"], "no-referrer");
        assert_eq!(s.headers["cache-control"], "no-store");
    }
    // No inline script or style on the page: everything is under /assets/.
    let page = &seen[0].html;
    assert!(
        !page.contains("<script>") && !page.contains("style="),
        "{page}"
    );
    let css = page
        .split("href=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    assert!(css.starts_with("/assets/gatehouse."), "{css}");
    let r = reqwest::get(app.url(css)).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    let r = reqwest::get(app.url("/assets/gatehouse.0000.css"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // The cookies are __Host- cookies: Secure, Path=/, no Domain, HttpOnly.
    let r = b.client.get(app.url("/signin")).send().await.unwrap();
    let set: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let csrf = set
        .iter()
        .find(|c| c.starts_with("__Host-gatehouse-csrf="))
        .unwrap();
    for attr in ["Secure", "HttpOnly", "Path=/", "SameSite=Strict"] {
        assert!(csrf.contains(attr), "{csrf}");
    }
    assert!(!csrf.contains("Domain"), "{csrf}");
}
