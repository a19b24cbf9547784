//! What a session's model calls cost: one line per call (every assistant message ever
//! appended, rewound ones included: they were paid for) with its tokens and its cost at the
//! prices of [`PriceTable`], and the totals. Pure: it reads a stored session.

use verbatim_model::{Api, Usage};
use verbatim_protocol::pricing::PriceTable;
use verbatim_store::{Entry, Session as StoredSession};

/// One model call.
#[derive(Debug, Clone, PartialEq)]
pub struct LedgerLine {
    /// The sequence number of the assistant message the call produced.
    pub seq: u64,
    /// The model the call named.
    pub model_id: String,
    /// The surface it went to.
    pub api: Api,
    /// Its tokens as Bedrock reported them.
    pub usage: Usage,
    /// Its cost in US dollars; `None` when the price table has no prices for the model.
    pub cost: Option<f64>,
}

/// The model calls of a session and their totals.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ledger {
    /// One line per call, in order.
    pub lines: Vec<LedgerLine>,
    /// The tokens of every call.
    pub usage: Usage,
    /// The cost of the calls whose model has prices, US dollars.
    pub cost: f64,
    /// How many calls have no price (their tokens are in `usage`, not in `cost`).
    pub unpriced: usize,
}

impl Ledger {
    /// The ledger of a stored session at `prices`.
    pub fn of(session: &StoredSession, prices: &PriceTable) -> Ledger {
        let mut ledger = Ledger::default();
        for record in &session.records {
            let Entry::Message(message) = &record.entry else { continue };
            let Some(provenance) = &message.provenance else { continue };
            let Some(usage) = &provenance.usage else { continue };
            let cost = prices.prices(&provenance.model_id).map(|p| p.cost(usage));
            ledger.usage.add(usage);
            match cost {
                Some(cost) => ledger.cost += cost,
                None => ledger.unpriced += 1,
            }
            ledger.lines.push(LedgerLine {
                seq: record.seq,
                model_id: provenance.model_id.clone(),
                api: provenance.api,
                usage: usage.clone(),
                cost,
            });
        }
        ledger
    }

    /// The share of input tokens read from the prompt cache (read / (read + written +
    /// uncached)); `None` before any input was counted.
    pub fn cache_hit_rate(&self) -> Option<f64> {
        let count = |n: Option<u64>| n.unwrap_or(0) as f64;
        let read = count(self.usage.cache_read_input_tokens);
        let all =
            read + count(self.usage.cache_write_input_tokens) + count(self.usage.input_tokens);
        (all > 0.0).then(|| read / all)
    }
}

#[cfg(test)]
mod tests {
    use verbatim_model::{HistoryMessage, Message, Provenance, Role};
    use verbatim_protocol::pricing::Prices;
    use verbatim_store::{Append, MemoryStore, NewSession, SessionStore};

    use super::*;

    fn call(model: &str, usage: Usage) -> Entry {
        let mut provenance = Provenance::new(model, Api::Messages);
        provenance.usage = Some(usage);
        let message = Message::new(Role::Assistant, vec![]);
        Entry::Message(HistoryMessage { message, provenance: Some(provenance) })
    }

    fn usage(input: u64, output: u64, write: u64, read: u64) -> Usage {
        Usage {
            input_tokens: Some(input),
            output_tokens: Some(output),
            cache_write_input_tokens: Some(write),
            cache_read_input_tokens: Some(read),
            ..Usage::default()
        }
    }

    #[tokio::test]
    async fn the_totals_are_the_sum_of_the_calls_and_unpriced_models_are_counted_apart() {
        const SONNET: &str = "us.anthropic.claude-sonnet-4-5-20250929-v1:0";
        let store = MemoryStore::new();
        let id = store.create(NewSession::new(SONNET)).await.unwrap().id;
        let entries = vec![
            Entry::Message(HistoryMessage::from(Message::user_text("a"))),
            call(SONNET, usage(1000, 200, 5000, 0)),
            Entry::Message(HistoryMessage::from(Message::user_text("b"))),
            call(SONNET, usage(100, 300, 0, 5000)),
            Entry::Message(HistoryMessage::from(Message::user_text("c"))),
            call("us.deepseek.r1-v1:0", usage(50, 60, 0, 0)),
        ];
        store.append(id, Append::new(0, entries)).await.unwrap();
        let session = store.load(id).await.unwrap();

        let ledger = Ledger::of(&session, &PriceTable::new());
        assert_eq!(ledger.lines.iter().map(|l| l.seq).collect::<Vec<_>>(), [2, 4, 6]);
        assert_eq!(ledger.unpriced, 1);
        assert_eq!(ledger.lines[2].cost, None);
        let sum: f64 = ledger.lines.iter().filter_map(|l| l.cost).sum();
        assert!((ledger.cost - sum).abs() < 1e-12);
        let sonnet = Prices { input: 3.0, output: 15.0 };
        let expected =
            sonnet.cost(&usage(1000, 200, 5000, 0)) + sonnet.cost(&usage(100, 300, 0, 5000));
        assert!((ledger.cost - expected).abs() < 1e-12, "{} vs {expected}", ledger.cost);
        // The ledger's tokens are the session's usage as the store sums it.
        assert_eq!(ledger.usage, session.usage());
        let rate = ledger.cache_hit_rate().unwrap();
        assert!((rate - 5000.0 / 11150.0).abs() < 1e-12, "{rate}");
        // Priced by the caller, the other model counts too.
        let table = PriceTable::new().with("deepseek.r1", Prices { input: 1.35, output: 5.4 });
        assert_eq!(Ledger::of(&session, &table).unpriced, 0);
    }
}
