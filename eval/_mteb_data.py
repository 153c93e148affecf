"""MTEB harness, data: load a task's data from ``--data-dir`` (or the hub) into the structure mteb's
``load_data`` builds, and say why when it cannot be had.

A task reads ``DIR/<hub dataset name>/`` (``mteb/banking77`` -> ``DIR/banking77``): one JSON-lines file per
split with the columns of mteb's hub dataset, or, for retrieval tasks, BEIR format (``corpus.jsonl``,
``queries.jsonl``, ``qrels/<split>.tsv``). The hub is used only when it is reachable (one TCP connect with a
short timeout, never with ``--offline`` or ``HF_HUB_OFFLINE``/``HF_DATASETS_OFFLINE`` set).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from staticst.errors import TaskDataError

if TYPE_CHECKING:
    from mteb.abstasks import AbsTask

HUB_CHECK_TIMEOUT_S = 3.0


class UsageError(ValueError):
    """Bad harness input (e.g. an unknown task name); the message names the value and the fix."""


# The loading itself is public API (docs/integrations.md): staticst.integrations.mteb.local_task / load_task_data.
DataUnavailable = TaskDataError
"""A task's data can be had neither from ``--data-dir`` nor from the hub; the message says why."""


def local_folder(task: AbsTask, data_dir: Path) -> Path:
    """Where a task's local data lives: ``data_dir / <hub dataset name>`` (``mteb/scifact`` -> ``scifact``)."""
    from staticst.integrations.mteb import task_data_folder

    return task_data_folder(task, data_dir)


def load_local(task: AbsTask, data_dir: Path) -> Path:
    """Fill ``task.dataset`` from ``data_dir`` (:func:`staticst.integrations.mteb.load_task_data`).

    Raises:
        DataUnavailable: The folder is missing or incomplete, or the task is multilingual.
    """
    from staticst.integrations.mteb import load_task_data

    return load_task_data(task, data_dir)


def hub_status(offline: bool, timeout: float = HUB_CHECK_TIMEOUT_S) -> tuple[bool, str]:
    """Whether datasets may be fetched from the Hugging Face Hub, and why not.

    Never blocks longer than ``timeout`` seconds: one TCP connect to the hub endpoint.
    """
    if offline:
        return False, "--offline"
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in {"1", "true", "yes", "on"}:
            return False, f"{var} is set"
    from huggingface_hub import constants

    endpoint = urlparse(constants.ENDPOINT)
    host = endpoint.hostname or "huggingface.co"
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True, ""
    except OSError as e:
        return False, f"hub {host}:{port} not reachable within {timeout:g}s ({type(e).__name__}: {e})"


def new_task(name: str, seed: int) -> AbsTask:
    """A fresh mteb task object with the given seed.

    Raises:
        UsageError: Unknown task name (mteb's message lists close matches).
    """
    import mteb

    try:
        task = mteb.get_task(name)
    except KeyError as e:
        raise UsageError(f"unknown MTEB task {name!r}: {e.args[0] if e.args else e}") from None
    return type(task)(seed=seed)


@dataclass
class PreparedTask:
    """A task with its data loaded (or the reason it could not be)."""

    name: str
    category: str
    metric: str
    task: AbsTask | None = None
    source: str = ""
    unavailable: str | None = None

    def fresh(self, seed: int) -> AbsTask:
        """A new task object sharing the loaded data, so that every model starts from identical state.

        Raises:
            ValueError: The task's data could not be loaded (``unavailable`` says why).
        """
        if self.task is None:
            raise ValueError(f"{self.name} has no data to evaluate on: {self.unavailable}")
        task = type(self.task)(seed=seed)
        task.dataset = self.task.dataset
        task.data_loaded = True
        return task


def prepare_tasks(
    names: Sequence[str], data_dir: Path | None, offline: bool, seed: int
) -> list[PreparedTask]:
    """Load every task's data once: local folder first, then the hub when it is reachable.

    Raises:
        UsageError: An unknown task name.
    """
    tasks = [new_task(n, seed) for n in dict.fromkeys(names)]
    hub: tuple[bool, str] | None = None
    prepared = []
    for task in tasks:
        p = PreparedTask(
            name=task.metadata.name, category=str(task.metadata.type), metric=str(task.metadata.main_score)
        )
        reasons = []
        if data_dir is not None:
            try:
                p.source = f"local: {load_local(task, data_dir)}"
                p.task = task
            except DataUnavailable as e:
                reasons.append(str(e))
            except (KeyError, ValueError, TypeError) as e:  # wrong columns / types in the local files
                reasons.append(
                    f"local data at {local_folder(task, data_dir)} unusable: {type(e).__name__}: {e}"
                )
        else:
            reasons.append("no --data-dir")
        if p.task is None:
            if hub is None:
                hub = hub_status(offline)
            if hub[0]:
                try:
                    task.load_data()
                    p.task, p.source = task, f"hub: {task.metadata.dataset['path']}"
                except Exception as e:  # noqa: BLE001 -- any load failure is reported, never scored
                    reasons.append(f"hub load failed: {type(e).__name__}: {e}")
            else:
                reasons.append(f"hub not used: {hub[1]}")
        if p.task is None:
            p.unavailable = "; ".join(reasons)
        prepared.append(p)
    return prepared

