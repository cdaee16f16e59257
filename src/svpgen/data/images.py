"""Reading instrument images from disk into 8-bit grayscale arrays.

Conversion rule (the same everywhere: import, classify, simulate):

* 8-bit gray: kept as is.
* 16-bit / integer gray: the effective bit depth is the smallest of 8, 10, 12, 14, 16 bits
  that holds the image's maximum (MFI cameras write 10-bit values into 16-bit files);
  values are scaled linearly to 0..255 by ``255 / (2**bits - 1)`` and rounded. Pass
  ``bit_depth`` to fix the depth for a whole run instead of detecting it per image.
* float: values in [0, 1] are scaled by 255, otherwise clipped to [0, 255].
* RGB: ITU-R 601-2 luma, ``L = 0.299 R + 0.587 G + 0.114 B``, in Pillow's exact fixed-point
  form ``(19595 R + 38470 G + 7471 B + 2**15) >> 16`` so a crop equals
  ``Image.convert("L")`` of the same pixels bit for bit.
* RGBA / LA: the luma is composited over the median of the fully opaque pixels (the
  bright-field background), so transparent padding reads as background, not as black.
* Palette images are expanded to RGB(A) first; multi-page TIFFs use the first page.

TIFF files (FlowCam collages are RGB, LZW-compressed) are decoded with Pillow, whose libtiff
reads LZW, PackBits, Deflate and JPEG compression without extra packages; what Pillow
cannot decode (48-bit RGB, float RGB, planar or tiled layouts it rejects) falls back to
tifffile. This avoids a dependency on imagecodecs, which tifffile needs for LZW.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from svpgen.errors import SvpgenError

IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".bmp", ".jpg", ".jpeg")
MAX_PIXELS = 150_000_000  # 10000×10000 instrument frames are fine; beyond that we refuse
MIN_SIDE = 4  # a 1×1 or 3×3 "image" carries no particle
_LUMA = (19595, 38470, 7471)  # Pillow's ITU-R 601-2 weights in 1/65536
# File signatures of the formats instruments write: a file that starts like one of them but
# cannot be decoded is truncated or corrupt, not "not an image".
_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+", b"\x89PNG", b"\xff\xd8\xff", b"BM")


class ImageReadError(SvpgenError):
    """An image file that cannot be used; the message is the reason for the report."""


def _bits_for(max_value: float) -> int:
    for bits in (8, 10, 12, 14, 16):
        if max_value <= 2**bits - 1:
            return bits
    return 32


def _scale_to_uint8(a: np.ndarray, bit_depth: int | None) -> np.ndarray:
    """Scale any-dtype values (any shape) to uint8 by the module's rule."""
    if a.dtype == np.uint8:
        return a
    if a.dtype == np.bool_:
        return a.astype(np.uint8) * 255
    if np.issubdtype(a.dtype, np.floating):
        f = np.nan_to_num(a.astype(np.float64))
        if f.size and f.min() >= 0 and f.max() <= 1.0:
            f = f * 255.0
        return np.clip(np.rint(f), 0, 255).astype(np.uint8)
    i = a.astype(np.int64)
    bits = bit_depth or _bits_for(float(i.max()) if i.size else 0.0)
    return np.clip(np.rint(i * (255.0 / (2**bits - 1))), 0, 255).astype(np.uint8)


def to_gray8(array: np.ndarray, bit_depth: int | None = None) -> np.ndarray:
    """Convert a gray, gray+alpha, RGB or RGBA array (any dtype) to uint8 gray."""
    a = np.asarray(array)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim == 2:
        return _scale_to_uint8(a, bit_depth)
    if a.ndim != 3 or a.shape[2] not in (2, 3, 4):
        raise ImageReadError(f"unsupported image shape {a.shape}")
    channels = _scale_to_uint8(a, bit_depth)
    if a.shape[2] >= 3:
        rgb = channels[..., :3].astype(np.int64)
        luma = (
            rgb[..., 0] * _LUMA[0] + rgb[..., 1] * _LUMA[1] + rgb[..., 2] * _LUMA[2] + 0x8000
        ) >> 16
    else:
        luma = channels[..., 0].astype(np.int64)
    if a.shape[2] not in (2, 4):
        return luma.astype(np.uint8)
    alpha = channels[..., -1].astype(np.float64) / 255.0
    opaque = luma[alpha >= 1.0]
    fill = float(np.median(opaque)) if opaque.size else float(np.median(luma))
    gray = luma * alpha + fill * (1.0 - alpha)
    return np.clip(np.rint(gray), 0, 255).astype(np.uint8)


def _pil_to_array(img: Image.Image) -> np.ndarray:
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif img.mode in ("1", "CMYK", "YCbCr", "LAB", "HSV"):
        img = img.convert("L" if img.mode == "1" else "RGB")
    return np.asarray(img)


def _read_with_pillow(path: Path) -> np.ndarray:
    with warnings.catch_warnings():
        # our own MAX_PIXELS applies; a corrupt file's warnings become its skip reason instead
        warnings.simplefilter("ignore")
        with Image.open(path) as img:
            if img.width * img.height > MAX_PIXELS:
                raise ImageReadError(f"image too large ({img.width}x{img.height} px)")
            img.load()
            return _pil_to_array(img)


def _read_with_tifffile(path: Path) -> np.ndarray:
    import logging

    import tifffile

    logging.getLogger("tifffile").setLevel(
        logging.ERROR
    )  # a corrupt file is reported as a skip reason
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        if int(np.prod(page.shape[:2])) > MAX_PIXELS:
            raise ImageReadError(f"image too large ({page.shape[1]}x{page.shape[0]} px)")
        array = page.asarray()
    if array.ndim == 3 and array.shape[0] in (3, 4) and array.shape[2] not in (3, 4):
        array = np.moveaxis(array, 0, -1)  # planar TIFF
    return array


def _corrupt(err: BaseException) -> ImageReadError:
    return ImageReadError(f"truncated or corrupt image ({type(err).__name__}: {str(err)[:80]})")


def _unreadable(path: Path, err: BaseException) -> ImageReadError:
    """The reason for a file no reader could decode."""
    if isinstance(err, UnidentifiedImageError):
        with open(path, "rb") as fh:
            head = fh.read(8)
        if not head.startswith(_MAGIC):
            return ImageReadError("not an image (unrecognised file content)")
    return _corrupt(err)


def read_gray8(path: str | Path, bit_depth: int | None = None) -> np.ndarray:
    """Read an image file as a uint8 gray array; raise ImageReadError with the reason."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as err:
        raise ImageReadError(f"missing file ({err.strerror})") from None
    if size == 0:
        raise ImageReadError("zero-byte file")
    try:
        array = _read_with_pillow(path)
    except ImageReadError:
        raise
    except Image.DecompressionBombError:
        raise ImageReadError("image too large (beyond Pillow's decompression-bomb limit)") from None
    except (
        UnidentifiedImageError,
        OSError,
        ValueError,
        SyntaxError,
        IndexError,
        KeyError,
    ) as pil_err:
        if path.suffix.lower() not in (".tif", ".tiff"):
            raise _unreadable(path, pil_err) from None
        try:  # what Pillow's TIFF reader rejects (48-bit RGB, float RGB…) tifffile may read
            array = _read_with_tifffile(path)
        except ImageReadError:
            raise
        except Exception:  # tifffile raises its own error types; Pillow's reason is the clearer one
            raise _unreadable(path, pil_err) from None
    gray = to_gray8(array, bit_depth)
    if min(gray.shape) < MIN_SIDE:
        raise ImageReadError(f"image too small ({gray.shape[1]}x{gray.shape[0]} px)")
    return gray
