"""One canonical form per email address: what users are stored and looked up by.

Two spellings that a mail system delivers to the same mailbox must be one user, or an
attacker can register a look-alike (`kate@ｓec.test`, fullwidth s) beside the victim and
case-insensitive lookups then find two users (a 500 on the victim's login), or dodge the
per-address login lockout with `bf@ſec.test`. Comparing with the database's UPPER()/LOWER()
is not enough: PostgreSQL folds ſ→S and ı→I, Python's str.lower() does neither.

The canonical form is the whole address in Unicode NFKC, the local part case-folded,
and the domain mapped and encoded by IDNA 2008 with the UTS-46 mapping (what browsers
and mail systems do), so `kate@ｓec.test`, `KATE@SEC.TEST` and `kate@ſec.test` are all
`kate@sec.test`. A dotless ı is a letter of its own (not a case of i) under both
casefold and UTS-46, so `gmaıl.com` stays a different domain (`xn--gmal-nza.com`):
a separate address, never a duplicate of the victim's.
"""

from __future__ import annotations

import hashlib
import unicodedata

import idna


class InvalidEmail(ValueError):
    """The address has no local part or domain, or its domain cannot be IDNA-encoded."""


def canonical_email(value: str) -> str:
    """The canonical form of `value` (see the module docstring); raises InvalidEmail."""
    if not isinstance(value, str):
        raise InvalidEmail("not text")
    text = unicodedata.normalize("NFKC", value.strip())
    local, at, domain = text.rpartition("@")
    if not at or not local or not domain:
        raise InvalidEmail("an address needs a local part and a domain")
    # NFKC again after folding (folding can produce sequences NFKC composes), then lower():
    # allauth lower()s addresses before comparing, and a few scripts (Cherokee) fold to
    # upper case, so the stored form must be stable under lower() too.
    local = unicodedata.normalize("NFKC", local.casefold()).lower()
    try:
        domain = idna.encode(domain, uts46=True).decode("ascii").lower()
    except (idna.IDNAError, UnicodeError) as exc:
        raise InvalidEmail(f"the domain cannot be IDNA-encoded: {exc}") from None
    return f"{local}@{domain}"


def email_key(value: str) -> str:
    """A short, address-free key per canonical address (throttle and rate-limit keys).

    An address that has no canonical form still gets a stable key from its folded text,
    so the attempts made with it are counted too.
    """
    try:
        text = canonical_email(value)
    except InvalidEmail:
        text = unicodedata.normalize("NFKC", str(value).strip()).casefold()
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
