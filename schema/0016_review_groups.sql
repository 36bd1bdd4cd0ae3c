-- The review queue's groups: pending held rows by normalised descriptor, with what ranking and
-- the two parts of the queue need. One place for both the gateway's queue and the bench.
--
-- A group needs a person when its spend counts in no category (the resolver could tell
-- neither brand nor category), or when a brand is suspected: a candidate's whole name lines up
-- from the descriptor's first word with a score of at least 0.5 (`name_at_start`, written by
-- ingest with each candidate; a row written before it had the flag counts as suspected at that
-- score), or any candidate reaches the resolver's automatic threshold (0.9) without being
-- decided (two merchants of one name). Every other group is a local shop: its spend already
-- counts in its category under the unattributed merchant, no brand is in sight, and a person
-- naming it would change no category answer. Local shops stay held and can be assigned like
-- any group; they are listed apart so the part that needs a person stays short.
CREATE OR REPLACE VIEW review_groups AS
SELECT *, brand_suspected OR NOT counted AS needs_person
FROM (
    SELECT normalized_descriptor,
           count(*) AS transactions,
           sum(abs(amount_cents))::bigint AS at_stake,
           sum(amount_cents)::bigint AS net,
           min(metric_date) AS first_date,
           max(metric_date) AS last_date,
           mode() WITHIN GROUP (ORDER BY counted_merchant_id)
               FILTER (WHERE counted_merchant_id IS NOT NULL) AS counted_merchant,
           coalesce(sum(amount_cents) FILTER (WHERE counted_merchant_id IS NOT NULL), 0)::bigint
               AS counted_net,
           bool_or(counted_merchant_id IS NOT NULL) AS counted,
           bool_or(candidates @? '$[*] ? (@.score >= 0.9 || (@.score >= 0.5
                   && (!exists(@.name_at_start) || @.name_at_start == true)))') AS brand_suspected
    FROM unmapped_transactions
    WHERE status = 'pending'
    GROUP BY normalized_descriptor
) groups;
