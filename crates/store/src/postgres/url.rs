//! The connection string: the settings this store reads itself (`sslmode`, `sslrootcert`,
//! `aws_iam`, `aws_region`), taken out before tokio-postgres parses the rest (its parser knows
//! `sslmode` only as disable / prefer / require and refuses names it does not know), and the
//! string as it may be shown in an error, its password replaced.
//!
//! Both forms libpq accepts are read: `postgres://user:pw@host:port/db?key=value&...` and
//! `host=... user=... key='quoted value'`. Where the URL form is split is where tokio-postgres
//! splits it (the user part ends at the first `@`), so both read the same settings.

use crate::redact::{PASSWORD, percent_decode as decode, url_without_password as shown_url};

/// The settings this store reads from the connection string, as written (decoded).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct OwnSettings {
    /// `sslmode`.
    pub ssl_mode: Option<String>,
    /// `sslrootcert`.
    pub ssl_root_cert: Option<String>,
    /// `aws_iam`.
    pub aws_iam: Option<String>,
    /// `aws_region`.
    pub aws_region: Option<String>,
}

impl OwnSettings {
    /// Takes `value` when `key` is one of ours; says whether it was.
    fn take(&mut self, key: &str, value: String) -> bool {
        let slot = match key {
            "sslmode" => &mut self.ssl_mode,
            "sslrootcert" => &mut self.ssl_root_cert,
            "aws_iam" => &mut self.aws_iam,
            "aws_region" => &mut self.aws_region,
            _ => return false,
        };
        *slot = Some(value);
        true
    }
}

/// `url` without this store's own settings (the text tokio-postgres parses), and those settings.
/// A string that does not split as expected is returned whole, for tokio-postgres's parser to
/// say what is wrong with it.
pub(crate) fn take_own_settings(url: &str) -> (String, OwnSettings) {
    let mut own = OwnSettings::default();
    if let Some((prefix, query)) = url_query(url) {
        let kept: Vec<&str> = query
            .split('&')
            .filter(|parameter| match parameter.split_once('=') {
                Some((key, value)) => !own.take(&decode(key), decode(value)),
                None => true,
            })
            .collect();
        let rest = if kept.is_empty() {
            prefix.to_owned()
        } else {
            format!("{prefix}?{}", kept.join("&"))
        };
        return (rest, own);
    }
    if is_url(url) {
        return (url.to_owned(), own);
    }
    let Some(pairs) = key_values(url) else {
        return (url.to_owned(), own);
    };
    let kept: Vec<&str> = pairs
        .into_iter()
        .filter(|pair| !own.take(&pair.key, pair.value.clone()))
        .map(|pair| &url[pair.span.0..pair.span.1])
        .collect();
    (kept.join(" "), own)
}

/// `url` as it may be shown: its password (in the user part, or a `password` setting) replaced
/// by [`PASSWORD`]. What cannot be told apart from a password is not shown.
pub(crate) fn shown(url: &str) -> String {
    if is_url(url) {
        return shown_url(url)
            .unwrap_or_else(|| "the PostgreSQL URL (not shown: it may hold a password)".into());
    }
    match key_values(url) {
        Some(pairs) => pairs
            .iter()
            .map(|pair| {
                if pair.key == "password" {
                    format!("password={PASSWORD}")
                } else {
                    url[pair.span.0..pair.span.1].to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join(" "),
        None if url.to_ascii_lowercase().contains("password") => {
            "the PostgreSQL connection string (not shown: it may hold a password)".into()
        }
        None => url.to_owned(),
    }
}

fn is_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// A URL split before its query (`?...`), as tokio-postgres splits it; `None` without a query.
fn url_query(url: &str) -> Option<(&str, &str)> {
    let scheme = ["postgres://", "postgresql://"].into_iter().find(|s| url.starts_with(s))?;
    let after_scheme = scheme.len();
    let after_user = url[after_scheme..].find('@').map_or(after_scheme, |at| after_scheme + at + 1);
    let query = after_user + url[after_user..].find('?')?;
    Some((&url[..query], &url[query + 1..]))
}

/// One `key=value` of a key/value connection string, with where it stands in the string.
struct Pair {
    key: String,
    value: String,
    span: (usize, usize),
}

/// The pairs of a libpq key/value connection string (`host=db password='a b' ...`), or `None`
/// when it does not read as one.
fn key_values(s: &str) -> Option<Vec<Pair>> {
    let bytes = s.as_bytes();
    let mut pairs = Vec::new();
    let mut i = 0;
    let skip_ws = |mut i: usize| {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    };
    loop {
        i = skip_ws(i);
        if i == bytes.len() {
            return Some(pairs);
        }
        let start = i;
        while i < bytes.len() && bytes[i] != b'=' && !bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let key = s[start..i].to_owned();
        i = skip_ws(i);
        if key.is_empty() || bytes.get(i) != Some(&b'=') {
            return None;
        }
        i = skip_ws(i + 1);
        let mut value = Vec::new();
        if bytes.get(i) == Some(&b'\'') {
            i += 1;
            loop {
                match bytes.get(i) {
                    None => return None,
                    Some(b'\'') => {
                        i += 1;
                        break;
                    }
                    Some(b'\\') if i + 1 < bytes.len() => {
                        value.push(bytes[i + 1]);
                        i += 2;
                    }
                    Some(&b) => {
                        value.push(b);
                        i += 1;
                    }
                }
            }
        } else {
            while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
                if bytes[i] == b'\\' && i + 1 < bytes.len() {
                    i += 1;
                }
                value.push(bytes[i]);
                i += 1;
            }
        }
        let value = String::from_utf8(value).ok()?;
        pairs.push(Pair { key, value, span: (start, i) });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_settings_are_taken_out_of_a_url() {
        let (rest, own) = take_own_settings(
            "postgres://app:s3cr3t@db.example:5432/chat?sslmode=verify-full&connect_timeout=5\
             &sslrootcert=%2Fetc%2Frds%20ca.pem&aws_iam=true",
        );
        assert_eq!(rest, "postgres://app:s3cr3t@db.example:5432/chat?connect_timeout=5");
        assert_eq!(own.ssl_mode.as_deref(), Some("verify-full"));
        assert_eq!(own.ssl_root_cert.as_deref(), Some("/etc/rds ca.pem"));
        assert_eq!(own.aws_iam.as_deref(), Some("true"));
        assert_eq!(own.aws_region, None);

        let (rest, own) = take_own_settings("postgresql://db/chat?sslmode=require");
        assert_eq!(rest, "postgresql://db/chat");
        assert_eq!(own.ssl_mode.as_deref(), Some("require"));

        // A `?` in the (unencoded) password is not the query: tokio-postgres reads it the same.
        let (rest, own) = take_own_settings("postgres://app:a?b@db/chat");
        assert_eq!((rest.as_str(), own), ("postgres://app:a?b@db/chat", OwnSettings::default()));
    }

    #[test]
    fn own_settings_are_taken_out_of_a_key_value_string() {
        let (rest, own) = take_own_settings(
            "host=db user=app password='it\\'s' sslmode = verify-ca sslrootcert='/a b/ca.pem' \
             dbname=chat",
        );
        assert_eq!(rest, "host=db user=app password='it\\'s' dbname=chat");
        assert_eq!(own.ssl_mode.as_deref(), Some("verify-ca"));
        assert_eq!(own.ssl_root_cert.as_deref(), Some("/a b/ca.pem"));
        // Not a key/value string: left whole for tokio-postgres to refuse.
        assert_eq!(take_own_settings("host").0, "host");
    }

    #[test]
    fn a_connection_string_is_shown_without_its_password() {
        assert_eq!(
            shown("postgres://app:s3cr3t@db:5432/chat?sslmode=require"),
            "postgres://app:PASSWORD@db:5432/chat?sslmode=require"
        );
        assert_eq!(shown("postgres://app:p@ss@db/chat"), "postgres://app:PASSWORD@db/chat");
        assert_eq!(
            shown("postgres://app@db/chat?password=s3cr3t&connect_timeout=5"),
            "postgres://app@db/chat?password=PASSWORD&connect_timeout=5"
        );
        assert!(!shown("postgres://app:a?b@db/chat").contains("a?b"));
        assert_eq!(
            shown("host=db user=app password='s3 cr3t' sslmode=require"),
            "host=db user=app password=PASSWORD sslmode=require"
        );
        assert!(!shown("host=db password='unterminated").contains("unterminated"));
    }
}
