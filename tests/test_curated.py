"""The curated lists: the shipped files load; each kind of bad entry stops start-up, named."""

from __future__ import annotations

import shutil

import pytest
import yaml

from app import create_app
from app.curated import EMBEDDING_FILE, LLM_FILE, CuratedDataError, load_curated
from config import PROJECT_ROOT


def test_shipped_curated_files_load():
    curated = load_curated(PROJECT_ROOT / "curated")
    assert len(curated.llms) == 23
    assert len(curated.embeddings) == 21
    assert len({row["provider"] for row in curated.embeddings}) == 8
    assert curated.embedding_dimensions()["openai/text-embedding-3-small"] == 1536


def test_every_shipped_entry_keeps_a_source_note():
    for name in (LLM_FILE, EMBEDDING_FILE):
        entries = yaml.safe_load((PROJECT_ROOT / "curated" / name).read_text())["models"]
        assert all(entry["source"].strip() for entry in entries)


@pytest.fixture
def curated_dir(tmp_path):
    for name in (LLM_FILE, EMBEDDING_FILE):
        shutil.copy(PROJECT_ROOT / "curated" / name, tmp_path / name)
    return tmp_path


GOOD_LLM = """  - id: acme/model-1
    name: Model 1
    provider: Acme
    context: 8192
    source: test
"""


def write_llms(directory, entries: str) -> None:
    (directory / LLM_FILE).write_text("models:\n" + entries)


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ("  - id: acme/bad\n    name: Bad\n    provider: Acme\n    source: test\n", "missing context"),
        (
            "  - id: acme/bad\n    name: Bad\n    provider: Acme\n    context: 1M\n    source: test\n",
            "'context' must be a positive integer",
        ),
        (
            "  - id: acme/bad\n    name: Bad\n    provider: Acme\n    context: -5\n    source: test\n",
            "'context' must be a positive integer",
        ),
        (
            "  - id: acme/bad\n    name: ''\n    provider: Acme\n    context: 5\n    source: test\n",
            "'name' must be a non-empty string",
        ),
        ("  - id: acme/bad\n    name: Bad\n    provider: Acme\n    context: 5\n", "missing source"),
        (
            "  - id: acme/bad\n    name: Bad\n    provider: Acme\n    context: 5\n    source: t\n    contxt: 5\n",
            "unknown field contxt",
        ),
        (
            "  - id: acme/bad\n    name: Bad\n    provider: Acme\n    context: 5\n    source: t\n"
            "    pricing: {prompt: 0.1, completion: '0.2'}\n",
            "'pricing.prompt' must be a quoted decimal string",
        ),
        (
            "  - id: acme/bad\n    name: Bad\n    provider: Acme\n    context: 5\n    source: t\n"
            "    pricing: {prompt: 'free', completion: '0.2'}\n",
            "'pricing.prompt' is not a decimal",
        ),
        (
            "  - id: acme/bad\n    name: Bad\n    provider: Acme\n    context: 5\n    source: t\n"
            "    pricing: {prompt: '0.1'}\n",
            "'pricing' must be a mapping",
        ),
        (
            "  - id: nobody\n    name: Bad\n    provider: Acme\n    context: 5\n    source: t\n",
            "'id' must look like author/model",
        ),
        ("  - just a string\n", "must be a mapping"),
        (GOOD_LLM, "duplicate id"),
    ],
)
def test_bad_llm_entry_is_refused_with_file_and_entry_named(curated_dir, entry, problem):
    write_llms(curated_dir, GOOD_LLM + entry)
    with pytest.raises(CuratedDataError) as caught:
        load_curated(curated_dir)
    message = str(caught.value)
    assert LLM_FILE in message
    assert "entry 2" in message
    assert problem in message


def test_entry_label_names_the_model_id(curated_dir):
    write_llms(
        curated_dir, GOOD_LLM + "  - id: acme/model-2\n    name: M\n    provider: A\n    context: 0\n    source: t\n"
    )
    with pytest.raises(CuratedDataError, match=r"entry 2 \(acme/model-2\)"):
        load_curated(curated_dir)


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("cost_per_million", "'0.02'", "'cost_per_million' must look like"),
        ("dimensions", "'1536'", "'dimensions' must be a positive integer"),
        ("context", "true", "'context' must be a positive integer"),
    ],
)
def test_bad_embedding_entry_is_refused(curated_dir, field, value, problem):
    text = (curated_dir / EMBEDDING_FILE).read_text()
    original = {
        "cost_per_million": 'cost_per_million: "$0.02"',
        "dimensions": "dimensions: 1536",
        "context": "context: 8192",
    }[field]
    assert original in text
    (curated_dir / EMBEDDING_FILE).write_text(text.replace(original, f"{field}: {value}", 1))
    with pytest.raises(CuratedDataError) as caught:
        load_curated(curated_dir)
    assert EMBEDDING_FILE in str(caught.value)
    assert "entry 1 (openai/text-embedding-3-small)" in str(caught.value)
    assert problem in str(caught.value)


def test_null_dimensions_are_allowed(curated_dir):
    path = curated_dir / EMBEDDING_FILE
    path.write_text(path.read_text().replace("dimensions: 1536", "dimensions: null", 1))
    assert load_curated(curated_dir).embedding_dimensions()["openai/text-embedding-3-small"] is None


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("models: [\n", "not valid YAML"),
        ("- a\n- b\n", "must be a mapping with a 'models' list"),
        ("models: []\n", "is empty"),
    ],
)
def test_malformed_file_is_refused(curated_dir, content, problem):
    (curated_dir / LLM_FILE).write_text(content)
    with pytest.raises(CuratedDataError, match=problem) as caught:
        load_curated(curated_dir)
    assert LLM_FILE in str(caught.value)


def test_missing_file_is_refused(curated_dir):
    (curated_dir / EMBEDDING_FILE).unlink()
    with pytest.raises(CuratedDataError, match="cannot be read"):
        load_curated(curated_dir)


def test_bad_curated_file_stops_app_start_up(curated_dir, make_settings):
    write_llms(curated_dir, "  - id: acme/x\n")
    with pytest.raises(CuratedDataError, match="entry 1"):
        create_app(make_settings(curated_dir=curated_dir))
