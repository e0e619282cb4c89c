//! The file container every Tongbao file uses. See docs/protocol.md#files.
//!
//! `magic "TONGBAO" | container version u8 | kind u8 | body length u32 | body | checksum [8]`,
//! where the checksum is the first 8 bytes of blake3 over the labelled preceding bytes. The checksum
//! turns any corruption into one clear error before the body is even decoded; the signatures inside
//! the body are what make it trustworthy.

use std::io::Write;
use std::path::Path;

use super::certificate::{Certificate, Registration};
use super::cod_order::CodOrder;
use super::delivery::DeliveryReceipt;
use super::handoff::HandoffManifest;
use super::journal::TillJournal;
use super::keyset::IssuerKeySet;
use super::note::Note;
use super::payment::{Payment, Receipt};
use super::proof::DoubleSpendProof;
use super::refund::Refund;
use super::request::PaymentRequest;
use super::revocation::RevocationList;
use super::sync::{Confirmation, SyncRequest, SyncResponse};
use super::till::TillAuthorization;
use super::{VERSION, label};
use crate::codec::{Decode, DecodeError, Encode, Put, Reader, signing_bytes};

/// File magic.
pub const MAGIC: &[u8; 7] = b"TONGBAO";
/// Largest file any command reads.
pub const MAX_FILE: u64 = 64 * 1024 * 1024;
/// Most notes in one issued bundle.
pub const MAX_BUNDLE_NOTES: u32 = 100_000;

/// The smallest encoded note (no earmark): 1 + 4 + 16 + 8 + 32 + 8 + 1 + 64 bytes.
const NOTE_MIN_LEN: usize = 134;

/// Issued notes, for one wallet to import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteBundle {
    /// The notes.
    pub notes: Vec<Note>,
}

impl Encode for NoteBundle {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u8(VERSION);
        out.put_u32(self.notes.len() as u32);
        for n in &self.notes {
            n.encode(out);
        }
    }
}

impl Decode for NoteBundle {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.version("note bundle", VERSION)?;
        let n = r.count32("notes", 1, MAX_BUNDLE_NOTES, NOTE_MIN_LEN)?;
        let mut notes = Vec::with_capacity(n);
        for _ in 0..n {
            notes.push(Note::decode_from(r)?);
        }
        Ok(NoteBundle { notes })
    }
}

/// Everything a file can hold.
#[derive(Debug, Clone)]
pub enum TbFile {
    /// Issuer key set.
    KeySet(IssuerKeySet),
    /// Wallet registration.
    Registration(Registration),
    /// Wallet certificate.
    Certificate(Certificate),
    /// Issued notes.
    Notes(NoteBundle),
    /// Payment request.
    Request(PaymentRequest),
    /// Payment.
    Payment(Box<Payment>),
    /// Receipt.
    Receipt(Receipt),
    /// Revocation list.
    Revocations(RevocationList),
    /// Double-spend proof.
    Proof(DoubleSpendProof),
    /// Sync request (air-gapped settlement).
    SyncRequest(Box<SyncRequest>),
    /// Sync response.
    SyncResponse(Box<SyncResponse>),
    /// A payment settled online, with the issuer's confirmation.
    ConfirmedPayment(Box<Payment>, Confirmation),
    /// A merchant's authorization of a till.
    TillAuthorization(Box<TillAuthorization>),
    /// A refund payment and the payment it refunds.
    Refund(Box<Refund>),
    /// A till's signed journal.
    TillJournal(Box<TillJournal>),
    /// A cash-on-delivery order.
    CodOrder(Box<CodOrder>),
    /// A courier's delivery receipt.
    DeliveryReceipt(Box<DeliveryReceipt>),
    /// A courier's handoff manifest with the collected payments.
    Handoff(Box<HandoffManifest>),
}

impl TbFile {
    fn kind(&self) -> u8 {
        match self {
            TbFile::KeySet(_) => 1,
            TbFile::Registration(_) => 2,
            TbFile::Certificate(_) => 3,
            TbFile::Notes(_) => 4,
            TbFile::Request(_) => 5,
            TbFile::Payment(_) => 6,
            TbFile::Receipt(_) => 7,
            TbFile::Revocations(_) => 8,
            TbFile::Proof(_) => 9,
            TbFile::SyncRequest(_) => 10,
            TbFile::SyncResponse(_) => 11,
            TbFile::ConfirmedPayment(..) => 12,
            TbFile::TillAuthorization(_) => 13,
            TbFile::Refund(_) => 14,
            TbFile::TillJournal(_) => 15,
            TbFile::CodOrder(_) => 16,
            TbFile::DeliveryReceipt(_) => 17,
            TbFile::Handoff(_) => 18,
        }
    }

    /// What the file holds, for people.
    pub fn kind_name(&self) -> &'static str {
        match self {
            TbFile::KeySet(_) => "issuer key set",
            TbFile::Registration(_) => "wallet registration",
            TbFile::Certificate(_) => "wallet certificate",
            TbFile::Notes(_) => "issued notes",
            TbFile::Request(_) => "payment request",
            TbFile::Payment(_) => "payment",
            TbFile::Receipt(_) => "receipt",
            TbFile::Revocations(_) => "revocation list",
            TbFile::Proof(_) => "double-spend proof",
            TbFile::SyncRequest(_) => "sync request",
            TbFile::SyncResponse(_) => "sync response",
            TbFile::ConfirmedPayment(..) => "confirmed online payment",
            TbFile::TillAuthorization(_) => "till authorization",
            TbFile::Refund(_) => "refund",
            TbFile::TillJournal(_) => "till journal",
            TbFile::CodOrder(_) => "delivery order",
            TbFile::DeliveryReceipt(_) => "delivery receipt",
            TbFile::Handoff(_) => "handoff manifest",
        }
    }

    /// The full file bytes.
    pub fn to_file_bytes(&self) -> Vec<u8> {
        let body = match self {
            TbFile::KeySet(x) => x.to_bytes(),
            TbFile::Registration(x) => x.to_bytes(),
            TbFile::Certificate(x) => x.to_bytes(),
            TbFile::Notes(x) => x.to_bytes(),
            TbFile::Request(x) => x.to_bytes(),
            TbFile::Payment(x) => x.to_bytes(),
            TbFile::Receipt(x) => x.to_bytes(),
            TbFile::Revocations(x) => x.to_bytes(),
            TbFile::Proof(x) => x.to_bytes(),
            TbFile::SyncRequest(x) => x.to_bytes(),
            TbFile::SyncResponse(x) => x.to_bytes(),
            TbFile::ConfirmedPayment(p, c) => {
                let mut b = p.to_bytes();
                c.encode(&mut b);
                b
            }
            TbFile::TillAuthorization(x) => x.to_bytes(),
            TbFile::Refund(x) => x.to_bytes(),
            TbFile::TillJournal(x) => x.to_bytes(),
            TbFile::CodOrder(x) => x.to_bytes(),
            TbFile::DeliveryReceipt(x) => x.to_bytes(),
            TbFile::Handoff(x) => x.to_bytes(),
        };
        let mut out = Vec::with_capacity(body.len() + 21);
        out.put_raw(MAGIC);
        out.put_u8(VERSION);
        out.put_u8(self.kind());
        out.put_u32(body.len() as u32);
        out.put_raw(&body);
        let sum = checksum(&out);
        out.put_raw(&sum);
        out
    }

    /// Reads file bytes: magic, version, checksum, then the body strictly.
    pub fn from_file_bytes(bytes: &[u8]) -> Result<TbFile, FileError> {
        if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
            return Err(FileError::NotTongbao);
        }
        if bytes.len() < 17 {
            return Err(FileError::Decode(DecodeError::Truncated("file header")));
        }
        let mut r = Reader::new(&bytes[MAGIC.len()..]);
        let version = r.u8("file version")?;
        if version != VERSION {
            return Err(FileError::Decode(DecodeError::UnknownVersion {
                what: "file",
                got: version,
                expected: VERSION,
            }));
        }
        let kind = r.u8("file kind")?;
        let len = r.u32("file length")? as usize;
        if r.remaining() != len.saturating_add(8) {
            return Err(if r.remaining() < len.saturating_add(8) {
                FileError::Decode(DecodeError::Truncated("file body"))
            } else {
                FileError::Decode(DecodeError::TrailingBytes(r.remaining() - len - 8))
            });
        }
        let split = bytes.len() - 8;
        if checksum(&bytes[..split]) != bytes[split..] {
            return Err(FileError::Checksum);
        }
        let body = &bytes[MAGIC.len() + 6..split];
        Ok(match kind {
            1 => TbFile::KeySet(IssuerKeySet::decode(body)?),
            2 => TbFile::Registration(Registration::decode(body)?),
            3 => TbFile::Certificate(Certificate::decode(body)?),
            4 => TbFile::Notes(NoteBundle::decode(body)?),
            5 => TbFile::Request(PaymentRequest::decode(body)?),
            6 => TbFile::Payment(Box::new(Payment::decode(body)?)),
            7 => TbFile::Receipt(Receipt::decode(body)?),
            8 => TbFile::Revocations(RevocationList::decode(body)?),
            9 => TbFile::Proof(DoubleSpendProof::decode(body)?),
            10 => TbFile::SyncRequest(Box::new(SyncRequest::decode(body)?)),
            11 => TbFile::SyncResponse(Box::new(SyncResponse::decode(body)?)),
            12 => {
                let mut r = Reader::new(body);
                let p = Payment::decode_from(&mut r)?;
                let c = Confirmation::decode_from(&mut r)?;
                r.finish()?;
                TbFile::ConfirmedPayment(Box::new(p), c)
            }
            13 => TbFile::TillAuthorization(Box::new(TillAuthorization::decode(body)?)),
            14 => TbFile::Refund(Box::new(Refund::decode(body)?)),
            15 => TbFile::TillJournal(Box::new(TillJournal::decode(body)?)),
            16 => TbFile::CodOrder(Box::new(CodOrder::decode(body)?)),
            17 => TbFile::DeliveryReceipt(Box::new(DeliveryReceipt::decode(body)?)),
            18 => TbFile::Handoff(Box::new(HandoffManifest::decode(body)?)),
            got => {
                return Err(FileError::Decode(DecodeError::InvalidTag {
                    what: "file kind",
                    got,
                }));
            }
        })
    }
}

fn checksum(bytes: &[u8]) -> [u8; 8] {
    let h = blake3::hash(&signing_bytes(label::FILE, bytes));
    let mut out = [0u8; 8];
    out.copy_from_slice(&h.as_bytes()[..8]);
    out
}

/// Why a file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// No TONGBAO magic.
    #[error("not a Tongbao file")]
    NotTongbao,
    /// The checksum does not match: the file was corrupted or cut short.
    #[error("file is corrupted (checksum mismatch)")]
    Checksum,
    /// The body did not decode.
    #[error("malformed: {0}")]
    Decode(DecodeError),
    /// Larger than any Tongbao file.
    #[error("file is too large ({0} bytes; at most {MAX_FILE})")]
    TooLarge(u64),
    /// A problem with the contents of a named file.
    #[error("{path}: {inner}")]
    InFile {
        /// The path.
        path: String,
        /// What is wrong with it.
        inner: Box<FileError>,
    },
    /// Operating system error.
    #[error("{path}: {cause}")]
    Io {
        /// The path.
        path: String,
        /// The cause.
        cause: std::io::Error,
    },
}

impl From<DecodeError> for FileError {
    fn from(e: DecodeError) -> Self {
        FileError::Decode(e)
    }
}

/// Reads a file of at most [`MAX_FILE`] bytes.
pub fn read_limited(path: &Path) -> Result<Vec<u8>, FileError> {
    use std::io::Read;
    let io = |cause| FileError::Io {
        path: path.display().to_string(),
        cause,
    };
    let f = std::fs::File::open(path).map_err(io)?;
    let mut buf = Vec::new();
    f.take(MAX_FILE + 1).read_to_end(&mut buf).map_err(io)?;
    if buf.len() as u64 > MAX_FILE {
        return Err(FileError::TooLarge(buf.len() as u64));
    }
    Ok(buf)
}

/// Reads and decodes a Tongbao file; errors name the path.
pub fn read_file(path: &Path) -> Result<TbFile, FileError> {
    let in_file = |e: FileError| match e {
        FileError::Io { .. } => e,
        other => FileError::InFile {
            path: path.display().to_string(),
            inner: Box::new(other),
        },
    };
    let bytes = read_limited(path).map_err(in_file)?;
    TbFile::from_file_bytes(&bytes).map_err(|e| FileError::InFile {
        path: path.display().to_string(),
        inner: Box::new(e),
    })
}

/// Checks, before any state changes, that `path` can be written as a new output file: it does not
/// exist yet, and its directory exists and accepts a new file. Commands call this first so that a
/// bad `--out` is refused with nothing changed.
pub fn check_new_output(path: &Path) -> Result<(), FileError> {
    let io = |cause| FileError::Io {
        path: path.display().to_string(),
        cause,
    };
    if path.exists() {
        return Err(io(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "already exists (outputs are never overwritten: choose another path)",
        )));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    if !dir.is_dir() {
        return Err(io(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "its directory does not exist",
        )));
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let probe = dir.join(format!(".{name}.probe-{}", std::process::id()));
    std::fs::File::create(&probe).map_err(io)?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// Writes `bytes` atomically: a temporary file in the same directory, fsync, rename, fsync the
/// directory. Readers see the old file or the whole new one, never part of it.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    let io = |cause| FileError::Io {
        path: path.display().to_string(),
        cause,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io)
}

/// Writes a Tongbao file atomically.
pub fn write_file(path: &Path, file: &TbFile) -> Result<(), FileError> {
    write_atomic(path, &file.to_file_bytes())
}
