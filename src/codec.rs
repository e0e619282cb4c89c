//! The one canonical binary codec. See docs/protocol.md#encoding.
//!
//! Big-endian integers, fixed field order, length-prefixed variable fields, a version byte at the
//! start of every message. Decoding is strict: truncation, trailing bytes, unknown versions, unknown
//! tags, out-of-range counts and non-canonical forms are all refused. Signed bytes are built by
//! [`signing_bytes`], which puts a domain label in front of the body.

/// Why bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input ended inside a field.
    #[error("truncated: input ends inside {0}")]
    Truncated(&'static str),
    /// Bytes are left after a complete message.
    #[error("{0} trailing byte(s) after the message")]
    TrailingBytes(usize),
    /// The version byte is not one this build understands.
    #[error("unknown {what} version {got} (this build reads version {expected})")]
    UnknownVersion {
        /// Which message.
        what: &'static str,
        /// The version byte found.
        got: u8,
        /// The version this build reads.
        expected: u8,
    },
    /// An enum tag out of range.
    #[error("invalid {what} tag {got}")]
    InvalidTag {
        /// Which field.
        what: &'static str,
        /// The tag byte found.
        got: u8,
    },
    /// A count or length outside its allowed range.
    #[error("{what} count {got} is outside {min}..={max}")]
    BadCount {
        /// Which field.
        what: &'static str,
        /// The count found.
        got: u64,
        /// Smallest allowed.
        min: u64,
        /// Largest allowed.
        max: u64,
    },
    /// The bytes are well-formed but not the one canonical encoding.
    #[error("non-canonical encoding: {0}")]
    NonCanonical(&'static str),
    /// Text that is not UTF-8.
    #[error("{0} is not valid UTF-8")]
    InvalidUtf8(&'static str),
    /// 32 bytes that are not a valid ed25519 public key.
    #[error("{0} is not a valid ed25519 public key")]
    InvalidKey(&'static str),
    /// A value outside its allowed range (for example a zero amount).
    #[error("invalid {0}")]
    InvalidValue(&'static str),
}

/// Encode into the canonical bytes.
pub trait Encode {
    /// Appends the canonical encoding of `self` to `out`.
    fn encode(&self, out: &mut Vec<u8>);

    /// The canonical encoding as a new vector.
    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

/// Decode from canonical bytes, strictly.
pub trait Decode: Sized {
    /// Reads one value from `r`, leaving the reader after it.
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError>;

    /// Decodes exactly one value from `bytes`; trailing bytes are an error.
    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let value = Self::decode_from(&mut r)?;
        r.finish()?;
        Ok(value)
    }
}

/// Builds the bytes a signature covers: a length-prefixed domain label, then the body.
///
/// The label length prefix makes the split between label and body unambiguous even where one label
/// is a prefix of another.
pub fn signing_bytes(label: &[u8], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + label.len() + body.len());
    debug_assert!(label.len() < 256);
    out.push(label.len() as u8);
    out.extend_from_slice(label);
    out.extend_from_slice(body);
    out
}

/// Appending writers for the primitive fields.
pub trait Put {
    /// One byte.
    fn put_u8(&mut self, v: u8);
    /// Big-endian u16.
    fn put_u16(&mut self, v: u16);
    /// Big-endian u32.
    fn put_u32(&mut self, v: u32);
    /// Big-endian u64.
    fn put_u64(&mut self, v: u64);
    /// Raw bytes, no length.
    fn put_raw(&mut self, v: &[u8]);
    /// Bytes with a u8 length prefix. The caller guarantees `v.len() <= 255`.
    fn put_var8(&mut self, v: &[u8]);
}

impl Put for Vec<u8> {
    fn put_u8(&mut self, v: u8) {
        self.push(v);
    }
    fn put_u16(&mut self, v: u16) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put_u32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put_u64(&mut self, v: u64) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put_raw(&mut self, v: &[u8]) {
        self.extend_from_slice(v);
    }
    fn put_var8(&mut self, v: &[u8]) {
        debug_assert!(v.len() <= 255);
        self.push(v.len().min(255) as u8);
        self.extend_from_slice(&v[..v.len().min(255)]);
    }
}

/// A strict reader over a byte slice.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The position from the start.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The bytes between `start` and the current position.
    pub fn since(&self, start: usize) -> &'a [u8] {
        &self.buf[start..self.pos]
    }

    /// Errors if any bytes remain.
    pub fn finish(&self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(DecodeError::TrailingBytes(n)),
        }
    }

    /// Takes `n` raw bytes.
    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(DecodeError::Truncated(what));
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// Takes a fixed-size array.
    pub fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    /// One byte.
    pub fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.take(1, what)?[0])
    }

    /// Big-endian u16.
    pub fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }

    /// Big-endian u32.
    pub fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    /// Big-endian u64.
    pub fn u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array(what)?))
    }

    /// Checks a version byte.
    pub fn version(&mut self, what: &'static str, expected: u8) -> Result<(), DecodeError> {
        let got = self.u8(what)?;
        if got != expected {
            return Err(DecodeError::UnknownVersion {
                what,
                got,
                expected,
            });
        }
        Ok(())
    }

    /// A count byte within `min..=max`.
    pub fn count8(&mut self, what: &'static str, min: u8, max: u8) -> Result<usize, DecodeError> {
        let got = self.u8(what)?;
        if got < min || got > max {
            return Err(DecodeError::BadCount {
                what,
                got: got.into(),
                min: min.into(),
                max: max.into(),
            });
        }
        Ok(got.into())
    }

    /// A u32 count within `min..=max`, also bounded by the bytes left (each item at least
    /// `min_item_len` bytes) so a forged count cannot make the decoder allocate.
    pub fn count32(
        &mut self,
        what: &'static str,
        min: u32,
        max: u32,
        min_item_len: usize,
    ) -> Result<usize, DecodeError> {
        let got = self.u32(what)?;
        if got < min || got > max {
            return Err(DecodeError::BadCount {
                what,
                got: got.into(),
                min: min.into(),
                max: max.into(),
            });
        }
        let n = got as usize;
        if n.saturating_mul(min_item_len.max(1)) > self.remaining() {
            return Err(DecodeError::Truncated(what));
        }
        Ok(n)
    }

    /// Bytes with a u8 length prefix, at most `max` long.
    pub fn var8(&mut self, what: &'static str, max: u8) -> Result<&'a [u8], DecodeError> {
        let n = self.count8(what, 0, max)?;
        self.take(n, what)
    }

    /// An option tag: 0 absent, 1 present.
    pub fn option_tag(&mut self, what: &'static str) -> Result<bool, DecodeError> {
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            got => Err(DecodeError::InvalidTag { what, got }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_is_strict() {
        let mut r = Reader::new(&[0, 1, 2]);
        assert_eq!(r.u16("x"), Ok(1));
        assert_eq!(r.finish(), Err(DecodeError::TrailingBytes(1)));
        assert_eq!(r.u16("y"), Err(DecodeError::Truncated("y")));
        let mut r = Reader::new(&[2]);
        assert!(matches!(
            r.version("m", 1),
            Err(DecodeError::UnknownVersion { got: 2, .. })
        ));
        let mut r = Reader::new(&[2]);
        assert!(matches!(
            r.option_tag("o"),
            Err(DecodeError::InvalidTag { got: 2, .. })
        ));
        let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xff, 0]);
        assert!(r.count32("n", 0, u32::MAX, 1).is_err());
    }

    #[test]
    fn labels_are_length_prefixed() {
        assert_eq!(signing_bytes(b"ab", b"c"), vec![2, b'a', b'b', b'c']);
        assert_ne!(signing_bytes(b"ab", b"c"), signing_bytes(b"a", b"bc"));
    }
}
