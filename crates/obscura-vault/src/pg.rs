//! The archive's PostgreSQL database for other parts of Obscura that share
//! it (the grant store of `obscura-access`): the same settings as the index
//! ([`Database`]: a URL without a password, the password from a file or the
//! environment, TLS off loopback) and the same runtime, in a schema of the
//! caller's own. Calls block the calling thread, from any thread.

use crate::driver::Driver;
use crate::index::postgres::connect;
use crate::{Database, VaultError};
use std::sync::{Arc, RwLock};
use tokio_postgres::Client;

pub use tokio_postgres::types::{ToSql, Type};
pub use tokio_postgres::{Error, Row};

/// One shared connection (requests pipelined on it; reconnected when lost).
pub struct PgSession {
    db: Database,
    schema: &'static str,
    client: RwLock<Arc<Client>>,
    driver: Driver,
}

impl PgSession {
    /// Connect and run `setup` (creating `schema` and its tables) in one
    /// transaction; statements then run with `search_path` set to `schema`.
    pub fn open(db: &Database, schema: &'static str, setup: &str) -> Result<PgSession, VaultError> {
        let driver = Driver::get()?;
        let client = connect(db, driver)?;
        driver.block_on(client.batch_execute(&format!("BEGIN; {setup}; COMMIT;")))?;
        driver.block_on(client.batch_execute(&format!("SET search_path TO {schema}")))?;
        Ok(PgSession {
            db: db.clone(),
            schema,
            client: RwLock::new(Arc::new(client)),
            driver,
        })
    }

    /// The client, connected again first if the connection was lost.
    fn client(&self) -> Result<Arc<Client>, VaultError> {
        let current = Arc::clone(&self.client.read().unwrap_or_else(|p| p.into_inner()));
        if !current.is_closed() {
            return Ok(current);
        }
        let mut slot = self.client.write().unwrap_or_else(|p| p.into_inner());
        if slot.is_closed() {
            let fresh = connect(&self.db, self.driver)?;
            self.driver
                .block_on(fresh.batch_execute(&format!("SET search_path TO {}", self.schema)))?;
            *slot = Arc::new(fresh);
        }
        Ok(Arc::clone(&slot))
    }

    /// Run a query; its rows.
    pub fn query(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, VaultError> {
        let client = self.client()?;
        Ok(self.driver.block_on(client.query(sql, params))?)
    }

    /// Run a statement; how many rows it changed.
    pub fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, VaultError> {
        let client = self.client()?;
        Ok(self.driver.block_on(client.execute(sql, params))?)
    }
}
