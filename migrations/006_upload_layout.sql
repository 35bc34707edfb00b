-- A session's later requests continue its chunking where the previous one
-- stopped (the last chunk is cut again with the new bytes). For tensor files
-- they also need the layout read from the header at the start of the upload:
-- forced cuts at tensor boundaries and the codec hints. JSON, as found.
ALTER TABLE uploads ADD COLUMN layout TEXT;
