//! The Gatehouse processes under test: started with one configuration, watched for
//! readiness and memory, stopped with SIGTERM (and killed if they do not stop).

use crate::flaw::Flaw;
use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// A free port on 127.0.0.1.
pub fn free_port() -> Result<u16, Flaw> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| Flaw(format!("no free port: {e}")))
}

/// What every process of one layout shares.
#[derive(Clone)]
pub struct Env {
    pub binary: PathBuf,
    pub dir: PathBuf,
    pub vars: BTreeMap<String, String>,
}

impl Env {
    fn command(&self, args: &[&str], log: &str) -> Result<Command, Flaw> {
        let mut c = Command::new(&self.binary);
        c.args(args)
            .current_dir(&self.dir)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(&self.vars)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        // Appended: a process started again (the worker, `serve`) keeps its earlier log.
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(log))
            .map_err(|e| Flaw(format!("log file {log}: {e}")))?;
        let err = out
            .try_clone()
            .map_err(|e| Flaw(format!("log file {log}: {e}")))?;
        c.stdout(out).stderr(err);
        Ok(c)
    }

    /// Runs a one-off subcommand to its end.
    pub async fn run(&self, args: &[&str], log: &str) -> Result<Duration, Flaw> {
        let started = Instant::now();
        let status = self
            .command(args, log)?
            .status()
            .await
            .map_err(|e| Flaw(format!("gatehouse {args:?}: {e}")))?;
        if !status.success() {
            let out = std::fs::read_to_string(self.dir.join(log)).unwrap_or_default();
            return Err(Flaw(format!("gatehouse {args:?} failed ({status}): {out}")));
        }
        Ok(started.elapsed())
    }

    /// Starts a long-running subcommand.
    pub fn spawn(&self, name: &str, args: &[&str]) -> Result<Service, Flaw> {
        let child = self
            .command(args, &format!("{name}.log"))?
            .spawn()
            .map_err(|e| Flaw(format!("gatehouse {args:?}: {e}")))?;
        Ok(Service {
            name: name.to_owned(),
            pid: child.id().unwrap_or_default(),
            child,
            started: Instant::now(),
            log: self.dir.join(format!("{name}.log")),
        })
    }
}

pub struct Service {
    pub name: String,
    pub pid: u32,
    child: Child,
    pub started: Instant,
    pub log: PathBuf,
}

impl Service {
    /// Waits until `url` answers 200 (at most 60 s); answers the time since the start.
    pub async fn ready(&mut self, url: &str) -> Result<Duration, Flaw> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| Flaw(e.to_string()))?;
        loop {
            if let Ok(r) = client.get(url).send().await
                && r.status().is_success()
            {
                return Ok(self.started.elapsed());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(Flaw(format!(
                    "{} exited ({status}) before it was ready: {}",
                    self.name,
                    tail(&self.log)
                )));
            }
            if self.started.elapsed() > Duration::from_secs(60) {
                return Err(Flaw(format!("{} not ready in 60 s", self.name)));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// SIGKILL (`kill -9`): no clean stop; waits until the process is gone.
    pub async fn kill9(mut self) -> Result<(), Flaw> {
        self.child
            .start_kill()
            .map_err(|e| Flaw(format!("kill -9 {}: {e}", self.name)))?;
        let _ = self.child.wait().await;
        Ok(())
    }

    /// SIGTERM, then up to 30 s for a clean stop, then SIGKILL.
    pub async fn stop(mut self) -> Result<(), Flaw> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .await;
        match tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await {
            Ok(Ok(_)) => Ok(()),
            _ => {
                let _ = self.child.kill().await;
                Err(Flaw(format!("{} did not stop on SIGTERM", self.name)))
            }
        }
    }
}

/// The last lines of a log, for an error message.
pub fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// `VmRSS` of a process, in bytes (0 when it cannot be read).
pub fn rss_of(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// Samples the peak RSS of some processes every 100 ms until dropped.
pub struct PeakRss {
    peaks: Vec<(String, Arc<AtomicU64>)>,
    stop: Arc<Mutex<bool>>,
}

impl PeakRss {
    pub fn watch(services: &[(&str, u32)]) -> PeakRss {
        let stop = Arc::new(Mutex::new(false));
        let mut peaks = Vec::new();
        for (name, pid) in services {
            let peak = Arc::new(AtomicU64::new(rss_of(*pid)));
            peaks.push(((*name).to_owned(), peak.clone()));
            let (pid, stop) = (*pid, stop.clone());
            tokio::spawn(async move {
                loop {
                    peak.fetch_max(rss_of(pid), Ordering::Relaxed);
                    if stop.lock().map(|s| *s).unwrap_or(true) {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            });
        }
        PeakRss { peaks, stop }
    }

    /// The peaks so far, by process name.
    pub fn peaks(&self) -> Vec<(String, u64)> {
        self.peaks
            .iter()
            .map(|(n, p)| (n.clone(), p.load(Ordering::Relaxed)))
            .collect()
    }
}

impl Drop for PeakRss {
    fn drop(&mut self) {
        if let Ok(mut s) = self.stop.lock() {
            *s = true;
        }
    }
}
