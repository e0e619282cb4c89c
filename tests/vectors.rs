//! Golden wire-format vectors. See docs/protocol.md#test-vectors.
//!
//! Every file under tests/vectors/ is one case, in the style of rage's testkit: header lines
//! (`name:`, `kind:`, `expect: ok` or `expect: error <substring>`, `comment:`, and for valid cases
//! `id:` and, for a payment request, `code:`), a blank line, then the bytes as hex. The error text a
//! case expects starts with `decode:` (the bytes are refused by the strict decoder) or `verify:`
//! (they decode, and re-encode to themselves, but a check fails).
//!
//! - Every case is rebuilt here from fixed seeds and must match its file byte for byte, so any
//!   change to the wire format fails [`files_match_the_builder`].
//! - Every file is decoded, re-encoded, verified and compared with its `expect:` line by its own
//!   test in [`case`].
//! - docs/protocol.md carries a generated copy of the keys and vectors; [`doc_matches_vectors`]
//!   keeps it from drifting.
//!
//! After an intended wire change, regenerate the files and the doc section with
//! `cargo test --test vectors -- --ignored regenerate_vectors`.

#![allow(clippy::unwrap_used)]

use std::fmt::Write as _;
use std::path::PathBuf;

use tongbao::codec::{Decode, Encode, signing_bytes};
use tongbao::protocol::certificate::{Certificate, Registration, WalletClass, WalletKind};
use tongbao::protocol::coin::{Coin, Hop};
use tongbao::protocol::file::{NoteBundle, TbFile};
use tongbao::protocol::keyset::{IssuerKeyEntry, IssuerKeySet, Policy};
use tongbao::protocol::note::{Earmark, Note};
use tongbao::protocol::payment::{Payment, Receipt};
use tongbao::protocol::proof::{Collection, DoubleSpendProof};
use tongbao::protocol::request::PaymentRequest;
use tongbao::protocol::revocation::{Revocation, RevocationList, RevocationReason};
use tongbao::protocol::sync::{
    CoinResult, CoinStatus, Confirmation, RejectReason, SyncRequest, SyncResponse,
};
use tongbao::protocol::transfer::{Output, Transfer, coin_id};
use tongbao::protocol::{Context, SignedBody, VerifyError, label};
use tongbao::{Fen, Id, Nonce, PublicKey, SecretKey, Signature};

#[path = "vectors/cases.rs"]
mod cases;
#[path = "vectors/merchant_cases.rs"]
mod merchant_cases;

use cases::{NOW, SEEDS, World, build, pk};

// ---------------------------------------------------------------------------------------------
// Vectors: what they are, and how they are built.

#[derive(Debug, Clone, PartialEq, Eq)]
struct Vector {
    name: String,
    kind: String,
    /// `None` for `expect: ok`, else the expected error substring.
    error: Option<String>,
    comment: Vec<String>,
    id: Option<String>,
    code: Option<String>,
    bytes: Vec<u8>,
}

impl Vector {
    fn render(&self) -> String {
        let mut s = String::new();
        writeln!(s, "name: {}", self.name).unwrap();
        writeln!(s, "kind: {}", self.kind).unwrap();
        match &self.error {
            None => writeln!(s, "expect: ok").unwrap(),
            Some(e) => writeln!(s, "expect: error {e}").unwrap(),
        }
        for c in &self.comment {
            writeln!(s, "comment: {c}").unwrap();
        }
        if let Some(id) = &self.id {
            writeln!(s, "id: {id}").unwrap();
        }
        if let Some(code) = &self.code {
            writeln!(s, "code: {code}").unwrap();
        }
        s.push('\n');
        for line in hex_lines(&self.bytes) {
            s.push_str(&line);
            s.push('\n');
        }
        s
    }

    fn parse(text: &str) -> Vector {
        let (header, body) = text
            .split_once("\n\n")
            .expect("a vector file has a header, a blank line, then hex");
        let mut v = Vector {
            name: String::new(),
            kind: String::new(),
            error: None,
            comment: Vec::new(),
            id: None,
            code: None,
            bytes: Vec::new(),
        };
        let mut expect = None;
        for line in header.lines() {
            let (k, val) = line
                .split_once(':')
                .unwrap_or_else(|| panic!("header line without a colon: {line:?}"));
            let val = val.trim().to_string();
            match k {
                "name" => v.name = val,
                "kind" => v.kind = val,
                "expect" => expect = Some(val),
                "comment" => v.comment.push(val),
                "id" => v.id = Some(val),
                "code" => v.code = Some(val),
                other => panic!("unknown header {other:?}"),
            }
        }
        match expect.as_deref() {
            Some("ok") => {}
            Some(e) => {
                let sub = e
                    .strip_prefix("error ")
                    .unwrap_or_else(|| panic!("expect must be `ok` or `error ...`: {e:?}"));
                v.error = Some(sub.to_string());
            }
            None => panic!("no expect line"),
        }
        let hex: String = body.split_whitespace().collect();
        v.bytes = hex::decode(hex).expect("vector body is hex");
        v
    }
}

fn hex_lines(bytes: &[u8]) -> Vec<String> {
    bytes.chunks(32).map(hex::encode).collect()
}

// ---------------------------------------------------------------------------------------------
// Decoding and verifying a case.

enum Msg {
    KeySet(IssuerKeySet),
    Note(Note),
    Transfer(Transfer),
    Coin(Coin),
    Registration(Registration),
    Certificate(Certificate),
    Request(PaymentRequest),
    Payment(Box<Payment>),
    Receipt(Receipt),
    Revocations(RevocationList),
    Proof(DoubleSpendProof),
    Bundle(NoteBundle),
    SyncRequest(Box<SyncRequest>),
    SyncResponse(Box<SyncResponse>),
    Confirmation(Confirmation),
    TillAuthorization(Box<tongbao::protocol::till::TillAuthorization>),
    Refund(Box<tongbao::protocol::refund::Refund>),
    TillJournal(Box<tongbao::protocol::journal::TillJournal>),
    CodOrder(Box<tongbao::protocol::cod_order::CodOrder>),
    DeliveryReceipt(Box<tongbao::protocol::delivery::DeliveryReceipt>),
    Handoff(Box<tongbao::protocol::handoff::HandoffManifest>),
    File(Box<TbFile>),
}

fn decode(kind: &str, bytes: &[u8]) -> Result<Msg, String> {
    fn d<T: Decode>(bytes: &[u8]) -> Result<T, String> {
        T::decode(bytes).map_err(|e| format!("decode: {e}"))
    }
    Ok(match kind {
        "keyset" => Msg::KeySet(d(bytes)?),
        "note" => Msg::Note(d(bytes)?),
        "transfer" => Msg::Transfer(d(bytes)?),
        "coin" => Msg::Coin(d(bytes)?),
        "registration" => Msg::Registration(d(bytes)?),
        "certificate" => Msg::Certificate(d(bytes)?),
        "request" => Msg::Request(d(bytes)?),
        "payment" => Msg::Payment(Box::new(d(bytes)?)),
        "receipt" => Msg::Receipt(d(bytes)?),
        "revocation-list" => Msg::Revocations(d(bytes)?),
        "proof" => Msg::Proof(d(bytes)?),
        "note-bundle" => Msg::Bundle(d(bytes)?),
        "sync-request" => Msg::SyncRequest(Box::new(d(bytes)?)),
        "sync-response" => Msg::SyncResponse(Box::new(d(bytes)?)),
        "confirmation" => Msg::Confirmation(d(bytes)?),
        "till-authorization" => Msg::TillAuthorization(Box::new(d(bytes)?)),
        "refund" => Msg::Refund(Box::new(d(bytes)?)),
        "till-journal" => Msg::TillJournal(Box::new(d(bytes)?)),
        "cod-order" => Msg::CodOrder(Box::new(d(bytes)?)),
        "delivery-receipt" => Msg::DeliveryReceipt(Box::new(d(bytes)?)),
        "handoff" => Msg::Handoff(Box::new(d(bytes)?)),
        "file" => Msg::File(Box::new(
            TbFile::from_file_bytes(bytes).map_err(|e| format!("decode: {e}"))?,
        )),
        other => panic!("unknown kind {other:?}"),
    })
}

fn verr(e: impl Into<VerifyError>) -> String {
    format!("verify: {}", e.into())
}

impl Msg {
    fn encode(&self) -> Vec<u8> {
        match self {
            Msg::KeySet(x) => x.to_bytes(),
            Msg::Note(x) => x.to_bytes(),
            Msg::Transfer(x) => x.to_bytes(),
            Msg::Coin(x) => x.to_bytes(),
            Msg::Registration(x) => x.to_bytes(),
            Msg::Certificate(x) => x.to_bytes(),
            Msg::Request(x) => x.to_bytes(),
            Msg::Payment(x) => x.to_bytes(),
            Msg::Receipt(x) => x.to_bytes(),
            Msg::Revocations(x) => x.to_bytes(),
            Msg::Proof(x) => x.to_bytes(),
            Msg::Bundle(x) => x.to_bytes(),
            Msg::SyncRequest(x) => x.to_bytes(),
            Msg::SyncResponse(x) => x.to_bytes(),
            Msg::Confirmation(x) => x.to_bytes(),
            Msg::TillAuthorization(x) => x.to_bytes(),
            Msg::Refund(x) => x.to_bytes(),
            Msg::TillJournal(x) => x.to_bytes(),
            Msg::CodOrder(x) => x.to_bytes(),
            Msg::DeliveryReceipt(x) => x.to_bytes(),
            Msg::Handoff(x) => x.to_bytes(),
            Msg::File(x) => x.to_file_bytes(),
        }
    }

    /// Verifies the message as its receiver would, with the world's key set, revocation list and
    /// clock ([`NOW`]); returns its id where it has one.
    fn verify(&self, w: &World) -> Result<Option<Id>, String> {
        let ctx = w.ctx();
        match self {
            Msg::KeySet(k) => {
                k.verify().map_err(verr)?;
                w.keyset.check_successor(k).map_err(verr)?;
                Ok(Some(k.id()))
            }
            Msg::Note(n) => {
                n.verify(&ctx).map_err(verr)?;
                Ok(Some(n.id()))
            }
            Msg::Transfer(t) => {
                // Every transfer vector is alice's.
                w.alice
                    .public()
                    .verify(&t.signing_bytes(), &t.signature, "transfer")
                    .map_err(verr)?;
                Ok(Some(t.id()))
            }
            Msg::Coin(c) => {
                let info = c.verify(&ctx).map_err(verr)?;
                assert_eq!(info.id, c.id());
                Ok(Some(info.id))
            }
            Msg::Registration(r) => {
                r.verify().map_err(verr)?;
                Ok(Some(r.id()))
            }
            Msg::Certificate(c) => {
                c.verify(&ctx).map_err(verr)?;
                Ok(Some(c.id()))
            }
            Msg::Request(q) => {
                q.verify(&ctx).map_err(verr)?;
                Ok(Some(q.id()))
            }
            Msg::Payment(p) => {
                // As a receiving wallet does: the carried list must be the issuer's.
                if let Some(l) = &p.revocations {
                    l.verify(&w.keyset).map_err(verr)?;
                }
                let v = p
                    .verify(&ctx, &w.shop.public(), WalletKind::Merchant)
                    .map_err(verr)?;
                assert_eq!(v.id, p.id());
                Ok(Some(v.id))
            }
            Msg::Receipt(r) => {
                r.verify().map_err(verr)?;
                Ok(Some(r.id()))
            }
            Msg::Revocations(l) => {
                l.verify(&w.keyset).map_err(verr)?;
                Ok(Some(l.id()))
            }
            Msg::Proof(p) => {
                // A collected-then-spent proof needs the issuer's key set (its root signs the
                // statement); two spends need nothing but the proof.
                p.verify(&w.keyset).map_err(verr)?;
                Ok(Some(p.id()))
            }
            Msg::Bundle(b) => {
                for n in &b.notes {
                    n.verify(&ctx).map_err(verr)?;
                }
                Ok(None)
            }
            Msg::SyncRequest(q) => {
                // As the issuer's precheck does first: the wallet's signature. (The chains are
                // checked one by one; a bad chain is a rejected result, not a refused request.)
                q.verify_signature().map_err(verr)?;
                Ok(Some(q.id()))
            }
            Msg::SyncResponse(r) => {
                // As alice's wallet does in `apply_sync`: the root signature, the key set as a
                // successor of the one held, the revocation list, then the notes and certificate.
                r.verify(&w.keyset).map_err(verr)?;
                let ctx = Context {
                    keys: &r.keyset,
                    now: NOW,
                    revoked: None,
                };
                for n in &r.notes {
                    if n.holder != w.alice.public() {
                        return Err("verify: a note for another wallet".into());
                    }
                    n.verify(&ctx).map_err(verr)?;
                }
                let c = &r.certificate;
                if c.wallet != w.alice.public() {
                    return Err("verify: a certificate for another wallet".into());
                }
                c.verify_at(&ctx, c.issued_at).map_err(verr)?;
                Ok(Some(r.id()))
            }
            Msg::Confirmation(c) => {
                // Every confirmation vector confirms (or claims to confirm) alice's payment.
                c.verify(&w.keyset, &w.payment).map_err(verr)?;
                Ok(Some(c.id()))
            }
            Msg::TillAuthorization(a) => {
                // As the issuer does before certifying the till.
                a.verify_for(&w.till_registration).map_err(verr)?;
                Ok(Some(a.id()))
            }
            Msg::Refund(r) => {
                // As alice's wallet receives it (the binding was checked by the decoder).
                let v = r
                    .payment
                    .verify(&ctx, &w.alice.public(), WalletKind::Personal)
                    .map_err(verr)?;
                Ok(Some(v.id))
            }
            Msg::TillJournal(j) => {
                j.verify(&w.keyset).map_err(verr)?;
                Ok(Some(j.id()))
            }
            Msg::CodOrder(o) => {
                // As the courier loads it: both signatures, and the request still payable.
                o.verify_payable(&ctx).map_err(verr)?;
                Ok(Some(o.id()))
            }
            Msg::DeliveryReceipt(d) => {
                d.verify().map_err(verr)?;
                Ok(Some(d.id()))
            }
            Msg::Handoff(m) => {
                // As the shop accepts it: the courier's signature, then each payment.
                m.verify().map_err(verr)?;
                for e in &m.entries {
                    if let tongbao::protocol::handoff::Outcome::Paid(p) = &e.outcome {
                        p.verify(&ctx, &w.shop.public(), WalletKind::Merchant)
                            .map_err(verr)?;
                    }
                }
                Ok(Some(m.id()))
            }
            Msg::File(f) => {
                let inner = match f.as_ref() {
                    TbFile::KeySet(x) => Msg::KeySet(x.clone()),
                    TbFile::Registration(x) => Msg::Registration(x.clone()),
                    TbFile::Certificate(x) => Msg::Certificate(x.clone()),
                    TbFile::Notes(x) => Msg::Bundle(x.clone()),
                    TbFile::Request(x) => Msg::Request(x.clone()),
                    TbFile::Payment(x) => Msg::Payment(x.clone()),
                    TbFile::Receipt(x) => Msg::Receipt(x.clone()),
                    TbFile::Revocations(x) => Msg::Revocations(x.clone()),
                    TbFile::Proof(x) => Msg::Proof(x.clone()),
                    TbFile::SyncRequest(x) => Msg::SyncRequest(x.clone()),
                    TbFile::SyncResponse(x) => Msg::SyncResponse(x.clone()),
                    TbFile::ConfirmedPayment(p, c) => {
                        c.verify(&w.keyset, p).map_err(verr)?;
                        Msg::Payment(p.clone())
                    }
                    TbFile::TillAuthorization(x) => Msg::TillAuthorization(x.clone()),
                    TbFile::Refund(x) => Msg::Refund(x.clone()),
                    TbFile::TillJournal(x) => Msg::TillJournal(x.clone()),
                    TbFile::CodOrder(x) => Msg::CodOrder(x.clone()),
                    TbFile::DeliveryReceipt(x) => Msg::DeliveryReceipt(x.clone()),
                    TbFile::Handoff(x) => Msg::Handoff(x.clone()),
                };
                inner.verify(w)?;
                Ok(None)
            }
        }
    }
}

/// Decodes, re-encodes and verifies; the error text starts with `decode:` or `verify:`.
fn run(kind: &str, bytes: &[u8], w: &World) -> Result<Option<Id>, String> {
    let msg = decode(kind, bytes)?;
    assert_eq!(
        msg.encode(),
        bytes,
        "accepted bytes must re-encode to themselves (one canonical encoding)"
    );
    msg.verify(w)
}

// ---------------------------------------------------------------------------------------------
// Files and paths.

fn root_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn vectors_dir() -> PathBuf {
    root_dir().join("tests").join("vectors")
}

fn doc_path() -> PathBuf {
    root_dir().join("docs").join("protocol.md")
}

const DOC_BEGIN: &str =
    "<!-- BEGIN GENERATED VECTORS: cargo test --test vectors -- --ignored regenerate_vectors -->";
const DOC_END: &str = "<!-- END GENERATED VECTORS -->";

fn doc_section(vectors: &[Vector]) -> String {
    let mut s = String::new();
    s.push_str(DOC_BEGIN);
    s.push_str("\n\n#### Keys\n\n");
    s.push_str("| seed | role | public key | address |\n|---|---|---|---|\n");
    for (seed, role) in SEEDS {
        let p = pk(*seed);
        writeln!(
            s,
            "| `[{seed}; 32]` | {role} | `{}` | `{}` |",
            hex::encode(p.as_bytes()),
            p.address()
        )
        .unwrap();
    }
    s.push_str("\n#### Valid vectors\n");
    for v in vectors.iter().filter(|v| v.error.is_none()) {
        writeln!(
            s,
            "\n##### `{}`\n\nFile `tests/vectors/{}`, kind `{}`, {} bytes. {}\n",
            v.name,
            v.name,
            v.kind,
            v.bytes.len(),
            v.comment.join(" ")
        )
        .unwrap();
        if let Some(id) = &v.id {
            writeln!(s, "- id: `{id}`").unwrap();
        }
        if let Some(code) = &v.code {
            writeln!(s, "- code ({} characters): `{code}`", code.len()).unwrap();
        }
        s.push_str("\n```text\n");
        for line in hex_lines(&v.bytes) {
            s.push_str(&line);
            s.push('\n');
        }
        s.push_str("```\n");
    }
    s.push_str("\n#### Malformed vectors\n\n");
    s.push_str("| file | kind | expected error | what |\n|---|---|---|---|\n");
    for v in vectors.iter().filter(|v| v.error.is_some()) {
        writeln!(
            s,
            "| `{}` | {} | `{}` | {} |",
            v.name,
            v.kind,
            v.error.as_deref().unwrap_or(""),
            v.comment.join(" ")
        )
        .unwrap();
    }
    s.push('\n');
    s.push_str(DOC_END);
    s
}

/// The doc with its generated section replaced by `section`.
fn doc_with(doc: &str, section: &str) -> String {
    let start = doc
        .find(DOC_BEGIN)
        .expect("docs/protocol.md has the generated-vectors begin marker");
    let end = doc
        .find(DOC_END)
        .expect("docs/protocol.md has the generated-vectors end marker")
        + DOC_END.len();
    format!("{}{}{}", &doc[..start], section, &doc[end..])
}

fn vector_files() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(vectors_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| !name.ends_with(".rs"))
        .collect();
    names.sort();
    names
}

// ---------------------------------------------------------------------------------------------
// Tests.

/// Writes every vector file and the doc's generated section. Run after an intended wire change:
/// `cargo test --test vectors -- --ignored regenerate_vectors`.
#[test]
#[ignore = "writes tests/vectors/ and docs/protocol.md"]
fn regenerate_vectors() {
    let vectors = build();
    let dir = vectors_dir();
    std::fs::create_dir_all(&dir).unwrap();
    for name in vector_files() {
        if !vectors.iter().any(|v| v.name == name) {
            std::fs::remove_file(dir.join(&name)).unwrap();
        }
    }
    for v in &vectors {
        std::fs::write(dir.join(&v.name), v.render()).unwrap();
    }
    let doc = std::fs::read_to_string(doc_path()).unwrap();
    std::fs::write(doc_path(), doc_with(&doc, &doc_section(&vectors))).unwrap();
}

/// (a) Every case, rebuilt from the seeds, matches its file byte for byte, and there are no
/// other files.
#[test]
fn files_match_the_builder() {
    let vectors = build();
    let mut expected: Vec<String> = vectors.iter().map(|v| v.name.clone()).collect();
    expected.sort();
    assert_eq!(
        vector_files(),
        expected,
        "tests/vectors/ is stale: regenerate"
    );
    for v in &vectors {
        let stored = std::fs::read_to_string(vectors_dir().join(&v.name)).unwrap();
        assert_eq!(
            Vector::parse(&stored),
            *v,
            "tests/vectors/{} differs from what the seeds give: the wire format changed",
            v.name
        );
        assert_eq!(
            stored,
            v.render(),
            "tests/vectors/{} is not in canonical form",
            v.name
        );
    }
}

/// Every file has its own test below, and every listed test has its file.
#[test]
fn every_file_has_a_test() {
    let mut listed: Vec<String> = case::LISTED.iter().map(|s| s.to_string()).collect();
    listed.sort();
    assert_eq!(listed, vector_files());
}

/// docs/protocol.md carries exactly the generated section, so the doc cannot drift.
#[test]
fn doc_matches_vectors() {
    let vectors = build();
    let doc = std::fs::read_to_string(doc_path()).unwrap();
    assert_eq!(
        doc,
        doc_with(&doc, &doc_section(&vectors)),
        "docs/protocol.md's generated vectors are stale: regenerate"
    );
    let flat: String = doc.split_whitespace().collect();
    for v in vectors.iter().filter(|v| v.error.is_none()) {
        assert!(flat.contains(&hex::encode(&v.bytes)), "{} missing", v.name);
    }
    // The label table lists every label the code uses.
    for l in [
        label::KEYSET,
        label::NOTE,
        label::TRANSFER,
        label::COIN_ID,
        label::REGISTRATION,
        label::CERTIFICATE,
        label::REQUEST,
        label::PAYMENT,
        label::RECEIPT,
        label::REVOCATION,
        label::SYNC_REQUEST,
        label::SYNC_RESPONSE,
        label::CONFIRMATION,
        label::FILE,
        label::COLLECTION,
    ] {
        let l = std::str::from_utf8(l).unwrap();
        assert!(doc.contains(&format!("`{l}`")), "label {l} not in the doc");
    }
}

/// (b, c, d) One file: decode, re-encode to the same bytes, verify, compare with `expect`.
fn check_file(name: &str) {
    let text = std::fs::read_to_string(vectors_dir().join(name)).unwrap();
    let v = Vector::parse(&text);
    assert_eq!(v.name, name, "the name line matches the file name");
    let w = World::new();
    let got = run(&v.kind, &v.bytes, &w);
    match (&v.error, got) {
        (None, Ok(id)) => {
            assert_eq!(id.map(|i| i.to_hex()), v.id, "{name}: id");
            if let Some(code) = &v.code {
                let q = PaymentRequest::from_code(code).unwrap();
                assert_eq!(q.to_bytes(), v.bytes, "{name}: code decodes to the bytes");
                assert_eq!(q.to_code(), *code, "{name}: code");
                let upper = PaymentRequest::from_code(&code.to_uppercase()).unwrap();
                assert_eq!(upper, q, "{name}: upper-case code");
            }
        }
        (None, Err(e)) => panic!("{name}: expected ok, got error: {e}"),
        (Some(want), Ok(_)) => panic!("{name}: expected error {want:?}, but it verified"),
        (Some(want), Err(e)) => assert!(
            e.contains(want.as_str()),
            "{name}: expected error containing {want:?}, got {e:?}"
        ),
    }
}

macro_rules! cases {
    ($($test:ident => $file:literal,)*) => {
        /// One test per vector file.
        mod case {
            /// The files the tests below read.
            pub const LISTED: &[&str] = &[$($file),*];
            $(
                #[test]
                fn $test() {
                    super::check_file($file);
                }
            )*
        }
    };
}

cases! {
    certificate => "certificate",
    certificate_bad_class => "certificate-bad-class",
    certificate_bad_kind => "certificate-bad-kind",
    certificate_bad_option_tag => "certificate-bad-option-tag",
    certificate_bad_signature => "certificate-bad-signature",
    certificate_expires_before_issued => "certificate-expires-before-issued",
    certificate_trailing_byte => "certificate-trailing-byte",
    certificate_truncated => "certificate-truncated",
    certificate_unknown_version => "certificate-unknown-version",
    cod_order => "cod-order",
    cod_order_bad_signature => "cod-order-bad-signature",
    cod_order_pays_someone_else => "cod-order-pays-someone-else",
    cod_order_trailing_byte => "cod-order-trailing-byte",
    cod_order_truncated => "cod-order-truncated",
    cod_order_unknown_version => "cod-order-unknown-version",
    coin => "coin",
    coin_bad_output_index => "coin-bad-output-index",
    coin_bad_signature => "coin-bad-signature",
    coin_broken_chain => "coin-broken-chain",
    coin_time_backwards => "coin-time-backwards",
    coin_trailing_byte => "coin-trailing-byte",
    coin_truncated => "coin-truncated",
    coin_unknown_version => "coin-unknown-version",
    coin_unspent => "coin-unspent",
    coin_value_not_conserved => "coin-value-not-conserved",
    confirmation => "confirmation",
    confirmation_bad_signature => "confirmation-bad-signature",
    confirmation_other_issuer => "confirmation-other-issuer",
    confirmation_other_payment => "confirmation-other-payment",
    confirmation_trailing_byte => "confirmation-trailing-byte",
    confirmation_truncated => "confirmation-truncated",
    confirmation_unknown_version => "confirmation-unknown-version",
    confirmation_weak_payee => "confirmation-weak-payee",
    delivery_receipt => "delivery-receipt",
    delivery_receipt_bad_signature => "delivery-receipt-bad-signature",
    delivery_receipt_trailing_byte => "delivery-receipt-trailing-byte",
    delivery_receipt_truncated => "delivery-receipt-truncated",
    delivery_receipt_unknown_version => "delivery-receipt-unknown-version",
    file_bad_body => "file-bad-body",
    file_bad_checksum => "file-bad-checksum",
    file_bad_magic => "file-bad-magic",
    file_confirmed_payment => "file-confirmed-payment",
    file_confirmed_payment_bad_confirmation => "file-confirmed-payment-bad-confirmation",
    file_confirmed_payment_no_confirmation => "file-confirmed-payment-no-confirmation",
    file_confirmed_payment_trailing_byte => "file-confirmed-payment-trailing-byte",
    file_header_only => "file-header-only",
    file_notes => "file-notes",
    file_proof_collected_then_spent => "file-proof-collected-then-spent",
    file_request => "file-request",
    file_sync_request => "file-sync-request",
    file_sync_response => "file-sync-response",
    file_trailing_byte => "file-trailing-byte",
    file_truncated => "file-truncated",
    file_unknown_kind => "file-unknown-kind",
    file_unknown_version => "file-unknown-version",
    handoff => "handoff",
    handoff_bad_signature => "handoff-bad-signature",
    handoff_counted_twice => "handoff-counted-twice",
    handoff_dropped_payment => "handoff-dropped-payment",
    handoff_trailing_byte => "handoff-trailing-byte",
    handoff_truncated => "handoff-truncated",
    handoff_unknown_version => "handoff-unknown-version",
    keyset => "keyset",
    keyset_bad_signature => "keyset-bad-signature",
    keyset_bad_validity_window => "keyset-bad-validity-window",
    keyset_duplicate_key_id => "keyset-duplicate-key-id",
    keyset_key_ids_descending => "keyset-key-ids-descending",
    keyset_max_hops_zero => "keyset-max-hops-zero",
    keyset_no_keys => "keyset-no-keys",
    keyset_trailing_byte => "keyset-trailing-byte",
    keyset_truncated => "keyset-truncated",
    keyset_unknown_version => "keyset-unknown-version",
    keyset_weak_root => "keyset-weak-root",
    note => "note",
    note_bad_earmark_tag => "note-bad-earmark-tag",
    note_bad_signature => "note-bad-signature",
    note_earmarked => "note-earmarked",
    note_trailing_byte => "note-trailing-byte",
    note_truncated => "note-truncated",
    note_unknown_key_id => "note-unknown-key-id",
    note_unknown_version => "note-unknown-version",
    note_weak_holder => "note-weak-holder",
    note_zero_value => "note-zero-value",
    payment => "payment",
    payment_amount_mismatch => "payment-amount-mismatch",
    payment_bad_revocation_tag => "payment-bad-revocation-tag",
    payment_bad_signature => "payment-bad-signature",
    payment_no_coins => "payment-no-coins",
    payment_tampered_revocations => "payment-tampered-revocations",
    payment_trailing_byte => "payment-trailing-byte",
    payment_truncated => "payment-truncated",
    payment_unbound_transfer => "payment-unbound-transfer",
    payment_unknown_version => "payment-unknown-version",
    payment_without_revocations => "payment-without-revocations",
    payment_zero_amount => "payment-zero-amount",
    proof => "proof",
    proof_bad_signature => "proof-bad-signature",
    proof_collected_then_spent => "proof-collected-then-spent",
    proof_collected_then_spent_bad_statement_signature => "proof-collected-then-spent-bad-statement-signature",
    proof_collected_then_spent_bad_transfer_signature => "proof-collected-then-spent-bad-transfer-signature",
    proof_collected_then_spent_other_coin => "proof-collected-then-spent-other-coin",
    proof_collected_then_spent_other_issuer => "proof-collected-then-spent-other-issuer",
    proof_collected_then_spent_statement_version => "proof-collected-then-spent-statement-version",
    proof_collected_then_spent_tagged_kind_1 => "proof-collected-then-spent-tagged-kind-1",
    proof_collected_then_spent_trailing_byte => "proof-collected-then-spent-trailing-byte",
    proof_collected_then_spent_truncated => "proof-collected-then-spent-truncated",
    proof_collected_then_spent_unknown_kind => "proof-collected-then-spent-unknown-kind",
    proof_collected_then_spent_weak_holder => "proof-collected-then-spent-weak-holder",
    proof_collected_then_spent_wrong_holder => "proof-collected-then-spent-wrong-holder",
    proof_collected_then_spent_zero_value => "proof-collected-then-spent-zero-value",
    proof_different_coins => "proof-different-coins",
    proof_out_of_order => "proof-out-of-order",
    proof_same_transfer => "proof-same-transfer",
    proof_trailing_byte => "proof-trailing-byte",
    proof_truncated => "proof-truncated",
    proof_unknown_version => "proof-unknown-version",
    proof_wrong_signer => "proof-wrong-signer",
    receipt => "receipt",
    receipt_bad_signature => "receipt-bad-signature",
    receipt_trailing_byte => "receipt-trailing-byte",
    receipt_truncated => "receipt-truncated",
    receipt_unknown_version => "receipt-unknown-version",
    receipt_weak_payer => "receipt-weak-payer",
    refund => "refund",
    refund_number_zero => "refund-number-zero",
    refund_trailing_byte => "refund-trailing-byte",
    refund_truncated => "refund-truncated",
    refund_unbound => "refund-unbound",
    refund_unknown_version => "refund-unknown-version",
    registration => "registration",
    registration_bad_kind => "registration-bad-kind",
    registration_bad_option_tag => "registration-bad-option-tag",
    registration_bad_signature => "registration-bad-signature",
    registration_personal_with_merchant => "registration-personal-with-merchant",
    registration_till => "registration-till",
    registration_till_without_merchant => "registration-till-without-merchant",
    request => "request",
    request_bad_signature => "request-bad-signature",
    request_expires_before_created => "request-expires-before-created",
    request_memo_not_utf8 => "request-memo-not-utf8",
    request_memo_too_long => "request-memo-too-long",
    request_trailing_byte => "request-trailing-byte",
    request_truncated => "request-truncated",
    request_unknown_version => "request-unknown-version",
    revocation_list => "revocation-list",
    revocation_list_bad_reason => "revocation-list-bad-reason",
    revocation_list_bad_signature => "revocation-list-bad-signature",
    revocation_list_count_past_end => "revocation-list-count-past-end",
    revocation_list_count_too_large => "revocation-list-count-too-large",
    revocation_list_duplicate => "revocation-list-duplicate",
    revocation_list_other_issuer => "revocation-list-other-issuer",
    revocation_list_trailing_byte => "revocation-list-trailing-byte",
    revocation_list_truncated => "revocation-list-truncated",
    revocation_list_unknown_version => "revocation-list-unknown-version",
    revocation_list_unsorted => "revocation-list-unsorted",
    sync_request => "sync-request",
    sync_request_bad_signature => "sync-request-bad-signature",
    sync_request_too_many_coins => "sync-request-too-many-coins",
    sync_request_too_many_proofs => "sync-request-too-many-proofs",
    sync_request_trailing_byte => "sync-request-trailing-byte",
    sync_request_truncated => "sync-request-truncated",
    sync_request_unknown_version => "sync-request-unknown-version",
    sync_request_weak_wallet => "sync-request-weak-wallet",
    sync_response => "sync-response",
    sync_response_accepted_with_reason => "sync-response-accepted-with-reason",
    sync_response_bad_proof_tag => "sync-response-bad-proof-tag",
    sync_response_bad_reason => "sync-response-bad-reason",
    sync_response_bad_signature => "sync-response-bad-signature",
    sync_response_bad_status => "sync-response-bad-status",
    sync_response_foreign_revocations => "sync-response-foreign-revocations",
    sync_response_keyset_not_older => "sync-response-keyset-not-older",
    sync_response_older_keyset => "sync-response-older-keyset",
    sync_response_other_issuer => "sync-response-other-issuer",
    sync_response_rejected_without_reason => "sync-response-rejected-without-reason",
    sync_response_trailing_byte => "sync-response-trailing-byte",
    sync_response_truncated => "sync-response-truncated",
    sync_response_unknown_version => "sync-response-unknown-version",
    till_authorization => "till-authorization",
    till_authorization_bad_signature => "till-authorization-bad-signature",
    till_authorization_empty_name => "till-authorization-empty-name",
    till_authorization_other_till => "till-authorization-other-till",
    till_authorization_trailing_byte => "till-authorization-trailing-byte",
    till_authorization_truncated => "till-authorization-truncated",
    till_authorization_unknown_version => "till-authorization-unknown-version",
    till_journal => "till-journal",
    till_journal_bad_signature => "till-journal-bad-signature",
    till_journal_false_claim => "till-journal-false-claim",
    till_journal_trailing_byte => "till-journal-trailing-byte",
    till_journal_truncated => "till-journal-truncated",
    till_journal_unknown_version => "till-journal-unknown-version",
    till_journal_unsorted => "till-journal-unsorted",
    transfer => "transfer",
    transfer_bad_signature => "transfer-bad-signature",
    transfer_no_outputs => "transfer-no-outputs",
    transfer_too_many_outputs => "transfer-too-many-outputs",
    transfer_trailing_byte => "transfer-trailing-byte",
    transfer_truncated => "transfer-truncated",
    transfer_unknown_version => "transfer-unknown-version",
    transfer_weak_holder => "transfer-weak-holder",
    transfer_zero_output => "transfer-zero-output",
}

/// The spec's derivations, recomputed here from the doc's description with blake3 and
/// ed25519-dalek directly rather than through the library: signing bytes are
/// `u8 label length | label | encoding without the signature`, ids are blake3 of them, coin ids
/// hash `transfer id | output index` under `tongbao/v1/coin-id`, the file checksum is the first
/// 8 bytes of blake3 over the labelled file bytes.
#[test]
fn derivations_follow_the_spec() {
    let w = World::new();
    let labelled = |label: &str, body: &[u8]| {
        let mut m = vec![u8::try_from(label.len()).unwrap()];
        m.extend_from_slice(label.as_bytes());
        m.extend_from_slice(body);
        m
    };
    let check = |label: &str, signed: &[u8], sig: &[u8], signer: &PublicKey, id: Id| {
        let m = labelled(label, signed);
        assert_eq!(*blake3::hash(&m).as_bytes(), id.0, "{label}: id");
        let vk = ed25519_dalek::VerifyingKey::from_bytes(signer.as_bytes()).unwrap();
        let sig = ed25519_dalek::Signature::from_slice(sig).unwrap();
        vk.verify_strict(&m, &sig).unwrap();
    };
    let split = |b: Vec<u8>| {
        let n = b.len() - 64;
        (b[..n].to_vec(), b[n..].to_vec())
    };
    let cases: Vec<(&str, Vec<u8>, PublicKey, Id)> = vec![
        (
            "tongbao/v1/keyset",
            w.keyset.to_bytes(),
            w.root.public(),
            w.keyset.id(),
        ),
        (
            "tongbao/v1/note",
            w.note.to_bytes(),
            w.note_key.public(),
            w.note.id(),
        ),
        (
            "tongbao/v1/transfer",
            w.t1.to_bytes(),
            w.alice.public(),
            w.t1.id(),
        ),
        (
            "tongbao/v1/registration",
            w.registration.to_bytes(),
            w.alice.public(),
            w.registration.id(),
        ),
        (
            "tongbao/v1/certificate",
            w.certificate.to_bytes(),
            w.note_key.public(),
            w.certificate.id(),
        ),
        (
            "tongbao/v1/request",
            w.request.to_bytes(),
            w.shop.public(),
            w.request.id(),
        ),
        (
            "tongbao/v1/payment",
            {
                // Signing bytes end before the signature and the two trailing option tags.
                let b = w.payment_without_revocations().to_bytes();
                b[..b.len() - 2].to_vec()
            },
            w.alice.public(),
            w.payment.id(),
        ),
        (
            "tongbao/v1/receipt",
            w.receipt.to_bytes(),
            w.shop.public(),
            w.receipt.id(),
        ),
        (
            "tongbao/v1/revocation",
            w.revocations.to_bytes(),
            w.root.public(),
            w.revocations.id(),
        ),
        (
            "tongbao/v1/sync-request",
            w.sync_request.to_bytes(),
            w.alice.public(),
            w.sync_request.id(),
        ),
        (
            "tongbao/v1/sync-response",
            w.sync_response.to_bytes(),
            w.root.public(),
            w.sync_response.id(),
        ),
        (
            "tongbao/v1/confirmation",
            w.confirmation.to_bytes(),
            w.root.public(),
            w.confirmation.id(),
        ),
        (
            "tongbao/v1/collection",
            w.collection.to_bytes(),
            w.root.public(),
            w.collection.id(),
        ),
    ];
    for (label, bytes, signer, id) in cases {
        let (signed, sig) = split(bytes);
        check(label, &signed, &sig, &signer, id);
    }
    // The payment without its list ends in the option tags 0 (revocation list) and 0 (key set);
    // the full payment is that prefix, tag 1, the list, and the key set tag 0.
    let bare = w.payment_without_revocations().to_bytes();
    assert_eq!(&bare[bare.len() - 2..], &[0, 0]);
    assert_eq!(
        w.payment.to_bytes(),
        [
            &bare[..bare.len() - 2],
            &[1u8][..],
            &w.revocations.to_bytes(),
            &[0u8][..]
        ]
        .concat()
    );
    // Coin ids.
    for (t, index) in [(&w.t1, 1u8), (&w.t2, 0)] {
        let mut body = t.id().0.to_vec();
        body.push(index);
        let want = blake3::hash(&labelled("tongbao/v1/coin-id", &body));
        assert_eq!(coin_id(&t.id(), index).0, *want.as_bytes());
    }
    assert_eq!(w.coin.id(), w.t2.output_coin_id(0));
    assert_eq!(w.t2.input, w.t1.output_coin_id(1));
    assert_eq!(w.t1.input, w.note.id());
    // The proof id: blake3 of its whole encoding, no label, for either kind. Kind 1 starts with
    // its version byte 1; kind 2 with 0, its kind tag 2, the statement and the transfer.
    for p in [&w.proof, &w.collected_proof] {
        assert_eq!(p.id().0, *blake3::hash(&p.to_bytes()).as_bytes());
    }
    assert_eq!(w.proof.to_bytes()[0], 1);
    assert_eq!(
        w.collected_proof.to_bytes(),
        [&[0u8, 2][..], &w.collection.to_bytes(), &w.c1.to_bytes()].concat()
    );
    assert_eq!(w.collection.to_bytes().len(), 161);
    assert_eq!(
        (w.collection.coin, w.c1.input),
        (w.b1.output_coin_id(0), w.b1.output_coin_id(0))
    );
    assert!(w.sync_response.collected.contains(&w.collection.coin));
    // The file container.
    let f = w.request_file().to_file_bytes();
    let body = w.request.to_bytes();
    assert_eq!(&f[..7], b"TONGBAO");
    assert_eq!(f[7], 1);
    assert_eq!(f[8], 5);
    assert_eq!(f[9..13], u32::try_from(body.len()).unwrap().to_be_bytes());
    assert_eq!(f[13..f.len() - 8], body[..]);
    let sum = blake3::hash(&labelled("tongbao/v1/file", &f[..f.len() - 8]));
    assert_eq!(f[f.len() - 8..], sum.as_bytes()[..8]);
    // The sync files: kinds 10 and 11 hold the message; kind 12 the payment's full encoding (its
    // revocation list included) followed by the confirmation's.
    for (file, kind, body) in [
        (w.sync_request_file(), 10u8, w.sync_request.to_bytes()),
        (w.sync_response_file(), 11, w.sync_response.to_bytes()),
        (
            w.confirmed_payment_file(),
            12,
            [w.payment.to_bytes(), w.confirmation.to_bytes()].concat(),
        ),
    ] {
        let f = file.to_file_bytes();
        assert_eq!(f[8], kind);
        assert_eq!(f[9..13], u32::try_from(body.len()).unwrap().to_be_bytes());
        assert_eq!(f[13..f.len() - 8], body[..]);
    }
    // The response names the request by its id, and the confirmation the payment by its id.
    assert_eq!(w.sync_response.request, w.sync_request.id());
    assert_eq!(w.confirmation.payment_id, w.payment.id());
    // Addresses: bech32m of the 32 key bytes under `tbw`.
    let alice = w.alice.public();
    let addr =
        bech32::encode::<bech32::Bech32m>(bech32::Hrp::parse("tbw").unwrap(), alice.as_bytes())
            .unwrap();
    assert_eq!(alice.address(), addr);
    assert_eq!(PublicKey::from_address(&addr).unwrap(), alice);
    // The request code: bech32m of the request bytes under `tbreq`.
    let code =
        bech32::encode::<bech32::Bech32m>(bech32::Hrp::parse("tbreq").unwrap(), &body).unwrap();
    assert_eq!(w.request.to_code(), code);
}

/// Every truncation of `bytes` fails to decode; every single-bit flip either fails to decode or
/// fails verification, and whatever decodes re-encodes to exactly its input. `allow` names flips
/// (byte, bit) that may verify: they must give a different valid message, never the same one.
fn exhaustive(kind: &str, bytes: &[u8], allow: &[(usize, u8)]) {
    let w = World::new();
    run(kind, bytes, &w).unwrap();
    for len in 0..bytes.len() {
        match decode(kind, &bytes[..len]) {
            Err(e) => assert!(e.starts_with("decode: "), "{e}"),
            Ok(_) => panic!("{kind}: truncation to {len} bytes decoded"),
        }
    }
    let mut flipped = bytes.to_vec();
    for i in 0..bytes.len() {
        for bit in 0..8u8 {
            flipped[i] ^= 1 << bit;
            let r = run(kind, &flipped, &w);
            if r.is_ok() {
                assert!(
                    allow.contains(&(i, bit)),
                    "{kind}: flipping bit {bit} of byte {i} still verifies"
                );
            }
            flipped[i] ^= 1 << bit;
        }
    }
}

#[test]
fn exhaustive_transfer() {
    exhaustive("transfer", &World::new().t1.to_bytes(), &[]);
}

#[test]
fn exhaustive_request() {
    let w = World::new();
    exhaustive("request", &w.request.to_bytes(), &[]);
    exhaustive("file", &w.request_file().to_file_bytes(), &[]);
}

#[test]
fn exhaustive_payment() {
    exhaustive("payment", &World::new().payment.to_bytes(), &[]);
}

#[test]
fn exhaustive_other_messages() {
    let w = World::new();
    exhaustive("keyset", &w.keyset.to_bytes(), &[]);
    exhaustive("note", &w.note.to_bytes(), &[]);
    exhaustive("note", &w.red_note.to_bytes(), &[]);
    exhaustive("registration", &w.registration.to_bytes(), &[]);
    exhaustive("registration", &w.till_registration.to_bytes(), &[]);
    exhaustive("certificate", &w.certificate.to_bytes(), &[]);
    exhaustive("receipt", &w.receipt.to_bytes(), &[]);
    exhaustive("revocation-list", &w.revocations.to_bytes(), &[]);
    exhaustive("proof", &w.proof.to_bytes(), &[]);
    exhaustive("proof", &w.collected_proof.to_bytes(), &[]);
    exhaustive(
        "file",
        &TbFile::Proof(w.collected_proof.clone()).to_file_bytes(),
        &[],
    );
    // A coin's final output index is signed by nobody: it only says which output the bytes stand
    // for. Flipping its low bit gives alice's 45.00 change coin, another valid coin.
    let coin = w.coin.to_bytes();
    let last = coin.len() - 1;
    exhaustive("coin", &coin, &[(last, 0)]);
    let mut change = coin.clone();
    change[last] ^= 1;
    let info = Coin::decode(&change).unwrap().verify(&w.ctx()).unwrap();
    assert_eq!((info.holder, info.value), (w.alice.public(), Fen(4_500)));
}

#[test]
fn exhaustive_merchant_messages() {
    let w = World::new();
    let m = merchant_cases::Merchants::new(&w);
    exhaustive("till-authorization", &m.authorization.to_bytes(), &[]);
    exhaustive("refund", &m.refund.to_bytes(), &[]);
    exhaustive("till-journal", &m.journal.to_bytes(), &[]);
    exhaustive("cod-order", &m.order.to_bytes(), &[]);
    exhaustive("delivery-receipt", &m.delivery.to_bytes(), &[]);
    exhaustive("handoff", &m.handoff.to_bytes(), &[]);
}

#[test]
fn exhaustive_sync_request() {
    let w = World::new();
    exhaustive("sync-request", &w.sync_request.to_bytes(), &[]);
}

#[test]
fn exhaustive_sync_response() {
    let w = World::new();
    exhaustive("sync-response", &w.sync_response.to_bytes(), &[]);
}

#[test]
fn exhaustive_confirmation() {
    let w = World::new();
    exhaustive("confirmation", &w.confirmation.to_bytes(), &[]);
    exhaustive("file", &w.confirmed_payment_file().to_file_bytes(), &[]);
}

/// The sync vectors tell a story the settlement rules (`tongbao::settlement::settle_chain`, as
/// `Issuer::sync` applies them) bear out: replayed on an in-memory ledger, it gives exactly the
/// response's results, proof, collected coins, fresh note and certificate. See
/// docs/protocol.md#settlement.
#[test]
fn sync_vectors_follow_the_settlement_rules() {
    use std::collections::HashMap;
    use std::convert::Infallible;
    use tongbao::settlement::{CoinState, Collected, LedgerView, Overlay, settle_chain};

    struct Mem(HashMap<Id, CoinState>);
    impl LedgerView for Mem {
        type Error = Infallible;
        fn coin(&self, id: &Id) -> Result<Option<CoinState>, Infallible> {
            Ok(self.0.get(id).cloned())
        }
    }

    let w = World::new();
    let (req, resp) = (&w.sync_request, &w.sync_response);
    let root = w.root.public();
    let (alice, shop, bob) = (w.alice.public(), w.shop.public(), pk(5));
    let keys = w.settlement_keyset();
    let ctx = Context {
        keys: &keys,
        now: cases::SETTLED_AT,
        revoked: None,
    };
    let live = |holder: PublicKey, value: u64| CoinState::Live {
        value: Fen(value),
        holder,
    };
    // The issued notes are live; nothing else is known.
    let base = Mem(HashMap::from([
        (w.note.id(), live(alice, 10_000)),
        (w.mallory_note.id(), live(pk(6), 5_000)),
    ]));
    let mut ov = Overlay::new(&base);
    let mut settle = |coin: &Coin, syncing: &PublicKey| {
        let info = coin.verify(&ctx).unwrap();
        settle_chain(&mut ov, coin, &info, &root, syncing).unwrap()
    };
    let refresh = |key: &SecretKey, coin: &Coin, counter: u64, sync_id: &[u8; 16]| {
        let out = Output {
            holder: root,
            value: coin.value(),
        };
        let t = Transfer::sign(
            key,
            coin.id(),
            vec![out],
            counter,
            cases::T + 30,
            Nonce(*sync_id),
        );
        coin.extended(t, 0)
    };
    // First the shop syncs: its 30.00 from alice and mallory's 50.00, both refreshed.
    let from_mallory =
        |t: &Transfer| Coin::from_note(w.mallory_note.clone()).extended(t.clone(), 0);
    for c in [&w.coin, &from_mallory(&w.m2)] {
        let o = settle(&refresh(&w.shop, c, 1, b"sync-shop-000001"), &shop);
        assert_eq!(o.result.status, CoinStatus::Accepted);
    }
    // Then bob: his payment of 12.00 to alice, and his 13.00 change refreshed.
    let bobs = Coin::from_note(w.note.clone()).extended(w.t1.clone(), 0);
    let to_alice = bobs.extended(w.b1.clone(), 0);
    let o = settle(&to_alice, &bob);
    assert_eq!(o.result.status, CoinStatus::Accepted);
    let change = bobs.extended(w.b1.clone(), 1);
    let o = settle(
        &refresh(&cases::sk(5), &change, 2, b"sync-bob-0000001"),
        &bob,
    );
    assert_eq!(
        (o.result.status, o.refreshed),
        (CoinStatus::Accepted, Fen(1_300))
    );

    // Alice's request: her wallet's refresh transfers and what it reports.
    assert!(req.verify_signature().is_ok());
    assert_eq!(req.counter, w.payment.counter + 1);
    let held = [
        Coin::from_note(w.note.clone())
            .extended(w.t1.clone(), 1)
            .extended(w.t2.clone(), 1)
            .extended(w.r1.clone(), 0),
        from_mallory(&w.m1).extended(w.r2.clone(), 0),
    ];
    assert!(held.iter().all(|c| req.coins[..2].contains(c)));
    for c in &req.coins[..2] {
        let r = &c.hops.last().unwrap().transfer;
        assert_eq!(
            (r.counter, r.time, r.request_id),
            (req.counter, req.time, req.sync_id)
        );
        assert_eq!(
            r.outputs,
            vec![Output {
                holder: root,
                value: c.value()
            }]
        );
    }
    assert_eq!(req.coins[2], w.coin);
    assert_eq!(req.proofs, vec![w.mallory_proof.clone()]);
    assert!(w.mallory_proof.verify(&w.keyset).is_ok());

    // Settling it, chain by chain, gives the response's results.
    assert_eq!(req.coins.len(), resp.results.len());
    let mut refreshed = Fen::ZERO;
    for (coin, want) in req.coins.iter().zip(&resp.results) {
        let o = settle(coin, &alice);
        assert_eq!(o.result, *want);
        refreshed = refreshed.checked_add(o.refreshed).unwrap();
        if let Some((cheater, proof)) = o.double_spend {
            assert_eq!((cheater, proof), (pk(6), w.mallory_proof.clone()));
        }
    }
    assert_eq!(refreshed, Fen(4_500));
    // The second spend of mallory's note was rejected: the first (to the shop) stands.
    assert_eq!(
        ov.get(&w.mallory_note.id()).unwrap(),
        Some(CoinState::Spent {
            value: Fen(5_000),
            transfer: w.m2.clone()
        })
    );
    // Credits: every live coin alice holds at the ledger is collected.
    let changed: Vec<(Id, CoinState)> = ov.changes().map(|(i, s)| (*i, s.clone())).collect();
    let mut credits: Vec<(Id, Fen)> = changed
        .iter()
        .chain(
            base.0
                .iter()
                .map(|(i, s)| (*i, s.clone()))
                .collect::<Vec<_>>()
                .iter(),
        )
        .filter_map(|(i, _)| match ov.get(i).unwrap() {
            Some(CoinState::Live { value, holder }) if holder == alice => Some((*i, value)),
            _ => None,
        })
        .collect();
    credits.sort();
    credits.dedup();
    assert_eq!(
        credits.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        resp.collected
    );
    let collected = credits.iter().map(|(_, v)| v.0).sum::<u64>();
    assert_eq!(collected, 1_200);
    // One fresh note: refreshed + collected + top-up - redeem, serial = the sync id.
    let fresh = refreshed.0 + collected + req.topup.0 - req.redeem.0;
    assert_eq!(resp.notes.len(), 1);
    let n = &resp.notes[0];
    assert_eq!(
        (n.value, n.holder, n.serial),
        (Fen(fresh), alice, req.sync_id)
    );
    assert_eq!((n.issued_at, n.earmark), (resp.time, Earmark::None));
    assert_eq!(resp.redeemed, req.redeem);
    // The renewed certificate: the next serial, counter base = the request's counter, 90 days.
    let c = &resp.certificate;
    assert_eq!(c.serial, w.certificate.serial + 1);
    assert_eq!(c.counter_base, req.counter);
    assert_eq!(
        (c.issued_at, c.expires_at),
        (resp.time, resp.time + 90 * 86_400)
    );
    assert_eq!(
        (resp.wallet, resp.sync_id, resp.request),
        (alice, req.sync_id, req.id())
    );
    // Mallory was already revoked, so the group adds no revocation: the list is unchanged.
    assert!(resp.revocations.is_revoked(&pk(6)));
    assert_eq!(resp.revocations, w.revocations);

    // The issuer records each collection with its sync and time. Later alice's backup, made before
    // her sync, pays the shop bob's 12.00 again; the shop refreshes it. The chain meets the coin
    // collected for alice: a double spend, proven by the statement of that collection (signed by
    // the root once found) and alice's transfer: exactly the collected-then-spent vector.
    for (id, value) in &credits {
        ov.set(
            *id,
            CoinState::Redeemed {
                value: *value,
                holder: alice,
                collected: Some(Collected {
                    sync_id: req.sync_id,
                    at: resp.time,
                }),
            },
        );
    }
    let respent = to_alice.extended(w.c1.clone(), 0);
    let shop_refresh = Transfer::sign(
        &w.shop,
        respent.id(),
        vec![Output {
            holder: root,
            value: Fen(1_200),
        }],
        2,
        cases::RESPENT_AT + 60,
        Nonce(*b"sync-shop-000002"),
    );
    let chain = respent.extended(shop_refresh, 0);
    let info = chain.verify(&ctx).unwrap();
    let mut o = settle_chain(&mut ov, &chain, &info, &root, &shop).unwrap();
    assert_eq!(
        (o.result.status, o.result.reason),
        (CoinStatus::Rejected, RejectReason::DoubleSpend)
    );
    o.sign_collection(&w.root);
    let (cheater, proof) = o.double_spend.clone().unwrap();
    assert_eq!((cheater, &proof), (alice, &w.collected_proof));
    assert_eq!(o.result.proof.as_ref(), Some(&w.collected_proof));
    assert!(proof.verify(&w.keyset).is_ok());
}
