"""Where experts live and how they move: the slow-tier file and fast-tier slab (store),
the loaders (thread, reader process, CUDA stream) and the packed expert formats (quant).
"""
