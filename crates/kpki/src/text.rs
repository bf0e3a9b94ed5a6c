//! Untrusted text in messages: escaped and bounded.
//!
//! Values kpki echoes come from files and flags an attacker may control (a certificate's subject,
//! a kubeconfig's names, a path). Printed raw, an ESC sequence could rewrite the operator's
//! terminal, a newline could forge a second "error:" line, and a gigabyte line would make a
//! gigabyte message. So every value is escaped (control and bidi-formatting characters become
//! `\n`, `\u{1b}`, ...), cut to a bounded length, and kubeconfig values that look like key
//! material are described instead of quoted.

/// Characters of a quoted value before it is cut.
pub const MAX_VALUE: usize = 80;

/// Bytes of one output line (an error, a warning, a table row) before it is cut.
pub const MAX_LINE: usize = 4096;

/// True for characters that must not reach a terminal raw: C0/C1 controls, DEL, and the Unicode
/// formatting characters that reorder or hide text (bidi overrides, zero-width characters).
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200b}'..='\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{2069}'
            | '\u{feff}')
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
    }
}

/// `s` with every unsafe character escaped (`\n`, `\t`, `\u{1b}`, ...): one line, nothing a
/// terminal interprets.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if is_unsafe(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    out
}

/// `s` escaped and cut to at most `max` bytes (on a character boundary), with a note of how much
/// was left out.
pub fn line(s: &str, max: usize) -> String {
    let mut out = String::new();
    for (i, c) in s.char_indices() {
        if out.len() >= max {
            out.push_str(&format!(" ... ({} more bytes)", s.len() - i));
            return out;
        }
        if is_unsafe(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    out
}

/// A value for a message: in double quotes, escaped like Rust's `{:?}`, and cut after
/// [`MAX_VALUE`] characters.
pub fn quote(s: &str) -> String {
    let n = s.chars().count();
    if n <= MAX_VALUE {
        return escape(&format!("{s:?}"));
    }
    let head: String = s.chars().take(MAX_VALUE).collect();
    let q = format!("{head:?}");
    format!(
        "{}... ({} bytes in all)",
        escape(&q[..q.len() - 1]),
        s.len()
    )
}

/// True when a value looks like key material or an encoded blob: a PEM block, or a long run of
/// base64 characters. Such values are never quoted, even cut.
pub fn looks_secret(s: &str) -> bool {
    if s.contains("-----BEGIN") || s.contains("PRIVATE KEY") {
        return true;
    }
    let mut run = 0;
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'-' | b'_') {
            run += 1;
            if run >= 48 {
                return true;
            }
        } else {
            run = 0;
        }
    }
    false
}

/// A name read from a file (a kubeconfig's context, cluster or user name): quoted when short and
/// harmless, otherwise described without its contents, so key material pasted into a name
/// field never reaches a log.
pub fn label(s: &str) -> String {
    if looks_secret(s) || s.chars().count() > MAX_VALUE {
        format!("(a {}-byte value, not shown)", s.len())
    } else {
        quote(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_cuts() {
        assert_eq!(escape("a\nb\u{1b}[31mc"), "a\\nb\\u{1b}[31mc");
        assert_eq!(escape("x\u{202e}y"), "x\\u{202e}y");
        assert_eq!(quote("ca"), "\"ca\"");
        assert_eq!(quote("a\u{1b}b"), "\"a\\u{1b}b\"");
        let long = "x".repeat(1000);
        let q = quote(&long);
        assert!(q.len() < 150 && q.ends_with("(1000 bytes in all)"), "{q}");
        let l = line(&"é".repeat(5000), 100);
        assert!(l.len() < 140 && l.contains("more bytes"), "{l}");
        assert!(!line("a\nb", 100).contains('\n'));
    }

    #[test]
    fn secrets_are_described_not_quoted() {
        let key = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEI...";
        assert!(label(key).starts_with("(a "), "{}", label(key));
        let b64 = "LS0tLS1CRUdJTiBFQyBQUklWQVRFIEtFWS0tLS0tCk1IY0NBUUVFSUJ";
        assert!(!label(b64).contains("LS0t"));
        assert_eq!(
            label("kubernetes-admin@kubernetes"),
            "\"kubernetes-admin@kubernetes\""
        );
    }
}
