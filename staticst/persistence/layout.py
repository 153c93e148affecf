"""Disk layouts of static embedding models, described as data.

A layout says which files a folder must hold, where the table and tokenizer live, which tensor
names hold the table, and which reference family (:mod:`staticst.families`: tokens, pooling
arithmetic, how it is saved) applies. Detection walks :data:`LAYOUTS` in order and takes the first
layout whose required files are all present, so adding a file arrangement means adding an entry
here, not a branch elsewhere; a new family of semantics is an entry in :mod:`staticst.families`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from staticst.errors import UnknownLayoutError
from staticst.families import MODEL2VEC, SENTENCE_TRANSFORMERS, Family
from staticst.persistence.config import MODEL2VEC_KEYS, ST_KEYS, check_modules, read_json, validate

__all__ = ["LAYOUTS", "ST_CONFIG_FILE", "Layout", "ResolvedLayout", "all_layout_files", "detect_layout", "layout_named"]

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
    """A layout matched against a concrete folder, with what its metadata files say."""

    layout: Layout
    root: Path
    config: dict[str, Any]
    normalize_module: bool
    st_config: dict[str, Any]

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
        CorruptModelError: A metadata JSON file cannot be parsed.
        InvalidConfigError: A config key has a wrong type or value.
    """
    _refuse_transformers(root)
    for layout in LAYOUTS:
        if not layout.matches(root):
            continue
        normalize_module = False
        if layout.modules_file is not None:
            found, normalize_module = _st_modules(root, layout)
            if not found:
                continue
        elif (root / "modules.json").is_file():
            check_modules(root / "modules.json")  # model2vec ignores it; a module staticst cannot run is refused
        config: dict[str, Any] = {}
        if layout.config_file:
            config = validate(root / layout.config_file, read_json(root / layout.config_file), MODEL2VEC_KEYS)
            normalize_module = bool(config.get("normalize", False))
        st_config_path = root / ST_CONFIG_FILE
        st_config = validate(st_config_path, read_json(st_config_path), ST_KEYS) if st_config_path.is_file() else {}
        return ResolvedLayout(layout, root, config, normalize_module, st_config)
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
