"""Plaza's machine-learning core: plain Python, no Django import anywhere.

One module per concern (embeddings, index, bm25, generation, lora, registry,
langchain); each takes plain values and returns plain values, so it can be tested,
benchmarked and reused alone. tests/test_boundaries.py enforces the rule.
"""
