//! A server on a thread of its own (the simulator is not `Send`, so it is created there), for
//! tests and demos that drive it with a client from another thread. Dropping the handle stops
//! the server and joins its thread.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;

use ic_sim::Sim;

use crate::error::ServeError;
use crate::server::{Server, ServerConfig};

/// A running server.
pub struct ServerHandle {
    url: String,
    root_key: Vec<u8>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ServerHandle {
    /// Starts a server: creates the simulator with [`ServerConfig::sim_config`] on the server's
    /// thread, runs `setup` on it (deploy canisters there), then serves. Answers the handle and
    /// what `setup` returned.
    pub fn spawn<T: Send + 'static>(
        config: ServerConfig,
        setup: impl FnOnce(&Sim) -> T + Send + 'static,
    ) -> Result<(ServerHandle, T), ServeError> {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("ic-sim-http".into())
            .spawn(move || {
                let sim = Sim::with_config(config.sim_config());
                let value = setup(&sim);
                match Server::bind(sim, &config) {
                    Ok(mut server) => {
                        let started = (server.url(), server.root_key().to_vec(), value);
                        if tx.send(Ok(started)).is_ok() {
                            server.serve(&flag);
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                }
            })
            .expect("spawning the server thread");
        let (url, root_key, value) = match rx.recv() {
            Ok(started) => started?,
            Err(_) => {
                let reason = thread
                    .join()
                    .err()
                    .and_then(|p| p.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "the setup panicked".into());
                panic!("ic-sim-http: the server thread ended before serving: {reason}");
            }
        };
        Ok((
            ServerHandle {
                url,
                root_key,
                stop,
                thread: Some(thread),
            },
            value,
        ))
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The DER-encoded root key.
    pub fn root_key(&self) -> &[u8] {
        &self.root_key
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
