"""Keeps the translation catalogs in step with the code (docs/TRANSLATING.md).

    python scripts/catalogs.py extract      # .pot files from the code, then every .po updated
    python scripts/catalogs.py init xx_YY   # a new locale's two .po files
"""
from __future__ import annotations

import argparse
import os
import pathlib
import sys
from typing import List, Sequence

from babel.messages.frontend import CommandLineInterface
from babel.messages.pofile import read_po, write_po

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from chat.catalogs import BROWSER_DOMAIN, DEFAULT, LOCALES, LOCALES_DIR, SERVER_DOMAIN, po_path  # noqa: E402

# What pybabel extract is told, per domain: its mapping file, what to read and which calls mark text.
EXTRACT = {
    SERVER_DOMAIN: ["-F", "babel.cfg", "--no-default-keywords", "-k", "N_", "-k", "NP_:1,2",
                    "-k", "_:1,1t", "-k", "_:1,2,3t", "."],
    BROWSER_DOMAIN: ["-F", "babel-js.cfg", "--no-default-keywords", "-k", "i18n.t", "-k", "i18n.n:1,2",
                     "."],
}


def pot_path(domain: str) -> pathlib.Path:
    return LOCALES_DIR / f"{domain}.pot"


def pybabel(args: List[str]) -> None:
    CommandLineInterface().run(["pybabel", "-q", *args])


def extract(domain: str, output: pathlib.Path) -> None:
    """Writes the template of `domain`'s messages as the code has them now."""
    here = os.getcwd()
    os.chdir(ROOT)  # locations in the catalogs are written relative to the top of the repository
    try:
        pybabel(["extract", "--project=Sealchat", "--sort-by-file", "--no-wrap", "--add-location=file",
                 "--msgid-bugs-address=", "-c", "TRANSLATORS:", "-o", str(output.resolve()), *EXTRACT[domain]])
    finally:
        os.chdir(here)


def fill_source_language(domain: str) -> None:
    """English is the source: its catalog says each message as the code does."""
    path = po_path(DEFAULT, domain)
    with path.open("rb") as f:
        catalog = read_po(f, locale=DEFAULT, domain=domain)
    for message in catalog:
        if message.id:
            message.flags.discard("fuzzy")
            message.string = list(message.id) if isinstance(message.id, (list, tuple)) else message.id
    with path.open("wb") as f:
        write_po(f, catalog, width=0, sort_by_file=True, include_previous=False)


def main(argv: Sequence[str] = ()) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("extract", help="extract messages and update every locale's catalogs")
    init = sub.add_parser("init", help="start a new locale's catalogs")
    init.add_argument("locale")
    args = parser.parse_args(argv or None)
    for domain in (SERVER_DOMAIN, BROWSER_DOMAIN):
        pot = pot_path(domain)
        if args.command == "extract":
            extract(domain, pot)
            for code in LOCALES:
                if not po_path(code, domain).exists():
                    pybabel(["init", "--no-wrap", "-D", domain, "-i", str(pot), "-d", str(LOCALES_DIR), "-l", code])
                pybabel(["update", "--no-fuzzy-matching", "--ignore-obsolete", "--no-wrap", "-D", domain,
                         "-i", str(pot), "-d", str(LOCALES_DIR), "-l", code])
            fill_source_language(domain)
        else:
            pybabel(["init", "--no-wrap", "-D", domain, "-i", str(pot), "-d", str(LOCALES_DIR), "-l", args.locale])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
