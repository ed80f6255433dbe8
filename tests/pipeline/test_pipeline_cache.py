"""definition_for: determinism across processes, cache hits without importing the SDK."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pipeline_definitions import cache
from pipeline_definitions.inputs import PipelineInputs

REPO_ROOT = Path(__file__).resolve().parents[2]

# Runs definition_for in a fresh interpreter and reports which sagemaker modules
# it imported, plus the text it returned.
_CHILD = textwrap.dedent(
    """
    import json, logging, os, sys
    from pathlib import Path
    from pipeline_definitions.cache import definition_for
    from pipeline_definitions.inputs import PipelineInputs

    inputs = PipelineInputs.from_json(sys.argv[1])
    text = definition_for(inputs, Path(sys.argv[2]))
    loaded = sorted(m for m in sys.modules if m == "sagemaker" or m.startswith("sagemaker."))
    root = logging.getLogger()
    leaked_env = sorted(
        name for name in ("SAGEMAKER_VALIDATE_ROLE", "AWS_DEFAULT_REGION") if name in os.environ
    )
    print(json.dumps({"text": text, "sagemaker_modules": loaded[:5], "count": len(loaded),
                      "root_handlers": len(root.handlers), "root_level": root.level,
                      "leaked_env": leaked_env}))
    """
)


def run_child(inputs: PipelineInputs, cache_dir: Path, hash_seed: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    # A different hash seed than this process: set/dict-order nondeterminism shows up.
    env.update(PYTHONHASHSEED=hash_seed, PYTHONPATH=str(REPO_ROOT), AWS_EC2_METADATA_DISABLED="true")
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, inputs.to_json(), str(cache_dir)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def warm_cache(shared_dir, once, base_inputs) -> tuple[Path, dict]:
    """A cache filled by a build in another process (the miss), and what it returned."""
    cache_dir = shared_dir / "definition-cache"

    def miss() -> dict:
        cache_dir.mkdir(exist_ok=True)
        return run_child(base_inputs, cache_dir, hash_seed="1")

    return cache_dir, once("definition-cache-miss", miss)


def test_build_in_another_process_is_byte_identical(warm_cache, base_build):
    _, miss = warm_cache
    assert miss["count"] > 0, "the miss should have imported the SDK to build"
    assert miss["text"] == base_build[0]


def test_build_leaves_logging_and_environment_as_it_found_them(warm_cache):
    # Importing the SDK runs logging.basicConfig(level=INFO); the builder undoes it.
    _, miss = warm_cache
    assert miss["root_handlers"] == 0
    assert miss["root_level"] == 30
    assert miss["leaked_env"] == []


def test_cache_hit_returns_cached_text_without_importing_sagemaker(warm_cache, base_inputs):
    cache_dir, miss = warm_cache
    hit = run_child(base_inputs, cache_dir, hash_seed="2")
    assert hit["count"] == 0, hit["sagemaker_modules"]
    assert hit["text"] == miss["text"]
    assert cache.cache_path(base_inputs, cache_dir).read_text() == miss["text"]


def test_cache_writes_only_the_entry(warm_cache, base_inputs):
    cache_dir, _ = warm_cache
    assert [p.name for p in cache_dir.iterdir()] == [cache.cache_path(base_inputs, cache_dir).name]


def test_hit_in_process_reads_the_file(tmp_path, base_inputs):
    # A planted entry is returned as is: proof the hit path never rebuilds.
    entry = cache.cache_path(base_inputs, tmp_path)
    entry.write_text('{"planted":true}')
    assert cache.definition_for(base_inputs, tmp_path) == '{"planted":true}'


def test_key_depends_on_inputs(base_inputs, variant_inputs):
    assert cache.cache_key(base_inputs) == cache.cache_key(PipelineInputs.from_json(base_inputs.to_json()))
    assert cache.cache_key(base_inputs) != cache.cache_key(variant_inputs)


def test_key_depends_on_step_scripts(tmp_path, monkeypatch, base_inputs):
    before = cache.cache_key(base_inputs)
    scripts = tmp_path / "scripts"
    shutil.copytree(cache.SCRIPTS_DIR, scripts)
    monkeypatch.setattr(cache, "SCRIPTS_DIR", scripts)
    assert cache.cache_key(base_inputs) == before
    with open(scripts / "evaluate.py", "a") as handle:
        handle.write("\n# changed\n")
    assert cache.cache_key(base_inputs) != before


def test_key_depends_on_sdk_version(monkeypatch, base_inputs):
    before = cache.cache_key(base_inputs)
    real = cache._distribution_version
    monkeypatch.setattr(cache, "_distribution_version", lambda name: "0.0.0" if name == "sagemaker" else real(name))
    assert cache.cache_key(base_inputs) != before


def test_scripts_dir_is_exposed():
    assert cache.SCRIPTS_DIR.is_dir()
    assert {"preprocess.py", "train.py", "evaluate.py"} <= {p.name for p in cache.SCRIPTS_DIR.iterdir()}
