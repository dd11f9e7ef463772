"""Errors for missing and malformed files name every path, the line and the field."""
from __future__ import annotations

import pytest

from unimm.config.errors import ConfigError
from unimm.data.files import field, read_json, read_jsonl, require_files


def test_require_files_lists_every_missing_path_and_the_source(tmp_path):
    (tmp_path / "here.json").write_text("{}")
    with pytest.raises(ConfigError) as err:
        require_files([tmp_path / "here.json", tmp_path / "a.json", tmp_path / "b" / "c.json"], "vqa2")
    text = str(err.value)
    assert str(tmp_path / "a.json") in text and str(tmp_path / "b" / "c.json") in text
    assert "here.json" not in text
    assert "visualqa.org" in text and "nothing is downloaded" in text


def test_read_json_names_line_and_column(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{\n  "images": [1, 2,\n}')
    with pytest.raises(ConfigError, match=r"bad.json: not valid JSON at line 3, column 1"):
        read_json(path)


def test_read_jsonl_skips_blank_lines_and_names_a_bad_line(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"a": 1}\n\n{"a": 2}\n{"a": \n')
    with pytest.raises(ConfigError, match=r"x.jsonl, line 4"):
        list(read_jsonl(path))
    path.write_text('{"a": 1}\n\n{"a": 2}\n')
    assert [(n, r["a"]) for n, r in read_jsonl(path)] == [(1, 1), (3, 2)]


def test_field_names_the_record_and_the_field():
    with pytest.raises(ConfigError, match=r"f.json, images\[3\]: field 'height' is missing"):
        field({"id": 1}, "height", "f.json, images[3]")
    with pytest.raises(ConfigError, match=r"field 'id' should be int, got '7'"):
        field({"id": "7"}, "id", "f.json, images[0]", int)
    with pytest.raises(ConfigError, match="should be int"):
        field({"id": True}, "id", "f.json", int)


def test_bytes_that_are_not_utf8_name_the_file_line_and_byte(tmp_path):
    from unimm.data.files import read_json, read_jsonl

    bad = tmp_path / "questions.json"
    bad.write_bytes(b'{"questions": [\n{"question": "caf\xe9?"}]}')
    with pytest.raises(ConfigError, match=r"questions\.json, line 2: byte b'\\xe9' is not UTF-8 text"):
        read_json(bad)
    with pytest.raises(ConfigError, match=r"line 2: byte b'\\xe9' is not UTF-8"):
        list(read_jsonl(bad))


def test_dropped_records_are_reported_once_or_refused_when_strict(caplog):
    from unimm.data.problems import RecordProblems

    problems = RecordProblems("coco", "instances_val2017.json")
    for ann_id in range(10):
        problems.note("boxes whose width or height is not positive, dropped", ann_id)
    problems.note("boxes with a value that is not a finite number, dropped", 42)
    with caplog.at_level("WARNING", logger="unimm"):
        problems.report()
    assert caplog.text.count("dataset 'coco'") == 1
    assert "10 boxes whose width or height is not positive, dropped (ids 0, 1, 2, 3, 4, 5, 6, 7, ... (+2))" in caplog.text
    assert "datasets.coco.strict=true makes these errors" in caplog.text
    strict = RecordProblems("coco", "instances_val2017.json", strict=True)
    strict.note("boxes with a value that is not a finite number, dropped", 42)
    with pytest.raises(ConfigError, match=r"datasets\.coco: instances_val2017\.json: 1 boxes with a value"):
        strict.report()
