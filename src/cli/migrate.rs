//! `verbatim migrate`: brings a PostgreSQL store's schema up to date, or creates a DynamoDB
//! store's table.

use std::process::ExitCode;

/// Arguments of `verbatim migrate`.
#[derive(clap::Args)]
pub(crate) struct MigrateArgs {
    /// The store: a database (`postgres://user@host:port/database`) or a DynamoDB table
    /// (`dynamodb://TABLE?region=REGION`).
    #[arg(long, alias = "store", env = "VERBATIM_STORE", hide_env_values = true)]
    database_url: String,
    /// The schema to hold verbatim's tables (created if missing); the default is the first
    /// schema of the server's search path.
    #[arg(long, env = "VERBATIM_SCHEMA", value_name = "SCHEMA")]
    schema: Option<String>,
}

impl std::fmt::Debug for MigrateArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password.
        f.debug_struct("MigrateArgs").field("schema", &self.schema).finish_non_exhaustive()
    }
}

pub(crate) fn migrate(args: &MigrateArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("verbatim migrate: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("verbatim migrate: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: &MigrateArgs) -> Result<(), verbatim_store::StoreError> {
    if args.database_url.starts_with("dynamodb://") {
        return create_table(args).await;
    }
    postgres(args).await
}

#[cfg(feature = "dynamodb")]
async fn create_table(args: &MigrateArgs) -> Result<(), verbatim_store::StoreError> {
    use verbatim_store::{DynamoOptions, DynamoStore};
    let store = DynamoStore::unchecked(&args.database_url, DynamoOptions::default()).await?;
    if store.create_table().await? {
        say!("table {}: created", store.table());
    } else {
        say!("table {}: exists, up to date", store.table());
    }
    Ok(())
}

#[cfg(not(feature = "dynamodb"))]
async fn create_table(_args: &MigrateArgs) -> Result<(), verbatim_store::StoreError> {
    Err(verbatim_store::StoreError::Invalid(
        "this build has no DynamoDB store (feature `dynamodb`)".into(),
    ))
}

#[cfg(not(feature = "postgres"))]
async fn postgres(_args: &MigrateArgs) -> Result<(), verbatim_store::StoreError> {
    Err(verbatim_store::StoreError::Invalid(
        "this build has no PostgreSQL store (feature `postgres`)".into(),
    ))
}

#[cfg(feature = "postgres")]
async fn postgres(args: &MigrateArgs) -> Result<(), verbatim_store::StoreError> {
    use verbatim_store::{POSTGRES_SCHEMA_VERSION, PostgresOptions, PostgresStore};
    let options = PostgresOptions {
        schema: args.schema.clone(),
        pool_size: 1,
        ..super::postgres_options(&args.database_url).await
    };
    let (_, migrated) = PostgresStore::connect_and_migrate(&args.database_url, options).await?;
    if migrated.applied.is_empty() {
        say!("schema version {}: up to date", migrated.from);
    } else {
        let applied: Vec<String> = migrated.applied.iter().map(u32::to_string).collect();
        say!(
            "schema version {} -> {} (applied {})",
            migrated.from,
            POSTGRES_SCHEMA_VERSION,
            applied.join(", ")
        );
    }
    Ok(())
}
