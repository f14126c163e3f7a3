//! One error type for the library. Every message says what is wrong and, where
//! the user can act on it, what to do.

use std::path::PathBuf;

/// Errors returned by spinemesh. Display gives one sentence for the user.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or folder could not be read or written.
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The input is not something spinemesh can turn into a volume.
    #[error("{0}")]
    Input(String),
    /// A file is in a format we read, but its content is broken or unsupported.
    #[error("{path}: {message}")]
    Format { path: PathBuf, message: String },
    /// A parameter has an impossible value.
    #[error("invalid parameter: {0}")]
    Parameter(String),
    /// A pipeline stage produced nothing usable (e.g. no bone above threshold).
    #[error("{0}")]
    Empty(String),
}

impl Error {
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }
    pub fn format(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Format {
            path: path.into(),
            message: message.into(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
