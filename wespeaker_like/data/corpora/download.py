"""Stage 0: resumable archive download, MD5 check, part concatenation and extraction.

An :class:`Archive` names the official file (``vox1_dev_wav.zip``), the parts it is published in
(``vox1_dev_wav_partaa`` ...), their MD5 sums where the corpus publishes them, and where it is
extracted. :func:`fetch_archive` then

1. skips everything when the extraction marker ``<dest>/.<archive>.extracted`` exists, or when
   the archive's official extracted layout (:attr:`Archive.layout`: its top-level folders, each
   with a sample file) is already there, e.g. a corpus unpacked by hand on a shared disk; a layout
   that is only partly there stops with the missing folders named;
2. looks for the archive (or its parts) in ``archives_dir`` first -- archives already on disk are
   used in place, never copied -- and otherwise downloads into ``dl_dir``;
3. downloads with HTTP ``Range`` resumption: bytes go to ``<name>.part``; a rerun continues from
   its size (a server that ignores ``Range`` answers 200 and the download restarts cleanly);
4. checks MD5 (a ``<name>.md5`` note records a verified sum with the file size, so a rerun does not
   hash 40 GB again), concatenates parts (``cat parta* > archive``) and checks the whole;
5. extracts (zip or tar[.gz]) with the semantics of Python's tarfile ``data`` filter: regular
   files and directories only (links, devices and FIFOs are refused), no member escaping ``dest``,
   no setuid/setgid/sticky or group/other write bits; then writes the marker.

Every failure raises ``InputError`` naming the file or URL and what was expected.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from wespeaker_like.data.kaldi_dir import table_lines
from wespeaker_like.errors import InputError
from wespeaker_like.fileio import atomic_path, file_hash

log = logging.getLogger("download")

CHUNK = 1 << 20


@dataclass(frozen=True)
class Archive:
    """One official archive. ``parts`` empty means the archive itself is downloaded."""

    name: str                      # official archive name, e.g. "vox1_dev_wav.zip"
    md5: Optional[str] = None      # MD5 of the whole archive, where published
    parts: Sequence[str] = ()      # names of the published parts, concatenated in this order
    part_md5: Dict[str, str] = field(default_factory=dict)
    extract_to: str = "."          # sub-directory of the corpus dir to extract into
    url_dir: Optional[str] = None  # per-archive base URL overriding the corpus default
    extract: bool = True           # False for plain files (trial lists) copied into extract_to
    # The official extracted layout: (folder under extract_to, glob of files that must exist in it).
    layout: Tuple[Tuple[str, str], ...] = ()


# --------------------------------------------------------------------------- checksums
def md5sum(path: Path) -> str:
    return file_hash(path, "md5")


def _note(path: Path) -> Path:
    return path.with_name(path.name + ".md5")


def verified(path: Path, expected: Optional[str]) -> bool:
    """True when ``path`` has the expected MD5 (cached in ``<path>.md5`` with the file size).
    With ``expected`` None any existing file counts as complete."""
    if not path.is_file():
        return False
    if expected is None:
        return True
    note = _note(path)
    size = path.stat().st_size
    if note.is_file():
        fields = note.read_text().split()
        if len(fields) == 2 and fields[0] == expected and fields[1] == str(size):
            return True
    actual = md5sum(path)
    if actual != expected:
        return False
    if os.access(path.parent, os.W_OK):
        note.write_text(f"{actual} {size}\n")
    return True


def check_md5(path: Path, expected: Optional[str]) -> None:
    if expected is not None and not verified(path, expected):
        raise InputError(path, f"MD5 mismatch: expected {expected}, got {md5sum(path)} "
                         "(a corrupt or different file; delete it to download again)")


def read_checksums(path: Path) -> Dict[str, str]:
    """``md5sum`` output (``<md5>  <name>``) -> name -> md5, to override the built-in sums."""
    table = {}
    for line in table_lines(path, "checksum file not found (expected md5sum output)"):
        fields = line.fields
        if len(fields) != 2 or len(fields[0]) != 32:
            raise line.expected("'<md5> <archive name>'")
        table[os.path.basename(fields[1].lstrip("*"))] = fields[0].lower()
    return table


# --------------------------------------------------------------------------- HTTP
def download(url: str, dest: Path, md5: Optional[str] = None, retries: int = 3, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` (resuming ``dest.part``), check MD5, skip if already complete."""
    dest = Path(dest)
    if verified(dest, md5):
        log.info("%s: complete, skipped", dest)
        return dest
    if dest.is_file():
        raise InputError(dest, f"exists but its MD5 is not {md5} (delete it to download again)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    last_error: Optional[BaseException] = None
    for attempt in range(retries):
        try:
            _fetch(url, part, timeout)
            break
        except (urllib.error.URLError, OSError, ConnectionError) as exc:
            if isinstance(exc, urllib.error.HTTPError) and exc.code in (401, 403, 404):
                raise InputError(url, f"server answered {exc.code} {exc.reason} (expected the archive "
                                 f"'{dest.name}'; get it by hand and pass --archives_dir)") from None
            last_error = exc
            log.warning("%s: attempt %d failed (%s); resuming", url, attempt + 1, exc)
            time.sleep(min(2 ** attempt, 10) * 0.1)
    else:
        raise InputError(url, f"download failed after {retries} attempts ({last_error}); "
                         f"partial data kept in {part}, rerun to resume")
    if md5 is not None:
        actual = md5sum(part)
        if actual != md5:
            part.unlink()
            raise InputError(url, f"downloaded file has MD5 {actual}, expected {md5} (partial file removed)")
    os.replace(part, dest)
    if md5 is not None:
        _note(dest).write_text(f"{md5} {dest.stat().st_size}\n")
    return dest


def _fetch(url: str, part: Path, timeout: float) -> None:
    offset = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "wespeaker_like-download"})
    if offset and not url.startswith("file:"):
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # nothing left to fetch: the part is already complete
            return
        raise
    with response:
        status = getattr(response, "status", None) or response.getcode()
        if offset and status != 206:
            offset = 0  # the server sent the whole file: start over
        with open(part, "ab" if offset else "wb") as out:
            expected = response.headers.get("Content-Length")
            received = 0
            while True:
                chunk = response.read(CHUNK)
                if not chunk:
                    break
                out.write(chunk)
                received += len(chunk)
        if expected is not None and received < int(expected):
            raise ConnectionError(f"connection closed after {received} of {expected} bytes")


# --------------------------------------------------------------------------- archives
def _join(base: str, name: str) -> str:
    return base.rstrip("/") + "/" + name


def _locate(name: str, md5: Optional[str], archives_dir: Optional[Path], dl_dir: Path,
            base_url: Optional[str]) -> Path:
    """Find ``name`` in archives_dir (used in place), else in dl_dir, else download it there."""
    if archives_dir is not None:
        candidate = Path(archives_dir) / name
        if candidate.is_file():
            check_md5(candidate, md5)
            log.info("%s: using the archive on disk", candidate)
            return candidate
    target = Path(dl_dir) / name
    if verified(target, md5):
        return target
    if base_url is None:
        where = f"{archives_dir} or {dl_dir}" if archives_dir is not None else str(dl_dir)
        raise InputError(target, f"archive '{name}' not found in {where} and no download URL is known "
                         "(download it by hand, e.g. after registering with the corpus owners, and pass "
                         "--archives_dir)")
    log.info("downloading %s", _join(base_url, name))
    print(f"downloading {_join(base_url, name)} -> {target}", flush=True)
    return download(_join(base_url, name), target, md5)


def assemble(archive: Archive, archives_dir: Optional[Path], dl_dir: Path, base_url: Optional[str],
             checksums: Optional[Dict[str, str]] = None) -> Path:
    """The complete archive file: found, downloaded, or concatenated from its parts."""
    sums = dict(checksums or {})
    whole_md5 = sums.get(archive.name, archive.md5)
    url = archive.url_dir or base_url
    if archives_dir is not None and (Path(archives_dir) / archive.name).is_file():
        return _locate(archive.name, whole_md5, archives_dir, dl_dir, None)
    target = Path(dl_dir) / archive.name
    if not archive.parts:
        return _locate(archive.name, whole_md5, archives_dir, dl_dir, url)
    if verified(target, whole_md5):
        return target
    parts = [_locate(p, sums.get(p, archive.part_md5.get(p)), archives_dir, dl_dir, url) for p in archive.parts]
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".cat")
    print(f"concatenating {len(parts)} parts -> {target}", flush=True)
    with open(tmp, "wb") as out:
        for part in parts:
            with open(part, "rb") as handle:
                shutil.copyfileobj(handle, out, CHUNK)
    if whole_md5 is not None and md5sum(tmp) != whole_md5:
        tmp.unlink()
        raise InputError(target, f"the concatenated parts do not have the MD5 {whole_md5} of {archive.name} "
                         f"(parts: {', '.join(str(p) for p in parts)})")
    os.replace(tmp, target)
    if whole_md5 is not None:
        _note(target).write_text(f"{whole_md5} {target.stat().st_size}\n")
    return target


def extract(path: Path, dest: Path) -> None:
    """Extract a zip or tar(.gz) archive into ``dest``: regular files and directories only, none
    outside ``dest``, and no special mode bits (Python's tarfile ``data`` filter semantics)."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    print(f"extracting {path} -> {dest}", flush=True)
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                _check_member(root, info.filename, path)
                mode = info.external_attr >> 16  # Unix mode where the zip was made on Unix, else 0
                if mode and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                    raise InputError(path, f"member '{info.filename}' is a {_kind(mode)}, not a regular file "
                                     "or directory (refused)")
            archive.extractall(dest)  # zipfile applies no mode bits: files get the umask's defaults
    elif tarfile.is_tarfile(path):
        with tarfile.open(path) as archive:
            members = archive.getmembers()
            for member in members:
                _check_member(root, member.name, path)
                if not (member.isfile() or member.isdir()):
                    raise InputError(path, f"member '{member.name}' is a {_kind(member)}, not a regular file "
                                     "or directory (refused)")
            try:
                archive.extractall(dest, members=members, filter="data")
            except tarfile.FilterError as exc:
                raise InputError(path, f"unsafe member refused: {exc}") from None
    else:
        raise InputError(path, f"'{path.name}' is neither a zip nor a tar archive")


def _kind(member) -> str:
    """What a non-regular tar member or zip mode is, for messages."""
    if isinstance(member, int):
        return {stat.S_IFLNK: "symbolic link", stat.S_IFCHR: "character device", stat.S_IFBLK: "block device",
                stat.S_IFIFO: "FIFO", stat.S_IFSOCK: "socket"}.get(stat.S_IFMT(member), "special file")
    for test, name in ((member.issym, "symbolic link"), (member.islnk, "hard link"), (member.ischr, "character device"),
                       (member.isblk, "block device"), (member.isfifo, "FIFO")):
        if test():
            return name
    return "special file"


def _check_member(root: Path, member: str, archive: Path) -> None:
    target = (root / member).resolve()
    if target != root and root not in target.parents:
        raise InputError(archive, f"member '{member}' would be written outside {root} (refused)")


def marker(dest: Path, archive: Archive) -> Path:
    return Path(dest) / f".{archive.name}.extracted"


def _extracting(dest: Path, archive: Archive) -> Path:
    """Written before extraction starts: a partial tree with this note is ours, from a killed run."""
    return Path(dest) / f".{archive.name}.extracting"


def layout_missing(archive: Archive, corpus_dir: Path) -> Tuple[int, List[str]]:
    """How much of the official extracted layout of ``archive`` is under ``corpus_dir``:
    (number of its folders present, what is missing -- folders, or files expected in them).
    A plain file (``extract=False``) counts as one folder: itself."""
    dest = Path(corpus_dir) / archive.extract_to
    if not archive.extract:
        path = dest / archive.name
        return (1, []) if path.is_file() else (0, [str(path)])
    present, missing = 0, []
    for folder, pattern in archive.layout:
        path = dest / folder
        if not path.is_dir():
            missing.append(f"{path}/")
            continue
        present += 1
        if next(path.glob(pattern), None) is None:
            missing.append(f"{path}/{pattern}")
    return present, missing


def fetch_archive(archive: Archive, corpus_dir: Path, dl_dir: Path, archives_dir: Optional[Path] = None,
                  base_url: Optional[str] = None, checksums: Optional[Dict[str, str]] = None,
                  keep: bool = True) -> Path:
    """Make ``corpus_dir/archive.extract_to`` hold the extracted archive; returns that directory.

    ``keep=False`` deletes a downloaded (not an on-disk ``archives_dir``) archive after extraction.
    """
    dest = Path(corpus_dir) / archive.extract_to
    done = marker(dest, archive)
    if done.is_file():
        print(f"{archive.name}: already extracted in {dest}, skipped", flush=True)
        return dest
    if (archive.layout or not archive.extract) and not _extracting(dest, archive).is_file():
        present, missing = layout_missing(archive, corpus_dir)
        if present and not missing:
            print(f"{archive.name}: found in its official extracted layout in {dest}, skipped", flush=True)
            return dest
    path = assemble(archive, archives_dir, dl_dir, base_url, checksums)
    if archive.extract:
        dest.mkdir(parents=True, exist_ok=True)
        _extracting(dest, archive).write_text(f"{archive.name}\n")
        extract(path, dest)
    else:
        dest.mkdir(parents=True, exist_ok=True)
        if path.resolve() != (dest / archive.name).resolve():
            # Copied atomically: a file at its place is complete, so a hand-placed one counts too.
            with atomic_path(dest / archive.name) as tmp:
                shutil.copyfile(path, tmp)
    done.write_text(f"{archive.name}\n")
    _extracting(dest, archive).unlink(missing_ok=True)
    if not keep and archive.extract and Path(dl_dir).resolve() in path.resolve().parents:
        path.unlink()
        for sidecar in (_note(path),):
            if sidecar.is_file():
                sidecar.unlink()
    return dest


def check_hand_extracted(archives: Sequence[Archive], corpus_dir: Path) -> None:
    """Stop when a corpus is only partly there as extracted by hand (no stage-0 marker): an
    archive's layout with folders missing, or some archives' layouts complete and others absent.
    A tree left by a killed extraction of our own is not checked (it is extracted again)."""
    corpus_dir = Path(corpus_dir)
    found, absent = [], []
    for archive in archives:
        dest = corpus_dir / archive.extract_to
        if not archive.extract or not archive.layout or marker(dest, archive).is_file() \
                or _extracting(dest, archive).is_file():
            continue
        present, missing = layout_missing(archive, corpus_dir)
        if present and missing:
            raise InputError(dest, f"holds part of the extracted {archive.name} but not {', '.join(missing)} "
                             "(expected its complete official layout; complete it, or move it away so that "
                             "stage 0 extracts the archive)")
        (found if present else absent).append(archive)
    if found and absent:
        missing = [m for a in absent for m in layout_missing(a, corpus_dir)[1]]
        raise InputError(corpus_dir, f"holds {', '.join(a.name for a in found)} extracted by hand but not "
                         f"{', '.join(a.name for a in absent)}: missing {', '.join(missing)} (complete the corpus, "
                         "or move the partial copy away so that stage 0 fetches every archive)")


def fetch_all(archives: Iterable[Archive], corpus_dir: Path, dl_dir: Path, archives_dir: Optional[Path] = None,
              base_url: Optional[str] = None, checksums: Optional[Dict[str, str]] = None,
              keep: bool = True) -> List[Path]:
    archives = list(archives)
    check_hand_extracted(archives, corpus_dir)
    return [fetch_archive(a, corpus_dir, dl_dir, archives_dir, base_url, checksums, keep) for a in archives]
