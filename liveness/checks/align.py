"""Face alignment: a similarity transform from MTCNN's five landmarks to dlib's chip layout.

dlib's face-recognition ResNet was trained on 150x150 chips cut by ``dlib.get_face_chip(img,
shape, 150, 0.25)`` from its own 5-point shape predictor (eye corners and the base of the nose).
MTCNN gives different points (eye centres, nose tip, mouth corners), so the template below says
where *those* points land in dlib's chips. It was calibrated, not guessed:

1. On every face in ``../shared/data/faces/*.jpg`` (32 faces found by both detectors, including
   the group photos), dlib-bin 20.0.1 ran its HOG detector, ``shape_predictor_5_face_landmarks``
   and ``get_face_chip_details(shape, 150, 0.25)``; the chip's affine map (the chip rectangle
   rotated by its angle onto the chip corners) was checked by warping the photo with it and
   comparing with ``get_face_chip``'s own output (mean absolute difference 0.5 grey levels, i.e.
   rounding, on every photo that dlib does not first downsample with its pyramid).
2. Our MTCNN landmarks for the same face were mapped through that affine map, and averaged over
   the 32 faces (per-point std 1.3-1.8 px for the eyes, 3.7-5 px for nose and mouth: pose).
3. The averages were made left-right symmetric about the chip centre (x = 74.5), since a mean
   face is symmetric and the residual asymmetry is pose noise.

Measured means (x, y) in a 150-px chip with padding 0.25, before symmetrising: left eye (46.79,
45.16), right eye (101.43, 44.97), nose (74.46, 77.23), mouth left (49.89, 105.41), mouth right
(100.05, 104.83). The template is stored in dlib's padding-free unit square (``_TEMPLATE_UNIT``)
so any chip size and padding scale it the way ``get_face_chip_details`` does:
``chip = (padding + unit) / (1 + 2 * padding) * size``.

Resampling: when the face is larger than the chip, the footprint is first shrunk with area
averaging (as dlib's pyramid does), then warped bilinearly; pixels outside the image are black.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from liveness.errors import MediaError

__all__ = ["CHIP_PADDING", "CHIP_SIZE", "align_chip", "chip_template", "similarity_transform"]

CHIP_SIZE = 150
CHIP_PADDING = 0.25

# Calibrated MTCNN points in a 150-px, 0.25-padding dlib chip (symmetrised), see the docstring.
_TEMPLATE_150 = np.array(
    [
        [47.18, 45.07],  # left eye (smaller x)
        [101.82, 45.07],  # right eye
        [74.50, 77.23],  # nose tip
        [49.42, 105.12],  # mouth left
        [99.58, 105.12],  # mouth right
    ],
    dtype=np.float64,
)
_TEMPLATE_UNIT = _TEMPLATE_150 / CHIP_SIZE * (1 + 2 * CHIP_PADDING) - CHIP_PADDING


def chip_template(size: int = CHIP_SIZE, padding: float = CHIP_PADDING) -> npt.NDArray[np.float64]:
    """Where the five landmarks go in a ``size`` x ``size`` chip with ``padding`` (5, 2)."""
    if size < 8 or not 0.0 <= padding <= 2.0:
        raise MediaError(f"bad chip geometry size={size} padding={padding}")
    return (padding + _TEMPLATE_UNIT) / (1 + 2 * padding) * size


def similarity_transform(src: npt.ArrayLike, dst: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Least-squares similarity (rotation, uniform scale, translation; no reflection).

    Returns the 2x3 matrix ``M`` minimising ``sum |M @ [src, 1] - dst|^2`` (Umeyama, 1991).
    Exact when ``dst`` is a similarity image of ``src``.
    """
    s = np.asarray(src, dtype=np.float64)
    d = np.asarray(dst, dtype=np.float64)
    if s.ndim != 2 or s.shape[1] != 2 or s.shape != d.shape or s.shape[0] < 2:
        raise MediaError(f"point sets must both be (N>=2, 2), got {s.shape} and {d.shape}")
    if not (np.isfinite(s).all() and np.isfinite(d).all()):
        raise MediaError("landmarks contain NaN or infinity")
    ms, md = s.mean(axis=0), d.mean(axis=0)
    sc, dc = s - ms, d - md
    var = float((sc**2).sum())
    if var < 1e-12:
        raise MediaError("landmarks are all at one point; cannot align the face")
    # closed form for 2-D: the complex ratio of centred points
    a = float((sc[:, 0] * dc[:, 0] + sc[:, 1] * dc[:, 1]).sum()) / var
    b = float((sc[:, 0] * dc[:, 1] - sc[:, 1] * dc[:, 0]).sum()) / var
    rot = np.array([[a, -b], [b, a]])
    t = md - rot @ ms
    return np.hstack([rot, t[:, None]])


def _check_image(image: object) -> npt.NDArray[np.uint8]:
    if not isinstance(image, np.ndarray):
        raise MediaError(f"image must be a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise MediaError(f"image must be HxWx3 uint8 BGR, got {image.dtype} {image.shape}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise MediaError(f"image is empty {image.shape}")
    return image


def align_chip(
    image_bgr: npt.NDArray[np.uint8],
    landmarks5: npt.ArrayLike,
    size: int = CHIP_SIZE,
    padding: float = CHIP_PADDING,
) -> npt.NDArray[np.uint8]:
    """Cut the (size, size, 3) uint8 chip that dlib's embedding model expects.

    ``landmarks5``: (5, 2) image coordinates of left eye, right eye, nose, mouth left, mouth
    right, where "left" is the point with the smaller x (MTCNN's order).
    """
    img = _check_image(image_bgr)
    pts = np.asarray(landmarks5, dtype=np.float64)
    if pts.shape != (5, 2):
        raise MediaError(f"landmarks must be (5, 2), got {pts.shape}")
    m = similarity_transform(pts, chip_template(size, padding))
    scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
    if scale < 1.0:
        img, m = _shrink_footprint(img, m, scale, size)
    chip = cv2.warpAffine(
        img,
        m,
        (size, size),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(0, 0, 0),
    )
    return np.asarray(chip, dtype=np.uint8)


def _shrink_footprint(
    img: npt.NDArray[np.uint8], m: npt.NDArray[np.float64], scale: float, size: int
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.float64]]:
    """Crop the chip's footprint and area-resize it by ``scale`` (anti-aliasing); adjust ``m``."""
    inv = cv2.invertAffineTransform(m)
    corners = np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]], dtype=np.float64)
    foot = corners @ inv.T
    margin = 2.0 / scale
    h, w = img.shape[:2]
    x0 = int(max(0, np.floor(foot[:, 0].min() - margin)))
    y0 = int(max(0, np.floor(foot[:, 1].min() - margin)))
    x1 = int(min(w, np.ceil(foot[:, 0].max() + margin)))
    y1 = int(min(h, np.ceil(foot[:, 1].max() + margin)))
    if x1 - x0 < 2 or y1 - y0 < 2:  # the face is (almost) entirely outside the image
        return img, m
    crop = img[y0:y1, x0:x1]
    nw = max(1, round((x1 - x0) * scale))
    nh = max(1, round((y1 - y0) * scale))
    small = np.asarray(cv2.resize(crop, (nw, nh), interpolation=cv2.INTER_AREA), dtype=np.uint8)
    fx, fy = nw / (x1 - x0), nh / (y1 - y0)
    # a pixel centre q in `small` sits at p = (q + 0.5) / f - 0.5 + origin in `img`
    back = np.array(
        [[1 / fx, 0, 0.5 / fx - 0.5 + x0], [0, 1 / fy, 0.5 / fy - 0.5 + y0], [0, 0, 1]],
        dtype=np.float64,
    )
    return small, m @ back
