"""Fixtures shared by the lab tests."""
import pytest

import labtools


@pytest.fixture(scope="module")
def lab():
    """The running lab's facts and its Asterisk 16 dialer (a failure, never a skip, when it is down)."""
    data = labtools.facts()
    d16 = labtools.dialer(data, 16)
    return {"facts": data, "d16": d16, "name": d16["name"], "root": d16["root"]}
