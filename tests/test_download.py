"""Downloader: full download, resume, checksum mismatch, extraction, CLI.

No network: a local HTTP server on 127.0.0.1 (``http.server`` in a thread)
serves the bytes, with or without support for ``Range`` requests.
"""

import hashlib
import http.server
import io
import threading
import urllib.error
import zipfile
from pathlib import Path

import pytest

from pose_lab.data import download as dl

PAYLOAD = bytes(range(256)) * 4000 + b"tail"  # ~1 MB, not a multiple of the chunk size


class _Handler(http.server.BaseHTTPRequestHandler):
    files: dict = {}
    log: list = []
    honour_range = True
    drop_after = None  # bytes of the body sent before the connection is cut (the rest announced)

    def do_GET(self):  # noqa: N802 (http.server's naming)
        data = self.files.get(self.path)
        rng = self.headers.get("Range")
        self.log.append((self.path, rng))
        if data is None:
            self.send_error(404)
            return
        start = 0
        if rng and self.honour_range:
            start = int(rng.removeprefix("bytes=").split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.drop_after is not None:  # announce everything, send a part, hang up
            body = body[: self.drop_after]
            type(self).drop_after = None  # only the first request is cut
            self.close_connection = True
        # counted before writing: the client may check ``sent`` as soon as it has the last byte,
        # before this thread would get past ``write`` (a race seen under load)
        type(self).sent = getattr(type(self), "sent", 0) + len(body)
        self.wfile.write(body)
        self.wfile.flush()

    def log_message(self, *args):  # keep pytest output clean
        pass


@pytest.fixture
def server():
    handler = type("Handler", (_Handler,), {"files": {}, "log": [], "honour_range": True, "sent": 0,
                                            "drop_after": None})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    handler.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        yield handler
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def sha(data):
    return hashlib.sha256(data).hexdigest()


def test_full_download(server, tmp_path):
    server.files["/f.bin"] = PAYLOAD
    out = dl.download(server.base + "/f.bin", tmp_path / "f.bin", sha256=sha(PAYLOAD),
                      size=len(PAYLOAD), chunk_size=1000, quiet=True)
    assert out.read_bytes() == PAYLOAD
    assert not (tmp_path / "f.bin.part").exists()
    assert server.log == [("/f.bin", None)]
    # A second call finds the complete file and does not touch the network.
    dl.download(server.base + "/f.bin", tmp_path / "f.bin", sha256=sha(PAYLOAD), quiet=True)
    assert len(server.log) == 1


def test_resume_from_partial_part_file(server, tmp_path):
    server.files["/f.bin"] = PAYLOAD
    half = len(PAYLOAD) // 2 + 7
    (tmp_path / "f.bin.part").write_bytes(PAYLOAD[:half])
    out = dl.download(server.base + "/f.bin", tmp_path / "f.bin", sha256=sha(PAYLOAD), quiet=True)
    assert out.read_bytes() == PAYLOAD
    assert server.log == [("/f.bin", f"bytes={half}-")]
    assert server.sent == len(PAYLOAD) - half  # only the missing bytes travelled
    assert not (tmp_path / "f.bin.part").exists()


def test_complete_part_file_is_verified_and_renamed(server, tmp_path):
    server.files["/f.bin"] = PAYLOAD
    (tmp_path / "f.bin.part").write_bytes(PAYLOAD)
    # Size unknown: the server answers 416 to "bytes=<len>-", the file is checked and kept.
    out = dl.download(server.base + "/f.bin", tmp_path / "f.bin", sha256=sha(PAYLOAD), quiet=True)
    assert out.read_bytes() == PAYLOAD


def test_server_without_range_support_restarts_cleanly(server, tmp_path):
    server.files["/f.bin"] = PAYLOAD
    server.honour_range = False
    (tmp_path / "f.bin.part").write_bytes(b"garbage that is not the start of the file")
    out = dl.download(server.base + "/f.bin", tmp_path / "f.bin", sha256=sha(PAYLOAD), quiet=True)
    assert out.read_bytes() == PAYLOAD


def test_checksum_mismatch_leaves_no_file(server, tmp_path):
    server.files["/f.bin"] = PAYLOAD
    with pytest.raises(dl.ChecksumError, match="SHA-256"):
        dl.download(server.base + "/f.bin", tmp_path / "f.bin", sha256="0" * 64, quiet=True)
    assert list(tmp_path.iterdir()) == []


def test_corrupt_partial_file_detected(server, tmp_path):
    server.files["/f.bin"] = PAYLOAD
    (tmp_path / "f.bin.part").write_bytes(b"X" * 1000)  # wrong bytes, resumed after them
    with pytest.raises(dl.ChecksumError):
        dl.download(server.base + "/f.bin", tmp_path / "f.bin", sha256=sha(PAYLOAD), quiet=True)
    assert list(tmp_path.iterdir()) == []


def test_size_mismatch_leaves_no_file(server, tmp_path):
    server.files["/f.bin"] = PAYLOAD
    with pytest.raises(dl.ChecksumError, match="server reports"):
        dl.download(server.base + "/f.bin", tmp_path / "f.bin", size=len(PAYLOAD) + 1, quiet=True)
    assert not (tmp_path / "f.bin").exists()


def _zip(members):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_extract_strips_components_and_refuses_escapes(tmp_path):
    good = tmp_path / "good.zip"
    good.write_bytes(_zip({"top/131/131_01.bvh": b"a", "top/README": b"b"}))
    files = dl.extract(good, tmp_path / "out", strip_components=1)
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in files) == ["131/131_01.bvh", "README"]
    assert (tmp_path / "out/131/131_01.bvh").read_bytes() == b"a"
    bad = tmp_path / "bad.zip"
    bad.write_bytes(_zip({"../evil.txt": b"x"}))
    with pytest.raises(ValueError, match="evil.txt"):
        dl.extract(bad, tmp_path / "out2")
    assert not (tmp_path / "evil.txt").exists()


TINY_BVH = b"""HIERARCHY
ROOT Hips
{
  OFFSET 0 0 0
  CHANNELS 3 Xposition Yposition Zposition
  End Site
  {
    OFFSET 0 1 0
  }
}
MOTION
Frames: 1
Frame Time: 0.0083333
0 0 0
"""


def test_cli_cmu_end_to_end(server, tmp_path, monkeypatch, capsys):
    archive = _zip({"cmu-mocap-master/131/131_01.bvh": TINY_BVH})
    server.files["/cmu.zip"] = archive
    res = dl.Resource(server.base + "/cmu.zip", "cmu.zip", sha256=sha(archive), size=len(archive),
                      extract_to=".", strip_components=1)
    monkeypatch.setitem(dl.DATASETS, "cmu", ("cmu", [res], {}))
    assert dl.main(["cmu", "--dest", str(tmp_path / "cmu")]) == 0
    from pose_lab.data.bvh import load_bvh

    clip = load_bvh(tmp_path / "cmu/131/131_01.bvh")
    assert clip.fps == 120.0
    assert not (tmp_path / "cmu/cmu.zip").exists()  # archive removed after extraction
    assert "ready in" in capsys.readouterr().out
    # Running again is a no-op (marker file), even with the server gone.
    server.files.clear()
    assert dl.main(["cmu", "--dest", str(tmp_path / "cmu")]) == 0


def test_cli_reports_checksum_error(server, tmp_path, monkeypatch, capsys):
    server.files["/c.zip"] = b"not what we expect"
    res = dl.Resource(server.base + "/c.zip", "c.zip", sha256="1" * 64, extract_to=".")
    monkeypatch.setitem(dl.DATASETS, "coco", ("coco", [res], {}))
    assert dl.main(["coco", "--dest", str(tmp_path)]) == 1
    assert "SHA-256" in capsys.readouterr().err
    assert list(Path(tmp_path).iterdir()) == []


def test_h36m_prints_instructions(capsys, tmp_path):
    assert dl.main(["h36m", "--dest", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "data_3d_h36m.npz" in out and str(tmp_path) in out and "license" in out


def test_registry_is_consistent():
    for name, (sub, resources, extras) in dl.DATASETS.items():
        for res in list(resources) + list(extras.values()):
            assert res.url.startswith(("http://", "https://"))
            assert res.sha256 is None or len(res.sha256) == 64
            assert res.sha256 is not None or "unknown" in res.note  # an unknown checksum says so


# -- faults (issue 12): a dropped connection, a stale .part, a junk archive, errors that name the URL ----------
@pytest.mark.parametrize("known", [True, False], ids=["size+sha-known", "nothing-known"])
def test_dropped_connection_keeps_part_and_resumes(server, tmp_path, known):
    server.files["/f.bin"] = PAYLOAD
    server.drop_after = 150_000
    kwargs = {"sha256": sha(PAYLOAD), "size": len(PAYLOAD)} if known else {}
    with pytest.raises(dl.DownloadError, match=r"150000 of 1024004 bytes") as info:
        dl.download(server.base + "/f.bin", tmp_path / "f.bin", chunk_size=4096, quiet=True, **kwargs)
    assert isinstance(info.value, ConnectionError) and server.base + "/f.bin" in str(info.value)
    assert (info.value.received, info.value.expected) == (150_000, len(PAYLOAD))
    part = tmp_path / "f.bin.part"
    assert part.read_bytes() == PAYLOAD[:150_000]  # the good bytes stay for the next run
    assert not (tmp_path / "f.bin").exists()
    out = dl.download(server.base + "/f.bin", tmp_path / "f.bin", quiet=True, **kwargs)
    assert sha(out.read_bytes()) == sha(PAYLOAD)
    assert server.log[-1] == ("/f.bin", "bytes=150000-")  # resumed, not restarted
    assert not part.exists()


def test_dropped_connection_is_a_cli_error_not_a_crash(server, tmp_path, monkeypatch, capsys):
    archive = _zip({"top/131/131_01.bvh": TINY_BVH * 50})
    server.files["/cmu.zip"] = archive
    server.drop_after = 100
    res = dl.Resource(server.base + "/cmu.zip", "cmu.zip", extract_to=".", strip_components=1, note="unknown")
    monkeypatch.setitem(dl.DATASETS, "cmu", ("cmu", [res], {}))
    assert dl.main(["cmu", "--dest", str(tmp_path)]) == 1
    assert "run again to resume" in capsys.readouterr().err
    assert (tmp_path / "cmu.zip.part").stat().st_size == 100
    assert dl.main(["cmu", "--dest", str(tmp_path)]) == 0
    assert (tmp_path / "131/131_01.bvh").read_bytes() == TINY_BVH * 50


def test_stale_part_is_not_accepted_on_416(server, tmp_path):
    server.files["/f.bin"] = PAYLOAD
    # A .part from another (larger) version of the file, sizes and checksum unknown: the server
    # answers 416 to "bytes=<len>-"; that does not make the .part whole.
    (tmp_path / "f.bin.part").write_bytes(PAYLOAD + b"stale trailing bytes")
    out = dl.download(server.base + "/f.bin", tmp_path / "f.bin", quiet=True)
    assert out.read_bytes() == PAYLOAD
    assert server.log == [("/f.bin", f"bytes={len(PAYLOAD) + 20}-"), ("/f.bin", None)]


def test_junk_archive_never_takes_its_final_name(server, tmp_path):
    page = b"<!DOCTYPE html><html><body>Sign in to continue</body></html>" * 10
    server.files["/a.zip"] = page
    with pytest.raises(dl.ChecksumError, match=r"a\.zip.*not a \.zip archive.*DOCTYPE") as info:
        dl.download(server.base + "/a.zip", tmp_path / "a.zip", quiet=True)
    assert server.base + "/a.zip" in str(info.value)
    assert list(tmp_path.iterdir()) == []
    # A junk archive already under its final name (older kit versions): fetch deletes it and says so.
    (tmp_path / "c.zip").write_bytes(page)
    res = dl.Resource(server.base + "/c.zip", "c.zip", extract_to=".", note="unknown")
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(dl.DATASETS, "cmu", ("cmu", [res], {}))
        with pytest.raises(dl.ChecksumError, match=r"c\.zip.*not a zip archive"):
            dl.fetch("cmu", tmp_path, quiet=True)
    assert not (tmp_path / "c.zip").exists()
    with pytest.raises(ValueError, match=r"not a zip archive"):
        (tmp_path / "d.zip").write_bytes(page)
        dl.extract(tmp_path / "d.zip", tmp_path / "out")


def test_http_errors_name_url_and_file(server, tmp_path):
    with pytest.raises(urllib.error.HTTPError, match=r"404.*/missing\.zip.*m\.zip") as info:
        dl.download(server.base + "/missing.zip", tmp_path / "m.zip", quiet=True)
    assert info.value.code == 404
    # Nobody listening: a DownloadError (ConnectionError and URLError) naming the URL.
    url = server.base.rsplit(":", 1)[0] + ":9/x.bin"  # the discard port: refused
    with pytest.raises(dl.DownloadError, match=r":9/x\.bin"):
        dl.download(url, tmp_path / "x.bin", timeout=2, quiet=True)


def test_chunk_size_must_be_positive(server, tmp_path):
    server.files["/f.bin"] = PAYLOAD
    (tmp_path / "f.bin.part").write_bytes(PAYLOAD[:10])
    with pytest.raises(ValueError, match="chunk_size"):
        dl.download(server.base + "/f.bin", tmp_path / "f.bin", chunk_size=0, quiet=True)
    assert (tmp_path / "f.bin.part").read_bytes() == PAYLOAD[:10]
