"""The consolidation strategies, one module each; :mod:`llmagentos.lifelong.consolidation` lists them."""
