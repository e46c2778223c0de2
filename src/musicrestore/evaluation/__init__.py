"""Scoring restored audio (docs/method.md#evaluation).

- :mod:`.metrics`: every metric of the three papers (SI-SDR, mel-SSIM, Multi-Mel-SNR, SNR,
  segmental SNR, LSD, STOI, the 25th-percentile level, loudness and true peak), each a pure
  function of arrays.
- :mod:`.evaluate`: a variant's restorations against their references, per 10-s segment,
  mean ± 95 % CI.

May import: :mod:`musicrestore.core`, :mod:`musicrestore.data`.
"""
