-- Secrets Callboard generated for a provider (a webhook path secret when none is configured),
-- kept so the URLs registered with the provider stay valid across restarts.
CREATE TABLE provider_secrets (
    provider TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (provider, key)
);
