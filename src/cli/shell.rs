//! Command lines printed as hints ("continue with: verbatim sessions fork ID --at N --data
//! DIR"): their words quoted for a POSIX shell, and a store URL's password never among them.

/// `word` as one word for a POSIX shell: as it is when it holds only characters no shell
/// reads specially, otherwise in single quotes.
pub(crate) fn quote(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./:@%+=,".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        return word.to_owned();
    }
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// What stands for a password in a printed URL.
pub(crate) use verbatim_store::redact::PASSWORD;

/// A PostgreSQL store URL as it may be printed: its password (in the user part, or a
/// `password=` parameter) replaced by [`PASSWORD`]. `None` when a password may be in it but
/// cannot be told apart (a `key=value` connection string naming one): print none of it.
pub(crate) fn store_url_without_password(url: &str) -> Option<String> {
    if url.contains("://") {
        return verbatim_store::redact::url_without_password(url);
    }
    (!url.to_ascii_lowercase().contains("password")).then(|| url.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_quoted_only_when_a_shell_would_read_them_otherwise() {
        assert_eq!(quote("verbatim-data"), "verbatim-data");
        assert_eq!(quote("/tmp/a.b/c"), "/tmp/a.b/c");
        assert_eq!(quote("my data"), "'my data'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote("$HOME"), "'$HOME'");
        assert_eq!(quote(""), "''");
    }

    #[test]
    fn a_store_url_is_printed_without_its_password() {
        let printed = |url| store_url_without_password(url);
        // An unencoded `?` in the password: none of it is printed.
        assert_eq!(printed("postgres://app:s3c?r3t@db.internal/chat"), None);
        assert_eq!(
            printed("postgres://app@db.internal/chat").as_deref(),
            Some("postgres://app@db.internal/chat")
        );
        assert_eq!(
            printed("postgres://app:s3cr3t@db.internal:5432/chat").as_deref(),
            Some("postgres://app:PASSWORD@db.internal:5432/chat")
        );
        // An `@` in the password (it should be percent-encoded, but may not be).
        assert_eq!(
            printed("postgresql://app:p@ss@db/chat").as_deref(),
            Some("postgresql://app:PASSWORD@db/chat")
        );
        assert_eq!(
            printed("postgres://app@db/chat?password=s3cr3t&connect_timeout=5").as_deref(),
            Some("postgres://app@db/chat?password=PASSWORD&connect_timeout=5")
        );
        assert_eq!(printed("host=db user=app password=s3cr3t"), None);
        assert_eq!(printed("host=db user=app").as_deref(), Some("host=db user=app"));
    }
}
