//! How a session's requests get their prompt-cache points: a setting recorded with the
//! session, which the assembler's planner (`verbatim_protocol::assemble::caching`) carries out.

use serde::{Deserialize, Serialize};

use crate::CachePoint;

/// How the assembler places cache points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "mode")]
pub enum Caching {
    /// No cache point is sent: those in the history and configuration are left out.
    Off,
    /// The cache points of the history and configuration are sent as they are, and no other.
    #[default]
    Manual,
    /// The planner's points are sent instead of any in the history or configuration.
    Auto(AutoCaching),
}

/// The settings of [`Caching::Auto`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AutoCaching {
    /// The TTL of the points on the tools and the system prompt.
    #[serde(default)]
    pub prefix_ttl: CacheTtl,
}

/// A cache point's time to live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum CacheTtl {
    /// Five minutes (the default; written at 1.25 times the input price).
    #[default]
    #[serde(rename = "5m")]
    FiveMinutes,
    /// One hour (written at twice the input price).
    #[serde(rename = "1h")]
    OneHour,
}

impl CacheTtl {
    /// A cache point with this TTL (five minutes is the default, sent without a `ttl`).
    pub fn point(self) -> CachePoint {
        match self {
            CacheTtl::FiveMinutes => CachePoint::default(),
            CacheTtl::OneHour => CachePoint { ttl: Some("1h".to_owned()) },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_modes_read_back_as_written() {
        let auto = Caching::Auto(AutoCaching { prefix_ttl: CacheTtl::OneHour });
        let text = serde_json::to_string(&auto).unwrap();
        assert_eq!(text, r#"{"mode":"auto","prefix_ttl":"1h"}"#);
        assert_eq!(serde_json::from_str::<Caching>(&text).unwrap(), auto);
        let off: Caching = serde_json::from_str(r#"{"mode":"off"}"#).unwrap();
        assert_eq!(off, Caching::Off);
        let default_ttl: Caching = serde_json::from_str(r#"{"mode":"auto"}"#).unwrap();
        assert_eq!(default_ttl, Caching::Auto(AutoCaching::default()));
    }
}
