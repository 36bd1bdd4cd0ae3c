-- API key lifecycle: keys may expire, are listed (never their secret), revoked and rotated,
-- and every such action leaves an audit row. `revoked_at` exists since 0001.
--
-- `last_used_at` is written when a gateway reads the key from the database, which it does at
-- most once per key per ALTDATA_API_KEY_CACHE_TTL, so it is never more than that behind and
-- never costs a write per request. `rotated_from` links a rotated key to the one it replaced.
ALTER TABLE api_keys
    ADD COLUMN IF NOT EXISTS expires_at timestamptz,
    ADD COLUMN IF NOT EXISTS last_used_at timestamptz,
    ADD COLUMN IF NOT EXISTS rotated_from bigint REFERENCES api_keys (id);

-- Who created, revoked or rotated which key, when. Its own table rather than mapping_audit:
-- that one is the review tool's undoable decisions, and a key action is never undone.
CREATE TABLE IF NOT EXISTS api_key_audit (
    id bigserial PRIMARY KEY,
    key_id bigint NOT NULL REFERENCES api_keys (id),
    action text NOT NULL CHECK (action IN ('create', 'revoke', 'rotate')),
    actor text NOT NULL,
    detail jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS api_key_audit_key ON api_key_audit (key_id, id);
