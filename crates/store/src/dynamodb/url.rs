//! The store URL: `dynamodb://TABLE?region=REGION&endpoint=URL`.

use crate::StoreError;
use crate::redact::percent_decode;

/// What a `dynamodb://` URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamoUrl {
    /// The table (3 to 255 of `a-z A-Z 0-9 _ - .`).
    pub table: String,
    /// The AWS region (`region=`); without it, the standard chain's (`AWS_REGION`, profile).
    pub region: Option<String>,
    /// Another endpoint than the region's (`endpoint=`, an `http://` or `https://` URL,
    /// %-encoded or not): a local DynamoDB-compatible server, a VPC endpoint.
    pub endpoint: Option<String>,
}

impl DynamoUrl {
    /// Whether `url` is a DynamoDB store URL.
    pub fn is_dynamodb(url: &str) -> bool {
        url.starts_with("dynamodb://")
    }

    /// Reads `url`; what is wrong with it is said by name.
    pub fn parse(url: &str) -> Result<DynamoUrl, StoreError> {
        let invalid = |what: String| StoreError::Invalid(format!("store URL {url:?}: {what}"));
        let rest = url
            .strip_prefix("dynamodb://")
            .ok_or_else(|| invalid("a DynamoDB store URL starts with dynamodb://".into()))?;
        let (table, query) = rest.split_once('?').unwrap_or((rest, ""));
        let table = table.strip_suffix('/').unwrap_or(table);
        let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
        if !(3..=255).contains(&table.len()) || !table.chars().all(valid) {
            return Err(invalid(format!(
                "the table name {table:?} is not 3 to 255 of a-z, A-Z, 0-9, '_', '-', '.'"
            )));
        }
        let mut parsed = DynamoUrl { table: table.to_owned(), region: None, endpoint: None };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_decode(value);
            if value.is_empty() {
                return Err(invalid(format!("{key} is empty")));
            }
            match key {
                "region" => parsed.region = Some(value),
                "endpoint" => {
                    if !(value.starts_with("http://") || value.starts_with("https://")) {
                        return Err(invalid(format!(
                            "endpoint {value:?} is not an http:// or https:// URL"
                        )));
                    }
                    parsed.endpoint = Some(value);
                }
                other => {
                    return Err(invalid(format!(
                        "unknown setting {other:?} (known: region, endpoint)"
                    )));
                }
            }
        }
        Ok(parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_read_and_bad_ones_named() {
        let url = DynamoUrl::parse(
            "dynamodb://chat-sessions?region=eu-west-1&endpoint=http%3A%2F%2F127.0.0.1:8000",
        )
        .unwrap();
        assert_eq!(url.table, "chat-sessions");
        assert_eq!(url.region.as_deref(), Some("eu-west-1"));
        assert_eq!(url.endpoint.as_deref(), Some("http://127.0.0.1:8000"));
        let plain = DynamoUrl::parse("dynamodb://t.b_1").unwrap();
        assert_eq!((plain.region, plain.endpoint), (None, None));
        for (bad, says) in [
            ("postgres://x", "dynamodb://"),
            ("dynamodb://ab", "table name"),
            ("dynamodb://a b c", "table name"),
            ("dynamodb://tbl?regoin=x", "unknown setting \"regoin\""),
            ("dynamodb://tbl?region=", "region is empty"),
            ("dynamodb://tbl?endpoint=ftp://x", "not an http"),
        ] {
            let error = DynamoUrl::parse(bad).unwrap_err().to_string();
            assert!(error.contains(says), "{bad}: {error}");
        }
    }
}
