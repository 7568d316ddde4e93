"""Packshot loading and the offline vision default.

Images come from a local path, an http(s) URL or a data URL. They are hashed on their
original bytes (the cache key: a product shown for many queries is described once) and
downscaled before sending. Anything that goes wrong raises `ImageUnavailable` with a reason
the judgment records; the pair is then judged on text alone.

`analyse_locally` is the honest offline "vision model": Pillow measures dominant colours
(named by the nearest CSS colour) and simple cues such as stripes. It reads no text and
does not recognise product types, and its output says so.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import webcolors
from PIL import Image, ImageOps, UnidentifiedImageError

from raer.nodes.image_fetch import MAX_IMAGE_BYTES, FetchRefused, fetch
from raer.nodes.image_source import image_kind
from raer.nodes.schemas import PackshotDescription

MAX_DATA_URL_CHARS = 8 * 1024 * 1024  # ~6 MB of image once base64 is decoded
MAX_PIXELS = 25_000_000  # well below Pillow's 89 M default: ~100 MB decoded as RGBA


class ImageUnavailable(Exception):
    """The packshot cannot be used; the message is the recorded reason."""


@dataclass(frozen=True)
class Packshot:
    sha256: str
    image: Image.Image

    def data_url(self, max_side: int) -> str:
        img = self.image.copy()
        img.thumbnail((max_side, max_side))
        buf = io.BytesIO()
        img.convert("RGB").save(buf, format="JPEG", quality=85)
        return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


@dataclass(frozen=True)
class ImagePolicy:
    """Where packshots may come from: local files only inside `root` (anywhere when it is
    empty: a script that builds its own pairs; not at all when `local` is False), URLs only
    to public addresses or the operator's `allow_hosts`."""

    root: str = ""
    local: bool = True
    allow_hosts: str = ""

    @classmethod
    def of(cls, settings: Any) -> ImagePolicy:
        """The run's policy, from its settings (`Context`): the only way a judging path,
        an estimate or a command builds one, so every command confines packshots alike."""
        return cls(settings.images_root, settings.local_images, settings.image_allow_hosts)

    @classmethod
    def of_run_folder(cls, root: str) -> ImagePolicy:
        """A stored run's packshots seen again (the review page): inside its folder only,
        and none at all for a run that had no folder."""
        return cls(root=root, local=bool(root))


def read_local(source: str, policy: ImagePolicy) -> bytes:
    """A local packshot's bytes, as the judging run would read them (confined, capped)."""
    if not policy.local:
        raise ImageUnavailable("local image files are not read here (no images root)")
    root = Path(policy.root or Path.cwd()).resolve()
    path = Path(source)
    path = (path if path.is_absolute() else root / path).resolve()
    if policy.root and not path.is_relative_to(root):
        # said without touching the file: no oracle for what exists outside the root
        raise ImageUnavailable("image path is outside the images folder "
                               "(the pairs file's folder, or --images-root)")
    try:
        size = path.stat().st_size
        if size > MAX_IMAGE_BYTES:
            raise ImageUnavailable(f"image larger than {MAX_IMAGE_BYTES // 2**20} MB")
        return path.read_bytes()
    except OSError as exc:
        raise ImageUnavailable(f"image file unreadable: {path.name} ({exc.strerror})") from exc


def _read_bytes(source: str, policy: ImagePolicy) -> bytes:
    kind = image_kind(source)
    if kind == "data":
        if len(source) > MAX_DATA_URL_CHARS:
            raise ImageUnavailable(f"data URL longer than {MAX_DATA_URL_CHARS // 2**20} MB")
        header, _, payload = source.partition(",")
        if ";base64" not in header:
            raise ImageUnavailable("data URL is not base64-encoded")
        try:
            return base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ImageUnavailable(f"data URL does not decode: {exc}") from exc
    if kind in ("web", "url"):
        try:
            return fetch(source, policy.allow_hosts)
        except FetchRefused as exc:
            raise ImageUnavailable(str(exc)) from exc
    return read_local(source, policy)


def load_packshot(source: str, policy: ImagePolicy | None = None) -> Packshot:
    data = _read_bytes(source, policy or ImagePolicy())
    try:
        image = Image.open(io.BytesIO(data))
        width, height = image.size
        if width * height > MAX_PIXELS:
            raise ImageUnavailable(f"image of {width}×{height} pixels is over the "
                                   f"{MAX_PIXELS // 1_000_000} megapixel limit")
        image.draft("RGB", (2048, 2048))  # JPEG decodes at a reduced size where it can
        image.load()
        image = ImageOps.exif_transpose(image)
    except UnidentifiedImageError as exc:
        # Pillow's message names an object address; the reason must be stable, since it
        # becomes part of the judge's prompt and so of its cache key.
        raise ImageUnavailable("image is corrupt or not an image (format not recognised)") \
            from exc
    except (OSError, Image.DecompressionBombError) as exc:
        raise ImageUnavailable(f"image is corrupt or not an image: {exc}") from exc
    return Packshot(sha256=hashlib.sha256(data).hexdigest(), image=image)


# ------------------------------------------------------------------ offline local analysis

def _colour_name(rgb: tuple[int, int, int]) -> str:
    best, best_distance = "unknown", float("inf")
    for name in webcolors.names("css3"):
        r, g, b = webcolors.name_to_rgb(name, spec="css3")
        distance = (r - rgb[0]) ** 2 + (g - rgb[1]) ** 2 + (b - rgb[2]) ** 2
        if distance < best_distance:
            best, best_distance = name, distance
    return best


def _object_pixels(img: Image.Image) -> Image.Image:
    """The image on a white background, with near-white backdrop pixels counted out later."""
    if img.mode in ("RGBA", "LA", "P"):
        rgba = img.convert("RGBA")
        backdrop = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(backdrop, rgba).convert("RGB")
    return img.convert("RGB")


def _stripes(img: Image.Image) -> str:
    """'horizontal stripes' / 'vertical stripes' when brightness alternates regularly."""
    grey = img.convert("L").resize((64, 64))
    pixels = list(grey.tobytes())
    rows = [sum(pixels[r * 64:(r + 1) * 64]) / 64 for r in range(64)]
    cols = [sum(pixels[c::64]) / 64 for c in range(64)]

    def alternations(profile: list[float]) -> int:
        mean = sum(profile) / len(profile)
        signs = [v > mean for v in profile[8:56]]
        return sum(1 for a, b in zip(signs, signs[1:], strict=False) if a != b)

    def contrast(profile: list[float]) -> float:
        inner = profile[8:56]
        return max(inner) - min(inner)

    r_alt, c_alt = alternations(rows), alternations(cols)
    if r_alt >= 6 and contrast(rows) > 40 and r_alt > c_alt:
        return "horizontal stripes"
    if c_alt >= 6 and contrast(cols) > 40 and c_alt > r_alt:
        return "vertical stripes"
    return "no regular stripes detected"


def analyse_locally(packshot: Packshot) -> PackshotDescription:
    img = _object_pixels(packshot.image)
    img.thumbnail((128, 128))
    quantised = img.quantize(colors=6, method=Image.Quantize.MEDIANCUT)
    palette = quantised.getpalette() or []
    counts = sorted(quantised.getcolors() or [], reverse=True)
    names: list[str] = []
    total = sum(c for c, _ in counts) or 1
    for count, index in counts:
        rgb = tuple(palette[index * 3:index * 3 + 3])
        if min(rgb) > 235:  # the white backdrop of a packshot
            continue
        name = _colour_name(rgb)  # type: ignore[arg-type]
        if name not in names and count / total > 0.03:
            names.append(name)
    return PackshotDescription(
        product_type="unknown (local Pillow analysis cannot recognise objects)",
        colours=names[:5] or ["white"],
        pattern=_stripes(img),
        visible_text="",
        details=("Measured by local image analysis (Pillow), not by a vision model: colours "
                 "are the nearest CSS colour names of the dominant pixels; text and logos "
                 "are not read."),
    )
