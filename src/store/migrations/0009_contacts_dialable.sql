-- A contact whose number has no E.164 form (a 1300 number, an extension) is found by its digits
-- however either side wrote them ("1300 123 456" saved, "1300123456" calling): each contact
-- keeps its number as a PBX dials it.
ALTER TABLE contacts ADD COLUMN dialable TEXT;
UPDATE contacts SET dialable = replace(replace(replace(replace(replace(replace(
    trim(number), ' ', ''), '-', ''), '.', ''), '(', ''), ')', ''), char(160), '');
CREATE INDEX contacts_dialable ON contacts (dialable, e164);
