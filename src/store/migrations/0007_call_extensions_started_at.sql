-- An agent's recent calls are read newest first from an index, not by sorting every call the
-- extension ever took: each row keeps its call's start.
ALTER TABLE call_extensions ADD COLUMN started_at INTEGER NOT NULL DEFAULT 0;
UPDATE call_extensions
    SET started_at = COALESCE((SELECT started_at FROM calls WHERE calls.id = call_extensions.call_id), 0);
CREATE INDEX call_extensions_newest ON call_extensions (extension, started_at);
