//! 64 bad clients hammer the settlement service on 127.0.0.1 while honest wallets keep syncing.
//! See docs/testing.md#bad-input.
//!
//! Every bad request gets a 4xx with its stable code (the JSON error body names one of
//! `ERROR_CODES`, with the status that code has), never a 5xx and never a crash; slow clients are
//! cut off with 408 (or left to time out on their own, without holding anybody up); and every
//! honest sync started during the storm succeeds and applies. Bounded: each bad client stops after
//! a fixed number of requests or when the storm's time is up (a few seconds), loopback only.
//!
//! Kinds of bad client: oversized bodies, slow headers (slow loris), slow bodies, malformed JSON,
//! a wrong content type, bad hex, truncated and forged-count messages, wrong and missing
//! signatures, a sync id replayed with another request, a stale counter (a rolled-back wallet),
//! a wallet's sync request re-signed by another key (claiming its credits), another wallet's
//! payment re-sent online after it was spent, unknown wallets, operator calls without the token,
//! unknown routes and methods. Replaying another wallet's registration is checked on its own
//! (known defect D5, fixed).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use issuer::Issuer;
use issuer::server::{self, ERROR_CODES, ServerConfig};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::{Value, json};
use tongbao::codec::{Decode, Encode};
use tongbao::protocol::certificate::{Certificate, Registration, WalletKind};
use tongbao::protocol::file::{NoteBundle, TbFile};
use tongbao::protocol::sync::{SyncRequest, SyncResponse};
use tongbao::store::MemStore;
use tongbao::wallet::{PayTarget, Wallet};
use tongbao::{Fen, SecretKey, Signature};

const NOW: u64 = 1_795_253_400;
const TOKEN: &str = "hammer-operator-token-0123456789abcdef0123456789abcdef";
const BAD_CLIENTS: usize = 64;
/// How long the storm lasts; each bad client also stops after this many requests.
const STORM: Duration = Duration::from_secs(6);
const PER_CLIENT: usize = 200;
const BODY_LIMIT: usize = 64 * 1024;
const REQUEST_TIMEOUT: Duration = Duration::from_millis(1_500);

struct Server {
    addr: SocketAddr,
    issuer: Arc<Issuer>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<anyhow::Result<()>>>,
    _home: tempfile::TempDir,
}

fn start() -> Server {
    let home = tempfile::tempdir().unwrap();
    let issuer =
        Arc::new(Issuer::init_dir(home.path(), NOW, &mut StdRng::seed_from_u64(1)).unwrap());
    let config = ServerConfig {
        operator_token: Some(TOKEN.into()),
        clock: Some(NOW),
        body_limit: BODY_LIMIT,
        request_timeout: REQUEST_TIMEOUT,
        shutdown_grace: Duration::from_secs(3),
        ..ServerConfig::default()
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (tx, rx) = std::sync::mpsc::channel();
    let iss = issuer.clone();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            tx.send(listener.local_addr()?)?;
            server::run(listener, iss, config, async {
                let _ = stopped.await;
            })
            .await
        })
    });
    Server {
        addr: rx.recv().unwrap(),
        issuer,
        stop: Some(stop),
        thread: Some(thread),
        _home: home,
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// Status and JSON body.
fn post(url: &str, ctype: Option<&str>, body: &[u8], token: Option<&str>) -> (u16, Value) {
    let mut r = agent().post(url);
    if let Some(c) = ctype {
        r = r.header("Content-Type", c);
    }
    if let Some(t) = token {
        r = r.header("Authorization", format!("Bearer {t}"));
    }
    match r.send(body) {
        Ok(mut resp) => {
            let status = resp.status().as_u16();
            let text = resp.body_mut().read_to_string().unwrap_or_default();
            (status, serde_json::from_str(&text).unwrap_or(Value::Null))
        }
        // The server may close a connection it refused before reading the whole body.
        Err(e) => (0, json!({ "transport": e.to_string() })),
    }
}

fn post_json(url: &str, body: &Value) -> (u16, Value) {
    post(
        url,
        Some("application/json"),
        body.to_string().as_bytes(),
        None,
    )
}

fn hex_of<T: Encode>(m: &T) -> String {
    hex::encode(m.to_bytes())
}

fn msg<T: Decode>(v: &Value) -> T {
    T::decode(&hex::decode(v.as_str().expect("hex string")).unwrap()).unwrap()
}

/// What a bad request must get: a 4xx whose body is a stable error with that status.
fn assert_stable_4xx(kind: &str, status: u16, body: &Value, want: &[&str]) {
    assert!(
        (400..500).contains(&status),
        "{kind}: status {status}, never 5xx: {body}"
    );
    let code = body["code"].as_u64().unwrap_or_default();
    let name = body["error"].as_str().unwrap_or_default();
    let known = ERROR_CODES
        .iter()
        .find(|c| u64::from(c.code()) == code && c.name() == name)
        .unwrap_or_else(|| panic!("{kind}: not a stable error code: {body}"));
    assert_eq!(known.status().as_u16(), status, "{kind}: {body}");
    assert!(
        want.contains(&name),
        "{kind}: got {name}, expected one of {want:?}: {body}"
    );
    let m = body["message"].as_str().unwrap_or_default();
    assert!(!m.is_empty() && !m.contains('\n'), "{kind}: message {m:?}");
}

/// A wallet over memory, registered and funded through the service.
fn honest_wallet(url: &str, rng: &mut StdRng, fen: u64) -> Wallet<MemStore> {
    let mut resp = agent().get(format!("{url}/v1/keys")).call().unwrap();
    let v: Value = serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
    let keys = msg(&v["keyset"]);
    let (w, reg) =
        Wallet::create(MemStore::new(), WalletKind::Personal, None, keys, NOW, rng).unwrap();
    let (s, b) = post_json(
        &format!("{url}/v1/register"),
        &json!({ "registration": hex_of(&reg), "class": "II" }),
    );
    assert_eq!(s, 200, "{b}");
    let cert: Certificate = msg(&b["certificate"]);
    w.import(TbFile::Certificate(cert), NOW).unwrap();
    let body = json!({ "to": w.public().address(), "amount_fen": fen }).to_string();
    let (s, b) = post(
        &format!("{url}/v1/operator/issue"),
        Some("application/json"),
        body.as_bytes(),
        Some(TOKEN),
    );
    assert_eq!(s, 200, "{b}");
    let notes: NoteBundle = msg(&b["notes"]);
    w.import(TbFile::Notes(notes), NOW).unwrap();
    w
}

fn sync_over_http(url: &str, w: &Wallet<MemStore>, rng: &mut StdRng) -> SyncRequest {
    let req = w.begin_sync(Fen::ZERO, Fen::ZERO, NOW, rng).unwrap();
    let (s, b) = post_json(
        &format!("{url}/v1/sync"),
        &json!({ "request": hex_of(&req) }),
    );
    assert_eq!(s, 200, "honest sync refused during the storm: {b}");
    let resp: SyncResponse = msg(&b["response"]);
    w.apply_sync(&resp, NOW).unwrap();
    req
}

/// Raw HTTP on one connection: writes `head` (and `body` slowly if asked), returns the status
/// line's code (0 if the server closed without answering).
fn raw(
    addr: SocketAddr,
    head: &str,
    body: &[u8],
    trickle: Option<Duration>,
    deadline: Instant,
) -> u16 {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return 0;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
    if s.write_all(head.as_bytes()).is_err() {
        return 0;
    }
    match trickle {
        None => {
            let _ = s.write_all(body);
        }
        Some(gap) => {
            for b in body {
                if Instant::now() > deadline || s.write_all(&[*b]).is_err() {
                    break;
                }
                std::thread::sleep(gap);
            }
        }
    }
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while let Ok(n) = s.read(&mut chunk) {
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    let line = String::from_utf8_lossy(&buf);
    line.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// Ready-made bad inputs, made once from real wallets.
struct Ammo {
    /// A valid, settled sync request of `victim`.
    victim_sync: SyncRequest,
    /// A request of the victim's, re-signed by the thief (claiming its credits).
    stolen: SyncRequest,
    /// The victim's request under its settled sync id, changed (a replay with other content).
    reused_id: SyncRequest,
    /// The victim's settled request with an older counter (a rolled-back wallet).
    stale: SyncRequest,
    /// A request of a key the issuer never certified.
    unknown: SyncRequest,
    /// An online payment already settled, and another spending the same coins (from a backup).
    spent_payment: tongbao::protocol::payment::Payment,
}

fn ammo(url: &str, rng: &mut StdRng) -> Ammo {
    let victim = honest_wallet(url, rng, 50_000);
    let backup = Wallet::open(victim.store().snapshot()).unwrap();
    let shop = honest_wallet(url, rng, 100);
    // The victim pays online, then its backup spends the same coins: refused online.
    let p = victim
        .pay(
            PayTarget::Direct {
                to: shop.public(),
                amount: Fen(1_000),
            },
            NOW,
            rng,
        )
        .unwrap();
    let (s, b) = post_json(&format!("{url}/v1/pay"), &json!({ "payment": hex_of(&p) }));
    assert_eq!(s, 200, "{b}");
    let spent_payment = backup
        .pay(
            PayTarget::Direct {
                to: shop.public(),
                amount: Fen(2_000),
            },
            NOW,
            rng,
        )
        .unwrap();
    let victim_sync = sync_over_http(url, &victim, rng);
    let thief = SecretKey::generate(rng);
    let stolen = SyncRequest {
        signature: Signature([0; 64]),
        ..victim_sync.clone()
    }
    .signed(&thief);
    // A wallet whose key the test holds, to sign what the engine never would.
    let raw = SecretKey::generate(rng);
    let reg = Registration::sign(&raw, WalletKind::Personal, None, NOW);
    let (s, b) = post_json(
        &format!("{url}/v1/register"),
        &json!({ "registration": hex_of(&reg) }),
    );
    assert_eq!(s, 200, "{b}");
    let raw_sync = |id: u8, counter: u64| {
        SyncRequest {
            wallet: raw.public(),
            sync_id: tongbao::Nonce([id; 16]),
            time: NOW,
            counter,
            topup: Fen::ZERO,
            redeem: Fen::ZERO,
            coins: vec![],
            proofs: vec![],
            signature: Signature([0; 64]),
        }
        .signed(&raw)
    };
    let (s, b) = post_json(
        &format!("{url}/v1/sync"),
        &json!({ "request": hex_of(&raw_sync(1, 5)) }),
    );
    assert_eq!(s, 200, "{b}");
    // The same sync id with other content, and a counter behind the last certificate.
    let reused_id = raw_sync(1, 6);
    let stale = raw_sync(2, 1);
    let unknown_key = SecretKey::generate(rng);
    let unknown = SyncRequest {
        wallet: unknown_key.public(),
        sync_id: tongbao::Nonce([0xEE; 16]),
        signature: Signature([0; 64]),
        ..victim_sync.clone()
    }
    .signed(&unknown_key);
    Ammo {
        victim_sync,
        stolen,
        reused_id,
        stale,
        unknown,
        spent_payment,
    }
}

/// One bad client: `kind` picks what it does; returns how many answers it checked.
fn bad_client(
    kind: usize,
    url: &str,
    addr: SocketAddr,
    a: &Ammo,
    stop: &AtomicBool,
    deadline: Instant,
) -> u64 {
    let sync_url = format!("{url}/v1/sync");
    let mut checked = 0;
    for n in 0..PER_CLIENT {
        if stop.load(Ordering::Relaxed) || Instant::now() > deadline {
            break;
        }
        let sync_hex = |r: &SyncRequest| json!({ "request": hex_of(r) });
        let (what, status, body, want): (&str, u16, Value, &[&str]) = match kind % 16 {
            0 => {
                let big = vec![b'a'; BODY_LIMIT + 1 + n];
                let (s, b) = post(&sync_url, Some("application/json"), &big, None);
                if s == 0 {
                    continue; // closed while we were still sending: refused all the same
                }
                ("oversized body", s, b, &["payload_too_large"])
            }
            1 => {
                // Slow loris: headers that never end, one byte at a time.
                let code = raw(
                    addr,
                    "POST /v1/sync HTTP/1.1\r\nHost: 127.0.0.1\r\n",
                    b"X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
                    Some(Duration::from_millis(50)),
                    deadline,
                );
                assert!(
                    code == 0 || (400..500).contains(&code),
                    "slow headers: {code}"
                );
                checked += 1;
                continue;
            }
            2 => {
                // Slow body: declared length, trickled; the request timeout answers 408.
                let head = "POST /v1/sync HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n";
                let code = raw(
                    addr,
                    head,
                    &[b' '; 200],
                    Some(Duration::from_millis(20)),
                    deadline,
                );
                assert!(code == 0 || code == 408, "slow body: {code}");
                checked += 1;
                continue;
            }
            3 => {
                let (s, b) = post(
                    &sync_url,
                    Some("application/json"),
                    b"{\"request\": [1, 2",
                    None,
                );
                ("malformed JSON", s, b, &["bad_request"])
            }
            4 => {
                let (s, b) = post(
                    &sync_url,
                    Some("text/plain"),
                    sync_hex(&a.victim_sync).to_string().as_bytes(),
                    None,
                );
                ("wrong content type", s, b, &["bad_request"])
            }
            5 => {
                let (s, b) = post_json(&sync_url, &json!({ "request": "zz-not-hex" }));
                ("bad hex", s, b, &["bad_request"])
            }
            6 => {
                let h = hex_of(&a.victim_sync);
                let cut = (n * 37) % (h.len() / 2) * 2;
                let (s, b) = post_json(&sync_url, &json!({ "request": &h[..cut] }));
                ("truncated message", s, b, &["decode_error"])
            }
            7 => {
                let mut r = a.victim_sync.clone();
                r.signature.0[n % 64] ^= 1 << (n % 8);
                let (s, b) = post_json(&sync_url, &sync_hex(&r));
                ("wrong signature", s, b, &["bad_signature", "decode_error"])
            }
            8 => {
                let r = SyncRequest {
                    signature: Signature([0; 64]),
                    ..a.victim_sync.clone()
                };
                let (s, b) = post_json(&sync_url, &sync_hex(&r));
                (
                    "missing signature",
                    s,
                    b,
                    &["bad_signature", "decode_error"],
                )
            }
            9 => {
                let (s, b) = post_json(&sync_url, &sync_hex(&a.reused_id));
                ("sync id replayed with another request", s, b, &["conflict"])
            }
            10 => {
                let (s, b) = post_json(&sync_url, &sync_hex(&a.stolen));
                (
                    "another wallet's request re-signed",
                    s,
                    b,
                    &["bad_signature"],
                )
            }
            11 => {
                let (s, b) = post_json(&sync_url, &sync_hex(&a.stale));
                ("stale counter (rolled back)", s, b, &["refused"])
            }
            12 => {
                let (s, b) = post_json(&sync_url, &sync_hex(&a.unknown));
                ("unknown wallet", s, b, &["unknown_wallet"])
            }
            13 => {
                let (s, b) = post_json(
                    &format!("{url}/v1/pay"),
                    &json!({ "payment": hex_of(&a.spent_payment) }),
                );
                (
                    "spent coins paid online again",
                    s,
                    b,
                    &["verification_failed", "refused", "revoked"],
                )
            }
            14 => {
                let token = if n % 2 == 0 {
                    None
                } else {
                    Some("wrong-token")
                };
                let (s, b) = post(
                    &format!("{url}/v1/operator/issue"),
                    Some("application/json"),
                    br#"{"to":"tbw1x","amount_fen":100}"#,
                    token,
                );
                ("operator call without the token", s, b, &["unauthorized"])
            }
            _ => {
                if n % 2 == 0 {
                    let (s, b) = post_json(&format!("{url}/v1/nowhere"), &json!({}));
                    ("unknown route", s, b, &["not_found"])
                } else {
                    let (s, b) = post_json(&format!("{url}/v1/health"), &json!({}));
                    ("wrong method", s, b, &["method_not_allowed"])
                }
            }
        };
        if status == 0 {
            // Only the oversized and slow clients may see a closed connection.
            panic!("{what}: the server closed the connection without answering: {body}");
        }
        assert_stable_4xx(what, status, &body, want);
        checked += 1;
    }
    checked
}

#[test]
fn sixty_four_bad_clients_and_honest_wallets_keep_syncing() {
    let srv = start();
    let url = format!("http://{}", srv.addr);
    let mut rng = StdRng::seed_from_u64(2);
    let a = Arc::new(ammo(&url, &mut rng));
    // The identical replay of a settled request is not an attack: it gets the same answer.
    let (s1, b1) = post_json(
        &format!("{url}/v1/sync"),
        &json!({ "request": hex_of(&a.victim_sync) }),
    );
    let (s2, b2) = post_json(
        &format!("{url}/v1/sync"),
        &json!({ "request": hex_of(&a.victim_sync) }),
    );
    assert_eq!((s1, s2), (200, 200));
    assert_eq!(
        b1["response"], b2["response"],
        "a replayed sync gets the stored response"
    );

    let honest: Vec<Wallet<MemStore>> = (0..4)
        .map(|_| honest_wallet(&url, &mut rng, 20_000))
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + STORM;
    let checked = Arc::new(AtomicU64::new(0));
    let bad: Vec<_> = (0..BAD_CLIENTS)
        .map(|i| {
            let (url, a, stop, checked) = (url.clone(), a.clone(), stop.clone(), checked.clone());
            let addr = srv.addr;
            std::thread::spawn(move || {
                let n = bad_client(i, &url, addr, &a, &stop, deadline);
                checked.fetch_add(n, Ordering::Relaxed);
            })
        })
        .collect();
    // Meanwhile the honest wallets pay each other offline and sync, round after round.
    let mut rounds = 0;
    let mut syncs = 0;
    while Instant::now() < deadline {
        for i in 0..honest.len() {
            let (from, to) = (&honest[i], &honest[(i + 1) % honest.len()]);
            let p = from
                .pay(
                    PayTarget::Direct {
                        to: to.public(),
                        amount: Fen(100),
                    },
                    NOW,
                    &mut rng,
                )
                .unwrap();
            to.receive(&p, NOW).unwrap();
        }
        for w in &honest {
            sync_over_http(&url, w, &mut rng);
            syncs += 1;
        }
        rounds += 1;
    }
    stop.store(true, Ordering::Relaxed);
    for t in bad {
        t.join().expect("a bad client's checks failed");
    }
    let checked = checked.load(Ordering::Relaxed);
    println!(
        "hammer: {checked} bad requests answered 4xx; {syncs} honest syncs in {rounds} rounds"
    );
    assert!(
        rounds >= 2,
        "honest wallets synced only {rounds} round(s) during the storm"
    );
    assert!(
        checked >= BAD_CLIENTS as u64,
        "only {checked} bad requests checked"
    );
    // Every honest wallet has exactly what it was given: 200.00 each (the payments went round).
    for w in &honest {
        assert_eq!(w.balance(NOW).unwrap().total_fen, 20_000);
    }
    let audit = srv.issuer.audit().unwrap();
    assert!(audit.ok, "{:?}", audit.problems);
    let mut resp = agent().get(format!("{url}/v1/health")).call().unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let _ = resp.body_mut().read_to_string();
}

/// Known defect D5 (docs/testing.md), fixed: a wallet's registration is public (it rides in files
/// and over the wire), and anyone could replay it to `/v1/register` and re-certify that wallet in
/// the class of their choosing. A key already certified is now `409 conflict` unless the request
/// asks for exactly the certificate it holds, which comes back unchanged.
#[test]
fn replaying_another_wallets_registration_is_refused() {
    let srv = start();
    let url = format!("http://{}", srv.addr);
    let mut rng = StdRng::seed_from_u64(3);
    let keys = srv.issuer.keyset().unwrap();
    let (_, reg) = Wallet::create(
        MemStore::new(),
        WalletKind::Personal,
        None,
        keys,
        NOW,
        &mut rng,
    )
    .unwrap();
    let register = |class: &str| {
        post_json(
            &format!("{url}/v1/register"),
            &json!({ "registration": hex_of(&reg), "class": class }),
        )
    };
    let (s, b) = register("I");
    assert_eq!(s, 200, "{b}");
    let cert: Certificate = msg(&b["certificate"]);
    // Somebody else replays it, asking for another class: refused, nothing changes.
    for class in ["IV", "II"] {
        let (s, b) = register(class);
        assert_stable_4xx("replayed registration", s, &b, &["conflict"]);
        assert_eq!(s, 409, "{b}");
        assert!(
            b["message"]
                .as_str()
                .is_some_and(|m| m.contains("already certified")),
            "{b}"
        );
    }
    let rec = srv.issuer.wallet(&reg.wallet).unwrap().unwrap();
    assert_eq!(rec.class, "I", "the wallet's class is unchanged");
    assert_eq!(rec.cert_serial, 1, "no new certificate");
    // Replayed as it was: the certificate the wallet holds, unchanged, and still no new one.
    let (s, b) = register("I");
    assert_eq!(s, 200, "{b}");
    assert_eq!(msg::<Certificate>(&b["certificate"]), cert);
    assert_eq!(
        srv.issuer.wallet(&reg.wallet).unwrap().unwrap().cert_serial,
        1
    );
    let _ = Registration::decode(&reg.to_bytes()).unwrap();
}
