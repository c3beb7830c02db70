import pytest

from .populations import Population, population


@pytest.fixture(scope="session")
def small_population() -> Population:
    return population(1500, 11)
