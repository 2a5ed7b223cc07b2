//! Bounded text: every string Ferry echoes back (an error message, a report reason, an SNS
//! subject) has a limit somewhere downstream, and is cut here, at a character boundary, with a
//! mark that says so.

/// The first `max` characters of `text`, followed by `…` when it was cut.
pub fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some((end, _)) => format!("{}…", &text[..end]),
    }
}

/// `text` within `max` bytes: cut at a character boundary, with a note of how many bytes were
/// left out (the note fits in the 64 bytes kept for it).
pub fn truncate_bytes(mut text: String, max: usize) -> String {
    const NOTE: usize = 64;
    if text.len() > max {
        let mut end = max.saturating_sub(NOTE);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let cut = text.len() - end;
        text.truncate(end);
        text.push_str(&format!("… ({cut} more bytes)"));
    }
    text
}

/// `text` within `max` ASCII characters: when longer, the last three kept are `...`. The
/// caller has made `text` ASCII.
pub fn truncate_ascii(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let end = max.saturating_sub(3);
    let end = (0..=end)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    format!("{}...", &text[..end])
}

/// Lowercase hexadecimal of `bytes`, at most `max_digits` digits (whole bytes).
pub fn hex(bytes: &[u8], max_digits: usize) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(max_digits.min(bytes.len() * 2));
    for byte in bytes.iter().take(max_digits / 2) {
        // Writing to a String cannot fail.
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// What a log line may say of a key, a path or any other payload: its length and a short hash
/// (`41 bytes #3f9a0c1e`), never the text. The same text always gives the same fingerprint, so
/// lines about one key can be matched (and a suspected key checked by hashing it).
pub fn fingerprint(text: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(text.as_bytes());
    format!("{} bytes #{}", text.len(), hex(&digest, 8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fingerprint_says_length_and_hash_never_the_text() {
        let key = "incoming/secret-project/a.nc";
        let print = fingerprint(key);
        assert_eq!(print, fingerprint(key));
        assert!(print.starts_with("28 bytes #") && print.len() == "28 bytes #".len() + 8);
        assert!(!print.contains("secret"));
        assert_ne!(print, fingerprint("incoming/secret-project/b.nc"));
    }

    /// Asserts `cut(text, max)` for each `(text, max, expected)`.
    fn cuts(cut: fn(&str, usize) -> String, cases: &[(&str, usize, &str)]) {
        for &(text, max, expected) in cases {
            assert_eq!(cut(text, max), expected, "{text:?} within {max}");
        }
    }

    #[test]
    fn characters_are_cut_at_a_boundary_and_marked() {
        cuts(
            truncate_chars,
            &[("héllo", 2, "hé…"), ("hé", 2, "hé"), ("", 0, "")],
        );
    }

    #[test]
    fn bytes_are_bounded_with_a_note() {
        let long = "é".repeat(3_000);
        let cut = truncate_bytes(long.clone(), 1_000);
        assert!(cut.len() <= 1_000, "{}", cut.len());
        assert!(cut.ends_with("more bytes)"), "{cut}");
        assert_eq!(truncate_bytes("short".into(), 1_000), "short");
        assert_eq!(truncate_bytes(long.clone(), long.len()), long);
    }

    #[test]
    fn ascii_keeps_its_limit() {
        cuts(
            truncate_ascii,
            &[
                ("abcdef", 6, "abcdef"),
                ("abcdefg", 6, "abc..."),
                ("abc", 2, "..."),
            ],
        );
    }

    #[test]
    fn hex_takes_whole_bytes() {
        for (bytes, max_digits) in [(&[0x0f, 0xa0, 0xff][..], 4), (&[0x0f, 0xa0], 64)] {
            assert_eq!(hex(bytes, max_digits), "0fa0", "{bytes:?} in {max_digits}");
        }
    }
}
