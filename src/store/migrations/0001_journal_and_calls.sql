-- Every event the hub applied, in the order it applied them; replayed on start. `seq` is the
-- delta that published it (one delta can carry several events).
CREATE TABLE journal (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    seq         INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    provider    TEXT    NOT NULL,
    event       TEXT    NOT NULL
);
CREATE INDEX journal_received_at ON journal (received_at);

-- The latest view of every call, for history and screen pops.
CREATE TABLE calls (
    id            TEXT    PRIMARY KEY,
    provider      TEXT    NOT NULL,
    started_at    INTEGER NOT NULL,
    ended_at      INTEGER,
    caller_number TEXT,
    call          TEXT    NOT NULL
);
CREATE INDEX calls_started_at ON calls (started_at);
CREATE INDEX calls_caller_number ON calls (caller_number);
