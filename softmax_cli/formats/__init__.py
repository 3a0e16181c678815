"""File formats: one module per format family, one registry (:mod:`.registry`) mapping names to them.

Each module (:mod:`.npy`, :mod:`.npz`, :mod:`.text`, :mod:`.jsonfmt`) declares
its formats as :class:`.base.Format` values; nothing here imports anything
heavy, so the registry is cheap to load on every start-up.
"""
