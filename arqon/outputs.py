"""Files arqon writes for a person (reports, plots, exports) and its audit logs: created readable by their owner only
(files 0600, folders 0700: a log or report holds the whole config and every observed value) and never written
through a symbolic link at the name given, which could send them anywhere the user can write (the folders above it
are the user's choice and are followed). An existing file or folder keeps its mode."""

import errno
import os
from pathlib import Path

from arqon.config import ConfigError

FILE_MODE, FOLDER_MODE = 0o600, 0o700


def private_folder(path) -> Path:
    """``path`` as a folder, created 0700 (with its missing parents) unless it exists; ConfigError when it, or the
    name it is reached by, is a symbolic link or not a folder."""
    path = Path(path)
    if path.is_symlink():
        raise ConfigError(f"{path}: a symbolic link; arqon does not write through one")
    missing = [p for p in (path, *path.parents) if not p.exists() and not p.is_symlink()]
    for folder in reversed(missing):  # mkdir(parents=True) would give the parents the default mode
        folder.mkdir(mode=FOLDER_MODE, exist_ok=True)
    if not path.is_dir():
        raise ConfigError(f"{path}: not a folder")
    return path


def private_fd(path, flags: int) -> int:
    """``os.open(path, flags)`` with the file created 0600 and never through a symbolic link (ConfigError naming the
    path); ``flags`` say how it is opened (e.g. ``os.O_RDWR | os.O_CREAT``)."""
    try:
        return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise ConfigError(f"{path}: a symbolic link; arqon does not write through one") from None
        raise


def open_private(path, mode: str = "w"):
    """``path`` opened for writing from its start (``mode`` "w" or "wb"), created 0600, never through a symbolic link
    (ConfigError naming the path)."""
    fd = private_fd(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    return os.fdopen(fd, mode, newline="") if "b" not in mode else os.fdopen(fd, mode)
