-- Where each provider's feed resumes after a restart (Noojee's lastSequenceNumber): the `seq` of
-- its latest journaled event, kept apart from the journal so that pruning the journal never loses
-- it and a start reads one row instead of searching the journal.
CREATE TABLE provider_cursors (
    provider TEXT    PRIMARY KEY,
    seq      INTEGER NOT NULL
);
INSERT INTO provider_cursors (provider, seq)
    SELECT provider, CAST(json_extract(event, '$.seq') AS INTEGER) FROM journal
    WHERE id IN (SELECT MAX(id) FROM journal WHERE json_extract(event, '$.seq') IS NOT NULL GROUP BY provider);
