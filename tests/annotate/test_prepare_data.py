"""scripts/prepare_data.py checks a download against the CoNLL-2003 checksums before it
writes anything (issue 33, item 8): a bad archive must not leave files that the next run
takes for the user's own data. Served from a real zip file through a file:// URL."""
import subprocess
import sys
import zipfile

from conftest import ROOT


def prepare(data_dir, url):
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "prepare_data.py"), str(data_dir), "--url", url],
                          capture_output=True, text=True, timeout=300)


def test_a_download_with_a_wrong_checksum_writes_nothing(tmp_path):
    archive = tmp_path / "conll2003.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for name in ("train.txt", "valid.txt", "test.txt"):
            z.writestr(name, "EU B-ORG\nrejects O\n\n")  # not the real files: every checksum fails
    data = tmp_path / "data"
    first = prepare(data, archive.as_uri())
    assert first.returncode != 0
    assert not data.exists() or not any(data.iterdir())
    assert "does not match the CoNLL-2003 checksum; nothing was written" in first.stderr
    again = prepare(data, archive.as_uri())  # the rerun tries the download again, never "your own data"
    assert again.returncode != 0 and "your own data" not in again.stdout + again.stderr


def test_a_broken_archive_is_named(tmp_path):
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"not a zip")
    proc = prepare(tmp_path / "data", broken.as_uri())
    assert proc.returncode != 0 and "download failed" in proc.stderr
