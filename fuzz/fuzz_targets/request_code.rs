//! Fuzz `PaymentRequest::from_code` (the `tbreq1…` text form).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(r) = tongbao::protocol::request::PaymentRequest::from_code(text) {
            assert!(text.trim().eq_ignore_ascii_case(&r.to_code()));
        }
    }
});
