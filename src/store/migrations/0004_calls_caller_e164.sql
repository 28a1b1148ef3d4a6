-- History search by number finds a caller however the number was written (0299990000,
-- +61 2 9999 0000): each call also keeps its caller's number in E.164 when it has one.
-- Calls stored before this column match by the number exactly as written.
ALTER TABLE calls ADD COLUMN caller_e164 TEXT;
CREATE INDEX calls_caller_e164 ON calls (caller_e164);
