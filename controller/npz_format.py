"""The one versioned ``.npz`` file format of the library.

Every file kbt writes (the transformer weights of ``controller/model.py``, the
head state files of ``controller/kalman_head.py``) is a ``.npz`` archive with
two header arrays besides its own:

    __format__   the kind of file, e.g. 'kbt-transformer', 'kbt-kalman-head'
    __version__  the integer version of that kind's layout

``write`` adds the header and saves atomically (temporary file, fsync,
rename); ``read`` opens a file and checks the header, raising one short
``ValueError`` that names the file and what is wrong. Header arrays are keyed
``__name__``; ``payload`` drops them.
"""

from __future__ import annotations

import os
import tempfile
import zipfile

import numpy as np

__all__ = ["HEADER_KEYS", "write", "read", "read_npz", "atomic_savez", "payload"]

#: the header arrays every kbt file carries
HEADER_KEYS = ("__format__", "__version__")

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")   # a zip archive (.npz), the second one empty


def write(path, kind, version, arrays):
    """Save ``arrays`` (name -> array) with the header ``kind`` / ``version``, atomically."""
    out = {"__format__": np.array(kind), "__version__": np.array(version)}
    out.update(arrays)
    atomic_savez(path, out)


def read(path, kind, version, what):
    """The arrays of the file at ``path`` after checking its header.

    ``kind`` and ``version`` must match the file's ``__format__`` and
    ``__version__``; ``what`` names the kind in the messages ("a kbt
    transformer file"). Returns the dict of every array, header included.
    """
    data = read_npz(path)
    found = data.get("__format__")
    if str("" if found is None else found) != kind:
        raise ValueError(f"{path}: not {what} (format {None if found is None else str(found)!r})")
    try:
        v = int(data.get("__version__", -1))
    except (TypeError, ValueError):
        v = -1
    if v != version:
        raise ValueError(f"{path}: format version {v} is not supported (expected {version})")
    return data


def payload(data):
    """The arrays of a read file without its ``__name__`` header and extras."""
    return {k: v for k, v in data.items() if not k.startswith("__")}


def read_npz(path):
    """The arrays of a ``.npz`` file; every failure is one short ValueError naming the file once."""
    if not os.path.exists(path):
        raise ValueError(f"{path}: file not found")
    if os.path.isdir(path):
        raise ValueError(f"{path}: is a folder, not a .npz file")
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as e:
        raise ValueError(f"{path}: cannot read ({e.strerror or e})") from None
    if magic not in _ZIP_MAGIC:
        raise ValueError(f"{path}: corrupt or not a .npz file (not a zip archive)")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError) as e:
        # numpy's own text about pickled data advises allow_pickle=True: never right for a kbt file
        why = "it holds pickled Python objects, which kbt never writes" if "pickle" in str(e) else str(e)
        raise ValueError(f"{path}: corrupt or unreadable .npz ({why})") from None


def atomic_savez(path, arrays):
    """``np.savez`` to a temporary file in the same folder, then rename over ``path``."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the usual file mode
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
