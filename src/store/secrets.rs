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

    /// The stored secret `key` of `provider`, if there is one.
    pub async fn stored_secret(&self, provider: &str, key: &str) -> Result<Option<String>, StoreError> {
        let value = sqlx::query_scalar("SELECT value FROM provider_secrets WHERE provider = ? AND key = ?")
            .bind(provider)
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(value)
    }

    /// Stores `value` as the secret `key` of `provider`, replacing what was there: for secrets
    /// the provider itself replaces (a rotated refresh token), where the newest must win.
    pub async fn replace_secret(&self, provider: &str, key: &str, value: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO provider_secrets (provider, key, value) VALUES (?, ?, ?)
             ON CONFLICT(provider, key) DO UPDATE SET value = excluded.value",
        )
        .bind(provider)
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
