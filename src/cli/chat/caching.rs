//! `chat --caching`: how the session's requests get their prompt-cache points.

use verbatim_model::{AutoCaching, CacheTtl, Caching};

/// The choices of `--caching`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum CachingArg {
    /// No cache point is sent.
    Off,
    /// Only the cache points the history and configuration hold.
    Manual,
    /// Points planned on tools, system and the conversation's moving end (five-minute TTL).
    Auto,
    /// As `auto`, with a one-hour TTL on the tools and system prompt.
    #[value(name = "auto-1h")]
    Auto1h,
}

impl From<CachingArg> for Caching {
    fn from(arg: CachingArg) -> Caching {
        match arg {
            CachingArg::Off => Caching::Off,
            CachingArg::Manual => Caching::Manual,
            CachingArg::Auto => Caching::Auto(AutoCaching::default()),
            CachingArg::Auto1h => Caching::Auto(AutoCaching { prefix_ttl: CacheTtl::OneHour }),
        }
    }
}

/// How a caching mode reads in the chat's lines and transcripts.
pub(crate) fn caching_text(caching: &Caching) -> &'static str {
    match caching {
        Caching::Off => "off",
        Caching::Manual => "manual",
        Caching::Auto(AutoCaching { prefix_ttl: CacheTtl::FiveMinutes }) => "auto",
        Caching::Auto(AutoCaching { prefix_ttl: CacheTtl::OneHour }) => "auto-1h",
    }
}
