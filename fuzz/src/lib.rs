//! Shared bodies of the fuzz targets: every decoder must refuse or accept without panicking, and
//! whatever it accepts must re-encode to exactly the input (one canonical encoding). See
//! docs/testing.md#fuzzing.

/// A target for a `tongbao::codec::Decode` type: decode, and on success re-encode to the input.
#[macro_export]
macro_rules! decode_target {
    ($ty:ty) => {
        libfuzzer_sys::fuzz_target!(|data: &[u8]| {
            use tongbao::codec::{Decode, Encode};
            if let Ok(msg) = <$ty>::decode(data) {
                assert_eq!(
                    msg.to_bytes(),
                    data,
                    "accepted bytes re-encode to themselves"
                );
            }
        });
    };
}
