"""What a search's stored study says: its trials and its answer, read as ``show`` reads them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tuner.errors import UsageError

if TYPE_CHECKING:
    import optuna
    import pandas as pd

    from objectives.best import Answer


class StudyAnswer:
    """The study's side of ``DepthSearch``: one definition of best everywhere (``show``, ``report``,
    ``export`` and this API), with the raw top trial under its own name. Subclasses give
    ``_location()``, the study's name and storage."""

    @property
    def study(self) -> optuna.Study:
        """The stored study, read from the storage (``UsageError`` if there is none yet)."""
        from tuner.store.storage import load_stored_study

        name, storage = self._location()
        return load_stored_study(name, storage=storage)

    def trials_dataframe(self, *, include_all: bool = False) -> pd.DataFrame:
        """One row per measured trial: the table ``depth-tuner show --format csv`` writes.

        ``include_all`` adds failed trials and depths answered from an
        equivalent one, as ``show --all``.
        """
        from tuner.analysis.summary import trials_frame

        return trials_frame(self.study, include_all=include_all)

    @property
    def answer(self) -> Answer | None:
        """The study's answer, as ``show`` prints it: the best depth by the recorded objective,
        its readings pooled per depth with their noise (None before the first measured trial)."""
        from tuner.analysis.summary import study_answer

        try:
            return study_answer(self.study)
        except UsageError:  # no study (or storage) yet: nothing is best
            return None

    @property
    def best_depth(self) -> int | None:
        """The best depth: ``show``'s and ``export``'s (None before the first measured trial)."""
        answer = self.answer
        return None if answer is None else int(answer.best_depth)

    @property
    def best_value(self) -> float | None:
        """The best depth's pooled value by the study's objective, as ``show`` reports it."""
        answer = self.answer
        return None if answer is None else float(answer.best_value)

    @property
    def interval(self) -> tuple[float, float] | None:
        """The 95 % interval of ``best_value`` (``show --format json``'s ``best_interval``)."""
        answer = self.answer
        return None if answer is None else tuple(float(v) for v in answer.best_interval)

    @property
    def within_noise(self) -> list[int]:
        """The depths the readings cannot tell from the best (empty before the first trial)."""
        answer = self.answer
        return [] if answer is None else [int(d) for d in answer.within_noise]

    def best_trial(self) -> pd.Series | None:
        """The single measured trial with the highest stored value: not the answer, which pools
        each depth's repeats (and, under ``cheapest-within``, stores accuracy as the value)."""
        from tuner.analysis.summary import best_trial_row

        try:
            frame = self.trials_dataframe()
        except UsageError:
            return None
        return best_trial_row(frame)

    @property
    def note(self) -> str | None:
        """The study's caveat (generated data, random weights) that ``show`` prints, or None."""
        from tuner.store.provenance import provenance_note
        from tuner.store.study import recorded_config

        return provenance_note(recorded_config(self.study))

    def _location(self) -> tuple[str, str]:
        raise NotImplementedError
