import numpy as np
import pytest
from conftest import FOLDER_NAMES, synthetic_faces, write_csv, write_folder, zip_folder

from edge.contract import LABELS
from train.data import DatasetError, format_summary, load_fer2013, plot_summary


def test_csv_loads_every_split_in_canonical_order(small_csv, small_dataset):
    images, labels, splits = small_dataset
    dataset = load_fer2013(small_csv)
    assert dataset.images.shape == (140, 48, 48) and dataset.images.dtype == np.uint8
    np.testing.assert_array_equal(dataset.images, images)
    np.testing.assert_array_equal(dataset.labels, labels)
    train_images, train_labels = dataset.split("Training")
    assert len(train_images) == int((splits == "Training").sum())
    assert sum(sum(row) for row in dataset.class_counts().values()) == 140


@pytest.mark.parametrize("form", ["folder", "zip"])
def test_image_folder_forms_match_the_csv(tmp_path, small_dataset, form):
    images, labels, splits = small_dataset
    folder = write_folder(tmp_path / "fer", images, labels, splits)
    source = folder if form == "folder" else zip_folder(folder, tmp_path / "fer.zip")
    from_images = load_fer2013(source)
    from_csv = load_fer2013(write_csv(tmp_path / "f.csv", images, labels, splits))
    for split in ("Training", "PublicTest", "PrivateTest"):
        a_images, a_labels = from_images.split(split)
        b_images, b_labels = from_csv.split(split)
        # files are read in path order, rows in file order: compare as sets of (label, pixels)
        key = lambda ims, ls: sorted((int(label), image.tobytes()) for image, label in zip(ims, ls, strict=True))  # noqa: E731
        assert key(a_images, a_labels) == key(b_images, b_labels)


def test_folder_names_map_by_name_not_sort_order(tmp_path):
    images, _, _ = synthetic_faces(2)
    folder = write_folder(tmp_path, images, np.array([4, 6]), np.array(["Training", "Training"]))
    assert sorted(p.name for p in (tmp_path / "train").iterdir()) == ["neutral", "sad"]  # sorted: neutral first
    dataset = load_fer2013(folder)
    assert sorted(LABELS[i] for i in dataset.labels) == ["neutral", "sad"]
    assert set(dataset.labels) == {LABELS.index("sad"), LABELS.index("neutral")}


def test_same_file_name_in_two_folders_is_two_images(tmp_path):
    images, _, _ = synthetic_faces(2)
    import cv2

    for label, image in zip(("happy", "sad"), images, strict=True):
        (tmp_path / "train" / label).mkdir(parents=True)
        cv2.imwrite(str(tmp_path / "train" / label / "Training_52789098.png"), image)
    dataset = load_fer2013(tmp_path)
    assert sorted(dataset.labels.tolist()) == [LABELS.index("happy"), LABELS.index("sad")]


GOOD_PIXELS = " ".join(["128"] * 2304)


@pytest.mark.parametrize(
    "row, message",
    [
        (f"0,{' '.join(['1'] * 2000)},Training", "2000 pixels, expected 2304"),
        (f"0,{GOOD_PIXELS[:-3]}abc,Training", "space-separated integers"),
        (f"9,{GOOD_PIXELS},Training", "unknown emotion '9'"),
        (f"0,{GOOD_PIXELS},Validation", "unknown Usage 'Validation'"),
        (f"0,{GOOD_PIXELS[:-3]}300,Training", "0-255"),
        ("0,1 2 3", "2 fields, expected 3"),
        (f"0,{GOOD_PIXELS[:-3]}99999999999999999999999,Training", "space-separated integers"),
    ],
)
def test_bad_csv_rows_are_named_or_skipped(tmp_path, small_dataset, row, message):
    path = write_csv(tmp_path / "bad.csv", *small_dataset, extra_rows=[row])
    with pytest.raises(DatasetError) as error:
        load_fer2013(path)
    assert f"{path} row 142" in str(error.value) and message in str(error.value)
    skipped = load_fer2013(path, skip_bad=True)
    assert len(skipped.images) == 140 and len(skipped.skipped) == 1
    assert "row 142" in skipped.skipped[0]


@pytest.mark.parametrize(
    "relative, content, message",
    [
        ("train/happy/Training_1.jpg", b"not an image", "unreadable image"),
        ("train/happy/Training_5.jpg", b"", "unreadable image"),
        ("train/happy/Training_2.png", "wrong-size", "expected 48x48"),
        ("train/contempt/Training_3.png", "ok", "unknown emotion 'contempt'"),
        ("train/happy/Validation_4.png", "ok", "file name must start with one of"),
    ],
)
@pytest.mark.parametrize("form", ["folder", "zip"])
def test_bad_images_are_named_or_skipped(tmp_path, small_dataset, relative, content, message, form):
    import cv2

    folder = write_folder(tmp_path / "fer", *small_dataset)
    target = folder / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    if content == "wrong-size":
        cv2.imwrite(str(target), np.zeros((40, 50), np.uint8))
    elif content == "ok":
        cv2.imwrite(str(target), np.zeros((48, 48), np.uint8))
    else:
        target.write_bytes(content)
    source = folder if form == "folder" else zip_folder(folder, tmp_path / "fer.zip")
    with pytest.raises(DatasetError) as error:
        load_fer2013(source)
    assert relative in str(error.value) and message in str(error.value)
    skipped = load_fer2013(source, skip_bad=True)
    assert len(skipped.images) == 140 and len(skipped.skipped) == 1


def test_missing_empty_and_unknown_sources_are_clear_errors(tmp_path):
    with pytest.raises(DatasetError, match="no such file or folder"):
        load_fer2013(tmp_path / "nope.csv")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no usable FER2013 images"):
        load_fer2013(tmp_path / "empty")
    header_only = tmp_path / "header.csv"
    header_only.write_text("emotion,pixels,Usage\n")
    with pytest.raises(DatasetError, match="no usable FER2013 images"):
        load_fer2013(header_only)
    wrong_header = tmp_path / "wrong.csv"
    wrong_header.write_text("label,pixels\n0,1\n")
    with pytest.raises(DatasetError, match="lacks column"):
        load_fer2013(wrong_header)
    (tmp_path / "data.txt").write_text("x")
    with pytest.raises(DatasetError, match="unsupported dataset form"):
        load_fer2013(tmp_path / "data.txt")
    (tmp_path / "broken.zip").write_bytes(b"PK not really")
    with pytest.raises(DatasetError, match="not a readable zip"):
        load_fer2013(tmp_path / "broken.zip")


def test_non_utf8_csv_is_a_clear_error(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("emotion,pixels,Usage\n0,1 2,Trainingé\n".encode("latin-1"))
    with pytest.raises(DatasetError, match="not UTF-8 text"):
        load_fer2013(path)


def test_cache_is_keyed_by_content(tmp_path, small_dataset):
    images, labels, splits = small_dataset
    path = write_csv(tmp_path / "f.csv", images, labels, splits)
    cache = tmp_path / "cache"
    first = load_fer2013(path, cache_dir=cache)
    assert len(list(cache.glob("*.npz"))) == 1
    again = load_fer2013(path, cache_dir=cache)
    np.testing.assert_array_equal(first.images, again.images)
    labels = labels.copy()
    labels[0] = (labels[0] + 1) % 7
    write_csv(path, images, labels, splits)  # same name, new content: a new cache entry
    changed = load_fer2013(path, cache_dir=cache)
    assert len(list(cache.glob("*.npz"))) == 2
    assert changed.labels[0] == labels[0]


def test_summary_table_and_chart(tmp_path, small_csv):
    dataset = load_fer2013(small_csv)
    table = format_summary(dataset)
    assert table.splitlines()[0].split()[1:8] == list(FOLDER_NAMES)
    assert "Training" in table and "PrivateTest" in table
    png = plot_summary(dataset, tmp_path / "counts.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_real_fer2013_zip_has_the_published_counts(real_data, tmp_path):
    dataset = load_fer2013(real_data, cache_dir=tmp_path)
    counts = dataset.class_counts()
    assert counts["Training"] == [3995, 436, 4097, 7215, 4830, 3171, 4965]
    assert counts["PublicTest"] == [467, 56, 496, 895, 653, 415, 607]
    assert counts["PrivateTest"] == [491, 55, 528, 879, 594, 416, 626]
