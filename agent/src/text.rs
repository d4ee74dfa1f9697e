//! Helpers for text the agent keeps or sends within a byte bound.

/// `text` cut to at most `max` bytes at a character boundary, marked with `…` when cut.
pub fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    const MARK: &str = "…";
    let mut end = max.saturating_sub(MARK.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{MARK}", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::cut;

    #[test]
    fn cuts_at_a_character_boundary_within_the_bound() {
        assert_eq!(cut("short", 10), "short");
        let long = "é".repeat(10); // 20 bytes
        let c = cut(&long, 9);
        assert!(c.len() <= 9 && c.ends_with('…'), "{c}");
        assert_eq!(cut("abcdef", 4), "a…");
    }
}
