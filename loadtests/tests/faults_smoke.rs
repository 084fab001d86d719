//! The CI smoke of issue 22's fault runs: `gatehouse-loadtests faults --smoke` on 4
//! practices x 24 users, against the real `gatehouse` binary, PostgreSQL and a Redis of
//! its own: the worker killed (`kill -9`) twice while it drains a backlog, Redis killed
//! for 5 s during sign-ins. It asserts what must hold whatever the machine's speed: no
//! code lost, none still waiting, no used code recorded `failed`, every delivery sent
//! twice shows its unknown attempt in its history and its audit; it asserts no time
//! (the full run's figures are in docs/performance.md). Each kill run waits out the 60 s claim
//! lease of the sends it interrupted, so this takes about two and a half minutes.
//!
//! It loads the machine, so it is ignored in the main run and run after it by
//! `scripts/test`, one load test at a time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

/// The figure `name` of a printed run line (`..., name N, ...`).
fn figure(line: &str, name: &str) -> u64 {
    line.split(&format!("{name} "))
        .nth(1)
        .and_then(|s| s.split([',', ' ', ';']).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {line}"))
}

#[test]
#[ignore = "loads the machine: scripts/test runs it after the suite"]
fn issue_22_fault_runs_lose_no_code_and_record_every_resend() {
    let exe = Path::new(env!("CARGO_BIN_EXE_gatehouse-loadtests"));
    let gatehouse = exe.with_file_name("gatehouse");
    assert!(
        gatehouse.is_file(),
        "build the gatehouse binary first (the workspace's tests do): {}",
        gatehouse.display()
    );
    let out = std::env::temp_dir().join(format!("gatehouse-faults-smoke-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let postgres = std::env::var("GATEHOUSE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let run = Command::new(exe)
        .args(["faults", "--smoke", "--out"])
        .arg(&out)
        .env("GATEHOUSE_LOAD_POSTGRES_URL", postgres)
        .output()
        .expect("run gatehouse-loadtests faults");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stdout}\n{stderr}");
    let runs: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with('(') && l.contains("accepted"))
        .collect();
    assert_eq!(runs.len(), 3, "{stdout}\n{stderr}");
    for line in &runs {
        assert!(figure(line, "accepted") > 0, "{line}");
        assert_eq!(figure(line, "lost"), 0, "{line}\n{stderr}");
        assert_eq!(figure(line, "still verifying"), 0, "{line}\n{stderr}");
        assert_eq!(figure(line, "recorded failed while used"), 0, "{line}");
        assert_eq!(
            figure(line, "delivered"),
            figure(line, "accepted"),
            "{line}"
        );
        let twice = figure(line, "delivered twice");
        let shown = line
            .split("delivered twice ")
            .nth(1)
            .and_then(|s| s.split(')').next())
            .unwrap();
        assert!(
            shown.contains(&format!(
                "({twice} with the unknown attempt in the history, {twice} in the audit"
            )),
            "every resend is in the history and the audit: {line}"
        );
    }
    assert!(runs[2].contains("Redis up p50"), "{}", runs[2]);
    let _ = std::fs::remove_dir_all(&out);
}
