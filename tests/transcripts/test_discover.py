"""discover(): which files a --transcripts argument expands to."""

from __future__ import annotations

import pytest

from personaforge.errors import PersonaForgeError
from personaforge.transcripts import discover


def touch(root, *names):
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("Anna\tHello.\n", encoding="utf-8")


def test_folder_is_searched_recursively_for_transcript_extensions_sorted(tmp_path):
    touch(
        tmp_path,
        "b.txt", "a.vtt", "c.srt", "d.json", "e.jsonl", "sub/f.txt", "sub/deeper/g.srt",
        "notes.md", "film.mp4", "sub/readme", "h.TXT",
    )
    found = discover([tmp_path])
    rel = [p.relative_to(tmp_path).as_posix() for p in found]
    assert rel == ["a.vtt", "b.txt", "c.srt", "d.json", "e.jsonl", "h.TXT", "sub/deeper/g.srt", "sub/f.txt"]


def test_hidden_folders_are_skipped(tmp_path):
    touch(tmp_path, "a.txt", ".git/b.txt", ".cache/deep/c.srt", "sub/.hidden/d.vtt", "sub/e.vtt")
    rel = [p.relative_to(tmp_path).as_posix() for p in discover([tmp_path])]
    assert rel == ["a.txt", "sub/e.vtt"]


def test_folder_that_is_itself_hidden_can_be_named(tmp_path):
    touch(tmp_path, ".data/a.txt")
    assert discover([tmp_path / ".data"]) == [tmp_path / ".data" / "a.txt"]


def test_files_named_directly_are_kept_whatever_their_extension(tmp_path):
    touch(tmp_path, "notes.md", "a.txt")
    assert discover([tmp_path / "notes.md"]) == [tmp_path / "notes.md"]


def test_folders_and_files_together_without_duplicates(tmp_path):
    touch(tmp_path, "x/a.txt", "x/b.txt", "y/c.txt")
    found = discover([tmp_path / "y", tmp_path / "x", tmp_path / "x" / "a.txt"])
    assert found == [tmp_path / "y" / "c.txt", tmp_path / "x" / "a.txt", tmp_path / "x" / "b.txt"]


def test_missing_path_is_an_error(tmp_path):
    with pytest.raises(PersonaForgeError, match=r"missing: no such file or folder") as info:
        discover([tmp_path / "missing"])
    assert "\n" not in str(info.value)


def test_folder_without_transcripts_is_an_error(tmp_path):
    touch(tmp_path, "notes.md", ".hidden/a.txt")
    with pytest.raises(PersonaForgeError, match=r"no transcripts \(\.txt \.vtt \.srt \.json \.jsonl \.docx\) in this folder"):
        discover([tmp_path])
