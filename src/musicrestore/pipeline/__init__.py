"""The DVC pipeline, generated: ``dvc.yaml`` is written from this module and the registry.

``python -m musicrestore pipeline`` rewrites ``dvc.yaml``; ``python -m musicrestore pipeline
--check`` fails when the file on disk differs (a test runs the check). Two things are derived
here rather than typed by hand, because a hand-written copy drifts:

- **The variant stages.** ``restore-<variant>`` (``restore-<variant>@<group>`` for a
  per-target variant) and ``evaluate@<variant>`` come from
  :data:`musicrestore.variants.VARIANTS`: each variant's params (its own block and the ones
  it borrows, ``uses``), its artifacts (the separator, a checkpoint) and the test sets of
  the tasks it applies to are declared once, at its registration. Since the file is
  generated, each variant's restore is a plain stage of its own (DVC's ``foreach`` would need
  the same number of deps in every item, i.e. padding); DVC's ``foreach`` is kept where the
  items really share one template (``build_msr@<group>``, ``train-uformer@<group>``,
  ``restore-uformer@<group>``, and ``evaluate@<variant>``, which scores the test sets the
  restore stage wrote).
- **Code dependencies.** Each stage depends on its script and on every project module the
  script imports, directly or through other modules, found by reading the import statements
  (:func:`module_closure`; imports inside functions count, since they run when the code
  does). Editing a module therefore re-runs exactly the stages whose code reads it. A
  package the stage reads entirely is one directory dependency, and the foundation package
  (``src/musicrestore/core``, :data:`~.code.FOUNDATION`) always is;
  ``.dvcignore`` keeps ``__pycache__`` out of its hash. The :mod:`musicrestore.tracking`
  package (MLflow records) is left out on purpose: it shapes no output. A restore stage
  depends on its own variant's module, not on the other variants that the ``variants``
  package also registers; a training stage on its own architecture, not on the others that
  :mod:`musicrestore.models` also registers.

Paths of data and reports live here and in the generated ``dvc.yaml`` only; stage scripts
receive them as arguments. The set of T2 groups stays a parameter (``msr.targets``): the
per-group stages iterate it with DVC's own ``foreach``. Trained models are declared as DVC
``artifacts`` (type ``model``), DVC's model-registry convention.

The package: :mod:`.code` (code dependencies from imports), :mod:`.stages` (every stage and
artifact), :mod:`.render` (the file's text and ``python -m musicrestore pipeline``).
"""

from .code import (
    NOT_OUTPUT_SHAPING,
    PACKAGE,
    ROOT,
    SRC,
    _imports,
    _inert,
    code_deps,
    collapse_packages,
    module_closure,
    module_file,
)
from .render import DVC_YAML, main, render
from .stages import (
    ARTIFACTS,
    EVAL,
    LEARNED,
    MIX_TESTSETS,
    MODELS,
    MSR_TEST,
    MSR_TRAIN,
    PER_TARGET,
    RESTORED,
    SEPARATOR,
    TIMING,
    artifacts,
    clean_music_deps,
    evaluate_stage,
    model_dirs,
    model_metric_files,
    msr_targets,
    restore_stage,
    stage_writing,
    stages,
    train_stage,
    variant_stages,
)

__all__ = [
    "ARTIFACTS",
    "DVC_YAML",
    "EVAL",
    "LEARNED",
    "MIX_TESTSETS",
    "MODELS",
    "MSR_TEST",
    "MSR_TRAIN",
    "NOT_OUTPUT_SHAPING",
    "PACKAGE",
    "PER_TARGET",
    "RESTORED",
    "ROOT",
    "SEPARATOR",
    "SRC",
    "TIMING",
    "_imports",
    "_inert",
    "artifacts",
    "clean_music_deps",
    "code_deps",
    "collapse_packages",
    "evaluate_stage",
    "main",
    "model_dirs",
    "model_metric_files",
    "module_closure",
    "module_file",
    "msr_targets",
    "render",
    "restore_stage",
    "stage_writing",
    "stages",
    "train_stage",
    "variant_stages",
]
