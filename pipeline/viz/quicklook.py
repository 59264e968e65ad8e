"""Fast training-time pictures of decision planes (METHODS.md, "Decision plane through three
inputs"): the Pillow renderer of ``ddsweep.pipeline.viz.picture.PlanePicture``.

The same picture as ``ddsweep.pipeline.viz.plots.draw`` (same texts, colours, markers, legend) at a fraction
of the cost: matplotlib spends 0.1-0.2 s a figure on text layout and Agg rendering, a large share of
a short run that draws planes every few epochs. Publication figures (``ddsweep plane``) stay with
matplotlib. Row j=0 of a label map is drawn at the bottom; pixels outside the map (-1) are white.
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFont
from PIL.PngImagePlugin import PngInfo

from ddsweep.pipeline.viz.picture import DARKEN, MARKER_EDGE, Anchor, Extent, LegendEntry, PlanePicture

PLOT_BOX = 400  # px: the plot area of a single plane fits in PLOT_BOX x PLOT_BOX
PANEL_BOX = 300  # px: the same for each panel of the seeds picture
HATCH = 6  # px between the diagonal hatch lines of the disagreement area
_MARGIN, _GAP, _PANEL_GAP, _LEGEND_GAP = 10, 4, 18, 16
_SIZES = {"title": 14, "axis": 12, "tick": 11, "anchor": 11, "legend": 12}
_MAX_LEGEND_COLUMNS = 3
_WHITE, _BLACK = (255, 255, 255), (0, 0, 0)

Rect = tuple[int, int, int, int]  # (left, top, right, bottom), right and bottom exclusive
_Columns = tuple[tuple[int, int, int], ...]  # legend: (first entry, end entry, x offset) per column


@dataclass(frozen=True)
class Picture:
    """A rendered plane: ``image`` (RGB), every string drawn on it (``texts``), the plot area of
    each panel (``plots``, pixel rectangles (left, top, right, bottom), right/bottom exclusive) and
    the title as drawn."""

    image: Image.Image
    texts: tuple[str, ...]
    plots: tuple[Rect, ...]
    title: str = ""

    def save(self, path) -> Path:
        """Write a PNG at ``path`` atomically (``path.tmp``, then os.replace) with the title as text
        chunk "Title" and all texts, one a line, as "Description" (iTXt where not Latin-1)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        info = PngInfo()
        info.add_text("Title", self.title)
        info.add_text("Description", "\n".join(self.texts))
        try:
            self.image.save(tmp, format="PNG", pnginfo=info, compress_level=1)
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()
        return path


@functools.lru_cache(maxsize=None)
def _font(size: int) -> ImageFont.FreeTypeFont:
    # DejaVu Sans (shipped with matplotlib) has the ≠ and → of the labels; Pillow's default lacks them.
    path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    try:
        return ImageFont.truetype(str(path), size, layout_engine=ImageFont.Layout.BASIC)
    except OSError:
        return ImageFont.load_default(size=size)


def _line_height(font) -> int:
    ascent, descent = font.getmetrics()
    return ascent + descent


def _width(text: str, font) -> int:
    return math.ceil(font.getlength(text))


@functools.lru_cache(maxsize=64)
def _rotated_text(text: str, size: int) -> Image.Image:
    """Mask (mode L) of ``text`` turned 90° counter-clockwise, reading bottom to top."""
    font = _font(size)
    mask = Image.new("L", (_width(text, font), _line_height(font)), 0)
    ImageDraw.Draw(mask).text((0, 0), text, font=font, fill=255)
    return mask.transpose(Image.Transpose.ROTATE_90)


def _rgb8(colors) -> np.ndarray:
    """``[..., 3]`` uint8 of RGBA floats ``[..., 4]`` laid over white (the picture's background)."""
    c = np.asarray(colors, float)
    alpha = c[..., 3:]
    return np.round(255 * (c[..., :3] * alpha + (1 - alpha))).astype(np.uint8)


def _rgb(color) -> tuple[int, int, int]:
    """``_rgb8`` of one colour (r, g, b, a), in plain Python: numpy costs more for a single colour."""
    *rgb, alpha = color
    return tuple(round(255 * (c * alpha + (1 - alpha))) for c in rgb)


def plot_size(extent: Extent, box: int) -> tuple[int, int]:
    """(width, height) in px of a plot area that fits in ``box`` x ``box`` with one unit of u and
    one unit of v the same number of pixels."""
    u0, u1, v0, v1 = extent
    scale = box / max(u1 - u0, v1 - v0)
    return max(round((u1 - u0) * scale), 1), max(round((v1 - v0) * scale), 1)


def to_pixel(coords, extent: Extent, plot: Rect) -> np.ndarray:
    """Image positions ``[K, 2]`` (x, y, float) of plane coordinates ``coords [K, 2]`` (u, v) in a
    plot area ``plot`` showing ``extent`` (u0, u1, v0, v1; v grows upwards)."""
    u0, u1, v0, v1 = extent
    left, top, right, bottom = plot
    c = np.asarray(coords, float).reshape(-1, 2)
    x = left + (c[:, 0] - u0) / (u1 - u0) * (right - left)
    y = bottom - (c[:, 1] - v0) / (v1 - v0) * (bottom - top)
    return np.stack([x, y], axis=1)


def _palette(colors: np.ndarray) -> np.ndarray:
    """``[C + 1, 3]`` uint8: the class colours ``colors [C, 4]``, then white for -1 (outside the map)."""
    return np.concatenate([_rgb8(colors), np.full((1, 3), 255, np.uint8)])


@functools.lru_cache(maxsize=32)
def _nearest(n_in: int, n_out: int) -> np.ndarray:
    """Source index of each of ``n_out`` output pixels (nearest neighbour, pixel centres)."""
    return (np.arange(n_out) * 2 + 1) * n_in // (2 * n_out)


def _upscale(a: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``a [R, R]`` ([j, i], j=0 at the bottom) as an image-ordered ``[h, w]`` array (top row first)."""
    w, h = size
    rows, cols = _nearest(a.shape[0], h), _nearest(a.shape[1], w)
    return a[::-1][np.ix_(rows, cols)]


@functools.lru_cache(maxsize=8)
def _hatch(size: tuple[int, int]) -> np.ndarray:
    """``[h, w]`` bool: thin diagonal lines ("/"), one every HATCH px."""
    w, h = size
    return (np.arange(h)[:, None] + np.arange(w)[None, :]) % HATCH == 0


def _map_pixels(label_map: np.ndarray, palette: np.ndarray, size: tuple[int, int],
                disagree: np.ndarray | None) -> np.ndarray:
    """``[h, w, 3]`` uint8 picture of ``label_map [R, R]``; where ``disagree [R, R]`` is set, the
    colours are darkened and hatched."""
    labels = _upscale(np.where(label_map < 0, len(palette) - 1, label_map), size)  # [h, w]
    pixels = palette[labels]  # [h, w, 3]
    if disagree is not None and disagree.any():
        mask = _upscale(disagree, size)  # [h, w]
        pixels[mask] = np.round(pixels[mask] * (1 - DARKEN)).astype(np.uint8)
        pixels[mask & _hatch(size)] = 0
    return pixels


def _star(x: float, y: float, outer: float, inner: float) -> list[tuple[float, float]]:
    """Vertices of a 5-point star centred on (x, y), one point up."""
    angles = -np.pi / 2 + np.arange(10) * np.pi / 5
    radii = np.where(np.arange(10) % 2 == 0, outer, inner)
    return list(zip(x + radii * np.cos(angles), y + radii * np.sin(angles)))


def _draw_marker(draw: ImageDraw.ImageDraw, x: float, y: float, fill, marker: str,
                 scale: float = 1.0) -> None:
    """An anchor marker (Anchor.marker): a circle, or a star, edged in MARKER_EDGE[marker]."""
    edge = _rgb(MARKER_EDGE[marker])
    if marker == "star":
        draw.polygon(_star(x, y, 13 * scale, 5.5 * scale), fill=fill, outline=edge, width=3)
    else:
        r = 7 * scale
        draw.ellipse((x - r, y - r, x + r, y + r), fill=fill, outline=edge, width=2)


def _draw_points(draw, xy: np.ndarray, colors: np.ndarray) -> None:
    """Train points: small dots in their label colour with a thin black edge."""
    for (x, y), c in zip(xy, colors):
        draw.ellipse((x - 3, y - 3, x + 3, y + 3), fill=tuple(int(k) for k in c), outline=_BLACK)


def _draw_anchors(draw, xy: np.ndarray, anchors: Sequence[Anchor], size: tuple[int, int]) -> list[str]:
    """Markers, then their texts on white boxes, on a plot image of ``size``; texts of anchors
    outside the plot are left out (as matplotlib's annotations). Returns the texts drawn."""
    for (x, y), anchor in zip(xy, anchors):
        _draw_marker(draw, x, y, _rgb(anchor.color), anchor.marker)
    font, (w_plot, h_plot) = _font(_SIZES["anchor"]), size
    drawn = []
    for (x, y), anchor in zip(xy, anchors):
        if not (0 <= x < w_plot and 0 <= y < h_plot):
            continue
        w, h = _width(anchor.text, font) + 4, _line_height(font) + 2
        tx = x + 8 if x + 8 + w <= w_plot else x - 8 - w  # right of the anchor, else left
        ty = y - 8 - h if y - 8 - h >= 0 else y + 8  # above it, else below
        tx, ty = min(max(tx, 0), max(w_plot - w, 0)), min(max(ty, 0), max(h_plot - h, 0))
        draw.rectangle((tx, ty, tx + w - 1, ty + h - 1), fill=_WHITE)
        draw.text((tx + 2, ty + 1), anchor.text, font=font, fill=_BLACK)
        drawn.append(anchor.text)
    return drawn


def _plot_image(picture: PlanePicture, s: int, size: tuple[int, int],
                palette: np.ndarray) -> tuple[Image.Image, list[str]]:
    """The plot area of panel ``s`` alone: label map, disagreement, train points, anchors and
    their texts (clipped to the area). Returns the image and the anchor texts drawn."""
    image = Image.fromarray(_map_pixels(picture.maps[s], palette, size, picture.disagree))
    draw, area = ImageDraw.Draw(image), (0, 0, *size)
    if len(picture.points):
        xy = _clip(to_pixel(picture.points, picture.extent, area), size)
        _draw_points(draw, xy, _rgb8(picture.point_colors))
    xy = _clip(to_pixel(picture.anchor_xy, picture.extent, area), size)
    return image, _draw_anchors(draw, xy, picture.anchors, size)


def _clip(xy: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    # Far-away or non-finite positions would overflow Pillow's integer coordinates.
    w, h = size
    xy = np.nan_to_num(xy, nan=-100.0, posinf=w + 100.0, neginf=-100.0)
    return np.clip(xy, [-100, -100], [w + 100, h + 100])


@dataclass(frozen=True)
class _Layout:
    """Where things go: panel plot areas, the legend's corner and columns, the canvas size."""

    plots: tuple[Rect, ...]
    cells: tuple[tuple[int, int], ...]  # (left, right) of each panel, gutters included
    legend_at: tuple[int, int]
    legend_columns: _Columns
    size: tuple[int, int]


def _legend_columns(labels: Sequence[str], height: int) -> tuple[_Columns, int, int]:
    """Split legend entries into columns of at most ``height`` px (more columns, up to
    _MAX_LEGEND_COLUMNS, then taller). Returns the columns, total width and height."""
    font = _font(_SIZES["legend"])
    row = _line_height(font) + 5
    n = max(len(labels), 1)
    per_column = max(height // row, 1)
    if -(-n // per_column) > _MAX_LEGEND_COLUMNS:
        per_column = -(-n // _MAX_LEGEND_COLUMNS)
    columns, x = [], 0
    for start in range(0, len(labels), per_column):
        end = min(start + per_column, len(labels))
        columns.append((start, end, x))
        x += 24 + max(_width(t, font) for t in labels[start:end]) + 14
    return tuple(columns), x, min(n, per_column) * row


def _layout(S: int, size: tuple[int, int], title_lines, axis_names, ticks, panel_titles,
            legend_labels) -> _Layout:
    """Sizes from the text metrics: title lines on top, then S panels (each a left gutter for the
    v name and end values, the plot area, a bottom gutter for the u end values and name), then the
    legend columns on the right."""
    pw, ph = size
    axis, tick, title = _font(_SIZES["axis"]), _font(_SIZES["tick"]), _font(_SIZES["title"])
    left_gutter = _line_height(axis) + 2 * _GAP + max(_width(t, tick) for t in ticks[2:]) + 2
    bottom_gutter = 2 * _GAP + _line_height(tick) + _line_height(axis)
    top_of_panels = _MARGIN + len(title_lines) * _line_height(title) + (_GAP if title_lines else 0)
    panel_title = (_line_height(axis) + _GAP) if panel_titles else 0
    v_overhang = max(0, -(-(_width(axis_names[1], axis) - ph) // 2))  # v name longer than the plot
    widths = [pw + 1, _width(axis_names[0], axis), *(_width(t, axis) for t in panel_titles)]
    cell_w = left_gutter + max(widths)
    plot_top = top_of_panels + panel_title + v_overhang
    cells = tuple((_MARGIN + s * (cell_w + _PANEL_GAP), _MARGIN + s * (cell_w + _PANEL_GAP) + cell_w)
                  for s in range(S))
    plots = tuple((c0 + left_gutter, plot_top, c0 + left_gutter + pw, plot_top + ph) for c0, _ in cells)
    legend_at = (cells[-1][1] + _LEGEND_GAP, plot_top)
    columns, legend_w, legend_h = _legend_columns(legend_labels, ph + bottom_gutter)
    width = max(legend_at[0] + legend_w, max((_width(t, title) for t in title_lines), default=0)) + _MARGIN
    height = max(plot_top + ph + max(bottom_gutter, v_overhang), plot_top + legend_h) + _MARGIN
    return _Layout(plots, cells, legend_at, columns, (width, height))


def _tick_texts(extent: Extent) -> tuple[str, str, str, str]:
    """Axis end values: u min, u max, v min, v max (pixel-edge extent, as matplotlib shows it)."""
    return tuple(f"{x:.3g}" for x in extent)


def _draw_axes(canvas: Image.Image, draw, plot: Rect, cell: tuple[int, int], axis_names, ticks,
               panel_title: str | None) -> None:
    """Frame, axis end values, axis names (v rotated) and the panel's title around ``plot``."""
    left, top, right, bottom = plot
    axis, tick = _font(_SIZES["axis"]), _font(_SIZES["tick"])
    draw.rectangle((left - 1, top - 1, right, bottom), outline=_BLACK)
    draw.text((left, bottom + _GAP), ticks[0], font=tick, fill=_BLACK, anchor="la")
    draw.text((right, bottom + _GAP), ticks[1], font=tick, fill=_BLACK, anchor="ra")
    draw.text((left - _GAP - 2, bottom), ticks[2], font=tick, fill=_BLACK, anchor="rd")
    draw.text((left - _GAP - 2, top), ticks[3], font=tick, fill=_BLACK, anchor="ra")
    y_name = bottom + 2 * _GAP + _line_height(tick)
    draw.text((_centre(axis_names[0], axis, (left + right) / 2, cell), y_name), axis_names[0],
              font=axis, fill=_BLACK)
    mask = _rotated_text(axis_names[1], _SIZES["axis"])
    canvas.paste(_BLACK, (cell[0], round((top + bottom - mask.height) / 2)), mask)
    if panel_title is not None:
        draw.text((_centre(panel_title, axis, (left + right) / 2, cell), top - _GAP - 1), panel_title,
                  font=axis, fill=_BLACK, anchor="ld")


def _centre(text: str, font, x: float, cell: tuple[int, int]) -> int:
    """Left edge of ``text`` centred on ``x`` but kept inside ``cell`` (left, right)."""
    w = _width(text, font)
    return round(min(max(x - w / 2, cell[0]), max(cell[1] - w, cell[0])))


def _swatch(colour: tuple[int, int, int], hatched: bool) -> Image.Image:
    """A 17x13 px legend patch, hatched as the disagreement area when ``hatched``."""
    patch = np.empty((13, 17, 3), np.uint8)  # [h, w, 3]
    patch[:] = colour
    if hatched:
        patch[_hatch((17, 13))] = 0
    return Image.fromarray(patch)


def _draw_legend(canvas: Image.Image, draw, entries: Sequence[LegendEntry], layout: _Layout) -> None:
    font = _font(_SIZES["legend"])
    row = _line_height(font) + 5
    x0, y0 = layout.legend_at
    for start, end, dx in layout.legend_columns:
        for k in range(start, end):
            entry = entries[k]
            x, y = x0 + dx, y0 + (k - start) * row
            cx, cy = x + 9, y + row / 2
            if entry.kind in MARKER_EDGE:
                _draw_marker(draw, cx, cy, _rgb(entry.color), entry.kind, scale=0.7)
            else:
                swatch = _swatch(_rgb(entry.color), hatched=entry.kind == "hatch")
                canvas.paste(swatch, (x + 1, round(cy) - 6))
            draw.text((x + 24, cy), entry.label, font=font, fill=_BLACK, anchor="lm")


def _draw_title(draw, lines: Sequence[str], width: int) -> None:
    font = _font(_SIZES["title"])
    for k, line in enumerate(lines):
        draw.text((width / 2, _MARGIN + k * _line_height(font)), line, font=font, fill=_BLACK,
                  anchor="ma")


def draw(picture: PlanePicture) -> Picture:
    """The Pillow picture of ``picture`` (ddsweep.pipeline.viz.picture.describe_plane): its panels side by
    side under the title lines, each with a frame, axis end values and names (and its seed's name
    in the seeds picture), the legend on the right. A single plane's plot area fits in PLOT_BOX px,
    each panel of the seeds picture in PANEL_BOX px, with equal scale on u and v."""
    size = plot_size(picture.extent, PANEL_BOX if picture.seeds else PLOT_BOX)
    ticks = _tick_texts(picture.extent)
    legend_labels = [entry.label for entry in picture.legend]
    layout = _layout(len(picture.maps), size, picture.title_lines, picture.axis_names, ticks,
                     picture.panel_titles, legend_labels)
    canvas = Image.new("RGB", layout.size, _WHITE)
    pen = ImageDraw.Draw(canvas)
    palette = _palette(picture.colors)
    anchor_texts: list[str] = []
    for s, (plot, cell) in enumerate(zip(layout.plots, layout.cells)):
        image, drawn = _plot_image(picture, s, size, palette)
        canvas.paste(image, plot[:2])
        anchor_texts += drawn
        _draw_axes(canvas, pen, plot, cell, picture.axis_names, ticks,
                   picture.panel_titles[s] if picture.seeds else None)
    _draw_legend(canvas, pen, picture.legend, layout)
    _draw_title(pen, picture.title_lines, layout.size[0])
    texts = [*picture.title_lines, *picture.panel_titles, *picture.axis_names, *ticks, *anchor_texts,
             *legend_labels]
    return Picture(canvas, tuple(dict.fromkeys(texts)), layout.plots, picture.title)
