"""Download the real datasets: CMU motion capture (BVH) and COCO 2017 keypoints.

Command line::

    python -m pose_lab.data.download cmu  [--dest DIR]     # CMU mocap, BVH conversion
    python -m pose_lab.data.download coco [--dest DIR] [--train]
    python -m pose_lab.data.download h36m                   # prints how to place Human3.6M

Downloads are

* **resumable**: bytes go to ``<file>.part``; a connection that drops (fewer
  bytes than the server announced, a reset, a timeout) raises
  :class:`DownloadError` and keeps the ``.part`` file, and a new run asks the
  server for the rest with an HTTP ``Range`` request (and starts over if the
  server ignores it, or answers 416 to a ``.part`` whose size does not match);
* **verified**: the size and SHA-256 are checked when known (see
  :data:`DATASETS`; where a checksum is unknown it says so and only the size
  reported by the server is checked);
* **atomic**: the ``.part`` file is renamed to its final name only once
  complete and verified, so a file under its final name is always whole. A
  checksum mismatch deletes the ``.part`` file and raises :class:`ChecksumError`;
  so does a ``.zip``/``.tar*`` file that does not start with its format's magic
  bytes (an HTML page served in place of an archive whose checksum is unknown).

Archives are then extracted (members that would escape the destination are
refused) and a ``.complete`` marker records it, so running the command again
does nothing.

Where the files come from:

* **COCO 2017**: the official ``images.cocodataset.org`` zips. Sizes and
  SHA-256 as recorded by TensorFlow Datasets
  (``tensorflow_datasets/url_checksums/coco.txt``). Default destination
  ``data/coco/`` (``annotations/person_keypoints_val2017.json`` and
  ``val2017/``). License: annotations CC BY 4.0; each image keeps its Flickr
  license (listed per image in the JSON).
* **CMU Graphics Lab Motion Capture Database** (http://mocap.cs.cmu.edu) in
  Bruce Hahne's BVH conversion (cgspeed.com, 2010 MotionBuilder-friendly
  release, whose original hosting on Google Sites is gone), from its GitHub
  mirror ``una-dinosauria/cmu-mocap`` (about 2,500 clips, one folder per
  subject, e.g. ``131/131_03.bvh``). **No checksum is known**: GitHub builds
  branch archives on request and does not promise identical bytes, so only
  completeness is checked. Default destination ``data/cmu/``. License: "free
  for all uses" (CMU); the conversion adds no restriction. Every cgspeed file
  starts with an added T-pose frame.

Human3.6M cannot be downloaded by a script: its license requires each user to
register and forbids redistribution; ``h36m`` prints the steps.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "Resource",
    "DATASETS",
    "ChecksumError",
    "DownloadError",
    "download",
    "extract",
    "fetch",
    "H36M_INSTRUCTIONS",
    "main",
]


class ChecksumError(ValueError):
    """A downloaded file does not have the expected size or SHA-256."""


@dataclass(frozen=True)
class Resource:
    """One file to download.

    Args:
        url: where it is.
        filename: name on disk (inside the destination folder).
        sha256: expected SHA-256 hex digest, or ``None`` when unknown.
        size: expected size in bytes, or ``None`` when unknown.
        extract_to: folder (relative to the destination) the zip is extracted
            into, or ``None`` to keep the file as is.
        strip_components: leading path components removed from every member
            while extracting (like ``tar --strip-components``).
        note: where the checksum comes from, or why it is unknown.
    """

    url: str
    filename: str
    sha256: str | None = None
    size: int | None = None
    extract_to: str | None = None
    strip_components: int = 0
    note: str = ""


_TFDS = "size and SHA-256 from tensorflow_datasets/url_checksums/coco.txt"

#: dataset name -> (default sub-folder of ``runtime.data_dir()``, resources, optional resources).
DATASETS = {
    "coco": (
        "coco",
        [
            Resource(
                "http://images.cocodataset.org/annotations/annotations_trainval2017.zip",
                "annotations_trainval2017.zip",
                sha256="113a836d90195ee1f884e704da6304dfaaecff1f023f49b6ca93c4aaae470268",
                size=252907541, extract_to=".", note=_TFDS,
            ),
            Resource(
                "http://images.cocodataset.org/zips/val2017.zip",
                "val2017.zip",
                sha256="4f7e2ccb2866ec5041993c9cf2a952bbed69647b115d0f74da7ce8f4bef82f05",
                size=815585330, extract_to=".", note=_TFDS,
            ),
        ],
        {
            "train": Resource(
                "http://images.cocodataset.org/zips/train2017.zip",
                "train2017.zip",
                sha256="69a8bb58ea5f8f99d24875f21416de2e9ded3178e903f1f7603e283b9e06d929",
                size=19336861798, extract_to=".", note=_TFDS,
            ),
        },
    ),
    "cmu": (
        "cmu",
        [
            Resource(
                "https://github.com/una-dinosauria/cmu-mocap/archive/refs/heads/master.zip",
                "cmu-mocap-master.zip",
                sha256=None, size=None, extract_to=".", strip_components=1,
                note="checksum unknown: GitHub generates branch archives on request "
                "(bytes not guaranteed stable); only completeness is checked",
            ),
        ],
        {},
    ),
}

H36M_INSTRUCTIONS = """\
Human3.6M cannot be downloaded automatically: its license (academic use,
no redistribution) requires every user to register.

1. Register at http://vision.imar.ro/human3.6m/ and accept the license.
2. Get the common preprocessed files used by most lifting papers
   (Martinez et al. 2017, Pavllo et al. 2019 / VideoPose3D):
     data_3d_h36m.npz             positions_3d[subject][action]: (T, 32, 3), metres
     data_2d_h36m_gt.npz          positions_2d[subject][action]: 4 x (T, 17, 2) pixels,
                                  plus metadata
   VideoPose3D's DATASETS.md explains how to build them from the official
   "D3 Positions" and "D2 Positions" downloads (its prepare_data_h36m.py).
3. Put them in
     {dest}/data_3d_h36m.npz
     {dest}/data_2d_h36m_gt.npz      (and any data_2d_h36m_<detector>.npz)
4. Load them with pose_lab.data.h36m.load_h36m(path_3d, path_2d). The notebooks
   use them automatically when present; otherwise they use the synthetic
   Human3.6M-format data written by pose_lab.data.synthetic.
"""


def _say(msg: str, quiet: bool) -> None:
    if not quiet:
        print(msg, file=sys.stderr, flush=True)


def _sha256(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def _verify(part: Path, url: str, sha256: str | None, size: int | None) -> None:
    """Raise ChecksumError (and delete ``part``) unless it matches.

    Only called once the server has sent everything it announced: a short
    file at this point is wrong bytes, not an interrupted transfer.
    """
    actual_size = part.stat().st_size
    problem = None
    if size is not None and actual_size != size:
        problem = f"size {actual_size} bytes, expected {size}"
    elif sha256 is not None:
        digest = _sha256(part)
        if digest.lower() != sha256.lower():
            problem = f"SHA-256 {digest}, expected {sha256}"
    if problem:
        part.unlink(missing_ok=True)
        raise ChecksumError(f"{url}: downloaded file has {problem}; the partial file {part} was deleted")


#: Leading bytes of the archive formats :func:`fetch` extracts, by file suffix.
_ARCHIVE_MAGIC = {
    ".zip": (b"PK\x03\x04", b"PK\x05\x06"),  # a zip with members, an empty zip
    ".gz": (b"\x1f\x8b",),
    ".tgz": (b"\x1f\x8b",),
    ".bz2": (b"BZh",),
    ".xz": (b"\xfd7zXZ\x00",),
}


def _check_archive(part: Path, path: Path, url: str) -> None:
    """Delete ``part`` and raise ChecksumError when a ``.zip``/``.tar.gz``... does not start like one.

    Catches an HTML error or login page served with status 200 in place of an
    archive whose checksum is unknown, before it takes the archive's name.
    """
    suffix = path.suffix.lower()
    magic = _ARCHIVE_MAGIC.get(suffix)
    with open(part, "rb") as fh:
        head = fh.read(512)
    if magic is not None:
        ok = head.startswith(magic)
        expected = f"a {suffix} archive (starting with {magic[0]!r})"
    elif suffix == ".tar":
        ok = len(head) >= 262 and head[257:262] == b"ustar"
        expected = "a tar archive ('ustar' at byte 257)"
    else:
        return
    if not ok:
        got = part.stat().st_size
        part.unlink(missing_ok=True)
        text = head[:60].decode("latin-1").replace("\n", " ").strip()
        raise ChecksumError(
            f"{url}: the server sent {got} bytes that are not "
            f"{expected} for {path} (they start with {text!r}: an error or login page?); nothing was kept"
        )


class DownloadError(urllib.error.URLError, ConnectionError):
    """A transfer that stopped early or failed on the network; the ``.part`` file is kept.

    Both a :class:`ConnectionError` and a :class:`urllib.error.URLError` (so
    code that catches either, or ``OSError``, keeps working). Run the same
    call again to resume from the bytes already on disk.

    Attributes:
        url, path: what was being downloaded, and where.
        received: bytes on disk in the ``.part`` file.
        expected: bytes announced (``None`` when the server did not say).
    """

    def __init__(self, message: str, url: str = "", path=None, received: int = 0, expected: int | None = None):
        super().__init__(message)
        self.url, self.path, self.received, self.expected = url, path, received, expected

    def __str__(self) -> str:
        return str(self.reason)


def _http_error(err: urllib.error.HTTPError, url: str, path: Path) -> urllib.error.HTTPError:
    """The same HTTPError, its message naming the URL and the file."""
    return urllib.error.HTTPError(url, err.code, f"{err.reason} for {url} (downloading {path})", err.headers, None)


def _content_total(headers) -> int | None:
    """Total size from a ``Content-Range: bytes a-b/N`` (or ``bytes */N``) header, else None."""
    total = (headers.get("Content-Range", "") if headers is not None else "").rpartition("/")[2].strip()
    return int(total) if total.isdigit() else None


def download(url: str, path, sha256: str | None = None, size: int | None = None,
             chunk_size: int = 1 << 20, timeout: float = 60.0, quiet: bool = False) -> Path:
    """Download ``url`` to ``path``: resumable, verified, atomic.

    Args:
        url: http(s) URL.
        path: final file path. Bytes are written to ``path + ".part"`` first.
        sha256: expected hex digest, or ``None`` when unknown.
        size: expected size in bytes, or ``None`` (then the server's
            ``Content-Length``/``Content-Range`` is checked when sent).
        chunk_size: bytes per read (a positive int).
        timeout: socket timeout in seconds.
        quiet: no progress messages (they go to stderr).

    Returns:
        ``Path`` of the complete file.

    Raises:
        DownloadError: the connection dropped or failed (fewer bytes than the
            server announced, a reset, a timeout); a ``ConnectionError`` and a
            ``URLError``. The ``.part`` file is kept so the next call resumes.
        urllib.error.HTTPError: the server answered an error (404...); the
            message names the URL and the file.
        ChecksumError: size or SHA-256 differ, or a ``.zip``/``.tar*`` file
            does not start like one (an HTML page served in its place); no
            file is left behind.
    """
    import http.client

    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive int (bytes per read), got {chunk_size!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        _say(f"{path} already present", quiet)
        return path
    part = path.with_name(path.name + ".part")
    for attempt in range(2):  # a second pass only after a stale .part was dropped on HTTP 416
        have = part.stat().st_size if part.exists() else 0
        if size is not None and have > size:
            part.unlink()
            have = 0
        expected_total = size
        if size is not None and have == size:
            break  # whole already: verified below
        request = urllib.request.Request(url, headers={"User-Agent": "pose_lab-download"})
        if have:
            request.add_header("Range", f"bytes={have}-")
        try:
            response = urllib.request.urlopen(request, timeout=timeout)
        except urllib.error.HTTPError as err:
            if err.code == 416 and have:
                # Nothing left to send from byte ``have``: whole only if the sizes say so
                # (or, lacking any size, the checksum); else the .part is stale.
                server_total = _content_total(err.headers)
                known = size if size is not None else server_total
                if (known is not None and have == known) or (known is None and sha256 is not None):
                    expected_total = known
                    break
                _say(f"{url}: the server has {server_total if server_total is not None else 'an unknown number of'}"
                     f" bytes, the partial file {have}: starting over", quiet)
                part.unlink(missing_ok=True)
                continue
            raise _http_error(err, url, path) from None
        except (urllib.error.URLError, http.client.HTTPException, OSError) as err:
            raise DownloadError(f"{url}: network error before the transfer ({type(err).__name__}: "
                                f"{getattr(err, 'reason', err)}); {have} bytes of {path} kept in {part}, "
                                "run again to resume", url, path, have, size) from err
        with response:
            status = getattr(response, "status", 200)
            if have and status != 206:
                _say(f"{url}: server ignored the Range request, starting over", quiet)
                have = 0
            length = response.headers.get("Content-Length")
            body_length = int(length) if length and length.strip().isdigit() else None
            if status == 206:
                content_range = response.headers.get("Content-Range", "")
                if not content_range.startswith(f"bytes {have}-"):
                    part.unlink(missing_ok=True)
                    raise ChecksumError(
                        f"{url}: asked for bytes {have}- but the server sent {content_range!r}; "
                        "the partial file was deleted, run again"
                    )
                server_total = _content_total(response.headers)
                if server_total is None and body_length is not None:
                    server_total = have + body_length
            else:
                server_total = body_length
            if expected_total is None:
                expected_total = server_total
            elif server_total is not None and server_total != expected_total:
                raise ChecksumError(
                    f"{url}: server reports {server_total} bytes, expected {expected_total}"
                )
            done, next_report = have, have
            if have:
                _say(f"{url}: resuming at {have / 1e6:.1f} MB", quiet)
            with open(part, "ab" if have else "wb") as out:
                try:
                    while True:
                        block = response.read(chunk_size)
                        if not block:
                            break
                        out.write(block)
                        done += len(block)
                        if done >= next_report:
                            pct = f" ({100 * done / expected_total:.0f}%)" if expected_total else ""
                            _say(f"{path.name}: {done / 1e6:.1f} MB{pct}", quiet)
                            next_report = done + (50 << 20)
                except (http.client.HTTPException, OSError) as err:  # reset, timeout, IncompleteRead
                    out.flush()
                    raise DownloadError(
                        f"{url}: connection lost after {done} of "
                        f"{expected_total if expected_total is not None else 'an unknown number of'} bytes "
                        f"({type(err).__name__}: {err}); the partial file {part} is kept, run again to resume",
                        url, path, done, expected_total) from err
            # http.client reports a connection closed early as a normal end of file:
            # compare with what the server announced for this response.
            announced = have + body_length if body_length is not None else expected_total
            if announced is not None and done < announced:
                raise DownloadError(
                    f"{url}: connection closed after {done} of {announced} bytes; the partial file {part} "
                    "is kept, run again to resume", url, path, done, announced)
        break
    _verify(part, url, sha256, expected_total)
    _check_archive(part, path, url)
    os.replace(part, path)
    _say(f"{path} complete" + ("" if sha256 else " (no checksum known; size checked only)"), quiet)
    return path


def extract(archive, dest, strip_components: int = 0) -> list:
    """Extract a zip into ``dest``; returns the extracted file paths.

    Members are first written to a temporary folder inside ``dest`` and moved
    into place only when the whole archive is extracted. Members with absolute
    paths or ``..`` are refused (``ValueError`` naming the archive and member).
    """
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    tmp = dest / f".extract-{archive.stem}"
    shutil.rmtree(tmp, ignore_errors=True)
    written = []
    if not archive.is_file():
        raise FileNotFoundError(f"archive not found: {archive}")
    if not zipfile.is_zipfile(archive):
        with open(archive, "rb") as fh:
            head = fh.read(40).decode("latin-1").replace("\n", " ")
        raise ValueError(f"{archive}: not a zip archive (it starts with {head!r})")
    try:
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                parts = Path(info.filename.replace("\\", "/")).parts
                if info.filename.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
                    raise ValueError(f"{archive}: refusing to extract {info.filename!r} (leaves the destination)")
                parts = parts[strip_components:]
                if not parts or info.is_dir():
                    continue
                target = tmp.joinpath(*parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
                written.append(Path(*parts))
        for rel in written:
            final = dest / rel
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp / rel, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return [dest / rel for rel in written]


def fetch(name: str, dest=None, optional=(), keep_archives: bool = False, quiet: bool = False) -> Path:
    """Download and extract dataset ``name`` (``"cmu"`` or ``"coco"``) into ``dest``.

    Args:
        name: a key of :data:`DATASETS`.
        dest: destination folder; default ``runtime.data_dir() / <name>``.
        optional: names of optional parts (``("train",)`` for COCO train2017).
        keep_archives: keep the zip files after extraction.
        quiet: no progress messages.

    Returns:
        The destination folder.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; expected one of {sorted(DATASETS)}")
    sub, resources, extras = DATASETS[name]
    unknown = [o for o in optional if o not in extras]
    if unknown:
        raise ValueError(f"{name}: unknown optional parts {unknown}; available: {sorted(extras)}")
    if dest is None:
        from pose_lab import runtime

        dest = runtime.data_dir() / sub
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for res in list(resources) + [extras[o] for o in optional]:
        marker = dest / f".complete-{res.filename}"
        if marker.exists():
            _say(f"{res.filename}: already downloaded and extracted in {dest}", quiet)
            continue
        _say(f"{res.url} -> {dest} ({res.note})" if res.note else f"{res.url} -> {dest}", quiet)
        archive = download(res.url, dest / res.filename, sha256=res.sha256, size=res.size, quiet=quiet)
        if res.extract_to is not None:
            _say(f"extracting {archive.name}", quiet)
            try:
                extract(archive, dest / res.extract_to, strip_components=res.strip_components)
            except (zipfile.BadZipFile, EOFError) as err:
                archive.unlink(missing_ok=True)  # a broken archive must not block the next fetch
                raise ChecksumError(f"{res.url}: {archive} is not a readable zip ({err}); it was deleted, "
                                    "run again to download it anew") from None
            except ValueError as err:
                if "not a zip archive" not in str(err):
                    raise
                archive.unlink(missing_ok=True)
                raise ChecksumError(f"{res.url}: {err}; it was deleted, run again to download it anew") from None
            if not keep_archives:
                archive.unlink()
        marker.write_text(res.url + "\n")
    return dest


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pose_lab.data.download",
        description="Download real datasets for pose_lab (resumable, verified, atomic).",
    )
    sub = parser.add_subparsers(dest="dataset", required=True)
    cmu = sub.add_parser("cmu", help="CMU motion capture database, BVH conversion (~2,500 clips)")
    cmu.add_argument("--dest", type=Path, default=None, help="destination folder (default data/cmu)")
    cmu.add_argument("--keep-archives", action="store_true", help="keep the zip after extraction")
    coco = sub.add_parser("coco", help="COCO 2017 keypoint annotations + val2017 images (~1 GB)")
    coco.add_argument("--dest", type=Path, default=None, help="destination folder (default data/coco)")
    coco.add_argument("--train", action="store_true", help="also train2017 images (19 GB)")
    coco.add_argument("--keep-archives", action="store_true", help="keep the zips after extraction")
    h36m = sub.add_parser("h36m", help="print how to obtain and place Human3.6M (licensed)")
    h36m.add_argument("--dest", type=Path, default=None, help="folder to mention (default data/h36m)")
    args = parser.parse_args(argv)

    if args.dataset == "h36m":
        if args.dest is None:
            from pose_lab import runtime

            args.dest = runtime.data_dir() / "h36m"
        print(H36M_INSTRUCTIONS.format(dest=args.dest))
        return 0
    optional = ("train",) if getattr(args, "train", False) else ()
    try:
        dest = fetch(args.dataset, args.dest, optional=optional, keep_archives=args.keep_archives)
    except (ChecksumError, urllib.error.URLError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"{args.dataset}: ready in {dest}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
