//! The `Content-Type` of a file: from its name's extension when it has a known one, else
//! sniffed from its first bytes (magic numbers, then HTML/SVG/plain-text checks), else
//! `application/octet-stream`.

/// Bytes of a file's start the sniffer looks at (as browsers and Go's `DetectContentType`).
pub(crate) const SNIFF_LEN: usize = 512;

/// The content type for a file called `name` (if known) starting with `head`.
pub fn content_type(name: Option<&str>, head: &[u8]) -> String {
    if let Some(ext) = name.and_then(|n| n.rsplit_once('.')).map(|(_, e)| e) {
        if let Some(m) = mime_guess::from_ext(ext).first_raw() {
            return with_charset(m);
        }
    }
    sniff(head)
}

/// The content type of bytes with no usable name.
pub(crate) fn sniff(head: &[u8]) -> String {
    if let Some(t) = infer::get(head) {
        return with_charset(t.mime_type());
    }
    let text =
        head.iter().skip_while(|b| b.is_ascii_whitespace()).take(32).map(u8::to_ascii_lowercase).collect::<Vec<u8>>();
    if text.starts_with(b"<!doctype html") || text.starts_with(b"<html") || text.starts_with(b"<head") {
        return "text/html; charset=utf-8".into();
    }
    if text.starts_with(b"<svg") || (text.starts_with(b"<?xml") && contains(head, b"<svg")) {
        return "image/svg+xml".into();
    }
    if looks_like_text(head) {
        return "text/plain; charset=utf-8".into();
    }
    "application/octet-stream".into()
}

fn with_charset(mime: &str) -> String {
    let texty = mime.starts_with("text/") || mime == "application/javascript" || mime == "application/json";
    if texty && !mime.contains("charset") {
        format!("{mime}; charset=utf-8")
    } else {
        mime.to_string()
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// UTF-8 (allowing a character cut at the end) without control bytes other than whitespace.
fn looks_like_text(head: &[u8]) -> bool {
    let valid = match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none() && head.len() - e.valid_up_to() < 4,
    };
    valid && !head.iter().any(|&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_then_sniffing() {
        assert_eq!(content_type(Some("index.html"), b""), "text/html; charset=utf-8");
        assert_eq!(content_type(Some("style.css"), b""), "text/css; charset=utf-8");
        assert_eq!(content_type(Some("a.PNG"), b""), "image/png");
        assert_eq!(content_type(Some("song.mp3"), b""), "audio/mpeg");
        assert_eq!(content_type(Some("noext"), b"\x89PNG\r\n\x1a\n0000"), "image/png");
        assert_eq!(content_type(None, b"  <!DOCTYPE html><p>hi"), "text/html; charset=utf-8");
        assert_eq!(content_type(None, b"<svg xmlns='http://www.w3.org/2000/svg'/>"), "image/svg+xml");
        assert_eq!(content_type(None, "h\u{e9}llo\n".as_bytes()), "text/plain; charset=utf-8");
        assert_eq!(content_type(None, &[0, 1, 2, 3, 255]), "application/octet-stream");
        // A multi-byte character cut by the sniff window is still text.
        assert_eq!(sniff(&"ab\u{e9}".as_bytes()[..3]), "text/plain; charset=utf-8");
    }
}
