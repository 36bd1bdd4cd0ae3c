-- The identity record: every accepted row, by (provider, txn_id), with a hash of its content
-- and what it contributed, kept for the restatement horizon (ALTDATA_RESTATEMENT_DAYS,
-- default 400 days; older rows are rejected at ingest and purged here). Ingest consults it
-- before publishing: the same identity with the same content is a duplicate however late it
-- comes; with different content a correction (the old contribution is retracted, the new one
-- applied); and a file of a provider that restates whole days retracts the rows of those days
-- it no longer carries. Written in the same transaction as the file's checkpoint, so a resumed
-- file classifies its rows exactly as before.
--
-- One table keyed by (provider, txn_id), not partitioned by month: a lookup knows the
-- identity but not the month an earlier version was posted in, and probing every month's
-- partition would cost one index descent per partition per row. Retention deletes by
-- `metric_date` (BRIN: rows arrive roughly in date order).
CREATE TABLE IF NOT EXISTS txn_identity (
    provider text NOT NULL,
    txn_id text NOT NULL,
    content_hash bigint NOT NULL,
    -- What the row's version contributes: the merchant its event counted under (a brand or an
    -- unattributed merchant), NULL when it is held for review only.
    merchant_id bigint,
    region text NOT NULL,
    metric_date date NOT NULL,
    amount_cents bigint NOT NULL,
    customer_key bigint NOT NULL,
    -- Also held in unmapped_transactions (review may have moved its spend since: the held
    -- row says where it counts now).
    held boolean NOT NULL,
    -- The last file that delivered this row (any version): a restating file retracts the rows
    -- of its day that it did not deliver.
    file_id bigint NOT NULL,
    retracted_at timestamptz,
    PRIMARY KEY (provider, txn_id)
);
CREATE INDEX IF NOT EXISTS txn_identity_date ON txn_identity USING brin (metric_date);
CREATE INDEX IF NOT EXISTS txn_identity_day ON txn_identity (provider, metric_date)
    WHERE retracted_at IS NULL;

-- Why a number changed: every delta a correction, a retraction, a restated day's late row or
-- a review decision moved into a published aggregate, per merchant × region × day.
CREATE TABLE IF NOT EXISTS aggregate_changes (
    id bigserial PRIMARY KEY,
    cause text NOT NULL CHECK (cause IN ('correction', 'retraction', 'restatement', 'review')),
    provider text,
    file_id bigint,
    file text,
    merchant_id bigint NOT NULL,
    region text NOT NULL,
    metric_date date NOT NULL,
    rows_changed bigint NOT NULL,
    delta_spend_cents bigint NOT NULL,
    delta_transactions bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS aggregate_changes_merchant ON aggregate_changes (merchant_id, metric_date);
CREATE INDEX IF NOT EXISTS aggregate_changes_created ON aggregate_changes (created_at);

-- Held rows can be superseded by a correction that resolved automatically, or retracted by a
-- restated day.
ALTER TABLE unmapped_transactions DROP CONSTRAINT IF EXISTS unmapped_transactions_status_check;
ALTER TABLE unmapped_transactions ADD CONSTRAINT unmapped_transactions_status_check
    CHECK (status IN ('pending', 'assigned', 'ignored', 'superseded', 'retracted'));

-- The conservation line: read = published + unattributed + unmapped + rejected + duplicates
-- + corrected; retracted counts rows of restated days the file no longer carries.
ALTER TABLE ingest_files ADD COLUMN IF NOT EXISTS corrected bigint NOT NULL DEFAULT 0;
ALTER TABLE ingest_files ADD COLUMN IF NOT EXISTS retracted bigint NOT NULL DEFAULT 0;
