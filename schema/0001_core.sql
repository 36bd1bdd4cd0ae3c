-- Core tables: the merchant dimension, resolution (aliases, rules, review queue, audit),
-- ingest bookkeeping, aggregator offsets and the transactional outbox.
CREATE EXTENSION IF NOT EXISTS hll;

CREATE TABLE IF NOT EXISTS categories (
    category text PRIMARY KEY,
    label text NOT NULL
);
INSERT INTO categories (category, label) VALUES
    ('coffee_shop', 'Coffee shops'), ('fast_food', 'Fast food'), ('restaurant', 'Restaurants'),
    ('grocery', 'Grocery'), ('gas_station', 'Gas stations'), ('rideshare', 'Rideshare'),
    ('streaming', 'Streaming'), ('ecommerce', 'E-commerce'), ('pharmacy', 'Pharmacy'),
    ('general_merchandise', 'General merchandise'), ('airline', 'Airlines'), ('hotel', 'Hotels'),
    ('utility', 'Utilities'), ('telecom', 'Telecom'), ('software', 'Software'),
    ('apparel', 'Apparel'), ('home_improvement', 'Home improvement'),
    ('entertainment', 'Entertainment'), ('transit', 'Transit'), ('other', 'Other')
ON CONFLICT (category) DO NOTHING;

-- Catalogue merchants keep the ids of data/merchants.csv; merchants created in the review
-- tool take ids from the sequence, which starts well above the catalogue.
CREATE SEQUENCE IF NOT EXISTS dim_merchants_id_seq START 1000000;
CREATE TABLE IF NOT EXISTS dim_merchants (
    id bigint PRIMARY KEY DEFAULT nextval('dim_merchants_id_seq'),
    name text NOT NULL,
    category text NOT NULL REFERENCES categories (category),
    ticker_symbol text,
    brand_id text UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS dim_merchants_category ON dim_merchants (category);
CREATE INDEX IF NOT EXISTS dim_merchants_lower_name ON dim_merchants (lower(name) text_pattern_ops);

-- Exact normalised descriptor -> merchant, written by people (review) or seeded.
CREATE TABLE IF NOT EXISTS merchant_aliases (
    alias text PRIMARY KEY,
    merchant_id bigint NOT NULL REFERENCES dim_merchants (id),
    source text NOT NULL DEFAULT 'review',
    created_by text NOT NULL DEFAULT 'system',
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Prefix or regex over the normalised descriptor -> merchant.
CREATE TABLE IF NOT EXISTS merchant_rules (
    id bigserial PRIMARY KEY,
    kind text NOT NULL CHECK (kind IN ('prefix', 'regex')),
    pattern text NOT NULL,
    merchant_id bigint NOT NULL REFERENCES dim_merchants (id),
    priority integer NOT NULL DEFAULT 100,
    active boolean NOT NULL DEFAULT true,
    created_by text NOT NULL DEFAULT 'system',
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (kind, pattern)
);

-- Who mapped what, when: every review decision and every mapping change.
CREATE TABLE IF NOT EXISTS mapping_audit (
    id bigserial PRIMARY KEY,
    actor text NOT NULL,
    action text NOT NULL,
    normalized_descriptor text,
    merchant_id bigint,
    detail jsonb NOT NULL DEFAULT '{}',
    undone_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS ingest_files (
    id bigserial PRIMARY KEY,
    content_sha256 text NOT NULL UNIQUE,
    path text NOT NULL,
    provider text NOT NULL,
    size_bytes bigint NOT NULL,
    status text NOT NULL CHECK (status IN ('processing', 'done', 'failed')),
    -- Rows before this line have been published (or recorded) for sure.
    checkpoint_line bigint NOT NULL DEFAULT 0,
    rows_read bigint NOT NULL DEFAULT 0,
    published bigint NOT NULL DEFAULT 0,
    unmapped bigint NOT NULL DEFAULT 0,
    rejected bigint NOT NULL DEFAULT 0,
    duplicates bigint NOT NULL DEFAULT 0,
    lossy_utf8 boolean NOT NULL DEFAULT false,
    error text,
    started_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);

CREATE TABLE IF NOT EXISTS ingest_rejects (
    id bigserial PRIMARY KEY,
    file_id bigint REFERENCES ingest_files (id),
    file text NOT NULL,
    line bigint NOT NULL,
    reason text NOT NULL,
    -- The raw row, truncated, with the card id masked.
    raw_row text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (file_id, line)
);

-- Transactions waiting for a person: everything needed to replay them once assigned.
CREATE TABLE IF NOT EXISTS unmapped_transactions (
    id bigserial PRIMARY KEY,
    txn_id text NOT NULL,
    provider text NOT NULL,
    raw_descriptor text NOT NULL,
    normalized_descriptor text NOT NULL,
    amount_cents bigint NOT NULL,
    metric_date date NOT NULL,
    region text NOT NULL,
    mcc text NOT NULL DEFAULT '',
    customer_key bigint NOT NULL,
    candidates jsonb NOT NULL DEFAULT '[]',
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'assigned', 'ignored')),
    merchant_id bigint REFERENCES dim_merchants (id),
    resolved_by text,
    resolved_at timestamptz,
    file_id bigint REFERENCES ingest_files (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (provider, txn_id)
);
CREATE INDEX IF NOT EXISTS unmapped_pending ON unmapped_transactions (normalized_descriptor)
    WHERE status = 'pending';

-- One row per shard: the last applied stream sequence and the ownership epoch (fence).
CREATE TABLE IF NOT EXISTS shard_offsets (
    shard integer PRIMARY KEY,
    stream_seq bigint NOT NULL DEFAULT 0,
    epoch bigint NOT NULL DEFAULT 0,
    owner text,
    applied_events bigint NOT NULL DEFAULT 0,
    last_commit_at timestamptz
);

-- Messages written in the same transaction as the change they describe, published after.
CREATE TABLE IF NOT EXISTS outbox (
    id bigserial PRIMARY KEY,
    kind text NOT NULL CHECK (kind IN ('cache_invalidation', 'aggregate_updates')),
    payload bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (id) WHERE published_at IS NULL;

-- API keys, stored as SHA-256 of the key; the key itself is shown once.
CREATE TABLE IF NOT EXISTS api_keys (
    id bigserial PRIMARY KEY,
    key_sha256 text NOT NULL UNIQUE,
    key_prefix text NOT NULL,
    role text NOT NULL CHECK (role IN ('analyst', 'admin')),
    name text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
