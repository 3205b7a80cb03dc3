"""fer2013.csv as other tools write it: a byte-order mark, blank lines, an oversized field, Latin-1 in an archive."""

import csv
import io
import subprocess
import sys
import tarfile
import zipfile

import numpy as np
import pytest
from conftest import ROOT, write_csv

from train.data import DatasetError, load_fer2013


@pytest.fixture
def csv_bytes(tmp_path, small_dataset):
    return write_csv(tmp_path / "plain.csv", *small_dataset).read_bytes()


def same(a, b):
    splits = ("Training", "PublicTest", "PrivateTest")
    return all(np.array_equal(x, y) for split in splits for x, y in zip(a.split(split), b.split(split), strict=True))


@pytest.mark.slow
@pytest.mark.parametrize("form", ["csv", "zip", "tar.gz"])
def test_a_byte_order_mark_is_accepted(tmp_path, csv_bytes, form):
    data = b"\xef\xbb\xbf" + csv_bytes
    if form == "csv":
        path = tmp_path / "fer2013.csv"
        path.write_bytes(data)
    elif form == "zip":
        path = tmp_path / "fer2013.zip"
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("fer2013.csv", data)
    else:
        path = tmp_path / "fer2013.tar.gz"
        with tarfile.open(path, "w:gz") as archive:
            info = tarfile.TarInfo("fer2013/fer2013.csv")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    loaded, plain = load_fer2013(path), load_fer2013(tmp_path / "plain.csv")
    assert loaded.total_rows == plain.total_rows == 140 and same(loaded, plain)


@pytest.mark.parametrize("tail", [b"\n", b"\n\n", b"\r\n", b",,\n", b"   \n"])
def test_trailing_blank_lines_are_not_records(tmp_path, csv_bytes, tail):
    path = tmp_path / "fer2013.csv"
    path.write_bytes(csv_bytes + tail)
    assert load_fer2013(path).total_rows == 140


def test_a_field_over_the_csv_size_limit_names_the_row(tmp_path, csv_bytes):
    path = tmp_path / "fer2013.csv"
    huge = " ".join(["0"] * (csv.field_size_limit() // 2 + 10))  # just over the limit
    path.write_bytes(csv_bytes + f'3,"{huge}",Training\n'.encode())
    with pytest.raises(DatasetError, match=rf"{path} row 142: not a valid CSV row \(field larger than field limit"):
        load_fer2013(path)
    result = subprocess.run(
        [sys.executable, "-m", "train", "summary", "--data", str(path), "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "c.png")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 2 and "row 142" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("form", ["zip", "tar.gz"])
def test_latin1_csv_in_an_archive_names_the_member(tmp_path, form):
    data = "emotion,pixels,Usage\n0,1 2,Trainingé\n".encode("latin-1")
    if form == "zip":
        path = tmp_path / "fer2013.zip"
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("data/fer2013.csv", data)
        member = f"{path}:data/fer2013.csv"
    else:
        path = tmp_path / "fer2013.tar.gz"
        with tarfile.open(path, "w:gz") as archive:
            info = tarfile.TarInfo("fer2013/fer2013.csv")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        member = f"{path}:fer2013/fer2013.csv"
    with pytest.raises(DatasetError) as error:
        load_fer2013(path)
    assert str(error.value).startswith(f"{member}: not UTF-8 text near byte")
