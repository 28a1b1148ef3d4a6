//! The contact list in SQLite.

use super::{Store, StoreError};
use crate::model::{e164, Contact};
use sqlx::Row;

/// The most contacts one listing returns.
pub const MAX_CONTACTS: u32 = 5_000;

fn contact(row: &sqlx::sqlite::SqliteRow) -> Contact {
    Contact { id: row.get(0), name: row.get(1), number: row.get(2), company: row.get(3) }
}

impl Store {
    /// Contacts by name, optionally only those whose number matches `number` (in E.164).
    pub async fn contacts(&self, number: Option<&str>) -> Result<Vec<Contact>, StoreError> {
        let normal = number.and_then(e164);
        if number.is_some() && normal.is_none() {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(
            "SELECT id, name, number, company FROM contacts WHERE (? IS NULL OR e164 = ?) ORDER BY name, id LIMIT ?",
        )
        .bind(normal.as_deref())
        .bind(normal.as_deref())
        .bind(i64::from(MAX_CONTACTS))
        .fetch_all(&self.pool)
        .await?;
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
                let done = sqlx::query("UPDATE contacts SET name = ?, number = ?, e164 = ?, company = ? WHERE id = ?")
                    .bind(&contact.name)
                    .bind(&contact.number)
                    .bind(normal.as_deref())
                    .bind(contact.company.as_deref())
                    .bind(contact.id)
                    .execute(&mut *transaction)
                    .await?;
                if done.rows_affected() == 0 {
                    continue;
                }
                contact.id
            } else {
                sqlx::query("INSERT INTO contacts (name, number, e164, company) VALUES (?, ?, ?, ?)")
                    .bind(&contact.name)
                    .bind(&contact.number)
                    .bind(normal.as_deref())
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

    /// Adds each contact the list does not have yet, in one transaction: `None` for one whose
    /// name (ignoring case) and number (in E.164, else as written) are already there, from
    /// before or earlier in `contacts`.
    pub async fn add_new_contacts(&self, contacts: &[Contact]) -> Result<Vec<Option<Contact>>, StoreError> {
        let mut transaction = self.pool.begin().await?;
        let mut added = Vec::with_capacity(contacts.len());
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
            let id = sqlx::query("INSERT INTO contacts (name, number, e164, company) VALUES (?, ?, ?, ?)")
                .bind(contact.name.trim())
                .bind(&contact.number)
                .bind(normal.as_deref())
                .bind(contact.company.as_deref())
                .execute(&mut *transaction)
                .await?
                .last_insert_rowid();
            added.push(Some(Contact { id, name: contact.name.trim().to_owned(), ..contact.clone() }));
        }
        transaction.commit().await?;
        Ok(added)
    }

    /// Removes a contact; false when there was none with that id.
    pub async fn delete_contact(&self, id: i64) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM contacts WHERE id = ?").bind(id).execute(&self.pool).await?;
        Ok(done.rows_affected() > 0)
    }
}
