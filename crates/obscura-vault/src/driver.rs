//! The runtime that drives the scale-out backends' async clients
//! (tokio-postgres, object_store) for the vault's synchronous API.
//!
//! One small multi-threaded tokio runtime per process, started on first use
//! and never dropped (so no runtime is ever dropped inside another). Its
//! workers drive sockets, timers and connection tasks; a vault call waits
//! on its own thread with a plain executor while the runtime's handle is
//! entered, so it works from any thread, a tokio blocking thread included,
//! and never starts a runtime inside another one.

use std::future::Future;
use std::sync::OnceLock;

/// A handle to the vault's backend runtime.
#[derive(Clone, Copy)]
pub(crate) struct Driver(&'static tokio::runtime::Runtime);

static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();

impl Driver {
    /// The runtime, started if it was not.
    pub(crate) fn get() -> std::io::Result<Driver> {
        let rt = RUNTIME.get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("obscura-vault-io")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        });
        match rt {
            Ok(rt) => Ok(Driver(rt)),
            Err(e) => Err(std::io::Error::other(format!(
                "cannot start the vault's backend runtime: {e}"
            ))),
        }
    }

    /// Run `f` to completion on this thread, inside the runtime's context.
    pub(crate) fn block_on<F: Future>(self, f: F) -> F::Output {
        let _entered = self.0.enter();
        futures::executor::block_on(f)
    }

    /// Run `f` on the runtime's workers, detached.
    pub(crate) fn spawn<F>(self, f: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.0.spawn(f);
    }
}
