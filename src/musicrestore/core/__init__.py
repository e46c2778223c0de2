"""The bottom of the stack: what every other package may import, and nothing above it.

- :mod:`.errors`: the errors a user can cause (one line each) and :data:`~.errors.USER_ERRORS`.
- :mod:`.audio`: validated audio reading and writing, resampling, atomic files.
- :mod:`.config`: the one strict, typed merge of a ``params.yaml`` block over its defaults,
  and the one safe loader of each format a user hands the package (YAML, JSON).
- :mod:`.chunks`: the one chunked-inference engine (chunk planning, raised-cosine fades,
  overlap-add), used by the file runner and by the learned models' long-signal inference.
- :mod:`.stage`: what every entry point shares: params loading, atomic output folders,
  signals as exceptions, one-line errors (:func:`~.stage.main_guard`).

May import: nothing of the project (``errors`` < ``audio`` < ``config``, ``stage``).
"""
