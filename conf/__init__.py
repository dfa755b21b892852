"""Hydra configs of every stage, shipped inside the package (`pkg://nas_conf`)."""
