"""``datasets``: names, tables with options, CSV files, and a broken file refused."""

from __future__ import annotations

import os

from sweeps.spec import spec_from_dict
from tests.sweeps.spec.sweep_files import edit, run_file


def test_dataset_tables_and_csv_names(tmp_path):
    csv = tmp_path / "mine.csv"
    csv.write_text("a,b,kind\n" + "".join(f"{i},{i % 3},{'x' if i % 2 else 'y'}\n" for i in range(30)))
    text = edit('datasets = ["circle", "xor"]', f'datasets = [{{ name = "spiral", noise = 0.2 }}, "{csv}"]')
    config = spec_from_dict(__import__("tomllib").loads(text), origin="t")
    assert [d.name for d in config.datasets] == ["spiral", "mine"]
    assert config.study_name(config.datasets[1]) == "demo/mine"
    assert dict(config.datasets[0].options) == {"noise": 0.2}


def test_broken_csv_dataset(in_tmp):
    (in_tmp / "broken.csv").write_text("a,b,label\n1,oops,0\n2,3,1\n")
    path = in_tmp / "sweep.toml"
    path.write_text(edit('datasets = ["circle", "xor"]', 'datasets = ["broken.csv"]'))
    result = run_file(path)
    assert result.exit_code == 2 and "feature column 'b' is not numeric" in result.output
    assert sorted(os.listdir(in_tmp)) == ["broken.csv", "sweep.toml"]
