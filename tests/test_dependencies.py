"""Dependency bounds are honest: every lower bound of the service's dependencies is a version the suite
runs on.

A bound below what is tested promises users something nobody checked (the code may use an API the
older release lacks); so each run-time requirement's lower bound must be the installed version's
major.minor (or the exact pin), which ``make install`` installs from constraints.txt. The test tools
(the ``test`` extra) float; they must still satisfy their specifiers.
"""

from __future__ import annotations

import tomllib
from importlib.metadata import PackageNotFoundError, version

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from tests.conftest import REPO

PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
RUNTIME = PROJECT["dependencies"]
TEST_TOOLS = PROJECT["optional-dependencies"]["test"]


def lower_bound(requirement: Requirement) -> Version | None:
    bounds = [Version(s.version) for s in requirement.specifier if s.operator in (">=", "==", "~=")]
    return max(bounds) if bounds else None


def installed_version(requirement: Requirement) -> Version:
    try:
        return Version(version(requirement.name))
    except PackageNotFoundError:
        pytest.fail(f"{requirement.name} is required but not installed: run make install")


@pytest.mark.parametrize("text", TEST_TOOLS)
def test_each_test_tool_satisfies_its_specifier(text: str) -> None:
    requirement = Requirement(text)
    installed = installed_version(requirement)
    assert requirement.specifier.contains(installed, prereleases=True), f"{installed} does not satisfy {text}"


@pytest.mark.parametrize("text", RUNTIME)
def test_each_lower_bound_is_the_tested_version(text: str) -> None:
    requirement = Requirement(text)
    installed = installed_version(requirement)
    assert requirement.specifier.contains(installed, prereleases=True), f"{installed} does not satisfy {text}"
    bound = lower_bound(requirement)
    assert bound is not None, f"{text}: give a lower bound (the version tested)"
    assert (bound.major, bound.minor) == (installed.major, installed.minor), (
        f"{text}: the suite runs on {installed}; raise the bound to {installed.major}.{installed.minor} "
        "or test the older version"
    )
