//! The MFA credential store (M5-M8), exercised directly on both databases: the sign-in flow
//! and endpoints that use it are built on these guarantees.

use crate::helpers::{Db, Options, TestApp, base32_decode, independent_totp};
use chrono::{Duration, TimeZone, Utc};
use gatehouse_domain::clock::{Clock, FixedClock};
use gatehouse_domain::ids::{CompanyId, EmailAddress, FlowId, PhoneE164, TenantId, UserId};
use gatehouse_domain::mfa::codes::{CodeCheck, OtpCode, Purpose};
use gatehouse_domain::networks::Cidr;
use gatehouse_store::mfa::{CodeOwner, CodeRequest, Destination};
use gatehouse_store::scope::UserRef;
use gatehouse_testkit::on_both_databases;
use sea_orm::ConnectionTrait;
use secrecy::{ExposeSecret, SecretString};
use std::net::IpAddr;
use std::sync::Arc;

on_both_databases!(
    m5_totp_enrolls_with_an_independent_code_and_never_accepts_a_step_twice,
    m5_of_two_concurrent_verifies_of_one_code_exactly_one_wins,
    m6_recovery_codes_work_exactly_once_and_are_stored_hashed,
    m7_remembered_device_trusts_only_its_user_until_revoked_or_expired,
    m8_trusted_networks_apply_tenant_wide_or_per_user_and_only_in_their_tenant,
    m4_codes_are_throttled_superseded_single_use_and_stored_hashed,
    m4_wrong_codes_count_down_exhaust_and_codes_expire,
    m4_five_sends_per_user_per_fifteen_minutes_across_flows,
    m4_of_two_concurrent_right_codes_exactly_one_is_accepted,
    d1_a_queued_code_is_sealed_claimed_once_and_sent_once,
    d1_lost_jobs_are_requeued_only_while_their_code_lives,
    d1_sends_of_several_practices_are_recorded_in_one_batch_and_every_chain_holds,
);

#[test]
fn independent_totp_matches_rfc6238_appendix_b() {
    assert_eq!(independent_totp(b"12345678901234567890", 59), "287082");
    assert_eq!(
        independent_totp(b"12345678901234567890", 1_111_111_109),
        "081804"
    );
    assert_eq!(base32_decode("GEZDGNBVGY3TQOJQ"), b"1234567890");
}

async fn tenant_and_user(app: &TestApp, company: &str, user: &str) -> (TenantId, UserId) {
    let admin = app.practice(company).await;
    app.staff(company, &admin, user).await;
    let tenant = app
        .store
        .find_tenant(&CompanyId::parse(company).unwrap())
        .await
        .unwrap()
        .unwrap();
    let u = app
        .store
        .tenant(tenant.id)
        .users()
        .get(&UserRef::Username(user.to_owned()))
        .await
        .unwrap();
    (tenant.id, u.id)
}

/// One text column of a query. Queries on deliveries leave out the operator tenant's:
/// the support admin's own sign-in (email codes) shares the database.
async fn column_texts(app: &TestApp, sql: &str) -> Vec<String> {
    app.raw
        .query_all_raw(sea_orm::Statement::from_string(
            app.raw.get_database_backend(),
            sql,
        ))
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.try_get_by_index::<String>(0).unwrap())
        .collect()
}

async fn m5_totp_enrolls_with_an_independent_code_and_never_accepts_a_step_twice(db: Db) {
    let app = TestApp::spawn(db).await;
    let (t, u) = tenant_and_user(&app, "totp-clinic", "tess").await;
    let mfa = app.store.tenant(t).mfa();
    let e = mfa.start_totp(u, "TOTP Clinic", "tess").await.unwrap();
    assert!(
        e.otpauth_uri.contains("issuer=TOTP%20Clinic")
            || e.otpauth_uri.contains("issuer=TOTP+Clinic"),
        "{}",
        e.otpauth_uri
    );
    let secret = base32_decode(&e.secret_base32);
    assert_eq!(secret.len(), 20, "160-bit secret");
    assert!(!mfa.totp_enrolled(u).await.unwrap(), "pending until proven");

    let now = 1_900_000_000u64;
    assert!(
        !mfa.confirm_totp(u, "000000", now).await.unwrap()
            || independent_totp(&secret, now) == "000000"
    );
    let code = independent_totp(&secret, now);
    assert!(mfa.confirm_totp(u, &code, now).await.unwrap());
    assert!(mfa.totp_enrolled(u).await.unwrap());
    // The step that confirmed enrollment cannot sign in again, nor can the step before.
    assert!(!mfa.verify_totp(u, &code, now).await.unwrap());
    assert!(
        !mfa.verify_totp(u, &independent_totp(&secret, now - 30), now)
            .await
            .unwrap()
    );
    // The next step can, once.
    let next = independent_totp(&secret, now + 30);
    assert!(mfa.verify_totp(u, &next, now + 30).await.unwrap());
    assert!(!mfa.verify_totp(u, &next, now + 35).await.unwrap());
    // A second enrollment needs a reset first.
    assert!(mfa.start_totp(u, "TOTP Clinic", "tess").await.is_err());
    assert!(mfa.remove_totp(u).await.unwrap());
    assert!(!mfa.totp_enrolled(u).await.unwrap());

    // At rest the secret is sealed: neither its base32 nor its bytes appear.
    mfa.start_totp(u, "TOTP Clinic", "tess").await.unwrap();
    for v in column_texts(&app, "SELECT secret_sealed FROM totp_credentials").await {
        assert!(v.starts_with("v1."));
        assert!(!v.contains(&e.secret_base32));
    }
}

async fn m5_of_two_concurrent_verifies_of_one_code_exactly_one_wins(db: Db) {
    let app = TestApp::spawn(db).await;
    let (t, u) = tenant_and_user(&app, "race-clinic", "rita").await;
    let mfa = app.store.tenant(t).mfa();
    let e = mfa.start_totp(u, "Race", "rita").await.unwrap();
    let secret = base32_decode(&e.secret_base32);
    let now = 1_900_000_000u64;
    assert!(
        mfa.confirm_totp(u, &independent_totp(&secret, now), now)
            .await
            .unwrap()
    );
    for round in 1..=5u64 {
        let at = now + 30 * round;
        let code = independent_totp(&secret, at);
        let (m1, m2) = (app.store.tenant(t).mfa(), app.store.tenant(t).mfa());
        let (a, b) = tokio::join!(m1.verify_totp(u, &code, at), m2.verify_totp(u, &code, at));
        let wins = [a.unwrap(), b.unwrap()].iter().filter(|w| **w).count();
        assert_eq!(wins, 1, "round {round}");
    }
}

async fn m6_recovery_codes_work_exactly_once_and_are_stored_hashed(db: Db) {
    let app = TestApp::spawn(db).await;
    let (t, u) = tenant_and_user(&app, "rescue-clinic", "remy").await;
    let mfa = app.store.tenant(t).mfa();
    let codes = mfa.replace_recovery_codes(u).await.unwrap();
    assert_eq!(codes.len(), 5);
    assert_eq!(mfa.recovery_codes_remaining(u).await.unwrap(), 5);
    assert!(
        mfa.use_recovery_code(u, &codes[0].to_lowercase())
            .await
            .unwrap()
    );
    assert!(
        !mfa.use_recovery_code(u, &codes[0]).await.unwrap(),
        "used once"
    );
    assert_eq!(mfa.recovery_codes_remaining(u).await.unwrap(), 4);
    // Raced: exactly one of two uses succeeds.
    let (m1, m2) = (app.store.tenant(t).mfa(), app.store.tenant(t).mfa());
    let (a, b) = tokio::join!(
        m1.use_recovery_code(u, &codes[1]),
        m2.use_recovery_code(u, &codes[1]),
    );
    assert_eq!([a.unwrap(), b.unwrap()].iter().filter(|w| **w).count(), 1);
    // Another user cannot use them; new codes kill the old ones.
    let other = app
        .store
        .tenant(t)
        .users()
        .get(&UserRef::Username("rescue-clinic-admin".into()))
        .await
        .unwrap();
    assert!(!mfa.use_recovery_code(other.id, &codes[2]).await.unwrap());
    let fresh = mfa.replace_recovery_codes(u).await.unwrap();
    assert!(!mfa.use_recovery_code(u, &codes[2]).await.unwrap());
    assert_eq!(mfa.recovery_codes_remaining(u).await.unwrap(), 5);
    let stored = column_texts(&app, "SELECT code_hash FROM recovery_codes").await;
    for c in codes.iter().chain(&fresh) {
        let bare = c.replace('-', "");
        assert!(
            stored
                .iter()
                .all(|h| !h.contains(&bare) && !h.contains(c.as_str()))
        );
    }
}

async fn m7_remembered_device_trusts_only_its_user_until_revoked_or_expired(db: Db) {
    let clock = Arc::new(FixedClock::new(
        Utc.with_ymd_and_hms(2026, 11, 24, 9, 0, 0).unwrap(),
    ));
    let app = TestApp::spawn_with(
        db,
        Options {
            clock: Some(clock.clone()),
            ..Options::default()
        },
    )
    .await;
    let (t, u) = tenant_and_user(&app, "desk-clinic", "dana").await;
    let other = app
        .store
        .tenant(t)
        .users()
        .get(&UserRef::Username("desk-clinic-admin".into()))
        .await
        .unwrap()
        .id;
    let mfa = app.store.tenant(t).mfa();
    let (token, until) = mfa
        .remember_device(u, Some("Front desk PC".into()), 18)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(until, clock.now() + Duration::hours(18));
    assert!(mfa.device_trusted(u, &token).await.unwrap());
    // A shared computer: the same token means nothing for another user.
    assert!(!mfa.device_trusted(other, &token).await.unwrap());
    let forged = SecretString::from(format!("{}x", token.expose_secret()));
    assert!(!mfa.device_trusted(u, &forged).await.unwrap());
    let listed = mfa.devices(u).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].label.as_deref(), Some("Front desk PC"));
    assert!(listed[0].last_used_at.is_some());
    // Only the hash is stored.
    for h in column_texts(&app, "SELECT token_hash FROM remembered_devices").await {
        assert_ne!(h, token.expose_secret());
    }
    // Expiry.
    clock.advance(Duration::hours(18));
    assert!(!mfa.device_trusted(u, &token).await.unwrap());
    assert!(mfa.devices(u).await.unwrap().is_empty());
    // Revocation, by id and all at once; someone else's device id is not found.
    let (t2, _) = mfa.remember_device(u, None, 18).await.unwrap().unwrap();
    let id = mfa.devices(u).await.unwrap()[0].id;
    assert!(mfa.revoke_device(other, id).await.is_err());
    mfa.revoke_device(u, id).await.unwrap();
    assert!(!mfa.device_trusted(u, &t2).await.unwrap());
    let (t3, _) = mfa.remember_device(u, None, 18).await.unwrap().unwrap();
    assert_eq!(mfa.revoke_all_devices(&app.raw, u).await.unwrap(), 1);
    assert!(!mfa.device_trusted(u, &t3).await.unwrap());
    // Remembering disabled by the tenant.
    assert!(mfa.remember_device(u, None, 0).await.unwrap().is_none());
}

async fn m8_trusted_networks_apply_tenant_wide_or_per_user_and_only_in_their_tenant(db: Db) {
    let app = TestApp::spawn(db).await;
    let (t, u) = tenant_and_user(&app, "lan-clinic", "lena").await;
    let (t2, u2) = tenant_and_user(&app, "wan-clinic", "walt").await;
    let admin = app
        .store
        .tenant(t)
        .users()
        .get(&UserRef::Username("lan-clinic-admin".into()))
        .await
        .unwrap()
        .id;
    let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
    let mfa = app.store.tenant(t).mfa();
    let office = mfa
        .add_network(
            Cidr::parse("203.0.113.0/24").unwrap(),
            Some("Office".into()),
            None,
            Some(admin),
        )
        .await
        .unwrap();
    mfa.add_network(
        Cidr::parse("2001:db8:1::/48").unwrap(),
        None,
        None,
        Some(admin),
    )
    .await
    .unwrap();
    mfa.add_network(
        Cidr::parse("198.51.100.7").unwrap(),
        Some("Lena at home".into()),
        Some(u),
        Some(admin),
    )
    .await
    .unwrap();
    assert!(
        mfa.from_trusted_network(u, ip("203.0.113.80"))
            .await
            .unwrap()
    );
    assert!(
        mfa.from_trusted_network(admin, ip("2001:db8:1::9"))
            .await
            .unwrap()
    );
    assert!(
        mfa.from_trusted_network(u, ip("198.51.100.7"))
            .await
            .unwrap()
    );
    assert!(
        !mfa.from_trusted_network(admin, ip("198.51.100.7"))
            .await
            .unwrap(),
        "per-user range"
    );
    assert!(!mfa.from_trusted_network(u, ip("192.0.2.1")).await.unwrap());
    assert!(!mfa.from_trusted_network(u, None).await.unwrap());
    // Another practice's ranges never apply, and its users cannot be named here.
    let other = app.store.tenant(t2).mfa();
    assert!(
        !other
            .from_trusted_network(u2, ip("203.0.113.80"))
            .await
            .unwrap()
    );
    assert!(
        mfa.add_network(Cidr::parse("192.0.2.0/24").unwrap(), None, Some(u2), None)
            .await
            .is_err()
    );
    assert!(other.remove_network(office.id).await.is_err());
    assert_eq!(mfa.networks().await.unwrap().len(), 3);
    let removed = mfa.remove_network(office.id).await.unwrap();
    assert_eq!(removed.cidr.to_string(), "203.0.113.0/24");
    assert!(
        !mfa.from_trusted_network(u, ip("203.0.113.80"))
            .await
            .unwrap()
    );
}

fn fixed_clock() -> Arc<FixedClock> {
    Arc::new(FixedClock::new(
        Utc.with_ymd_and_hms(2026, 11, 24, 9, 0, 0).unwrap(),
    ))
}

/// A real sign-in flow of `user` (the flow row the challenge belongs to).
async fn flow_of(app: &TestApp, company: &str, user: &str) -> FlowId {
    let r = app.login(company, user, crate::helpers::NEW_PASSWORD).await;
    let flow: serde_json::Value = r.json().await.unwrap();
    FlowId(flow["flow_id"].as_str().unwrap().parse().unwrap())
}

fn sms_request(user: UserId, flow: FlowId) -> CodeRequest {
    CodeRequest {
        user,
        owner: CodeOwner::Flow(flow),
        purpose: Purpose::SignIn,
        destination: Destination::Sms(PhoneE164::parse("+12025550147").unwrap()),
        ttl_seconds: 300,
    }
}

fn rate_limited(r: Result<gatehouse_store::mfa::IssuedCode, gatehouse_store::StoreError>) -> u64 {
    match r {
        Err(gatehouse_store::StoreError::Domain(gatehouse_domain::Error::RateLimited {
            retry_after_secs,
        })) => retry_after_secs,
        other => panic!("expected rate_limited, got {other:?}"),
    }
}

async fn m4_codes_are_throttled_superseded_single_use_and_stored_hashed(db: Db) {
    let clock = fixed_clock();
    let app = TestApp::spawn_with(
        db,
        Options {
            clock: Some(clock.clone()),
            ..Options::default()
        },
    )
    .await;
    let (t, u) = tenant_and_user(&app, "code-clinic", "cody").await;
    let flow = flow_of(&app, "code-clinic", "cody").await;
    let mfa = app.store.tenant(t).mfa();
    let first = mfa.issue_code(sms_request(u, flow)).await.unwrap();
    assert_eq!(first.to_masked, "•••-•••-0147");
    assert_eq!(first.expires_at, clock.now() + Duration::seconds(300));
    // One send per 30 s within a flow.
    assert_eq!(rate_limited(mfa.issue_code(sms_request(u, flow)).await), 30);
    clock.advance(Duration::seconds(30));
    let second = mfa.issue_code(sms_request(u, flow)).await.unwrap();
    let owner = CodeOwner::Flow(flow);
    // The new code killed the old one: the old code is now just a wrong code.
    if first.code.expose() != second.code.expose() {
        assert_eq!(
            mfa.check_code(owner, Purpose::SignIn, &first.code)
                .await
                .unwrap(),
            Some(CodeCheck::Reject {
                attempts_remaining: 4
            })
        );
    }
    assert_eq!(
        mfa.check_code(owner, Purpose::SignIn, &second.code)
            .await
            .unwrap(),
        Some(CodeCheck::Accept)
    );
    // Single use.
    assert_eq!(
        mfa.check_code(owner, Purpose::SignIn, &second.code)
            .await
            .unwrap(),
        Some(CodeCheck::Expired)
    );
    // Never sent for another purpose.
    assert_eq!(
        mfa.check_code(owner, Purpose::StepUp, &second.code)
            .await
            .unwrap(),
        None
    );
    // Stored: keyed hashes, the deliveries with a masked destination. No worker sent
    // them here: the superseded code's stays queued, the used code's is `delivered` (its
    // use proves it arrived).
    for h in column_texts(&app, "SELECT code_hash FROM mfa_challenges").await {
        assert!(!h.contains(first.code.expose()) && !h.contains(second.code.expose()));
    }
    let statuses = column_texts(&app, "SELECT status FROM deliveries WHERE tenant_id <> (SELECT id FROM tenants WHERE company = 'operator') ORDER BY status").await;
    assert_eq!(statuses, ["delivered", "queued"]);
    let masked = column_texts(&app, "SELECT destination_masked FROM deliveries WHERE tenant_id <> (SELECT id FROM tenants WHERE company = 'operator')").await;
    assert!(masked.iter().all(|m| m == "•••-•••-0147"));
    for h in column_texts(&app, "SELECT destination_hash FROM deliveries WHERE tenant_id <> (SELECT id FROM tenants WHERE company = 'operator')").await {
        assert!(!h.contains("2025550147"));
        assert_eq!(h, mfa.destination_hash("+12025550147"));
    }
}

async fn m4_wrong_codes_count_down_exhaust_and_codes_expire(db: Db) {
    let clock = fixed_clock();
    let app = TestApp::spawn_with(
        db,
        Options {
            clock: Some(clock.clone()),
            ..Options::default()
        },
    )
    .await;
    let (t, u) = tenant_and_user(&app, "tries-clinic", "trey").await;
    let flow = flow_of(&app, "tries-clinic", "trey").await;
    let mfa = app.store.tenant(t).mfa();
    let owner = CodeOwner::Flow(flow);
    let issued = mfa.issue_code(sms_request(u, flow)).await.unwrap();
    let wrong = OtpCode::parse(if issued.code.expose() == "111111" {
        "222222"
    } else {
        "111111"
    })
    .unwrap();
    for remaining in [4, 3, 2, 1] {
        assert_eq!(
            mfa.check_code(owner, Purpose::SignIn, &wrong)
                .await
                .unwrap(),
            Some(CodeCheck::Reject {
                attempts_remaining: remaining
            })
        );
    }
    assert_eq!(
        mfa.check_code(owner, Purpose::SignIn, &wrong)
            .await
            .unwrap(),
        Some(CodeCheck::Exhausted)
    );
    // Dead: even the right code is refused now.
    assert_eq!(
        mfa.check_code(owner, Purpose::SignIn, &issued.code)
            .await
            .unwrap(),
        Some(CodeCheck::Exhausted)
    );

    // Expiry, by email this time.
    clock.advance(Duration::seconds(30));
    let email = CodeRequest {
        destination: Destination::Email(EmailAddress::parse("trey@example.com").unwrap()),
        ttl_seconds: 60,
        ..sms_request(u, flow)
    };
    let issued = mfa.issue_code(email).await.unwrap();
    assert_eq!(issued.to_masked, "t•••@example.com");
    clock.advance(Duration::seconds(60));
    assert_eq!(
        mfa.check_code(owner, Purpose::SignIn, &issued.code)
            .await
            .unwrap(),
        Some(CodeCheck::Expired)
    );
}

async fn m4_five_sends_per_user_per_fifteen_minutes_across_flows(db: Db) {
    let clock = fixed_clock();
    let app = TestApp::spawn_with(
        db,
        Options {
            clock: Some(clock.clone()),
            ..Options::default()
        },
    )
    .await;
    let (t, u) = tenant_and_user(&app, "five-clinic", "fifi").await;
    let mfa = app.store.tenant(t).mfa();
    for _ in 0..5 {
        let flow = flow_of(&app, "five-clinic", "fifi").await;
        mfa.issue_code(sms_request(u, flow)).await.unwrap();
        clock.advance(Duration::seconds(60));
    }
    // Five sends at 0, 60, ..., 240 s; now it is 300 s: the first frees at 900 s.
    let flow = flow_of(&app, "five-clinic", "fifi").await;
    assert_eq!(
        rate_limited(mfa.issue_code(sms_request(u, flow)).await),
        600
    );
    // A refused send (opted out) does not count.
    app.exec("UPDATE deliveries SET status = 'opted_out' WHERE id IN (SELECT id FROM deliveries WHERE tenant_id <> (SELECT id FROM tenants WHERE company = 'operator') ORDER BY created_at LIMIT 1)")
        .await;
    mfa.issue_code(sms_request(u, flow)).await.unwrap();
    // Another user of the practice is not throttled by fifi's sends.
    let admin = app
        .store
        .tenant(t)
        .users()
        .get(&UserRef::Username("five-clinic-admin".into()))
        .await
        .unwrap()
        .id;
    let admin_flow = flow_of(&app, "five-clinic", "five-clinic-admin").await;
    mfa.issue_code(sms_request(admin, admin_flow))
        .await
        .unwrap();
}

async fn m4_of_two_concurrent_right_codes_exactly_one_is_accepted(db: Db) {
    let app = TestApp::spawn(db).await;
    let (t, u) = tenant_and_user(&app, "twin-clinic", "tina").await;
    let flow = flow_of(&app, "twin-clinic", "tina").await;
    let issued = app
        .store
        .tenant(t)
        .mfa()
        .issue_code(sms_request(u, flow))
        .await
        .unwrap();
    let owner = CodeOwner::Flow(flow);
    let (m1, m2) = (app.store.tenant(t).mfa(), app.store.tenant(t).mfa());
    let (a, b) = tokio::join!(
        m1.check_code(owner, Purpose::SignIn, &issued.code),
        m2.check_code(owner, Purpose::SignIn, &issued.code),
    );
    let mut answers = [a.unwrap().unwrap(), b.unwrap().unwrap()];
    answers.sort_by_key(|c| format!("{c:?}"));
    assert_eq!(answers, [CodeCheck::Accept, CodeCheck::Expired]);
}

async fn d1_a_queued_code_is_sealed_claimed_once_and_sent_once(db: Db) {
    let app = TestApp::spawn(db).await;
    let (t, u) = tenant_and_user(&app, "send-clinic", "sid").await;
    let flow = flow_of(&app, "send-clinic", "sid").await;
    let issued = app
        .store
        .tenant(t)
        .mfa()
        .issue_code(sms_request(u, flow))
        .await
        .unwrap();
    // Neither the job nor the row holds the code or number in clear.
    let wire = serde_json::to_string(&issued.job).unwrap();
    assert!(!wire.contains(issued.code.expose()) && !wire.contains("2025550147"));
    let stored = column_texts(&app, "SELECT payload_sealed FROM deliveries WHERE tenant_id <> (SELECT id FROM tenants WHERE company = 'operator')").await;
    assert_eq!(stored, std::slice::from_ref(&issued.job.sealed));

    // Two copies of the job: exactly one claims it.
    let (d1, d2) = (
        app.store.tenant(t).deliveries(),
        app.store.tenant(t).deliveries(),
    );
    let (a, b) = tokio::join!(d1.claim(issued.delivery_id), d2.claim(issued.delivery_id));
    let claims: Vec<_> = [a.unwrap(), b.unwrap()].into_iter().flatten().collect();
    assert_eq!(claims.len(), 1);
    let ctx = &claims[0];
    // A copy arriving later, while the first send is under way, does not claim it either.
    assert!(
        app.store
            .tenant(t)
            .deliveries()
            .claim(issued.delivery_id)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(ctx.company_name, "send-clinic clinic");
    assert_eq!(ctx.attempt, 1);
    assert_eq!(ctx.to_masked, "•••-•••-0147");
    let opened = app
        .store
        .config()
        .keyring
        .open(
            &gatehouse_domain::jobs::SendCode::seal_context(issued.delivery_id),
            &ctx.sealed,
        )
        .unwrap();
    let msg: gatehouse_domain::jobs::CodeMessage = serde_json::from_slice(&opened).unwrap();
    assert_eq!(msg.to, "+12025550147");
    assert_eq!(msg.code.expose_secret(), issued.code.expose());

    app.store
        .tenant(t)
        .deliveries()
        .mark_sent(ctx, "outbox-1")
        .await
        .unwrap();
    assert_eq!(
        column_texts(&app, "SELECT status FROM deliveries WHERE tenant_id <> (SELECT id FROM tenants WHERE company = 'operator')").await,
        ["sent"]
    );
    assert_eq!(
        column_texts(&app, "SELECT provider_message_id FROM deliveries WHERE tenant_id <> (SELECT id FROM tenants WHERE company = 'operator')").await,
        ["outbox-1"]
    );
    let left: Vec<Option<String>> = app
        .raw
        .query_all_raw(sea_orm::Statement::from_string(
            app.raw.get_database_backend(),
            "SELECT payload_sealed FROM deliveries WHERE tenant_id <> (SELECT id FROM tenants WHERE company = 'operator')",
        ))
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.try_get_by_index::<Option<String>>(0).unwrap())
        .collect();
    assert_eq!(left, [None], "the sealed message is dropped once sent");
    // A re-run of the job sends nothing.
    assert!(
        app.store
            .tenant(t)
            .deliveries()
            .claim(issued.delivery_id)
            .await
            .unwrap()
            .is_none()
    );
    // Audited, without the code.
    let admin = app
        .token(
            "send-clinic",
            "send-clinic-admin",
            crate::helpers::NEW_PASSWORD,
        )
        .await;
    let sent = crate::helpers::ok_json(
        app.get(
            "/v1/tenants/send-clinic/audit-events?action=mfa.code_sent",
            Some(&admin),
        )
        .await,
    )
    .await;
    assert_eq!(sent["items"].as_array().unwrap().len(), 1);
    assert_eq!(sent["items"][0]["details"]["to"], "•••-•••-0147");
    assert!(!sent.to_string().contains(issued.code.expose()));
}

async fn d1_sends_of_several_practices_are_recorded_in_one_batch_and_every_chain_holds(db: Db) {
    let app = TestApp::spawn(db).await;
    let (a, ua) = tenant_and_user(&app, "batch-a", "ann").await;
    let (b, ub) = tenant_and_user(&app, "batch-b", "bob").await;
    let email = |u, flow| CodeRequest {
        destination: Destination::Email(EmailAddress::parse("ann@example.com").unwrap()),
        ..sms_request(u, flow)
    };
    // Two codes of practice A (an SMS and an email) and one of practice B, interleaved.
    let a_sms = app
        .store
        .tenant(a)
        .mfa()
        .issue_code(sms_request(ua, flow_of(&app, "batch-a", "ann").await))
        .await
        .unwrap();
    let b_sms = app
        .store
        .tenant(b)
        .mfa()
        .issue_code(sms_request(ub, flow_of(&app, "batch-b", "bob").await))
        .await
        .unwrap();
    let a_email = app
        .store
        .tenant(a)
        .mfa()
        .issue_code(email(ua, flow_of(&app, "batch-a", "ann").await))
        .await
        .unwrap();
    // Claimed together: another practice's id under A is not claimed, and of two copies
    // of one job in a batch only the first gets it.
    let claimed = app
        .store
        .claim_sends(&[
            (a, a_sms.delivery_id),
            (a, b_sms.delivery_id),
            (b, b_sms.delivery_id),
            (a, a_email.delivery_id),
            (a, a_email.delivery_id),
        ])
        .await
        .unwrap();
    assert_eq!(
        claimed.iter().map(Option::is_some).collect::<Vec<_>>(),
        [true, false, true, true, false]
    );
    let mut claimed = claimed.into_iter().flatten();
    let (c1, c2, c3) = (
        claimed.next().unwrap(),
        claimed.next().unwrap(),
        claimed.next().unwrap(),
    );
    assert_eq!(
        (c1.delivery_id, c2.delivery_id, c3.delivery_id),
        (a_sms.delivery_id, b_sms.delivery_id, a_email.delivery_id)
    );
    assert_eq!(c3.attempt, 1, "claimed once, so one attempt");
    assert_eq!((c1.tenant, c2.tenant, c3.tenant), (a, b, a));
    assert_eq!(c1.user_id, Some(ua.0));
    assert_eq!(c2.company, "batch-b");
    // A practice's repository never records another practice's send.
    assert!(
        app.store
            .tenant(a)
            .deliveries()
            .mark_sent(&c2, "nope")
            .await
            .is_err()
    );

    app.store
        .record_sends(&[(&c1, "m-a-sms"), (&c2, "m-b-sms"), (&c3, "m-a-email")])
        .await
        .unwrap();

    let rows = column_texts(
        &app,
        "SELECT status || ' ' || provider_message_id || ' ' || channel || ' ' || \
         CASE WHEN payload_sealed IS NULL THEN 'dropped' ELSE 'kept' END \
         FROM deliveries WHERE provider_message_id LIKE 'm-%' ORDER BY provider_message_id",
    )
    .await;
    assert_eq!(
        rows,
        [
            "sent m-a-email email kept",
            "sent m-a-sms sms dropped",
            "sent m-b-sms sms dropped"
        ]
    );
    // Each practice's chain has its own events, in order, and still verifies.
    for (t, sent) in [
        (a, vec![a_sms.delivery_id, a_email.delivery_id]),
        (b, vec![b_sms.delivery_id]),
    ] {
        let audit = app.store.tenant(t).audit();
        let report = audit.verify().await.unwrap();
        assert!(report.ok, "{report:?}");
        let filter = gatehouse_store::audit::AuditFilter {
            action: Some("mfa.code_sent".into()),
            ..Default::default()
        };
        let page = audit.list(&filter, 10, None).await.unwrap();
        let mut listed: Vec<String> = page
            .items
            .iter()
            .map(|e| e.details["delivery_id"].as_str().unwrap().to_owned())
            .collect();
        listed.reverse();
        let sent: Vec<String> = sent.iter().map(ToString::to_string).collect();
        assert_eq!(listed, sent, "oldest first, as recorded");
    }
    // A recorded send is never claimed again.
    assert!(
        app.store
            .tenant(a)
            .deliveries()
            .claim(a_email.delivery_id)
            .await
            .unwrap()
            .is_none()
    );
    // An empty batch is nothing to do.
    app.store.record_sends(&[]).await.unwrap();
}

async fn d1_lost_jobs_are_requeued_only_while_their_code_lives(db: Db) {
    let clock = fixed_clock();
    let app = TestApp::spawn_with(
        db,
        Options {
            clock: Some(clock.clone()),
            ..Options::default()
        },
    )
    .await;
    let (t, u) = tenant_and_user(&app, "lost-clinic", "lou").await;
    let mfa = app.store.tenant(t).mfa();
    let first = mfa
        .issue_code(sms_request(u, flow_of(&app, "lost-clinic", "lou").await))
        .await
        .unwrap();
    let second = mfa
        .issue_code(sms_request(u, flow_of(&app, "lost-clinic", "lou").await))
        .await
        .unwrap();
    let idle = Duration::seconds(60);
    // Fresh jobs are still in the queue: nothing to re-enqueue.
    assert!(
        app.store
            .deliveries_to_requeue(idle, 100)
            .await
            .unwrap()
            .is_empty()
    );
    clock.advance(Duration::seconds(61));
    let mut ids: Vec<_> = app
        .store
        .deliveries_to_requeue(idle, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.delivery_id)
        .collect();
    ids.sort();
    let mut want = vec![first.delivery_id, second.delivery_id];
    want.sort();
    assert_eq!(ids, want);
    // One is sent; the other fails transiently and waits again.
    let deliveries = app.store.tenant(t).deliveries();
    let ctx = deliveries.claim(first.delivery_id).await.unwrap().unwrap();
    deliveries.mark_sent(&ctx, "outbox-x").await.unwrap();
    deliveries
        .fail(second.delivery_id, "provider throttled", false)
        .await
        .unwrap();
    assert!(
        app.store
            .deliveries_to_requeue(idle, 100)
            .await
            .unwrap()
            .is_empty()
    );
    clock.advance(Duration::seconds(61));
    let again = app.store.deliveries_to_requeue(idle, 100).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0], second.job, "the same sealed job");
    // Once the code is dead it is never sent: not listed, and a claim fails the delivery.
    clock.advance(Duration::seconds(300));
    assert!(
        app.store
            .deliveries_to_requeue(idle, 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        deliveries
            .claim(second.delivery_id)
            .await
            .unwrap()
            .is_none()
    );
    let statuses = column_texts(&app, "SELECT status FROM deliveries WHERE tenant_id <> (SELECT id FROM tenants WHERE company = 'operator') ORDER BY status").await;
    assert_eq!(statuses, ["failed", "sent"]);
}
