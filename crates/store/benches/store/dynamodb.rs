//! The DynamoDB store next to bare requests on the same local moto server (see the bench's
//! header).

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use verbatim_model::SessionId;
use verbatim_store::{Append, DynamoOptions, DynamoStore, Entry, NewSession, SessionStore};

use super::{MODEL, message, moto, ms, percentile};

fn median(times: &mut [Duration]) -> f64 {
    ms(percentile(times, 0.5))
}

async fn store(moto: &moto::Moto) -> DynamoStore {
    let options = DynamoOptions::default().with_static_credentials("testing", "testing");
    DynamoStore::connect_with(&moto.new_table_url("verbatim_bench"), options).await.unwrap()
}

/// A bare client of the same server.
fn client(moto: &moto::Moto) -> aws_sdk_dynamodb::Client {
    let credentials =
        aws_sdk_dynamodb::config::Credentials::new("testing", "testing", None, None, "moto");
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version_latest()
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .endpoint_url(moto.endpoint())
        .credentials_provider(credentials)
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

fn item(session: &str, seq: u64, body: &[u8]) -> std::collections::HashMap<String, AttributeValue> {
    std::collections::HashMap::from([
        ("pk".to_owned(), AttributeValue::S(session.to_owned())),
        ("sk".to_owned(), AttributeValue::S(format!("r#{seq:020}"))),
        ("entry".to_owned(), AttributeValue::B(Blob::new(body))),
    ])
}

/// What an append does, bare: one transaction of a conditional update of a head item and
/// a put of the record's bytes.
async fn bare_transaction(client: &aws_sdk_dynamodb::Client, table: &str, seq: u64, body: &[u8]) {
    use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};
    let head = std::collections::HashMap::from([
        ("pk".to_owned(), AttributeValue::S("bare".into())),
        ("sk".to_owned(), AttributeValue::S("h".into())),
    ]);
    let update = Update::builder()
        .table_name(table)
        .set_key(Some(head))
        .update_expression("SET v = :seq")
        .condition_expression("attribute_not_exists(v) OR v < :seq")
        .expression_attribute_values(":seq", AttributeValue::N(seq.to_string()))
        .build()
        .unwrap();
    let put =
        Put::builder().table_name(table).set_item(Some(item("bare", seq, body))).build().unwrap();
    client
        .transact_write_items()
        .transact_items(TransactWriteItem::builder().update(update).build())
        .transact_items(TransactWriteItem::builder().put(put).build())
        .send()
        .await
        .unwrap();
}

async fn prefill(store: &DynamoStore, id: SessionId, count: u64) -> u64 {
    let mut version = 0;
    while version < count {
        let batch: Vec<Entry> = (version..(version + 90).min(count)).map(message).collect();
        version = store.append(id, Append::new(version, batch)).await.unwrap().version;
    }
    version
}

pub(super) async fn figures() {
    let Some(moto) = moto::Moto::start("the DynamoDB store bench") else {
        println!("verbatim-store on DynamoDB: skipped (python3 has no moto server)");
        return;
    };
    let bare = client(&moto);
    let body = serde_json::to_vec(&message(1)).unwrap();
    let rounds = 100;
    let mut lines = Vec::new();
    let (mut all, mut bare_times, mut put_times) = (Vec::new(), Vec::new(), Vec::new());
    // One table per length (moto copies a table for each transaction: a shared one would
    // make the later lengths pay for the earlier ones' records).
    for length in [10u64, 1_000] {
        let store = store(&moto).await;
        let id = store.create(NewSession::new(MODEL)).await.unwrap().id;
        let mut version = prefill(&store, id, length).await;
        let mut times = Vec::new();
        while times.len() < rounds {
            for _ in 0..25 {
                let entry = message(version);
                let start = Instant::now();
                version =
                    store.append(id, Append::new(version, vec![entry])).await.unwrap().version;
                times.push(start.elapsed());
            }
            for _ in 0..25 {
                let seq = 1_000_000 + bare_times.len() as u64;
                let start = Instant::now();
                bare_transaction(&bare, store.table(), seq, &body).await;
                bare_times.push(start.elapsed());
            }
            for _ in 0..25 {
                let seq = 2_000_000 + put_times.len() as u64;
                let start = Instant::now();
                bare.put_item()
                    .table_name(store.table())
                    .set_item(Some(item("bare", seq, &body)))
                    .send()
                    .await
                    .unwrap();
                put_times.push(start.elapsed());
            }
        }
        all.extend_from_slice(&times);
        let p99 = ms(percentile(&mut times, 0.99));
        lines.push(format!(
            "  append at {length:>6} messages: median {:.3} ms, p99 {p99:.3} ms",
            median(&mut times)
        ));
    }
    let append_median = median(&mut all);
    let bare_median = median(&mut bare_times);
    let put_median = median(&mut put_times);

    // Loads of a 1,000-turn (2,000-message) session next to a bare Query of the same
    // 2,000 items (paged, not parsed), on a table of its own.
    let store = store(&moto).await;
    let loaded = store.create(NewSession::new(MODEL)).await.unwrap().id;
    prefill(&store, loaded, 2_000).await;
    let (mut load_times, mut query_times) = (Vec::new(), Vec::new());
    for _ in 0..10 {
        let start = Instant::now();
        let session = store.load(loaded).await.unwrap();
        load_times.push(start.elapsed());
        assert_eq!(session.records.len(), 2_000);
        let start = Instant::now();
        let mut items = 0;
        let mut from = None;
        loop {
            let out = bare
                .query()
                .table_name(store.table())
                .key_condition_expression("pk = :pk AND begins_with(sk, :r)")
                .expression_attribute_values(":pk", AttributeValue::S(loaded.to_string()))
                .expression_attribute_values(":r", AttributeValue::S("r#".into()))
                .consistent_read(true)
                .set_exclusive_start_key(from)
                .send()
                .await
                .unwrap();
            items += out.items().len();
            from = out.last_evaluated_key;
            if from.is_none() {
                break;
            }
        }
        query_times.push(start.elapsed());
        assert_eq!(items, 2_000);
    }
    let load = median(&mut load_times);
    let query = median(&mut query_times);
    println!(
        "verbatim-store on DynamoDB, local moto server (local figures: the client's overhead over a bare request, not DynamoDB's latency)"
    );
    for line in lines {
        println!("{line}");
    }
    println!(
        "  append median over both lengths {append_median:.3} ms (one TransactWriteItems); a bare TransactWriteItems of the same shape (a conditional counter update + the same bytes) on the same tables {bare_median:.3} ms: {:.2}x; a bare single-item PutItem {put_median:.3} ms",
        append_median / bare_median
    );
    println!(
        "  load of 1,000 turns (2,000 records, parsed): median {load:.1} ms; bare Query of the same items, paged, unparsed {query:.1} ms ({:.2}x)",
        load / query
    );
}
