//! `WriteTransaction`: the only way the backends open a write transaction. It ends in exactly
//! one of two ways: a COMMIT the database confirmed, or its connection thrown away.
//!
//! After a failed COMMIT or statement, a driver's transaction wrapper and the database can
//! disagree about whether a transaction is still open: sqlx counts nesting in a counter that
//! moves only when a statement succeeds, while SQLite may or may not have rolled back by itself.
//! With the wrapper, one "database or disk is full" left the writer connection in that state,
//! and every later ingest was acknowledged into a transaction that never committed and was gone
//! after a restart. Rather than guess the state after a failure, we close the connection
//! (closing rolls back whatever was open) and let the pool open a fresh one.

use std::ops::{Deref, DerefMut};

use futures::future::BoxFuture;
use sqlx::pool::PoolConnection;
use sqlx::{Database, Executor, Pool};

/// An open write transaction on a pooled connection. Dropped without `commit` (an error
/// returned early, a cancelled request), it closes the connection instead of returning it.
pub(crate) struct WriteTransaction<DB: Database> {
    connection: PoolConnection<DB>,
    /// Set once COMMIT or ROLLBACK succeeded: only then may the connection be reused.
    ended: bool,
}

/// The methods, for each driver: a generic version over `Database` would need a higher-ranked
/// `Executor` bound under which the compiler cannot prove the futures `Send`, and the futures
/// are boxed for the same reason (as the drivers' own `begin` and `commit` are).
macro_rules! write_transaction_methods {
    ($db:ty, $connection:ty) => {
        impl WriteTransaction<$db> {
            /// Takes a connection from `pool` and runs `begin` on it (`BEGIN IMMEDIATE` on
            /// SQLite, so the write lock is taken before the first read rather than upgraded
            /// later).
            pub(crate) fn begin(
                pool: &Pool<$db>,
                begin: &'static str,
            ) -> BoxFuture<'static, Result<Self, sqlx::Error>> {
                let pool = pool.clone();
                Box::pin(async move {
                    let mut connection = pool.acquire().await?;
                    if let Err(error) = connection.execute(begin).await {
                        connection.close_on_drop();
                        return Err(error);
                    }
                    Ok(Self {
                        connection,
                        ended: false,
                    })
                })
            }

            /// Commits. Only an `Ok` here means the transaction is durable; on an error the
            /// connection is closed, which rolls back whatever the database still holds open.
            pub(crate) fn commit(self) -> BoxFuture<'static, Result<(), sqlx::Error>> {
                self.end("COMMIT")
            }

            /// Ends the transaction without keeping anything, for a path that decided not to
            /// write.
            pub(crate) fn rollback(self) -> BoxFuture<'static, Result<(), sqlx::Error>> {
                self.end("ROLLBACK")
            }

            fn end(mut self, statement: &'static str) -> BoxFuture<'static, Result<(), sqlx::Error>> {
                Box::pin(async move {
                    self.connection.execute(statement).await?;
                    self.mark_ended();
                    Ok(())
                })
            }
        }

        impl Deref for WriteTransaction<$db> {
            type Target = $connection;

            fn deref(&self) -> &Self::Target {
                &self.connection
            }
        }

        impl DerefMut for WriteTransaction<$db> {
            fn deref_mut(&mut self) -> &mut Self::Target {
                &mut self.connection
            }
        }
    };
}

write_transaction_methods!(sqlx::Sqlite, sqlx::SqliteConnection);
write_transaction_methods!(sqlx::Postgres, sqlx::PgConnection);

impl<DB: Database> WriteTransaction<DB> {
    fn mark_ended(&mut self) {
        self.ended = true;
    }
}

impl<DB: Database> Drop for WriteTransaction<DB> {
    fn drop(&mut self) {
        if !self.ended {
            self.connection.close_on_drop();
        }
    }
}
