"""The broker's jars: ``org.apache.kafka:kafka_2.13`` and its runtime dependencies from Maven Central.

Fetched once with ``mvn dependency:copy-dependencies`` into ``<home>/libs/<version>/`` (git-ignored)
and reused; a marker file records a complete download so an interrupted fetch is retried.
"""

from __future__ import annotations

import fcntl
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from importlib import resources
from pathlib import Path

from monitor.errors import BrokerError

_COMPLETE = ".complete"


def libs_dir(home: Path, version: str) -> Path:
    return home.resolve() / "libs" / version


def jars_present(home: Path, version: str) -> bool:
    return (libs_dir(home, version) / _COMPLETE).exists()


def ensure_jars(home: Path, version: str, progress: Callable[[str], None] = print) -> Path:
    """Return the folder of jars for ``version``, downloading them first if needed."""
    target = libs_dir(home, version)
    if (target / _COMPLETE).exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / ".fetch.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be fetching the same version
        if (target / _COMPLETE).exists():
            return target
        _fetch(target, version, progress)
    return target


def _fetch(target: Path, version: str, progress: Callable[[str], None]) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerError(
            "Maven (mvn) is needed once to fetch the Kafka broker's jars; install it (apt-get install maven)"
        )
    template = (resources.files("monitor.kafka_local") / "pom.xml").read_text(encoding="utf-8")
    progress(f"Fetching Apache Kafka {version} jars from Maven Central into {target} (once) ...")
    shutil.rmtree(target, ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix="monitor-kafka-pom-") as work:
        pom = Path(work) / "pom.xml"
        pom.write_text(template.replace("@KAFKA_VERSION@", version), encoding="utf-8")
        proc = subprocess.run(
            [
                mvn,
                "-q",
                "-B",
                "-f",
                str(pom),
                "dependency:copy-dependencies",
                f"-DoutputDirectory={target}",
                "-DincludeScope=runtime",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
    if proc.returncode != 0:
        detail = (proc.stdout + proc.stderr).strip().splitlines()[-5:]
        raise BrokerError(f"fetching Kafka {version} with Maven failed: {' | '.join(detail)}")
    if not any(target.glob("kafka_2.13-*.jar")):
        raise BrokerError(f"Maven finished but no kafka_2.13 jar is in {target}")
    (target / _COMPLETE).write_text(version)
    progress(f"Kafka {version}: {len(list(target.glob('*.jar')))} jars ready")
