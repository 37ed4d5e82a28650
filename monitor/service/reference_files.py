"""Which files ``POST /api/v1/models/{m}/references`` may read: regular files inside ``api.reference_dir``.

The API must not become a way to read the service machine's files, nor to probe which exist. So:

- without ``api.reference_dir`` file registration over the API is refused outright (the CLI, run by
  someone who can read the file anyway, is unaffected);
- a path is relative to that directory (an absolute one must lie inside it); ``..`` is refused, and
  every component is opened with ``O_NOFOLLOW`` from the directory down, so a symlink anywhere is
  refused rather than followed;
- the target must be a regular file this process can open (a directory or a FIFO is not);
- every one of those failures gets the same answer (:data:`NOT_USABLE`), byte for byte, so a caller
  learns nothing about what exists on the host; the reason is logged for the operator;
- what is stored and served as the reference's source is the path relative to the directory.

What remains: a process that can write inside the reference directory could swap a checked file
between this check and the read; the directory must be writable only by whoever operates the service.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from monitor.logs import get_logger
from monitor.service.errors import ApiError

log = get_logger(__name__)

SUFFIXES = (".parquet", ".pq", ".csv", ".csv.gz", ".csv.zst", ".csv.bz2", ".csv.xz")
NOT_USABLE = (
    "file: not a readable reference file inside the reference directory (paths are relative to "
    "api.reference_dir; '..' and symbolic links are refused)"
)


@dataclass(frozen=True)
class ReferenceFile:
    path: Path  # absolute, for the loader
    name: str  # relative to the reference directory: what is stored and shown
    root: Path  # the reference directory, resolved


def disabled() -> ApiError:
    return ApiError(
        403,
        "reference_files_disabled",
        "registering reference files over the API is disabled: set api.reference_dir (MONITOR_API__REFERENCE_DIR) "
        "to a directory of reference files and give paths relative to it, or use `monitor reference add --file`",
    )


def not_usable(requested: str, reason: str) -> ApiError:
    shown = requested[:200].encode("utf-8", "backslashreplace").decode("utf-8")  # lone surrogates from JSON
    log.warning("reference file refused", requested=shown, reason=reason)
    return ApiError(422, "reference_file_not_usable", NOT_USABLE)


def resolve_reference_file(reference_dir: Path | None, requested: str) -> ReferenceFile:
    """The file the request names, checked as the module docstring says; :class:`ApiError` otherwise."""
    if reference_dir is None:
        raise disabled()
    if "\x00" in requested or not requested.strip():
        raise not_usable(requested, "empty or NUL in the path")
    if not requested.lower().endswith(SUFFIXES):  # decided from the name alone: reveals nothing about the host
        raise ApiError(
            422,
            "invalid_request",
            f"file: use a Parquet or CSV file ({', '.join(SUFFIXES)}), relative to the reference directory",
        )
    try:
        root = Path(os.path.realpath(reference_dir))
    except (OSError, ValueError) as exc:
        raise not_usable(requested, f"reference directory unusable: {exc}") from exc
    given = Path(requested)
    if given.is_absolute():
        try:
            given = given.relative_to(root)
        except ValueError:
            try:  # the directory as configured, before resolving its own symlinks
                given = given.relative_to(Path(os.path.abspath(reference_dir)))
            except ValueError as exc:
                raise not_usable(requested, "absolute path outside the reference directory") from exc
    parts = given.parts
    if not parts or any(part in ("..", "") for part in parts):
        raise not_usable(requested, "'..' or an empty component")
    parts = tuple(part for part in parts if part != ".")
    if not parts:
        raise not_usable(requested, "names the directory itself")
    _check_no_symlinks(root, parts, requested)
    return ReferenceFile(root.joinpath(*parts), PurePosixPath(*parts).as_posix(), root)


def _check_no_symlinks(root: Path, parts: tuple[str, ...], requested: str) -> None:
    """Walk from ``root`` with ``O_NOFOLLOW`` on every component; the last must be a readable regular file."""
    flags_dir = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    flags_file = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    opened: list[int] = []
    try:
        current = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
        opened.append(current)
        for part in parts[:-1]:
            current = os.open(part, flags_dir, dir_fd=current)
            opened.append(current)
        fd = os.open(parts[-1], flags_file, dir_fd=current)
        opened.append(fd)
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise not_usable(requested, "not a regular file")
        if info.st_size == 0:
            raise not_usable(requested, "empty file")
        os.read(fd, 1)  # permission to open is not always permission to read (e.g. some FUSE mounts)
    except OSError as exc:
        raise not_usable(requested, f"{type(exc).__name__}: {exc.strerror}") from exc
    except ValueError as exc:  # a name the file system cannot encode (a lone surrogate)
        raise not_usable(requested, f"{type(exc).__name__}") from exc
    finally:
        for fd in reversed(opened):
            os.close(fd)
