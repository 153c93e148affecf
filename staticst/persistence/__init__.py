"""Model persistence: every way a model meets the disk.

``layout`` (the disk layouts, as data), ``load`` (a folder into checked parts), ``save`` (parts into a
folder, model card included), ``io`` (safetensors reading and writing) and ``hub`` (name resolution).
"""

from __future__ import annotations
