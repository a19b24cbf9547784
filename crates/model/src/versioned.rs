//! The schema version of the canonical form.

use serde::{Deserialize, Serialize};

/// The version of the canonical serde form written by this build.
///
/// It changes whenever a stored value written by this build could not be read by an older one.
pub const SCHEMA_VERSION: u32 = 1;

/// A canonical value tagged with the schema version it was written with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Versioned<T> {
    /// The schema version the value was written with.
    pub schema_version: u32,
    /// The value.
    pub data: T,
}

/// A stored value this build cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stored schema version {found} is newer than this build supports ({supported})")]
pub struct SchemaError {
    /// The version found.
    pub found: u32,
    /// The newest version this build reads.
    pub supported: u32,
}

impl<T> Versioned<T> {
    /// Tags `data` with the current [`SCHEMA_VERSION`].
    pub fn new(data: T) -> Versioned<T> {
        Versioned { schema_version: SCHEMA_VERSION, data }
    }

    /// The value, if this build can read its schema version.
    pub fn into_current(self) -> Result<T, SchemaError> {
        if self.schema_version > SCHEMA_VERSION {
            return Err(SchemaError { found: self.schema_version, supported: SCHEMA_VERSION });
        }
        Ok(self.data)
    }
}
