"""``benchmark.fetch`` against a real HTTP server on 127.0.0.1 that honours ``Range`` (as the canonical hosts do)
and can be told to cut a response short."""

from __future__ import annotations

import hashlib
import io
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from benchmark.errors import DataError
from benchmark.fetch import RemoteFile, fetch

PAYLOAD = bytes(range(256)) * 2000  # 512,000 bytes: several chunks


class Files(BaseHTTPRequestHandler):
    """Serves ``server.files``; ``server.cut`` (bytes) ends the next response early, as a dropped connection;
    ``server.ignore_range`` answers every request with the whole file."""

    def do_GET(self) -> None:
        body = self.server.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        start = 0
        ranged = self.headers.get("Range")
        if ranged and not self.server.ignore_range:
            start = int(ranged.removeprefix("bytes=").rstrip("-"))
            if start >= len(body):
                self.send_error(416)
                return
        self.server.requests.append((self.path, start))
        part = body[start:]
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(part)))
        self.end_headers()
        if self.server.cut is not None:
            part, self.server.cut = part[: self.server.cut], None
        self.wfile.write(part)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Files)
    httpd.files, httpd.cut, httpd.ignore_range, httpd.requests = {"/data.bin": PAYLOAD}, None, False, []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()


def remote(server, path: str = "/data.bin", md5: str | None = None, **kwargs) -> RemoteFile:
    body = server.files[path]
    return RemoteFile(url=f"http://127.0.0.1:{server.server_port}{path}", path=f"raw{path}",
                      md5=md5 or hashlib.md5(body).hexdigest(), **kwargs)


def test_a_download_is_verified_and_placed(server, tmp_path):
    seen = []
    target = fetch(remote(server), tmp_path, on_progress=lambda name, done, total: seen.append((done, total)))
    assert target == tmp_path / "raw/data.bin" and target.read_bytes() == PAYLOAD
    assert not list(tmp_path.rglob("*.part")) and seen[-1] == (len(PAYLOAD), len(PAYLOAD))
    fetch(remote(server), tmp_path)  # verified copy there: no second request
    assert len(server.requests) == 1


def test_an_interrupted_download_keeps_its_part_and_resumes(server, tmp_path):
    server.cut = 100_000
    with pytest.raises(DataError, match=r"stopped: .*100000 bytes kept in .*data\.bin\.part, run the same command"):
        fetch(remote(server), tmp_path)
    assert not (tmp_path / "raw/data.bin").exists()  # never a half file under the final name
    assert (tmp_path / "raw/data.bin.part").stat().st_size == 100_000
    fetch(remote(server), tmp_path)
    assert (tmp_path / "raw/data.bin").read_bytes() == PAYLOAD
    assert server.requests[-1] == ("/data.bin", 100_000)  # only the rest was asked for


def test_a_server_that_ignores_range_sends_the_whole_file_again(server, tmp_path):
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw/data.bin.part").write_bytes(PAYLOAD[:1000])
    server.ignore_range = True
    fetch(remote(server), tmp_path)
    assert (tmp_path / "raw/data.bin").read_bytes() == PAYLOAD


def test_a_checksum_mismatch_removes_the_download(server, tmp_path):
    with pytest.raises(DataError, match=r"checksum mismatch \(MD5 [0-9a-f]{32}, published 0{32}\); the download"):
        fetch(remote(server, md5="0" * 32), tmp_path)
    assert not list((tmp_path / "raw").iterdir())


def test_a_missing_file_is_one_line(server, tmp_path):
    server.files["/gone.bin"] = b""
    missing = RemoteFile(url=f"http://127.0.0.1:{server.server_port}/nothing.bin", path="x.bin", md5="0" * 32)
    with pytest.raises(DataError, match=r"^download of http://127\.0\.0\.1:\d+/nothing\.bin failed: HTTP 404"):
        fetch(missing, tmp_path)


def tarball(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_an_archive_is_unpacked_after_verification_and_may_not_escape_the_root(server, tmp_path):
    server.files["/cifar.tar.gz"] = tarball({"cifar-10-batches-bin/test_batch.bin": b"\x01" * 3073})
    fetch(remote(server, "/cifar.tar.gz", extract=True), tmp_path)
    assert (tmp_path / "cifar-10-batches-bin/test_batch.bin").read_bytes() == b"\x01" * 3073
    server.files["/evil.tar.gz"] = tarball({"../outside.bin": b"x"})
    with pytest.raises(DataError, match="cannot unpack"):
        fetch(remote(server, "/evil.tar.gz", extract=True), tmp_path / "root")
    assert not (tmp_path / "outside.bin").exists() and not Path(tmp_path.parent / "outside.bin").exists()
