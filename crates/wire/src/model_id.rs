//! Model identifiers: the URL path segment and the name a model is recognised by.

/// Percent-encodes a model id, inference-profile id or ARN as one URL path segment, the way
/// botocore does (`safe` characters `A-Z a-z 0-9 - . _ ~` only): `/` becomes `%2F` and `:`
/// becomes `%3A`. A literal `/` would split the path and Bedrock would answer HTTP 200 with
/// an `UnknownOperationException` body.
///
/// ```
/// use verbatim_wire::model_id::path_segment;
/// assert_eq!(
///     path_segment("arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-7-sonnet-20250219-v1:0"),
///     "arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.anthropic.claude-3-7-sonnet-20250219-v1%3A0",
/// );
/// ```
pub fn path_segment(id: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(id.len() + 8);
    for &byte in id.as_bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(byte >> 4)] as char);
            out.push(HEX[usize::from(byte & 0xf)] as char);
        }
    }
    out
}

/// The model id a path segment names: [`path_segment`] undone, any `%XX` decoded. `None` when
/// an escape is not two hex digits or the bytes are not UTF-8.
pub fn from_path_segment(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = segment.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Geographic prefixes of cross-region inference profiles (`us.anthropic.…`).
const PROFILE_PREFIXES: &[&str] =
    &["us.", "eu.", "apac.", "jp.", "au.", "ca.", "global.", "us-gov."];

/// The base model a model id names, lower-cased: the resource of a foundation-model or
/// inference-profile ARN, without the geographic profile prefix. `us.anthropic.claude-x` and
/// `arn:aws:bedrock:eu-west-1::foundation-model/anthropic.claude-x` both give
/// `anthropic.claude-x`. Ids this cannot see through (application inference profiles,
/// provisioned models) come back lower-cased but otherwise unchanged.
pub fn base_model(id: &str) -> String {
    let mut id = id.trim().to_ascii_lowercase();
    if id.starts_with("arn:") {
        for kind in ["foundation-model/", "inference-profile/"] {
            if let Some(at) = id.find(kind)
                && !id[..at].ends_with("application-")
            {
                id = id[at + kind.len()..].to_owned();
                break;
            }
        }
    }
    for prefix in PROFILE_PREFIXES {
        if let Some(rest) = id.strip_prefix(prefix) {
            return rest.to_owned();
        }
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segment_encodes_separators_and_keeps_unreserved_characters() {
        assert_eq!(
            path_segment("us.anthropic.claude-sonnet-4-20250514-v1:0"),
            "us.anthropic.claude-sonnet-4-20250514-v1%3A0"
        );
        assert_eq!(path_segment("a/b c~d_e"), "a%2Fb%20c~d_e");
        assert_eq!(path_segment("é"), "%C3%A9");
        for id in ["us.anthropic.claude-sonnet-4-20250514-v1:0", "a/b c~d_e", "é", ""] {
            assert_eq!(from_path_segment(&path_segment(id)).as_deref(), Some(id));
        }
        assert_eq!(from_path_segment("v1:0").as_deref(), Some("v1:0"));
        assert_eq!(from_path_segment("%zz"), None);
        assert_eq!(from_path_segment("%C3"), None);
    }

    #[test]
    fn base_model_sees_through_profiles_and_arns() {
        let base = "anthropic.claude-sonnet-4-20250514-v1:0";
        assert_eq!(base_model("us.anthropic.claude-sonnet-4-20250514-v1:0"), base);
        assert_eq!(base_model("global.anthropic.claude-sonnet-4-20250514-v1:0"), base);
        assert_eq!(
            base_model(
                "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-sonnet-4-20250514-v1:0"
            ),
            base
        );
        assert_eq!(
            base_model(
                "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-20250514-v1:0"
            ),
            base
        );
        let app = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc123";
        assert_eq!(base_model(app), app);
    }
}
