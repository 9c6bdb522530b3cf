"""Make sure DATA_DIR holds the training, dev and test files in CoNLL format.

    python scripts/prepare_data.py DATA_DIR [--url URL] [--files TRAIN DEV TEST]

The files are named train.txt, dev.txt and test.txt unless --files names them. If
they are there (your own dataset, or a local CoNLL-2003 copy) they are used as they
are; the script says whether they are the standard CoNLL-2003 files. If none is
there and a URL is given, CoNLL-2003 is downloaded from it (a zip holding
train.txt, valid.txt or dev.txt, and test.txt), saved under those names and checked
against the MD5 sums of the standard files.
"""
import argparse
import hashlib
import io
import os
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


def download(url: str, data_dir: Path, files: dict) -> None:
    """Fetch the archive and check every file against its checksum before any is written,
    then write each atomically: a bad or partial download leaves nothing that a later
    run would take for your own data."""
    msg.info(f"Downloading CoNLL-2003 from {url}")
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            archive = zipfile.ZipFile(io.BytesIO(response.read()))
    except (OSError, zipfile.BadZipFile) as err:
        raise SystemExit(f"{url}: download failed ({err}); nothing was written to {data_dir}")
    members = {Path(n).name: n for n in archive.namelist()}
    contents = {}
    for split in SPLITS:
        name = next((members[n] for n in ZIP_NAMES[split] if n in members), None)
        if name is None:
            raise SystemExit(f"{url}: no {' or '.join(ZIP_NAMES[split])} in the archive; nothing was written to {data_dir}")
        contents[split] = archive.read(name)
        if hashlib.md5(contents[split]).hexdigest() != CONLL2003_MD5[split]:
            raise SystemExit(f"{url}: the {split} file ({name}) does not match the CoNLL-2003 checksum; "
                             f"nothing was written to {data_dir}")
    data_dir.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        target = data_dir / files[split]
        tmp = target.with_name(target.name + ".part")
        tmp.write_bytes(contents[split])
        os.replace(tmp, target)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--url", default=None)
    parser.add_argument("--files", nargs=3, metavar=("TRAIN", "DEV", "TEST"), default=["train.txt", "dev.txt", "test.txt"],
                        help="the three files' names in data_dir")
    args = parser.parse_args()
    files = dict(zip(SPLITS, args.files))
    missing = [files[s] for s in SPLITS if not (args.data_dir / files[s]).exists()]
    if len(missing) == len(SPLITS) and args.url:
        download(args.url, args.data_dir, files)
    elif missing:
        msg.fail(f"{args.data_dir.resolve()} lacks {', '.join(missing)}"
                 + (" (the others are there: no download over your own files)" if len(missing) < len(SPLITS) else ""), exits=1)
    standard = all(md5(args.data_dir / files[s]) == CONLL2003_MD5[s] for s in SPLITS)
    msg.good(f"{args.data_dir}: " + ("the standard CoNLL-2003 files" if standard else "your own data (not CoNLL-2003)"))


if __name__ == "__main__":
    main()
