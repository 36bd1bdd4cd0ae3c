-- Unattributed spend: a row whose brand is not known but whose category is (from its MCC and
-- category words, services/resolver/src/category.rs) counts in its category under one
-- "unattributed <category>" merchant per category, so category answers include every shop. It
-- is also held for review; assigning its group moves its spend from the unattributed merchant
-- to the brand (services/gateway/src/review/moved.rs).
--
-- The merchants' ids are fixed (altdata_domain::Category::unattributed_merchant_id): above the
-- catalogue and below the ids of merchants created in review. They are left out of merchant
-- lists and top movers (`unattributed`).
ALTER TABLE dim_merchants ADD COLUMN IF NOT EXISTS unattributed boolean NOT NULL DEFAULT false;

INSERT INTO dim_merchants (id, name, category, brand_id, unattributed) VALUES
    (999001, 'Unattributed coffee shops', 'coffee_shop', 'unattributed_coffee_shop', true),
    (999002, 'Unattributed fast food', 'fast_food', 'unattributed_fast_food', true),
    (999003, 'Unattributed restaurants', 'restaurant', 'unattributed_restaurant', true),
    (999004, 'Unattributed grocery', 'grocery', 'unattributed_grocery', true),
    (999005, 'Unattributed gas stations', 'gas_station', 'unattributed_gas_station', true),
    (999006, 'Unattributed rideshare', 'rideshare', 'unattributed_rideshare', true),
    (999007, 'Unattributed streaming', 'streaming', 'unattributed_streaming', true),
    (999008, 'Unattributed e-commerce', 'ecommerce', 'unattributed_ecommerce', true),
    (999009, 'Unattributed pharmacy', 'pharmacy', 'unattributed_pharmacy', true),
    (999010, 'Unattributed general merchandise', 'general_merchandise', 'unattributed_general_merchandise', true),
    (999011, 'Unattributed airlines', 'airline', 'unattributed_airline', true),
    (999012, 'Unattributed hotels', 'hotel', 'unattributed_hotel', true),
    (999013, 'Unattributed utilities', 'utility', 'unattributed_utility', true),
    (999014, 'Unattributed telecom', 'telecom', 'unattributed_telecom', true),
    (999015, 'Unattributed software', 'software', 'unattributed_software', true),
    (999016, 'Unattributed apparel', 'apparel', 'unattributed_apparel', true),
    (999017, 'Unattributed home improvement', 'home_improvement', 'unattributed_home_improvement', true),
    (999018, 'Unattributed entertainment', 'entertainment', 'unattributed_entertainment', true),
    (999019, 'Unattributed transit', 'transit', 'unattributed_transit', true),
    (999020, 'Unattributed other', 'other', 'unattributed_other', true)
ON CONFLICT (id) DO UPDATE SET name = excluded.name, category = excluded.category,
    brand_id = excluded.brand_id, unattributed = true;

-- The merchant a held row's spend counts under meanwhile: an unattributed merchant, or NULL
-- when the row is held only (neither brand nor category known).
ALTER TABLE unmapped_transactions ADD COLUMN IF NOT EXISTS counted_merchant_id bigint;

-- Rows read = published + unattributed + unmapped + rejected + duplicates.
ALTER TABLE ingest_files ADD COLUMN IF NOT EXISTS unattributed bigint NOT NULL DEFAULT 0;
