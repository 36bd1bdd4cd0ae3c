#!/usr/bin/env python3
"""Build data/companies.csv: the listed parents of catalogue brands, checked against open data.

Usage:
    python3 scripts/companies.py --nasdaq NASDAQ_CSV --other OTHER_CSV --sp500 SP500_CSV \
        [--out data/companies.csv]

The three inputs are files of public GitHub repositories published under the Open Data
Commons Public Domain Dedication and License (PDDL 1.0), at the commits named in SOURCES:

  --nasdaq  datasets/nasdaq-listings        data/nasdaq-listed-symbols.csv
            (NASDAQ Trader's symbol directory, nasdaqlisted.txt: every Nasdaq-listed symbol)
  --other   datasets/nyse-other-listings    data/other-listed.csv
            (the same directory's otherlisted.txt: symbols of NYSE, NYSE American, NYSE Arca,
            Cboe BZX and IEX, with the exchange as a one-letter code)
  --sp500   datasets/s-and-p-500-companies  data/constituents.csv
            (S&P 500 members from Wikipedia's list: symbol, security, SEC CIK)

What comes from where, per row (the columns listing_source, cik_source, calendar_source):

  * symbol and exchange: the symbol must be in one of the two listing files; the exchange is
    the file's (Nasdaq) or the code's (N = NYSE, ...). A symbol in neither is an error: the
    row is not written.
  * company: the listing file's company name, with the security's " Common Stock" removed.
  * cik: the S&P 500 file's CIK when the company is a member; empty otherwise.
  * the fiscal calendar (fiscal_year_end_month .. year_named_by): CALENDARS below, compiled
    from memory of the companies' 10-K filings. No open data set reachable here carries a
    fiscal year end (SEC EDGAR's submissions data has it as `fiscalYearEnd`, but no package
    or public repository found ships a snapshot of it for these companies), so every
    calendar is marked calendar_source=unverified: check it against the company's latest
    10-K before relying on it.

Deterministic: the same inputs give the same bytes (rows in CALENDARS order; each input's
SHA-256 is written into the header). Only the Python 3.11 standard library is used.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import sys

# The inputs, as published (repository, path, commit, licence). Regenerating from other
# commits works; update these lines with them.
SOURCES = {
    "nasdaq": (
        "https://github.com/datasets/nasdaq-listings",
        "data/nasdaq-listed-symbols.csv",
        "31d3809cc090d5a535ecc3db2b26904cbb2ac84d",
        "ODC-PDDL-1.0 (data: NASDAQ Trader symbol directory, nasdaqlisted.txt)",
    ),
    "other": (
        "https://github.com/datasets/nyse-other-listings",
        "data/other-listed.csv",
        "e08f184e20a73d596f9288e0bf28bd09aa577a48",
        "ODC-PDDL-1.0 (data: NASDAQ Trader symbol directory, otherlisted.txt)",
    ),
    "sp500": (
        "https://github.com/datasets/s-and-p-500-companies",
        "data/constituents.csv",
        "56509dd80619e4d8e1410c2260d68ddd3eab6068",
        "ODC-PDDL-1.0 (data: Wikipedia, List of S&P 500 companies)",
    ),
}

# otherlisted.txt's exchange codes.
OTHER_EXCHANGES = {
    "A": "NYSE American",
    "N": "NYSE",
    "P": "NYSE Arca",
    "Z": "Cboe BZX",
    "V": "IEX",
}

# symbol: (fiscal_year_end_month, calendar, year_end_weekday, year_end_rule, quarter_weeks,
#          year_named_by). UNVERIFIED: from memory of 10-K filings (see the docstring).
CALENDARS = {
    "SBUX": (9, "weeks", "sun", "nearest", "13-13-13-13", "end"),
    "MCD": (12, "month", "", "", "", "end"),
    "CMG": (12, "month", "", "", "", "end"),
    "AMZN": (12, "month", "", "", "", "end"),
    "COST": (8, "weeks", "sun", "nearest", "12-12-12-16", "end"),
    "HD": (1, "weeks", "sun", "nearest", "13-13-13-13", "start"),
    "LOW": (1, "weeks", "fri", "nearest", "13-13-13-13", "start"),
    "TGT": (1, "weeks", "sat", "nearest", "13-13-13-13", "start"),
    "KR": (1, "weeks", "sat", "nearest", "16-12-12-12", "start"),
    "TJX": (1, "weeks", "sat", "nearest", "13-13-13-13", "end"),
    "DRI": (5, "weeks", "sun", "last", "13-13-13-13", "end"),
    "NKE": (5, "month", "", "", "", "end"),
    "MSFT": (6, "month", "", "", "", "end"),
    "NFLX": (12, "month", "", "", "", "end"),
    "UBER": (12, "month", "", "", "", "end"),
    "LYFT": (12, "month", "", "", "", "end"),
    "ABNB": (12, "month", "", "", "", "end"),
    "BKNG": (12, "month", "", "", "", "end"),
    "EXPE": (12, "month", "", "", "", "end"),
    "DAL": (12, "month", "", "", "", "end"),
    "UAL": (12, "month", "", "", "", "end"),
    "AAL": (12, "month", "", "", "", "end"),
    "LUV": (12, "month", "", "", "", "end"),
    "MAR": (12, "month", "", "", "", "end"),
    "HLT": (12, "month", "", "", "", "end"),
    "CVS": (12, "month", "", "", "", "end"),
    "T": (12, "month", "", "", "", "end"),
    "VZ": (12, "month", "", "", "", "end"),
    "TMUS": (12, "month", "", "", "", "end"),
    "CMCSA": (12, "month", "", "", "", "end"),
    "XOM": (12, "month", "", "", "", "end"),
    "CVX": (12, "month", "", "", "", "end"),
    "EBAY": (12, "month", "", "", "", "end"),
    "ETSY": (12, "month", "", "", "", "end"),
    "GOOGL": (12, "month", "", "", "", "end"),
    "META": (12, "month", "", "", "", "end"),
}

COLUMNS = [
    "symbol", "exchange", "company", "fiscal_year_end_month", "calendar", "year_end_weekday",
    "year_end_rule", "quarter_weeks", "year_named_by", "cik", "listing_source", "cik_source",
    "calendar_source",
]

HEADER = """\
# Listed parents of catalogue brands (data/merchants.csv, ticker_symbol) and their fiscal calendars.
# Generated by scripts/companies.py from open data (data/README.md, "Listed companies"); do not
# edit by hand.
#
# Sources (each Open Data Commons PDDL 1.0, public domain dedication):
{sources}
#
# Per row: listing_source says which listing file confirms the symbol and the exchange
# (nasdaqlisted or otherlisted); cik_source is sp500 when the CIK comes from the S&P 500 file
# (empty when the company is not a member); calendar_source is `unverified` for every row:
# the fiscal calendar was compiled from memory of 10-K filings and no open source reachable
# here confirms it (check the company's latest 10-K before relying on it).
#
# calendar: month (quarters are calendar months, the year ends on the last day of
#   fiscal_year_end_month) or weeks (a 52/53-week year ending on year_end_weekday, either the
#   one nearest the last day of fiscal_year_end_month (nearest) or the last one in it (last);
#   quarters of quarter_weeks weeks, the 53rd week in the fourth quarter).
# year_named_by: end (FY2025 ends in 2025) or start (FY2024 ends early in 2025: January year-ends).
"""


def read_csv(path: str) -> tuple[list[dict[str, str]], str]:
    """Rows of a CSV file and the file's SHA-256."""
    with open(path, "rb") as handle:
        data = handle.read()
    text = data.decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text))), hashlib.sha256(data).hexdigest()


def company_name(name: str) -> str:
    name = " ".join(name.split())
    for suffix in (" Common Stock", " Common Shares"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return name.strip()


def build(nasdaq_path: str, other_path: str, sp500_path: str) -> tuple[str, int, list[str]]:
    """The file's text, its row count, and the symbols left out (in neither listing)."""
    nasdaq_rows, nasdaq_sha = read_csv(nasdaq_path)
    other_rows, other_sha = read_csv(other_path)
    sp500_rows, sp500_sha = read_csv(sp500_path)
    nasdaq = {
        r["Symbol"]: r for r in nasdaq_rows if r.get("Test Issue", "N") == "N" and r.get("Symbol")
    }
    other = {
        r["ACT Symbol"]: r
        for r in other_rows
        if r.get("Test Issue", "N") == "N" and r.get("ACT Symbol")
    }
    sp500 = {r["Symbol"]: r for r in sp500_rows if r.get("Symbol")}

    sources = []
    for key, sha in (("nasdaq", nasdaq_sha), ("other", other_sha), ("sp500", sp500_sha)):
        url, path, commit, licence = SOURCES[key]
        sources.append(f"#   {url}/blob/{commit}/{path}\n#     {licence}; sha256 {sha}")

    out = io.StringIO()
    out.write(HEADER.format(sources="\n".join(sources)))
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    missing = []
    written = 0
    for symbol, calendar in CALENDARS.items():
        if symbol in nasdaq:
            exchange, name, listing = "NASDAQ", nasdaq[symbol]["Company Name"], "nasdaqlisted"
        elif symbol in other and other[symbol].get("Exchange") in OTHER_EXCHANGES:
            row = other[symbol]
            exchange, name, listing = OTHER_EXCHANGES[row["Exchange"]], row["Company Name"], "otherlisted"
        else:
            missing.append(symbol)
            continue
        member = sp500.get(symbol)
        cik = member["CIK"].strip() if member else ""
        writer.writerow(
            [symbol, exchange, company_name(name), *calendar, cik, listing,
             "sp500" if cik else "", "unverified"]
        )
        written += 1
    return out.getvalue(), written, missing


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nasdaq", required=True, help="datasets/nasdaq-listings data/nasdaq-listed-symbols.csv")
    parser.add_argument("--other", required=True, help="datasets/nyse-other-listings data/other-listed.csv")
    parser.add_argument("--sp500", required=True, help="datasets/s-and-p-500-companies data/constituents.csv")
    parser.add_argument("--out", default="data/companies.csv")
    args = parser.parse_args()
    text, rows, missing = build(args.nasdaq, args.other, args.sp500)
    with open(args.out, "w", encoding="utf-8", newline="") as handle:
        handle.write(text)
    print(f"{args.out}: {rows} companies", file=sys.stderr)
    for symbol in missing:
        print(f"  left out {symbol}: in neither listing file (delisted or renamed?)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
