//! D8: provider send rates and fairness between practices. One practice's burst of a
//! thousand codes goes out at the configured rate, and another practice's single code,
//! queued behind the whole burst, goes out almost at once, not after it.

use crate::helpers::{Db, TestStore, wait_until};
use gatehouse_app::signin::LoginInput;
use gatehouse_domain::ids::{CompanyId, EmailAddress};
use gatehouse_domain::mfa::codes::Purpose;
use gatehouse_store::RequestMeta;
use gatehouse_store::mfa::{CodeOwner, CodeRequest, Destination};
use gatehouse_store::scope::UserRef;
use gatehouse_testkit::on_both_databases;
use gatehouse_workers::{SendRateConfig, rate, spawn_in_process};
use secrecy::SecretString;
use std::time::{Duration, Instant};

const BURST: usize = 1_000;
const RATE: u32 = 200;

/// A sign-in code for the operator's support admin: another practice than the burst's.
async fn other_practice_code(t: &TestStore) -> gatehouse_store::mfa::IssuedCode {
    let operator = t
        .store
        .find_tenant(&CompanyId::parse("operator").unwrap())
        .await
        .unwrap()
        .unwrap();
    let flow = gatehouse_app::App::new(t.store.clone())
        .signin()
        .login(
            LoginInput {
                company: "operator".into(),
                username: "support".into(),
                password: SecretString::from("Granite-Bridge-2026!".to_owned()),
                device_token: None,
                require_second_factor: false,
            },
            &RequestMeta::default(),
        )
        .await
        .unwrap()
        .flow_id;
    t.advance(gatehouse_domain::mfa::codes::FLOW_RESEND_SECONDS + 1);
    let scope = t.store.tenant(operator.id);
    let user = scope
        .users()
        .get(&UserRef::Username("support".into()))
        .await
        .unwrap()
        .id;
    scope
        .mfa()
        .issue_code(CodeRequest {
            user,
            owner: CodeOwner::Flow(flow),
            purpose: Purpose::SignIn,
            destination: Destination::Email(
                EmailAddress::parse("other-practice@vendor.example.com").unwrap(),
            ),
            ttl_seconds: 300,
        })
        .await
        .unwrap()
}

async fn d8_a_burst_of_a_thousand_codes_does_not_hold_back_another_practices_code(db: Db) {
    let t = TestStore::new(db).await;
    let first = t.issue_email("admin").await;
    let mut burst = vec![first.job.clone()];
    burst.extend(t.copies(first.delivery_id, BURST - 1).await);
    let other = other_practice_code(&t).await;

    let mut config = t.worker_config();
    config.send_rates = SendRateConfig {
        email_per_second: RATE,
        sms_per_second: 0,
    };
    let mut expected: Vec<String> = burst.iter().map(|j| j.delivery_id.to_string()).collect();
    expected.push(other.delivery_id.to_string());
    expected.sort_unstable();
    // Only the codes under test (the sign-ins that issued them queued codes of their own).
    let ours = |lines: Vec<serde_json::Value>| -> Vec<String> {
        lines
            .iter()
            .filter_map(|l| l["delivery_id"].as_str())
            .filter(|id| expected.binary_search(&(*id).to_owned()).is_ok())
            .map(str::to_owned)
            .collect()
    };
    let workers = spawn_in_process(t.store.clone(), config).unwrap();
    for job in burst {
        workers.queue().push_send_code(job).await.unwrap();
    }
    // The other practice's code is queued behind the whole burst.
    let queued = Instant::now();
    workers
        .queue()
        .push_send_code(other.job.clone())
        .await
        .unwrap();
    t.wait_for_line(other.delivery_id).await;
    let waited = queued.elapsed();
    let sent = wait_until("the whole burst sent", || async {
        let sent = ours(t.outbox_lines());
        (sent.len() > BURST).then_some(sent)
    })
    .await;
    let burst_took = queued.elapsed();
    workers.shutdown().await;

    let id = other.delivery_id.to_string();
    let position = sent.iter().position(|l| *l == id).unwrap();
    // The bound: the burst's first FAIR_BURST codes (priority lane), what the bulk lane had
    // in flight, and what left while the test was still queueing the burst.
    let bound = 100;
    eprintln!(
        "d8 fairness: the other practice's code was sent {}th of {} after {waited:?}; \
         the burst of {BURST} at {RATE}/s took {burst_took:?}; bulk workers: {}",
        position + 1,
        sent.len(),
        rate::bulk_concurrency(t.worker_config().concurrency)
    );
    assert!(
        position < bound,
        "the other practice's code waited behind {position} of the burst's (bound {bound})"
    );
    // And the burst itself was held to the configured rate: after the first second's
    // allowance, the rest went no faster than RATE a second.
    let floor = Duration::from_secs_f64((BURST as f64 - f64::from(RATE)) / f64::from(RATE));
    assert!(
        burst_took >= floor.mul_f64(0.9),
        "{BURST} emails in {burst_took:?} exceed {RATE}/s"
    );
    // Every code went out, each exactly once.
    let mut ids = sent.clone();
    ids.sort_unstable();
    assert_eq!(ids, expected, "each delivery exactly once");
}

on_both_databases!(d8_a_burst_of_a_thousand_codes_does_not_hold_back_another_practices_code);
