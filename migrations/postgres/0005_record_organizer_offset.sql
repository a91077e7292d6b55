-- Where `organizer_v2` starts in the stored document: the byte offset of its member name, 0 when
-- the record has no organizer_v2, NULL for rows stored before this column. A read that serves the
-- whole record must put `organizer_v2@odata.context` just before that member; knowing where it
-- is spares splitting the document into its members on every read.
ALTER TABLE call_record ADD COLUMN organizer_at BIGINT;
