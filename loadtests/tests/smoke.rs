//! The CI smoke of the load tests (O3): `gatehouse-loadtests run --smoke` runs every
//! phase and scenario briefly on little data, on both layouts, against the real
//! `gatehouse` binary, PostgreSQL and Redis. It checks that they work (every limit is
//! measured, every scenario's requests are answered as expected, codes are read back,
//! accounts lock, the reports are written); it asserts no time.
//!
//! It loads the machine (several processes at full tilt), so it is ignored in the main
//! run and run alone right after it by `scripts/test`:
//! `cargo nextest run --workspace --run-ignored only -E 'package(gatehouse-loadtests)'`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

const LIMITS: [&str; 10] = [
    "| start-up to ready (`serve`) |",
    "| token endpoint p99 (`POST /oauth2/token`, code exchange, during OIDC sign-ins) |",
    "| page sign-ins/s (`GET` + `POST /signin`, cookies, CSRF) vs the JSON API's sign-ins/s |",
    "| RSS idle (`serve`) |",
    "| sign-ins/s (`POST /v1/auth/login`) vs raw Argon2id verifies/s |",
    "| session checks/s (`GET /v1/auth/session`, cache hits) vs bare actix-web handler |",
    "| session-check p99 while sign-ins saturate Argon2id |",
    "| code dispatch p99 (login answered -> provider accepted) |",
    "sends/s (fake SES/SNS",
    "| RSS peak under load (`serve`) |",
];

/// Requests every clinic morning must have made, none of them failed.
const MORNING: [&str; 10] = [
    "POST login",
    "GET session",
    "POST logout",
    "POST verify",
    "POST verify (wrong code)",
    "POST login (wrong password)",
    "GET admin: list users",
    "PATCH admin: edit user",
    "GET support: search users",
    "POST enroll totp confirm",
];

/// The clinic-morning rows of one layout's section: request -> (count, failed).
fn morning_rows(section: &str) -> Vec<(String, u64, u64)> {
    let start = section
        .find("### Clinic morning")
        .expect("a clinic morning");
    section[start..]
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| request"))
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
            (
                cells[0].to_owned(),
                cells[1].parse().expect("count"),
                cells[2].parse().expect("failed"),
            )
        })
        .collect()
}

#[test]
#[ignore = "loads the machine: scripts/test runs it alone after the suite"]
fn o3_the_load_tests_run_every_phase_and_scenario_on_both_layouts() {
    let exe = Path::new(env!("CARGO_BIN_EXE_gatehouse-loadtests"));
    let gatehouse = exe.with_file_name("gatehouse");
    assert!(
        gatehouse.is_file(),
        "build the gatehouse binary first (the workspace's tests do): {}",
        gatehouse.display()
    );
    let out = std::env::temp_dir().join(format!("gatehouse-load-smoke-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let postgres = std::env::var("GATEHOUSE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let run = Command::new(exe)
        .args(["run", "--smoke", "--layout", "both", "--out"])
        .arg(&out)
        .env("GATEHOUSE_LOAD_POSTGRES_URL", postgres)
        .output()
        .expect("run gatehouse-loadtests");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stdout}\n{stderr}");

    let summary = std::fs::read_to_string(out.join("summary.md")).expect("summary.md");
    let sections: Vec<&str> = summary.split("\n## ").skip(1).collect();
    assert_eq!(sections.len(), 2, "{summary}");
    assert!(sections[0].starts_with("embedded"), "{summary}");
    assert!(sections[1].starts_with("PostgreSQL + Redis"), "{summary}");
    for section in &sections {
        // Every limit measured, with a ratio.
        for limit in LIMITS {
            let row = section
                .lines()
                .find(|l| l.contains(limit))
                .unwrap_or_else(|| panic!("no row {limit} in {section}"));
            let ratio: f64 = row.split('|').nth(4).unwrap().trim().parse().unwrap();
            assert!(ratio.is_finite() && ratio > 0.0, "{row}");
        }
        // Every scenario did its work, and the service answered as expected.
        let rows = morning_rows(section);
        for name in MORNING {
            let (_, count, _) = rows
                .iter()
                .find(|(n, _, _)| n == name)
                .unwrap_or_else(|| panic!("no {name} in {section}"));
            assert!(*count > 0, "{name}: {section}");
        }
        for (name, _, failed) in &rows {
            assert_eq!(*failed, 0, "{name} failed: {section}");
        }
        assert!(
            !section.contains("page sign-in problems"),
            "page sign-ins refused: {section}"
        );
        assert!(
            !section.contains("OpenID Connect sign-in problems"),
            "OIDC sign-ins refused: {section}"
        );
        let oidc = section
            .split("`POST /oauth2/token`): ")
            .nth(1)
            .and_then(|s| s.split(' ').next())
            .and_then(|n| n.parse::<f64>().ok())
            .expect("the OIDC sign-ins' rate");
        assert!(oidc > 0.0, "no OIDC sign-in: {section}");
        assert!(
            !section.contains("Scenario problems"),
            "codes not read back, or sign-ins stuck: {section}"
        );
        let locked = section
            .split("Accounts locked by wrong passwords: ")
            .nth(1)
            .and_then(|s| s.split('.').next())
            .and_then(|n| n.parse::<u32>().ok())
            .expect("lockouts");
        assert!(locked > 0, "wrong passwords locked no account: {section}");
    }
    // The operators' copy: goose's own HTML report of each morning.
    for layout in ["embedded", "postgres"] {
        let html = std::fs::read_to_string(out.join(format!("{layout}-morning.html"))).unwrap();
        assert!(
            html.contains("<html") && html.contains("GET session"),
            "{layout}"
        );
    }
    let _ = std::fs::remove_dir_all(&out);
}
