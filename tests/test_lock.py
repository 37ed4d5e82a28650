"""constraints.txt (the image's pinned dependencies) agrees with pyproject.toml and with what this test
environment runs; the Dockerfile installs from it before copying the code."""

from __future__ import annotations

import importlib.util
import re
import sys
from importlib import metadata
from pathlib import Path
from types import ModuleType

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def lock() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lock_script", REPO / "scripts" / "lock.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["lock_script"] = module
    spec.loader.exec_module(module)
    return module


def test_every_runtime_dependency_is_pinned_within_its_specifier(lock: ModuleType) -> None:
    pins = lock.read_lock(REPO / "constraints.txt")
    requirements = lock.runtime_requirements(REPO / "pyproject.toml")
    assert len(requirements) >= 20
    for requirement in requirements:
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement} is not pinned in constraints.txt: run `make lock`"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"constraints.txt pins {name}=={pins[name]}, outside pyproject's {requirement}"
        )
        for extra in requirement.extras:  # e.g. kafka-python[crc32c] -> crc32c pinned too
            extra_requires = [
                Requirement(text)
                for text in metadata.distribution(name).requires or []
                if "extra ==" in text and Requirement(text).marker.evaluate({"extra": extra})  # type: ignore[union-attr]
            ]
            assert extra_requires, f"{name}[{extra}] requires nothing?"
            for needed in extra_requires:
                assert canonicalize_name(needed.name) in pins, f"{name}[{extra}] needs {needed.name}, not pinned"
    assert all(re.fullmatch(r"[0-9][0-9A-Za-z.+!-]*", version) for version in pins.values()), pins
    assert "model-monitor" not in pins  # the project itself is installed from the copied code


def test_the_pins_are_what_this_environment_runs(lock: ModuleType) -> None:
    """The lock is exactly the closure of the runtime dependencies at the installed versions."""
    expected = lock.closure(lock.runtime_requirements(REPO / "pyproject.toml"))
    pins = lock.read_lock(REPO / "constraints.txt")
    stale = {name: (pins.get(name), version) for name, version in expected.items() if pins.get(name) != version}
    extra = sorted(set(pins) - set(expected))
    assert not stale and not extra, f"run `make lock`: (pinned, installed) {stale}; no longer needed {extra}"
    assert (REPO / "constraints.txt").read_text() == lock.render(expected)
    for name in ("numpy", "pandas", "chdb", "fastapi", "starlette", "pydantic-core"):  # transitive ones too
        assert pins[name] == metadata.version(name)


def test_the_check_mode_notices_a_stale_lock(
    lock: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stale = tmp_path / "constraints.txt"
    stale.write_text((REPO / "constraints.txt").read_text().replace("numpy==", "numpy==0.0.1\n# was "))
    monkeypatch.setattr(lock, "LOCK", stale)
    assert lock.main(["--check"]) == 1
    assert "make lock" in capsys.readouterr().err
    monkeypatch.setattr(lock, "LOCK", REPO / "constraints.txt")
    assert lock.main(["--check"]) == 0


def test_the_dockerfile_installs_the_pinned_dependencies_before_the_code() -> None:
    lines = [line.strip() for line in (REPO / "Dockerfile").read_text().splitlines()]
    base = next(line for line in lines if line.startswith("FROM "))
    assert re.fullmatch(r"FROM python:\d+\.\d+\.\d+-slim-\w+", base), f"base image not pinned exactly: {base}"

    def first(predicate: str) -> int:
        return next(i for i, line in enumerate(lines) if re.search(predicate, line))

    copy_lock = first(r"^COPY .*constraints\.txt")
    install_deps = first(r"pip install -r .* -c constraints\.txt")
    copy_code = first(r"^COPY (monitor|detectors|alerts|dashboards) ")
    install_project = first(r"pip install \. --no-deps")
    assert copy_lock < install_deps < copy_code < install_project
    assert not any(re.match(r"^COPY (\.|monitor|detectors|alerts|dashboards)\b", line) for line in lines[:install_deps])
    assert re.search(r"^USER \d+$", "\n".join(lines), re.M), "run as a numeric non-root user (Kubernetes runAsNonRoot)"
