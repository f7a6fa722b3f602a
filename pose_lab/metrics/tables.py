"""Result tables: one class for every table of numbers the kit prints.

:class:`ResultTable` holds rows x columns of numbers (actions x protocols,
keypoints x metrics, methods x stats, ...), optionally closed by an average
row, and renders as Markdown (``print(table)``, or ``display(table)`` in
Jupyter). It is the single table class of the kit: the per-action tables here
(:class:`ActionTable`, from :func:`evaluate_by_action` / :func:`per_action_table`),
the per-keypoint table of the 2D keypoint evaluation
(:mod:`pose_lab.evaluation.keypoints2d`) and the lifting protocol tables of
:mod:`pose_lab.evaluation.lifting` all use it.

Per-action tables follow the Human3.6M literature: the error is averaged over
the frames of each action first, then the per-action errors are averaged with
equal weight (``"Average"`` row), which is the number papers report.
"""

from __future__ import annotations

import math
import numbers
from collections import OrderedDict
from collections.abc import Mapping

import numpy as np

from pose_lab.metrics._common import _pair, _quiet_nanmean
from pose_lab.metrics.pose3d import auc_3d, mpjpe, n_mpjpe, p_mpjpe, pck_3d

__all__ = ["ResultTable", "ActionTable", "per_action_table", "evaluate_by_action"]


def _format_cell(value, digits: int) -> str:
    """A cell as Markdown text: ints as they are, floats with ``digits`` decimals, NaN/missing as ``-``."""
    if value is None:
        return "-"
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        v = float(value)
        return "-" if not math.isfinite(v) else f"{v:.{digits}f}"
    return str(value)


class ResultTable:
    """Rows x columns of numbers (e.g. actions x protocols, keypoints x metrics), printable as Markdown.

    Args:
        rows: ordered ``{row_name: {column: value}}``. A row may lack some
            columns (the cell prints as ``-``, and counts as NaN in averages).
        columns: the column order (and selection); default: the union of the
            rows' columns in first-seen order.
        title: optional caption, printed in bold above the Markdown table.
        row_label: header of the first (row-name) column.
        average_row: ``None``, or the name of an average row (e.g. ``"Average"``)
            placed last and printed in bold. If ``rows`` has no row of that name,
            it is appended with the NaN-aware column means over the other rows;
            if it has one, its values are kept as given (e.g. an average computed
            elsewhere) and the row is moved last.
        digits: decimals of float cells in :meth:`to_markdown` (ints print as ints).

    Example:
        >>> t = ResultTable({"Walking": {"P1": 40.0, "P2": 30.0}, "Eating": {"P1": 50.0}},
        ...                 row_label="action", average_row="Average")
        >>> t["Average"]
        {'P1': 45.0, 'P2': 30.0}
        >>> print(t)
        | action | P1 | P2 |
        | --- | ---: | ---: |
        | Walking | 40.0 | 30.0 |
        | Eating | 50.0 | - |
        | **Average** | 45.0 | 30.0 |
    """

    def __init__(self, rows: "Mapping[str, Mapping[str, float]]", columns=None, *, title=None, row_label="",
                 average_row=None, digits=1):
        if not isinstance(rows, Mapping):
            raise ValueError(f"rows: expected a mapping {{row: {{column: value}}}}, got {type(rows).__name__}")
        for name, row in rows.items():
            if not isinstance(row, Mapping):
                raise ValueError(f"rows[{name!r}]: expected a mapping {{column: value}}, got {type(row).__name__}")
        if columns is None:
            columns = list(dict.fromkeys(c for row in rows.values() for c in row))
        self._columns = tuple(columns)
        keep = set(self._columns)
        self._rows = OrderedDict((name, OrderedDict((c, v) for c, v in row.items() if c in keep))
                                 for name, row in rows.items())
        self.title = title
        self.row_label = str(row_label)
        self.average_row = average_row
        self.digits = int(digits)
        if average_row is not None:
            given = self._rows.pop(average_row, None)
            self._rows[average_row] = given if given is not None else self._column_means()

    def _column_means(self) -> "OrderedDict[str, float]":
        names = [r for r in self._rows if r != self.average_row]
        means = OrderedDict()
        with np.errstate(invalid="ignore"), _quiet_nanmean():
            for c in self._columns:
                vals = np.array([float(self._rows[r].get(c, np.nan)) for r in names], dtype=np.float64)
                means[c] = float(np.nanmean(vals)) if vals.size else float("nan")
        return means

    # -- access -------------------------------------------------------------
    @property
    def rows(self) -> "OrderedDict[str, dict]":
        """A copy of the rows, ``{row: {column: value}}`` in order (the average row last)."""
        return OrderedDict((name, dict(row)) for name, row in self._rows.items())

    @property
    def columns(self) -> tuple:
        return self._columns

    def __getitem__(self, row) -> dict:
        """One row ``{column: value}`` (only the cells it has)."""
        try:
            return dict(self._rows[row])
        except KeyError:
            raise KeyError(f"no row {row!r} in the table; rows: {list(self._rows)}") from None

    def column(self, name) -> dict:
        """One column ``{row: value}`` over all rows (NaN where a row lacks the cell)."""
        if name not in self._columns:
            raise KeyError(f"no column {name!r} in the table; columns: {list(self._columns)}")
        return {r: row.get(name, float("nan")) for r, row in self._rows.items()}

    def to_dict(self) -> dict:
        """``{row: {column: value}}`` as plain dicts."""
        return {r: dict(row) for r, row in self._rows.items()}

    def __len__(self) -> int:
        return len(self._rows)

    def __iter__(self):
        return iter(self._rows)

    def __contains__(self, row) -> bool:
        return row in self._rows

    # -- rendering ----------------------------------------------------------
    def _extra_columns(self) -> list:
        """Extra rendered columns ``[(header, {row: text})]`` after the data columns (subclass hook)."""
        return []

    def to_markdown(self, digits=None) -> str:
        """A Markdown table: header ``| row_label | col1 | col2 | ... |``, one line per row, NaN as ``-``."""
        digits = self.digits if digits is None else int(digits)
        extra = self._extra_columns()
        headers = [str(c) for c in self._columns] + [h for h, _ in extra]
        lines = []
        if self.title:
            lines += [f"**{self.title}**", ""]
        lines.append("| " + " | ".join([self.row_label] + headers) + " |")
        lines.append("| --- |" + " ---: |" * len(headers))
        for name, row in self._rows.items():
            label = f"**{name}**" if self.average_row is not None and name == self.average_row else str(name)
            cells = [_format_cell(row.get(c), digits) for c in self._columns]
            cells += [text.get(name, "") for _, text in extra]
            lines.append("| " + " | ".join([label] + cells) + " |")
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:
        return self.to_markdown()

    def __str__(self) -> str:
        return self.to_markdown()

    def __repr__(self) -> str:
        title = f"{self.title!r}, " if self.title else ""
        return f"{type(self).__name__}({title}{len(self)} rows, columns={list(self._columns)})"


# ---------------------------------------------------------------------------
# per-action tables
# ---------------------------------------------------------------------------
class ActionTable(ResultTable):
    """Per-action results with the action-averaged row, as in Human3.6M papers.

    ``table[action][metric]`` is the mean of that metric over the samples of the
    action; ``table["Average"][metric]`` is the unweighted mean over actions (the
    protocol number papers report); :attr:`overall` is the mean over all samples
    (frame-weighted) for reference; :attr:`counts` the samples per action.

    A :class:`ResultTable` with the actions as rows, the metrics as columns and
    an ``n`` (samples) column in :meth:`to_markdown`. ``rows`` may include the
    average row (kept as given) or not (then it is the mean over the actions).
    """

    def __init__(self, rows: "OrderedDict[str, OrderedDict[str, float]]", counts: dict, overall: dict,
                 average_name: str = "Average"):
        super().__init__(rows, row_label="action", average_row=average_name, digits=1)
        self.counts = counts
        self.overall = overall
        self.average_name = average_name

    @property
    def actions(self) -> list:
        return [a for a in self._rows if a != self.average_name]

    @property
    def metrics(self) -> list:
        return list(self._columns)

    @property
    def average(self) -> "OrderedDict[str, float]":
        return OrderedDict(self._rows[self.average_name])

    def _extra_columns(self) -> list:
        total = sum(self.counts.values())
        return [("n", {a: str(self.counts.get(a, total)) for a in self._rows})]

    def __repr__(self) -> str:
        return f"ActionTable({len(self.actions)} actions, metrics={self.metrics})"

def _merge_action_name(action) -> str:
    # Human3.6M sub-actions: "Walking 1", "Walking" -> "Walking" (VideoPose3D convention).
    return str(action).split(" ")[0]


def per_action_table(errors_by_action, metric: str = "error", merge_subactions: bool = False,
                     average_name: str = "Average") -> ActionTable:
    """Build an :class:`ActionTable` from per-sample errors grouped by action.

    Args:
        errors_by_action: ``{action: errors}`` (a 1D array of per-sample errors
            for one metric, named ``metric``) or ``{action: {metric: errors}}``.
            Scalars are accepted as one sample.
        metric: the metric name when a single array per action is given.
        merge_subactions: merge Human3.6M sub-actions (``"Walking 1"`` and
            ``"Walking"`` -> ``"Walking"``) before averaging.
        average_name: name of the action-averaged row.

    Returns:
        The table; ``table["Average"]`` holds the unweighted mean over actions.
    """
    if not isinstance(errors_by_action, dict) or not errors_by_action:
        raise ValueError("errors_by_action must be a non-empty dict {action: errors or {metric: errors}}")
    grouped: "OrderedDict[str, OrderedDict[str, list]]" = OrderedDict()
    metric_names = None
    for action, value in errors_by_action.items():
        by_metric = value if isinstance(value, dict) else {metric: value}
        names = list(by_metric)
        if metric_names is None:
            metric_names = names
        elif names != metric_names:
            raise ValueError(
                f"action {action!r} has metrics {names}, expected the same as the first action: {metric_names}"
            )
        key = _merge_action_name(action) if merge_subactions else str(action)
        if key == average_name:
            raise ValueError(f"an action may not be called {average_name!r} (the name of the average row)")
        slot = grouped.setdefault(key, OrderedDict((m, []) for m in metric_names))
        for m, errs in by_metric.items():
            arr = np.asarray(errs, dtype=np.float64).reshape(-1)
            if arr.size == 0:
                raise ValueError(f"action {action!r}, metric {m!r}: no samples")
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"action {action!r}, metric {m!r}: contains NaN/inf")
            slot[m].append(arr)
    rows: "OrderedDict[str, OrderedDict[str, float]]" = OrderedDict()
    counts = {}
    pooled = {m: [] for m in metric_names}
    for action, by_metric in grouped.items():
        rows[action] = OrderedDict()
        for m, parts in by_metric.items():
            arr = np.concatenate(parts)
            rows[action][m] = float(arr.mean())
            pooled[m].append(arr)
        counts[action] = int(sum(len(p) for p in by_metric[metric_names[0]]))
    overall = {m: float(np.concatenate(pooled[m]).mean()) for m in metric_names}
    return ActionTable(rows, counts, overall, average_name)  # appends the unweighted mean over actions


_ACTION_METRICS = {
    "mpjpe": mpjpe,
    "p_mpjpe": p_mpjpe,
    "n_mpjpe": n_mpjpe,
    "pck_3d": pck_3d,
    "auc_3d": auc_3d,
}


def evaluate_by_action(pred, target, actions, metrics=("mpjpe", "p_mpjpe"), merge_subactions: bool = False,
                       skeleton=None) -> ActionTable:
    """Per-action and action-averaged errors (Human3.6M protocol tables).

    Args:
        pred, target: ``(N, J, 3)`` poses in mm (root-centred for protocol 1).
        actions: ``N`` action labels, one per sample.
        metrics: names among ``"mpjpe"`` (protocol 1), ``"p_mpjpe"`` (protocol 2),
            ``"n_mpjpe"``, ``"pck_3d"``, ``"auc_3d"``, or ``{name: fn}`` with
            ``fn(pred, target, reduction="per_sample")``.
        merge_subactions: see :func:`per_action_table`.

    Returns:
        :class:`ActionTable` (``table["Average"]["mpjpe"]`` is the protocol-1 number).

    Example:
        >>> table = evaluate_by_action(pred, gt, actions)   # doctest: +SKIP
        >>> print(table)                                    # doctest: +SKIP
    """
    p, t = _pair(pred, target, 3, skeleton)
    if p.ndim != 3:
        raise ValueError(f"pred and target: expected shape (N, J, 3), got {p.shape}")
    acts = np.asarray(actions)
    if acts.shape != (p.shape[0],):
        raise ValueError(f"actions: expected shape ({p.shape[0]},) (one label per sample), got {acts.shape}")
    if isinstance(metrics, dict):
        fns = dict(metrics)
    else:
        if isinstance(metrics, str):
            metrics = (metrics,)
        unknown = [m for m in metrics if m not in _ACTION_METRICS]
        if unknown:
            raise ValueError(f"unknown metric(s) {unknown}; expected names among {sorted(_ACTION_METRICS)}")
        fns = {m: _ACTION_METRICS[m] for m in metrics}
    per_sample = {m: np.asarray(fn(p, t, reduction="per_sample")) for m, fn in fns.items()}
    grouped = OrderedDict()
    for action in dict.fromkeys(acts.tolist()):  # first-appearance order
        idx = acts == action
        grouped[action] = {m: v[idx] for m, v in per_sample.items()}
    return per_action_table(grouped, merge_subactions=merge_subactions)

