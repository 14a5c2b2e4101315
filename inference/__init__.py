"""Local generation behind one Backend protocol (llama.cpp, the MoE offloading engine)."""
