//! Fuzz `issuer::pilot::parse` (scenario TOML files).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = issuer::pilot::parse(text, "fuzz.toml");
    }
});
