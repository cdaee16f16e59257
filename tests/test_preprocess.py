import numpy as np
import pytest

from svpgen.data.images import ImageReadError, read_gray8, to_gray8
from svpgen.data.preprocess import preprocess, preprocess_batch, resize_batch


def test_crop_keeps_aspect_and_centre():
    img = np.zeros((64, 128), np.uint8)
    img[:, 32:96] = 200  # the central 64 columns
    out = preprocess(img)
    assert out.shape == (64, 64) and out.dtype == np.uint8
    assert (out == 200).all()


def test_shorter_edge_resized_to_64():
    img = np.full((32, 96), 100, np.uint8)
    out = preprocess(img)
    assert out.shape == (64, 64) and (out == 100).all()


def test_pad_uses_median_border():
    img = np.full((32, 64), 90, np.uint8)
    img[10:20, 20:40] = 10
    out = preprocess(img, fit="pad")
    assert out.shape == (64, 64)
    assert out[0, 0] == 90 and out[-1, -1] == 90
    assert out.min() < 50


def test_batch_preprocess_is_bit_exact_with_pillow():
    """The simulator's batched resampling must give the bytes Pillow gives the same crop."""
    rng = np.random.default_rng(0)
    for side in range(8, 300):
        crops = rng.integers(0, 256, (2, side, side), dtype=np.uint8)
        crops[1] = np.clip(rng.normal(170, 30, (side, side)), 0, 255).astype(
            np.uint8
        )  # a smooth image
        batch = preprocess_batch(crops)
        for crop, got in zip(crops, batch):
            np.testing.assert_array_equal(got, preprocess(crop), err_msg=f"side {side}")


def test_batch_resize_non_square_and_crop():
    rng = np.random.default_rng(1)
    crops = rng.integers(0, 256, (3, 40, 90), dtype=np.uint8)
    batch = preprocess_batch(crops)
    for crop, got in zip(crops, batch):
        np.testing.assert_array_equal(got, preprocess(crop))
    assert resize_batch(crops, 17, 33).shape == (3, 17, 33)


def test_gray8_rules():
    assert to_gray8(np.array([[0, 1023]], np.uint16)).tolist() == [[0, 255]]  # 10-bit detected
    assert to_gray8(np.array([[0, 65535]], np.uint16)).tolist() == [[0, 255]]
    assert to_gray8(np.array([[0, 200]], np.uint16)).tolist() == [[0, 200]]  # fits 8 bits
    assert to_gray8(np.array([[0.0, 1.0]])).tolist() == [[0, 255]]
    rgb = np.array([[[255, 0, 0]]], np.uint8)
    assert to_gray8(rgb)[0, 0] == 76  # 0.299 * 255
    rgba = np.array([[[100, 100, 100, 255], [0, 0, 0, 0]]], np.uint8)
    assert to_gray8(rgba).tolist() == [[100, 100]]  # transparent → median opaque value


def test_read_errors(tmp_path):
    (tmp_path / "zero.png").write_bytes(b"")
    (tmp_path / "text.png").write_text("hello, I am not a PNG")
    with pytest.raises(ImageReadError, match="zero-byte"):
        read_gray8(tmp_path / "zero.png")
    with pytest.raises(ImageReadError, match="not an image|corrupt"):
        read_gray8(tmp_path / "text.png")
    with pytest.raises(ImageReadError, match="missing"):
        read_gray8(tmp_path / "absent.png")
