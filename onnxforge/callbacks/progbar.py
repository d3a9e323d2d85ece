"""A Keras-style text progress bar (``469/469 ━━━━━━━━━━━━━━━━━━━━ 2s 4ms/step - loss: 0.3``)."""
from __future__ import annotations

__all__ = ["Progbar", "format_value"]

import logging
import math
import sys
import time
from collections.abc import Iterable
from typing import Any, TextIO

import numpy as np

_BAR_CHAR = "━"
# ANSI styles, used only on an interactive terminal: logs piped to a file stay plain text.
_BOLD, _GREEN, _GREY, _RESET = "\x1b[1m", "\x1b[32m", "\x1b[37m", "\x1b[0m"


def format_value(value: Any) -> str:
    """A metric value as Keras prints it: 4 decimals, scientific notation for tiny magnitudes."""
    try:
        # An array (a custom train_step's per-sample loss) shows its mean, as Keras's bar does.
        number = float(np.mean(value)) if isinstance(value, np.ndarray) else float(value)
    except (TypeError, ValueError):
        return str(value)
    return f"{number:.4f}" if abs(number) > 1e-3 else f"{number:.4e}"


def _format_eta(seconds: float) -> str:
    if seconds > 3600:
        return f"{int(seconds // 3600)}:{int(seconds % 3600 // 60):02d}:{int(seconds % 60):02d}"
    if seconds > 60:
        return f"{int(seconds // 60)}:{int(seconds % 60):02d}"
    return f"{int(seconds)}s"


def _format_per_unit(seconds: float, unit: str) -> str:
    if seconds >= 1 or seconds == 0:
        return f"{seconds:.0f}s/{unit}"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.0f}ms/{unit}"
    return f"{seconds * 1e6:.0f}us/{unit}"


class Progbar:
    """Displays a progress bar on stdout, in the format of Keras 3.

    Args:
        target: total number of steps expected, or ``None`` if unknown.
        width: bar width in characters.
        verbose: 0 (silent), 1 (animated bar) or 2 (one line when finished).
        stateful_metrics: names of values displayed as given; other values are averaged over steps.
        interval: minimum seconds between two redraws of an animated bar.
        unit_name: the unit shown in the time per unit (``"step"``).
        stream: where to write; ``sys.stdout`` (looked up at each write) when ``None``.

    On a non-interactive stream (a file, a pipe, a captured test), ``verbose=1`` writes only the
    finished line, so logs hold one line per epoch instead of a line per redraw.

    Example:
        >>> import io
        >>> out = io.StringIO()
        >>> bar = Progbar(4, stream=out, stateful_metrics=["loss"])
        >>> for step in range(1, 5):
        ...     bar.update(step, [("loss", 0.5)])
        >>> out.getvalue().startswith("4/4 ━━━━━━━━━━━━━━━━━━━━ 0s")
        True
        >>> out.getvalue().rstrip().endswith("- loss: 0.5000")
        True
    """

    def __init__(self, target: int | None, width: int = 20, verbose: int = 1,
                 stateful_metrics: Iterable[str] | None = None, interval: float = 0.05,
                 unit_name: str = "step", stream: TextIO | None = None):
        self.target = target
        self.width = width
        self.verbose = verbose
        self.stateful_metrics = set(stateful_metrics or ())
        self.interval = interval
        self.unit_name = unit_name
        self._stream = stream
        self._values: dict[str, Any] = {}  # name -> value (stateful) or [weighted sum, count]
        self._seen = 0
        self._start = time.time()
        self._after_first_step: float | None = None
        self._last_update = 0.0
        self._prev_width = 0
        self._finalized = False

    @property
    def stream(self) -> TextIO:
        return self._stream if self._stream is not None else sys.stdout

    @property
    def dynamic_display(self) -> bool:
        isatty = getattr(self.stream, "isatty", None)
        return bool(isatty and isatty()) or "ipykernel" in sys.modules

    def update(self, current: int, values: Iterable[tuple[str, Any]] | None = None,
               finalize: bool | None = None) -> None:
        """Move the bar to step ``current`` and record ``values`` (``(name, value)`` pairs)."""
        if finalize is None:
            finalize = self.target is not None and current >= self.target
        for name, value in values or ():
            if name in self.stateful_metrics:
                self._values[name] = value
            else:
                steps = max(current - self._seen, 1)
                total, count = self._values.get(name, [0.0, 0])
                self._values[name] = [total + float(value) * steps, count + steps]
        now = time.time()
        if self._after_first_step is None and current >= 1:
            self._after_first_step = now
        self._seen = current
        if self.verbose == 1:
            self._draw(current, now, finalize)
        elif self.verbose == 2 and finalize:
            self._write(self._line_v2(current, now) + "\n")
        self._last_update = now

    def add(self, n: int, values: Iterable[tuple[str, Any]] | None = None) -> None:
        """Advance by ``n`` steps."""
        self.update(self._seen + n, values)

    def _step_seconds(self, current: int, now: float) -> float:
        # The first step pays for session creation and warm-up; when there are later steps, time
        # those alone so that "ms/step" describes the steady state, as Keras does.
        if current <= 0:
            return 0.0
        if current > 1 and self._after_first_step is not None and now > self._after_first_step:
            return (now - self._after_first_step) / (current - 1)
        return (now - self._start) / current

    def _metrics_text(self) -> str:
        parts = []
        for name, value in self._values.items():
            if isinstance(value, list):
                value = value[0] / max(value[1], 1)
            parts.append(f" - {name}: {format_value(value)}")
        return "".join(parts)

    def _counter(self, current: int) -> str:
        digits = int(math.log10(self.target)) + 1 if self.target else 1
        return f"{current:{digits}d}/{self.target}"

    def _draw(self, current: int, now: float, finalize: bool) -> None:
        dynamic = self.dynamic_display
        if not finalize and (not dynamic or now - self._last_update < self.interval):
            return
        bold, green, grey, reset = (_BOLD, _GREEN, _GREY, _RESET) if dynamic else ("", "", "", "")
        if self.target is not None:
            done = min(int(self.width * current / self.target), self.width) if self.target else self.width
            bar = (f"{bold}{self._counter(current)}{reset} {green}{_BAR_CHAR * done}{reset}"
                   f"{grey}{_BAR_CHAR * (self.width - done)}{reset}")
            plain = len(self._counter(current)) + 1 + self.width
        else:
            bar = f"{current:7d}/Unknown"
            plain = len(bar)
        per_step = self._step_seconds(current, now)
        if self.target is not None and not finalize:
            clock = _format_eta(per_step * (self.target - current))
        else:
            clock = f"{now - self._start:.0f}s"
        info = f" {bold}{clock}{reset} {_format_per_unit(per_step, self.unit_name)}{self._metrics_text()}"
        width = plain + len(info) - (len(bold) + len(reset) if dynamic else 0)
        message = ("\r" if dynamic else "") + bar + info
        if dynamic and self._prev_width > width:
            message += " " * (self._prev_width - width)  # erase the tail of a longer previous line
        self._prev_width = width
        if finalize:
            message += "\n"
            self._finalized = True
        self._write(message)

    def _line_v2(self, current: int, now: float) -> str:
        counter = self._counter(current) if self.target is not None else str(current)
        per_step = _format_per_unit(self._step_seconds(current, now), self.unit_name)
        return f"{counter} - {now - self._start:.0f}s - {per_step}{self._metrics_text()}"

    def _write(self, text: str) -> None:
        from ..backend_config import is_interactive_logging_enabled

        if self._stream is None and not is_interactive_logging_enabled():
            # keras.config.disable_interactive_logging(): whole lines go to logging, as Keras sends them to absl.
            line = text.strip("\r\n\b ")
            if line and text.endswith("\n"):
                logging.getLogger("onnxforge").info(line)
            return
        self.stream.write(text)
        self.stream.flush()
