"""The contact-file generator (fixtures/contacts.py): the files are valid CSV of the
requested shape, deterministic, and carry every kind of dirt the import must survive."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from pathlib import Path
from typing import Any

from fixtures.contacts import Dirt, Generator, main
from hermes.addresses import normalize_phone


def _generate(rows: int, **kw: object) -> tuple[str, list[dict[str, Any]]]:
    out, truth = io.StringIO(), io.StringIO()
    Generator(rows, **kw).write(out, truth)  # type: ignore[arg-type]
    return out.getvalue(), [json.loads(line) for line in truth.getvalue().splitlines()]


def test_shape_and_every_kind_of_dirt() -> None:
    text, truth = _generate(3000, columns=40)
    assert len(truth) == 3000
    records = list(csv.reader(io.StringIO(text, newline="")))
    header, data = records[0], records[1:]
    assert len(header) == 40 and header[:4] == ["first_name", "last_name", "phone1", "phone2"]
    # csv.reader skips nothing: an empty line is an empty record.
    assert len(data) == 3000
    widths = Counter(len(r) for r in data)
    assert widths[40] > 2800 and set(widths) - {0, 40}  # ragged rows, both ways
    assert any(len(r) > 40 for r in data) and any(0 < len(r) < 40 for r in data)
    dirt = Counter(d for t in truth for d in t["dirt"])
    for kind in Dirt.__dataclass_fields__:
        if kind != "multiline_note":
            assert dirt[kind] > 0, kind
    assert any("\n" in field for r in data for field in r)  # quoted newlines survive
    assert "\r\n" in text
    assert any(not c.isascii() for r in data for c in r[0] + r[1])  # unicode names


def test_truth_matches_the_rows() -> None:
    text, truth = _generate(2000, columns=20, phones=3)
    data = list(csv.reader(io.StringIO(text, newline="")))[1:]
    people = {t["person"] for t in truth if t["person"] is not None}
    assert len(people) < sum(t["person"] is not None for t in truth)  # repeats exist
    for row, t in zip(data, truth, strict=True):
        if t["person"] is None:
            assert not any(row)  # blank rows are blank
            continue
        if "bad_phone" in t["dirt"] or "ragged_row" in t["dirt"]:
            continue
        # Every good phone of a row is valid for the normalizer the API and the import
        # share (an extension aside, which it refuses).
        for raw in row[2:5]:
            if raw:
                assert normalize_phone(raw.split(" x")[0], "US").startswith("+1"), raw


def test_namesakes_are_distinct_people_movers_the_same() -> None:
    _, truth = _generate(5000)
    kinds: dict[str, set[Any]] = {"namesake": set(), "mover": set()}
    seen: list[Any] = []
    for t in truth:
        if "duplicate_row" in t["dirt"]:
            continue
        for kind in kinds:
            if kind in t["dirt"]:
                kinds[kind].add(t["person"])
                if kind == "namesake":
                    assert t["person"] not in seen  # a new person
                else:
                    assert t["person"] in seen  # one seen before
        seen.append(t["person"])
    assert kinds["namesake"] and kinds["mover"]


def test_deterministic_per_seed() -> None:
    a, _ = _generate(500, seed=7)
    b, _ = _generate(500, seed=7)
    c, _ = _generate(500, seed=8)
    assert a == b != c


def test_wide_file_with_bom_and_lf(tmp_path: Path) -> None:
    out = tmp_path / "wide.csv"
    assert main(["--rows", "200", "--columns", "400", "--bom", "--lf", "-o", str(out)]) == 0
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" not in raw.replace(b'"\r\n', b"")
    header = next(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    assert len(header) == 400 and header[-1] == "attr_386"  # 14 named columns


def test_clean_files_have_no_dirt() -> None:
    zero = Dirt(**dict.fromkeys(Dirt.__dataclass_fields__, 0.0))
    _, truth = _generate(1000, dirt=zero)
    assert all(t["dirt"] == [] and t["person"] for t in truth)
