"""The report's rendering: a title, Markdown that reads as text and lets nothing through, and
the parallel coordinates figure (in process, no sweep run)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

from studies.reports import figures
from studies.reports.render import Heading, Table, Text, md_escape, to_html, to_markdown

HOSTILE = "<script>alert('x')</script> **b** [l](http://e) | `c` # h & &amp; ~~s~~"


def test_html_has_the_title_as_h1_escaped():
    page = to_html("Sweep " + HOSTILE, [Text("hello")])
    assert "<h1>Sweep &lt;script&gt;" in page
    assert "<script" not in page


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("lr-0.1 (best), ok. 3+4=7!", "lr-0.1 (best), ok. 3+4=7!"),  # plain punctuation untouched
        ("a_b *c* _d_", r"a_b \*c\* \_d\_"),
        ("<b>x</b>", "&lt;b>x&lt;/b>"),
        ("# not a heading", r"\# not a heading"),
        ("- not a list", r"\- not a list"),
        ("12. not a list", r"12\. not a list"),
        ("> not a quote", r"\> not a quote"),
        ("a|b", r"a\|b"),
        ("&amp;", r"\&amp;"),
        ("two\nlines", "two lines"),
    ],
)
def test_markdown_escapes_only_what_markdown_would_misread(text, want):
    assert md_escape(text) == want


def test_markdown_lets_no_html_link_or_table_break_through():
    md, _ = to_markdown(HOSTILE, [Heading(2, HOSTILE), Table(["dataset", HOSTILE], [[HOSTILE, 1.5]])], "figures")
    assert "<" not in md
    assert "](" not in md.replace(r"\](", "")  # no link survives
    assert "| 1.5 |" in md  # a number in a cell is not a list item
    table_rows = [line for line in md.splitlines() if line.startswith("| ")]
    assert all(line.count("|") - line.count(r"\|") == 3 for line in table_rows)  # two cells, no more


def _trials(n: int, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    dists = {
        "learning_rate": FloatDistribution(1e-4, 1.0, log=True),
        "hidden_units_1": IntDistribution(1, 64),
        "activation": CategoricalDistribution(["relu", "tanh", "<b>$x$"]),
    }
    out = []
    for i in range(n):
        params = {
            "learning_rate": float(10 ** rng.uniform(-4, 0)),
            "hidden_units_1": int(rng.integers(1, 65)),
            "activation": ["relu", "tanh", "<b>$x$"][i % 3],
        }
        state = TrialState.PRUNED if i % 5 == 0 else TrialState.COMPLETE
        value = float(rng.uniform(0.01, 2.0)) if state == TrialState.COMPLETE else None
        t = create_trial(params=params, distributions=dists, value=value, state=state)
        t.number = i
        out.append(t)
    return out


def _axes_of(png: bytes):
    import matplotlib.image

    return matplotlib.image.imread(io.BytesIO(png))


def test_parallel_coordinates_draws_every_group_and_log_axes():
    trials = _trials(200)
    png = figures.parallel_coordinates(
        trials, ["activation", "hidden_units_1", "learning_rate"], "val_cost", "minimize"
    )
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    img = _axes_of(png)[..., :3]
    red = (img[..., 0] > 0.7) & (img[..., 1] < 0.45) & (img[..., 2] < 0.45)
    grey = (np.abs(img[..., 0] - img[..., 1]) < 0.03) & (np.abs(img[..., 1] - img[..., 2]) < 0.03)
    grey &= (img[..., 0] > 0.55) & (img[..., 0] < 0.9)
    assert red.sum() > 100  # the best tenth, highlighted
    assert grey.sum() > 100  # the pruned trials, apart in grey
    axis = figures._param_axis("learning_rate", trials)
    assert axis.log and axis.place(1e-2) == pytest.approx(0.5)
    cat = figures._param_axis("activation", trials)
    assert [label for _, label in cat.ticks()] == ["relu", "tanh", r"<b>\$x\$"]


def test_parallel_coordinates_breaks_lines_at_missing_parameters():
    rows = np.array([[0.1, 0.2, np.nan, 0.4, 0.5], [0.1, 0.2, 0.3, 0.4, 0.5]])
    segments, owners = figures._lines(rows)
    assert owners == [0, 0, 1]
    assert [s.tolist() for s in segments[:2]] == [[[0, 0.1], [1, 0.2]], [[3, 0.4], [4, 0.5]]]
    assert segments[2].shape == (5, 2)


def test_parallel_coordinates_with_no_complete_trial():
    trials = [t for t in _trials(20) if t.state == TrialState.PRUNED]
    png = figures.parallel_coordinates(trials, ["learning_rate"], "val_cost", "maximize")
    assert png[:4] == b"\x89PNG"
