"""Where the archive's files live: a local directory (the default) or a bucket of
S3-compatible object storage, behind one small interface over :mod:`pyarrow.fs` (which
reads and writes both, and which DuckDB, Trino or Spark read the same layout from).

A file is written whole or not at all: locally to a temporary name, synced, then renamed;
on S3 it is made whole in memory first, then sent as a single PUT (an object appears only
when complete; a file over the client's part size, 10 MB, goes as a multipart upload,
which too appears only once completed). Paths are relative to the archive's root, with
``/`` separators.

On S3 (tested against SeaweedFS, see tests/integration/test_archive_s3.py) a "directory"
is a key prefix: :meth:`Store.list` and :meth:`Store.dirs` list prefixes, and a directory
left empty by deletions may stay listed (as an empty day, which nothing reads).
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq


@dataclass(frozen=True)
class Entry:
    path: str
    """Relative to the root."""
    size: int


class Store:
    def __init__(self, fs: pafs.FileSystem, root: str, *, local: bool) -> None:
        self.fs = fs
        self.root = root.rstrip("/")
        self.local = local

    @classmethod
    def of(cls, settings, *, writing: bool = True) -> "Store":
        """The store the settings name: ``YRD_ARCHIVE_S3_URL`` when set, else
        ``YRD_ARCHIVE_DIR``. Only a writer (the archiver, its upkeep) creates the directory
        or the bucket: a reader of a store that is not there finds it empty."""
        if settings.archive_s3_url:
            parts = urlsplit(settings.archive_s3_url)
            if parts.scheme != "s3" or not parts.netloc:
                raise ValueError(f"YRD_ARCHIVE_S3_URL {settings.archive_s3_url!r}: "
                                 "s3://bucket[/prefix]")
            secret = settings.archive_s3_secret_key
            endpoint = None
            if settings.archive_s3_endpoint:
                endpoint = urlsplit(settings.archive_s3_endpoint)
                if endpoint.scheme not in ("http", "https") or not endpoint.netloc:
                    raise ValueError(f"YRD_ARCHIVE_S3_ENDPOINT {settings.archive_s3_endpoint!r}: "
                                     "http[s]://host[:port]")
            access_key = settings.archive_s3_access_key or None
            secret_key = secret.get_secret_value() if secret is not None else None
            if (access_key is None) != (secret_key is None):
                raise ValueError("YRD_ARCHIVE_S3_ACCESS_KEY and YRD_ARCHIVE_S3_SECRET_KEY: "
                                 "both or neither (then the AWS SDK's own chain)")
            fs = pafs.S3FileSystem(
                access_key=access_key,
                secret_key=secret_key,
                region=settings.archive_s3_region,
                endpoint_override=endpoint.netloc if endpoint else None,
                scheme=endpoint.scheme if endpoint else "https",
                # A small object is sent by one PutObject at close, not a multipart upload
                allow_delayed_open=True,
                allow_bucket_creation=writing)
            # bucket/prefix without empty parts (s3://b/x/ and s3://b//x are b/x): the
            # listings' paths, relative to it, are cut from what the store answers
            root = "/".join([parts.netloc, *(p for p in parts.path.split("/") if p)])
            if writing:
                ensure_bucket(fs, parts.netloc)
            return cls(fs, root, local=False)
        root = os.path.abspath(settings.archive_dir)
        if writing:
            os.makedirs(root, exist_ok=True)
        return cls(pafs.LocalFileSystem(), root, local=True)

    @classmethod
    def local_dir(cls, root: str) -> "Store":
        os.makedirs(root, exist_ok=True)
        return cls(pafs.LocalFileSystem(), os.path.abspath(root), local=True)

    def full(self, path: str) -> str:
        return f"{self.root}/{path}"

    def __repr__(self) -> str:
        return f"Store({'file' if self.local else 's3'}:{self.root})"

    # --- writing ---------------------------------------------------------------------------
    def put(self, path: str, data: bytes) -> None:
        """``data`` at ``path``, whole or not at all."""
        self._atomic(path, lambda stream: stream.write(data))

    def put_table(self, path: str, table: pa.Table) -> None:
        """``table`` as a Parquet file at ``path`` (zstd), whole or not at all."""
        self._atomic(path, lambda stream: pq.write_table(
            table, stream, compression="zstd", row_group_size=128 * 1024))

    def _atomic(self, path: str, write) -> None:
        full = self.full(path)
        parent = full.rsplit("/", 1)[0]
        if self.local:
            os.makedirs(parent, exist_ok=True)
            temp = f"{parent}/.{uuid.uuid4().hex}.tmp"
            with open(temp, "wb") as raw:
                stream = pa.PythonFile(raw, mode="w")
                write(stream)
                raw.flush()
                os.fsync(raw.fileno())
            os.replace(temp, full)
            dir_fd = os.open(parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)  # the rename itself survives a power cut
            finally:
                os.close(dir_fd)
            return
        # The whole file in memory first: a write that fails half way (or a kill) must not
        # close the object's stream, which would store what was written so far
        sink = pa.BufferOutputStream()
        write(sink)
        data = sink.getvalue()
        with self.fs.open_output_stream(full) as stream:
            stream.write(data)

    def delete(self, paths: list[str]) -> int:
        """Delete those that exist; how many were."""
        gone = 0
        for path in paths:
            try:
                self.fs.delete_file(self.full(path))
                gone += 1
            except FileNotFoundError:
                pass
            except OSError as exc:  # S3: a missing key may also say so this way
                if "not found" not in str(exc).lower() and "nosuchkey" not in str(exc).lower():
                    raise
        return gone

    def delete_dir(self, path: str) -> None:
        """Delete the directory (on S3: every key under the prefix) if it exists."""
        try:
            self.fs.delete_dir(self.full(path.rstrip("/")))
        except FileNotFoundError:
            pass

    # --- reading ---------------------------------------------------------------------------
    def get(self, path: str) -> bytes | None:
        try:
            with self.fs.open_input_stream(self.full(path)) as stream:
                return stream.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            if "not found" in str(exc).lower() or "nosuchkey" in str(exc).lower():
                return None
            raise

    def list(self, prefix: str, *, recursive: bool = True) -> list[Entry]:
        """The files under ``prefix`` (a directory), temporary files left out."""
        selector = pafs.FileSelector(self.full(prefix.rstrip("/")), allow_not_found=True,
                                     recursive=recursive)
        out = []
        for info in self.fs.get_file_info(selector):
            if info.type != pafs.FileType.File or info.base_name.startswith("."):
                continue
            out.append(Entry(path=info.path[len(self.root) + 1:], size=info.size or 0))
        return sorted(out, key=lambda e: e.path)

    def dirs(self, prefix: str) -> list[str]:
        """The directories directly under ``prefix`` (names only)."""
        selector = pafs.FileSelector(self.full(prefix.rstrip("/")), allow_not_found=True)
        return sorted(info.base_name for info in self.fs.get_file_info(selector)
                      if info.type == pafs.FileType.Directory)

    def read_table(self, paths: list[str], columns: list[str] | None = None) -> pa.Table | None:
        """The files' rows as one table (None: no file)."""
        if not paths:
            return None
        tables = [pq.read_table(self.full(p), filesystem=self.fs, columns=columns)
                  for p in paths]
        return pa.concat_tables(tables, promote_options="default")


def ensure_bucket(fs: pafs.FileSystem, bucket: str) -> None:
    """Create the bucket unless it exists; a store that refuses both says why (wrong keys,
    no such endpoint) here, at the start, not at the first flush."""
    try:
        fs.create_dir(bucket)  # nothing when it exists (and it may not be ours to create)
        return
    except OSError as exc:
        refused = exc
    try:
        if fs.get_file_info(bucket).type == pafs.FileType.Directory:
            return
    except OSError:
        pass
    raise OSError(f"the archive's bucket {bucket!r}: {refused}") from refused
