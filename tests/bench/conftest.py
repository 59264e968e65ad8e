import pytest

from ddsweep.data import sources


@pytest.fixture(autouse=True)
def restore_source_registry():
    """The benchmarks register a synthetic CIFAR-shaped source; keep it out of other tests."""
    saved = dict(sources._SOURCES)
    yield
    sources._SOURCES.clear()
    sources._SOURCES.update(saved)
