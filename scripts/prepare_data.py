"""Make sure DATA_DIR holds train.txt, dev.txt and test.txt in CoNLL format.

    python scripts/prepare_data.py DATA_DIR [--url URL]

If the files are there (your own dataset, or a local CoNLL-2003 copy) they are
used as they are; the script says whether they are the standard CoNLL-2003 files.
If not, and a URL is given, CoNLL-2003 is downloaded from it (a zip holding
train.txt, valid.txt or dev.txt, and test.txt) and checked against the MD5 sums of
the standard files.
"""
import argparse
import hashlib
import io
import urllib.request
import zipfile
from pathlib import Path

from wasabi import msg

SPLITS = ("train", "dev", "test")
# The standard CoNLL-2003 English files (word POS chunk NER, IOB1, -DOCSTART- lines):
# 14,041 / 3,250 / 3,453 sentences.
CONLL2003_MD5 = {
    "train": "11a942ce9db6cc64270372825e964d26",
    "dev": "7b3e0ba9cdf7fbbf127b55d9b9dd5457",
    "test": "0fffccef04921ad93da95c72118d1377",
}
ZIP_NAMES = {"train": ("train.txt",), "dev": ("dev.txt", "valid.txt"), "test": ("test.txt",)}


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def download(url: str, data_dir: Path) -> None:
    msg.info(f"Downloading CoNLL-2003 from {url}")
    with urllib.request.urlopen(url, timeout=60) as response:
        archive = zipfile.ZipFile(io.BytesIO(response.read()))
    members = {Path(n).name: n for n in archive.namelist()}
    data_dir.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        name = next((members[n] for n in ZIP_NAMES[split] if n in members), None)
        if name is None:
            raise SystemExit(f"{url}: no {' or '.join(ZIP_NAMES[split])} in the archive")
        (data_dir / f"{split}.txt").write_bytes(archive.read(name))
        if md5(data_dir / f"{split}.txt") != CONLL2003_MD5[split]:
            raise SystemExit(f"{url}: {split} file does not match the CoNLL-2003 checksum")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--url", default=None)
    args = parser.parse_args()
    missing = [s for s in SPLITS if not (args.data_dir / f"{s}.txt").exists()]
    if missing and args.url:
        download(args.url, args.data_dir)
    elif missing:
        msg.fail(f"{args.data_dir.resolve()} lacks {', '.join(s + '.txt' for s in missing)}", exits=1)
    standard = all(md5(args.data_dir / f"{s}.txt") == CONLL2003_MD5[s] for s in SPLITS)
    msg.good(f"{args.data_dir}: " + ("the standard CoNLL-2003 files" if standard else "your own data (not CoNLL-2003)"))


if __name__ == "__main__":
    main()
