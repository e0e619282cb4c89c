//! Scenario files as bad input: every truncation and every single-bit flip of a small valid
//! scenario is parsed without a panic, and is either refused with a one-line error naming the file
//! or still a checked scenario (a flip inside a comment, or a digit that stays in range). See
//! docs/testing.md#bad-input.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

fn smallest_scenario() -> (String, String) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut files: Vec<(u64, PathBuf)> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| {
            (
                std::fs::metadata(&p).map(|m| m.len()).unwrap_or(u64::MAX),
                p,
            )
        })
        .collect();
    files.sort();
    let (_, path) = files.first().expect("a scenario in scenarios/").clone();
    let text = std::fs::read_to_string(&path).unwrap();
    (path.display().to_string(), text)
}

#[test]
fn scenario_truncations_and_bit_flips_never_panic() {
    let (path, text) = smallest_scenario();
    issuer::pilot::parse(&text, &path).expect("the sample scenario is valid");
    let bytes = text.as_bytes();
    let (mut refused, mut accepted) = (0u32, 0u32);
    let mut check = |b: &[u8], what: &str| {
        // A file that is not UTF-8 is refused when it is read, before parsing.
        let Ok(t) = std::str::from_utf8(b) else {
            refused += 1;
            return;
        };
        match issuer::pilot::parse(t, "bad.toml") {
            Ok(_) => accepted += 1,
            Err(e) => {
                let msg = e.to_string();
                assert!(
                    msg.starts_with("bad.toml") && !msg.contains('\n'),
                    "{what}: error is not one line naming the file: {msg:?}"
                );
                refused += 1;
            }
        }
    };
    for len in 0..bytes.len() {
        check(&bytes[..len], &format!("truncated to {len} bytes"));
    }
    let mut b = bytes.to_vec();
    for i in 0..b.len() {
        for bit in 0..8 {
            b[i] ^= 1 << bit;
            check(&b, &format!("bit {bit} of byte {i} flipped"));
            b[i] ^= 1 << bit;
        }
    }
    // Most damage is caught; what is accepted is a valid scenario (comments, values in range).
    assert!(refused > accepted, "refused {refused}, accepted {accepted}");
}
