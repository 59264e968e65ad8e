"""Every test run caches its datasets in a directory of the pytest session (data.cache), never in ~/.cache."""
import pytest


@pytest.fixture(autouse=True, scope="session")
def _session_dataset_cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DDSWEEP_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield
