-- The CSV import's duplicate check for a number that does not read as E.164
-- (`e164 IS NULL AND number = ?`) finds it here instead of reading every contact.
CREATE INDEX contacts_number ON contacts (number, e164);
