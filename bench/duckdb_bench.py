"""DuckDB over the raw generated CSV files, answering the benchmark's four questions.

Called by the bench binary (`altdata-bench`) with one argument: a JSON file of
  files, transactions, merchants, as_of, start, category, state, ts_category, brand, repeats
(runs of the canonical question), repeats_other (runs of each other question).
The raw rows carry no merchant, so DuckDB gets the generator's `_truth/transactions.csv`
(provider, txn_id -> brand_id) and the catalogue (brand_id -> category). Duplicate rows share
a txn_id and are counted once. Prints one JSON object: the DuckDB version and, per question,
the wall time of each run (a fresh in-memory connection each time) and the answer.
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
    truth = args["transactions"].replace("'", "''")
    merchants = args["merchants"].replace("'", "''")
    as_of = args["as_of"]
    start = args["start"]
    base = f"""
        raw AS (
            SELECT txn_id, card_id,
                   try_cast(substr(posted_at, 1, 10) AS DATE) AS d,
                   try_cast(amount AS DECIMAL(18, 2)) AS amount,
                   upper(state) AS state
            FROM read_csv({files}, header = true, all_varchar = true, ignore_errors = true)
            WHERE currency = 'USD'
        ),
        truth AS (
            SELECT txn_id, brand_id
            FROM read_csv('{truth}', header = true, all_varchar = true)
            WHERE brand_id IS NOT NULL AND brand_id <> ''
        ),
        cat AS (
            SELECT brand_id, category FROM read_csv('{merchants}', header = true, all_varchar = true)
        ),
        tx AS (
            SELECT r.txn_id, any_value(r.card_id) AS card_id, any_value(r.d) AS d,
                   any_value(r.amount) AS amount, any_value(r.state) AS state,
                   any_value(t.brand_id) AS brand_id, any_value(c.category) AS category
            FROM raw r JOIN truth t USING (txn_id) JOIN cat c USING (brand_id)
            WHERE {{filter}}
            GROUP BY r.txn_id
        )"""
    questions = {
        "canonical": (
            f"category = '{args['category']}' AND state = '{args['state']}' "
            f"AND d > DATE '{as_of}' - 14 AND d <= DATE '{as_of}'",
            f"""SELECT sum(amount) FILTER (WHERE d > DATE '{as_of}' - 7) AS current_spend,
                       sum(amount) FILTER (WHERE d <= DATE '{as_of}' - 7) AS previous_spend
                FROM tx""",
        ),
        "weekly_category": (
            f"category = '{args['ts_category']}' AND d >= DATE '{start}' AND d <= DATE '{as_of}'",
            """SELECT date_trunc('week', d) AS week, sum(amount) AS spend
               FROM tx GROUP BY 1 ORDER BY 1""",
        ),
        "top_movers": (
            f"category = '{args['category']}' AND state = '{args['state']}' "
            f"AND d > DATE '{as_of}' - 14 AND d <= DATE '{as_of}'",
            f"""SELECT brand_id,
                       sum(amount) FILTER (WHERE d > DATE '{as_of}' - 7) AS cur,
                       sum(amount) FILTER (WHERE d <= DATE '{as_of}' - 7) AS prev,
                       (cur - prev) / prev AS growth
                FROM tx GROUP BY brand_id
                HAVING count(DISTINCT card_id) FILTER (WHERE d > DATE '{as_of}' - 7) >= 10
                   AND prev > 0
                ORDER BY growth DESC LIMIT 10""",
        ),
        "merchant_daily": (
            f"brand_id = '{args['brand']}' AND d >= DATE '{start}' AND d <= DATE '{as_of}'",
            """SELECT d, sum(amount) AS spend FROM tx GROUP BY d ORDER BY d""",
        ),
    }
    out = {"version": duckdb.__version__, "queries": {}}
    for name, (where, select) in questions.items():
        sql = "WITH " + base.replace("{filter}", where) + "\n" + select
        seconds = []
        answer = None
        repeats = args.get("repeats", 3) if name == "canonical" else args.get("repeats_other", 1)
        for _ in range(int(repeats)):
            con = duckdb.connect()
            started = time.perf_counter()
            rows = con.execute(sql).fetchall()
            seconds.append(time.perf_counter() - started)
            con.close()
            answer = rows
        out["queries"][name] = {
            "seconds": seconds,
            "rows": len(answer or []),
            "answer": json.loads(json.dumps(answer[:3] if answer else [], default=str)),
        }
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
