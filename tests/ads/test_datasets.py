"""Training data for ad adapters: CSV rows checked one by one (bad ones reported with line
and field, good ones kept), de-duplicated, split the same way every time."""

from __future__ import annotations

from pathlib import Path

import pytest

from ads.datasets import DEMO_CSV, DatasetError, Row, dataset_from_csv, dataset_from_rows
from ads.prompts import headline_prompt

LONG_DESC = "A budgeting app that sorts your spending and warns before bills are due."


def _csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ads.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_bad_rows_are_reported_by_line_and_field_and_good_rows_kept(tmp_path):
    """An empty headline and a too-short description are named with their line; the
    valid rows beside them are all kept."""
    path = _csv(
        tmp_path,
        "desc,output,industry\n"
        f'"{LONG_DESC}",Know Where Your Money Goes,finance\n'
        f'"{LONG_DESC} Free.",,finance\n'
        "short,A Headline,retail\n"
        f'"{LONG_DESC} Now on Android.",Budgets That Keep Up,finance\n',
    )
    dataset = dataset_from_csv(path)
    assert dataset.errors == [
        f"{path}:3: output: empty",
        f"{path}:4: desc: 5 characters, expected 20 to 1000",
    ]
    kept = {row.output for row in dataset.train + dataset.eval}
    assert kept == {"Know Where Your Money Goes", "Budgets That Keep Up"}


def test_a_csv_without_the_needed_columns_is_refused_with_what_to_do(tmp_path):
    with pytest.raises(DatasetError, match="missing column.*output.*desc and output"):
        dataset_from_csv(_csv(tmp_path, "desc,headline\nx,y\n"))
    with pytest.raises(DatasetError, match="no such file"):
        dataset_from_csv(tmp_path / "absent.csv")


def test_duplicates_fold_case_and_spacing_and_the_split_is_stable():
    """The same pair differently cased counts once; the split of a row does not depend on
    the other rows or their order, and one description never sits on both sides."""
    rows = [Row(f"Product number {i} does something useful", f"Headline {i}") for i in range(200)]
    rows.append(Row("PRODUCT number 7 does  something useful", "headline 7"))
    dataset = dataset_from_rows(rows)
    assert dataset.duplicates == 1 and len(dataset.train) + len(dataset.eval) == 200
    assert 5 <= len(dataset.eval) <= 40  # about 10 %
    shuffled = dataset_from_rows(list(reversed(rows[:100])))
    eval_descs = {r.desc for r in dataset.eval}
    assert {r.desc for r in shuffled.eval} == {r.desc for r in rows[:100]} & eval_descs
    again = dataset_from_rows(rows)
    assert again.snapshot_hash == dataset.snapshot_hash
    changed = dataset_from_rows([*rows[:-2], Row(rows[-2].desc, "Another headline")])
    assert changed.snapshot_hash != dataset.snapshot_hash


def test_examples_put_the_loss_on_the_headline_after_the_drafting_prompt():
    row = Row(LONG_DESC, "Know Where Your Money Goes", industry="finance")
    example = row.example()
    assert example.prompt == headline_prompt(description=LONG_DESC, industry="finance")
    assert example.prompt.endswith("Headline:") and example.completion == " " + row.output


def test_the_demo_set_ships_and_splits_into_train_and_eval():
    dataset = dataset_from_csv(DEMO_CSV)
    assert not dataset.errors and len(dataset.train) >= 30 and dataset.eval
