"""Make docs/gallery.png (the picture in README.md) from a gallery's PNGs.

    udl gallery --out udl-out && python docs/make_gallery_picture.py udl-out
"""

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.image as mpimg  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402

IDS = ["3.5", "4.3", "5.7", "C.2"]


def main(out: str = "udl-out") -> None:
    fig, axes = plt.subplots(len(IDS), 1, figsize=(9, 11), layout="constrained")
    for ax, fig_id in zip(axes, IDS):
        ax.imshow(mpimg.imread(Path(out) / f"{fig_id}.png"))
        ax.set_axis_off()
        ax.set_title(f"udl figure {fig_id}", loc="left", fontsize=10)
    fig.savefig(Path(__file__).with_name("gallery.png"), dpi=90)


if __name__ == "__main__":
    main(*sys.argv[1:])
