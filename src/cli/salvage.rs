//! `verbatim salvage`: open a damaged sled store with what can still be read.

use std::path::PathBuf;
use std::process::ExitCode;

use verbatim_store::{SledOptions, SledStore, StoreError};

/// Arguments of `verbatim salvage`.
#[derive(Debug, clap::Args)]
pub(crate) struct SalvageArgs {
    /// The directory of the embedded (sled) store.
    #[arg(long, env = "VERBATIM_DATA", default_value = "verbatim-data")]
    data: PathBuf,
}

/// Opens the store with [`SledOptions::salvage`] and says what it found. Exit status: 0 when
/// the store opens (damaged or not), 1 when it cannot be opened even so.
pub(crate) fn salvage(args: &SalvageArgs) -> ExitCode {
    let options = SledOptions { salvage: true, ..SledOptions::default() };
    match SledStore::open_with_options(&args.data, options) {
        Ok(store) => {
            match store.salvaged() {
                Some(found) => say!(
                    "Salvaged the store at {}. Found: {found}. It opens with what could be read.",
                    args.data.display()
                ),
                None => {
                    say!("The store at {} is not damaged; nothing changed.", args.data.display())
                }
            }
            ExitCode::SUCCESS
        }
        Err(e @ StoreError::Damaged { .. }) => {
            eprintln!("verbatim: {e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("verbatim: cannot open the store at {}: {e}", args.data.display());
            ExitCode::FAILURE
        }
    }
}
