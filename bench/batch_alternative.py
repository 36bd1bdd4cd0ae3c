"""The batch alternative: DuckDB computing the daily merchant x state aggregates from the
same provider files, given the descriptor resolution our run made (exported from its identity
record as txn_id -> merchant_id), as a user might instead of streaming.

Called by the bench binary with one argument: a JSON file of files (CSV paths) and mapping (a
CSV of txn_id, merchant_id). Rows repeated in the files (same txn_id) count once, as in the
pipeline. Prints one JSON object: DuckDB's version, the wall seconds from a fresh connection
to the aggregate table built, and how many cells it holds.
"""

import json
import sys
import time

import duckdb


def sql_list(paths):
    return "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"


def main():
    with open(sys.argv[1]) as handle:
        args = json.load(handle)
    files = sql_list(args["files"])
    mapping = args["mapping"].replace("'", "''")
    sql = f"""
        CREATE TABLE daily AS
        WITH raw AS (
            SELECT txn_id, any_value(card_id) AS card_id,
                   any_value(try_cast(substr(posted_at, 1, 10) AS DATE)) AS d,
                   any_value(CAST(round(try_cast(amount AS DECIMAL(18, 2)) * 100) AS BIGINT)) AS cents,
                   any_value(upper(state)) AS state
            FROM read_csv({files}, header = true, all_varchar = true, ignore_errors = true)
            WHERE currency = 'USD'
            GROUP BY txn_id
        ),
        mapping AS (
            SELECT txn_id, CAST(merchant_id AS BIGINT) AS merchant_id
            FROM read_csv('{mapping}', header = true, all_varchar = true)
        )
        SELECT m.merchant_id, r.state AS region, r.d AS metric_date,
               sum(r.cents) FILTER (WHERE r.cents >= 0) AS total_spend_cents,
               count(*) FILTER (WHERE r.cents >= 0) AS transaction_count,
               sum(-r.cents) FILTER (WHERE r.cents < 0) AS refund_cents,
               count(*) FILTER (WHERE r.cents < 0) AS refund_count,
               approx_count_distinct(r.card_id) AS customers
        FROM raw r JOIN mapping m USING (txn_id)
        GROUP BY ALL
    """
    con = duckdb.connect()
    started = time.perf_counter()
    con.execute(sql)
    seconds = time.perf_counter() - started
    cells = con.execute("SELECT count(*) FROM daily").fetchone()[0]
    con.close()
    json.dump({"version": duckdb.__version__, "seconds": seconds, "cells": cells}, sys.stdout)


if __name__ == "__main__":
    main()
