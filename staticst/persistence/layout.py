"""Disk layouts of static embedding models, described as data.

A layout says which files a folder must hold, where the table and tokenizer live, which tensor
names hold the table, and which reference family (:mod:`staticst.families`: tokens, pooling
arithmetic, how it is saved) applies. Detection walks :data:`LAYOUTS` in order and takes the first
layout whose required files are all present, so adding a file arrangement means adding an entry
here, not a branch elsewhere; a new family of semantics is an entry in :mod:`staticst.families`.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from staticst.errors import CorruptModelError, UnknownLayoutError
from staticst.families import MODEL2VEC, SENTENCE_TRANSFORMERS, Family
from staticst.persistence.config import MODEL2VEC_KEYS, ST_KEYS, check_modules, read_json, validate

__all__ = [
    "LAYOUTS",
    "ST_CONFIG_FILE",
    "Layout",
    "ResolvedLayout",
    "all_layout_files",
    "check_present_files",
    "detect_layout",
    "layout_named",
]

#: sentence-transformers' model-level settings (prompts, default prompt, similarity): read for every layout.
ST_CONFIG_FILE = "config_sentence_transformers.json"


@dataclass(frozen=True)
class Layout:
    """One known way of laying out a static model on disk.

    Attributes:
        name: Stable identifier shown by ``info()`` and the CLI.
        required: Files (relative to the model root) that must all exist for this layout to match.
        module_dir: Folder (relative to the root) holding ``model.safetensors`` and ``tokenizer.json``.
        table_tensors: Tensor names that may hold the embedding table, tried in order.
        config_file: JSON file with model2vec settings (``normalize``, ``max_length``), if any.
        family: The reference family whose semantics apply (:mod:`staticst.families`).
        modules_file: ``modules.json`` of a sentence-transformers layout (decides normalisation).
        static_module_types: Accepted ``type`` strings (suffixes) of the static module in ``modules.json``.
    """

    name: str
    required: tuple[str, ...]
    module_dir: str
    table_tensors: tuple[str, ...]
    config_file: str | None
    family: Family
    modules_file: str | None = None
    static_module_types: tuple[str, ...] = ()

    @property
    def weights_file(self) -> str:
        """Path of the safetensors file relative to the model root."""
        return f"{self.module_dir}/model.safetensors" if self.module_dir else "model.safetensors"

    @property
    def tokenizer_file(self) -> str:
        """Path of the tokenizer file relative to the model root."""
        return f"{self.module_dir}/tokenizer.json" if self.module_dir else "tokenizer.json"

    def matches(self, root: Path) -> bool:
        """Whether every required file of this layout exists under ``root``."""
        return all((root / rel).is_file() for rel in self.required)


#: The known layouts, in detection order.
LAYOUTS: tuple[Layout, ...] = (
    # model2vec: config.json + model.safetensors (``embeddings``, optional ``mapping`` / ``weights``)
    # + tokenizer.json. model2vec also writes a modules.json so sentence-transformers can read it,
    # which is why this layout is tried first (it is what model2vec itself does).
    Layout(
        name="model2vec",
        required=("config.json", "model.safetensors", "tokenizer.json"),
        module_dir="",
        table_tensors=("embeddings",),
        config_file="config.json",
        family=MODEL2VEC,
    ),
    # sentence-transformers >= 3.3 with StaticEmbedding at the root (``path`` "" or ".").
    Layout(
        name="sentence-transformers",
        required=("modules.json", "model.safetensors", "tokenizer.json"),
        module_dir="",
        table_tensors=("embedding.weight", "embeddings"),
        config_file=None,
        family=SENTENCE_TRANSFORMERS,
        modules_file="modules.json",
        static_module_types=("StaticEmbedding",),
    ),
    # Older sentence-transformers releases: the StaticEmbedding module in ``0_StaticEmbedding/``.
    Layout(
        name="sentence-transformers-0_StaticEmbedding",
        required=("modules.json", "0_StaticEmbedding/model.safetensors", "0_StaticEmbedding/tokenizer.json"),
        module_dir="0_StaticEmbedding",
        table_tensors=("embedding.weight", "embeddings"),
        config_file=None,
        family=SENTENCE_TRANSFORMERS,
        modules_file="modules.json",
        static_module_types=("StaticEmbedding",),
    ),
)


@dataclass(frozen=True)
class ResolvedLayout:
    """A layout matched against a concrete folder, with what its metadata files say.

    ``normalize_module`` is what the layout's own reference reads (model2vec: the config's ``normalize``;
    sentence-transformers: a ``Normalize`` module); ``modules_normalize`` is what ``modules.json`` says
    (``None`` when the folder has none), which sentence-transformers reads for every layout.
    """

    layout: Layout
    root: Path
    config: dict[str, Any]
    normalize_module: bool
    st_config: dict[str, Any]
    modules_normalize: bool | None = None

    @property
    def weights_path(self) -> Path:
        """Absolute path of the safetensors file."""
        return self.root / self.layout.weights_file

    @property
    def tokenizer_path(self) -> Path:
        """Absolute path of ``tokenizer.json``."""
        return self.root / self.layout.tokenizer_file


def all_layout_files() -> list[str]:
    """Every file any layout may read (used as ``allow_patterns`` for hub downloads)."""
    files = {rel for layout in LAYOUTS for rel in (*layout.required, layout.weights_file, layout.tokenizer_file)}
    files |= {ST_CONFIG_FILE, "1_Normalize/config.json", "2_Normalize/config.json", "README.md"}
    return sorted(files)


def layout_named(name: str) -> Layout:
    """The layout called ``name`` (e.g. a family's ``save_layout``).

    Raises:
        KeyError: No layout has that name.
    """
    for layout in LAYOUTS:
        if layout.name == name:
            return layout
    raise KeyError(f"no layout named {name!r}; known: {[layout.name for layout in LAYOUTS]}")


def _st_modules(root: Path, layout: Layout) -> tuple[bool, bool]:
    """Return (static module found at the layout's module_dir, a Normalize module follows it)."""
    assert layout.modules_file is not None
    modules = check_modules(root / layout.modules_file)
    mpath = str(modules[0].get("path", "")).strip("/") if modules else None
    found = mpath is not None and (mpath if mpath != "." else "") == layout.module_dir
    return found, found and len(modules) > 1


def _read_files() -> list[str]:
    """Every file a load may read: the layouts' files, the configs and ``modules.json``."""
    files = {rel for layout in LAYOUTS for rel in (*layout.required, layout.weights_file, layout.tokenizer_file)}
    files |= {layout.config_file for layout in LAYOUTS if layout.config_file}
    files |= {layout.modules_file for layout in LAYOUTS if layout.modules_file}
    return sorted(files | {"config.json", "modules.json", ST_CONFIG_FILE})


_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _not_a_file(path: Path) -> str | None:
    """Why ``path``, which exists as a directory entry, is not a readable regular file (``None`` if it is one).

    Only ``lstat`` / ``stat`` / ``readlink``: nothing is opened (opening a FIFO would block).
    """
    try:
        info = os.stat(path)
    except OSError as exc:
        if os.path.islink(path):
            try:
                target = os.readlink(path)
            except OSError:
                target = "?"
            if exc.errno == errno.ELOOP:
                return f"a symlink loop (it points to {target!r}, which leads back to itself)"
            if exc.errno == errno.ENOENT:
                return (
                    f"a dangling symlink to {target!r}, which does not exist (in a Hugging Face cache: a snapshot "
                    "whose blob is missing, e.g. after an interrupted download or a partial cache clean-up)"
                )
        return f"not readable ({exc.strerror or exc})"
    if stat.S_ISREG(info.st_mode):
        return None
    for test, kind in _KINDS:
        if test(info.st_mode):
            shown = f" ({os.path.realpath(path)})" if os.path.islink(path) else ""
            return f"{kind}{shown}, not a regular file"
    return "not a regular file"


def check_present_files(root: Path) -> None:
    """Refuse a model file that is present but cannot be read as a file, naming it.

    A ``config.json`` (or ``modules.json``, ``tokenizer.json``, ...) that exists as a directory entry but is a
    dangling symlink, a symlink loop, a directory, a FIFO or a device would otherwise count as absent (and
    the folder load under another layout with other vectors) or block the load.

    Raises:
        CorruptModelError: The first such file, what it is, and the fix.
    """
    for rel in _read_files():
        path = root / rel
        if not os.path.lexists(path):
            continue
        why = _not_a_file(path)
        if why is not None:
            raise CorruptModelError(
                f"{path} is present but cannot be read as a file: it is {why}. Replace it with the real file: "
                "re-download the model (for a Hugging Face cache: snapshot_download(..., force_download=True), "
                "or delete the snapshot folder and download again) or re-save it."
            )


def _refuse_transformers(root: Path) -> None:
    """A folder holding a transformer (``config.json`` of a transformers architecture) is not a static model."""
    path = root / "config.json"
    if not path.is_file():
        return
    config = read_json(path)
    if not isinstance(config, dict) or config.get("model_type") == "model2vec":
        return
    architectures = config.get("architectures")
    if isinstance(architectures, list) and architectures and "StaticModel" not in architectures:
        raise UnknownLayoutError(
            f"{root} is a transformer model ({', '.join(map(str, architectures))}), not a static "
            "embedding model: load it with sentence_transformers.SentenceTransformer."
        )


def detect_layout(root: Path) -> ResolvedLayout:
    """Match ``root`` against :data:`LAYOUTS` and read its metadata.

    Args:
        root: A local model folder.

    Returns:
        The first matching layout, with the parsed config and whether output is L2-normalised.

    Raises:
        UnknownLayoutError: No layout matches (the message lists what the folder holds, one level deep), the
            folder is a transformer, or modules.json lists a module staticst does not run.
        CorruptModelError: A metadata JSON file cannot be parsed, or a model file is present but is not a
            readable regular file (:func:`check_present_files`).
        InvalidConfigError: A config key has a wrong type or value.
    """
    check_present_files(root)
    _refuse_transformers(root)
    for layout in LAYOUTS:
        if not layout.matches(root):
            continue
        normalize_module = False
        modules_normalize: bool | None = None
        if layout.modules_file is not None:
            found, normalize_module = _st_modules(root, layout)
            if not found:
                continue
            modules_normalize = normalize_module
        elif (root / "modules.json").is_file():
            # model2vec ignores it (a module staticst cannot run is refused); sentence-transformers reads it
            modules_normalize = len(check_modules(root / "modules.json")) > 1
        config: dict[str, Any] = {}
        if layout.config_file:
            config = validate(root / layout.config_file, read_json(root / layout.config_file), MODEL2VEC_KEYS)
            normalize_module = bool(config.get("normalize", False))
        st_config_path = root / ST_CONFIG_FILE
        st_config = validate(st_config_path, read_json(st_config_path), ST_KEYS) if st_config_path.is_file() else {}
        return ResolvedLayout(layout, root, config, normalize_module, st_config, modules_normalize)
    present = _listing(root)
    expected = "; ".join(f"{layout.name}: {', '.join(layout.required)}" for layout in LAYOUTS)
    raise UnknownLayoutError(
        f"{root} is not a static embedding model in any known layout. Found files: {present or 'none'}. "
        f"Expected one of: {expected}."
    )


def _listing(root: Path, limit: int = 20) -> list[str]:
    """Up to ``limit`` entries of ``root`` and of its sub-folders, one level deep (never a whole tree)."""
    found: list[str] = []
    try:
        entries = sorted(root.iterdir())
    except OSError:
        return found
    for entry in entries:
        if len(found) >= limit:
            break
        try:
            if entry.is_dir():
                found.extend(f"{entry.name}/{sub.name}" for sub in sorted(entry.iterdir())[: limit - len(found)])
            else:
                found.append(entry.name)
        except OSError:
            continue
    return found[:limit]
