"""One reader of input CSVs (`supernet.results.read_csv_rows`): an arch list (`read_archs_csv`, for
evaluate and zeroshot) and the predictor's samples (`read_samples`) refuse a malformed file with the
same message, `path:line: ...` naming the value and what was expected."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from predictor.io import read_samples
from supernet.results import read_archs_csv
from supernet.space import NB201Space
from supernet.utils import DataError

SPACE = NB201Space()
GOOD = SPACE.to_str((3, 3, 3, 1, 3, 2))
OTHER = SPACE.to_str((1, 1, 1, 1, 1, 1))

# case -> (file bytes, the message both readers give, after the path)
MALFORMED = {
    "bad arch on line 3": (
        f"arch,acc\n{GOOD},50\n|conv_9x9~0|,60\n",
        r":3: bad arch '\|conv_9x9~0\|': .*malformed arch string",
    ),
    "a column twice": (
        f"arch,acc,acc\n{GOOD},50,60\n",
        r":1: column\(s\) \['acc'\] appear more than once; header is \['arch', 'acc', 'acc'\]",
    ),
    "missing column": (f"arch,score\n{GOOD},50\n", r":1: missing column\(s\) \['acc'\]"),
    "not a number": (f"arch,acc\n{GOOD},50\n{OTHER},high\n", r":3: acc='high' is not a number"),
    "NaN": (f"arch,acc\n{GOOD},50\n{OTHER},nan\n", r":3: acc='nan' is (NaN|not finite)"),
    "short row": (
        f"arch,acc\n{GOOD},50\n{OTHER}\n",
        r":3: no acc value: the row has fewer fields",
    ),
    "not UTF-8": (b"arch,acc\n\xff\xfe,50\n", r":2: bytes .* are not UTF-8 text; expected "),
    "empty": ("", r":1: no header line \(empty file\); expected "),
    "header only": ("arch,acc\n", r": no data rows \(a header only\); expected "),
    "field over the csv limit": (
        f"arch,acc\n{GOOD},{'9' * 200_000}\n",
        r":2: not a readable CSV row \(field larger than field limit",
    ),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_supernet_and_predictor_readers_refuse_alike(case: str, tmp_path: Path) -> None:
    data, message = MALFORMED[case]
    path = tmp_path / "in.csv"
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    errors = []
    for read in (
        lambda p: read_archs_csv(p, SPACE, rank_by="acc"),
        lambda p: read_samples(p, SPACE),
    ):
        with pytest.raises(DataError) as err:
            read(path)
        assert re.match(re.escape(str(path)) + message, str(err.value)), str(err.value)
        errors.append(str(err.value))
    if (
        case != "NaN"
    ):  # an arch list may rank by +-inf, so it says NaN where samples say not finite
        assert errors[0].split(";")[0] == errors[1].split(";")[0]


def test_a_missing_file_names_what_was_expected(tmp_path: Path) -> None:
    path = tmp_path / "nope.csv"
    with pytest.raises(DataError, match=r"nope\.csv: no such file; expected an arch list"):
        read_archs_csv(path, SPACE)
    with pytest.raises(DataError, match=r"nope\.csv: no such file; expected a CSV with column"):
        read_samples(path, SPACE)


def test_arch_list_order_and_line_numbers_count_the_file(tmp_path: Path) -> None:
    """File order, or best first by `rank_by` (+-inf allowed), each arch once; a blank line or a
    quoted field over two lines still gives the line an editor shows."""
    path = tmp_path / "zs.csv"
    path.write_text(f'arch,score,note\n{GOOD},1,"two\nlines"\n\n{OTHER},inf,x\n{GOOD},2,y\n')
    assert read_archs_csv(path, SPACE) == [SPACE.parse(GOOD), SPACE.parse(OTHER)]
    assert read_archs_csv(path, SPACE, "score") == [SPACE.parse(OTHER), SPACE.parse(GOOD)]
    path.write_text(f'arch,score,note\n{GOOD},1,"two\nlines"\n\n|x|,1,x\n')
    with pytest.raises(DataError, match=re.escape(str(path)) + r":5: bad arch '\|x\|'"):
        read_archs_csv(path, SPACE)
