"""Reading transcript files: UTF-8 (BOM allowed), cp1252 fallback, binary and undecodable input."""

from __future__ import annotations

import pytest

from personaforge.errors import PersonaForgeError
from personaforge.fileio import decode_text
from personaforge.transcripts import parse_file


def rows(transcript):
    return [(t.speaker, t.text, t.start, t.line) for t in transcript.turns]


def write(tmp_path, name: str, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_plain_utf8(tmp_path):
    path = write(tmp_path, "a.txt", "Anna\tIt\u2019s \u201cfine\u201d \u2014 caf\u00e9.\n".encode())
    t = parse_file(path)
    assert t.encoding == "utf-8"
    assert rows(t) == [("Anna", "It\u2019s \u201cfine\u201d \u2014 caf\u00e9.", None, 1)]
    assert t.warnings == []


def test_utf8_with_bom_is_recorded_as_utf8_sig_and_the_bom_is_not_in_the_speaker(tmp_path):
    path = write(tmp_path, "a.txt", b"\xef\xbb\xbf" + "Anna\tHello.\nBob\tHi.\n".encode())
    t = parse_file(path)
    assert t.encoding == "utf-8-sig"
    assert rows(t) == [("Anna", "Hello.", None, 1), ("Bob", "Hi.", None, 2)]
    assert t.warnings == []


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("a.vtt", "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n<v Anna>Hello.\n"),
        ("a.json", '[{"speaker": "Anna", "text": "Hello."}]'),
        ("a.jsonl", '{"speaker": "Anna", "text": "Hello."}\n'),
        ("a.txt", "Anna  00:01\nHello.\n"),
    ],
)
def test_bom_is_accepted_in_every_format(tmp_path, name, body):
    t = parse_file(write(tmp_path, name, b"\xef\xbb\xbf" + body.encode()))
    assert t.encoding == "utf-8-sig"
    assert [(tt.speaker, tt.text) for tt in t.turns] == [("Anna", "Hello.")]


def test_cp1252_fallback_keeps_typographic_quotes_and_warns(tmp_path):
    data = "Anna\tIt\u2019s \u201cfine\u201d, caf\u00e9.\nBob\tOk \u2013 bye.\n".encode("cp1252")
    path = write(tmp_path, "win.txt", data)
    t = parse_file(path)
    assert t.encoding == "cp1252"
    assert rows(t) == [("Anna", "It\u2019s \u201cfine\u201d, caf\u00e9.", None, 1), ("Bob", "Ok \u2013 bye.", None, 2)]
    assert t.warnings[0] == f"{t.source}: not valid UTF-8; read as cp1252 (Windows-1252)"
    assert t.source.endswith("win.txt")


def test_cp1252_warning_comes_before_parser_warnings(tmp_path):
    data = "Title of it all: a draft\nAnna\tIt\u2019s fine.\n".encode("cp1252")
    t = parse_file(write(tmp_path, "win.txt", data))
    assert t.warnings == [
        f"{t.source}: not valid UTF-8; read as cp1252 (Windows-1252)",
        f"{t.source}: dropped 1 line(s) that were not speech (titles, notes, headings)",
    ]


def test_nul_byte_is_a_binary_file_error_naming_file_and_line(tmp_path):
    path = write(tmp_path, "bin.txt", b"Anna\tHello.\nBob\tHi.\nxx\x00yy\n")
    with pytest.raises(PersonaForgeError, match=r"bin\.txt:3: looks like a binary file \(NUL byte\)") as info:
        parse_file(path)
    assert "\n" not in str(info.value)


def test_utf16_file_is_rejected_as_binary(tmp_path):
    path = write(tmp_path, "u16.txt", "Anna\tHello.\n".encode("utf-16"))
    with pytest.raises(PersonaForgeError, match=r"u16\.txt:1: looks like a binary file"):
        parse_file(path)


@pytest.mark.parametrize("byte", [0x81, 0x8D, 0x8F, 0x90, 0x9D])
def test_byte_undefined_in_cp1252_is_an_error_naming_file_and_line(tmp_path, byte):
    path = write(tmp_path, "bad.txt", b"Anna\tHello.\n\nBob\tHi " + bytes([byte]) + b" there.\n")
    with pytest.raises(PersonaForgeError, match=rf"bad\.txt:3: cannot decode byte 0x{byte:02x} as UTF-8 or cp1252"):
        parse_file(path)


def test_decode_text_directly():
    assert decode_text(b"abc", "s").encoding == "utf-8"
    assert decode_text(b"\xef\xbb\xbfabc", "s").text == "abc"
    assert decode_text(b"caf\xe9", "s").text == "caf\u00e9"
    assert decode_text(b"caf\xe9", "s").encoding == "cp1252"


def test_missing_file_is_an_error(tmp_path):
    with pytest.raises(PersonaForgeError, match=r"nope\.txt: file not found"):
        parse_file(tmp_path / "nope.txt")


def test_folder_given_as_file_is_an_error(tmp_path):
    folder = tmp_path / "dir.txt"
    folder.mkdir()
    with pytest.raises(PersonaForgeError, match=r"dir\.txt: is a folder"):
        parse_file(folder)


def test_atomic_writes_get_the_usual_file_mode_not_mkstemps_owner_only(tmp_path):
    import os

    from personaforge.fileio import atomic_write_text

    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "out.txt", "hello")
    finally:
        os.umask(old)
    assert (tmp_path / "out.txt").read_text() == "hello"
    assert (tmp_path / "out.txt").stat().st_mode & 0o777 == 0o644
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
