//! The contact list in SQLite.

use super::{Store, StoreError};
use crate::model::phone::dialable;
use crate::model::{e164, Contact};
use sqlx::Row;

/// The most contacts one listing returns.
pub const MAX_CONTACTS: u32 = 5_000;

fn contact(row: &sqlx::sqlite::SqliteRow) -> Contact {
    Contact { id: row.get(0), name: row.get(1), number: row.get(2), company: row.get(3) }
}

/// Rows of a contact import written per transaction.
const IMPORT_ROWS_PER_TRANSACTION: usize = 500;

impl Store {
    /// Contacts by name, optionally only those whose number matches `number`: in E.164 when it
    /// reads so (any spelling of the same number), else by its digits as a PBX dials them
    /// (1300 numbers, internal extensions, however either side spaced them), which
    /// `contacts_dialable` finds; nothing for a "number" that is neither (`anonymous`).
    pub async fn contacts(&self, number: Option<&str>) -> Result<Vec<Contact>, StoreError> {
        let query = match number {
            None => sqlx::query("SELECT id, name, number, company FROM contacts ORDER BY name, id LIMIT ?"),
            Some(number) => match (e164(number), dialable(number)) {
                (Some(normal), _) => sqlx::query(
                    "SELECT id, name, number, company FROM contacts WHERE e164 = ? ORDER BY name, id LIMIT ?",
                )
                .bind(normal),
                (None, Some(dialled)) => sqlx::query(
                    "SELECT id, name, number, company FROM contacts
                     WHERE dialable = ? AND e164 IS NULL ORDER BY name, id LIMIT ?",
                )
                .bind(dialled),
                (None, None) => return Ok(Vec::new()),
            },
        };
        let rows = query.bind(i64::from(MAX_CONTACTS)).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(contact).collect())
    }

    /// Adds the contacts (id 0) or updates them (by id), in one transaction; returns those saved,
    /// with their ids (an update of an id that does not exist saves nothing).
    pub async fn save_contacts(&self, contacts: &[Contact]) -> Result<Vec<Contact>, StoreError> {
        let mut transaction = self.pool.begin().await?;
        let mut saved = Vec::with_capacity(contacts.len());
        for contact in contacts {
            let normal = e164(&contact.number);
            let id = if contact.id > 0 {
                let done = sqlx::query(
                    "UPDATE contacts SET name = ?, number = ?, e164 = ?, dialable = ?, company = ? WHERE id = ?",
                )
                .bind(&contact.name)
                .bind(&contact.number)
                .bind(normal.as_deref())
                .bind(dialable(&contact.number))
                .bind(contact.company.as_deref())
                .bind(contact.id)
                .execute(&mut *transaction)
                .await?;
                if done.rows_affected() == 0 {
                    continue;
                }
                contact.id
            } else {
                sqlx::query("INSERT INTO contacts (name, number, e164, dialable, company) VALUES (?, ?, ?, ?, ?)")
                    .bind(&contact.name)
                    .bind(&contact.number)
                    .bind(normal.as_deref())
                    .bind(dialable(&contact.number))
                    .bind(contact.company.as_deref())
                    .execute(&mut *transaction)
                    .await?
                    .last_insert_rowid()
            };
            saved.push(Contact { id, ..contact.clone() });
        }
        transaction.commit().await?;
        Ok(saved)
    }

    /// Adds each contact the list does not have yet: `None` for one whose name (ignoring case)
    /// and number (in E.164, else as written) are already there, from before or earlier in
    /// `contacts`. A transaction per `IMPORT_ROWS_PER_TRANSACTION` rows, so a big import never
    /// holds the database's write lock for long: the hub's journal waits for it.
    pub async fn add_new_contacts(&self, contacts: &[Contact]) -> Result<Vec<Option<Contact>>, StoreError> {
        let mut added = Vec::with_capacity(contacts.len());
        for chunk in contacts.chunks(IMPORT_ROWS_PER_TRANSACTION) {
            self.add_new_contacts_at_once(chunk, &mut added).await?;
        }
        Ok(added)
    }

    async fn add_new_contacts_at_once(
        &self,
        contacts: &[Contact],
        added: &mut Vec<Option<Contact>>,
    ) -> Result<(), StoreError> {
        let mut transaction = self.pool.begin().await?;
        for contact in contacts {
            let normal = e164(&contact.number);
            // By the E.164 index when the number has that form (nearly always).
            let known: Option<i64> =
                match &normal {
                    Some(normal) => {
                        sqlx::query_scalar("SELECT id FROM contacts WHERE e164 = ? AND lower(name) = lower(?) LIMIT 1")
                            .bind(normal)
                            .bind(contact.name.trim())
                            .fetch_optional(&mut *transaction)
                            .await?
                    }
                    None => sqlx::query_scalar(
                        "SELECT id FROM contacts WHERE e164 IS NULL AND number = ? AND lower(name) = lower(?) LIMIT 1",
                    )
                    .bind(&contact.number)
                    .bind(contact.name.trim())
                    .fetch_optional(&mut *transaction)
                    .await?,
                };
            if known.is_some() {
                added.push(None);
                continue;
            }
            let id = sqlx::query("INSERT INTO contacts (name, number, e164, dialable, company) VALUES (?, ?, ?, ?, ?)")
                .bind(contact.name.trim())
                .bind(&contact.number)
                .bind(normal.as_deref())
                .bind(dialable(&contact.number))
                .bind(contact.company.as_deref())
                .execute(&mut *transaction)
                .await?
                .last_insert_rowid();
            added.push(Some(Contact { id, name: contact.name.trim().to_owned(), ..contact.clone() }));
        }
        transaction.commit().await?;
        Ok(())
    }

    /// Removes a contact; false when there was none with that id.
    pub async fn delete_contact(&self, id: i64) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM contacts WHERE id = ?").bind(id).execute(&self.pool).await?;
        Ok(done.rows_affected() > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_contact(name: &str, number: &str) -> Contact {
        Contact { id: 0, name: name.into(), number: number.into(), company: None }
    }

    #[tokio::test]
    async fn numbers_without_an_e164_form_are_looked_up_as_written_or_dialled() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("contacts.db")).await.unwrap();
        let contacts = [
            new_contact("Helpdesk", "1300 123 456"),
            new_contact("Reception", "201"),
            new_contact("Ada", "02 9999 0000"),
        ];
        let saved = store.save_contacts(&contacts).await.unwrap();
        assert_eq!(saved.len(), 3);
        let names = |found: Vec<Contact>| found.into_iter().map(|c| c.name).collect::<Vec<_>>();
        assert_eq!(names(store.contacts(Some("1300 123 456")).await.unwrap()), ["Helpdesk"]);
        // As caller ids carry it, unspaced, and written another way.
        assert_eq!(names(store.contacts(Some("1300123456")).await.unwrap()), ["Helpdesk"]);
        assert_eq!(names(store.contacts(Some("1300-123-456")).await.unwrap()), ["Helpdesk"]);
        assert_eq!(names(store.contacts(Some("201")).await.unwrap()), ["Reception"]);
        // As the provider sends it.
        assert_eq!(names(store.contacts(Some("+61 (0)2 9999 0000")).await.unwrap()), ["Ada"]);
        assert!(store.contacts(Some("202")).await.unwrap().is_empty());
        assert!(store.contacts(Some("anonymous")).await.unwrap().is_empty());
        assert_eq!(store.contacts(None).await.unwrap().len(), 3);
    }

    #[tokio::test]
    async fn a_big_import_finds_duplicates_across_its_transactions() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("import.db")).await.unwrap();
        let mut contacts: Vec<Contact> = (0..IMPORT_ROWS_PER_TRANSACTION + 100)
            .map(|i| new_contact(&format!("C{i}"), &format!("02 9999 {i:04}")))
            .collect();
        // The first row again, in the second transaction.
        contacts.push(new_contact("c0", "+61 2 9999 0000"));
        let added = store.add_new_contacts(&contacts).await.unwrap();
        assert_eq!(added.len(), contacts.len());
        assert_eq!(added.iter().filter(|added| added.is_some()).count(), IMPORT_ROWS_PER_TRANSACTION + 100);
        assert!(added.last().unwrap().is_none(), "the repeat of the first row is not added again");
    }

    #[tokio::test]
    async fn a_number_without_an_e164_form_is_looked_up_by_an_index() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("plan.db")).await.unwrap();
        let plan = store
            .query_plan(
                "SELECT id, name, number, company FROM contacts
                 WHERE dialable = '1300123456' AND e164 IS NULL ORDER BY name, id LIMIT 10",
            )
            .await;
        assert!(plan.iter().any(|step| step.contains("USING INDEX contacts_dialable")), "{plan:?}");
    }
}
