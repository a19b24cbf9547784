//! What a model call costs: on-demand prices per million tokens for the Claude models whose
//! prices are published, Bedrock's prompt-cache multipliers, and the cost of a [`Usage`].
//!
//! Defaults are Anthropic's list prices in US dollars, which Bedrock charges on demand for
//! its global cross-region profiles (regional endpoints of the newer models cost 10% more,
//! and batch or provisioned throughput otherwise: give a [`PriceTable`] of your own for
//! those). A model without a published price here has no default; its calls are counted in
//! tokens and left out of the cost, and the ledger says so. Cache writes cost 1.25 times the
//! input price (5-minute TTL) or 2 times (1-hour), cache reads 0.1 times.

use verbatim_model::Usage;

use crate::model_id::base_model;

/// Prices of one model, US dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prices {
    /// Uncached input.
    pub input: f64,
    /// Output (thinking included).
    pub output: f64,
}

impl Prices {
    /// What `usage` costs at these prices. Cache writes are priced at the 5-minute rate
    /// unless the usage's Anthropic `cache_creation` breakdown names 1-hour writes.
    pub fn cost(&self, usage: &Usage) -> f64 {
        let per_token = |price: f64| price / 1_000_000.0;
        let count = |n: Option<u64>| n.unwrap_or(0) as f64;
        let written = count(usage.cache_write_input_tokens);
        let hour = one_hour_writes(usage).min(written);
        count(usage.input_tokens) * per_token(self.input)
            + count(usage.output_tokens) * per_token(self.output)
            + (written - hour) * per_token(self.input) * CACHE_WRITE_5M
            + hour * per_token(self.input) * CACHE_WRITE_1H
            + count(usage.cache_read_input_tokens) * per_token(self.input) * CACHE_READ
    }
}

/// A cache write with the 5-minute TTL, relative to the input price.
pub const CACHE_WRITE_5M: f64 = 1.25;
/// A cache write with the 1-hour TTL, relative to the input price.
pub const CACHE_WRITE_1H: f64 = 2.0;
/// A cache read, relative to the input price.
pub const CACHE_READ: f64 = 0.1;

/// The 1-hour cache writes of a usage, from Anthropic's `cache_creation` breakdown when the
/// reply carried it (`ephemeral_1h_input_tokens`).
fn one_hour_writes(usage: &Usage) -> f64 {
    usage
        .unmapped
        .anthropic
        .get("cache_creation")
        .and_then(|c| c.get("ephemeral_1h_input_tokens"))
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0) as f64
}

/// Default prices by base-model pattern, more specific first (Anthropic's published list
/// prices for each model).
const DEFAULTS: &[(&str, Prices)] = &[
    ("claude-opus-4-8", Prices { input: 5.0, output: 25.0 }),
    ("claude-opus-4-7", Prices { input: 5.0, output: 25.0 }),
    ("claude-opus-4-6", Prices { input: 5.0, output: 25.0 }),
    ("claude-opus-4-5", Prices { input: 5.0, output: 25.0 }),
    ("claude-opus-4-1", Prices { input: 15.0, output: 75.0 }),
    ("claude-opus-4", Prices { input: 15.0, output: 75.0 }),
    ("claude-sonnet-4-6", Prices { input: 3.0, output: 15.0 }),
    ("claude-sonnet-4-5", Prices { input: 3.0, output: 15.0 }),
    ("claude-sonnet-4", Prices { input: 3.0, output: 15.0 }),
    ("claude-3-7-sonnet", Prices { input: 3.0, output: 15.0 }),
    ("claude-haiku-4-5", Prices { input: 1.0, output: 5.0 }),
    ("claude-3-5-haiku", Prices { input: 0.8, output: 4.0 }),
    ("claude-3-haiku", Prices { input: 0.25, output: 1.25 }),
];

/// Prices by model: the defaults, with the caller's own on top (matched first).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PriceTable {
    /// `(pattern, prices)`: a model whose base id contains the pattern takes the prices.
    overrides: Vec<(String, Prices)>,
}

impl PriceTable {
    /// The defaults only.
    pub fn new() -> PriceTable {
        PriceTable::default()
    }

    /// Prices for every model whose base id contains `pattern` (`claude-sonnet-5`, or a
    /// whole id), taken before the defaults and earlier overrides.
    pub fn with(mut self, pattern: impl Into<String>, prices: Prices) -> PriceTable {
        self.overrides.insert(0, (pattern.into().to_ascii_lowercase(), prices));
        self
    }

    /// The prices of `model_id`, when the table has some.
    pub fn prices(&self, model_id: &str) -> Option<Prices> {
        let base = base_model(model_id);
        self.overrides
            .iter()
            .find(|(pattern, _)| base.contains(pattern.as_str()))
            .map(|(_, prices)| *prices)
            .or_else(|| {
                DEFAULTS.iter().find(|(pattern, _)| base.contains(pattern)).map(|(_, p)| *p)
            })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn usage(input: u64, output: u64, write: u64, read: u64) -> Usage {
        Usage {
            input_tokens: Some(input),
            output_tokens: Some(output),
            cache_write_input_tokens: Some(write),
            cache_read_input_tokens: Some(read),
            ..Usage::default()
        }
    }

    #[test]
    fn a_call_costs_its_tokens_at_the_models_prices_with_the_cache_multipliers() {
        let table = PriceTable::new();
        let sonnet = table.prices("us.anthropic.claude-sonnet-4-5-20250929-v1:0").unwrap();
        assert_eq!(sonnet, Prices { input: 3.0, output: 15.0 });
        // 1M input $3 + 1M output $15 + 1M written $3.75 + 1M read $0.30.
        let cost = sonnet.cost(&usage(1_000_000, 1_000_000, 1_000_000, 1_000_000));
        assert!((cost - 22.05).abs() < 1e-9, "{cost}");
        // One-hour writes at twice the input price.
        let mut hour = usage(0, 0, 1_000_000, 0);
        hour.unmapped.anthropic.insert(
            "cache_creation".into(),
            json!({"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 1_000_000}),
        );
        assert!((sonnet.cost(&hour) - 6.0).abs() < 1e-9);
        assert_eq!(table.prices("global.anthropic.claude-opus-4-7").unwrap().input, 5.0);
        assert_eq!(table.prices("anthropic.claude-opus-4-1-20250805-v1:0").unwrap().input, 15.0);
    }

    #[test]
    fn a_model_without_a_published_price_has_none_until_the_caller_gives_one() {
        let table = PriceTable::new();
        assert_eq!(table.prices("us.anthropic.claude-sonnet-5"), None);
        assert_eq!(table.prices("us.deepseek.r1-v1:0"), None);
        let mine = Prices { input: 4.0, output: 20.0 };
        let table = table.with("claude-sonnet-5", mine);
        assert_eq!(table.prices("us.anthropic.claude-sonnet-5"), Some(mine));
        // An override wins over a default.
        let cheap = Prices { input: 1.0, output: 1.0 };
        let table = table.with("claude-sonnet-4-5", cheap);
        assert_eq!(table.prices("anthropic.claude-sonnet-4-5-20250929-v1:0"), Some(cheap));
    }
}
