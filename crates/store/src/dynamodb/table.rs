//! The table: created with its listing index (on-demand capacity) when missing and asked to,
//! and checked for the key schema and index this backend writes.

use std::time::Duration;

use aws_sdk_dynamodb::operation::describe_table::DescribeTableError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TableDescription, TableStatus,
};

use super::items::{INDEX, PK, SK};
use super::{DynamoStore, backend, built};
use crate::StoreError;

/// How long a table being created is waited for.
const CREATE_WAIT: Duration = Duration::from_secs(300);

impl DynamoStore {
    /// Creates the table (and its index) when it does not exist and waits until it is active;
    /// whether it was created. A table that exists is checked.
    pub async fn create_table(&self) -> Result<bool, StoreError> {
        if let Some(table) = self.describe().await? {
            self.check(&table)?;
            self.wait_active(table).await?;
            return Ok(false);
        }
        let key = |name: &str, kind| {
            built(KeySchemaElement::builder().attribute_name(name).key_type(kind).build())
        };
        let string = |name: &str| {
            built(
                AttributeDefinition::builder()
                    .attribute_name(name)
                    .attribute_type(ScalarAttributeType::S)
                    .build(),
            )
        };
        let index = built(
            GlobalSecondaryIndex::builder()
                .index_name(INDEX)
                .key_schema(key("list_shard", KeyType::Hash)?)
                .key_schema(key("list_key", KeyType::Range)?)
                .projection(Projection::builder().projection_type(ProjectionType::All).build())
                .build(),
        )?;
        let created = self
            .client
            .create_table()
            .table_name(self.table.as_ref())
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key(PK, KeyType::Hash)?)
            .key_schema(key(SK, KeyType::Range)?)
            .attribute_definitions(string(PK)?)
            .attribute_definitions(string(SK)?)
            .attribute_definitions(string("list_shard")?)
            .attribute_definitions(string("list_key")?)
            .global_secondary_indexes(index)
            .send()
            .await;
        match created {
            Ok(_) => {}
            // Created by another instance meanwhile.
            Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_in_use_exception()) => {}
            Err(e) => return Err(backend(e)),
        }
        let table = self.describe().await?.ok_or_else(|| {
            StoreError::backend_detail(format!(
                "dynamodb: table {} vanished after its creation",
                self.table
            ))
        })?;
        self.wait_active(table).await?;
        Ok(true)
    }

    /// Makes sure the table is there: created when missing and `create`, otherwise an error
    /// that says how to create it.
    pub(super) async fn ensure_table(&self, create: bool) -> Result<(), StoreError> {
        if create {
            self.create_table().await?;
            return Ok(());
        }
        match self.describe().await? {
            Some(table) => self.check(&table),
            None => Err(StoreError::Invalid(format!(
                "DynamoDB table {} does not exist: create it with `verbatim migrate --store dynamodb://{}?region=...` (or let the store create it)",
                self.table, self.table
            ))),
        }
    }

    async fn describe(&self) -> Result<Option<TableDescription>, StoreError> {
        match self.client.describe_table().table_name(self.table.as_ref()).send().await {
            Ok(out) => Ok(out.table),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(DescribeTableError::ResourceNotFoundException(_))
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(backend(e)),
        }
    }

    /// Refuses a table whose keys or index are not this backend's.
    fn check(&self, table: &TableDescription) -> Result<(), StoreError> {
        let keys = |schema: &[KeySchemaElement]| -> Vec<(String, KeyType)> {
            schema.iter().map(|k| (k.attribute_name().to_owned(), k.key_type().clone())).collect()
        };
        let expected = vec![(PK.to_owned(), KeyType::Hash), (SK.to_owned(), KeyType::Range)];
        let index = table.global_secondary_indexes().iter().find(|i| i.index_name() == Some(INDEX));
        let index_keys = index.map(|i| keys(i.key_schema()));
        let expected_index =
            vec![("list_shard".to_owned(), KeyType::Hash), ("list_key".to_owned(), KeyType::Range)];
        if keys(table.key_schema()) != expected || index_keys != Some(expected_index) {
            return Err(StoreError::Invalid(format!(
                "DynamoDB table {} is not a verbatim table: it needs the key {PK} (string, partition) + {SK} (string, sort) and the index {INDEX} on list_shard + list_key (see the README)",
                self.table
            )));
        }
        Ok(())
    }

    async fn wait_active(&self, mut table: TableDescription) -> Result<(), StoreError> {
        let deadline = tokio::time::Instant::now() + CREATE_WAIT;
        loop {
            let index_active = table
                .global_secondary_indexes()
                .iter()
                .all(|i| i.index_status().is_none_or(|s| s.as_str() == "ACTIVE"));
            if table.table_status() == Some(&TableStatus::Active) && index_active {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                return Err(StoreError::backend_detail(format!(
                    "dynamodb: table {} is not active after {} s",
                    self.table,
                    CREATE_WAIT.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            table = self.describe().await?.ok_or_else(|| {
                StoreError::backend_detail(format!("dynamodb: table {} vanished", self.table))
            })?;
        }
    }
}
