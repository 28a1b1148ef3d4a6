//! Secrets Callboard made up itself, kept across restarts.

use super::{Store, StoreError};
use sqlx::Row;

impl Store {
    /// The stored secret `key` of `provider`, or `generated` stored now when there is none: the
    /// first writer wins, so two starts never end up with different secrets.
    pub async fn provider_secret(&self, provider: &str, key: &str, generated: String) -> Result<String, StoreError> {
        sqlx::query("INSERT OR IGNORE INTO provider_secrets (provider, key, value) VALUES (?, ?, ?)")
            .bind(provider)
            .bind(key)
            .bind(&generated)
            .execute(&self.pool)
            .await?;
        let row = sqlx::query("SELECT value FROM provider_secrets WHERE provider = ? AND key = ?")
            .bind(provider)
            .bind(key)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.get(0))
    }
}
