//! The table of ratios and the markdown summary.

use crate::scenarios::Figures;
use std::collections::BTreeMap;
use std::fmt::Write;

/// The figures kept for the summary beside the table.
#[derive(Debug, Clone, Default)]
pub struct Limits {
    pub logins: Figures,
    pub session: Figures,
    pub busy_session: Figures,
}

/// One measured limit.
#[derive(Debug, Clone)]
pub struct Row {
    pub name: String,
    pub measured: String,
    /// What it is compared with (a limit of the machine measured in the same run, or a
    /// fixed limit from architecture.md).
    pub reference: String,
    pub ratio: f64,
    pub target: String,
    pub met: bool,
}

/// Everything measured on one layout.
#[derive(Debug, Clone)]
pub struct LayoutResult {
    pub layout: String,
    pub rows: Vec<Row>,
    /// The clinic morning's requests.
    pub morning: BTreeMap<String, Figures>,
    /// How the morning's staff passed the second step.
    pub morning_seconds: BTreeMap<String, usize>,
    pub lockouts: usize,
    pub problems: BTreeMap<String, usize>,
    pub notes: Vec<String>,
    pub limits: Limits,
}

impl LayoutResult {
    /// The table of ratios.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "| limit | measured | compared with | ratio | target | met |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|");
        for r in &self.rows {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {:.2} | {} | {} |",
                r.name,
                r.measured,
                r.reference,
                r.ratio,
                r.target,
                if r.met { "yes" } else { "**no**" }
            );
        }
        s
    }

    /// The clinic morning's requests.
    pub fn morning_table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "| request | count | failed | per s | p50 ms | p99 ms | max ms |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|");
        for (name, f) in &self.morning {
            let _ = writeln!(
                s,
                "| {name} | {} | {} | {:.1} | {} | {} | {} |",
                f.count, f.failures, f.per_second, f.p50_ms, f.p99_ms, f.max_ms
            );
        }
        s
    }
}

/// The machine the numbers come from.
pub fn machine() -> String {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpu = read("/proc/cpuinfo")
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_kb: u64 = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    format!(
        "{cores} cores ({cpu}), {:.1} GiB memory, Linux {}",
        mem_kb as f64 / 1024.0 / 1024.0,
        read("/proc/sys/kernel/osrelease").trim()
    )
}

/// The whole summary.
pub fn markdown(results: &[LayoutResult], parameters: &str, commit: &str, date: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Gatehouse load test, {date}\n");
    let _ = writeln!(s, "- machine: {}", machine());
    let _ = writeln!(s, "- commit: {commit}");
    let _ = writeln!(s, "- parameters: {parameters}");
    let _ = writeln!(
        s,
        "- every ratio compares figures measured in the same run on this machine; load from goose on 127.0.0.1, sharing the cores with the service\n"
    );
    for r in results {
        let _ = writeln!(s, "## {}\n", r.layout);
        s.push_str(&r.table());
        let _ = writeln!(s);
        for n in &r.notes {
            let _ = writeln!(s, "- {n}");
        }
        let l = &r.limits;
        let _ = writeln!(
            s,
            "- password sign-ins: p50 {} ms, p99 {} ms; session checks alone: p50 {} ms, p99 {} ms; with sign-ins saturating Argon2id: p50 {} ms, p99 {} ms",
            l.logins.p50_ms,
            l.logins.p99_ms,
            l.session.p50_ms,
            l.session.p99_ms,
            l.busy_session.p50_ms,
            l.busy_session.p99_ms
        );
        let seconds: Vec<String> = r
            .morning_seconds
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let _ = writeln!(
            s,
            "\n### Clinic morning\n\nStaff sign-ins by second step: {}. Accounts locked by wrong passwords: {}.\n",
            if seconds.is_empty() {
                "none".into()
            } else {
                seconds.join(", ")
            },
            r.lockouts
        );
        s.push_str(&r.morning_table());
        if !r.problems.is_empty() {
            let _ = writeln!(s, "\nScenario problems (not HTTP failures):\n");
            for (p, n) in &r.problems {
                let _ = writeln!(s, "- {n} x {p}");
            }
        }
        let _ = writeln!(s);
    }
    s
}
