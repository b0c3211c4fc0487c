"""The content-addressed engine: objects named by the BLAKE3 of their bytes.

It knows nothing of manifests. Modules, bottom up:

- :mod:`~scribestore.store.hashing`: digests and their validation;
- :mod:`~scribestore.store.layout`: every file name the engine writes or parses;
- :mod:`~scribestore.store.loose`: the object header and the loose-object codec;
- :mod:`~scribestore.store.planes` (and its C accelerator), :mod:`~scribestore.store.blobcodec`:
  how a chunk's bytes are encoded in a pack;
- :mod:`~scribestore.store.packs`: pack files, their tables and indexes;
- :mod:`~scribestore.store.chunks`: content-defined chunking, recipes, chunked reads;
- :mod:`~scribestore.store.leases`: the leases that keep gc from racing a writer;
- :mod:`~scribestore.store.reader`, :mod:`~scribestore.store.writer`: the verifying
  stream, and put and copy;
- :mod:`~scribestore.store.objects`: :class:`~scribestore.store.objects.ObjectStore`.
"""
