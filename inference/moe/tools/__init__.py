"""Tools around the engine: MoEfication (moefy*), the benchmark (bench), routing metrics (lrc),
the real-size testbed and its GGUF export, tiny test checkpoints.
"""
