//! Store URLs as they may be shown in a message or a hint: the password replaced by
//! [`PASSWORD`], or nothing shown where a password cannot be told apart. Shared by the
//! PostgreSQL store's errors and the command line's hints (built with or without that store).

/// What stands for a password in a store URL that is shown.
pub const PASSWORD: &str = "PASSWORD";

/// A URL with its password replaced, or `None` when a `?` or `#` before the last `@` may be in
/// an unencoded password.
pub fn url_without_password(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    if let Some(at) = rest.rfind('@')
        && rest[..at].contains(['?', '#'])
    {
        return None;
    }
    let (before_query, query) = match rest.split_once('?') {
        Some((before, query)) => (before, Some(query)),
        None => (rest, None),
    };
    // The last `@`: an unencoded `@` in the password stays hidden.
    let mut out = format!("{scheme}://");
    match before_query.rsplit_once('@') {
        Some((user_info, host)) => {
            match user_info.split_once(':') {
                Some((user, _password)) => out.push_str(&format!("{user}:{PASSWORD}")),
                None => out.push_str(user_info),
            }
            out.push('@');
            out.push_str(host);
        }
        None => out.push_str(before_query),
    }
    if let Some(query) = query {
        let parameters: Vec<String> = query
            .split('&')
            .map(|parameter| match parameter.split_once('=') {
                Some((key, _)) if percent_decode(key).eq_ignore_ascii_case("password") => {
                    format!("{key}={PASSWORD}")
                }
                _ => parameter.to_owned(),
            })
            .collect();
        out.push('?');
        out.push_str(&parameters.join("&"));
    }
    Some(out)
}

/// Percent-decoding, as tokio-postgres decodes URL parts (invalid escapes kept as written).
pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(hi), Some(lo)) =
                (bytes.get(i + 1).and_then(|&b| hex(b)), bytes.get(i + 2).and_then(|&b| hex(b)))
        {
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
