"""The engine room: how the kernels execute, kept apart from what they compute.

- :mod:`.layout`: the memory-layout policy (shapes are (N, C, *S); conv outputs are
  batch-innermost memory; every other kernel allocates in its input's layout) and the
  helpers that allocate and convert.
- :mod:`.windows`: the N-d windowing primitive (gather / scatter-add over kernel offsets),
  im2col and col2im, for convolution, transposed convolution and pooling alike.
- :mod:`.correlate`: correlation as GEMMs on columns, in one block or in cache-sized bands,
  behind one call pair that always returns one cache type.
- :mod:`.workspace`: reused scratch buffers; :mod:`.threads`: the thread pool.

An op file reads: validate, geometry, a few engine calls, a named cache.
"""
