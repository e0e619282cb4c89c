//! QR codes in the terminal: a payment code upper-cased (every character is then in the QR
//! alphanumeric set, so the symbol is smaller) at error correction M, drawn two modules per
//! character with Unicode half blocks. Light modules are drawn as blocks, for the usual light text
//! on a dark terminal.

use qrcode::render::unicode::Dense1x2;
use qrcode::{EcLevel, QrCode};

/// The QR code of `text` (upper-cased) as terminal lines, quiet zone included.
pub fn render(text: &str) -> anyhow::Result<String> {
    let code = QrCode::with_error_correction_level(text.to_uppercase().as_bytes(), EcLevel::M)?;
    Ok(code
        .render::<Dense1x2>()
        .dark_color(Dense1x2::Light)
        .light_color(Dense1x2::Dark)
        .quiet_zone(true)
        .build())
}

/// Prints the QR code (unless `qr` is false), then the text code people can type or paste.
pub fn print_code(code: &str, qr: bool) -> anyhow::Result<()> {
    if qr {
        println!("{}", render(code)?);
    }
    println!("{code}");
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The module grid back from the rendered text: `true` for a dark module (drawn as a space).
    fn modules(rendered: &str) -> Vec<Vec<bool>> {
        let mut rows = Vec::new();
        for line in rendered.lines() {
            let (mut top, mut bottom) = (Vec::new(), Vec::new());
            for ch in line.chars() {
                // Blocks are light modules: ' ' both dark, '▀' top light, '▄' bottom light.
                let (t, b) = match ch {
                    ' ' => (true, true),
                    '\u{2580}' => (false, true),
                    '\u{2584}' => (true, false),
                    '\u{2588}' => (false, false),
                    other => panic!("unexpected character {other:?}"),
                };
                top.push(t);
                bottom.push(b);
            }
            rows.push(top);
            rows.push(bottom);
        }
        rows
    }

    #[test]
    fn a_payment_code_renders_and_decodes_back() {
        let code = "tbreq1qyq5g8q7nmt8k8x5yyrmkyt4z0pa0hkwy6a2wqqqqqqqqqqfmz8pq0ac2p";
        let text = render(code).unwrap();
        let grid = modules(&text);
        let n = grid.len();
        assert!(n > 21, "a QR symbol with its quiet zone");
        // Scale 4x into a greyscale image and decode it with an independent reader.
        let scale = 4;
        let size = grid[0].len() * scale;
        let mut img = rqrr::PreparedImage::prepare_from_greyscale(size, n * scale, |x, y| {
            let dark = grid
                .get(y / scale)
                .and_then(|r| r.get(x / scale))
                .copied()
                .unwrap_or(false);
            if dark { 0 } else { 255 }
        });
        let grids = img.detect_grids();
        assert_eq!(grids.len(), 1, "one QR code found");
        let (_, content) = grids[0].decode().unwrap();
        assert_eq!(content, code.to_uppercase());
        assert_eq!(content.to_lowercase(), code);
    }
}
