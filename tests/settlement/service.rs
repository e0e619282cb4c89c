//! The real `issuer serve` as a child process of a test: started on port 0, its first stdout line
//! read for the URL, stopped with SIGTERM (or killed, as a crash would) by its process id.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::common::{Bin, World, s};

/// A running `issuer serve --listen 127.0.0.1:0`, stopped (SIGTERM, then SIGKILL) when dropped.
pub struct Service {
    child: Option<Child>,
    /// The service's base URL.
    pub url: String,
    log: PathBuf,
}

impl Service {
    /// Starts the service on the world's issuer home at clock `now`; returns once it listens.
    pub fn start(w: &World, now: &str) -> Service {
        let log = w.file("serve", "log");
        let err = std::fs::File::create(&log).expect("service log");
        let home = w.home();
        let mut cmd = Command::new(Bin::Issuer.path());
        cmd.args(["--home", s(&home), "serve", "--listen", "127.0.0.1:0"])
            .current_dir(w.dir())
            .env("TONGBAO_NOW", now)
            .env_remove("TONGBAO_ISSUER_HOME")
            .env_remove("TONGBAO_WALLET")
            .env("HOME", w.dir().join("no-such-home"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(err));
        let mut child = cmd.spawn().expect("start issuer serve");
        let stdout = child.stdout.take().expect("service stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            let mut first = String::new();
            let _ = r.read_line(&mut first);
            let _ = tx.send(first);
            // Keep draining, so the service never blocks on a full pipe.
            let _ = std::io::copy(&mut r, &mut std::io::sink());
        });
        let mut svc = Service {
            child: Some(child),
            url: String::new(),
            log,
        };
        let first = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_default();
        match first.trim().strip_prefix("listening on ") {
            Some(url) if url.starts_with("http://127.0.0.1:") => svc.url = url.to_string(),
            _ => {
                svc.kill();
                panic!(
                    "issuer serve did not say `listening on URL` (first line {first:?}); its stderr:\n{}",
                    std::fs::read_to_string(&svc.log).unwrap_or_default()
                );
            }
        }
        svc
    }

    /// Stops the service cleanly (SIGTERM) and waits for it; it removes its service.json.
    pub fn stop(mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "issuer serve did not stop on SIGTERM within 30s; its stderr:\n{}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }

    /// Kills the service (SIGKILL, as a crash would): its service.json stays behind.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.kill();
    }
}
