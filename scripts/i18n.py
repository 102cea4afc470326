"""The studio's translations: extract the UI strings, update the catalogs, compile them, check them.

    python scripts/i18n.py extract   # app.py, views/, studio/ -> studio/locale/tlstudio.pot
    python scripts/i18n.py update    # the .pot merged into every studio/locale/<lang>/LC_MESSAGES/tlstudio.po
    python scripts/i18n.py compile   # every .po -> its .mo (committed beside it)
    python scripts/i18n.py check     # exit 1 naming each UI string without a translation, and stale .mo files
    python scripts/i18n.py engine    # the engine's error sentences that studio/engine_errors.py lacks, as drafts

After adding or changing a UI string: extract, update, translate the new entries of each .po (an
entry marked ``#, fuzzy`` is Babel's guess from a similar string: correct it and remove the mark),
compile, check. Strings are marked with ``_()``, ``N_()`` (lazy, for module-level text) and
``ngettext()`` from `studio.i18n`; f-strings cannot be translated, so a sentence with values is
``_("{n} images in {name}").format(n=..., name=...)``.
"""
from __future__ import annotations

import argparse
import ast
import gettext
import io
import re
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


# --- the engine's error sentences ----------------------------------------------------------

ERRORS = ("OptionError", "TLCoreError", "UsageError", "ImageProblem")  # ImageProblem: why an image cannot be read
HOLE = "\0"  # where a value goes in an error's shape
ENGINE_ONLY = ("tlcore/cli/",)  # the command line's own errors: never shown by the studio


def _name(expr: ast.expr) -> str:
    """A placeholder's name for the value `expr` of an f-string (a draft; translators read it)."""
    if isinstance(expr, ast.Call) and expr.args and isinstance(expr.func, ast.Attribute) and expr.func.attr == "join":
        return _name(expr.args[0])
    if isinstance(expr, ast.Call):
        return _name(expr.func)
    if isinstance(expr, ast.Attribute):
        return expr.attr if expr.attr not in ("name", "value") or not isinstance(expr.value, ast.Name) else \
            f"{expr.value.id}_{expr.attr}".strip("_")
    if isinstance(expr, ast.Name):
        return expr.id.strip("_") or "value"
    if isinstance(expr, ast.Subscript):
        return _name(expr.value)
    if isinstance(expr, ast.IfExp):
        return _name(expr.body)
    return "value"


def _shape(node: ast.expr | None, assigned: dict) -> list | None:
    """An error message's text as a list of literal strings and ast nodes (the values), or None.
    A module's text constant inside an f-string (``{_BOMB_HINT}``) is its text."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.JoinedStr):
        out: list = []
        for v in node.values:
            if isinstance(v, ast.Constant):
                out.append(v.value)
            elif (isinstance(v.value, ast.Name) and v.conversion == -1 and v.format_spec is None
                  and isinstance(assigned.get(v.value.id), ast.Constant) and isinstance(assigned[v.value.id].value, str)):
                out.append(assigned[v.value.id].value)
            else:
                out.append(v.value)
        return out
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _shape(node.left, assigned), _shape(node.right, assigned)
        return (left or [node.left]) + (right or [node.right])
    if isinstance(node, ast.Name) and node.id in assigned:
        return _shape(assigned[node.id], assigned)
    return None


WARNING_SOURCES = ("tlcore/data/",)  # a dataset's warnings (`Dataset.warnings`), shown by the Data page


def _is_warning(node: ast.AST, where: str) -> bool:
    """``warnings.append(TEXT)`` / ``ds.warnings.append(TEXT)`` in a module whose warnings the studio shows."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "append"
            and node.args and where.startswith(WARNING_SOURCES)):
        return False
    target = node.func.value
    return (isinstance(target, ast.Name) and target.id == "warnings") or \
        (isinstance(target, ast.Attribute) and target.attr == "warnings")


def engine_errors(root: Path = ROOT) -> list[dict]:
    """Every error message the engine (`tlcore`, not its command line) raises, every reason it gives
    for a file it skips (``{"file": ..., "reason": ...}``) and every warning about a dataset, from its
    source.

    Returns ``[{"where": "tlcore/x.py:12", "shape": text with HOLE for each value, "draft": text with
    {placeholders}}]``; an OptionError's message as its `template` (``{option}`` first unless marked).
    A message held in a variable is followed to its assignment in the same function; one that cannot be
    followed has ``shape`` None.
    """
    found = []
    for path in sorted((root / "tlcore").rglob("*.py")):
        where = path.relative_to(root).as_posix()
        if where.startswith(ENGINE_ONLY):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        scopes = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Module))]
        seen = set()
        constants = {t.id: n.value for n in tree.body if isinstance(n, ast.Assign)
                     for t in n.targets if isinstance(t, ast.Name) and isinstance(n.value, ast.Constant)}
        for scope in reversed(scopes):  # innermost functions first
            assigned = {**constants, **{t.id: n.value for n in ast.walk(scope) if isinstance(n, ast.Assign)
                                        for t in n.targets if isinstance(t, ast.Name)
                                        and isinstance(n.value, (ast.JoinedStr, ast.Constant))}}
            for call in ast.walk(scope):
                if id(call) in seen:
                    continue
                if isinstance(call, ast.Dict):  # a dataset problem, {"file": ..., "reason": ...}
                    keys = {k.value: v for k, v in zip(call.keys, call.values) if isinstance(k, ast.Constant)}
                    reason = [keys["reason"]] if "file" in keys and "reason" in keys else []
                    if not reason or isinstance(reason[0], ast.Name) and reason[0].id not in assigned:
                        continue  # a reason made elsewhere (an ImageProblem's message) is found where it is made
                    func, message = "reason", reason[0]
                elif _is_warning(call, where):
                    func, message = "warning", call.args[0]
                else:
                    if not isinstance(call, ast.Call):
                        continue
                    func = call.func.id if isinstance(call.func, ast.Name) else getattr(call.func, "attr", None)
                    if func not in ERRORS or not call.args:
                        continue
                    message = call.args[1] if func == "OptionError" and len(call.args) > 1 else call.args[0]
                seen.add(id(call))
                parts = _shape(message, assigned)
                entry = {"where": f"{where}:{call.lineno}", "shape": None, "draft": None}
                if parts is not None:
                    shape = "".join(p if isinstance(p, str) else HOLE for p in parts)
                    names: list[str] = []
                    for p in parts:
                        if not isinstance(p, str):
                            name = _name(p)
                            names.append(name if name not in names else f"{name}{len(names) + 1}")
                    draft = "".join(p if isinstance(p, str) else "{" + names.pop(0) + "}" for p in parts)
                    inherited = not isinstance(parts[0], str) and ast.unparse(parts[0]).endswith(".template")
                    if func == "OptionError" and "{option" not in shape and not inherited:  # as OptionError does
                        shape, draft = "{option} " + shape, "{option} " + draft
                    entry.update(shape=shape, draft=draft)
                found.append(entry)
    return found


AUTO_SOURCES = ("tlcore/search/auto.py", "tlcore/search/automeasure.py", "tlcore/search/autofinal.py",
                "tlcore/search/autoprobe.py")


def auto_phrases(root: Path = ROOT, sources=AUTO_SOURCES) -> list[dict]:
    """The phrases auto mode joins into its ``reason`` (``notes.append(...)``, ``why = ...``, ``note = ...``
    and the text in ``reason = "; ".join(...)``), as `engine_errors` gives them (a trailing value, such
    as the "; point 2: 0.850" parts, left out: those are phrases of their own)."""
    found = []
    for source in sources:
        path = root / source
        if not path.exists():
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        texts = []
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "append"
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "notes" and node.args):
                texts.append((node.lineno, node.args[0]))
            elif isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id in ("why", "note")
                                                      for t in node.targets):
                texts.append((node.lineno, node.value))
            elif isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "reason" for t in node.targets):
                texts += [(node.lineno, c) for c in ast.walk(node.value)
                          if isinstance(c, ast.Constant) and isinstance(c.value, str) and len(c.value) > 3]
        for node in tree.body:  # phrase constants, filled in with str.format (autofinal's ENSEMBLE_CHOSEN...)
            if (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                    and node.targets[0].id.isupper() and isinstance(node.value, ast.Constant)
                    and isinstance(node.value.value, str) and " " in node.value.value):
                shape = re.sub(r"\{[^{}]*\}", HOLE, node.value.value).rstrip(HOLE)
                found.append({"where": f"{source}:{node.lineno}", "shape": shape})
        for lineno, node in texts:
            for part in ([node.body, node.orelse] if isinstance(node, ast.IfExp) else [node]):
                parts = _shape(part, {})
                if not parts:
                    continue
                shape = "".join(p if isinstance(p, str) else HOLE for p in parts).rstrip(HOLE)
                if shape.strip():
                    found.append({"where": f"{source}:{lineno}", "shape": shape})
    return found


def error_shape(template: str) -> str:
    """A studio template's shape: each ``{name}`` a HOLE (``{option}`` and ``{option:NAME}`` stay),
    ``{{`` and ``}}`` single braces."""
    return re.sub(r"\{(?!option[}:])\w+\}", HOLE, template).replace("{{", "{").replace("}}", "}")


def cmd_engine() -> int:
    sys.path.insert(0, str(ROOT))
    from studio import engine_errors as known

    have = {error_shape(t.message) for t in known.TEMPLATES}
    missing, drafted = [], set()
    for e in engine_errors():
        if e["shape"] is None:
            missing.append(e)
            print(f"    # {e['where']}: the message is not text written there; word it by hand")
        elif e["shape"] not in have:
            missing.append(e)
            if e["shape"] not in drafted:
                drafted.add(e["shape"])
                draft = (e["draft"] or "").replace("{", "{{").replace("}", "}}")
                draft = re.sub(r"\{\{(\w+)\}\}", r"{\1}", re.sub(r"\{\{(option:\w+)\}\}", r"{\1}", draft))
                print(f"    # {e['where']}\n    N_({draft!r}),")
    print(f"{len(missing)} engine error sentences without a studio template", file=sys.stderr)
    return 1 if missing else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("extract", "update", "compile", "check", "engine"))
    command = parser.parse_args(argv).command
    if command == "check":
        return cmd_check()
    if command == "engine":
        return cmd_engine()
    {"extract": cmd_extract, "update": cmd_update, "compile": cmd_compile}[command]()
    return 0


if __name__ == "__main__":
    sys.exit(main())
