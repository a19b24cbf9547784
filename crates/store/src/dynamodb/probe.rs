//! What the tests do to the table behind the store's back: read an item as stored, leave a
//! dead staged writer's claim and records, make a table of another shape.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use verbatim_model::SessionId;

use super::DynamoStore;
use super::items::{HEAD, Item, RawRecord, key, n};
use super::write::Sent;

impl DynamoStore {
    /// The item of session `id` under sort key `sk`.
    pub(crate) async fn raw_item(&self, id: SessionId, sk: &str) -> Option<Item> {
        let out = self
            .client
            .get_item()
            .table_name(self.table.as_ref())
            .set_key(Some(key(id, sk)))
            .consistent_read(true)
            .send()
            .await
            .unwrap();
        out.item
    }

    /// What a staged append leaves when its writer dies: its claim on the head (made at
    /// `at` µs) and all but the last part of its first record, `bytes` long.
    pub(crate) async fn dead_claim(&self, id: SessionId, writer: u64, at: i64, bytes: &[u8]) {
        let values = [(":writer".to_owned(), n(writer)), (":now".to_owned(), n(at))];
        let claimed = self
            .update_head(
                id,
                "SET pending = :writer, pending_at = :now",
                "attribute_exists(pk)",
                values.into(),
            )
            .await
            .unwrap();
        assert!(claimed.is_some());
        let version: u64 =
            super::items::get_n(id, &self.raw_item(id, HEAD).await.unwrap(), "version").unwrap();
        let at = chrono::DateTime::from_timestamp_micros(at).unwrap();
        let mut items = RawRecord { seq: version + 1, at, bytes: bytes.to_vec() }.items(id, writer);
        items.pop();
        for item in items {
            self.client
                .put_item()
                .table_name(self.table.as_ref())
                .set_item(Some(item))
                .send()
                .await
                .unwrap();
        }
    }

    /// Whether the dead writer `writer` could still write a record under its claim.
    pub(crate) async fn dead_writer_writes(&self, id: SessionId, writer: u64) -> bool {
        let check = aws_sdk_dynamodb::types::ConditionCheck::builder()
            .table_name(self.table.as_ref())
            .set_key(Some(key(id, HEAD)))
            .condition_expression("pending = :writer")
            .expression_attribute_values(":writer", n(writer))
            .build()
            .unwrap();
        let record = RawRecord { seq: 99, at: chrono::Utc::now(), bytes: b"{}".to_vec() };
        let put = aws_sdk_dynamodb::types::Put::builder()
            .table_name(self.table.as_ref())
            .set_item(Some(record.items(id, writer).remove(0)))
            .build()
            .unwrap();
        let writes = vec![
            aws_sdk_dynamodb::types::TransactWriteItem::builder().condition_check(check).build(),
            aws_sdk_dynamodb::types::TransactWriteItem::builder().put(put).build(),
        ];
        matches!(self.transact(writes).await.unwrap(), Sent::Done)
    }

    /// Creates `table` with a key schema of another shape (`id` alone).
    pub(crate) async fn create_foreign_table(&self, table: &str) {
        self.client
            .create_table()
            .table_name(table)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name("id")
                    .key_type(KeyType::Hash)
                    .build()
                    .unwrap(),
            )
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("id")
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
    }
}
