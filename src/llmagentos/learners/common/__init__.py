"""Machinery shared by the deep learners (networks, buffers, normalisation), written once."""
