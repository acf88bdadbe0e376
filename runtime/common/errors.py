"""Errors of the export and calibration pipeline. Library functions raise these; only the CLI turns
them into exit code 2 with one line naming the problem."""

from __future__ import annotations


class ExportError(RuntimeError):
    """A bad input or a failed check on the way from a checkpoint to an engine."""


class OnnxModelError(ExportError):
    """An ONNX file that is missing, unreadable, invalid, or not a TSI model."""


class CompatibilityError(ExportError):
    """A graph that TensorRT (10.3, or DLA) would reject; ``problems`` lists every node at fault."""

    def __init__(self, source: str, problems: list):
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{source}: {len(self.problems)} TensorRT compatibility problem(s):\n{lines}")


class CalibrationError(ExportError):
    """Calibration data or a calibration cache that cannot be used."""
