"""Progress reporting: a tqdm bar on a terminal, one line per epoch otherwise, or silence.

tqdm is optional (the ``train`` extra); without it a terminal also gets the per-epoch lines.
"""

from __future__ import annotations

import sys

__all__ = ["Progress"]


class Progress:
    """Reports one loop. ``verbose=0``: silent; ``verbose>=1``: a bar when ``file`` is a
    terminal and tqdm is installed, otherwise only :meth:`log` lines."""

    def __init__(self, total: int, desc: str, *, verbose: int = 1, file=None, unit="ex"):
        self.file = sys.stderr if file is None else file
        self.verbose = verbose
        self.bar = None
        if verbose >= 1 and getattr(self.file, "isatty", lambda: False)():
            try:
                from tqdm.auto import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self.bar = tqdm(total=total, desc=desc, unit=unit, unit_scale=True,
                                file=self.file, leave=True, dynamic_ncols=True)

    def update(self, n: int, **postfix) -> None:
        if self.bar is not None:
            self.bar.update(n)
            if postfix:
                self.bar.set_postfix({k: (f"{v:.4g}" if isinstance(v, float) else v)
                                      for k, v in postfix.items()}, refresh=False)

    def log(self, line: str) -> None:
        """A summary line: written below the bar, or alone when there is no bar."""
        if self.verbose < 1:
            return
        if self.bar is not None:
            self.bar.write(line, file=self.file)
        else:
            print(line, file=self.file, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
