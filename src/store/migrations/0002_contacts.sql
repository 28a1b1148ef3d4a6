-- The contact list: looked up by E.164 number for screen pops, dialled from the desk.
CREATE TABLE contacts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    number TEXT NOT NULL,
    e164 TEXT,
    company TEXT
);
CREATE INDEX contacts_e164 ON contacts (e164);
