"""Creditor names as bureaus and counselors spell them, conformed to one creditor.

The warehouse does this in SQL (sql/core/dim_creditor.sql, one rebuild conforms every spelling
ever loaded); this module is the same rule in Python, step for step, so tests can hold the two to
the same answers and tools can show a data steward what a spelling becomes. Change both or neither.

The rule:
1. `words`: Latin letters with accents as their plain letter (CRÉDIT = CREDIT), upper case (ASCII),
   '&' read as AND, apostrophes dropped (KOHL'S = KOHLS), every other
   run of non-alphanumerics one space, and initials whose dots became spaces joined again
   (N.A. = NA, U.S.A. = USA, U.S. = US, F.S.B. = FSB, L.L.C. = LLC).
2. An alias matches when it is the spelling's words or their leading words ("CHASE" matches
   "CHASE BANK USA NA", not "CHASEWOOD"); the longest matching alias wins. A spelling in the
   STORE/ISSUER form ("AMZN/SYNCB", "THD/CBNA") whose leading words match nothing is matched on
   what follows the first slash.
3. A spelling no alias matches becomes its own creditor: its `normalised` name, i.e. its words
   without trailing account fragments ("XXXX1234", "#1234", "ACCT NO 5678") and without the
   trailing words bureaus add or drop (NA, NATIONAL ASSOCIATION, FSB, USA, BANK, CARD SERVICES and
   its abbreviations, LLC, INC, CORP ...). The first word always stays. Where nothing is left (a
   name in a script other than Latin: みずほ銀行), the spelling as sent; an empty one is UNKNOWN.

The seed's creditor is who the debt is owed to, the card's issuer or the loan's owner: a store card
conforms to its issuing bank (SYNCB/AMAZON to SYNCHRONY, THD/CBNA to CITIBANK), a federal loan to
the Department of Education whoever services it. A bare store name is an alias only where its
card's issuer has not changed (KOHLS is Capital One's since 2011; the older KOHLS/CHASE accounts
match the longer alias KOHLS CHASE); WALMART, AMAZON, GAP and the like are left to the steward.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tenantlake.settings import REPO

SEED = REPO / "sql" / "seeds" / "creditor_aliases.csv"
UNKNOWN = "UNKNOWN"

# The SQL holds these same patterns (POSIX in Redshift, RE2 in DuckDB: only the syntax both share,
# anchored at the end so either engine's match semantics gives the same span).
NON_ALNUM = r"[^A-Z0-9]+"
INITIALS = ((" U S A ", " USA "), (" U S ", " US "), (" N A ", " NA "), (" F S B ", " FSB "), (" L L C ", " LLC "))
# Whole trailing tokens only (each alternative starts at a space): optional keywords, then an
# account number of 3+ digits and Xs, or a run of 3+ Xs. The first word is never taken.
FRAGMENTS = (r"(( (ACCOUNT|ACCT|ACC|NUMBER|NBR|NUM|NO|ENDING|IN|LAST))*"
             r" (XXX+|[X0-9]{2,}[0-9]|[0-9][X0-9]{2,}|[X0-9]+[0-9][X0-9]+))+$")
NOISE = (r"( (NA|NATIONAL ASSOCIATION|FSB|USA|BANK|BK|CARD SERVICES|CARD SERVICE|CARD SERV|CARD SER|"
         r"CARD SVCS|CARD SVC|CRD SVCS|CRD SVC|CARDS|CARD|LLC|INC|CORP|CORPORATION|CO|COMPANY|LTD))+$")

_ASCII_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
# Latin letters with accents (Latin-1 and Latin Extended-A) and their plain upper-case letter: the
# SQL's TRANSLATE holds the same two strings, applied before UPPER (so neither engine's Unicode case
# rules matter). Any other letter outside A-Z is a word break, as before.
FOLD_FROM = ("ÀÁÂÃÄÅĀĂĄÇĆĈĊČĎĐÈÉÊËĒĔĖĘĚĜĞĠĢĤĦÌÍÎÏĨĪĬĮİĴĶĹĻĽĿŁÑŃŅŇÒÓÔÕÖØŌŎŐŔŖŘŚŜŞŠŢŤŦÙÚÛÜŨŪŬŮŰŲŴÝŸŶŹŻŽ"
             "àáâãäåāăąçćĉċčďđèéêëēĕėęěĝğġģĥħìíîïĩīĭįĵķĺļľŀłñńņňòóôõöøōŏőŕŗřśŝşšţťŧùúûüũūŭůűųŵýÿŷźżžı")
FOLD_TO = ("AAAAAAAAACCCCCDDEEEEEEEEEGGGGHHIIIIIIIIIJKLLLLLNNNNOOOOOOOOORRRSSSSTTTUUUUUUUUUUWYYYZZZ"
           "AAAAAAAAACCCCCDDEEEEEEEEEGGGGHHIIIIIIIIJKLLLLLNNNNOOOOOOOOORRRSSSSTTTUUUUUUUUUUWYYYZZZI")
_FOLD = str.maketrans(FOLD_FROM, FOLD_TO)
# ASCII punctuation and the space (but the backslash, an escape in a Redshift literal, and ';', which
# ends a statement in sql/ files): a spelling of nothing else (***) names no creditor; one with
# letters of another script does, as sent (the SQL's TRANSLATE holds the same set).
NO_NAME = ' !"#$%&\'()*+,-./:<=>?@[]^_`{|}~'
_NO_NAME = str.maketrans('', '', NO_NAME)


def words(spelling: str) -> str:
    """Step 1: the spelling as the words aliases are matched against."""
    text = spelling.translate(_FOLD).translate(_ASCII_UPPER)
    text = text.replace("&", " AND ").replace("'", "").replace("\u2019", "")
    text = f" {re.sub(NON_ALNUM, ' ', text).strip(' ')} "
    for dotted, joined in INITIALS:
        text = text.replace(dotted, joined)
    return text.strip(" ")


def normalised(spelling: str) -> str:
    """Step 3: the name an unmatched spelling stands under (may be empty)."""
    return re.sub(NOISE, "", re.sub(FRAGMENTS, "", words(spelling)))


def load_aliases(path: Path = SEED) -> dict[str, str]:
    with open(path, newline="") as f:
        return {row["alias"]: row["creditor"] for row in csv.DictReader(f)}


@dataclass(frozen=True)
class Conformed:
    spelling: str
    creditor: str
    normalised: str
    alias: str | None  # the alias that matched, None when none did
    matched_by: str | None  # 'leading words', 'after slash', or None


def best_alias(text: str, aliases: Mapping[str, str]) -> str | None:
    found = [a for a in aliases if text == a or text.startswith(a + " ")]
    return max(found, key=len) if found else None


def conform(spelling: str, aliases: Mapping[str, str]) -> Conformed:
    """Step 2 then 3: the creditor a spelling conforms to."""
    name = normalised(spelling) or None
    parts = [("leading words", spelling)]
    if "/" in spelling:
        parts.append(("after slash", spelling.split("/")[1]))
    for how, part in parts:
        alias = best_alias(words(part), aliases)
        if alias is not None:
            return Conformed(spelling, aliases[alias], name or "", alias, how)
    sent = spelling.strip(" ") if spelling.translate(_NO_NAME) else ""
    return Conformed(spelling, name or sent or UNKNOWN, name or "", None, None)
