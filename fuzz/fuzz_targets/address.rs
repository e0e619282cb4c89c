//! Fuzz `PublicKey::from_address` (the `tbw1…` text form).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(k) = tongbao::PublicKey::from_address(text) {
            assert!(text.trim().eq_ignore_ascii_case(&k.address()));
        }
    }
});
