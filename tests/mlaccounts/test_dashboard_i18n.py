"""Every string is translated (pt-BR, es; en is the source), and the committed .mo files are
compiled from the committed .po files, so `make run` needs no gettext."""

import gettext
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

LOCALE = Path(settings.BASE_DIR) / "locale"
LANGUAGES = ["pt_BR", "es", "en"]


def parse_po(path: Path) -> list[dict]:
    """The entries of a .po file: msgid, msgid_plural, msgstr (or msgstr[n]) and flags."""
    entries, entry, key = [], None, None
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            if entry:
                entries.append(entry)
            entry, key = None, None
            continue
        if line.startswith("#~"):
            continue
        entry = entry or {"flags": set(), "msgstr": {}}
        if line.startswith("#,"):
            entry["flags"] |= {flag.strip() for flag in line[2:].split(",")}
        elif line.startswith("#"):
            continue
        elif match := re.match(r'^(msgctxt|msgid_plural|msgid|msgstr(?:\[(\d+)\])?) "(.*)"$', line):
            key = (
                ("msgstr", int(match.group(2) or 0))
                if match.group(1).startswith("msgstr")
                else match.group(1)
            )
            value = _unquote(match.group(3))
            if isinstance(key, tuple):
                entry["msgstr"][key[1]] = value
            else:
                entry[key] = value
        elif line.startswith('"') and key is not None:
            value = _unquote(line[1:-1])
            if isinstance(key, tuple):
                entry["msgstr"][key[1]] += value
            else:
                entry[key] += value
    if entry:
        entries.append(entry)
    return entries


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(0)), text)


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_message_is_translated_and_none_is_fuzzy(language):
    entries = parse_po(LOCALE / language / "LC_MESSAGES" / "django.po")
    header, messages = entries[0], entries[1:]
    assert header["msgid"] == "" and "fuzzy" not in header["flags"]
    assert len(messages) > 200
    untranslated = [e["msgid"] for e in messages if not all(e["msgstr"].values()) or not e["msgstr"]]
    fuzzy = [e["msgid"] for e in messages if "fuzzy" in e["flags"]]
    assert untranslated == []
    assert fuzzy == []


@pytest.mark.parametrize("language", LANGUAGES)
def test_committed_mo_matches_the_po(language):
    folder = LOCALE / language / "LC_MESSAGES"
    with open(folder / "django.mo", "rb") as handle:
        catalog = gettext.GNUTranslations(handle)._catalog
    for entry in parse_po(folder / "django.po")[1:]:
        msgid = entry["msgid"] if "msgctxt" not in entry else f"{entry['msgctxt']}\x04{entry['msgid']}"
        if "msgid_plural" in entry:
            for index, text in entry["msgstr"].items():
                assert catalog.get((msgid, index)) == text, (language, msgid, index)
        else:
            assert catalog.get(msgid) == entry["msgstr"][0], (language, msgid)


@pytest.mark.skipif(not shutil.which("xgettext"), reason="needs gettext (xgettext) to extract messages")
def test_no_string_is_missing_from_the_catalogs(tmp_path):
    """makemessages on a copy of the code finds no message the committed catalogs lack."""
    base = Path(settings.BASE_DIR)
    copy = tmp_path / "src"
    ignored = shutil.ignore_patterns(
        ".venv",
        ".git",
        "var",
        "staticfiles",
        "test-artifacts",
        "node_modules",
        "__pycache__",
        ".*_cache",
        "locale",
    )
    shutil.copytree(base, copy, ignore=ignored)
    env = {**os.environ, "DEBUG": "1", "VAR_DIR": str(tmp_path / "var")}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    subprocess.run(
        [
            sys.executable,
            "manage.py",
            "makemessages",
            "-l",
            "pt_BR",
            "--ignore=var",
            "--ignore=test-artifacts",
        ],
        cwd=copy,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    committed = {e["msgid"] for e in parse_po(LOCALE / "pt_BR" / "LC_MESSAGES" / "django.po")}
    extracted = parse_po(copy / "locale" / "pt_BR" / "LC_MESSAGES" / "django.po")
    missing = sorted(e["msgid"] for e in extracted if e["msgid"] not in committed)
    assert missing == [], (
        "untranslated strings: run `DEBUG=1 .venv/bin/python manage.py makemessages -l pt_BR -l es -l en "
        "--ignore=.venv --ignore=var`, translate them, then `compilemessages`"
    )


@pytest.mark.django_db
def test_the_api_speaks_english_unless_the_client_asks_for_another_language(client):
    assert client.get("/api/ml-accounts").json()["message"] == "Authentication credentials were not provided."
    portuguese = client.get("/api/ml-accounts", headers={"Accept-Language": "pt-BR,pt;q=0.9"}).json()
    assert portuguese["message"] == "As credenciais de autenticação não foram fornecidas."
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "es"
    assert client.get("/api/ml-accounts").json()["message"].startswith("Las credenciales de autenticación")
