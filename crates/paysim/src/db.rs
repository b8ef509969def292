//! SQLite storage shared by v1 and v2: schema, the v2 expand migration, and row access.
//!
//! Two processes (blue v1 and green v2) use one database file at the same time, the way two
//! releases share one Aurora database. Hence WAL (readers never block the writer), a busy
//! timeout (the other process may hold the write lock), `CREATE ... IF NOT EXISTS` (either may
//! start first), and explicit column lists everywhere (v1 must not trip over v2's columns).

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context as _;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::Version;
use crate::error::ApiError;
use crate::model::{Currency, PaymentRow, Status};

/// How long a statement waits for the other process's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The v1 schema, which both versions create. `payments.amount` is nullable on purpose:
/// SQLite cannot drop a NOT NULL constraint without rebuilding the table (unsafe while the
/// other version is running), and the `contract-migration` fault needs to write rows
/// without it. v1 treats a NULL amount as a corrupt row.
const BASE_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS payments (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT NOT NULL UNIQUE,
    amount          INTEGER,
    currency        TEXT NOT NULL,
    status          TEXT NOT NULL,
    amount_refunded INTEGER NOT NULL DEFAULT 0,
    created_by      TEXT NOT NULL,
    created_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE TABLE IF NOT EXISTS refunds (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL UNIQUE,
    payment_id TEXT NOT NULL REFERENCES payments (id),
    amount     INTEGER NOT NULL,
    status     TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE TABLE IF NOT EXISTS idempotency_keys (
    scope       TEXT NOT NULL,
    key         TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status      INTEGER NOT NULL,
    body        BLOB NOT NULL,
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (scope, key)
);
";

/// The columns v2's expand step adds. Nullable, so v1's inserts (which name only the old
/// columns) stay valid.
const EXPAND_COLUMNS: [(&str, &str); 2] = [("reference", "TEXT"), ("amount_minor", "INTEGER")];

/// One connection behind a mutex: SQLite serialises writers anyway, and each use is a short
/// transaction run on the blocking pool (see [`Db::call`]).
#[derive(Clone)]
pub(crate) struct Db {
    conn: Arc<Mutex<Connection>>,
}

impl Db {
    /// Opens (creating if needed) the database and applies this version's schema steps.
    pub(crate) fn open(path: &Path, version: Version) -> anyhow::Result<Self> {
        let mut conn = Connection::open(path)
            .with_context(|| format!("cannot open the database {}", path.display()))?;
        // Set first, so the pragmas and schema below also wait for the other process.
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
        anyhow::ensure!(
            mode.eq_ignore_ascii_case("wal"),
            "{} cannot use WAL mode (journal_mode is {mode}); use a file on a local disk",
            path.display()
        );
        conn.pragma_update(None, "foreign_keys", true)?;
        // WAL with synchronous=NORMAL is durable across process crashes, which is what the
        // crash-after fault exercises; power loss is not a concern for a demo.
        conn.pragma_update(None, "synchronous", "NORMAL")?;

        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(BASE_SCHEMA)
            .context("cannot create the schema")?;
        if version == Version::V2 {
            expand(&tx).context("the v2 expand migration failed")?;
        }
        tx.commit()?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `f` with the connection on the blocking pool, since SQLite calls block.
    pub(crate) async fn call<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut Connection) -> Result<T, ApiError> + Send + 'static,
        T: Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            // A panic while holding the lock leaves no half-done work behind: any open
            // transaction rolled back when it was dropped. So a poisoned lock is still usable.
            let mut conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
            f(&mut conn)
        })
        .await?
    }
}

/// v2's expand step: add the new nullable columns if they are missing. Runs inside the
/// caller's IMMEDIATE transaction, so two v2 processes starting together cannot both add a
/// column, and it is safe while v1 runs because v1 never uses `SELECT *`.
fn expand(conn: &Connection) -> rusqlite::Result<()> {
    let existing = columns(conn, "payments")?;
    for (name, kind) in EXPAND_COLUMNS {
        if !existing.iter().any(|c| c == name) {
            conn.execute_batch(&format!("ALTER TABLE payments ADD COLUMN {name} {kind}"))?;
        }
    }
    Ok(())
}

/// The column names of a table.
pub(crate) fn columns(conn: &Connection, table: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare("SELECT name FROM pragma_table_info(?1)")?;
    let names = stmt.query_map([table], |row| row.get(0))?;
    names.collect()
}

/// A new random id such as `pay_0f3a...` (16 lower-case hex digits). SQLite's
/// `randomblob` draws from the OS, which saves a dependency on `rand`.
pub(crate) fn new_id(conn: &Connection, prefix: &str) -> rusqlite::Result<String> {
    let hex: String = conn.query_row("SELECT lower(hex(randomblob(8)))", [], |row| row.get(0))?;
    Ok(format!("{prefix}_{hex}"))
}

/// Where a version writes the amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AmountColumns {
    /// v1: `amount` only (it does not know `amount_minor`).
    V1,
    /// v2 during expand: both `amount` and `amount_minor`.
    Both,
    /// The contract step (fault): `amount_minor` only, `amount` left NULL.
    MinorOnly,
}

/// A payment about to be inserted.
pub(crate) struct NewPayment<'a> {
    pub id: &'a str,
    pub amount: i64,
    pub currency: Currency,
    pub status: Status,
    pub created_by: Version,
    pub reference: Option<&'a str>,
}

pub(crate) fn insert_payment(
    conn: &Connection,
    columns: AmountColumns,
    p: &NewPayment<'_>,
) -> rusqlite::Result<()> {
    let currency = p.currency.code();
    let status = p.status.as_str();
    let created_by = p.created_by.as_str();
    match columns {
        AmountColumns::V1 => conn.execute(
            "INSERT INTO payments (id, amount, currency, status, amount_refunded, created_by)
             VALUES (?1, ?2, ?3, ?4, 0, ?5)",
            params![p.id, p.amount, currency, status, created_by],
        ),
        AmountColumns::Both | AmountColumns::MinorOnly => {
            let amount = (columns == AmountColumns::Both).then_some(p.amount);
            conn.execute(
                "INSERT INTO payments
                     (id, amount, amount_minor, currency, status, amount_refunded, created_by, reference)
                 VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?7)",
                params![p.id, amount, p.amount, currency, status, created_by, p.reference],
            )
        }
    }?;
    Ok(())
}

/// The select list each version reads. v2 falls back to `amount_minor` for rows a contract
/// step wrote; v1 only knows `amount` and has no `reference`.
fn payment_columns(version: Version) -> &'static str {
    match version {
        Version::V1 => "id, amount, currency, status, amount_refunded, created_by",
        Version::V2 => {
            "id, COALESCE(amount, amount_minor), currency, status, amount_refunded, created_by, reference"
        }
    }
}

fn payment_row(version: Version, row: &rusqlite::Row<'_>) -> rusqlite::Result<PaymentRow> {
    Ok(PaymentRow {
        id: row.get(0)?,
        amount: row.get(1)?,
        currency: row.get(2)?,
        status: row.get(3)?,
        amount_refunded: row.get(4)?,
        created_by: row.get(5)?,
        reference: match version {
            Version::V1 => None,
            Version::V2 => Some(row.get(6)?),
        },
    })
}

pub(crate) fn get_payment(
    conn: &Connection,
    version: Version,
    id: &str,
) -> rusqlite::Result<Option<PaymentRow>> {
    let sql = format!(
        "SELECT {} FROM payments WHERE id = ?1",
        payment_columns(version)
    );
    conn.prepare_cached(&sql)?
        .query_row([id], |row| payment_row(version, row))
        .optional()
}

/// Newest first: `seq` grows with every insert, whichever process made it.
pub(crate) fn list_payments(
    conn: &Connection,
    version: Version,
    limit: u32,
) -> rusqlite::Result<Vec<PaymentRow>> {
    let sql = format!(
        "SELECT {} FROM payments ORDER BY seq DESC LIMIT ?1",
        payment_columns(version)
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([limit], |row| payment_row(version, row))?;
    rows.collect()
}

pub(crate) fn set_status(conn: &Connection, id: &str, status: Status) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE payments SET status = ?2 WHERE id = ?1",
        params![id, status.as_str()],
    )?;
    Ok(())
}

pub(crate) fn set_refunded(
    conn: &Connection,
    id: &str,
    amount_refunded: i64,
    status: Status,
) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE payments SET amount_refunded = ?2, status = ?3 WHERE id = ?1",
        params![id, amount_refunded, status.as_str()],
    )?;
    Ok(())
}

pub(crate) fn insert_refund(
    conn: &Connection,
    id: &str,
    payment_id: &str,
    amount: i64,
    status: &str,
    created_by: Version,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO refunds (id, payment_id, amount, status, created_by) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![id, payment_id, amount, status, created_by.as_str()],
    )?;
    Ok(())
}

/// A remembered response for an idempotency key.
pub(crate) struct StoredResponse {
    pub fingerprint: String,
    pub status: u16,
    pub body: Vec<u8>,
}

pub(crate) fn find_response(
    conn: &Connection,
    scope: &str,
    key: &str,
) -> rusqlite::Result<Option<StoredResponse>> {
    conn.query_row(
        "SELECT fingerprint, status, body FROM idempotency_keys WHERE scope = ?1 AND key = ?2",
        params![scope, key],
        |row| {
            Ok(StoredResponse {
                fingerprint: row.get(0)?,
                status: row.get(1)?,
                body: row.get(2)?,
            })
        },
    )
    .optional()
}

pub(crate) fn store_response(
    conn: &Connection,
    scope: &str,
    key: &str,
    response: &StoredResponse,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO idempotency_keys (scope, key, fingerprint, status, body) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![scope, key, response.fingerprint, response.status, response.body],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_expand_is_idempotent_and_v1_leaves_the_table_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pay.db");
        drop(Db::open(&path, Version::V1).unwrap());
        let conn = Connection::open(&path).unwrap();
        assert!(
            !columns(&conn, "payments")
                .unwrap()
                .contains(&"reference".to_owned())
        );
        drop(Db::open(&path, Version::V2).unwrap());
        drop(Db::open(&path, Version::V2).unwrap());
        drop(Db::open(&path, Version::V1).unwrap());
        let cols = columns(&conn, "payments").unwrap();
        assert!(cols.contains(&"reference".to_owned()), "{cols:?}");
        assert!(cols.contains(&"amount_minor".to_owned()), "{cols:?}");
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }

    #[test]
    fn ids_have_the_documented_shape() {
        let conn = Connection::open_in_memory().unwrap();
        let id = new_id(&conn, "pay").unwrap();
        let hex = id.strip_prefix("pay_").unwrap();
        assert_eq!(hex.len(), 16);
        assert!(
            hex.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            "{id}"
        );
        assert_ne!(id, new_id(&conn, "pay").unwrap());
    }
}
