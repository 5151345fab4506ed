"""Fixtures for the calibration tests; the generators live in calibration_helpers.py."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from calibration_helpers import Society, make_society, simulate_rates  # noqa: E402,F401


@pytest.fixture(scope="session")
def society() -> Society:
    return make_society()


@pytest.fixture
def society_factory():
    return make_society
