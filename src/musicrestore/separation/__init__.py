"""Music source separation with Demucs, one interface for pretrained and pipeline-trained models.

Seed 001 (§3, "Source separation") splits MusicGen outputs into Demucs' four stems (drums,
bass, other, vocals) and restores each stem before remixing; seed 000 ("Baseline: Demucs +
S-NMF") separates the pre-cleaned, stereo-upmixed mixture with ``htdemucs``; the MSR baseline
(docs/method.md#demucs) takes the separated stem of a target group as its estimate. The model is
Hybrid Transformer Demucs (Rouard, Massa & Défossez, "Hybrid Transformers for Music Source
Separation", ICASSP 2023); :mod:`demucs.apply` does the chunking, overlap-add and shift trick.

Where a model comes from (:func:`load_separator`):

* ``repo`` given: a local folder in Demucs' repository format, i.e. a bag file ``<name>.yaml``
  (``models: [<sig>, ...]``, optional ``weights``, ``segment``) plus one file per signature.
  ``<sig>.safetensors`` (the Hugging Face format of demucs 4.1, class + constructor args as JSON
  metadata) is loaded here without pickle; a ``<sig>[-<checksum>].th`` package (demucs' own
  pickled format) is read with ``torch.load(weights_only=True)`` and an allowlist of exactly
  what a Demucs package pickles (the model class, as a stand-in that runs nothing, and
  ``fractions.Fraction``): a package that needs anything else is refused in one line naming
  the file, unless ``trust_pickle`` (``--trust-pickle``, ``separate.trust_pickle: true``)
  loads it the old way, with a warning. :func:`export_repo` writes both files, so a folder
  written by this pipeline loads in both ways (``python -m demucs --repo DIR -n trained``
  works too).
* ``repo`` is ``None``: the Hugging Face hub repository demucs 4.1 uses for the name
  (``htdemucs`` -> ``adefossez/HTDemucs``, ``htdemucs_ft`` -> ``adefossez/HTDemucs-ft``,
  ``ns/name`` -> ``ns/...``) through ``huggingface_hub``, so an offline cache
  (``HF_HOME`` / ``HF_HUB_CACHE`` with ``HF_HUB_OFFLINE=1``) works; failing that, the legacy
  ``.th`` files of demucs < 4.1 in the torch hub cache (read as above). Nothing else
  touches the network. Names from a bag file or a model name are plain file names before
  they become paths (:mod:`musicrestore.core.paths`).

Layout: :mod:`~musicrestore.separation.separator` (the interface, :class:`DemucsSeparator`,
small test models), :mod:`~musicrestore.separation.sources` (target -> source),
:mod:`~musicrestore.separation.loading`, :mod:`~musicrestore.separation.export` (repository
folders and byte-stable safetensors), :mod:`~musicrestore.separation.codec` (constructor
arguments as JSON) and :mod:`~musicrestore.separation.errors`.
"""

from .errors import SeparationError
from .export import canonical_safetensors, export_repo
from .loading import TRAINED, load_safetensors_model, load_separator, load_th_package
from .separator import DemucsSeparator, Separator, tiny_htdemucs, tiny_separator
from .sources import SOURCES, target_source

__all__ = [
    "SOURCES",
    "TRAINED",
    "DemucsSeparator",
    "SeparationError",
    "Separator",
    "canonical_safetensors",
    "export_repo",
    "load_safetensors_model",
    "load_separator",
    "load_th_package",
    "target_source",
    "tiny_htdemucs",
    "tiny_separator",
]
