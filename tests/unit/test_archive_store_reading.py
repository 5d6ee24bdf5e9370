"""A reader of the archive (the assessment's figures, track, evidence, archive ls) does not
create the store it reads: a mistyped YRD_ARCHIVE_DIR reads as empty and leaves no
directory behind; the archiver (a writer) creates it."""

from __future__ import annotations

from types import SimpleNamespace

from yrd_hazmat.archive.read import Archive
from yrd_hazmat.archive.store import Store


def settings(root) -> SimpleNamespace:
    return SimpleNamespace(archive_s3_url="", archive_dir=str(root))


def test_a_reader_does_not_create_the_archive_it_reads(tmp_path):
    missing = tmp_path / "no-such-archive"
    store = Store.of(settings(missing), writing=False)
    assert store.list("pings") == [] and store.dirs("pings") == []
    assert Archive(store).files("pings", []) == []
    assert not missing.exists()
    Store.of(settings(missing))
    assert missing.is_dir()
