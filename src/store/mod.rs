//! Persistence: the journal the hub replays on start, and call history.
//!
//! SQLite in WAL mode behind a small interface, so PostgreSQL can follow when one machine is no
//! longer enough. Writes come only from the hub, in one transaction per batch of events.

pub mod contacts;
mod secrets;

use crate::model::{e164, Call, Event, Timestamp};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool};
use std::path::{Path, PathBuf};

/// Why the store failed; the hub cannot publish what it could not journal.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migrating the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("journal row {seq} cannot be read back: {message}")]
    Corrupt { seq: i64, message: String },
}

/// One applied event, with the `seq` of the delta that published it.
#[derive(Debug, Clone)]
pub struct JournalEntry {
    pub seq: u64,
    pub event: Event,
}

/// Filters of `GET /api/v1/calls`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct CallQuery {
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    pub number: Option<String>,
    /// Only the calls that reached this extension (any of their legs): an agent's own history.
    pub extension: Option<String>,
    pub limit: Option<u32>,
}

/// `path` as SQLite must be given it to open a file of that name. sqlx hands the name on as it
/// is, and SQLite takes a bare `:memory:` for an in-memory database and a name starting with
/// `file:` for a URI; a relative path behind `./` is neither.
fn file_name(path: &Path) -> PathBuf {
    if path.is_relative() {
        Path::new(".").join(path)
    } else {
        path.to_owned()
    }
}

/// Rows per multi-row statement, well under SQLite's limit of 32,766 bound values.
const ROWS_PER_STATEMENT: usize = 500;

/// The most history rows one request returns.
pub const MAX_CALLS_PER_QUERY: u32 = 500;

/// A handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
    /// The hub's own connection, for the journal: a history search or an import holding every
    /// connection of `pool` must not make the live board wait for one.
    journal: SqlitePool,
}

impl Store {
    /// Opens (creating and migrating when needed) the SQLite file at `path`. The path is a file
    /// name, never a URL: `?`, `%` or `#` in it, or a file called `:memory:`, mean just that.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(file_name(path))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // A webhook is answered only once its event is journaled: the commit must reach the
            // disk (WAL's NORMAL leaves the last commits to an OS crash). The hub commits once
            // per batch, so this is one fsync per batch.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(std::time::Duration::from_secs(5));
        let pool = SqlitePoolOptions::new().max_connections(4).connect_with(options.clone()).await?;
        sqlx::migrate!("src/store/migrations").run(&pool).await?;
        let journal = SqlitePoolOptions::new().max_connections(1).connect_with(options).await?;
        Ok(Self { pool, journal })
    }

    /// Journals a batch of applied events and the new views of the calls they changed, in one
    /// transaction: either all of it is durable or none. Rows go in a few multi-row statements,
    /// because each statement is a round trip to SQLite's thread that the hub would wait out.
    pub async fn append(&self, entries: &[JournalEntry], calls: &[Call]) -> Result<(), StoreError> {
        let mut transaction = self.journal.begin().await?;
        for chunk in entries.chunks(ROWS_PER_STATEMENT) {
            let mut insert =
                QueryBuilder::<Sqlite>::new("INSERT INTO journal (seq, at, received_at, provider, event) ");
            insert.push_values(chunk, |mut row, entry| {
                row.push_bind(entry.seq as i64)
                    .push_bind(entry.event.at)
                    .push_bind(entry.event.received_at)
                    .push_bind(entry.event.provider.as_str())
                    .push_bind(serde_json::to_string(&entry.event).unwrap_or_default());
            });
            insert.build().execute(&mut *transaction).await?;
        }
        for chunk in calls.chunks(ROWS_PER_STATEMENT) {
            let mut upsert = QueryBuilder::<Sqlite>::new(
                "INSERT INTO calls (id, provider, started_at, ended_at, caller_number, caller_e164, call) ",
            );
            upsert.push_values(chunk, |mut row, call| {
                row.push_bind(call.id.as_str())
                    .push_bind(call.id.provider())
                    .push_bind(call.started_at)
                    .push_bind(call.ended_at)
                    .push_bind(call.caller.number.as_deref())
                    .push_bind(call.caller.number.as_deref().and_then(e164))
                    .push_bind(serde_json::to_string(call).unwrap_or_default());
            });
            upsert.push(
                " ON CONFLICT(id) DO UPDATE SET started_at = excluded.started_at, ended_at = excluded.ended_at,
                 caller_number = excluded.caller_number, caller_e164 = excluded.caller_e164, call = excluded.call",
            );
            upsert.build().execute(&mut *transaction).await?;
        }
        let reached: Vec<(&str, &str, Timestamp)> = calls
            .iter()
            .flat_map(|call| {
                call.legs
                    .iter()
                    .filter_map(|leg| Some((leg.extension.as_ref()?.as_str(), call.id.as_str(), call.started_at)))
            })
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        for chunk in reached.chunks(ROWS_PER_STATEMENT) {
            let mut insert =
                QueryBuilder::<Sqlite>::new("INSERT INTO call_extensions (extension, call_id, started_at) ");
            insert.push_values(chunk, |mut row, (extension, call, started_at)| {
                row.push_bind(*extension).push_bind(*call).push_bind(*started_at);
            });
            insert.push(" ON CONFLICT(extension, call_id) DO UPDATE SET started_at = excluded.started_at");
            insert.build().execute(&mut *transaction).await?;
        }
        // Where each provider's feed resumes: the seq of its last event in this batch that has one.
        let mut cursors: std::collections::BTreeMap<&str, u64> = std::collections::BTreeMap::new();
        for entry in entries {
            if let Some(seq) = entry.event.seq {
                cursors.insert(entry.event.provider.as_str(), seq);
            }
        }
        for (provider, seq) in cursors {
            sqlx::query(
                "INSERT INTO provider_cursors (provider, seq) VALUES (?, ?)
                 ON CONFLICT(provider) DO UPDATE SET seq = excluded.seq",
            )
            .bind(provider)
            .bind(i64::try_from(seq).unwrap_or(i64::MAX))
            .execute(&mut *transaction)
            .await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    /// The answered calls started since `since` whose caller has one of these E.164 numbers:
    /// (number, call, answer time), for telling which abandoned callers were reached later.
    pub async fn answered_calls_with(
        &self,
        numbers: &[String],
        since: Timestamp,
    ) -> Result<Vec<(String, crate::model::CallId, Timestamp)>, StoreError> {
        let mut found = Vec::new();
        for chunk in numbers.chunks(ROWS_PER_STATEMENT) {
            let mut query = QueryBuilder::<Sqlite>::new(
                "SELECT caller_e164, id, json_extract(call, '$.answered_at') FROM calls WHERE started_at >= ",
            );
            query.push_bind(since).push(" AND json_extract(call, '$.answered_at') IS NOT NULL AND caller_e164 IN (");
            let mut list = query.separated(", ");
            for number in chunk {
                list.push_bind(number);
            }
            query.push(")");
            for row in query.build().fetch_all(&self.pool).await? {
                found.push((
                    row.get::<String, _>(0),
                    crate::model::CallId(row.get::<String, _>(1)),
                    row.get::<i64, _>(2),
                ));
            }
        }
        Ok(found)
    }

    /// The events received since `since`, in the order they were applied.
    pub async fn journal_since(&self, since: Timestamp) -> Result<Vec<JournalEntry>, StoreError> {
        let rows = sqlx::query("SELECT seq, event FROM journal WHERE received_at >= ? ORDER BY id")
            .bind(since)
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter()
            .map(|row| {
                let seq: i64 = row.get(0);
                let text: String = row.get(1);
                serde_json::from_str(&text)
                    .map(|event| JournalEntry { seq: seq as u64, event })
                    .map_err(|error| StoreError::Corrupt { seq, message: error.to_string() })
            })
            .collect()
    }

    /// The highest sequence number ever journaled, so numbering continues after a restart: the
    /// newest row's (read by its key, not by scanning the journal), which pruning always keeps.
    pub async fn last_seq(&self) -> Result<u64, StoreError> {
        let seq: Option<i64> =
            sqlx::query_scalar("SELECT seq FROM journal ORDER BY id DESC LIMIT 1").fetch_optional(&self.pool).await?;
        Ok(seq.unwrap_or(0).max(0) as u64)
    }

    /// The `seq` journaled last with an event of `provider` (Noojee's `lastSequenceNumber`, where
    /// its connector resumes after a restart); `None` when no event of it carrying one was ever
    /// journaled. Kept beside the journal by `append`, so pruning the journal does not lose it.
    pub async fn last_provider_seq(&self, provider: &str) -> Result<Option<u64>, StoreError> {
        let seq: Option<i64> = sqlx::query_scalar("SELECT seq FROM provider_cursors WHERE provider = ?")
            .bind(provider)
            .fetch_optional(&self.pool)
            .await?;
        Ok(seq.map(|seq| seq.max(0) as u64))
    }

    /// Deletes journal rows received before `before`, which no replay reads any more, in small
    /// transactions so the hub's writes go on between them; the newest row always stays, for
    /// `last_seq`. Returns how many went.
    pub async fn forget_journal_before(&self, before: Timestamp) -> Result<u64, StoreError> {
        let mut deleted = 0;
        loop {
            let done = sqlx::query(
                "DELETE FROM journal WHERE id IN (SELECT id FROM journal WHERE received_at < ?
                 AND id < (SELECT MAX(id) FROM journal) LIMIT 2000)",
            )
            .bind(before)
            .execute(&self.pool)
            .await?
            .rows_affected();
            deleted += done;
            if done == 0 {
                return Ok(deleted);
            }
        }
    }

    /// Call history, newest first. A `number` finds the calls with that caller however either
    /// side wrote it, when it reads as E.164; otherwise (an extension) exactly as written. An
    /// `extension` (its id) finds the calls any of whose legs rang or ran there.
    pub async fn calls(&self, query: &CallQuery) -> Result<Vec<Call>, StoreError> {
        let limit = query.limit.unwrap_or(100).min(MAX_CALLS_PER_QUERY);
        // An extension's calls are found from its rows in `call_extensions`, read
        // newest first by its (extension, started_at) index, not by sorting all of them.
        let mut sql = QueryBuilder::<Sqlite>::new("SELECT c.call FROM ");
        let order = match &query.extension {
            Some(extension) => {
                sql.push("call_extensions e JOIN calls c ON c.id = e.call_id WHERE e.extension = ");
                sql.push_bind(extension.as_str());
                sql.push(" AND e.started_at >= ").push_bind(query.since.unwrap_or(i64::MIN));
                sql.push(" AND e.started_at <= ").push_bind(query.until.unwrap_or(i64::MAX));
                " ORDER BY e.started_at DESC, e.call_id DESC LIMIT "
            }
            None => {
                sql.push("calls c WHERE c.started_at >= ").push_bind(query.since.unwrap_or(i64::MIN));
                sql.push(" AND c.started_at <= ").push_bind(query.until.unwrap_or(i64::MAX));
                " ORDER BY c.started_at DESC, c.id DESC LIMIT "
            }
        };
        if let Some(number) = &query.number {
            sql.push(" AND (c.caller_number = ").push_bind(number.as_str());
            sql.push(" OR c.caller_e164 = ").push_bind(e164(number)).push(")");
        }
        sql.push(order).push_bind(i64::from(limit));
        let rows = sql.build().fetch_all(&self.pool).await?;
        Ok(rows.into_iter().filter_map(|row| serde_json::from_str::<Call>(&row.get::<String, _>(0)).ok()).collect())
    }
}

#[cfg(test)]
impl Store {
    /// SQLite's plan for `sql`, one step per line: what index tests look for.
    pub(crate) async fn query_plan(&self, sql: &str) -> Vec<String> {
        let rows = sqlx::query(&format!("EXPLAIN QUERY PLAN {sql}")).fetch_all(&self.pool).await.unwrap_or_default();
        rows.iter().map(|row| row.get::<String, _>(3)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_path_is_a_file_name_not_a_url() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["board?mode=memory.db", "100%25 done.db", "a#b.db"] {
            let path = dir.path().join(name);
            let store = Store::open(&path).await.unwrap();
            store.pool.close().await;
            assert!(path.is_file(), "{name}: the file is made under its own name");
        }
        // Relative names SQLite would read otherwise.
        assert_eq!(file_name(Path::new(":memory:")), Path::new("./:memory:"));
        assert_eq!(file_name(Path::new("file:board.db")), Path::new("./file:board.db"));
        assert_eq!(file_name(Path::new("/var/lib/callboard.db")), Path::new("/var/lib/callboard.db"));
    }

    #[tokio::test]
    async fn old_journal_rows_are_forgotten_but_the_numbering_is_kept() {
        use crate::model::{CallId, Event, EventKind, Party, QueueId};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("prune.db")).await.unwrap();
        let entry = |seq: u64, at: Timestamp| {
            let kind = EventKind::QueueJoined {
                queue: QueueId::new("p", "a", "q"),
                call: CallId::new("p", "a", &format!("c{seq}")),
                caller: Party::default(),
            };
            JournalEntry { seq, event: Event::new("p", "a", at, kind) }
        };
        let entries: Vec<JournalEntry> = (1..=5000).map(|seq| entry(seq, seq as i64 * 10)).collect();
        store.append(&entries, &[]).await.unwrap();
        assert_eq!(store.forget_journal_before(40_000).await.unwrap(), 3999);
        let kept = store.journal_since(0).await.unwrap();
        assert_eq!((kept.len(), kept[0].seq), (1001, 4000));
        // Everything old: the newest row stays, so numbering goes on after a restart.
        assert_eq!(store.forget_journal_before(i64::MAX).await.unwrap(), 1000);
        assert_eq!(store.last_seq().await.unwrap(), 5000);
        // A provider's resume point is not in the pruned rows.
        let mut fed = entry(5001, 60_000);
        fed.event.seq = Some(77);
        store.append(&[fed], &[]).await.unwrap();
        // Later events of other kinds carry none: the row with 77 is pruned, the cursor is not.
        store.append(&[entry(5002, 70_000)], &[]).await.unwrap();
        store.forget_journal_before(i64::MAX).await.unwrap();
        assert_eq!(store.journal_since(0).await.unwrap().len(), 1);
        assert_eq!(store.last_provider_seq("p").await.unwrap(), Some(77));
        assert_eq!(store.last_provider_seq("q").await.unwrap(), None);
        let plan = store.query_plan("SELECT seq FROM journal ORDER BY id DESC LIMIT 1").await;
        assert!(plan.iter().all(|step| !step.contains("TEMP B-TREE")), "{plan:?}");
        let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous").fetch_one(&store.pool).await.unwrap();
        assert_eq!(synchronous, 2, "FULL: an acknowledged event survives an OS crash");
    }

    #[tokio::test]
    async fn an_agents_recent_calls_are_read_newest_first_from_an_index() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("plan.db")).await.unwrap();
        let plan = store
            .query_plan(
                "SELECT c.call FROM call_extensions e JOIN calls c ON c.id = e.call_id
                 WHERE e.extension = 'p/a/201' AND e.started_at >= 0 AND e.started_at <= 9
                 ORDER BY e.started_at DESC, e.call_id DESC LIMIT 10",
            )
            .await;
        assert!(plan.iter().any(|step| step.contains("call_extensions_newest")), "{plan:?}");
        assert!(plan.iter().all(|step| !step.contains("TEMP B-TREE")), "{plan:?}");
    }

    #[tokio::test]
    async fn the_journal_is_written_while_every_other_connection_is_busy() {
        use crate::model::{CallId, EventKind, Party, QueueId};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("busy.db")).await.unwrap();
        // Four slow history searches hold every connection of the shared pool.
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(store.pool.acquire().await.unwrap());
        }
        let kind = EventKind::QueueJoined {
            queue: QueueId::new("p", "a", "q"),
            call: CallId::new("p", "a", "c"),
            caller: Party::default(),
        };
        let entry = JournalEntry { seq: 1, event: Event::new("p", "a", 1, kind) };
        let append = store.append(std::slice::from_ref(&entry), &[]);
        tokio::time::timeout(std::time::Duration::from_secs(2), append).await.expect("not waiting for them").unwrap();
        drop(held);
        assert_eq!(store.last_seq().await.unwrap(), 1);
    }

    #[tokio::test]
    async fn the_import_duplicate_check_of_numbers_not_in_e164_uses_an_index() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("plan.db")).await.unwrap();
        let plan = store
            .query_plan(
                "SELECT id FROM contacts
                 WHERE e164 IS NULL AND number = 'ext 12' AND lower(name) = lower('Ada') LIMIT 1",
            )
            .await;
        assert!(plan.iter().any(|step| step.contains("USING INDEX contacts_number")), "{plan:?}");
    }
}
