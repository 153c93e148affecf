"""Resolving a model name to a local folder: a path, the built-in model, the HF cache or the Hub.

Resolution order for ``resolve_model(name, ...)``:

1. ``name`` is an existing local folder: use it.
2. ``name`` is ``None`` or the built-in model's id (:data:`BUILTIN_MODEL_ID`) with no revision or the
   built-in revision: the local Hugging Face cache if it already holds that id (what a user with a
   cached copy expects), otherwise the copy shipped inside the package. No network, no download.
3. Anything else goes through ``huggingface_hub.snapshot_download`` with ``revision``, ``token``,
   ``cache_folder`` and ``local_files_only``; ``HF_HUB_OFFLINE=1`` (read at call time) means
   local files only. Only the files a static model needs are fetched.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from staticst.errors import ModelNotFoundError
from staticst.persistence.layout import all_layout_files

__all__ = [
    "BUILTIN_MODEL_ID",
    "BUILTIN_MODEL_PATH",
    "BUILTIN_REVISION",
    "push_folder",
    "push_model2vec_folder",
    "resolve_model",
]

BUILTIN_MODEL_ID = "minishlab/potion-base-8M"
BUILTIN_REVISION = "bf8b056651a2c21b8d2565580b8569da283cab23"
BUILTIN_MODEL_PATH = Path(__file__).resolve().parent.parent / "_models" / "potion-base-8M"

_TRUTHY = {"1", "true", "yes", "on"}


def _looks_like_path(name: str) -> bool:
    """A name no Hub id can be: absolute, relative to ``.`` / ``~``, or with a backslash or two slashes."""
    return (
        name.startswith(("/", ".", "~"))
        or "\\" in name
        or name.count("/") > 1
        or (os.sep != "/" and os.sep in name)
        or Path(name).is_absolute()
    )


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUTHY


def _cache_dir(cache_folder: str | os.PathLike[str] | None) -> str | None:
    if cache_folder is not None:
        return str(cache_folder)
    return os.environ.get("SENTENCE_TRANSFORMERS_HOME") or None


def _from_cache(repo_id: str, revision: str | None, cache_dir: str | None) -> Path | None:
    import huggingface_hub
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        folder = huggingface_hub.snapshot_download(
            repo_id,
            revision=revision,
            cache_dir=cache_dir,
            local_files_only=True,
            allow_patterns=all_layout_files(),
        )
    except (LocalEntryNotFoundError, FileNotFoundError, ValueError):
        return None
    path = Path(folder)
    return path if any(path.iterdir()) else None


def resolve_model(
    name: str | os.PathLike[str] | None,
    *,
    revision: str | None = None,
    token: bool | str | None = None,
    cache_folder: str | os.PathLike[str] | None = None,
    local_files_only: bool = False,
) -> tuple[Path, str, str | None]:
    """Find the local folder of a model.

    Args:
        name: A local folder, a Hub id, or ``None`` for the built-in model.
        revision: Branch, tag or commit on the Hub.
        token: Hub token (``None`` uses the saved login / ``HF_TOKEN``).
        cache_folder: Cache directory (default: ``SENTENCE_TRANSFORMERS_HOME`` or the HF cache).
        local_files_only: Never touch the network.

    Returns:
        ``(folder, model_id, revision)``: the folder, the id to report, and the revision if known.

    Raises:
        ModelNotFoundError: Not a folder, not cached while offline, or unknown on the Hub.
    """
    if name is not None and not str(name).strip():
        raise ModelNotFoundError(
            f"Model name {str(name)!r} is empty. Pass a folder, a Hub id like 'org/name', or None for the built-in model."
        )
    if name is not None and Path(name).expanduser().is_dir():
        folder = Path(name).expanduser().resolve()
        return folder, str(name), None
    if name is not None and _looks_like_path(str(name)):
        raise ModelNotFoundError(
            f"No such folder: {str(name)!r} does not exist. Pass an existing model folder, or a Hub id like 'org/name'."
        )
    if name is None and revision in (None, BUILTIN_REVISION) and cache_folder is None:
        # No name: the pinned built-in revision, which ships in the package (no hub import, no cache lookup).
        return BUILTIN_MODEL_PATH, BUILTIN_MODEL_ID, BUILTIN_REVISION
    repo_id = BUILTIN_MODEL_ID if name is None else str(name)
    cache_dir = _cache_dir(cache_folder)
    if repo_id == BUILTIN_MODEL_ID and revision in (None, BUILTIN_REVISION):
        cached = _from_cache(repo_id, revision, cache_dir)
        if cached is not None:
            return cached, repo_id, revision
        return BUILTIN_MODEL_PATH, repo_id, BUILTIN_REVISION
    import huggingface_hub
    from huggingface_hub.errors import (
        HfHubHTTPError,
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    offline = local_files_only or _offline()
    try:
        snapshot = huggingface_hub.snapshot_download(
            repo_id,
            revision=revision,
            token=token,
            cache_dir=cache_dir,
            local_files_only=offline,
            allow_patterns=all_layout_files(),
        )
    except LocalEntryNotFoundError as exc:
        why = (
            "HF_HUB_OFFLINE is set"
            if _offline()
            else "local_files_only=True"
            if local_files_only
            else "the Hub is unreachable"
        )
        raise ModelNotFoundError(
            f"Model {repo_id!r} (revision {revision or 'main'}) is not in the local cache and {why}. "
            "Download it once with network access, pass a local folder, or use the built-in model "
            f"({BUILTIN_MODEL_ID!r})."
        ) from exc
    except (RepositoryNotFoundError, RevisionNotFoundError, HFValidationError) as exc:
        raise ModelNotFoundError(
            f"Model {repo_id!r} (revision {revision or 'main'}) was not found as a local folder or on the Hub: {exc}"
        ) from exc
    except HfHubHTTPError as exc:
        raise ModelNotFoundError(f"Could not fetch model {repo_id!r} from the Hub: {exc}") from exc
    return Path(snapshot), repo_id, revision


def _readme_missing(repo_id: str, token: str | None, revision: str | None) -> bool:
    """Whether the Hub repository has no ``README.md`` (so a model card may be written), as ST probes it.

    A probe that fails for another reason (network, rate limit) counts as "present": an existing card is
    never overwritten by accident.
    """
    import logging

    import huggingface_hub
    from huggingface_hub.errors import EntryNotFoundError, HFValidationError, LocalEntryNotFoundError

    try:
        huggingface_hub.hf_hub_download(
            repo_id, filename="README.md", revision=revision, token=token, library_name="staticst"
        )
    except (EntryNotFoundError, HFValidationError, LocalEntryNotFoundError):
        return True
    except Exception as exc:  # noqa: BLE001 - any other failure: keep the existing card
        logging.getLogger("staticst.model").warning(
            f"Could not check for an existing README.md on {repo_id!r} ({type(exc).__name__}: {exc}). "
            "Skipping model card creation to avoid overwriting any existing card."
        )
        return False
    return False


def push_folder(
    save: Callable[[str, str, bool], None],
    repo_id: str,
    *,
    token: str | None = None,
    private: bool | None = None,
    commit_message: str = "Add new model",
    exist_ok: bool = False,
    revision: str | None = None,
    create_pr: bool = False,
    local_model_path: str | os.PathLike[str] | None = None,
    replace_model_card: bool = False,
    describe: Callable[[str], str] | None = None,
) -> str:
    """Upload a model the way sentence-transformers 6.2's ``push_to_hub`` does.

    ``create_repo`` (``exist_ok`` also when ``create_pr``), ``create_branch`` for a ``revision``, then either
    ``local_model_path`` or a temporary folder that ``save(folder, repo_id, write_card)`` fills (``write_card``:
    ``replace_model_card`` or no ``README.md`` in the repository yet), and one ``upload_folder`` commit.

    Args:
        save: Writes the model into a folder: ``save(folder, repo_id, write_card)``.
        repo_id: ``"name"`` or ``"org/name"``.
        token: Hub token.
        private: Create the repository private.
        commit_message: The commit's summary.
        exist_ok: Allow an existing repository.
        revision: The branch to commit to (created if missing).
        create_pr: Open a pull request instead of committing to the branch.
        local_model_path: Upload this folder instead of calling ``save``.
        replace_model_card: Write the model card even over an existing ``README.md``.
        describe: ``describe(repo_id)`` gives the pull request description (used only with ``create_pr``).

    Returns:
        The pull request URL when ``create_pr``, else the commit URL.

    Raises:
        ValueError: ``repo_id`` is not ``"name"`` or ``"org/name"``.
    """
    import tempfile

    from huggingface_hub import HfApi

    if not isinstance(repo_id, str) or repo_id.count("/") > 1 or not repo_id.strip("/"):
        raise ValueError(f"repo_id must look like 'name' or 'org/name', got {repo_id!r}.")
    api = HfApi(token=token)
    repo_url = api.create_repo(repo_id=repo_id, private=private, repo_type=None, exist_ok=exist_ok or create_pr)
    repo_id = repo_url.repo_id
    if revision is not None:
        api.create_branch(repo_id=repo_id, branch=revision, exist_ok=True)
    description = describe(repo_id) if create_pr and describe is not None else None

    def upload(folder: str) -> object:
        return api.upload_folder(
            repo_id=repo_id,
            folder_path=folder,
            commit_message=commit_message,
            commit_description=description,
            create_pr=create_pr,
            revision=revision,
        )

    if local_model_path:
        info = upload(str(local_model_path))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            write_card = replace_model_card or _readme_missing(repo_id, token, revision)
            save(tmp, repo_id, write_card)
            info = upload(tmp)
    return str(getattr(info, "pr_url" if create_pr else "commit_url", info))


def push_model2vec_folder(
    folder: Path, repo_id: str, *, private: bool = False, token: str | None = None, subfolder: str | None = None
) -> None:
    """Upload a saved folder the way model2vec 0.10's ``push_to_hub`` does.

    ``repo_exists``, ``create_repo`` (only when it does not exist) and one ``upload_folder`` into ``subfolder``.
    """
    import huggingface_hub

    if not huggingface_hub.repo_exists(repo_id=repo_id, token=token):
        huggingface_hub.create_repo(repo_id, token=token, private=private)
    huggingface_hub.upload_folder(repo_id=repo_id, folder_path=folder, token=token, path_in_repo=subfolder)
