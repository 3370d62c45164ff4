"""Latency of ``read_digits`` from an array to the number: a 12-megapixel photo and a 1,000-pixel one.

Run from the repository root: ``.venv/bin/python -m benchmarks.read_latency``. The photos are
held-out numbers of ``digitdraw.reading.numbers``, padded with their own paper to 4:3 and scaled to
4000x3000 and 1000x750. The obvious alternative, segmenting at full resolution instead of on a
copy scaled to ``WORKING_SIDE``, runs in the same process on the same images. The same photos turned
by ``SLANT`` degrees measure what straightening a slanted line adds.
"""

from __future__ import annotations

import argparse
import statistics
import time

import cv2
import numpy as np

from digitdraw import load_mnist, read_digits
from digitdraw.reading import numbers
from digitdraw.reading.read import WORKING_SIDE

SLANT = 12.0  # Degrees the slanted rows' lines fall to the right.


def photo_of_size(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """The photo padded with its own edge pixels to the aspect ratio, then scaled to the size."""
    rows, columns = image.shape[:2]
    target_columns = max(columns, round(rows * width / height))
    target_rows = max(rows, round(target_columns * height / width))
    pad_x, pad_y = target_columns - columns, target_rows - rows
    padded = cv2.copyMakeBorder(
        image, pad_y // 2, pad_y - pad_y // 2, pad_x // 2, pad_x - pad_x // 2, cv2.BORDER_REPLICATE
    )
    return cv2.resize(padded, (width, height), interpolation=cv2.INTER_CUBIC)


def timings(image: np.ndarray, repeats: int, **options) -> tuple[list[float], str]:
    """Seconds per call of read_digits (after one warm-up call) and what it read with model 4."""
    text = read_digits(image, **options).text(4)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        read_digits(image, **options)
        times.append(time.perf_counter() - started)
    return times, text


def main() -> None:
    """Print median and 95th percentile per image size, with and without downscaling first."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30, help="timed calls per row (default 30)")
    parser.add_argument("--photos", type=int, default=3, help="different photos per size (default 3)")
    args = parser.parse_args()
    _, (x_test, y_test) = load_mnist()
    samples = [s for s in numbers.number_set(x_test, y_test, 40, "held-out") if s.kind == "photo"][
        : args.photos
    ]
    print(f"{'latency (ms), array -> number':<52}{'median':>9}{'p95':>9}   read (true)")
    rows = [
        (4000, 3000, WORKING_SIDE, f"downscaled to {WORKING_SIDE} first", False),
        (4000, 3000, 4000, "segmented at full size", False),
        (1000, 750, WORKING_SIDE, "as it is", False),
        (4000, 3000, WORKING_SIDE, f"at a slant of {SLANT:.0f} degrees", True),
    ]
    for width, height, working_side, label, slant in rows:
        all_times, texts = [], []
        # Full-size segmentation is slow: a quarter of the calls keeps the run short.
        repeats = max(3, args.repeats // 4) if working_side > WORKING_SIDE else args.repeats
        for sample in samples:
            image = numbers.turned(sample.image, SLANT)[0] if slant else sample.image
            times, text = timings(photo_of_size(image, width, height), repeats, working_side=working_side)
            all_times += times
            texts.append(f"{text} ({sample.text})")
        name = f"{width}x{height} RGB photo, {label}"
        median, p95 = statistics.median(all_times) * 1e3, float(np.percentile(all_times, 95)) * 1e3
        print(f"{name:<52}{median:>9.1f}{p95:>9.1f}   {', '.join(texts)}")


if __name__ == "__main__":
    main()
