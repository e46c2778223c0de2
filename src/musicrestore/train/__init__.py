"""The one training engine of the pipeline's learned models (docs/method.md#learned-models).

- :mod:`.engine`: :class:`~.engine.TrainConfig` and :func:`~.engine.fit` (PyTorch Lightning:
  AdamW + cosine with warmup, accumulation, clipping, mixed precision, EMA, exact resume,
  DDP under ``torchrun`` or Lightning's launcher);
- :mod:`.data`: crops of dataset folders, step-indexed loading;
- :mod:`.on_the_fly`: the degradation chains applied to those crops as they are drawn;
- :mod:`.modules`: thin LightningModules (:class:`~.modules.DenoiserModule`,
  :class:`~.modules.SeparatorModule`) around plain networks;
- :mod:`.losses`: seed 000's time-domain L1 + log-magnitude L1;
- :mod:`.logger`: metrics to the stage's MLflow record and ``loss.csv``;
- :mod:`.recipe`: a model's ``params.yaml`` block -> a trained inference checkpoint
  (:mod:`musicrestore.models.checkpoint`), the work of ``stages/train.py``;
- :mod:`.separator`: the Demucs separator's training and export (``stages/train_separator.py``).

Importing this package does not import Lightning; its submodules do. Inference never
needs them. May import: ``core``, ``data``, ``degrade``, ``evaluation``, ``models``,
``separation``, ``tracking`` (docs/architecture.md).
"""
