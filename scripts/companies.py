#!/usr/bin/env python3
"""Build data/companies.csv: the listed parents of catalogue brands, checked against open data.

Usage:
    python3 scripts/companies.py --nasdaq NASDAQ_CSV --other OTHER_CSV --sp500 SP500_CSV \
        [--evidence data/fiscal_calendar_evidence.csv] [--out data/companies.csv]

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
  * the fiscal calendar (fiscal_year_end_month .. year_named_by): CALENDARS below, first
    compiled from memory of the companies' 10-K filings, now checked against the facts of
    --evidence (data/fiscal_calendar_evidence.csv): dates and month-days read from SEC EDGAR
    documents (10-Q and 10-K inline XBRL contexts, EDGAR submissions `fiscalYearEnd`, XBRL
    company facts; public domain), each with the repository, commit and path it was read
    from. Every fact of a company must agree with its calendar, or the script stops and
    names the disagreement. calendar_source then says how far the calendar is confirmed:
      SEC EDGAR periods: <documents>          fiscal years or quarters of a filing (their
                                              start and end dates, the year's name) and the
                                              year-end agree with the calendar;
      SEC EDGAR year-end month: <documents>   only the fiscal year-end month-day agrees (the
                                              weekday, rule and quarter weeks of a 52/53-week
                                              calendar are unconfirmed);
      unverified                              no fact found for the company.

Deterministic: the same inputs give the same bytes (rows in CALENDARS order; each input's
SHA-256 is written into the header). Only the Python 3.11 standard library is used.
"""

from __future__ import annotations

import argparse
import calendar as calendar_module
import csv
import datetime
import hashlib
import io
import os
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
#          year_named_by). Compiled from memory of 10-K filings; checked against --evidence
#          where it has facts for the symbol (see the docstring), unverified elsewhere.
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
# Fiscal-calendar facts (SEC EDGAR documents, public domain; each fact's repository, commit
# and path are in the file):
#   data/fiscal_calendar_evidence.csv; sha256 {evidence_sha}
#
# Per row: listing_source says which listing file confirms the symbol and the exchange
# (nasdaqlisted or otherlisted); cik_source is sp500 when the CIK comes from the S&P 500 file
# (empty when the company is not a member). calendar_source says how far SEC EDGAR documents
# confirm the fiscal calendar (compiled from memory of 10-K filings): `SEC EDGAR periods: ...`
# when the start and end dates of fiscal years or quarters in the named filings agree with
# it; `SEC EDGAR year-end month: ...` when only the fiscal year-end month-day does (for a
# 52/53-week calendar the weekday, rule and quarter weeks are then unconfirmed); `unverified`
# when no fact was found (check the company's latest 10-K before relying on it).
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


WEEKDAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}


class Calendar:
    """A row's fiscal calendar, computed the way services/domain/src/fiscal.rs does."""

    def __init__(self, row: tuple[int, str, str, str, str, str]) -> None:
        month, kind, weekday, rule, weeks, named_by = row
        self.month = month
        self.weeks = kind == "weeks"
        self.weekday = WEEKDAYS[weekday] if self.weeks else 0
        self.nearest = rule == "nearest"
        self.quarter_weeks = [int(w) for w in weeks.split("-")] if self.weeks else []
        self.named_by_end = named_by == "end"
        if self.weeks and (sum(self.quarter_weeks) != 52 or len(self.quarter_weeks) != 4):
            raise ValueError(f"quarter weeks {weeks} do not make 52")

    def with_rule(self, nearest: bool) -> "Calendar":
        other = Calendar.__new__(Calendar)
        other.__dict__.update(self.__dict__)
        other.nearest = nearest
        return other

    def year_end(self, year: int) -> datetime.date:
        """The last day of the fiscal year ending in (or nearest the end of) the month of `year`."""
        month_end = datetime.date(year, self.month, calendar_module.monthrange(year, self.month)[1])
        if not self.weeks:
            return month_end
        back = (month_end.weekday() - self.weekday) % 7
        last = month_end - datetime.timedelta(days=back)
        return last + datetime.timedelta(days=7) if self.nearest and back > 3 else last

    def year(self, fiscal_year: int) -> tuple[datetime.date, datetime.date]:
        """Start and end of the fiscal year the company names `fiscal_year`."""
        end_year = fiscal_year if self.named_by_end else fiscal_year + 1
        return self.year_end(end_year - 1) + datetime.timedelta(days=1), self.year_end(end_year)

    def quarters(self, fiscal_year: int) -> list[tuple[datetime.date, datetime.date]]:
        year_start, end = self.year(fiscal_year)
        start = year_start
        out = []
        for index in range(4):
            if index == 3:
                quarter_end = end
            elif self.weeks:
                quarter_end = start + datetime.timedelta(days=7 * self.quarter_weeks[index] - 1)
            else:
                # The day before year start + 3, 6 or 9 months (a month year starts on the 1st).
                month = year_start.month - 1 + 3 * (index + 1)
                first_after = datetime.date(year_start.year + month // 12, month % 12 + 1, 1)
                quarter_end = first_after - datetime.timedelta(days=1)
            out.append((start, quarter_end))
            start = quarter_end + datetime.timedelta(days=1)
        return out

    def period(self, fiscal_year: int, name: str) -> tuple[datetime.date, datetime.date]:
        """FY, Q1..Q4 or Q1-Qn (year to date) of a fiscal year."""
        if name == "FY":
            return self.year(fiscal_year)
        quarters = self.quarters(fiscal_year)
        first, _, last = name.partition("-")
        first_q, last_q = int(first[1:]), int((last or first)[1:])
        return quarters[first_q - 1][0], quarters[last_q - 1][1]


def fact_problem(cal: Calendar, fact: dict[str, str]) -> str | None:
    """Why one evidence fact disagrees with a calendar, or None when it agrees."""
    kind = fact["fact"]
    year = int(fact["fiscal_year"]) if fact["fiscal_year"] else None
    if kind == "fiscal_year_end":
        mmdd = fact["value"]
        if year is not None:
            end = cal.year(year)[1]
            got = end.strftime("%m%d")
            return None if got == mmdd else f"FY{year} ends {end}, the filing says --{mmdd[:2]}-{mmdd[2:]}"
        # A profile value for no stated year: some recent year must end on that month-day.
        if any(cal.year_end(y).strftime("%m%d") == mmdd for y in range(2000, 2036)):
            return None
        return f"no fiscal year 2000-2035 ends on month-day {mmdd}"
    if year is None or not fact["period"]:
        return f"{kind} without fiscal_year or period"
    start, end = cal.period(year, fact["period"])
    label = f"FY{year} {fact['period']}"
    if kind == "period_end":
        return None if str(end) == fact["end"] else f"{label} ends {end}, the filing says {fact['end']}"
    if kind == "period":
        if (str(start), str(end)) == (fact["start"], fact["end"]):
            return None
        return f"{label} is {start}..{end}, the filing says {fact['start']}..{fact['end']}"
    return f"unknown fact {kind}"


def calendar_source(symbol: str, cik: str, row: tuple, facts: list[dict[str, str]]) -> tuple[str, str]:
    """calendar_source for a row, and a note on what the facts leave open (for stderr).

    Raises ValueError when a fact disagrees with the row: the row must be fixed first.
    """
    if not facts:
        return "unverified", ""
    cal = Calendar(row)
    problems = []
    for fact in facts:
        if cik and fact["cik"] and fact["cik"] != cik:
            problems.append(f"{fact['document']} is CIK {fact['cik']}, the row says {cik}")
        problem = fact_problem(cal, fact)
        if problem:
            problems.append(f"{problem} ({fact['document']})")
    if problems:
        raise ValueError(f"{symbol}: " + "; ".join(problems))
    documents = list(dict.fromkeys(f["document"] for f in facts))
    dated = any(f["fact"] in ("period", "period_end") or f["fiscal_year"] for f in facts)
    scope = "periods" if any(f["fact"] in ("period", "period_end") for f in facts) else "year-end month"
    note = ""
    if cal.weeks:
        other = cal.with_rule(not cal.nearest)
        if all(fact_problem(other, f) is None for f in facts):
            note = "nearest and last agree on every dated fact: the rule is not confirmed"
        if not dated:
            note = "only the year-end month is confirmed"
    return f"SEC EDGAR {scope}: " + "; ".join(documents), note


def company_name(name: str) -> str:
    name = " ".join(name.split())
    for suffix in (" Common Stock", " Common Shares"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return name.strip()


def read_evidence(path: str) -> tuple[dict[str, list[dict[str, str]]], str]:
    """Evidence facts by symbol (`#` lines are comments) and the file's SHA-256."""
    with open(path, "rb") as handle:
        data = handle.read()
    lines = [line for line in data.decode("utf-8").splitlines() if not line.startswith("#")]
    facts: dict[str, list[dict[str, str]]] = {}
    for fact in csv.DictReader(lines):
        facts.setdefault(fact["symbol"], []).append(fact)
    return facts, hashlib.sha256(data).hexdigest()


def build(
    nasdaq_path: str, other_path: str, sp500_path: str, evidence_path: str
) -> tuple[str, int, list[str], list[str]]:
    """The file's text, its row count, the symbols left out (in neither listing) and notes."""
    evidence, evidence_sha = read_evidence(evidence_path)
    unknown = sorted(set(evidence) - set(CALENDARS))
    if unknown:
        raise ValueError(f"evidence for symbols not in CALENDARS: {', '.join(unknown)}")
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
    out.write(HEADER.format(sources="\n".join(sources), evidence_sha=evidence_sha))
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    missing = []
    notes = []
    problems = []
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
        try:
            source, note = calendar_source(symbol, cik, calendar, evidence.get(symbol, []))
        except ValueError as error:
            problems.append(str(error))
            continue
        notes.append(f"  {symbol}: {source}" + (f" ({note})" if note else ""))
        writer.writerow(
            [symbol, exchange, company_name(name), *calendar, cik, listing,
             "sp500" if cik else "", source]
        )
        written += 1
    if problems:
        raise ValueError("calendars disagree with the evidence:\n  " + "\n  ".join(problems))
    return out.getvalue(), written, missing, notes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nasdaq", required=True, help="datasets/nasdaq-listings data/nasdaq-listed-symbols.csv")
    parser.add_argument("--other", required=True, help="datasets/nyse-other-listings data/other-listed.csv")
    parser.add_argument("--sp500", required=True, help="datasets/s-and-p-500-companies data/constituents.csv")
    parser.add_argument(
        "--evidence",
        default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data",
                             "fiscal_calendar_evidence.csv"),
        help="fiscal-calendar facts from SEC EDGAR documents (data/fiscal_calendar_evidence.csv)",
    )
    parser.add_argument("--out", default="data/companies.csv")
    args = parser.parse_args()
    try:
        text, rows, missing, notes = build(args.nasdaq, args.other, args.sp500, args.evidence)
    except ValueError as error:
        print(error, file=sys.stderr)
        return 1
    with open(args.out, "w", encoding="utf-8", newline="") as handle:
        handle.write(text)
    print(f"{args.out}: {rows} companies; calendar_source:", file=sys.stderr)
    for note in notes:
        print(note, file=sys.stderr)
    for symbol in missing:
        print(f"  left out {symbol}: in neither listing file (delisted or renamed?)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
