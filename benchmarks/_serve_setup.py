"""HTTP service benchmark, setup: the request bodies (real sentences), and the two servers as subprocesses
on 127.0.0.1 (``staticst serve`` and the FastAPI + model2vec baseline app)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import tempfile
import textwrap
import time
import urllib.request
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
CONNECTIONS = 64
BATCHES = (1, 10, 100)
FORMATS = {"json": "application/json", "binary": "application/octet-stream", "jsonl": "application/x-ndjson"}

BASELINE_APP = textwrap.dedent(
    """
    from fastapi import FastAPI
    from model2vec import StaticModel
    from pydantic import BaseModel

    app = FastAPI()
    model = StaticModel.from_pretrained({model!r})


    class EmbedRequest(BaseModel):
        inputs: str | list[str]


    @app.post("/embed")
    def embed(request: EmbedRequest) -> list[list[float]]:
        texts = [request.inputs] if isinstance(request.inputs, str) else request.inputs
        return model.encode(texts).tolist()


    @app.get("/health")
    def health() -> dict[str, str]:
        return {{"status": "ok"}}
    """
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def shared_dir() -> Path:
    value = os.environ.get("STATICST_SHARED_DIR")
    return Path(value) if value else REPO.parent / "shared"


def load_sentences(limit: int = 2000) -> list[str]:
    path = shared_dir() / "data" / "mteb" / "stsbenchmark-sts" / "test.jsonl"
    sentences: list[str] = []
    if path.is_file():
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                row = json.loads(line)
                sentences += [row["sentence1"], row["sentence2"]]
                if len(sentences) >= limit:
                    break
    if not sentences:  # synthetic fallback: 10-word sentences
        words = "the a cat dog sat on mat bank river money man good bad fast slow car red blue sky fish".split()
        rng = np.random.default_rng(0)
        sentences = [" ".join(rng.choice(words, 10)) for _ in range(limit)]
    return sentences


def bodies_for(sentences: list[str], batch: int, count: int = 200) -> list[str]:
    rng = np.random.default_rng(batch)
    out = []
    for _ in range(count):
        picks = [sentences[i] for i in rng.integers(0, len(sentences), batch)]
        out.append(json.dumps({"inputs": picks[0] if batch == 1 else picks}))
    return out


class Server:
    """A server subprocess on 127.0.0.1, stopped with SIGTERM (then SIGKILL after a timeout)."""

    def __init__(self, name: str, argv: list[str], port: int, cwd: Path | None = None) -> None:
        self.name = name
        self.port = port
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(argv, cwd=cwd, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        self.stop()
        self.log.seek(0)
        raise RuntimeError(f"{name} did not start:\n{self.log.read().decode(errors='replace')[-3000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def check_request(port: int, body: str, accept: str) -> None:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/embed",
        data=body.encode(),
        headers={"Content-Type": "application/json", "Accept": accept},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        if resp.status != 200:
            raise RuntimeError(f"warm-up request failed: {resp.status}")
        resp.read()

