-- The extensions each call reached, so an agent's desk can list its own recent calls without
-- reading every stored call. Filled for the calls stored before this table from their legs.
CREATE TABLE call_extensions (
    extension TEXT NOT NULL,
    call_id   TEXT NOT NULL,
    PRIMARY KEY (extension, call_id)
) WITHOUT ROWID;
INSERT OR IGNORE INTO call_extensions (extension, call_id)
    SELECT json_extract(leg.value, '$.extension'), calls.id
    FROM calls, json_each(calls.call, '$.legs') AS leg
    WHERE json_extract(leg.value, '$.extension') IS NOT NULL;
