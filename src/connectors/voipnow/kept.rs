//! The newest UnifiedAPI refresh token, kept in the store so that a restart does not go back to
//! the configured one.
//!
//! VoipNow may rotate refresh tokens: a refresh can answer with a new refresh token and end the
//! one sent. Kept only in memory, the configured token would be sent again after a restart and
//! refused, and call control and the Call Events registration would stop until an admin
//! authorised the app anew.
//!
//! It is kept as one of the provider's secrets under a key named after the configured refresh
//! token's fingerprint: when an admin configures a new one (a new authorisation), nothing is kept
//! under its key yet and the configured token is used, never a stale kept one.

use crate::store::Store;

/// The key prefix of the kept refresh token among the provider's secrets.
const KEY: &str = "uapi_refresh_token";

/// Where the newest refresh token of one VoipNow provider is kept.
pub struct KeptRefresh {
    store: Store,
    provider: String,
    key: String,
}

impl KeptRefresh {
    /// The kept refresh token of provider `provider` that descends from the `configured` one.
    pub fn new(store: Store, provider: &str, configured: &str) -> Self {
        Self { store, provider: provider.to_owned(), key: format!("{KEY}.{}", fingerprint(configured)) }
    }

    /// The newest refresh token kept since the configured one, if any; the words of an error
    /// name no token.
    pub async fn newest(&self) -> Result<Option<String>, String> {
        self.store
            .stored_secret(&self.provider, &self.key)
            .await
            .map_err(|error| format!("reading the kept refresh token: {error}"))
    }

    /// Keeps `token` as the newest refresh token, so the next start uses it.
    pub async fn keep(&self, token: &str) -> Result<(), String> {
        self.store
            .replace_secret(&self.provider, &self.key, token)
            .await
            .map_err(|error| format!("keeping the new refresh token: {error}"))
    }
}

/// Tells configured refresh tokens apart in key names (64-bit FNV-1a, stable across builds, as
/// hex). Not a protection of the token: the store holds the kept tokens themselves anyway.
fn fingerprint(token: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in token.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_fixed_and_tell_tokens_apart() {
        // FNV-1a's published value for the empty input: the same in every build.
        assert_eq!(fingerprint(""), "cbf29ce484222325");
        assert_ne!(fingerprint("first-refresh"), fingerprint("second-refresh"));
        assert_eq!(fingerprint("first-refresh").len(), 16);
    }

    #[tokio::test]
    async fn each_start_reads_the_newest_token_kept_since_the_configured_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("kept.db")).await.unwrap();
        let first = KeptRefresh::new(store.clone(), "vn", "configured");
        assert_eq!(first.newest().await.unwrap(), None, "nothing kept yet");
        first.keep("rotated-1").await.unwrap();
        first.keep("rotated-2").await.unwrap();

        // A restart: the newest, not the configured one nor an older one.
        let second = KeptRefresh::new(store.clone(), "vn", "configured");
        assert_eq!(second.newest().await.unwrap().as_deref(), Some("rotated-2"));
        second.keep("rotated-3").await.unwrap();
        // Restarts that refresh nothing leave the newest where it was.
        for _ in 0..2 {
            let idle = KeptRefresh::new(store.clone(), "vn", "configured");
            assert_eq!(idle.newest().await.unwrap().as_deref(), Some("rotated-3"));
        }
        // Kept without reading first (the read failed at the start): still after every key.
        let writer = KeptRefresh::new(store.clone(), "vn", "configured");
        writer.keep("rotated-4").await.unwrap();
        let third = KeptRefresh::new(store.clone(), "vn", "configured");
        assert_eq!(third.newest().await.unwrap().as_deref(), Some("rotated-4"));

        // A new configured token (a new authorisation) wins over the tokens kept for the old
        // one; another provider's are its own.
        let renewed = KeptRefresh::new(store.clone(), "vn", "configured-anew");
        assert_eq!(renewed.newest().await.unwrap(), None);
        let other = KeptRefresh::new(store, "vn2", "configured");
        assert_eq!(other.newest().await.unwrap(), None);
    }
}
