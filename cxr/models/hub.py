"""Where a model `source` lives: a local folder, or a Hugging Face Hub repo id.

A repo id resolves through `huggingface_hub.snapshot_download`, which honours HF_HUB_OFFLINE
and HF_HUB_CACHE: offline, a repo in the local cache loads from there and one that is not gives
an InputError naming it and the command that fetches it.
"""

from __future__ import annotations

from pathlib import Path

from cxr.errors import InputError


def is_repo_id(source: str) -> bool:
    """Whether `source` reads as a Hub repo id `owner/name` rather than a path, by
    huggingface_hub's own rule for repo ids."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    if source.count("/") != 1:
        return False
    try:
        validate_repo_id(source)
    except HFValidationError:
        return False
    return True


def resolve_model_folder(source: str | Path, revision: str | None = None) -> Path:
    """The local folder of `source`: the folder itself, or the Hub snapshot of a repo id.

    Args:
        source: A local folder, or a Hub repo id such as `org/cxr-report-model`.
        revision: Branch, tag or commit of a repo id (None: the default branch).

    Raises:
        InputError: `source` is neither a folder nor a repo id, or the repo cannot be had
            (not in the local cache when offline, or not on the Hub).
    """
    path = Path(source)
    if path.is_dir():
        return path
    text = str(source)
    if isinstance(source, Path) or not is_repo_id(text):
        raise InputError(path, "model folder not found")
    return _snapshot(text, revision)


def _snapshot(repo_id: str, revision: str | None) -> Path:
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import (
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
    )

    fetch = f"`hf download {repo_id}`" + (f" --revision {revision}" if revision else "")
    try:
        return Path(snapshot_download(repo_id, revision=revision))
    except LocalEntryNotFoundError as error:
        where = "offline (HF_HUB_OFFLINE=1)" if constants.HF_HUB_OFFLINE else "unreachable Hub"
        raise InputError(
            repo_id,
            f"no local folder of that name, and the Hub repo is not in the cache "
            f"{constants.HF_HUB_CACHE} ({where}); fetch it where the Hub is reachable with {fetch}",
        ) from error
    except RepositoryNotFoundError as error:
        raise InputError(
            repo_id, "no local folder of that name, and no such Hub repo (or no access to it)"
        ) from error
    except HfHubHTTPError as error:
        raise InputError(repo_id, f"cannot download the Hub repo: {error}") from error
