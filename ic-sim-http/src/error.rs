//! The errors the server answers with an HTTP status and a plain-text body (the replica's
//! `HttpError`), and the errors of starting a server.

use thiserror::Error;

/// A request the server refuses before it reaches the simulator, with the replica's status code
/// and message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("HTTP {status}: {message}")]
pub struct HttpError {
    /// The HTTP status code.
    pub status: u16,
    /// The plain-text body.
    pub message: String,
}

impl HttpError {
    /// 400 Bad Request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: 400,
            message: message.into(),
        }
    }

    /// 403 Forbidden.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self {
            status: 403,
            message: message.into(),
        }
    }

    /// 404 Not Found.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self {
            status: 404,
            message: message.into(),
        }
    }
}

/// Why a server could not start.
#[derive(Debug, Error)]
pub enum ServeError {
    /// The address could not be bound.
    #[error(
        "cannot listen on {addr}: {reason} (is another server on that port? `--port 0` picks a free one)"
    )]
    Bind {
        /// The address asked for.
        addr: String,
        /// What the OS said.
        reason: String,
    },
    /// The simulator's subnet id is not the one the root key implies.
    #[error(
        "the simulator's subnet id {sim} is not the id {keys} derived from the root key: create the Sim with `ServerConfig::sim_config`"
    )]
    SubnetMismatch {
        /// The simulator's subnet id.
        sim: String,
        /// The id derived from the root key.
        keys: String,
    },
}
