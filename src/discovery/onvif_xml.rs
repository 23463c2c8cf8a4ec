//! The little XML that WS-Discovery and the ONVIF calls need, pulled out of hostile
//! input: elements by local name, one attribute, the five entities, `%XX` escapes.
//! Hand-written, linear in the input and never recursing (see `onvif.rs` for why
//! not an XML crate); used by `onvif.rs` and `crate::camera::onvif_media`, and
//! fuzzed through both.

/// The inner text of each element whose local name is `local` (any prefix), in
/// document order.
pub(crate) fn elements<'a>(xml: &'a str, local: &str) -> Vec<&'a str> {
    tagged(xml, local)
        .into_iter()
        .map(|(_, inner)| inner)
        .collect()
}

/// The value of attribute `name` in a start tag's attribute text, entities decoded.
pub(crate) fn attribute(attributes: &str, name: &str) -> Option<String> {
    let mut rest = attributes;
    while let Some(i) = rest.find(name) {
        let before = rest[..i].chars().next_back();
        let after = rest[i + name.len()..].trim_start();
        rest = &rest[i + name.len()..];
        if !before.is_some_and(|c| c.is_whitespace() || c == ':') {
            continue;
        }
        let Some(value) = after.strip_prefix('=') else {
            continue;
        };
        let value = value.trim_start();
        let quote = value.chars().next().filter(|q| *q == '"' || *q == '\'')?;
        let value = &value[1..];
        return value.find(quote).map(|end| unescape(&value[..end]));
    }
    None
}

/// Each element whose local name is `local` (any prefix), in document order, as
/// (the start tag's attribute text, the inner text). Linear: a name ends at the next
/// `<` too (else 64 KiB of `<` took seconds, each name running to the end), and when
/// no closing tag follows, there is none for any later element of that name either,
/// so the scan stops.
pub(crate) fn tagged<'a>(xml: &'a str, local: &str) -> Vec<(&'a str, &'a str)> {
    let suffix = format!(":{local}");
    let mut found = Vec::new();
    let mut at = 0;
    while let Some(lt) = xml[at..].find('<') {
        let start = at + lt + 1;
        at = start;
        let rest = &xml[start..];
        let name_len = rest
            .find(|c: char| c.is_whitespace() || c == '>' || c == '/' || c == '<')
            .unwrap_or(rest.len());
        let name = &rest[..name_len];
        if name.is_empty() || !(name == local || name.ends_with(&suffix)) {
            continue;
        }
        let Some(gt) = rest.find('>') else { break };
        let content_start = start + gt + 1;
        at = content_start;
        let attributes = &rest[name_len..gt];
        if attributes.ends_with('/') {
            found.push((attributes.trim_end_matches('/'), ""));
            continue;
        }
        let close = format!("</{name}");
        let mut search = content_start;
        loop {
            let Some(i) = xml[search..].find(&close) else {
                return found;
            };
            let after = search + i + close.len();
            let tail = xml[after..].trim_start();
            if tail.starts_with('>') {
                found.push((attributes, &xml[content_start..search + i]));
                at = xml.len() - tail.len() + 1;
                break;
            }
            search = after;
        }
    }
    found
}

/// Trimmed text with the five predefined XML entities replaced (`&amp;` last, so
/// `&amp;lt;` stays `&lt;`).
pub(crate) fn unescape(text: &str) -> String {
    text.trim()
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// `%XX` escapes decoded (a bad escape is kept as it is); invalid UTF-8 becomes U+FFFD.
pub(crate) fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
            .and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
