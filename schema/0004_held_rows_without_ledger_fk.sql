-- Held rows without a foreign key to the file ledger.
--
-- `unmapped_transactions.file_id` and `ingest_rejects.file_id` name the `ingest_files` row ingest
-- claimed before it read the file (services/ingest/src/store.rs), and the ledger is append-only:
-- nothing deletes a file's row. The foreign key could therefore never fire, yet PostgreSQL ran
-- its check (a lookup with a row lock on `ingest_files`) for every row inserted: ~3.5 µs of the
-- ~20 µs a held row costs, 0.5 CPU s per million ingested rows on the benchmark file. The
-- columns, their values and the index-backed joins stay as they were.
ALTER TABLE unmapped_transactions DROP CONSTRAINT IF EXISTS unmapped_transactions_file_id_fkey;
ALTER TABLE ingest_rejects DROP CONSTRAINT IF EXISTS ingest_rejects_file_id_fkey;
