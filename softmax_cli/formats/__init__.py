"""File formats: one module per format family, one registry (:mod:`.registry`) mapping names to them.

The registry declares every format (name, extensions, magic bytes, the module
implementing it) as data and imports that module (:mod:`.npy`, :mod:`.npz`,
:mod:`.safetensors`, :mod:`.parquet`, :mod:`.text`, :mod:`.jsonfmt`) only when
a file of the format is read or written, so the registry is cheap to load on
every start-up. Nothing here imports anything heavy.
"""
