"""The studio's translations: extract the UI strings, update the catalogs, compile them, check them.

    python scripts/i18n.py extract   # app.py, views/, studio/ -> studio/locale/tlstudio.pot
    python scripts/i18n.py update    # the .pot merged into every studio/locale/<lang>/LC_MESSAGES/tlstudio.po
    python scripts/i18n.py compile   # every .po -> its .mo (committed beside it)
    python scripts/i18n.py check     # exit 1 naming each UI string without a translation, and stale .mo files

After adding or changing a UI string: extract, update, translate the new entries of each .po (an
entry marked ``#, fuzzy`` is Babel's guess from a similar string: correct it and remove the mark),
compile, check. Strings are marked with ``_()``, ``N_()`` (lazy, for module-level text) and
``ngettext()`` from `studio.i18n`; f-strings cannot be translated, so a sentence with values is
``_("{n} images in {name}").format(n=..., name=...)``.
"""
from __future__ import annotations

import argparse
import gettext
import io
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir, extract_from_file
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parents[1]
LOCALE = ROOT / "studio" / "locale"
DOMAIN = "tlstudio"
POT = LOCALE / f"{DOMAIN}.pot"
KEYWORDS = {"_": None, "N_": None, "ngettext": (1, 2)}
SOURCES = ("app.py", "views", "studio")


def extract(root: Path = ROOT, sources=SOURCES) -> Catalog:
    """Every marked UI string of `sources` (files or folders under `root`) as a template catalog."""
    catalog = Catalog(project="TL Studio", domain=DOMAIN, charset="utf-8")
    method_map = [("**.py", "python")]
    for source in sources:
        path = root / source
        if path.is_file():
            found = ((path.name, *m) for m in extract_from_file("python", path, keywords=KEYWORDS))
            prefix = Path(source).parent
        else:
            found = extract_from_dir(path, method_map, keywords=KEYWORDS)
            prefix = Path(source)
        for filename, lineno, message, comments, context in found:
            catalog.add(message, locations=[((prefix / filename).as_posix(), lineno)], auto_comments=comments,
                        context=context)
    return catalog


def languages() -> list[str]:
    return sorted(p.name for p in LOCALE.iterdir() if (p / "LC_MESSAGES" / f"{DOMAIN}.po").is_file())


def po_path(lang: str) -> Path:
    return LOCALE / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


def _write_po(catalog: Catalog, path: Path) -> None:
    with open(path, "wb") as f:
        write_po(f, catalog, width=100, sort_output=True, include_lineno=False)


def cmd_extract() -> None:
    template = extract()
    _write_po(template, POT)
    print(f"{POT.relative_to(ROOT)}: {len(template)} strings")


def cmd_update() -> None:
    template = extract()
    for lang in languages():
        with open(po_path(lang), "rb") as f:
            catalog = read_po(f, locale=lang)
        catalog.update(template)
        _write_po(catalog, po_path(lang))
        todo = [m.id for m in catalog if m.id and (not m.string or m.fuzzy)]
        print(f"{po_path(lang).relative_to(ROOT)}: {len(todo)} to translate")


def cmd_compile() -> None:
    for lang in languages():
        with open(po_path(lang), "rb") as f:
            catalog = read_po(f, locale=lang)
        with open(po_path(lang).with_suffix(".mo"), "wb") as f:
            write_mo(f, catalog)  # fuzzy entries are left out, as gettext's msgfmt does
        print(f"{po_path(lang).with_suffix('.mo').relative_to(ROOT)} compiled")


def _key(message) -> str:
    return message.id if isinstance(message.id, str) else message.id[0]


def problems(template: Catalog, po: Path, mo: Path | None = None) -> list[str]:
    """What keeps `po` (and its compiled `mo`) from translating every string of `template`."""
    with open(po, "rb") as f:
        catalog = read_po(f)
    out = []
    for message in template:
        if not message.id:
            continue
        found = catalog.get(message.id, context=message.context)
        where = ", ".join(f"{path}:{line}" for path, line in message.locations)
        strings = [] if found is None else (found.string if isinstance(found.string, (list, tuple)) else [found.string])
        if found is None or not all(strings):
            out.append(f"untranslated ({where}): {_key(message)!r}")
        elif found.fuzzy:
            out.append(f"fuzzy, to check ({where}): {_key(message)!r}")
    if mo is not None:
        buffer = io.BytesIO()
        write_mo(buffer, catalog)
        buffer.seek(0)
        fresh = gettext.GNUTranslations(buffer)._catalog  # noqa: SLF001 - the compiled mapping itself
        try:
            with open(mo, "rb") as f:
                compiled = gettext.GNUTranslations(f)._catalog  # noqa: SLF001
        except OSError:
            compiled = None
        if compiled != fresh:
            out.append(f"{mo.name} is not compiled from the current {po.name}: run `python scripts/i18n.py compile`")
    return out


def cmd_check() -> int:
    template = extract()
    found = []
    for lang in languages():
        found += [f"{lang}: {p}" for p in problems(template, po_path(lang), po_path(lang).with_suffix(".mo"))]
    print("\n".join(found) or f"every one of {len(template)} UI strings is translated ({', '.join(languages())})")
    return 1 if found else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("extract", "update", "compile", "check"))
    command = parser.parse_args(argv).command
    if command == "check":
        return cmd_check()
    {"extract": cmd_extract, "update": cmd_update, "compile": cmd_compile}[command]()
    return 0


if __name__ == "__main__":
    sys.exit(main())
