//! `verbatim migrate`: brings a PostgreSQL store's schema up to date.

use std::process::ExitCode;

use verbatim_store::{POSTGRES_SCHEMA_VERSION, PostgresOptions, PostgresStore};

/// Arguments of `verbatim migrate`.
#[derive(clap::Args)]
pub(crate) struct MigrateArgs {
    /// The database (`postgres://user@host:port/database`).
    #[arg(long, env = "VERBATIM_STORE", hide_env_values = true)]
    database_url: String,
    /// The schema to hold verbatim's tables (created if missing); the default is the first
    /// schema of the server's search path.
    #[arg(long)]
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
