//! Fuzz `TbFile::from_file_bytes`: every file kind behind the container.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(f) = tongbao::protocol::file::TbFile::from_file_bytes(data) {
        assert_eq!(
            f.to_file_bytes(),
            data,
            "accepted files re-encode to themselves"
        );
    }
});
