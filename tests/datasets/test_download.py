"""Generic download machinery against a local HTTP mirror: verify, fall back, write atomically."""

from pathlib import Path

import pytest
from mnist_fakes import refused_url, sha256

from graphnet.datasets import download as dl
from graphnet.datasets.download import ChecksumError, DownloadError

PAYLOAD = bytes(range(256)) * 400  # 100 kB, more than one read chunk


def only_file(directory: Path):
    return sorted(p.name for p in directory.iterdir())


def test_download_writes_the_verified_file(mirror, tmp_path):
    mirror.routes["/f.bin"] = PAYLOAD
    dest = tmp_path / "cache" / "f.bin"
    assert dl.download([mirror.url("/f.bin")], dest, sha256(PAYLOAD), progress=False) == dest
    assert dest.read_bytes() == PAYLOAD
    assert only_file(dest.parent) == ["f.bin"]  # no temporary file left behind
    assert dl.sha256_file(dest) == sha256(PAYLOAD)


def test_checksum_mismatch_discards_the_download(mirror, tmp_path):
    mirror.routes["/f.bin"] = PAYLOAD
    dest = tmp_path / "cache" / "f.bin"
    with pytest.raises(ChecksumError) as info:
        dl.download([mirror.url("/f.bin")], dest, "0" * 64, progress=False)
    message = str(info.value)
    assert "SHA-256 mismatch" in message and "0" * 64 in message and sha256(PAYLOAD) in message
    assert mirror.url("/f.bin") in message and "nothing was written" in message
    assert only_file(dest.parent) == []


def test_a_failing_primary_mirror_falls_back(mirror, tmp_path):
    mirror.routes["/good"] = PAYLOAD
    dest = tmp_path / "f.bin"
    dl.download([mirror.url("/missing"), mirror.url("/good")], dest, sha256(PAYLOAD),
                progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert mirror.requests == ["/missing", "/good"]


def test_a_bad_checksum_on_the_primary_falls_back_too(mirror, tmp_path):
    mirror.routes["/tampered"] = PAYLOAD[:-1] + b"!"
    mirror.routes["/good"] = PAYLOAD
    dest = tmp_path / "f.bin"
    dl.download([mirror.url("/tampered"), mirror.url("/good")], dest, sha256(PAYLOAD),
                progress=False)
    assert dest.read_bytes() == PAYLOAD


def test_all_mirrors_failing_lists_each_reason(mirror, tmp_path):
    urls = [mirror.url("/missing"), refused_url()]
    with pytest.raises(DownloadError) as info:
        dl.download(urls, tmp_path / "f.bin", None, progress=False)
    assert not isinstance(info.value, ChecksumError)
    message = str(info.value)
    assert f"{urls[0]}: HTTP 404" in message
    assert f"{urls[1]}: " in message and "refused" in message.lower()
    assert only_file(tmp_path) == []


def test_a_transfer_cut_short_is_not_kept(mirror, tmp_path):
    def cut_off(handler):
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(PAYLOAD)))
        handler.end_headers()
        handler.wfile.write(PAYLOAD[:1000])
        handler.close_connection = True

    mirror.routes["/cut"] = cut_off
    with pytest.raises(DownloadError, match="/cut"):
        dl.download([mirror.url("/cut")], tmp_path / "f.bin", None, progress=False, timeout=5)
    assert only_file(tmp_path) == []


def test_progress_bar_reports_bytes(mirror, tmp_path, capsys):
    mirror.routes["/f.bin"] = PAYLOAD
    dl.download([mirror.url("/f.bin")], tmp_path / "f.bin", None, progress=True)
    assert "f.bin from 127.0.0.1" in capsys.readouterr().err


def test_no_mirrors_at_all(tmp_path):
    with pytest.raises(DownloadError, match="no mirror"):
        dl.download([], tmp_path / "f.bin")


def test_cache_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("GRAPHNET_CACHE", str(tmp_path / "mine"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert dl.cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("GRAPHNET_CACHE")
    assert dl.cache_dir() == tmp_path / "xdg" / "graphnet"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert dl.cache_dir() == tmp_path / "home" / ".cache" / "graphnet"


def test_search_dirs_order(monkeypatch, tmp_path):
    assert dl.search_dirs() == [(None, "GRAPHNET_DATA"), (dl.cache_dir(), "cache")]
    monkeypatch.setenv("GRAPHNET_DATA", str(tmp_path))
    assert dl.search_dirs()[0] == (tmp_path, "GRAPHNET_DATA")
