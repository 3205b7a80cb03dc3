import cv2
import numpy as np
import pytest

from edge.sources.images import STILL_SUFFIXES, is_still, list_stills, read_still
from edge.vision.stills import StillAnalyzer, largest


def _write_image(path, value=128, size=(40, 30)):
    path.parent.mkdir(parents=True, exist_ok=True)
    channels = () if path.suffix.lower() == ".pgm" else (3,)  # PGM holds grey only
    assert cv2.imwrite(str(path), np.full((size[1], size[0], *channels), value, np.uint8))


def test_folders_are_listed_recursively_sorted_and_every_opencv_format_in_any_case(tmp_path):
    for name in ("b.jpg", "a.PNG", "sub/c.tif", "sub/deeper/d.WebP", "e.pgm", "f.ppm", "g.bmp", "h.TIFF", "i.jpeg"):
        _write_image(tmp_path / name)
    (tmp_path / "notes.txt").write_text("not an image")
    root, images = list_stills(tmp_path)
    names = [p.relative_to(root).as_posix() for p in images]
    assert names == ["a.PNG", "b.jpg", "e.pgm", "f.ppm", "g.bmp", "h.TIFF", "i.jpeg", "sub/c.tif", "sub/deeper/d.WebP"]
    assert {p.suffix.lower() for p in images} == set(STILL_SUFFIXES)
    assert is_still(tmp_path) and is_still(tmp_path / "a.PNG") and not is_still(tmp_path / "notes.txt")


def test_one_image_is_its_own_list(tmp_path):
    _write_image(tmp_path / "face.png")
    root, images = list_stills(tmp_path / "face.png")
    assert root == tmp_path and images == [tmp_path / "face.png"]


def test_an_empty_folder_or_a_missing_path_names_it(tmp_path):
    with pytest.raises(ValueError, match=f"{tmp_path}.*holds no images"):
        list_stills(tmp_path)
    with pytest.raises(FileNotFoundError, match="nope"):
        list_stills(tmp_path / "nope")


def test_a_corrupt_image_is_an_error_naming_it(tmp_path):
    (tmp_path / "b.jpg").write_bytes(b"not really a jpeg")
    with pytest.raises(ValueError, match="b.jpg"):
        read_still(tmp_path / "b.jpg")
    _write_image(tmp_path / "a.png", 90)
    still = read_still(tmp_path / "a.png")
    assert still.gray.shape == (30, 40) and still.gray.dtype == np.uint8 and still.color.shape == (30, 40, 3)
    assert np.array_equal(still.gray, cv2.cvtColor(still.color, cv2.COLOR_BGR2GRAY))  # one decode, grey from colour
    assert still.original_size == still.size == (40, 30) and not still.scaled
    (tmp_path / "missing.png").mkdir()
    with pytest.raises(ValueError, match="missing.png: cannot read it"):
        read_still(tmp_path / "missing.png")


def test_crop_mode_equals_the_model_on_the_resized_image(bundled_model, grace_hopper_gray):
    """--crops: the whole image is the face; the scores are the model's on the contract-resized image."""
    from edge import contract
    from edge.vision.detect import FaceDetector

    analyzer = StillAnalyzer(FaceDetector(), bundled_model)
    face = analyzer.crop(grace_hopper_gray)
    height, width = grace_hopper_gray.shape
    expected = bundled_model.classify(contract.crop_face(grace_hopper_gray, (0, 0, width, height))[None])[0]
    assert face.scores == pytest.approx(tuple(float(v) for v in expected))
    assert tuple(face.box) == (0, 0, width, height)
    assert largest([]) is None and largest([face]) is face
