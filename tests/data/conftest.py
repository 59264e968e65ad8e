"""Every data test starts with an empty dataset cache of its own (data.cache), so a source test
exercises its generator, never a file another test left."""
import pytest


@pytest.fixture(autouse=True)
def _own_dataset_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DDSWEEP_CACHE", str(tmp_path / "cache"))
