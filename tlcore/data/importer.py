"""Import a .zip or a folder as a managed dataset under the studio's datasets folder.

Everything is unpacked or copied into a hidden temporary folder inside the datasets folder
and renamed into place only when complete, so a failed import leaves nothing behind. Zip
entries that would land outside the dataset (``..``, absolute paths, drive letters), links,
special files and archives inside the archive are skipped and listed as problems; macOS and
Windows litter and hidden files are dropped silently. Zip bombs are refused from the
central directory before anything is written, and again while streaming. A single top
folder holding everything is unwrapped, then the dataset is scanned (`data.scan`).

Uploads from a browser arrive as (relative name, bytes) pairs or as a .zip's bytes:
`import_uploaded_folder` and `import_uploaded_zip` write them to a temporary folder under the
home (refusing names that lead outside it) and import that.
"""
from __future__ import annotations

import errno
import itertools
import os
import re
import shutil
import stat
import tempfile
import unicodedata
import zipfile
import zlib
from pathlib import Path
from typing import Iterable, Sequence

from ..core import home
from .pipeline import _SPLIT_ALIASES, scan
from ..core.errors import TLCoreError
from .images import ARCHIVE_EXTENSIONS, is_ignored

MAX_TOTAL_BYTES = 20 * 1024 ** 3
MAX_FILES = 200_000
MAX_RATIO = 200
RATIO_MIN_BYTES = 1024 ** 2
CHUNK_BYTES = 1024 ** 2

_DRIVE = re.compile(r"^[A-Za-z]:")
_UTF8_FLAG = 0x800
_ENCRYPTED_FLAG = 0x1
_CLASH_ERRNOS = {errno.EEXIST, errno.ENOTDIR, errno.EISDIR}
_ENTRY_ERRNOS = _CLASH_ERRNOS | {errno.ENAMETOOLONG, errno.EILSEQ, errno.EINVAL}
_BOMB_HINT = ("; it looks like a zip bomb. Unpack it yourself if you trust it, then import "
              "the folder.")
_LINK = "symbolic link, skipped"
_SPECIAL = "special file (device, pipe or socket), skipped"
_CLASH = "another file or folder has the same name, skipped"


def import_dataset(source, datasets_dir=None, name: str | None = None) -> dict:
    """Copy a .zip or a folder into ``<datasets_dir>/<name>`` and scan it.

    Args:
        source: a .zip file or a folder of class folders (or of train/validation/test).
        datasets_dir: where managed datasets live (default: the home's ``datasets/``).
        name: the dataset's folder name (default: the source's name); ``-2``, ``-3``, ... is
            appended when taken.

    Returns:
        ``{path, classes, counts, problems: [{file, reason}], warnings}``.

    Raises:
        TLCoreError: missing or unsupported source, damaged zip, zip bomb, no disk space,
            or not a usable dataset; nothing is left behind.
    """
    src = Path(source).expanduser()
    if not src.exists():
        raise TLCoreError(f"Nothing to import: {src} does not exist. Give the path of a .zip "
                          "file or of a folder of class folders.")
    is_dir = src.is_dir()
    if not is_dir and not zipfile.is_zipfile(src):
        if src.suffix.lower() == ".zip":
            raise TLCoreError(f"{src} is not a valid zip file (damaged or not fully downloaded). "
                              "Download or create it again.")
        raise TLCoreError(f"{src} is neither a folder nor a .zip file. Give a folder of class "
                          "folders, or a .zip of one.")
    parent = home.datasets_dir(datasets_dir)
    if is_dir and parent.resolve().is_relative_to(src.resolve()):
        raise TLCoreError(f"{src} contains the datasets folder {parent}, so it cannot be imported "
                          "into it. Give the dataset's own folder.")
    stem = _safe_name(name or (src.resolve().name if is_dir else src.stem))

    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".import-", dir=parent))
    except OSError as exc:
        raise TLCoreError(f"Cannot write in the datasets folder {parent}: {exc}. Check its "
                          "permissions or use another --datasets-dir.") from None
    try:
        content = tmp / "content"
        content.mkdir()
        problems = _copy_folder(src, content) if is_dir else _extract_zip(src, content)
        target = _move_into_place(_unwrap(content), parent, stem)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
        raise TLCoreError(f"{src} is damaged and cannot be unpacked ({exc}). Download or create "
                          "the zip again.") from None
    except OSError as exc:
        raise TLCoreError(f"Could not import {src}: {exc}. Check free disk space and write "
                          f"permission in {parent}.") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    try:
        ds = scan(target)
    except BaseException as exc:
        shutil.rmtree(target, ignore_errors=True)
        if not isinstance(exc, (TLCoreError, OSError, ValueError)):
            raise
        reason = str(exc).replace(str(target), Path(src).name)
        raise TLCoreError(f"Nothing was imported from {src}: {reason}") from None
    return {"path": str(target), "classes": ds.classes, "counts": ds.counts(),
            "problems": problems + ds.problems, "warnings": ds.warnings}


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def _safe_name(raw: str) -> str:
    name = _nfc(str(raw))
    for sep in {"/", "\\", os.sep, "\0"}:
        name = name.replace(sep, "_")
    return name.strip().lstrip(".").strip() or "dataset"


def _human(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return ""  # pragma: no cover


def _check_space(total: int, folder: Path) -> None:
    free = shutil.disk_usage(folder).free
    if total > free:
        raise TLCoreError(f"Not enough free disk space: the dataset needs {_human(total)} but only "
                          f"{_human(free)} is free in {folder}. Free some space or use another "
                          "--datasets-dir.")


def _entry_name(info: zipfile.ZipInfo) -> str:
    """The entry's name as its creator meant it: UTF-8 mislabelled as cp437 is repaired."""
    name = info.filename
    if not info.flag_bits & _UTF8_FLAG:
        try:
            name = name.encode("cp437").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            pass
    return name


def _classify(info: zipfile.ZipInfo, name: str) -> tuple[tuple[str, ...] | None, str | None]:
    """(path parts to write, None), (None, reason to skip), or (None, None) to drop silently."""
    raw = name.replace("\\", "/")
    if raw.startswith("/"):
        return None, "absolute path, skipped"
    parts = [_nfc(p) for p in raw.split("/")]
    if any(_DRIVE.match(p) for p in parts):
        return None, "drive letter in path, skipped"
    if ".." in parts:
        return None, "path leads outside the folder (..), skipped"
    parts = [p for p in parts if p not in ("", ".")]
    if not parts or any(is_ignored(p) for p in parts):
        return None, None
    kind = stat.S_IFMT(info.external_attr >> 16)
    if kind == stat.S_IFLNK:
        return None, _LINK
    if kind in (stat.S_IFCHR, stat.S_IFBLK, stat.S_IFIFO, stat.S_IFSOCK):
        return None, _SPECIAL
    if info.flag_bits & _ENCRYPTED_FLAG:
        return None, "encrypted (password-protected), skipped"
    if not info.is_dir() and Path(parts[-1]).suffix.lower() in ARCHIVE_EXTENSIONS:
        return None, "archive inside the archive, not expanded"
    return tuple(parts), None


def _extract_zip(src: Path, dest: Path) -> list[dict]:
    problems: list[dict] = []
    with zipfile.ZipFile(src) as zf:
        plan = []
        for info in zf.infolist():
            name = _entry_name(info)
            parts, reason = _classify(info, name)
            if reason:
                problems.append({"file": name, "reason": reason})
            elif parts:
                plan.append((info, name, parts, info.is_dir() or name.endswith("\\")))
        files = [info for info, _, _, is_dir in plan if not is_dir]
        total = sum(info.file_size for info in files)
        if len(files) > MAX_FILES:
            raise TLCoreError(f"{src.name} holds {len(files)} files, above the limit of "
                              f"{MAX_FILES} (MAX_FILES){_BOMB_HINT}")
        if total > MAX_TOTAL_BYTES:
            raise TLCoreError(f"{src.name} unpacks to {_human(total)}, above the limit of "
                              f"{_human(MAX_TOTAL_BYTES)} (MAX_TOTAL_BYTES){_BOMB_HINT}")
        for info in files:
            if info.file_size > RATIO_MIN_BYTES and \
                    info.file_size > MAX_RATIO * max(info.compress_size, 1):
                ratio = info.file_size / max(info.compress_size, 1)
                raise TLCoreError(f"{info.filename} in {src.name} is compressed {ratio:.0f} to 1, "
                                  f"above the limit of {MAX_RATIO} (MAX_RATIO){_BOMB_HINT}")
        _check_space(total, dest)

        root = os.path.realpath(dest)
        written = 0
        for info, name, parts, is_dir in plan:
            out = dest.joinpath(*parts)
            if os.path.commonpath([root, os.path.realpath(out)]) != root:  # defence in depth
                problems.append({"file": name, "reason": "path leads outside the folder, skipped"})
                continue
            try:
                if is_dir:
                    out.mkdir(parents=True, exist_ok=True)
                else:
                    out.parent.mkdir(parents=True, exist_ok=True)
                    written += _stream(zf, info, out, written, src.name)
            except OSError as exc:
                if exc.errno not in _ENTRY_ERRNOS:
                    raise
                clash = exc.errno in _CLASH_ERRNOS
                reason = _CLASH if clash else f"cannot be written: {exc.strerror}"
                problems.append({"file": name, "reason": reason})
    return problems


def _stream(zf: zipfile.ZipFile, info: zipfile.ZipInfo, out: Path, before: int,
            archive: str) -> int:
    """Copy one entry in chunks, counting the bytes really written; returns that count."""
    n = 0
    with zf.open(info) as fin, open(out, "xb") as fout:
        while chunk := fin.read(CHUNK_BYTES):
            n += len(chunk)
            if before + n > MAX_TOTAL_BYTES:
                raise TLCoreError(f"{archive} unpacks to more than the limit of "
                                  f"{_human(MAX_TOTAL_BYTES)} (MAX_TOTAL_BYTES){_BOMB_HINT}")
            if n > info.file_size:
                raise TLCoreError(f"{info.filename} in {archive} unpacks to more than its declared "
                                  f"{_human(info.file_size)}{_BOMB_HINT}")
            fout.write(chunk)
    return n


def _copy_folder(src: Path, dest: Path) -> list[dict]:
    problems: list[dict] = []
    copies: list[tuple[Path, Path]] = []
    seen: set[Path] = set()
    for dirpath, dirnames, filenames in os.walk(src):
        here = Path(dirpath)
        out_dir = dest.joinpath(*(_nfc(p) for p in here.relative_to(src).parts))
        out_dir.mkdir(parents=True, exist_ok=True)
        keep = []
        for d in sorted(dirnames):
            if is_ignored(_nfc(d)):
                continue
            if (here / d).is_symlink():
                problems.append({"file": (here / d).relative_to(src).as_posix(),
                                 "reason": _LINK})
            else:
                keep.append(d)
        dirnames[:] = keep
        for f in sorted(filenames):
            path, out = here / f, out_dir / _nfc(f)
            rel = path.relative_to(src).as_posix()
            if is_ignored(_nfc(f)):
                continue
            mode = os.lstat(path).st_mode
            if stat.S_ISLNK(mode):
                problems.append({"file": rel, "reason": _LINK})
            elif not stat.S_ISREG(mode):
                problems.append({"file": rel, "reason": _SPECIAL})
            elif Path(f).suffix.lower() in ARCHIVE_EXTENSIONS:
                problems.append({"file": rel, "reason": "archive inside the folder, not expanded"})
            elif out in seen:
                problems.append({"file": rel, "reason": _CLASH})
            else:
                copies.append((path, out))
                seen.add(out)
    _check_space(sum(os.stat(p).st_size for p, _ in copies), dest)
    for path, out in copies:
        shutil.copy2(path, out)
    return problems


def _unwrap(root: Path) -> Path:
    """Descend through single top folders (not split folders) that hold everything."""
    while True:
        entries = list(root.iterdir())
        only = entries[0] if len(entries) == 1 else None
        if only is None or not only.is_dir() or only.name.lower() in _SPLIT_ALIASES \
                or not any(p.is_dir() for p in only.iterdir()):
            return root
        root = only


def _move_into_place(root: Path, parent: Path, stem: str) -> Path:
    for i in itertools.count(1):
        target = parent / (stem if i == 1 else f"{stem}-{i}")
        if target.exists() or target.is_symlink():
            continue
        try:
            os.rename(root, target)
            return target
        except OSError:
            if not target.exists():
                raise
    raise AssertionError("unreachable")  # pragma: no cover


# --- uploads -----------------------------------------------------------------------

def safe_relative_parts(name: str) -> tuple[str, ...] | None:
    """The path parts of an uploaded file's relative name, or None if it must be refused.

    Refused: absolute paths, drive letters, ``..`` anywhere, NUL bytes, empty names.
    ``.`` parts and empty parts are dropped; names are normalised to NFC.
    """
    raw = str(name).replace("\\", "/")
    if not raw or "\0" in raw or raw.startswith("/"):
        return None
    parts = [_nfc(p) for p in raw.split("/")]
    if any(p == ".." for p in parts) or any(_DRIVE.match(p) for p in parts):
        return None
    parts = [p for p in parts if p not in ("", ".")]
    return tuple(parts) or None


def upload_folder_name(names: Iterable[str], default: str = "dataset") -> str:
    """The uploaded folder's own name: the first path part all files share (else `default`)."""
    firsts = set()
    for name in names:
        parts = safe_relative_parts(name)
        if parts and len(parts) > 1:
            firsts.add(parts[0])
        else:
            return default
    return firsts.pop() if len(firsts) == 1 else default


def write_uploaded_files(files: Iterable[tuple[str, bytes]], dest: str | os.PathLike) -> list[dict]:
    """Write uploaded (relative name, content) pairs below `dest`, keeping relative paths.

    Returns:
        problems ``[{file, reason}]`` for names that were refused (``..``, absolute paths,
        clashes); everything else is written.
    """
    root = Path(dest)
    root.mkdir(parents=True, exist_ok=True)
    real_root = os.path.realpath(root)
    problems: list[dict] = []
    for name, data in files:
        parts = safe_relative_parts(name)
        if parts is None:
            problems.append({"file": str(name), "reason": "path leads outside the folder, refused"})
            continue
        out = root.joinpath(*parts)
        if os.path.commonpath([real_root, os.path.realpath(out.parent)]) != real_root:
            problems.append({"file": str(name), "reason": "path leads outside the folder, refused"})
            continue
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            with open(out, "xb") as f:
                f.write(data)
        except (FileExistsError, NotADirectoryError, IsADirectoryError):
            problems.append({"file": str(name), "reason": _CLASH})
    return problems


def import_uploaded_folder(files: Sequence[tuple[str, bytes]], datasets_dir=None) -> dict:
    """Import an uploaded folder (relative name, content pairs) as a managed dataset.

    The files are written to a temporary folder first (relative paths kept, ``..`` refused),
    then `import_dataset` copies them into the datasets folder and scans them.

    Returns:
        `import_dataset`'s result, with refused names added to ``problems``.

    Raises:
        TLCoreError: `files` is empty, or what `import_dataset` raises.
    """
    if not files:
        raise TLCoreError("files is empty: no files were uploaded; give a folder of class folders.")
    name = upload_folder_name([n for n, _ in files])
    tmp = _upload_tmp()
    try:
        problems = write_uploaded_files(files, tmp)
        result = import_dataset(tmp, datasets_dir, name=name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result["problems"] = problems + list(result.get("problems", []))
    return result


def import_uploaded_zip(filename: str, data: bytes, datasets_dir=None) -> dict:
    """Import an uploaded .zip (its bytes) as a managed dataset named after the file.

    Raises:
        TLCoreError: `filename` does not end in .zip, or what `import_dataset` raises.
    """
    base = _nfc(Path(str(filename).replace("\\", "/")).name) or "dataset.zip"
    if not base.lower().endswith(".zip"):
        raise TLCoreError(f"filename must end in .zip. Received: filename={filename!r}")
    tmp = _upload_tmp()
    try:
        path = tmp / base
        path.write_bytes(data)
        return import_dataset(path, datasets_dir, name=Path(base).stem)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _upload_tmp() -> Path:
    """A new temporary folder under the home's tmp/ (on the same disk as the datasets)."""
    tmp_root = home.home() / "tmp"
    tmp_root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="upload-", dir=tmp_root))
