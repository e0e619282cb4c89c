//! The settlement service over real HTTP on 127.0.0.1:0: every endpoint, the wallet engine syncing
//! through it, bad input of every kind, operator auth, concurrency with group commit, shutdown, and
//! the OpenAPI document kept true to the router.

use std::io::{Read as _, Write as _};
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use issuer::Issuer;
use issuer::server::{self, ERROR_CODES, Method, ROUTES, ServerConfig};
use serde_json::{Value, json};
use tongbao::codec::{Decode, Encode};
use tongbao::protocol::Context;
use tongbao::protocol::certificate::{Certificate, Registration, WalletClass, WalletKind};
use tongbao::protocol::file::{NoteBundle, TbFile};
use tongbao::protocol::keyset::IssuerKeySet;
use tongbao::protocol::revocation::RevocationList;
use tongbao::protocol::sync::{Confirmation, SyncRequest, SyncResponse};
use tongbao::store::MemStore;
use tongbao::wallet::{PayTarget, Wallet};
use tongbao::{Fen, Nonce, SecretKey, Signature};

/// 2026-11-21T09:30:00Z: the server's fixed clock and the wallets'.
const NOW: u64 = 1_795_253_400;
const TOKEN: &str = "5ecc0ffee5ecc0ffee5ecc0ffee5ecc0ffee5ecc0ffee5ecc0ffee5ecc0ffee00";

struct TestServer {
    url: String,
    addr: SocketAddr,
    issuer: Arc<Issuer>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<anyhow::Result<()>>>,
    _home: tempfile::TempDir,
}

struct Reply {
    status: u16,
    body: Value,
}

fn start() -> TestServer {
    start_with(|_| {})
}

fn start_with(tweak: impl FnOnce(&mut ServerConfig)) -> TestServer {
    let home = tempfile::tempdir().expect("tempdir");
    let issuer =
        Arc::new(Issuer::init_dir(home.path(), NOW, &mut rand::rng()).expect("issuer init"));
    let mut config = ServerConfig {
        operator_token: Some(TOKEN.into()),
        clock: Some(NOW),
        ..ServerConfig::default()
    };
    tweak(&mut config);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let iss = issuer.clone();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            addr_tx.send(listener.local_addr()?)?;
            let shutdown = async {
                let _ = stopped.await;
            };
            server::run(listener, iss, config, shutdown).await
        })
    });
    let addr = addr_rx.recv().expect("server address");
    TestServer {
        url: format!("http://{addr}"),
        addr,
        issuer,
        stop: Some(stop),
        thread: Some(thread),
        _home: home,
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into()
}

fn reply(resp: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Reply {
    let mut resp = resp.expect("HTTP exchange");
    let status = resp.status().as_u16();
    let is_json = resp
        .headers()
        .get("content-type")
        .is_some_and(|v| v.as_bytes() == b"application/json");
    let text = resp.body_mut().read_to_string().expect("body");
    assert!(is_json, "status {status}: not JSON: {text}");
    let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    Reply { status, body }
}

impl TestServer {
    fn get(&self, path: &str, token: Option<&str>) -> Reply {
        let mut r = agent().get(format!("{}{path}", self.url));
        if let Some(t) = token {
            r = r.header("Authorization", format!("Bearer {t}"));
        }
        reply(r.call())
    }

    fn post_raw(&self, path: &str, ctype: Option<&str>, body: &[u8], token: Option<&str>) -> Reply {
        let mut r = agent().post(format!("{}{path}", self.url));
        if let Some(c) = ctype {
            r = r.header("Content-Type", c);
        }
        if let Some(t) = token {
            r = r.header("Authorization", format!("Bearer {t}"));
        }
        reply(r.send(body))
    }

    fn post(&self, path: &str, body: &Value) -> Reply {
        self.post_raw(
            path,
            Some("application/json"),
            body.to_string().as_bytes(),
            None,
        )
    }

    fn op(&self, path: &str, body: &Value) -> Reply {
        self.post_raw(
            path,
            Some("application/json"),
            body.to_string().as_bytes(),
            Some(TOKEN),
        )
    }

    fn ok(&self, r: Reply) -> Value {
        assert_eq!(r.status, 200, "{}", r.body);
        r.body
    }

    fn keyset(&self) -> IssuerKeySet {
        let b = self.ok(self.get("/v1/keys", None));
        msg(&b["keyset"])
    }

    /// Stops via the shutdown future; `run` must return Ok and release the issuer.
    fn stop(mut self) -> Arc<Issuer> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            t.join().expect("server thread").expect("server::run");
        }
        self.issuer.clone()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn hex_of<T: Encode>(m: &T) -> String {
    hex::encode(m.to_bytes())
}

fn msg<T: Decode>(v: &Value) -> T {
    let text = v.as_str().unwrap_or_else(|| panic!("not a string: {v}"));
    assert_eq!(text, text.to_lowercase(), "hex is lower-case");
    T::decode(&hex::decode(text).expect("hex")).expect("canonical message")
}

fn assert_error(r: &Reply, status: u16, code: u64, name: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    assert_eq!(r.body["code"], code, "{}", r.body);
    assert_eq!(r.body["error"], name, "{}", r.body);
    let m = r.body["message"].as_str().expect("message");
    assert!(!m.is_empty() && !m.contains('\n'), "{m:?}");
}

/// A wallet over memory, registered through the service.
fn wallet(srv: &TestServer, keyset: &IssuerKeySet, class: Option<&str>) -> Wallet<MemStore> {
    let (w, reg) = Wallet::create(
        MemStore::new(),
        WalletKind::Personal,
        None,
        keyset.clone(),
        NOW,
        &mut rand::rng(),
    )
    .expect("wallet");
    let mut body = json!({ "registration": hex_of(&reg) });
    if let Some(c) = class {
        body["class"] = json!(c);
    }
    let cert: Certificate = msg(&srv.ok(srv.post("/v1/register", &body))["certificate"]);
    let ctx = Context {
        keys: keyset,
        now: NOW,
        revoked: None,
    };
    cert.verify(&ctx).expect("certificate verifies");
    assert_eq!(cert.wallet, w.public());
    w.import(TbFile::Certificate(cert), NOW)
        .expect("import cert");
    w
}

fn fund(srv: &TestServer, w: &Wallet<MemStore>, fen: u64) {
    let b = srv.ok(srv.op(
        "/v1/operator/issue",
        &json!({ "to": w.public().address(), "amount_fen": fen }),
    ));
    let bundle: NoteBundle = msg(&b["notes"]);
    assert_eq!(b["ids"].as_array().map(Vec::len), Some(bundle.notes.len()));
    w.import(TbFile::Notes(bundle), NOW).expect("import notes");
}

fn pay(from: &Wallet<MemStore>, to: &Wallet<MemStore>, fen: u64) {
    let target = PayTarget::Direct {
        to: to.public(),
        amount: Fen(fen),
    };
    let p = from.pay(target, NOW, &mut rand::rng()).expect("pay");
    let got = to.receive(&p, NOW).expect("receive");
    from.import(TbFile::Receipt(got.receipt), NOW)
        .expect("import receipt");
}

/// Syncs through the service; returns the JSON answer and the request sent.
fn sync(srv: &TestServer, w: &Wallet<MemStore>) -> (Value, SyncRequest) {
    let req = w
        .begin_sync(Fen::ZERO, Fen::ZERO, NOW, &mut rand::rng())
        .expect("begin sync");
    let b = srv.ok(srv.post("/v1/sync", &json!({ "request": hex_of(&req) })));
    let resp: SyncResponse = msg(&b["response"]);
    w.apply_sync(&resp, NOW).expect("apply sync");
    (b, req)
}

fn audit_ok(srv: &TestServer) -> Value {
    let a = srv.ok(srv.op("/v1/operator/audit", &json!({})));
    assert_eq!(a["ok"], true, "{a}");
    a
}

#[test]
fn health_keys_revocations_and_register() {
    let srv = start();
    let h = srv.ok(srv.get("/v1/health", None));
    assert_eq!(h["status"], "ok");
    assert_eq!(h["issuer"], srv.issuer.root().address());
    let keys = srv.ok(srv.get("/v1/keys", None));
    let ks: IssuerKeySet = msg(&keys["keyset"]);
    ks.verify().expect("key set verifies");
    assert_eq!(keys["version"], 1);
    let rv = srv.ok(srv.get("/v1/revocations", None));
    let rl: RevocationList = msg(&rv["revocations"]);
    rl.verify(&ks).expect("revocation list verifies");
    assert_eq!(rv["version"], 1);
    // Default class IV; an explicit class is honoured.
    let w = wallet(&srv, &ks, None);
    let cert = w.certificate().expect("cert").expect("some");
    assert_eq!(cert.class, WalletClass::IV);
    let w2 = wallet(&srv, &ks, Some("II"));
    assert_eq!(
        w2.certificate().ok().flatten().map(|c| c.class),
        Some(WalletClass::II)
    );
    let r = srv.post(
        "/v1/register",
        &json!({ "registration": hex_of(&w.registration().expect("reg")), "class": "V" }),
    );
    assert_error(&r, 400, 1000, "bad_request");
    srv.stop();
}

/// `wallet init --issuer` run again after the issuer certified the wallet but the answer was lost:
/// the same registration gets the same certificate back, byte for byte (even after a key
/// rotation), and no new one. Anything that would change the certificate is `409 conflict`
/// (known defect D5, fixed); the operator may still re-certify.
#[test]
fn registering_again_gets_the_same_certificate_and_nothing_else() {
    let srv = start();
    let ks = srv.keyset();
    let (w, reg) = Wallet::create(
        MemStore::new(),
        WalletKind::Personal,
        None,
        ks.clone(),
        NOW,
        &mut rand::rng(),
    )
    .expect("wallet");
    let register = |class: Option<&str>| {
        let mut body = json!({ "registration": hex_of(&reg) });
        if let Some(c) = class {
            body["class"] = json!(c);
        }
        srv.post("/v1/register", &body)
    };
    let first: Certificate = msg(&srv.ok(register(Some("II")))["certificate"]);
    // The answer is lost; meanwhile the issuer rotates its keys.
    srv.ok(srv.op("/v1/operator/keys/rotate", &json!({})));
    let again = srv.ok(register(Some("II")));
    let second: Certificate = msg(&again["certificate"]);
    assert_eq!(second, first, "the same certificate, unchanged");
    assert_eq!(second.to_bytes(), first.to_bytes());
    let rec = srv
        .issuer
        .wallet(&reg.wallet)
        .expect("ledger")
        .expect("record");
    assert_eq!(
        (rec.cert_serial, rec.class.as_str()),
        (1, "II"),
        "no new certificate"
    );
    w.import(TbFile::Certificate(second), NOW)
        .expect("the retried registration finishes");

    // Another class (here the default, IV) would change it: refused, nothing changes.
    let r = register(None);
    assert_error(&r, 409, 1007, "conflict");
    let again = srv
        .issuer
        .wallet(&reg.wallet)
        .expect("ledger")
        .expect("record");
    assert_eq!(again.cert_serial, 1);
    assert_eq!(again.class, "II");

    // Once sync has renewed the certificate, even the same request is a conflict.
    sync(&srv, &w);
    assert_eq!(w.certificate().expect("cert").map(|c| c.serial), Some(2));
    let r = register(Some("II"));
    assert_error(&r, 409, 1007, "conflict");

    // The operator may still re-certify, in any class.
    let c = srv.ok(srv.op(
        "/v1/operator/certify",
        &json!({ "registration": hex_of(&reg), "class": "I" }),
    ));
    let cert: Certificate = msg(&c["certificate"]);
    assert_eq!((cert.class, cert.serial), (WalletClass::I, 3));

    // A revoked wallet's registration is refused as revoked.
    srv.ok(srv.op(
        "/v1/operator/revoke",
        &json!({ "wallet": w.public().address(), "reason": "lost" }),
    ));
    assert_error(&register(Some("I")), 403, 1006, "revoked");
    audit_ok(&srv);
    srv.stop();
}

#[test]
fn wallets_settle_through_the_service_and_replays_get_the_same_bytes() {
    let srv = start();
    let ks = srv.keyset();
    let alice = wallet(&srv, &ks, None);
    let bob = wallet(&srv, &ks, None);
    fund(&srv, &alice, 10_000);
    pay(&alice, &bob, 3_000);

    let (b, req) = sync(&srv, &bob);
    assert_eq!(b["accepted"], 1, "{b}");
    assert_eq!(b["rejected"], 0, "{b}");
    let resp: SyncResponse = msg(&b["response"]);
    resp.verify(&ks).expect("response verifies");
    assert_eq!(bob.balance(NOW).expect("balance").total_fen, 3_000);
    // A replay (a lost answer, retried) returns the stored response, byte for byte.
    let again = srv.ok(srv.post("/v1/sync", &json!({ "request": hex_of(&req) })));
    assert_eq!(again["response"], b["response"]);

    // Online payment: confirmed at once, idempotent.
    let p = alice
        .pay(
            PayTarget::Direct {
                to: bob.public(),
                amount: Fen(1_000),
            },
            NOW,
            &mut rand::rng(),
        )
        .expect("pay");
    let c1 = srv.ok(srv.post("/v1/pay", &json!({ "payment": hex_of(&p) })));
    let conf: Confirmation = msg(&c1["confirmation"]);
    conf.verify(&ks, &p).expect("confirmation verifies");
    let c2 = srv.ok(srv.post("/v1/pay", &json!({ "payment": hex_of(&p) })));
    assert_eq!(c1, c2);

    // Alice brings home her change; her payments' chains are already settled.
    let (b, _) = sync(&srv, &alice);
    assert_eq!(b["rejected"], 0, "{b}");
    assert!(b["already_settled"].as_u64() >= Some(1), "{b}");
    assert_eq!(alice.balance(NOW).expect("balance").total_fen, 6_000);
    // Bob collects the online payment at his next sync.
    sync(&srv, &bob);
    assert_eq!(bob.balance(NOW).expect("balance").total_fen, 4_000);

    let stats = srv.ok(srv.get("/v1/operator/stats", Some(TOKEN)));
    assert_eq!(stats["wallets"], 2);
    assert_eq!(stats["outstanding_fen"], 10_000);
    audit_ok(&srv);
    srv.stop();
}

/// A wallet whose key the test holds, to forge requests the engine would never make.
fn raw_wallet(srv: &TestServer) -> SecretKey {
    let sk = SecretKey::generate(&mut rand::rng());
    let reg = Registration::sign(&sk, WalletKind::Personal, None, NOW);
    srv.ok(srv.post("/v1/register", &json!({ "registration": hex_of(&reg) })));
    sk
}

fn raw_sync(sk: &SecretKey, sync_id: u8, counter: u64, topup: u64) -> SyncRequest {
    SyncRequest {
        wallet: sk.public(),
        sync_id: Nonce([sync_id; 16]),
        time: NOW,
        counter,
        topup: Fen(topup),
        redeem: Fen::ZERO,
        coins: Vec::new(),
        proofs: Vec::new(),
        signature: Signature([0; 64]),
    }
    .signed(sk)
}

#[test]
fn bad_input_is_4xx_with_a_json_error_never_5xx() {
    let srv = start_with(|c| c.body_limit = 4096);
    let sync = |body: &[u8]| srv.post_raw("/v1/sync", Some("application/json"), body, None);
    assert_error(&sync(b"{"), 400, 1000, "bad_request");
    assert_error(&sync(b"[]"), 400, 1000, "bad_request");
    assert_error(&sync(b"{}"), 400, 1000, "bad_request");
    assert_error(
        &sync(br#"{"request":"00","x":1}"#),
        400,
        1000,
        "bad_request",
    );
    assert_error(&sync(br#"{"request":"zz"}"#), 400, 1000, "bad_request");
    assert_error(&sync(br#"{"request":12}"#), 400, 1000, "bad_request");
    let r = srv.post_raw("/v1/sync", Some("text/plain"), br#"{"request":""}"#, None);
    assert_error(&r, 400, 1000, "bad_request");
    let r = srv.post_raw("/v1/sync", None, br#"{"request":""}"#, None);
    assert_error(&r, 400, 1000, "bad_request");

    let sk = raw_wallet(&srv);
    let good = raw_sync(&sk, 1, 0, 100).to_bytes();
    for cut in [0, 1, 33, good.len() / 2, good.len() - 1] {
        let body = json!({ "request": hex::encode(&good[..cut]) }).to_string();
        assert_error(&sync(body.as_bytes()), 400, 1001, "decode_error");
    }
    let mut trailing = good.clone();
    trailing.push(0);
    let body = json!({ "request": hex::encode(&trailing) }).to_string();
    assert_error(&sync(body.as_bytes()), 400, 1001, "decode_error");
    let mut forged = raw_sync(&sk, 2, 0, 100);
    forged.signature.0[0] ^= 1;
    let r = srv.post("/v1/sync", &json!({ "request": hex_of(&forged) }));
    assert_error(&r, 422, 1002, "bad_signature");
    let stranger = SecretKey::generate(&mut rand::rng());
    let r = srv.post(
        "/v1/sync",
        &json!({ "request": hex_of(&raw_sync(&stranger, 3, 0, 0)) }),
    );
    assert_error(&r, 422, 1005, "unknown_wallet");

    // A sync id reused for a different request is a conflict; the same request is a replay.
    let first = srv.ok(srv.post("/v1/sync", &json!({ "request": hex::encode(&good) })));
    let again = srv.ok(srv.post("/v1/sync", &json!({ "request": hex::encode(&good) })));
    assert_eq!(first, again);
    let other = raw_sync(&sk, 1, 1, 100);
    let r = srv.post("/v1/sync", &json!({ "request": hex_of(&other) }));
    assert_error(&r, 409, 1007, "conflict");

    let r = srv.post("/v1/pay", &json!({ "payment": "01" }));
    assert_error(&r, 400, 1001, "decode_error");
    let r = srv.post("/v1/register", &json!({ "registration": "" }));
    assert_error(&r, 400, 1001, "decode_error");
    let big = json!({ "request": "00".repeat(8192) }).to_string();
    assert_error(&sync(big.as_bytes()), 413, 1009, "payload_too_large");
    assert_error(&srv.get("/v1/nothing", None), 404, 1011, "not_found");
    assert_error(&srv.get("/v1/sync", None), 405, 1013, "method_not_allowed");
    // Operator input.
    let r = srv.op(
        "/v1/operator/issue",
        &json!({ "to": "tbw1nope", "amount_fen": 1 }),
    );
    assert_error(&r, 400, 1000, "bad_request");
    let r = srv.op(
        "/v1/operator/issue",
        &json!({ "to": sk.public().address(), "amount_fen": -1 }),
    );
    assert_error(&r, 400, 1000, "bad_request");
    let r = srv.op(
        "/v1/operator/issue",
        &json!({ "to": sk.public().address(), "amount_fen": 0 }),
    );
    assert_error(&r, 422, 1008, "refused");
    let r = srv.op(
        "/v1/operator/revoke",
        &json!({ "wallet": sk.public().address(), "reason": "double-spend" }),
    );
    assert_error(&r, 400, 1000, "bad_request");
    audit_ok(&srv);
    srv.stop();
}

#[test]
fn a_slow_request_times_out_with_408() {
    let srv = start_with(|c| c.request_timeout = Duration::from_millis(300));
    let mut s = std::net::TcpStream::connect(srv.addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    // Headers promise a body that never comes.
    s.write_all(
        b"POST /v1/sync HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          Content-Length: 100\r\n\r\n{\"request\":",
    )
    .expect("write");
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") || !buf.ends_with(b"}") {
        let n = s.read(&mut chunk).expect("read");
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&buf));
        buf.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    let body = text.split("\r\n\r\n").nth(1).expect("body");
    let v: Value = serde_json::from_str(body).expect("JSON");
    assert_eq!(v["code"], 1012);
    assert_eq!(v["error"], "timeout");
    srv.stop();
}

#[test]
fn operator_endpoints_need_the_token() {
    let srv = start();
    for r in ROUTES.iter().filter(|r| r.operator) {
        for token in [None, Some("wrong"), Some("")] {
            let reply = match r.method {
                Method::Get => srv.get(r.path, token),
                Method::Post => srv.post_raw(r.path, Some("application/json"), b"{}", token),
            };
            assert_error(&reply, 401, 1010, "unauthorized");
        }
    }
    // Basic auth with the right secret is still refused.
    let r = agent()
        .get(format!("{}/v1/operator/stats", srv.url))
        .header("Authorization", format!("Basic {TOKEN}"))
        .call();
    assert_error(&reply(r), 401, 1010, "unauthorized");
    srv.stop();
}

#[test]
fn operator_revoke_rotate_certify() {
    let srv = start();
    let ks = srv.keyset();
    let alice = wallet(&srv, &ks, None);
    fund(&srv, &alice, 5_000);
    let addr = alice.public().address();
    let r = srv.ok(srv.op(
        "/v1/operator/revoke",
        &json!({ "wallet": addr, "reason": "lost", "note": "reported at the counter" }),
    ));
    assert_eq!(r["version"], 2);
    assert_eq!(srv.ok(srv.get("/v1/revocations", None))["version"], 2);
    let r = srv.op(
        "/v1/operator/revoke",
        &json!({ "wallet": addr, "reason": "stolen" }),
    );
    assert_error(&r, 409, 1007, "conflict");
    let req = alice
        .begin_sync(Fen::ZERO, Fen::ZERO, NOW, &mut rand::rng())
        .expect("begin");
    let r = srv.post("/v1/sync", &json!({ "request": hex_of(&req) }));
    assert_error(&r, 403, 1006, "revoked");
    let r = srv.op(
        "/v1/operator/issue",
        &json!({ "to": addr, "amount_fen": 100 }),
    );
    assert_error(&r, 403, 1006, "revoked");

    // Rotation: an empty body takes the default grace.
    let r = srv.post_raw("/v1/operator/keys/rotate", None, b"", Some(TOKEN));
    let r = srv.ok(r);
    assert_eq!(r["version"], 2);
    let r = srv.ok(srv.op("/v1/operator/keys/rotate", &json!({ "grace_secs": 60 })));
    assert_eq!(r["version"], 3);
    let ks3: IssuerKeySet = msg(&r["keyset"]);
    ks.check_successor(&ks3).expect("successor");
    assert_eq!(srv.keyset(), ks3);

    let sk = SecretKey::generate(&mut rand::rng());
    let reg = Registration::sign(&sk, WalletKind::Merchant, None, NOW);
    let c = srv.ok(srv.op(
        "/v1/operator/certify",
        &json!({ "registration": hex_of(&reg), "class": "I", "valid_secs": 3600 }),
    ));
    let cert: Certificate = msg(&c["certificate"]);
    assert_eq!(cert.class, WalletClass::I);
    assert_eq!(cert.expires_at, NOW + 3600);
    let r = srv.op(
        "/v1/operator/certify",
        &json!({ "registration": hex_of(&reg), "class": "I", "valid_secs": 0 }),
    );
    assert_error(&r, 400, 1000, "bad_request");
    audit_ok(&srv);
    srv.stop();
}

#[test]
fn ten_wallets_sync_concurrently_and_the_audit_passes() {
    let srv = Arc::new(start());
    let ks = srv.keyset();
    let wallets: Vec<Arc<Wallet<MemStore>>> = (0..10)
        .map(|_| Arc::new(wallet(&srv, &ks, Some("III"))))
        .collect();
    for w in &wallets {
        fund(&srv, w, 20_000);
    }
    for i in 0..wallets.len() {
        pay(
            &wallets[i],
            &wallets[(i + 1) % wallets.len()],
            1_000 + i as u64,
        );
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let answers = rt.block_on(async {
        let tasks: Vec<_> = wallets
            .iter()
            .map(|w| {
                let (srv, w) = (srv.clone(), w.clone());
                tokio::spawn(
                    async move { tokio::task::spawn_blocking(move || sync(&srv, &w).0).await },
                )
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.expect("task").expect("sync"));
        }
        out
    });
    for a in &answers {
        assert_eq!(a["rejected"], 0, "{a}");
    }
    // Each wallet brought 3 chains (its payment, its change, the coin it received); a payment
    // chain settled by its payee first comes back already settled. Nothing is lost or doubled.
    let accepted: u64 = answers.iter().filter_map(|a| a["accepted"].as_u64()).sum();
    let already: u64 = answers
        .iter()
        .filter_map(|a| a["already_settled"].as_u64())
        .sum();
    assert_eq!((accepted + already, already <= 10), (30, true));
    let total: u64 = wallets
        .iter()
        .map(|w| w.balance(NOW).expect("balance").total_fen)
        .sum();
    let stats = srv.ok(srv.get("/v1/operator/stats", Some(TOKEN)));
    assert_eq!(stats["outstanding_fen"], total);
    assert_eq!(total, 200_000);
    let audit = audit_ok(&srv);
    assert_eq!(audit["outstanding_fen"], 200_000);
    drop(answers);
    let srv = Arc::into_inner(srv).expect("sole owner");
    let issuer = srv.stop();
    assert!(issuer.audit().expect("audit").ok);
}

#[test]
fn shutdown_is_clean_and_releases_the_ledger() {
    let srv = start();
    srv.ok(srv.get("/v1/health", None));
    let addr = srv.addr;
    let issuer = srv.stop();
    // The server and its writer dropped every handle on the issuer.
    assert_eq!(Arc::strong_count(&issuer), 1);
    assert!(std::net::TcpStream::connect(addr).is_err());
}

#[test]
fn a_stalled_connection_does_not_hold_the_shutdown() {
    let srv = start_with(|c| c.shutdown_grace = Duration::from_millis(200));
    let mut s = std::net::TcpStream::connect(srv.addr).expect("connect");
    // Half a request line, then nothing.
    s.write_all(b"GET /v1/hea").expect("write");
    std::thread::sleep(Duration::from_millis(50));
    let issuer = srv.stop();
    assert!(issuer.audit().expect("audit").ok);
    drop(s);
}

#[test]
fn the_openapi_document_matches_the_router_and_the_docs() {
    let srv = start();
    let doc = srv.ok(srv.get("/openapi.json", None));
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.0"))
    );
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    let paths = doc["paths"].as_object().expect("paths");
    // Every route is documented, with its auth...
    for r in ROUTES {
        let op = &paths
            .get(r.path)
            .unwrap_or_else(|| panic!("{} undocumented", r.path))[r.method.as_str()];
        assert!(
            op.is_object(),
            "{} {} undocumented",
            r.method.as_str(),
            r.path
        );
        assert_eq!(op.get("security").is_some(), r.operator, "{}", r.path);
    }
    // ...every documented operation is a route...
    for (path, item) in paths {
        for method in item.as_object().expect("path item").keys() {
            assert!(
                ROUTES
                    .iter()
                    .any(|r| r.path == path && r.method.as_str() == method),
                "{method} {path} documented but not served"
            );
        }
    }
    // ...and the router serves each one (no 404/405 from the fallbacks).
    for r in ROUTES {
        let reply = match r.method {
            Method::Get => srv.get(r.path, Some(TOKEN)),
            Method::Post => srv.post_raw(r.path, Some("application/json"), b"{}", Some(TOKEN)),
        };
        assert!(
            ![404, 405].contains(&reply.status),
            "{}: {}",
            r.path,
            reply.body
        );
    }
    // Error codes: the schema, the code table in docs/api.md and the server agree.
    let schema = &doc["components"]["schemas"]["Error"]["properties"];
    let codes: Vec<u64> = ERROR_CODES.iter().map(|c| u64::from(c.code())).collect();
    let names: Vec<&str> = ERROR_CODES.iter().map(|c| c.name()).collect();
    assert_eq!(schema["code"]["enum"], json!(codes));
    assert_eq!(schema["error"]["enum"], json!(names));
    let api_md = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/api.md"))
        .expect("docs/api.md");
    for c in ERROR_CODES {
        let row = format!(
            "| {} | `{}` | {} |",
            c.code(),
            c.name(),
            c.status().as_u16()
        );
        assert!(api_md.contains(&row), "docs/api.md lacks the row {row}");
    }
    for r in ROUTES {
        let head = format!("`{} {}`", r.method.as_str().to_uppercase(), r.path);
        assert!(
            api_md.contains(&head),
            "docs/api.md does not document {head}"
        );
    }
    srv.stop();
}
