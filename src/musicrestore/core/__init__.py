"""The bottom of the stack: what every other package may import, and nothing above it.

- :mod:`.errors`: the errors a user can cause (one line each) and :data:`~.errors.USER_ERRORS`.
- :mod:`.audio`: validated audio reading and writing, resampling, atomic files.
- :mod:`.config`: the one strict, typed merge of a ``params.yaml`` block over its defaults.
- :mod:`.stage`: what every entry point shares: params loading, atomic output folders,
  signals as exceptions, one-line errors (:func:`~.stage.main_guard`).

May import: nothing of the project (``errors`` < ``audio`` < ``config``, ``stage``).
"""
