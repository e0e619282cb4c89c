//! Shared helpers for the integration tests that drive the real `wallet` and `issuer` binaries.
//!
//! * The binaries are found next to the test executable (`target/<profile>/`); if they are missing
//!   or older than the sources, they are built once per test process with
//!   `cargo build -p wallet-cli -p issuer` in the same profile.
//! * Every command runs with a pinned clock (`TONGBAO_NOW`), its own temporary directories, no
//!   `TONGBAO_WALLET` / `TONGBAO_ISSUER_HOME` from the environment, `HOME` pointing nowhere, and a
//!   time limit.
//! * [`World`] sets up an issuer and certified wallets in a few calls, so each test stays short.
//! * [`Snapshot`] is a wallet's visible state (`balance`, `history`, `outbox`, `proofs`, all
//!   `--json`), to assert "nothing changed".

#![allow(dead_code, clippy::unwrap_used)]

use std::cell::Cell;
use std::ffi::OsStr;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;
use tempfile::TempDir;

/// The pinned clock every command runs at unless a test says otherwise.
pub const NOW: &str = "2026-11-21T09:30:00Z";

/// Longest any single command may take before the test fails (it should take milliseconds).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// Which binary to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bin {
    /// `wallet` (package wallet-cli).
    Wallet,
    /// `issuer` (package issuer).
    Issuer,
}

impl Bin {
    fn name(self) -> &'static str {
        match self {
            Bin::Wallet => "wallet",
            Bin::Issuer => "issuer",
        }
    }

    /// The binary's path (built first if needed).
    pub fn path(self) -> PathBuf {
        bin_dir().join(format!("{}{}", self.name(), std::env::consts::EXE_SUFFIX))
    }
}

/// The directory holding `wallet` and `issuer`: `target/<profile>/`, next to `deps/` where the test
/// executable lives. Builds the binaries once if they are missing or stale.
pub fn bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let exe = std::env::current_exe().expect("path of the test executable");
        let mut dir = exe
            .parent()
            .expect("test executable has a directory")
            .to_path_buf();
        if dir.ends_with("deps") {
            dir.pop();
        }
        let bins: Vec<PathBuf> = [Bin::Wallet, Bin::Issuer]
            .iter()
            .map(|b| dir.join(format!("{}{}", b.name(), std::env::consts::EXE_SUFFIX)))
            .collect();
        let newest_source = newest_source_mtime();
        let stale = bins.iter().any(|b| match std::fs::metadata(b) {
            Err(_) => true,
            Ok(m) => m.modified().map(|t| t < newest_source).unwrap_or(true),
        });
        if stale {
            build_binaries(&dir);
        }
        for b in &bins {
            assert!(
                b.is_file(),
                "{} is missing even after `cargo build -p wallet-cli -p issuer`",
                b.display()
            );
        }
        dir
    })
}

/// The workspace root (the root package's manifest directory).
pub fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Newest modification time among the sources the two binaries are built from.
fn newest_source_mtime() -> SystemTime {
    fn walk(p: &Path, newest: &mut SystemTime) {
        let Ok(meta) = std::fs::metadata(p) else {
            return;
        };
        if meta.is_dir() {
            if let Ok(entries) = std::fs::read_dir(p) {
                for e in entries.flatten() {
                    walk(&e.path(), newest);
                }
            }
        } else if let Ok(t) = meta.modified() {
            *newest = (*newest).max(t);
        }
    }
    let root = workspace_root();
    let mut newest = SystemTime::UNIX_EPOCH;
    for p in [
        "Cargo.toml",
        "Cargo.lock",
        "src",
        "wallet-cli/Cargo.toml",
        "wallet-cli/src",
        "issuer/Cargo.toml",
        "issuer/src",
    ] {
        walk(&root.join(p), &mut newest);
    }
    newest
}

/// `cargo build -p wallet-cli -p issuer` in the profile the tests were built in.
fn build_binaries(profile_dir: &Path) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace_root()).args([
        "build",
        "--quiet",
        "-p",
        "wallet-cli",
        "-p",
        "issuer",
    ]);
    match profile_dir.file_name().and_then(OsStr::to_str) {
        Some("debug") | None => {}
        Some("release") => {
            cmd.arg("--release");
        }
        Some(other) => {
            cmd.args(["--profile", other]);
        }
    }
    let out = cmd
        .output()
        .expect("run cargo to build the wallet and issuer binaries");
    assert!(
        out.status.success(),
        "building the binaries failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What a command did.
#[derive(Debug, Clone)]
pub struct Out {
    /// The command line, for messages.
    pub cmd: String,
    /// Exit code (-1 if killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Out {
    fn describe(&self) -> String {
        format!(
            "`{}` exited {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.cmd, self.code, self.stdout, self.stderr
        )
    }

    /// Asserts exit code 0 and returns self.
    #[track_caller]
    pub fn ok(self) -> Out {
        assert_eq!(self.code, 0, "expected success: {}", self.describe());
        self
    }

    /// Asserts a refusal: exit code 1 and stderr exactly one line `error: ...` that mentions
    /// every one of `needles` (case-insensitive). Returns the error line.
    #[track_caller]
    pub fn refused(&self, needles: &[&str]) -> String {
        assert_eq!(self.code, 1, "expected exit code 1: {}", self.describe());
        let line =
            one_error_line(&self.stderr).unwrap_or_else(|why| panic!("{why}: {}", self.describe()));
        let lower = line.to_lowercase();
        for n in needles {
            assert!(
                lower.contains(&n.to_lowercase()),
                "the error should mention {n:?}: {}",
                self.describe()
            );
        }
        line
    }

    /// Asserts a usage error: exit code 2.
    #[track_caller]
    pub fn usage_error(&self) {
        assert_eq!(self.code, 2, "expected a usage error: {}", self.describe());
        assert!(
            !self.stderr.trim().is_empty(),
            "a usage error should say what is wrong: {}",
            self.describe()
        );
    }

    /// Stdout parsed as JSON (panics with the output if it is not).
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.describe()))
    }
}

/// `Ok(line)` if `stderr` is exactly one line (with its newline) starting with `error: `.
pub fn one_error_line(stderr: &str) -> Result<String, String> {
    let body = stderr
        .strip_suffix('\n')
        .ok_or("stderr should end with a newline")?;
    if body.contains('\n') || body.contains('\r') {
        return Err("stderr should be exactly one line".into());
    }
    if !body.starts_with("error: ") || body.len() <= "error: ".len() {
        return Err("stderr should start with `error: ` and say why".into());
    }
    Ok(body.to_string())
}

/// Runs `bin args...` in `cwd` at clock `now` and returns what it did.
pub fn run<S: AsRef<OsStr>>(bin: Bin, cwd: &Path, now: &str, args: &[S]) -> Out {
    let mut cmd = Command::new(bin.path());
    cmd.args(args)
        .current_dir(cwd)
        .env("TONGBAO_NOW", now)
        .env_remove("TONGBAO_WALLET")
        .env_remove("TONGBAO_ISSUER_HOME")
        .env("HOME", cwd.join("no-such-home"));
    let shown = std::iter::once(bin.name().to_string())
        .chain(
            args.iter()
                .map(|a| a.as_ref().to_string_lossy().into_owned()),
        )
        .collect::<Vec<_>>()
        .join(" ");
    run_command(cmd, shown)
}

/// Runs a prepared command with piped output and the time limit.
pub fn run_command(mut cmd: Command, shown: String) -> Out {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start `{shown}`: {e}"));
    let drain = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out_t = drain(
        child
            .stdout
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let err_t = drain(
        child
            .stderr
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait for the command") {
            break s;
        }
        if start.elapsed() > COMMAND_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`{shown}` took longer than {COMMAND_TIMEOUT:?}: killed");
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    let stdout = out_t.join().expect("stdout reader");
    let stderr = err_t.join().expect("stderr reader");
    Out {
        cmd: shown,
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// A path as a `&str` argument (temporary directories are UTF-8 here).
pub fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// A wallet's visible state: `balance --json`, `history --json`, `outbox --json`, `proofs --json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// `wallet balance --json`.
    pub balance: String,
    /// `wallet history --json`.
    pub history: String,
    /// `wallet outbox --json`.
    pub outbox: String,
    /// `wallet proofs --json`.
    pub proofs: String,
}

impl Snapshot {
    /// Asserts `self` (after) equals `before`, naming the parts that changed and showing them.
    #[track_caller]
    pub fn assert_same_as(&self, before: &Snapshot, context: &str) {
        let parts = [
            ("balance", &before.balance, &self.balance),
            ("history", &before.history, &self.history),
            ("outbox", &before.outbox, &self.outbox),
            ("proofs", &before.proofs, &self.proofs),
        ];
        let changed: Vec<String> = parts
            .iter()
            .filter(|(_, b, a)| b != a)
            .map(|(what, b, a)| format!("--- {what} before ---\n{b}--- {what} after ---\n{a}"))
            .collect();
        assert!(
            changed.is_empty(),
            "{context}: the wallet changed\n{}",
            changed.join("")
        );
    }
}

/// A payment request made by a wallet.
#[derive(Debug, Clone)]
pub struct Request {
    /// The request file.
    pub file: PathBuf,
    /// The `tbreq1...` code.
    pub code: String,
    /// The request id (hex).
    pub id: String,
    /// Expiry (unix seconds).
    pub expires_at: u64,
}

/// An issuer with its key set exported, and wallets, all in one temporary directory.
pub struct World {
    dir: TempDir,
    /// The clock commands run at.
    pub now: String,
    seq: Cell<u32>,
}

impl Default for World {
    fn default() -> Self {
        World::new()
    }
}

impl World {
    /// `issuer init` and `issuer keys export` at [`NOW`].
    pub fn new() -> World {
        let w = World {
            dir: tempfile::Builder::new()
                .prefix("tongbao-test-")
                .tempdir()
                .expect("temporary directory"),
            now: NOW.to_string(),
            seq: Cell::new(0),
        };
        w.issuer(&["init"]).ok();
        let keys = w.keys();
        w.issuer(&["keys", "export", "--out", s(&keys)]).ok();
        w
    }

    /// The world's directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A path in the world's directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A fresh, unused file path `stem-N.ext`.
    pub fn file(&self, stem: &str, ext: &str) -> PathBuf {
        let n = self.seq.get() + 1;
        self.seq.set(n);
        self.path(&format!("{stem}-{n}.{ext}"))
    }

    /// The issuer home.
    pub fn home(&self) -> PathBuf {
        self.path("issuer")
    }

    /// The exported issuer key set.
    pub fn keys(&self) -> PathBuf {
        self.path("issuer-keys.tb")
    }

    /// A wallet's directory.
    pub fn wallet_dir(&self, name: &str) -> PathBuf {
        self.path(&format!("wallet-{name}"))
    }

    /// `issuer --home HOME args...`.
    pub fn issuer(&self, args: &[&str]) -> Out {
        let home = self.home();
        let mut all = vec!["--home", s(&home)];
        all.extend_from_slice(args);
        run(Bin::Issuer, self.dir(), &self.now, &all)
    }

    /// `wallet --wallet DIR args...` at the world's clock.
    pub fn wallet(&self, name: &str, args: &[&str]) -> Out {
        self.wallet_at(name, &self.now, args)
    }

    /// `wallet --wallet DIR args...` at clock `now`.
    pub fn wallet_at(&self, name: &str, now: &str, args: &[&str]) -> Out {
        let dir = self.wallet_dir(name);
        let mut all = vec!["--wallet", s(&dir)];
        all.extend_from_slice(args);
        run(Bin::Wallet, self.dir(), now, &all)
    }

    /// `wallet init`: returns the registration file.
    pub fn register(&self, name: &str, kind: &str) -> PathBuf {
        let reg = self.file(name, "reg");
        let keys = self.keys();
        self.wallet(
            name,
            &[
                "init",
                "--kind",
                kind,
                "--issuer-keys",
                s(&keys),
                "--out",
                s(&reg),
            ],
        )
        .ok();
        reg
    }

    /// `issuer certify REG --class C [--valid-for D]`: returns the certificate file.
    pub fn certify(&self, reg: &Path, class: &str, valid_for: Option<&str>) -> PathBuf {
        let cert = self.file("cert", "cert");
        let mut args = vec!["certify", s(reg), "--class", class, "--out", s(&cert)];
        if let Some(v) = valid_for {
            args.extend(["--valid-for", v]);
        }
        self.issuer(&args).ok();
        cert
    }

    /// A certified wallet: `wallet init`, `issuer certify`, `wallet import CERT`. Returns its
    /// address.
    pub fn add_wallet(&self, name: &str, kind: &str, class: &str) -> String {
        let reg = self.register(name, kind);
        let cert = self.certify(&reg, class, None);
        self.wallet(name, &["import", s(&cert)]).ok();
        self.address(name)
    }

    /// `wallet address`.
    pub fn address(&self, name: &str) -> String {
        self.wallet(name, &["address"])
            .ok()
            .stdout
            .trim()
            .to_string()
    }

    /// `issuer issue --to ADDRESS --amount A`: returns the notes file.
    pub fn issue(&self, address: &str, amount: &str) -> PathBuf {
        let notes = self.file("issued", "notes");
        self.issuer(&[
            "issue",
            "--to",
            address,
            "--amount",
            amount,
            "--out",
            s(&notes),
        ])
        .ok();
        notes
    }

    /// Issues `amount` to wallet `name` and imports it.
    pub fn fund(&self, name: &str, amount: &str) {
        let notes = self.issue(&self.address(name), amount);
        self.wallet(name, &["import", s(&notes)]).ok();
    }

    /// `wallet request --amount A --memo M --out FILE --json` on `name`.
    pub fn request(&self, name: &str, amount: &str, memo: &str) -> Request {
        self.request_with(name, amount, memo, &[])
    }

    /// Like [`World::request`] with extra arguments (e.g. `--expires-in 90s`).
    pub fn request_with(&self, name: &str, amount: &str, memo: &str, extra: &[&str]) -> Request {
        let file = self.file("request", "req");
        let mut args = vec![
            "request",
            "--amount",
            amount,
            "--memo",
            memo,
            "--out",
            s(&file),
            "--json",
        ];
        args.extend_from_slice(extra);
        let v = self.wallet(name, &args).ok().json();
        Request {
            code: v["code"].as_str().expect("request code").to_string(),
            id: v["request_id"].as_str().expect("request id").to_string(),
            expires_at: v["expires_at"].as_u64().expect("request expiry"),
            file,
        }
    }

    /// `wallet pay --request FILE_OR_CODE --out FILE` on `payer`: returns the payment file.
    pub fn pay_request(&self, payer: &str, request: &str) -> PathBuf {
        let out = self.file("payment", "pay");
        self.wallet(payer, &["pay", "--request", request, "--out", s(&out)])
            .ok();
        out
    }

    /// `wallet pay --to ADDRESS --amount A --out FILE` on `payer`: returns the payment file.
    pub fn pay_to(&self, payer: &str, address: &str, amount: &str) -> PathBuf {
        let out = self.file("payment", "pay");
        self.wallet(
            payer,
            &["pay", "--to", address, "--amount", amount, "--out", s(&out)],
        )
        .ok();
        out
    }

    /// `wallet receive FILE --receipt-out R` on `payee`: returns the receipt file.
    pub fn receive(&self, payee: &str, payment: &Path) -> PathBuf {
        let receipt = self.file("receipt", "receipt");
        self.wallet(
            payee,
            &["receive", s(payment), "--receipt-out", s(&receipt)],
        )
        .ok();
        receipt
    }

    /// `balance --json` "total_fen".
    pub fn total_fen(&self, name: &str) -> u64 {
        self.wallet(name, &["balance", "--json"]).ok().json()["total_fen"]
            .as_u64()
            .expect("total_fen")
    }

    /// The outbox payment ids.
    pub fn outbox_ids(&self, name: &str) -> Vec<String> {
        self.wallet(name, &["outbox", "--json"])
            .ok()
            .json()
            .as_array()
            .expect("outbox list")
            .iter()
            .map(|e| e["id"].as_str().expect("outbox id").to_string())
            .collect()
    }

    /// The wallet's visible state at the world's clock.
    pub fn snapshot(&self, name: &str) -> Snapshot {
        let get = |what: &str| self.wallet(name, &[what, "--json"]).ok().stdout;
        Snapshot {
            balance: get("balance"),
            history: get("history"),
            outbox: get("outbox"),
            proofs: get("proofs"),
        }
    }

    /// Copies a wallet directory (to roll it back later).
    pub fn copy_wallet(&self, from: &str, to: &str) {
        copy_dir(&self.wallet_dir(from), &self.wallet_dir(to));
    }

    /// Replaces wallet `name` by the copy `backup`.
    pub fn restore_wallet(&self, name: &str, backup: &str) {
        std::fs::remove_dir_all(self.wallet_dir(name)).expect("remove wallet");
        std::fs::rename(self.wallet_dir(backup), self.wallet_dir(name)).expect("restore wallet");
    }
}

/// Recursive directory copy.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create copy");
    for e in std::fs::read_dir(from).expect("read dir") {
        let e = e.expect("dir entry");
        let target = to.join(e.file_name());
        if e.file_type().expect("file type").is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).expect("copy file");
        }
    }
}

/// An RFC 3339 time `secs` seconds after `base`.
pub fn later(base: &str, secs: u64) -> String {
    let t = tongbao::time::parse_rfc3339(base).expect("RFC 3339 time");
    tongbao::time::format_rfc3339(t + secs)
}

/// `wallet --wallet DIR args...` on `w` with a failpoint set: the process aborts there.
pub fn wallet_crashing(w: &World, name: &str, failpoint: &str, args: &[&str]) -> Out {
    let dir = w.wallet_dir(name);
    let mut cmd = Command::new(Bin::Wallet.path());
    cmd.arg("--wallet")
        .arg(&dir)
        .args(args)
        .current_dir(w.dir())
        .env("TONGBAO_NOW", &w.now)
        .env("TONGBAO_FAILPOINT", failpoint)
        .env_remove("TONGBAO_WALLET")
        .env_remove("TONGBAO_ISSUER_URL");
    run_command(
        cmd,
        format!("wallet {} (failpoint {failpoint})", args.join(" ")),
    )
}

/// Asserts the process died (a crash is neither success nor a refusal).
#[track_caller]
pub fn assert_crashed(out: &Out) {
    assert_ne!(out.code, 0, "the process should have died: {out:?}");
    assert_ne!(out.code, 1, "a crash is not a refusal: {out:?}");
}
